//! The example project `quiver quickstart` writes: the config below and the ride-hailing
//! definitions from the repository's `feature_defs/rides/` (embedded at build time).

include!(concat!(env!("OUT_DIR"), "/example_files.rs"));

/// Folder (relative to the project) the example definitions are written to.
pub const DEFINITIONS_DIR: &str = "feature_defs/rides";

/// The example `quiver.yaml`.
pub const CONFIG: &str = "\
# Quiver project config, written by `quiver quickstart`.
# Relative paths resolve against this file's folder.
project: rides
definitions: feature_defs/rides   # the YAML definitions `plan` and `apply` read
registry: .quiver/registry        # versioned registry: a path or an object store URL
lake: lake                        # base folder (or URL) of relative source paths
offline_store: .quiver/offline    # Delta tables written by materialization
online_store:
  type: embedded                  # needs nothing installed
  path: .quiver/online
#  type: redis
#  url: redis://127.0.0.1:6379/0
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_example_file_is_embedded() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../feature_defs/rides");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".yaml"))
            .collect();
        on_disk.sort();
        let embedded: Vec<String> = FILES.iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(embedded, on_disk);
        assert!(!FILES.is_empty());
    }
}
