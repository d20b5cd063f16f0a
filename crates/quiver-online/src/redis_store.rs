//! The Redis online store, for a single server or a Redis Cluster.
//!
//! Layout: one string key per (view, entity):
//!
//! ```text
//! <project>:{<entity>}:<view>   ->  encoded row (see `value`)
//! e.g. rides:{driver_id=1001}:driver_stats
//! ```
//!
//! The braces are a Redis Cluster hash tag: every view's row of one entity lives on the same
//! shard. The project name is in every key, so projects can share a server.
//!
//! - Reads are one `MGET` for the whole request: one round trip and one command on a single
//!   server, sent over a connection the read holds for its round trip and parsed in the
//!   read's own task ([`crate::direct`]; over TLS, through redis-rs's connection). On a
//!   cluster a command must stay within one hash slot, so the request is split into one
//!   pipeline per entity (all its views share the slot), all sent concurrently over
//!   the multiplexed connections; a per-shard pipeline over direct node connections would
//!   cut that to one round trip per shard and is the next step.
//! - Writes run a Lua script that, for each of its rows, keeps the stored row unless the new
//!   one is newer by (event time, created time, tie key: the offline latest-row order), or
//!   the stored one was written for another definition of the view: the comparison and the `SET` are one atomic step inside Redis,
//!   so concurrent writers and re-runs never move a value backwards. On a single server one
//!   call covers [`ROWS_PER_CALL`] rows; on a cluster one call covers one entity's rows (a
//!   script's keys must share a slot). Calls are sent in pipelines of [`WRITE_BATCH`] rows,
//!   several in flight at once. An optional expiry (`PXAT`) lets Redis drop rows that are
//!   past the view's ttl.
//! - Connections reconnect by themselves (`ConnectionManager`, cluster connections), so a
//!   Redis restart heals without restarting Quiver; calls made while it is down fail with
//!   [`Error::Unavailable`].

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use redis::aio::ConnectionManager;
use redis::cluster_async::ClusterConnection;
use redis::{Pipeline, RedisResult, Script};

use crate::direct::{ReadPool, Target, push_header};
use crate::error::{Error, Result};
use crate::store::{EntityKey, OnlineStore, RowWrite};

/// Rows per write pipeline.
pub const WRITE_BATCH: usize = 2_000;
/// Write pipelines in flight at once.
const WRITES_IN_FLIGHT: usize = 4;

/// Rows per script call on a single server: one call checks and sets them all, which costs
/// Redis far less than a call per row, while keeping each call short (other clients wait
/// while a script runs).
pub const ROWS_PER_CALL: usize = 100;

/// Newer-wins write of one or more rows. KEYS[i] a row key; ARGV[2i-1] its encoded row,
/// ARGV[2i] its expiry (Unix ms) or empty. Bytes 2..5 of a row are the view fingerprint,
/// 6..21 the (event, created) ordering bytes, and in format 2 bytes 22..25 the length of the
/// tie key that follows (Lua strings are 1-based; see `value`). Rows are compared byte by
/// byte with `string.byte`, never with Lua's `<` on strings, which follows the server's
/// collation locale. Returns how many rows were set.
const NEWER_WINS: &str = r"
local function tie(row)
  if string.byte(row, 1) ~= 2 then return '' end
  local a, b, c, d = string.byte(row, 22, 25)
  if not d then return '' end
  local n = ((a * 256 + b) * 256 + c) * 256 + d
  return string.sub(row, 26, 25 + n)
