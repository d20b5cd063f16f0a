//! `quiver.yaml`: which project, where its definitions, registry, lake and stores live.
//!
//! Found by `--config`, else `QUIVER_CONFIG`, else `./quiver.yaml`. Relative paths inside
//! resolve against the folder holding the config file, so a project folder can be moved or
//! checked out anywhere.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use url::Url;

use crate::error::{Error, Result};
use crate::repo::is_valid_name;
use crate::storage::resolve_location;

/// The file name looked for when no config is named.
pub const DEFAULT_CONFIG_FILE: &str = "quiver.yaml";

/// Where the latest feature values are kept for online reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OnlineStoreConfig {
    /// A file-backed store inside the project (the default; needs nothing installed).
    Embedded { path: PathBuf },
    /// A Redis server or cluster, e.g. `redis://127.0.0.1:6379/0` or
    /// `redis+cluster://h1:p1,h2:p2`. With `expire_keys`, Redis drops a row once it is older
    /// than its view's ttl (it then reads as NOT_FOUND rather than OUTSIDE_MAX_AGE).
    Redis { url: String, expire_keys: bool },
}

/// A loaded, resolved configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The config file itself.
    pub path: PathBuf,
    /// The folder relative paths resolve against.
    pub root: PathBuf,
    pub project: String,
    pub definitions: PathBuf,
    pub registry: Url,
    /// Base of relative source paths; always ends in `/`.
    pub lake: Url,
    pub offline_store: Url,
    pub online_store: OnlineStoreConfig,
    /// Bearer token `quiver serve` requires on writing calls (`server.auth_token`); the
    /// `QUIVER_AUTH_TOKEN` environment variable overrides it.
    pub auth_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    project: String,
    definitions: Option<String>,
    registry: Option<String>,
    lake: Option<String>,
    offline_store: Option<String>,
    online_store: Option<RawOnline>,
    server: Option<RawServer>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    auth_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOnline {
    #[serde(rename = "type")]
    kind: Option<String>,
    path: Option<String>,
    url: Option<String>,
    expire_keys: Option<bool>,
}

