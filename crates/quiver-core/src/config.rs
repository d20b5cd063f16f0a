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
    /// `rediss://` (and `rediss+cluster://`) connect over TLS, trusting `tls_ca` (PEM) when
    /// given, else the system's roots.
    Redis { url: String, expire_keys: bool, tls_ca: Option<PathBuf> },
}

impl OnlineStoreConfig {
    /// Whether online rows get an expiry from their view's ttl (Redis with `expire_keys`).
    pub fn expires_keys(&self) -> bool {
        matches!(self, OnlineStoreConfig::Redis { expire_keys: true, .. })
    }
}

/// Where offline plans (training sets) run: `offline_engine:` in `quiver.yaml`, or
/// `--offline-engine` / `QUIVER_OFFLINE_ENGINE`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum OfflineEngineConfig {
    /// In the process that runs the command (the default).
    #[default]
    Local,
    /// On an Apache Ballista cluster: the scheduler's address, `df://HOST:PORT`, checked
    /// when the engine is opened, and how many partitions each view's join is split into
    /// (by a hash of its join keys; each partition is a task).
    Ballista { scheduler: String, partitions: usize },
}

impl OfflineEngineConfig {
    /// Longest scheduler address accepted.
    pub const MAX_SCHEDULER_LEN: usize = 300;
    /// Join partitions on a cluster unless `partitions:` says otherwise: a few per executor
    /// of a small cluster.
    pub const DEFAULT_PARTITIONS: usize = 8;
    /// Most join partitions accepted.
    pub const MAX_PARTITIONS: usize = 4096;

    /// The engine a flag or variable names: `local`, or a scheduler's `df://HOST:PORT`.
    pub fn parse_flag(text: &str) -> std::result::Result<OfflineEngineConfig, String> {
        let text = text.trim();
        if text == "local" {
            Ok(OfflineEngineConfig::Local)
        } else if text.starts_with("df://") && text.len() <= Self::MAX_SCHEDULER_LEN {
            Ok(OfflineEngineConfig::Ballista {
                scheduler: text.to_string(),
                partitions: Self::DEFAULT_PARTITIONS,
            })
        } else {
            Err("the offline engine is `local` or a Ballista scheduler's df://HOST:PORT".into())
        }
    }
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
    /// Places besides the lake that source paths may name (absolute paths or URLs), each a
    /// folder URL ending in `/`. Definitions are data from people: a source outside the lake
    /// and these roots is refused.
    pub lake_roots: Vec<Url>,
    /// Who may call `quiver serve`, and how it is reached.
    pub server: ServerConfig,
    /// Where offline jobs (training sets, materialization) run.
    pub offline_engine: OfflineEngineConfig,
}

/// What a token may do. Each role includes the ones before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Online reads, registry reads, training sets (when uploads are open to readers).
    Reader,
    /// Push, materialization, training-set uploads.
    Writer,
    /// Plan and apply definitions.
    Admin,
}