end
local function newer(cur, new)
  if string.sub(cur, 2, 5) ~= string.sub(new, 2, 5) then return true end
  for j = 6, 21 do
    local x, y = string.byte(cur, j), string.byte(new, j)
    if x ~= y then return y > x end
  end
  local tc, tn = tie(cur), tie(new)
  for j = 1, math.min(#tc, #tn) do
    local x, y = string.byte(tc, j), string.byte(tn, j)
    if x ~= y then return y > x end
  end
  return #tn > #tc
end
local written = 0
for i, key in ipairs(KEYS) do
  local new = ARGV[2 * i - 1]
  local cur = redis.call('GET', key)
  if not cur or newer(cur, new) then
    local expire = ARGV[2 * i]
    if expire ~= '' then
      redis.call('SET', key, new, 'PXAT', expire)
    else
      redis.call('SET', key, new)
    end
    written = written + 1
  end
end
return written
";

#[derive(Clone)]
enum Conn {
    /// A single server: redis-rs's managed connection, and for a plaintext url the pool
    /// reads take connections from ([`crate::direct`]).
    Single(ConnectionManager, Option<Arc<ReadPool>>),
    Cluster(ClusterConnection),
}

/// A Redis (or Redis Cluster) online store for one project.
#[derive(Clone)]
pub struct RedisStore {
    conn: Conn,
    project: String,
    url: String,
    /// `url` with any credentials masked: what logs, errors and `describe` show.
    shown: String,
    script: Script,
    /// TLS (`rediss://`): the CA to trust (PEM), `None` for the system's roots. Kept so the
    /// per-node connections of a scan use the same trust as the main connection.
    tls: Option<Option<Vec<u8>>>,
    /// A cluster's credentials (`user:password`, as the url gives them), for the per-node
    /// connections of a scan.
    cluster_auth: Option<String>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RedisStore({}, project {})", self.shown, self.project)
    }
}

impl RedisStore {
    /// Connects to `url`: `redis://host:port/db` (or `rediss://`) for a single server,
    /// `redis+cluster://host1:port1,host2:port2` (or `rediss+cluster://`) for a cluster.
    pub async fn connect(url: &str, project: &str) -> Result<Self> {
        Self::connect_with_ca(url, project, None).await
    }

    /// As [`RedisStore::connect`]; a TLS url trusts the PEM CA certificates in `ca` when
    /// given, else the system's roots. A plaintext url with a CA is refused.
    pub async fn connect_with_ca(url: &str, project: &str, ca: Option<&Path>) -> Result<Self> {
        crate::ensure_crypto_provider();
        let cluster = url.strip_prefix("redis+cluster://").map(|r| ("redis", r));
        let cluster = cluster.or_else(|| url.strip_prefix("rediss+cluster://").map(|r| ("rediss", r)));
        let scheme = cluster.map_or_else(|| url.split("://").next().unwrap_or_default(), |(s, _)| s);
        let tls = match (scheme == "rediss", ca) {
            (false, Some(_)) => {
                return Err(Error::Config("a TLS CA is set but the url is not rediss:// (TLS)".into()));
            }
            (false, None) => None,
            (true, None) => Some(None),
            (true, Some(path)) => Some(Some(
                std::fs::read(path)
                    .map_err(|e| Error::Config(format!("the Redis TLS CA {}: {e}", path.display())))?,
            )),
        };
        let mut cluster_auth = None;
        let conn = if let Some((scheme, rest)) = cluster {
            let (auth, hosts) = cluster_hosts(rest);
            let nodes: Vec<String> = hosts.iter().map(|h| node_url(scheme, auth, h)).collect();
            cluster_auth = auth.map(str::to_string);
            let mut builder = redis::cluster::ClusterClientBuilder::new(nodes);
            if let Some(root_cert) = &tls {
                builder =
                    builder.certs(redis::TlsCertificates { client_tls: None, root_cert: root_cert.clone() });
            }
            let client = builder.build().map_err(|e| Error::Config(format!("the Redis cluster url: {e}")))?;
            Conn::Cluster(client.get_async_connection().await?)
        } else {
            let client = client_for(url, &tls)?;
            let reads = Target::of(client.get_connection_info(), &masked_url(url)).map(ReadPool::new);
            Conn::Single(client.get_connection_manager_with_config(manager_config()).await?, reads)
        };
        Ok(RedisStore {
            conn,
            project: project.to_string(),
            url: url.to_string(),
            shown: masked_url(url),
            script: Script::new(NEWER_WINS),
            tls,
            cluster_auth,
        })
    }

