//! Training sets built for network clients: the spine arrives as Arrow batches, is written
//! to a Parquet file in the server's work folder, and goes through the same builder as
//! `quiver historical` (same plan, same manifest). Each set is built in a folder of its own,
//! `training_sets/<id>/`; a set returned in the same call (gRPC) is streamed from there and
//! deleted, a set kept for Flight `DoGet` moves to the offline store with its manifest,
//! where every server sharing that store can serve it until its ticket expires.
//!
//! A set's id is its Flight ticket, so it must not be guessable: `ts-` and 128 random bits;
//! nothing else about the server is in it. When the server checks tokens, a set belongs to
//! the token that uploaded its spine and only that token can fetch it; every set expires
//! after the ticket lifetime (one hour by default) and is then deleted. An unknown, expired
//! and someone else's ticket all get the same NOT_FOUND.
//!
//! The work folder may be a user's own folder: the server takes an exclusive lock on it
//! (`.quiver-serve.lock`, so two servers never share one) and deletes only folders it made —
//! named `ts-<32 hex digits>` and holding its marker file — and only once it serves.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use futures::{Stream, StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parquet::arrow::ArrowWriter;
use parquet::arrow::ParquetRecordBatchStreamBuilder;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::errors::ParquetError;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use quiver_offline::store::OfflineStore;
use quiver_offline::training::{Manifest, TrainingSetRequest};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::project::Project;
use super::{Error, Result};

/// Rows per batch when a training set is read back for a client.
const BATCH_ROWS: usize = 8192;
/// The file in each set's folder that says Quiver made it.
const MARKER: &str = ".quiver-training-set";
/// A kept set's data, manifest and record in the offline store.
const DATA_FILE: &str = "training_set.parquet";
const MANIFEST_FILE: &str = "manifest.json";
const RECORD_FILE: &str = "set.json";
/// The lock file that gives one server the work folder.
const LOCK_FILE: &str = ".quiver-serve.lock";
/// How long a set can be fetched, unless the server is told otherwise.
pub const DEFAULT_TICKET_TTL: Duration = Duration::from_secs(3600);

/// What to retrieve, as a Flight `DoPut` command (JSON) or from a gRPC request.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingSpec {
    #[serde(default)]
    pub features: Vec<String>,
    #[serde(default)]
    pub feature_service: Option<String>,
    #[serde(default)]
    pub full_feature_names: bool,
    #[serde(default)]
    pub timestamp_column: Option<String>,
}

/// One item of an uploaded spine: its schema (first, or alone for an empty spine), then its
/// batches. gRPC sends the whole spine in one message, Flight streams it; both arrive here as
/// these items.
pub enum SpineItem {
    Schema(SchemaRef),
    Batch(RecordBatch),
}

/// Bounds on one upload.
#[derive(Clone, Copy, Debug)]
pub struct UploadLimits {
    /// Most rows the spine may hold.
    pub max_rows: u64,
    /// An upload that sends nothing for this long is ended.
    pub idle: Duration,
}

/// A spine being written to disk as it arrives.
struct SpineFile {
    path: PathBuf,
    writer: ArrowWriter<File>,
    rows: u64,
    max_rows: u64,
}

impl SpineFile {
    fn create(path: PathBuf, schema: SchemaRef, max_rows: u64) -> Result<Self> {
        let file = File::create(&path).map_err(|e| Error::Disk(format!("storing the spine: {e}")))?;
        let writer = ArrowWriter::try_new(file, schema, None)
            .map_err(|e| Error::Invalid(format!("the spine's schema cannot be stored: {e}")))?;
        Ok(SpineFile { path, writer, rows: 0, max_rows })
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.rows += batch.num_rows() as u64;
        if self.rows > self.max_rows {
            return Err(Error::Limit(format!(
                "the spine has more than {} rows, the server's limit (max_spine_rows); split it",
                self.max_rows
            )));
        }
        self.writer.write(batch).map_err(|e| Error::Invalid(format!("spine batch cannot be stored: {e}")))
    }