impl Config {
    /// The config file to use: the explicit one, else `./quiver.yaml`. (`QUIVER_CONFIG` is
    /// read by the CLI into `explicit`.)
    pub fn locate(explicit: Option<&Path>) -> PathBuf {
        explicit.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_FILE))
    }

    /// Reads and resolves a config file.
    pub fn load(path: &Path) -> Result<Config> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| Error::Config {
            path: shown.clone(),
            message: if e.kind() == std::io::ErrorKind::NotFound {
                "not found; pass --config, set QUIVER_CONFIG, or run `quiver quickstart` to create a project"
                    .into()
            } else {
                e.to_string()
            },
        })?;
        let absolute = if path.is_absolute() {
            path.to_path_buf()
        } else {
            std::env::current_dir().map_err(|e| Error::io(".", e))?.join(path)
        };
        let root = absolute.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("/"));
        Self::parse(&text, &absolute, &root).map_err(|message| Error::Config { path: shown, message })
    }

    /// Parses config text; relative paths resolve against `root`.
    pub fn parse(text: &str, path: &Path, root: &Path) -> std::result::Result<Config, String> {
        let raw: RawConfig = serde_saphyr::from_str(text).map_err(|e| {
            let at = e.location().map(|l| format!("line {}: ", l.line())).unwrap_or_default();
            format!("{at}{}", e.to_string().lines().next().unwrap_or_default())
        })?;
        if !is_valid_name(&raw.project) {
            return Err(format!(
                "project '{}' is not a valid name (letters, digits and '_', starting with a letter)",
                raw.project
            ));
        }
        let at = |field: &str, value: &str| -> std::result::Result<Url, String> {
            resolve_location(value, root).map_err(|e| format!("{field}: {e}"))
        };
        let definitions = root.join(raw.definitions.as_deref().unwrap_or("feature_defs"));
        let registry = at("registry", raw.registry.as_deref().unwrap_or(".quiver/registry/"))?;
        let mut lake = at("lake", raw.lake.as_deref().unwrap_or("lake/"))?;
        if !lake.path().ends_with('/') {
            lake.set_path(&format!("{}/", lake.path()));
        }
        let offline_store = at("offline_store", raw.offline_store.as_deref().unwrap_or(".quiver/offline/"))?;
        let online_store = match raw.online_store {
            None => OnlineStoreConfig::Embedded { path: root.join(".quiver/online") },
            Some(o) => match o.kind.as_deref().unwrap_or("embedded") {
                "embedded" => {
                    if o.url.is_some() || o.expire_keys.is_some() {
                        return Err(
                            "online_store: `url` and `expire_keys` are for type redis; the embedded store takes `path`".into()
                        );
                    }
                    OnlineStoreConfig::Embedded {
                        path: root.join(o.path.as_deref().unwrap_or(".quiver/online")),
                    }
                }
                "redis" => {
                    let url =
                        o.url.ok_or("online_store: type redis needs `url`, e.g. redis://127.0.0.1:6379/0")?;
                    if !(url.starts_with("redis://")
                        || url.starts_with("rediss://")
                        || url.starts_with("redis+cluster://"))
                    {
                        return Err(format!("online_store: url '{url}' is not a redis:// or rediss:// URL"));
                    }
                    OnlineStoreConfig::Redis { url, expire_keys: o.expire_keys.unwrap_or(false) }
                }
                other => return Err(format!("online_store: unknown type '{other}' (embedded or redis)")),
            },
        };
        Ok(Config {
            path: path.to_path_buf(),
            root: root.to_path_buf(),
            project: raw.project,
            definitions,
            registry,
            lake,
            offline_store,
            online_store,
            auth_token: raw.server.and_then(|s| s.auth_token).filter(|t| !t.is_empty()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_resolve_against_the_config_folder() {
        let text = "project: rides\ndefinitions: feature_defs/rides\nregistry: .quiver/registry\nlake: ./lake\noffline_store: s3://bucket/offline\nonline_store:\n  type: redis\n  url: redis://127.0.0.1:6379/0\n";
        let c = Config::parse(text, Path::new("/p/quiver.yaml"), Path::new("/p")).unwrap();
        assert_eq!(c.definitions, PathBuf::from("/p/feature_defs/rides"));
        assert_eq!(c.registry.as_str(), "file:///p/.quiver/registry");
        assert_eq!(c.lake.as_str(), "file:///p/lake/");
        assert_eq!(c.offline_store.as_str(), "s3://bucket/offline");
        assert_eq!(c.auth_token, None);
        assert_eq!(
            c.online_store,
            OnlineStoreConfig::Redis { url: "redis://127.0.0.1:6379/0".into(), expire_keys: false }
        );
        let c = Config::parse(
            "project: p\nonline_store: {type: redis, url: 'redis+cluster://a:1,b:2', expire_keys: true}\n",
            Path::new("/p/q.yaml"),
            Path::new("/p"),
        )
        .unwrap();
        assert_eq!(
            c.online_store,
            OnlineStoreConfig::Redis { url: "redis+cluster://a:1,b:2".into(), expire_keys: true }
        );
    }

    #[test]
    fn bad_configs_say_what_is_wrong() {
        let root = Path::new("/p");
        let file = Path::new("/p/quiver.yaml");
        for (text, expect) in [
            ("project: rides\nregistyr: x\n", "registyr"),
            ("definitions: x\n", "project"),
            ("project: 'my project'\n", "not a valid name"),
            ("project: p\nonline_store: {type: redis}\n", "needs `url`"),
            ("project: p\nonline_store: {type: dynamo}\n", "unknown type 'dynamo'"),
            ("project: p\nonline_store: {type: redis, url: 'http://x'}\n", "not a redis://"),
            ("project: p\nonline_store: {type: embedded, expire_keys: true}\n", "are for type redis"),
            ("project: p\nserver: {token: x}\n", "token"),
        ] {
            let err = Config::parse(text, file, root).unwrap_err();
            assert!(err.contains(expect), "{text:?}: {err}");
        }
    }
}