    /// The Redis key of a row.
    pub fn key(&self, view: &str, entity: &EntityKey) -> String {
        let mut key = String::with_capacity(self.key_len(view, entity));
        self.write_key(&mut key, view, entity);
        key
    }

    /// The length in bytes of a row's Redis key.
    fn key_len(&self, view: &str, entity: &EntityKey) -> usize {
        self.key_parts(view, entity).iter().map(|p| p.len()).sum()
    }

    /// The pieces of a row's Redis key, in order: `<project>:{<entity>}:<view>`.
    fn key_parts<'a>(&'a self, view: &'a str, entity: &'a EntityKey) -> [&'a str; 5] {
        [&self.project, ":{", &entity.0, "}:", view]
    }

    /// Appends the Redis key of a row to `out`.
    fn write_key(&self, out: &mut String, view: &str, entity: &EntityKey) {
        for part in self.key_parts(view, entity) {
            out.push_str(part);
        }
    }

    /// `MGET` of the keys of `keys`, encoded in Redis's protocol, each key written straight
    /// into the command.
    fn mget_command(&self, keys: &[(&str, EntityKey)]) -> Vec<u8> {
        let per_key = self.project.len() + 16;
        let size = keys.iter().map(|(v, e)| v.len() + e.0.len() + per_key).sum::<usize>() + 32;
        let mut out = Vec::with_capacity(size);
        push_header(&mut out, b'*', keys.len() + 1);
        out.extend_from_slice(b"$4\r\nMGET\r\n");
        for (view, entity) in keys {
            push_header(&mut out, b'$', self.key_len(view, entity));
            for part in self.key_parts(view, entity) {
                out.extend_from_slice(part.as_bytes());
            }
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    async fn query<T: redis::FromRedisValue>(&self, pipe: &Pipeline) -> RedisResult<T> {
        match &self.conn {
            Conn::Single(c, _) => pipe.query_async(&mut c.clone()).await,
            Conn::Cluster(c) => pipe.query_async(&mut c.clone()).await,
        }
    }

    async fn command<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> RedisResult<T> {
        match &self.conn {
            Conn::Single(c, _) => cmd.query_async(&mut c.clone()).await,
            Conn::Cluster(c) => cmd.query_async(&mut c.clone()).await,
        }
    }

    async fn load_script(&self) -> Result<()> {
        // On a cluster the client sends SCRIPT LOAD to every node.
        let _: String = self.command(redis::cmd("SCRIPT").arg("LOAD").arg(NEWER_WINS)).await?;
        Ok(())
    }

    async fn write_batch(&self, rows: &[RowWrite]) -> Result<u64> {
        if let Conn::Cluster(_) = self.conn {
            // A script's keys must share a hash slot: one call per entity (all its views
            // share the slot), concurrently.
            let groups = group_by_entity(rows.iter().map(|r| &r.entity));
            let counts: Vec<u64> = futures::stream::iter(groups)
                .map(|idx| {
                    let part: Vec<&RowWrite> = idx.iter().map(|i| &rows[*i]).collect();
                    let pipe = self.write_pipeline(&[part]);
                    async move { self.run_writes(&pipe).await }
                })
                .buffer_unordered(64)
                .try_collect()
                .await?;
            return Ok(counts.iter().sum());
        }
        let calls: Vec<Vec<&RowWrite>> = rows.chunks(ROWS_PER_CALL).map(|c| c.iter().collect()).collect();
        self.run_writes(&self.write_pipeline(&calls)).await
    }

    /// One script call per group of rows, pipelined.
    fn write_pipeline(&self, calls: &[Vec<&RowWrite>]) -> Pipeline {
        let mut pipe = redis::pipe();
        for rows in calls {
            let cmd = pipe.cmd("EVALSHA").arg(self.script.get_hash()).arg(rows.len());
            for r in rows {
                cmd.arg(self.key(&r.view, &r.entity));
            }
            for r in rows {
                cmd.arg(&r.bytes).arg(r.expire_at_ms.map(|t| t.to_string()).unwrap_or_default());
            }
        }
        pipe
    }

    /// Runs a write pipeline (loading the script first where a node lacks it); returns the
    /// rows set.
    async fn run_writes(&self, pipe: &Pipeline) -> Result<u64> {
        let result: RedisResult<Vec<u64>> = match self.query(pipe).await {
            Err(e)
                if matches!(self.conn, Conn::Single(..))
                    && (e.is_connection_dropped() || e.is_io_error()) =>
            {
                // The managed connection finds out that the server closed it (a restart)
                // only when a command fails, and reads take connections of their own, so a
                // write may be the first to find out; it reconnects now. Sending the rows
                // again cannot move a value backwards: the script keeps the newer row.
                tracing::debug!(error = %e, store = %self.shown, "Redis connection dropped; writing again");
                self.query(pipe).await
            }
            other => other,
        };
        let counts = match result {
            Ok(c) => c,
            Err(e)
                if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript)
                    || e.to_string().contains("NOSCRIPT") =>
            {
                // A restarted or new node has not seen the script yet.
                self.load_script().await?;
                self.query(pipe).await?
            }
            Err(e) => return Err(e.into()),
        };
        Ok(counts.iter().sum())
    }

    /// The addresses of the cluster's primaries (or the single server).
    async fn primaries(&self) -> Result<Vec<String>> {
        match &self.conn {
            Conn::Single(..) => Ok(vec![self.url.clone()]),
            Conn::Cluster(_) => {
                let text: String = self.command(redis::cmd("CLUSTER").arg("NODES")).await?;
                let mut out = Vec::new();
                for line in text.lines() {
                    let parts: Vec<&str> = line.split_whitespace().collect();
                    if parts.len() > 2 && parts[2].contains("master") && !parts[2].contains("fail") {
                        let addr = parts[1].split('@').next().unwrap_or_default();
                        let scheme = if self.tls.is_some() { "rediss" } else { "redis" };
                        out.push(node_url(scheme, self.cluster_auth.as_deref(), addr));
                    }
                }
                if out.is_empty() {
                    return Err(Error::Unavailable("CLUSTER NODES lists no healthy primary".into()));
                }
                Ok(out)
            }
        }
    }
}