    fn finish(self) -> Result<PathBuf> {
        self.writer.close().map_err(|e| Error::Disk(format!("storing the spine: {e}")))?;
        Ok(self.path)
    }
}

/// A built training set.
pub struct BuiltSet {
    pub id: String,
    pub output: PathBuf,
    pub manifest: Manifest,
}

/// What a kept set's `set.json` says: written after its data, so a set without it is
/// unfinished (or being deleted) and cannot be fetched.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetRecord {
    id: String,
    /// The token name that uploaded the spine (`None` when the server checks no tokens).
    owner: Option<String>,
    built_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    rows: u64,
}

/// A kept set that a caller may fetch.
pub struct StoredSet {
    pub rows: u64,
    data: ObjectPath,
}

/// A Parquet file in an object store, read by ranges as the Parquet reader asks.
struct StoreFile {
    store: Arc<dyn ObjectStore>,
    path: ObjectPath,
    size: u64,
}

impl AsyncFileReader for StoreFile {
    fn get_bytes(
        &mut self,
        range: std::ops::Range<u64>,
    ) -> futures::future::BoxFuture<'_, parquet::errors::Result<bytes::Bytes>> {
        Box::pin(async move {
            self.store.get_range(&self.path, range).await.map_err(|e| ParquetError::External(Box::new(e)))
        })
    }

    fn get_metadata<'a>(
        &'a mut self,
        _: Option<&'a parquet::arrow::arrow_reader::ArrowReaderOptions>,
    ) -> futures::future::BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        Box::pin(async move {
            let size = self.size;
            ParquetMetaDataReader::new().load_and_finish(self, size).await.map(Arc::new)
        })
    }
}

/// Training sets: built in the server's work folder, kept in the offline store.
///
/// The work folder is scratch (spines as they arrive, sets being built). A set kept for
/// Flight `DoGet` is copied to the offline store, `.quiver/training_sets/<id>/` (the data,
/// its manifest as the client received it, then `set.json` with its owner and expiry), so
/// any server sharing the offline store can serve it; the local copy is deleted. Expired sets are deleted by whichever server meets
/// them first: on a fetch, or in the sweep every server runs.
pub struct TrainingSets {
    root: PathBuf,
    ticket_ttl: Duration,
    /// The offline store and `<root>/.quiver/training_sets` in it.
    shared: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    /// Held for the server's life: the work folder's exclusive lock.
    _lock: File,
}

