//! Running the `quiver` binary in tests, and example projects to run it in.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod cluster;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `quiver ARGS` in `dir`, with no `QUIVER_CONFIG` from the environment.
pub fn quiver(dir: &Path, args: &[&str]) -> Output {
    quiver_with_env(dir, args, &[])
}

/// Runs `quiver ARGS` in `dir` with these environment variables added.
pub fn quiver_with_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_quiver"))
        .args(args)
        .current_dir(dir)
        .env_remove("QUIVER_CONFIG")
        .envs(env.iter().copied())
        .output()
        .expect("the quiver binary runs")
}

/// Standard output and standard error as text.
pub fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// Runs a command that must succeed; returns its standard output.
pub fn ok(dir: &Path, args: &[&str]) -> String {
    let o = quiver(dir, args);
    let (out, err) = text(&o);
    assert!(o.status.success(), "quiver {args:?} failed ({:?}):\n{out}\n{err}", o.status.code());
    out
}

/// Runs a command that must fail with exit code 1; returns its standard error.
pub fn fails(dir: &Path, args: &[&str]) -> String {
    let o = quiver(dir, args);
    assert_eq!(o.status.code(), Some(1), "quiver {args:?} should fail: {}", text(&o).0);
    text(&o).1
}

/// Runs a command with `--json` that must succeed; returns the parsed output.
pub fn json(dir: &Path, args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.push("--json");
    serde_json::from_str(&ok(dir, &all)).expect("--json prints JSON")
}

/// A project with the example definitions, `extra_config` appended to its `quiver.yaml`,
/// a sample lake (`sample_args` passed to `sample-lake`), applied, nothing materialized.
pub fn example_project(extra_config: &str, sample_args: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    copy_example_definitions(&dir);
    std::fs::write(
        dir.join("quiver.yaml"),
        format!(
            "project: rides\ndefinitions: feature_defs/rides\nregistry: .quiver/registry\nlake: lake\noffline_store: .quiver/offline\n{extra_config}"
        ),
    )
    .unwrap();
    let mut args = vec!["sample-lake", "--dir", "lake"];
    args.extend_from_slice(sample_args);
    ok(&dir, &args);
    ok(&dir, &["apply"]);
    (tmp, dir)
}

/// Copies the example definitions (`feature_defs/rides`) into `dir/feature_defs/rides`.
pub fn copy_example_definitions(dir: &Path) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../feature_defs/rides");
    std::fs::create_dir_all(dir.join("feature_defs/rides")).unwrap();
    for e in std::fs::read_dir(repo).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.join("feature_defs/rides").join(p.file_name().unwrap())).unwrap();
    }
}

/// The data files live at a Delta table's latest version (paths as its log names them), from
/// its JSON commits.
pub fn live_files(table: &Path) -> std::collections::BTreeSet<String> {
    let mut commits: Vec<PathBuf> = std::fs::read_dir(table.join("_delta_log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    commits.sort();
    let mut live = std::collections::BTreeSet::new();
    for c in commits {
        for line in std::fs::read_to_string(c).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            if let Some(p) = v["add"]["path"].as_str() {
                live.insert(p.to_string());
            }
            if let Some(p) = v["remove"]["path"].as_str() {
                live.remove(p);
            }
        }
    }
    live
}