/// The hosts of a cluster url's list (`u:p@h1:1,h2:2`) without their credentials, and the
/// credentials that apply to every node: those of the first host that gives any. A
/// password written once applies to the whole cluster, as every node of a cluster shares
/// it; a host giving other credentials keeps them (and the cluster client refuses the mix).
fn cluster_hosts(list: &str) -> (Option<&str>, Vec<&str>) {
    let mut auth = None;
    let hosts = list
        .split(',')
        .map(|h| {
            let h = h.trim().trim_end_matches('/');
            match h.rsplit_once('@') {
                Some((given, _)) if auth.is_none() => {
                    auth = Some(given);
                    &h[given.len() + 1..]
                }
                Some((given, _)) if auth == Some(given) => &h[given.len() + 1..],
                _ => h,
            }
        })
        .collect();
    (auth, hosts)
}

/// The url of one cluster node (`host:port`, or `user:password@host:port`).
fn node_url(scheme: &str, auth: Option<&str>, host: &str) -> String {
    match auth {
        Some(auth) if !host.contains('@') => format!("{scheme}://{auth}@{host}"),
        _ => format!("{scheme}://{host}"),
    }
}

/// A client for one server, with the store's TLS trust.
fn client_for(url: &str, tls: &Option<Option<Vec<u8>>>) -> Result<redis::Client> {
    let client = match tls {
        Some(Some(ca)) => redis::Client::build_with_tls(
            url,
            redis::TlsCertificates { client_tls: None, root_cert: Some(ca.clone()) },
        ),
        _ => redis::Client::open(url),
    };
    // The url may hold a password: the error names the setting, not the url.
    client.map_err(|e| Error::Config(format!("the Redis url of online_store: {e}")))
}