/// Whether `name` has the shape of a set id: `ts-` and 32 lowercase hex digits.
fn is_set_id(name: &str) -> bool {
    name.strip_prefix("ts-").is_some_and(|hex| {
        hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

fn shared_error(what: &str, e: object_store::Error) -> Error {
    Error::StoreDown(format!("{what} in the offline store: {e}"))
}

impl TrainingSets {
    /// Takes the work folder (refused when another server holds it); deletes nothing.
    /// Kept sets go to `offline`'s `.quiver/training_sets/`.
    pub fn open(work_dir: &Path, offline: &OfflineStore, ticket_ttl: Duration) -> Result<Self> {
        let root = work_dir.join("training_sets");
        std::fs::create_dir_all(&root)
            .map_err(|e| Error::NotReady(format!("work folder {}: {e}", root.display())))?;
        let lock_path = work_dir.join(LOCK_FILE);
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::NotReady(format!("{}: {e}", lock_path.display())))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::NotReady(format!(
                    "the work folder {} is in use by another `quiver serve`; give each server its own --work-dir",
                    work_dir.display()
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(Error::NotReady(format!("locking {}: {e}", lock_path.display())));
            }
        }
        let (shared, base) = offline.objects()?;
        let prefix = base.join(".quiver").join("training_sets");
        Ok(TrainingSets { root, ticket_ttl, shared, prefix, _lock: lock })
    }

    /// Deletes the sets an earlier run of a server left in the work folder (they can no
    /// longer be fetched): folders named like a set id that hold the marker file, nothing
    /// else. Called once the server owns its port, before it builds any set.
    pub fn clear_leftovers(&self) {
        let Ok(entries) = std::fs::read_dir(&self.root) else { return };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if is_set_id(&name)
                && path.join(MARKER).is_file()
                && let Err(e) = std::fs::remove_dir_all(&path)
            {
                tracing::warn!(path = %path.display(), error = %e, "cannot delete an old training set");
            }
        }
    }

    /// A new, empty work folder for one set; its id is 128 random bits.
    fn allocate(&self) -> Result<(String, PathBuf)> {
        let mut bits = [0u8; 16];
        getrandom::fill(&mut bits)
            .map_err(|e| Error::Internal(format!("no random numbers for a training set id: {e}")))?;
        let id = format!("ts-{}", hex::encode(bits));
        let dir = self.root.join(&id);
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::Disk(format!("creating a training set folder: {e}")))?;
        File::create(dir.join(MARKER))
            .map_err(|e| Error::Disk(format!("creating a training set folder: {e}")))?;
        Ok((id, dir))
    }

    fn set_prefix(&self, id: &str) -> ObjectPath {
        self.prefix.clone().join(id)
    }

    /// Copies a built set and its manifest to the offline store for `DoGet` from any
    /// server, then deletes the local copy. Its ticket lifetime counts from now.
    async fn publish(&self, set: &BuiltSet, owner: Option<String>) -> Result<()> {
        let base = self.set_prefix(&set.id);
        let data = base.clone().join(DATA_FILE);
        let mut file = tokio::fs::File::open(&set.output)
            .await
            .map_err(|e| Error::Disk(format!("reading the built training set: {e}")))?;
        let mut upload = object_store::buffered::BufWriter::new(self.shared.clone(), data);
        let copied = tokio::io::copy(&mut file, &mut upload).await;
        let closed = match copied {
            Ok(_) => tokio::io::AsyncWriteExt::shutdown(&mut upload).await,
            Err(e) => {
                let _ = upload.abort().await;
                Err(e)
            }
        };
        closed
            .map_err(|e| Error::StoreDown(format!("storing the training set in the offline store: {e}")))?;
        let manifest = serde_json::to_vec_pretty(&set.manifest)
            .map_err(|e| Error::Internal(format!("encoding a training set manifest: {e}")))?;
        self.shared
            .put(&base.clone().join(MANIFEST_FILE), PutPayload::from(manifest))
            .await
            .map_err(|e| shared_error("storing the training set manifest", e))?;
        let built_at = Utc::now();
        let record = SetRecord {
            id: set.id.clone(),
            owner,
            built_at,
            expires_at: built_at
                + chrono::Duration::from_std(self.ticket_ttl).unwrap_or(chrono::Duration::MAX),
            rows: set.manifest.output_rows,
        };
        let body = serde_json::to_vec_pretty(&record)
            .map_err(|e| Error::Internal(format!("encoding a training set record: {e}")))?;
        self.shared
            .put(&base.join(RECORD_FILE), PutPayload::from(body))
            .await
            .map_err(|e| shared_error("storing the training set record", e))?;
        self.remove(&set.id);
        Ok(())
    }

    /// Deletes a set's local work folder.
    pub fn remove(&self, id: &str) {
        let _ = std::fs::remove_dir_all(self.root.join(id));
    }

    /// Deletes a kept set from the offline store: its record first (so it can no longer be
    /// fetched), then its data and manifest.
    async fn delete_shared(&self, id: &str) {
        let base = self.set_prefix(id);
        for name in [RECORD_FILE, DATA_FILE, MANIFEST_FILE] {
            match self.shared.delete(&base.clone().join(name)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => tracing::warn!(set = id, error = %e, "cannot delete an expired training set"),
            }
        }
    }

    async fn record(&self, id: &str) -> Result<Option<SetRecord>> {
        let path = self.set_prefix(id).join(RECORD_FILE);
        let bytes = match self.shared.get(&path).await {
            Ok(got) => got.bytes().await.map_err(|e| shared_error("reading a training set record", e))?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(shared_error("reading a training set record", e)),
        };
        // Written by a server, never by a client; unreadable means not Quiver's (or damaged).
        Ok(serde_json::from_slice(&bytes).ok())
    }

    /// A kept, unexpired set that `caller` may fetch; NotFound (the same for an unknown,
    /// expired or someone else's ticket) otherwise. An expired set met here is deleted.
    pub async fn fetch(&self, ticket: &[u8], caller: Option<&str>) -> Result<StoredSet> {
        let not_found = || {
            Error::NotFound(
                "no training set with this ticket for this caller (unknown, expired, or uploaded \
                 with another token)"
                    .into(),
            )
        };
        // Only the shape of an id is looked up, so a ticket cannot name a path.
        let id = std::str::from_utf8(ticket).ok().filter(|id| is_set_id(id)).ok_or_else(not_found)?;
        let record = self.record(id).await?.filter(|r| r.id == id).ok_or_else(not_found)?;
        if record.expires_at <= Utc::now() {
            self.delete_shared(id).await;
            return Err(not_found());
        }
        if record.owner.is_some() && record.owner.as_deref() != caller {
            return Err(not_found());
        }
        Ok(StoredSet { rows: record.rows, data: self.set_prefix(id).join(DATA_FILE) })
    }

    /// The schema of a kept set (from its file's footer) and its batches, read from the
    /// offline store as they are sent.
    pub async fn open_stream(
        &self,
        set: &StoredSet,
    ) -> Result<(SchemaRef, impl Stream<Item = Result<RecordBatch>> + Send + use<>)> {
        let gone = |e: parquet::errors::ParquetError| {
            Error::StoreDown(format!("reading the training set from the offline store: {e}"))
        };
        let size =
            self.shared.head(&set.data).await.map_err(|e| shared_error("reading the training set", e))?.size;
        let reader = StoreFile { store: self.shared.clone(), path: set.data.clone(), size };
        let builder = ParquetRecordBatchStreamBuilder::new(reader).await.map_err(gone)?;
        let schema = builder.schema().clone();
        let stream = builder.with_batch_size(BATCH_ROWS).build().map_err(gone)?;
        Ok((schema, stream.map(move |b| b.map_err(gone))))
    }

    /// Deletes every kept set whose ticket expired, and data left without a record (a
    /// server that died while storing it) once it is older than the ticket lifetime.
    pub async fn sweep(&self) -> Result<usize> {
        let listed: Vec<object_store::ObjectMeta> = self
            .shared
            .list(Some(&self.prefix))
            .try_collect()
            .await
            .map_err(|e| shared_error("listing training sets", e))?;
        let mut ids: HashMap<String, DateTime<Utc>> = HashMap::new();
        for meta in &listed {
            if let Some(id) = meta.location.prefix_match(&self.prefix).and_then(|mut p| p.next())
                && is_set_id(id.as_ref())
            {
                let newest = ids.entry(id.as_ref().to_string()).or_insert(meta.last_modified);
                *newest = (*newest).max(meta.last_modified);
            }
        }
        let now = Utc::now();
        let ttl = chrono::Duration::from_std(self.ticket_ttl).unwrap_or(chrono::Duration::MAX);
        let mut deleted = 0;
        for (id, modified) in ids {
            let expired = match self.record(&id).await? {
                Some(r) => r.expires_at <= now,
                None => modified + ttl <= now,
            };
            if expired {
                self.delete_shared(&id).await;
                deleted += 1;
            }
        }
        Ok(deleted)
    }

    /// How often [`TrainingSets::sweep`] runs: a quarter of the ticket lifetime, between
    /// one second and a minute.
    pub fn sweep_every(&self) -> Duration {
        (self.ticket_ttl / 4).clamp(Duration::from_secs(1), Duration::from_secs(60))
    }
}

