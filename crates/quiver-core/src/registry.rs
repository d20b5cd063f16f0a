//! The versioned registry: every applied set of definitions, kept forever, one immutable
//! JSON document per version under `versions/` at the registry location.
//!
//! Why this layout:
//! - A version is written once with a create-only put (`PutMode::Create`). Two writers that
//!   both read version N race to create N+1; the object store lets exactly one win and the
//!   other gets [`Error::Conflict`]. That is the compare-and-swap: no lock, no lost update,
//!   and it works the same on a local disk and on S3.
//! - Each document holds the whole definitions, not a delta, so reading any version is one
//!   GET and a damaged file only affects itself; the registry stays small (kilobytes a version).
//! - Each object carries a SHA-256 of its canonical JSON. Reading a version recomputes them:
//!   a file that was truncated or edited by hand is reported as corrupt, never silently used
//!   and never replaced by a fresh history.
//!
//! Operational state (materialization watermarks, run history) lives in the offline store
//! ([`crate::state`]); a registry's `state/` prefix is only read, for views whose state has
//! not been saved there yet ([`crate::state::StateStore::reading_registry`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;

use crate::definitions::Definitions;
use crate::diff::{Action, diff};
use crate::error::{Error, Result};
use crate::storage::{StoreLocation, open_location};

/// Layout version of a snapshot document; bumped when the document changes shape.
pub const SNAPSHOT_FORMAT: u32 = 1;

/// What changed in a version compared with the one before, as `section/name` keys.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeSummary {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
}

/// One registry version: the complete definitions as applied.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub format: u32,
    pub project: String,
    pub version: u64,
    pub applied_at: DateTime<Utc>,
    /// Who applied it (user name or client identity), for the history.
    pub applied_by: String,
    pub summary: ChangeSummary,
    /// Content hash per object, keyed `section/name`.
    pub hashes: BTreeMap<String, String>,
    /// Hash over all object hashes: equal definitions have equal hashes.
    pub definitions_hash: String,
    pub definitions: Definitions,
}

/// Result of [`Registry::apply`].
#[derive(Clone, Debug, PartialEq)]
pub enum ApplyOutcome {
    /// The definitions equal the current version's; nothing was written.
    Unchanged { version: u64 },
    /// A new version was written.
    Applied(Box<Snapshot>),
}

/// `applied_by` as a snapshot records it: control characters dropped, at most
/// [`APPLIED_BY_MAX_CHARS`] characters kept. Every writer's name passes through it, whether it
/// came from a gRPC request, a token's name or the CLI's environment.
pub fn bounded_applied_by(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(APPLIED_BY_MAX_CHARS).collect()
}

/// The most characters of `applied_by` a snapshot keeps.
pub const APPLIED_BY_MAX_CHARS: usize = 64;

/// Hash over the per-object hashes, in key order.
pub fn definitions_hash(hashes: &BTreeMap<String, String>) -> String {
    let mut h = Sha256::new();
    for (k, v) in hashes {
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.as_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())
}

/// A project's registry at a path or object store URL.
#[derive(Clone, Debug)]
pub struct Registry {
    location: StoreLocation,
    project: String,
}

impl Registry {
    /// Opens (without reading) the registry at `url` for `project`.
    pub fn open(url: &url::Url, project: &str) -> Result<Self> {
        // Versions are created only if absent (the compare-and-swap of apply): a store that
        // cannot do that is refused rather than risk two writers both making version N.
        crate::storage::check_create_only(url)
            .map_err(|e| crate::Error::InvalidArgument(format!("registry {e}")))?;
        Ok(Registry { location: open_location(url)?, project: project.to_string() })
    }

    /// A registry over an existing store, e.g. a shared in-memory store in tests.
    pub fn with_store(store: Arc<dyn ObjectStore>, prefix: ObjectPath, url: url::Url, project: &str) -> Self {
        Registry { location: StoreLocation { store, prefix, url }, project: project.to_string() }
    }

    pub fn url(&self) -> &url::Url {
        &self.location.url
    }

    pub fn project(&self) -> &str {
        &self.project
    }

    fn versions_dir(&self) -> ObjectPath {
        self.location.prefix.clone().join("versions")
    }

    fn version_path(&self, version: u64) -> ObjectPath {
        self.versions_dir().join(format!("v{version:020}.json"))
    }

    /// The store and the prefix (`state/`) where view states are read from when the offline
    /// store has none yet ([`crate::state::StateStore::reading_registry`]).
    pub fn state_location(&self) -> (Arc<dyn ObjectStore>, ObjectPath) {
        (self.location.store.clone(), self.location.prefix.clone().join("state"))
    }

    /// Every version number present, ascending.
    pub async fn versions(&self) -> Result<Vec<u64>> {
        let dir = self.versions_dir();
        let metas: Vec<object_store::ObjectMeta> = self
            .location
            .store
            .list(Some(&dir))
            .try_collect()
            .await
            .map_err(|e| Error::storage(&self.location.url, e))?;
        let mut versions: Vec<u64> = metas
            .iter()
            .filter_map(|m| m.location.filename())
            .filter_map(|name| name.strip_prefix('v')?.strip_suffix(".json")?.parse().ok())
            .collect();
        versions.sort_unstable();
        Ok(versions)
    }

    /// The latest version, or `None` for a registry nothing was applied to yet.
    pub async fn head(&self) -> Result<Option<Snapshot>> {
        match self.versions().await?.last() {
            Some(&v) => Ok(Some(self.get(v).await?)),
            None => Ok(None),
        }
    }