/// A Redis url as it may be shown: the user and password of every host (`redis://:secret@h`,
/// `redis+cluster://u:p@h1:1,u:p@h2:2`) become `***`; the rest is kept so the host and
/// database stay recognisable.
pub fn masked_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        // Not a url at all: nothing in it can be told apart from a secret.
        return "(an unreadable url)".into();
    };
    // The hosts end at the first '/', '?' or '#' after the last '@': a password written
    // without percent-encoding may hold those characters itself.
    let from = rest.rfind('@').unwrap_or(0);
    let end = rest[from..].find(['/', '?', '#']).map_or(rest.len(), |i| from + i);
    let (hosts, path) = rest.split_at(end);
    let hosts: Vec<String> = hosts
        .split(',')
        .map(|h| match h.rfind('@') {
            Some(at) => format!("***{}", &h[at..]),
            None => h.to_string(),
        })
        .collect();
    // A query string may carry a password too (`?password=`): it is left out.
    let path = path.split(['?', '#']).next().unwrap_or_default();
    format!("{scheme}://{}{path}", hosts.join(","))
}

/// Indices grouped by entity, in first-seen order.
fn group_by_entity<'a>(entities: impl Iterator<Item = &'a EntityKey>) -> Vec<Vec<usize>> {
    let mut index: std::collections::HashMap<&'a str, usize> = std::collections::HashMap::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, e) in entities.enumerate() {
        let g = *index.entry(e.0.as_str()).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(i);
    }
    groups
}

#[async_trait]
impl OnlineStore for RedisStore {
    async fn write(&self, rows: &[RowWrite]) -> Result<u64> {
        if rows.is_empty() {
            return Ok(0);
        }
        let batches: Vec<Vec<RowWrite>> = rows.chunks(WRITE_BATCH).map(<[RowWrite]>::to_vec).collect();
        let written: Vec<u64> = futures::stream::iter(batches)
            .map(|chunk| {
                let me = self.clone();
                async move { me.write_batch(&chunk).await }
            })
            .buffer_unordered(WRITES_IN_FLIGHT)
            .try_collect()
            .await?;
        Ok(written.iter().sum())
    }

    async fn read(&self, keys: &[(&str, EntityKey)]) -> Result<Vec<Option<Vec<u8>>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        if let Conn::Cluster(_) = self.conn {
            let groups = group_by_entity(keys.iter().map(|(_, e)| e));
            let parts: Vec<(Vec<usize>, Vec<Option<Vec<u8>>>)> =
                futures::future::try_join_all(groups.into_iter().map(|idx| async move {
                    let mut pipe = redis::pipe();
                    for i in &idx {
                        pipe.cmd("GET").arg(self.key(keys[*i].0, &keys[*i].1));
                    }
                    let got: Vec<Option<Vec<u8>>> = self.query(&pipe).await?;
                    Ok::<_, Error>((idx, got))
                }))
                .await?;
            let mut out = vec![None; keys.len()];
            for (idx, got) in parts {
                for (i, v) in idx.into_iter().zip(got) {
                    out[i] = v;
                }
            }
            return Ok(out);
        }
        // One MGET: Redis looks the keys up in one command rather than one per key.
        if let Conn::Single(_, Some(reads)) = &self.conn {
            return reads.mget(&self.mget_command(keys), keys.len()).await;
        }
        // The keys are written into the command's buffer through one reused string.
        let mut mget = redis::cmd("MGET");
        let mut key = String::new();
        for (view, entity) in keys {
            key.clear();
            self.write_key(&mut key, view, entity);
            mget.arg(key.as_str());
        }
        Ok(self.command(&mget).await?)
    }

    async fn delete_view(&self, view: &str) -> Result<u64> {
        let pattern = format!("{}:{{*}}:{view}", self.project);
        let mut removed = 0u64;
        for node in self.primaries().await? {
            // Keys live on the node that owns their slot: scan and unlink on each primary
            // directly.
            let client = client_for(&node, &self.tls)?;
            let mut conn = client.get_multiplexed_async_connection().await?;
            let mut cursor: u64 = 0;
            loop {
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(&mut conn)
                    .await?;
                if !keys.is_empty() {
                    // One UNLINK per key: keys of different slots cannot share a command.
                    let mut pipe = redis::pipe();
                    for k in &keys {
                        pipe.cmd("UNLINK").arg(k);
                    }
                    let counts: Vec<u64> = pipe.query_async(&mut conn).await?;
                    removed += counts.iter().sum::<u64>();
                }
                cursor = next;
                if cursor == 0 {
                    break;
                }
            }
        }
        Ok(removed)
    }

    fn describe(&self) -> String {
        self.shown.clone()
    }
}