impl Project {
    /// Builds a training set from an uploaded spine: the spine is written to a fresh folder
    /// of its own as it arrives (bounded in rows, each item awaited at most `limits.idle`),
    /// then goes through the same builder as `quiver historical`. With `keep`, the set stays
    /// for Flight `DoGet` until its ticket expires; otherwise the caller reads it and calls
    /// [`TrainingSets::remove`]. A failed upload or build leaves nothing behind.
    pub async fn build_training_set<S>(
        &self,
        owner: Option<String>,
        spec: &TrainingSpec,
        spine: S,
        limits: UploadLimits,
        keep: bool,
    ) -> Result<BuiltSet>
    where
        S: Stream<Item = Result<SpineItem>> + Send,
    {
        let started = std::time::Instant::now();
        // The features are resolved before anything is stored.
        let snapshot = self.require_current()?;
        let features =
            snapshot.definitions.resolve_features(spec.feature_service.as_deref(), &spec.features)?;
        let sets = self.training();
        let (id, dir) = sets.allocate()?;
        let built = async {
            let spine_path = receive_spine(spine, dir.join("spine.parquet"), limits).await?;
            let output = dir.join("training_set.parquet");
            let request = TrainingSetRequest {
                spine: spine_path,
                out: output.clone(),
                features,
                feature_service: spec.feature_service.clone(),
                full_feature_names: spec.full_feature_names,
                timestamp_column: spec
                    .timestamp_column
                    .clone()
                    .filter(|c| !c.is_empty())
                    .unwrap_or_else(|| "event_timestamp".into()),
                table_versions: Default::default(),
                // The set's own fresh folder; the spine is still never overwritten.
                overwrite: true,
            };
            let offline_root = self.config().offline_store.as_str();
            let manifest = quiver_offline::training::build_on(
                self.engine(),
                self.lake().session(),
                &snapshot,
                self.offline(),
                &request,
            )
            .await
            .map_err(|e| without_server_paths(e.into(), &dir, offline_root))?;
            Ok(BuiltSet { id: id.clone(), output, manifest: for_client(manifest, offline_root) })
        }
        .await;
        match built {
            Ok(set) => {
                tracing::info!(
                    set = %set.id,
                    rows = set.manifest.output_rows,
                    views = set.manifest.views.len(),
                    seconds = started.elapsed().as_secs_f64(),
                    "training set built"
                );
                if keep && let Err(e) = sets.publish(&set, owner).await {
                    sets.remove(&set.id);
                    return Err(e);
                }
                Ok(set)
            }
            Err(e) => {
                sets.remove(&id);
                Err(e)
            }
        }
    }
}

