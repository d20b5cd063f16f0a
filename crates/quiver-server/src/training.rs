//! Training sets built for network clients: the spine arrives as Arrow batches, is written
//! to a Parquet file in the server's work folder, and goes through the same builder as
//! `quiver historical` (same plan, same manifest). Each set lives in its own folder,
//! `training_sets/<id>/`, until it is fetched (gRPC) or pushed out by newer sets (Flight
//! keeps the last [`KEPT`] so a client can `DoGet` them).

use std::collections::VecDeque;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use quiver_offline::training::{Manifest, TrainingSetRequest};
use serde::Deserialize;
use tokio::sync::mpsc;
use tonic::Status;

use crate::app::App;
use crate::convert::resolve_features;
use crate::error::to_status;

/// Training sets kept for Flight `DoGet`.
pub const KEPT: usize = 64;
/// Rows per batch when a training set is read back for a client.
const BATCH_ROWS: usize = 8192;

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

/// A spine being written to disk as it arrives.
pub struct SpineFile {
    path: PathBuf,
    writer: ArrowWriter<File>,
    rows: u64,
}

impl SpineFile {
    pub fn create(path: PathBuf, schema: SchemaRef) -> Result<Self, Status> {
        let file = File::create(&path).map_err(|e| Status::internal(format!("{}: {e}", path.display())))?;
        let writer = ArrowWriter::try_new(file, schema, None)
            .map_err(|e| Status::invalid_argument(format!("the spine's schema cannot be stored: {e}")))?;
        Ok(SpineFile { path, writer, rows: 0 })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), Status> {
        self.rows += batch.num_rows() as u64;
        self.writer
            .write(batch)
            .map_err(|e| Status::invalid_argument(format!("spine batch cannot be stored: {e}")))
    }

    pub fn finish(self) -> Result<(PathBuf, u64), Status> {
        self.writer.close().map_err(|e| Status::internal(format!("{}: {e}", self.path.display())))?;
        Ok((self.path, self.rows))
    }
}

/// A built training set.
pub struct BuiltSet {
    pub id: String,
    pub output: PathBuf,
    pub manifest: Manifest,
}

/// The work folder's training sets.
pub struct TrainingSets {
    root: PathBuf,
    next: AtomicU64,
    kept: Mutex<VecDeque<String>>,
}

impl TrainingSets {
    pub fn new(work_dir: &Path) -> Self {
        TrainingSets {
            root: work_dir.join("training_sets"),
            next: AtomicU64::new(0),
            kept: Mutex::new(VecDeque::new()),
        }
    }

    /// A new, empty folder for one set.
    pub fn allocate(&self) -> Result<(String, PathBuf), Status> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let id = format!("ts-{}-{n}", chrono::Utc::now().format("%Y%m%dT%H%M%S%.3f"));
        let dir = self.root.join(&id);
        std::fs::create_dir_all(&dir).map_err(|e| Status::internal(format!("{}: {e}", dir.display())))?;
        Ok((id, dir))
    }

    /// The output file of a set, if it is still kept. Ids are checked to be ours, so a
    /// ticket cannot name a path outside the work folder.
    pub fn output(&self, id: &str) -> Option<PathBuf> {
        if !id.starts_with("ts-") || !id.chars().all(|c| c.is_ascii_alphanumeric() || "-.T".contains(c)) {
            return None;
        }
        let path = self.root.join(id).join("training_set.parquet");
        path.is_file().then_some(path)
    }

    /// Keeps a set for later `DoGet`; drops the oldest beyond [`KEPT`].
    pub fn keep(&self, id: &str) {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        kept.push_back(id.to_string());
        while kept.len() > KEPT {
            if let Some(old) = kept.pop_front() {
                self.remove(&old);
            }
        }
    }

    pub fn remove(&self, id: &str) {
        let _ = std::fs::remove_dir_all(self.root.join(id));
    }

    /// Builds a training set from a spine file already in `dir`.
    pub async fn build(
        &self,
        app: &App,
        id: String,
        dir: &Path,
        spine: PathBuf,
        spec: &TrainingSpec,
    ) -> Result<BuiltSet, Status> {
        let snapshot = app.require_current()?;
        let features =
            resolve_features(&snapshot.definitions, spec.feature_service.as_deref(), &spec.features)?;
        let output = dir.join("training_set.parquet");
        let request = TrainingSetRequest {
            spine,
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
        };
        let manifest = quiver_offline::training::build(app.lake.session(), &snapshot, &app.offline, &request)
            .await
            .map_err(to_status)?;
        Ok(BuiltSet { id, output, manifest })
    }
}

/// Reads a training set file back as batches, on a blocking thread, into a channel.
pub fn read_batches(path: PathBuf) -> mpsc::Receiver<Result<RecordBatch, Status>> {
    let (tx, rx) = mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        let reader = File::open(&path)
            .map_err(|e| Status::not_found(format!("training set file {}: {e}", path.display())))
            .and_then(|f| {
                ParquetRecordBatchReaderBuilder::try_new(f)
                    .and_then(|b| b.with_batch_size(BATCH_ROWS).build())
                    .map_err(|e| Status::internal(format!("reading the training set: {e}")))
            });
        let reader = match reader {
            Ok(r) => r,
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        };
        for batch in reader {
            let item = batch.map_err(|e| Status::internal(format!("reading the training set: {e}")));
            if tx.blocking_send(item).is_err() {
                return; // the client went away
            }
        }
    });
    rx
}

/// The schema and row count of a training set file (from its footer).
pub fn file_info(path: &Path) -> Result<(SchemaRef, i64), Status> {
    let file = File::open(path).map_err(|e| Status::not_found(format!("{}: {e}", path.display())))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| Status::internal(format!("reading the training set: {e}")))?;
    Ok((builder.schema().clone(), builder.metadata().file_metadata().num_rows()))
}