/// How the single-node connection reconnects: a refused connection is retried twice
/// within a third of a second, then the call fails (UNAVAILABLE at once rather than after
/// the client's default of six retries, about nine seconds); a server that accepts slowly
/// gets two seconds per attempt. The next call starts reconnecting again.
fn manager_config() -> redis::aio::ConnectionManagerConfig {
    redis::aio::ConnectionManagerConfig::new()
        .set_number_of_retries(2)
        .set_min_delay(std::time::Duration::from_millis(100))
        .set_max_delay(std::time::Duration::from_secs(1))
        .set_connection_timeout(Some(std::time::Duration::from_secs(2)))
}

#[cfg(test)]
mod tests {
    use super::{cluster_hosts, masked_url, node_url};

    #[test]
    fn cluster_credentials_written_once_apply_to_every_node() {
        let (auth, hosts) = cluster_hosts("u:p%2C@h1:1, h2:2/,u:p%2C@h3:3");
        assert_eq!((auth, hosts.clone()), (Some("u:p%2C"), vec!["h1:1", "h2:2", "h3:3"]));
        let urls: Vec<String> = hosts.iter().map(|h| node_url("redis", auth, h)).collect();
        assert_eq!(urls, ["redis://u:p%2C@h1:1", "redis://u:p%2C@h2:2", "redis://u:p%2C@h3:3"]);
        // Credentials first given on a later host still apply to all; other credentials on
        // a host are kept as given.
        let (auth, hosts) = cluster_hosts("h1:1,:secret@h2:2,:other@h3:3");
        assert_eq!((auth, hosts.clone()), (Some(":secret"), vec!["h1:1", "h2:2", ":other@h3:3"]));
        assert_eq!(node_url("rediss", auth, hosts[2]), "rediss://:other@h3:3");
        assert_eq!(cluster_hosts("h1:1,h2:2"), (None, vec!["h1:1", "h2:2"]));
        assert_eq!(node_url("redis", None, "h1:1"), "redis://h1:1");
    }

    #[test]
    fn urls_are_shown_without_their_credentials() {
        assert_eq!(masked_url("redis://127.0.0.1:6379/0"), "redis://127.0.0.1:6379/0");
        assert_eq!(masked_url("redis://:s3cret@cache:6379/2"), "redis://***@cache:6379/2");
        assert_eq!(masked_url("rediss://user:p@ss/w?rd@cache/0"), "rediss://***@cache/0");
        assert_eq!(
            masked_url("redis+cluster://u:one@h1:7000,u:two@h2:7001"),
            "redis+cluster://***@h1:7000,***@h2:7001"
        );
        assert_eq!(masked_url("redis://cache/0?password=hunter2"), "redis://cache/0");
        assert_eq!(masked_url("no-scheme:hunter2"), "(an unreadable url)");
        for url in
            ["redis://:hunter2@h/0", "redis://a:hunter2@h1,b:hunter2@h2", "redis://h/0?password=hunter2"]
        {
            assert!(!masked_url(url).contains("hunter2"), "{url}");
        }
    }
}