/// Writes an uploaded spine to `path` as it arrives; returns the path.
async fn receive_spine<S>(spine: S, path: PathBuf, limits: UploadLimits) -> Result<PathBuf>
where
    S: Stream<Item = Result<SpineItem>> + Send,
{
    let idle = limits.idle;
    let stalled = || {
        Error::Timeout(format!(
            "the upload sent nothing for {idle:?} (the upload idle timeout); send the spine without pauses"
        ))
    };
    let mut spine = std::pin::pin!(spine);
    let mut schema: Option<SchemaRef> = None;
    let mut file: Option<SpineFile> = None;
    while let Some(item) = tokio::time::timeout(idle, spine.next()).await.map_err(|_| stalled())? {
        match item? {
            SpineItem::Schema(s) => schema = Some(s),
            SpineItem::Batch(batch) => {
                let f = match file.as_mut() {
                    Some(f) => f,
                    None => file.insert(SpineFile::create(path.clone(), batch.schema(), limits.max_rows)?),
                };
                f.write(&batch)?;
            }
        }
    }
    let file = match (file, schema) {
        (Some(f), _) => f,
        (None, Some(schema)) => SpineFile::create(path, schema, limits.max_rows)?,
        (None, None) => return Err(Error::Invalid("the spine stream carried no schema".into())),
    };
    file.finish()
}