    /// The latest version number (0 when empty).
    pub async fn head_version(&self) -> Result<u64> {
        Ok(self.versions().await?.last().copied().unwrap_or(0))
    }

    /// Whether version `version` exists: one HEAD request (one `stat` on a local disk), far
    /// cheaper than listing every version. Versions are created one after another from 1
    /// and never deleted, so a reader holding version N learns of newer ones by asking for
    /// N + 1.
    pub async fn has_version(&self, version: u64) -> Result<bool> {
        match self.location.store.head(&self.version_path(version)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(Error::storage(&self.location.url, e)),
        }
    }

    /// Reads one version and checks it is intact.
    pub async fn get(&self, version: u64) -> Result<Snapshot> {
        let path = self.version_path(version);
        let shown = format!(
            "{}/{}",
            self.location.url.as_str().trim_end_matches('/'),
            path_suffix(&path, &self.location.prefix)
        );
        let bytes = match self.location.store.get(&path).await {
            Ok(r) => r.bytes().await.map_err(|e| Error::storage(&shown, e))?,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(Error::NotFound {
                    kind: "registry version",
                    name: version.to_string(),
                    hint: String::new(),
                });
            }
            Err(e) => return Err(Error::storage(&shown, e)),
        };
        let corrupt = |reason: String| Error::CorruptRegistry { location: shown.clone(), reason };
        let snapshot: Snapshot = serde_json::from_slice(&bytes)
            .map_err(|e| corrupt(format!("not a readable registry document ({e})")))?;
        if snapshot.format != SNAPSHOT_FORMAT {
            return Err(corrupt(format!(
                "document format {} is not understood by this Quiver (expects {SNAPSHOT_FORMAT}); upgrade Quiver",
                snapshot.format
            )));
        }
        if snapshot.version != version {
            return Err(corrupt(format!(
                "the file is named version {version} but holds version {}",
                snapshot.version
            )));
        }
        if snapshot.project != self.project {
            return Err(Error::ProjectMismatch {
                location: self.location.url.to_string(),
                expected: self.project.clone(),
                found: snapshot.project,
            });
        }
        let hashes = snapshot.definitions.hashes();
        if hashes != snapshot.hashes || definitions_hash(&hashes) != snapshot.definitions_hash {
            let bad: Vec<&String> = hashes
                .keys()
                .chain(snapshot.hashes.keys())
                .filter(|k| hashes.get(*k) != snapshot.hashes.get(*k))
                .collect();
            return Err(corrupt(format!("content does not match its hashes (objects: {bad:?})")));
        }
        Ok(snapshot)
    }

    /// Every version, oldest first.
    pub async fn history(&self) -> Result<Vec<Snapshot>> {
        let mut out = Vec::new();
        for v in self.versions().await? {
            out.push(self.get(v).await?);
        }
        Ok(out)
    }

    /// Applies `definitions` if the registry is still at `expected_version` (0 = empty).
    ///
    /// Unchanged definitions write nothing. Otherwise version `expected_version + 1` is
    /// created; if another writer created it first, or the registry had already moved on,
    /// the result is [`Error::Conflict`] and nothing is written.
    pub async fn apply(
        &self,
        definitions: &Definitions,
        expected_version: u64,
        applied_by: &str,
    ) -> Result<ApplyOutcome> {
        let head = self.head().await?;
        let found = head.as_ref().map_or(0, |h| h.version);
        if found != expected_version {
            return Err(Error::Conflict { expected: expected_version, found });
        }
        let mut definitions = definitions.clone();
        definitions.sort();
        let hashes = definitions.hashes();
        if let Some(h) = &head
            && h.hashes == hashes
        {
            return Ok(ApplyOutcome::Unchanged { version: h.version });
        }
        let empty = Definitions::default();
        let before = head.as_ref().map_or(&empty, |h| &h.definitions);
        let mut summary = ChangeSummary::default();
        for change in diff(before, &definitions) {
            let key = format!("{}/{}", change.kind.section(), change.name);
            match change.action {
                Action::Added => summary.added.push(key),
                Action::Changed => summary.changed.push(key),
                Action::Removed => summary.removed.push(key),
            }
        }
        let version = found + 1;
        let snapshot = Snapshot {
            format: SNAPSHOT_FORMAT,
            project: self.project.clone(),
            version,
            applied_at: Utc::now(),
            applied_by: bounded_applied_by(applied_by),
            summary,
            definitions_hash: definitions_hash(&hashes),
            hashes,
            definitions,
        };
        let body = serde_json::to_vec_pretty(&snapshot)
            .map_err(|e| Error::Internal(format!("serializing snapshot: {e}")))?;
        let opts = PutOptions { mode: PutMode::Create, ..Default::default() };
        match self.location.store.put_opts(&self.version_path(version), PutPayload::from(body), opts).await {
            Ok(_) => Ok(ApplyOutcome::Applied(Box::new(snapshot))),
            Err(object_store::Error::AlreadyExists { .. }) => {
                Err(Error::Conflict { expected: expected_version, found: version })
            }
            Err(e) => Err(Error::storage(&self.location.url, e)),
        }
    }
}

fn path_suffix(path: &ObjectPath, prefix: &ObjectPath) -> String {
    match path.prefix_match(prefix) {
        Some(parts) => parts.map(|p| p.as_ref().to_string()).collect::<Vec<_>>().join("/"),
        None => path.to_string(),
    }
}