impl Role {
    pub fn parse(text: &str) -> std::result::Result<Role, String> {
        match text {
            "reader" => Ok(Role::Reader),
            "writer" => Ok(Role::Writer),
            "admin" => Ok(Role::Admin),
            other => Err(format!("role '{other}' is not one of reader, writer, admin")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Writer => "writer",
            Role::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A token the server accepts, stored as the SHA-256 of the token text so the config file
/// does not hold the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenConfig {
    /// Who holds it: named in audit logs and recorded as `applied_by`.
    pub name: String,
    pub role: Role,
    pub sha256: [u8; 32],
}

impl std::fmt::Debug for TokenConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenConfig")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// TLS files of the gRPC server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// PEM CA certificates; when set, clients must present a certificate it signed (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

/// The `server:` section. Its `Debug` shows no token.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ServerConfig {
    /// One admin token given as text (`server.auth_token`); `QUIVER_AUTH_TOKEN` and
    /// `--auth-token` override it.
    pub auth_token: Option<String>,
    /// Tokens with roles (`server.tokens`).
    pub tokens: Vec<TokenConfig>,
    /// Reads (online features, registry listings) need a `reader` token too. Off by default:
    /// with tokens configured, only calls that change something or upload data need one.
    pub reads_need_token: bool,
    /// The role a training-set upload (`GetHistoricalFeatures`, Flight `DoPut`) needs:
    /// `writer` by default, `reader` to let model developers build training sets.
    pub upload_role: Option<Role>,
    pub tls: Option<TlsConfig>,
    /// Where to serve the HTTP endpoint (JSON API and web catalog), `server.http_addr`;
    /// `quiver serve --http-addr` overrides it. Off when neither is given.
    pub http_addr: Option<std::net::SocketAddr>,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("auth_token", &self.auth_token.as_ref().map(|_| "<set>"))
            .field("tokens", &self.tokens)
            .field("reads_need_token", &self.reads_need_token)
            .field("upload_role", &self.upload_role)
            .field("tls", &self.tls)
            .field("http_addr", &self.http_addr)
            .finish()
    }
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
    lake_roots: Option<Vec<String>>,
    offline_engine: Option<RawEngine>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEngine {
    #[serde(rename = "type")]
    kind: String,
    scheduler: Option<String>,
    partitions: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    auth_token: Option<String>,
    tokens: Option<Vec<RawToken>>,
    reads_need_token: Option<bool>,
    upload_role: Option<String>,
    tls: Option<RawTls>,
    http_addr: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToken {
    name: String,
    role: String,
    sha256: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: String,
    key: String,
    client_ca: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOnline {
    #[serde(rename = "type")]
    kind: Option<String>,
    path: Option<String>,
    url: Option<String>,
    expire_keys: Option<bool>,
    tls_ca: Option<String>,
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
                    if o.url.is_some() || o.expire_keys.is_some() || o.tls_ca.is_some() {
                        return Err(
                            "online_store: `url`, `expire_keys` and `tls_ca` are for type redis; the embedded store takes `path`".into()
                        );
                    }
                    OnlineStoreConfig::Embedded {
                        path: root.join(o.path.as_deref().unwrap_or(".quiver/online")),
                    }
                }
                "redis" => {
                    let url =
                        o.url.ok_or("online_store: type redis needs `url`, e.g. redis://127.0.0.1:6379/0")?;
                    let tls = url.starts_with("rediss://") || url.starts_with("rediss+cluster://");
                    if !(tls || url.starts_with("redis://") || url.starts_with("redis+cluster://")) {
                        return Err(
                            "online_store: url is not a redis://, rediss://, redis+cluster:// or rediss+cluster:// URL"
                                .into(),
                        );
                    }
                    if o.tls_ca.is_some() && !tls {
                        return Err("online_store: `tls_ca` needs a rediss:// (TLS) url".into());
                    }
                    OnlineStoreConfig::Redis {
                        url,
                        expire_keys: o.expire_keys.unwrap_or(false),
                        tls_ca: o.tls_ca.map(|p| root.join(p)),
                    }
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
            lake_roots: lake_roots(raw.lake_roots.unwrap_or_default(), root)?,
            server: server_config(raw.server, root)?,
            offline_engine: offline_engine(raw.offline_engine)?,
        })
    }
}

fn offline_engine(raw: Option<RawEngine>) -> std::result::Result<OfflineEngineConfig, String> {
    let Some(raw) = raw else { return Ok(OfflineEngineConfig::Local) };
    match (raw.kind.as_str(), raw.scheduler) {
        ("local", None) if raw.partitions.is_none() => Ok(OfflineEngineConfig::Local),
        ("local", _) => Err("offline_engine: `scheduler` and `partitions` are for type ballista".into()),
        ("ballista", Some(scheduler)) => match OfflineEngineConfig::parse_flag(&scheduler) {
            Ok(OfflineEngineConfig::Ballista { scheduler, partitions }) => {
                let partitions = raw.partitions.unwrap_or(partitions);
                if !(1..=OfflineEngineConfig::MAX_PARTITIONS).contains(&partitions) {
                    return Err(format!(
                        "offline_engine: `partitions` is 1 to {}",
                        OfflineEngineConfig::MAX_PARTITIONS
                    ));
                }
                Ok(OfflineEngineConfig::Ballista { scheduler, partitions })
            }
            _ => Err("offline_engine: `scheduler` is a Ballista scheduler's df://HOST:PORT".into()),
        },
        ("ballista", None) => {
            Err("offline_engine: type ballista needs `scheduler`, e.g. df://scheduler:50050".into())
        }
        _ => Err("offline_engine: `type` is local or ballista".into()),
    }
}

fn lake_roots(raw: Vec<String>, root: &Path) -> std::result::Result<Vec<Url>, String> {
    raw.iter()
        .enumerate()
        .map(|(i, spec)| {
            let mut url = resolve_location(spec, root).map_err(|e| format!("lake_roots[{i}]: {e}"))?;
            if !url.path().ends_with('/') {
                url.set_path(&format!("{}/", url.path()));
            }
            if url.path() == "/" && url.scheme() == "file" {
                return Err(format!(
                    "lake_roots[{i}]: the whole file system cannot be a lake root; name the folders sources read"
                ));
            }
            Ok(url)
        })
        .collect()
}

fn server_config(raw: Option<RawServer>, root: &Path) -> std::result::Result<ServerConfig, String> {
    let Some(raw) = raw else { return Ok(ServerConfig::default()) };
    let mut tokens: Vec<TokenConfig> = Vec::new();
    for (i, t) in raw.tokens.unwrap_or_default().into_iter().enumerate() {
        let at = format!("server.tokens[{i}]");
        if !is_valid_name(&t.name) {
            return Err(format!(
                "{at}: name is not a valid name (letters, digits and '_', starting with a letter)"
            ));
        }
        if tokens.iter().any(|o| o.name == t.name) {
            return Err(format!("{at}: the name '{}' is used twice", t.name));
        }
        let role = Role::parse(&t.role).map_err(|e| format!("{at}: {e}"))?;
        let digest = hex::decode(t.sha256.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| {
                format!(
                    "{at}: sha256 is not 64 hex digits; store the token's SHA-256, e.g. \
                     `printf %s \"$TOKEN\" | sha256sum`"
                )
            })?;
        tokens.push(TokenConfig { name: t.name, role, sha256: digest });
    }
    let upload_role = match raw.upload_role.as_deref() {
        None => None,
        Some(r) => match Role::parse(r).map_err(|e| format!("server.upload_role: {e}"))? {
            Role::Admin => return Err("server.upload_role: reader or writer".into()),
            role => Some(role),
        },
    };
    let tls = raw.tls.map(|t| TlsConfig {
        cert: root.join(t.cert),
        key: root.join(t.key),
        client_ca: t.client_ca.map(|c| root.join(c)),
    });
    let http_addr = match raw.http_addr.as_deref() {
        None => None,
        Some(text) => Some(text.trim().parse().map_err(|_| {
            "server.http_addr: write an address with a port, e.g. 127.0.0.1:6567".to_string()
        })?),
    };
    Ok(ServerConfig {
        auth_token: raw.auth_token.filter(|t| !t.is_empty()),
        tokens,
        reads_need_token: raw.reads_need_token.unwrap_or(false),
        upload_role,
        tls,
        http_addr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offline_engine_is_local_unless_a_ballista_scheduler_is_named() {
        let parse = |extra: &str| {
            Config::parse(&format!("project: p\n{extra}"), Path::new("/p/q.yaml"), Path::new("/p"))
        };
        assert_eq!(parse("").unwrap().offline_engine, OfflineEngineConfig::Local);
        assert_eq!(
            parse("offline_engine: {type: local}\n").unwrap().offline_engine,
            OfflineEngineConfig::Local
        );
        assert_eq!(
            parse("offline_engine: {type: ballista, scheduler: 'df://sched:50050'}\n")
                .unwrap()
                .offline_engine,
            OfflineEngineConfig::Ballista { scheduler: "df://sched:50050".into(), partitions: 8 }
        );
        assert_eq!(
            parse("offline_engine: {type: ballista, scheduler: 'df://s:1', partitions: 64}\n")
                .unwrap()
                .offline_engine,
            OfflineEngineConfig::Ballista { scheduler: "df://s:1".into(), partitions: 64 }
        );
        for (bad, says) in [
            ("offline_engine: {type: spark}\n", "`type` is local or ballista"),
            ("offline_engine: {type: ballista}\n", "type ballista needs `scheduler`"),
            ("offline_engine: {type: ballista, scheduler: 'http://x:1'}\n", "df://HOST:PORT"),
            ("offline_engine: {type: local, scheduler: 'df://x:1'}\n", "are for type ballista"),
            ("offline_engine: {type: local, partitions: 2}\n", "are for type ballista"),
            ("offline_engine: {type: ballista, scheduler: 'df://x:1', partitions: 0}\n", "is 1 to 4096"),
            ("offline_engine: {type: local, workers: 3}\n", "workers"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        assert_eq!(
            OfflineEngineConfig::parse_flag("df://10.0.0.5:50050"),
            Ok(OfflineEngineConfig::Ballista { scheduler: "df://10.0.0.5:50050".into(), partitions: 8 })
        );
        assert_eq!(OfflineEngineConfig::parse_flag(" local "), Ok(OfflineEngineConfig::Local));
        for bad in ["", "ballista", "spark://x", &format!("df://{}", "h".repeat(400))] {
            let e = OfflineEngineConfig::parse_flag(bad).unwrap_err();
            assert!(!e.contains("hhhh") && e.contains("df://HOST:PORT"), "{e}");
        }
    }

    #[test]
    fn relative_paths_resolve_against_the_config_folder() {
        let text = "project: rides\ndefinitions: feature_defs/rides\nregistry: .quiver/registry\nlake: ./lake\noffline_store: s3://bucket/offline\nonline_store:\n  type: redis\n  url: redis://127.0.0.1:6379/0\n";
        let c = Config::parse(text, Path::new("/p/quiver.yaml"), Path::new("/p")).unwrap();
        assert_eq!(c.definitions, PathBuf::from("/p/feature_defs/rides"));
        assert_eq!(c.registry.as_str(), "file:///p/.quiver/registry");
        assert_eq!(c.lake.as_str(), "file:///p/lake/");
        assert_eq!(c.offline_store.as_str(), "s3://bucket/offline");
        assert_eq!(c.server, ServerConfig::default());
        assert!(c.lake_roots.is_empty());
        assert_eq!(
            c.online_store,
            OnlineStoreConfig::Redis {
                url: "redis://127.0.0.1:6379/0".into(),
                expire_keys: false,
                tls_ca: None
            }
        );
        let c = Config::parse(
            "project: p\nonline_store: {type: redis, url: 'redis+cluster://a:1,b:2', expire_keys: true}\n",
            Path::new("/p/q.yaml"),
            Path::new("/p"),
        )
        .unwrap();
        assert_eq!(
            c.online_store,
            OnlineStoreConfig::Redis {
                url: "redis+cluster://a:1,b:2".into(),
                expire_keys: true,
                tls_ca: None
            }
        );
    }

    #[test]
    fn server_tokens_roles_tls_and_lake_roots_are_read() {
        let digest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        let text = format!(
            "project: p\nlake_roots: [/shared/raw, 's3://bucket/events']\nonline_store: {{type: redis, url: 'rediss://r:6380/0', tls_ca: certs/ca.pem}}\nserver:\n  tokens:\n    - {{name: alice, role: admin, sha256: {digest}}}\n    - {{name: model_svc, role: reader, sha256: '{}'}}\n  reads_need_token: true\n  upload_role: reader\n  http_addr: 127.0.0.1:6567\n  tls: {{cert: tls/server.pem, key: tls/server.key, client_ca: tls/ca.pem}}\n",
            digest.to_uppercase()
        );
        let c = Config::parse(&text, Path::new("/p/q.yaml"), Path::new("/p")).unwrap();
        let roots: Vec<&str> = c.lake_roots.iter().map(Url::as_str).collect();
        assert_eq!(roots, ["file:///shared/raw/", "s3://bucket/events/"]);
        assert_eq!(
            c.online_store,
            OnlineStoreConfig::Redis {
                url: "rediss://r:6380/0".into(),
                expire_keys: false,
                tls_ca: Some(PathBuf::from("/p/certs/ca.pem"))
            }
        );
        let s = &c.server;
        assert_eq!(s.http_addr, Some("127.0.0.1:6567".parse().unwrap()));
        assert_eq!(s.tokens.len(), 2);
        assert_eq!((s.tokens[0].name.as_str(), s.tokens[0].role), ("alice", Role::Admin));
        assert_eq!(s.tokens[1].role, Role::Reader);
        assert_eq!(s.tokens[0].sha256, s.tokens[1].sha256, "hex digits in either case");
        assert!(s.reads_need_token);
        assert_eq!(s.upload_role, Some(Role::Reader));
        let tls = s.tls.as_ref().unwrap();
        assert_eq!(tls.cert, PathBuf::from("/p/tls/server.pem"));
        assert_eq!(tls.client_ca, Some(PathBuf::from("/p/tls/ca.pem")));
        assert!(!format!("{:?}", s.tokens[0]).contains(&digest[..8]), "the digest is not printed");
        let with_token = Config::parse(
            "project: p\nserver: {auth_token: s3cret-text}\n",
            Path::new("/p/q.yaml"),
            Path::new("/p"),
        )
        .unwrap();
        assert_eq!(with_token.server.auth_token.as_deref(), Some("s3cret-text"));
        assert!(!format!("{with_token:?}").contains("s3cret-text"), "a token is never printed");
        assert!(Role::Reader < Role::Writer && Role::Writer < Role::Admin);
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
            ("project: p\nserver: {tokens: [{name: a, role: root, sha256: '00'}]}\n", "role 'root'"),
            ("project: p\nserver: {tokens: [{name: a, role: admin, sha256: 'abc'}]}\n", "64 hex digits"),
            ("project: p\nserver: {tokens: [{name: 'a b', role: admin, sha256: 'abc'}]}\n", "valid name"),
            ("project: p\nserver: {upload_role: admin}\n", "reader or writer"),
            ("project: p\nserver: {http_addr: 'localhost'}\n", "server.http_addr"),
            ("project: p\nlake_roots: ['/']\n", "whole file system"),
            (
                "project: p\nonline_store: {type: redis, url: 'redis://x', tls_ca: ca.pem}\n",
                "needs a rediss://",
            ),
        ] {
            let err = Config::parse(text, file, root).unwrap_err();
            assert!(err.contains(expect), "{text:?}: {err}");
        }
    }
}