/// The error with the server's folders taken out of its message (a spine that cannot be
/// read names its file; a table that cannot be read names its location): the client sees
/// the same relative names as in its manifest. The kind of error stays.
fn without_server_paths(error: Error, set_dir: &Path, offline_root: &str) -> Error {
    let offline = offline_root.trim_end_matches('/');
    let mut message = error.to_string().replace(&format!("{}/", set_dir.display()), "");
    message = message.replace(offline, "offline_store");
    if let Some(local) = offline.strip_prefix("file://") {
        message = message.replace(local, "offline_store");
    }
    Error::Reworded { kind: Box::new(error), message }
}

/// The manifest as a client sees it: no path on the server. The spine and the output are
/// named by their file names in the set's folder, each table by its place in the offline
/// store.
fn for_client(mut manifest: Manifest, offline_root: &str) -> Manifest {
    let file_name =
        |p: &str| Path::new(p).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    manifest.spine_path = file_name(&manifest.spine_path);
    manifest.output_path = file_name(&manifest.output_path);
    for view in &mut manifest.views {
        let relative = view.table.strip_prefix(offline_root).unwrap_or(&view.name).trim_matches('/');
        view.table = format!("offline_store/{relative}");
    }
    manifest
}

/// Reads a training set file back as batches, on a blocking thread, into a channel.
pub fn read_batches(path: PathBuf) -> mpsc::Receiver<Result<RecordBatch>> {
    let (tx, rx) = mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        let reader = File::open(&path)
            .map_err(|e| Error::NotFound(format!("the training set file is gone: {e}")))
            .and_then(|f| {
                ParquetRecordBatchReaderBuilder::try_new(f)
                    .and_then(|b| b.with_batch_size(BATCH_ROWS).build())
                    .map_err(|e| Error::Disk(format!("reading the training set: {e}")))
            });
        let reader = match reader {
            Ok(r) => r,
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        };
        for batch in reader {
            let item = batch.map_err(|e| Error::Disk(format!("reading the training set: {e}")));
            if tx.blocking_send(item).is_err() {
                return; // the client went away
            }
        }
    });
    rx
}

/// The schema and row count of a training set file (from its footer).
pub fn file_info(path: &Path) -> Result<(SchemaRef, i64)> {
    let file =
        File::open(path).map_err(|e| Error::NotFound(format!("the training set file is gone: {e}")))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| Error::Disk(format!("reading the training set: {e}")))?;
    Ok((builder.schema().clone(), builder.metadata().file_metadata().num_rows()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_ids_are_recognised_by_shape_only() {
        assert!(is_set_id(&format!("ts-{}", "0123456789abcdef".repeat(2))));
        assert!(!is_set_id("ts-20260101T000000.000-1"), "the old clock-based ids are not ours to delete");
        assert!(!is_set_id(&format!("ts-{}", "A".repeat(32))));
        assert!(!is_set_id(&format!("ts-{}", "a".repeat(31))));
        assert!(!is_set_id("training_sets"));
    }

    #[test]
    fn errors_sent_to_clients_hold_no_server_paths_and_keep_their_kind() {
        let dir = Path::new("/srv/quiver/work/training_sets/ts-1");
        let error = Error::Invalid(
            "/srv/quiver/work/training_sets/ts-1/spine.parquet: cannot read the spine; table /srv/offline/driver_stats"
                .into(),
        );
        let clean = without_server_paths(error, dir, "file:///srv/offline/");
        assert_eq!(
            clean.to_string(),
            "spine.parquet: cannot read the spine; table offline_store/driver_stats"
        );
        let status = crate::error::to_status(clean);
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(
            status.message(),
            "spine.parquet: cannot read the spine; table offline_store/driver_stats"
        );
    }
}
