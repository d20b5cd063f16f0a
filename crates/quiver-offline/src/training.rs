//! Training sets: a spine file in, a Parquet file out with the spine's columns and the
//! point-in-time features, plus a manifest saying exactly how it was made.
//!
//! The output is written to a temporary name beside the target and renamed when complete,
//! so a failed run leaves no partial file under the requested name. The manifest records
//! the registry version and hashes, each view's Delta table version, the spine's row count
//! and SHA-256, and the request; [`rebuild`] uses it to produce the same rows again even
//! after later materializations.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{DateTime, Utc};
use datafusion::logical_expr::col;
use datafusion::prelude::{CsvReadOptions, DataFrame, ParquetReadOptions, SessionContext};
use futures::StreamExt;
use object_store::ObjectStoreExt;
use parquet::arrow::ArrowWriter;
use quiver_core::definitions::FeatureRef;
use quiver_core::registry::Snapshot;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::engine::{Engine, LocalEngine};
use crate::error::{Error, Result};
use crate::historical::{HistoricalRequest, plan_historical, spine_session};
use crate::store::OfflineStore;

/// Layout version of the manifest.
pub const MANIFEST_FORMAT: u32 = 1;

/// One view read for a training set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestView {
    pub name: String,
    /// Content hash of the view's definition in the registry version used.
    pub definition_hash: String,
    pub table: String,
    /// Delta table version read; `None` when the view had never been materialized.
    pub table_version: Option<u64>,
}

/// How a training set was made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub quiver_version: String,
    pub created_at: DateTime<Utc>,
    pub seconds: String,
    pub project: String,
    pub registry_version: u64,
    pub definitions_hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature_service: Option<String>,
    pub features: Vec<String>,
    pub full_feature_names: bool,
    pub timestamp_column: String,
    pub views: Vec<ManifestView>,
    pub spine_path: String,
    pub spine_rows: u64,
    pub spine_sha256: String,
    pub output_path: String,
    pub output_rows: u64,
}

/// What to build.
#[derive(Clone, Debug)]
pub struct TrainingSetRequest {
    pub spine: PathBuf,
    pub out: PathBuf,
    pub features: Vec<FeatureRef>,
    pub feature_service: Option<String>,
    pub full_feature_names: bool,
    pub timestamp_column: String,
    /// Pinned table versions (from a manifest); latest otherwise.
    pub table_versions: BTreeMap<String, u64>,
    /// Replace an existing output file (and its manifest). Never the spine, whatever this says.
    pub overwrite: bool,
}

/// Whether two paths name the same file (following links; a missing file is compared by
/// its resolved folder and name).
fn same_file(a: &Path, b: &Path) -> bool {
    fn resolved(p: &Path) -> Option<PathBuf> {
        if let Ok(c) = std::fs::canonicalize(p) {
            return Some(c);
        }
        let parent = p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        Some(std::fs::canonicalize(parent).ok()?.join(p.file_name()?))
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b))
            && x.dev() == y.dev()
            && x.ino() == y.ino()
        {
            return true;
        }
    }
    matches!((resolved(a), resolved(b)), (Some(x), Some(y)) if x == y)
}

/// Refuses an output that would destroy something: the spine (always), or an existing file
/// unless the request says to overwrite.
fn check_output(request: &TrainingSetRequest) -> Result<()> {
    let out = &request.out;
    let manifest = manifest_path(out);
    for target in [out, &manifest] {
        if same_file(target, &request.spine) {
            return Err(Error::InvalidInput(format!(
                "{} is the spine itself: writing there would destroy the input; choose another output file",
                target.display()
            )));
        }
        if !request.overwrite && std::fs::symlink_metadata(target).is_ok() {
            return Err(Error::InvalidInput(format!(
                "{} already exists; pass --overwrite to replace it",
                target.display()
            )));
        }
    }
    Ok(())
}

/// Keeps a copy of `manifest` in the offline store, at
/// `.quiver/manifests/<created_at>-<hash>.json`: whatever disk the training set went to,
/// anyone on the team can find how it was made, and rebuild it with `--from-manifest`.
/// Returns the copy's location.
pub async fn keep_manifest(store: &OfflineStore, manifest: &Manifest) -> Result<String> {
    let body = serde_json::to_vec_pretty(manifest)
        .map_err(|e| Error::Internal(format!("the manifest does not serialize: {e}")))?;
    let hash = hex::encode(Sha256::digest(&body));
    let name = format!("{}-{}.json", manifest.created_at.format("%Y%m%dT%H%M%S%.6fZ"), &hash[..16]);
    let (objects, prefix) = store.objects()?;
    let path = prefix.clone().join(".quiver").join("manifests").join(name.as_str());
    objects.put(&path, body.into()).await.map_err(|e| {
        Error::Store(format!("{}: keeping a copy of the training set's manifest: {e}", store.root()))
    })?;
    Ok(format!("{}/.quiver/manifests/{name}", store.root().as_str().trim_end_matches('/')))
}

/// The manifest's path for an output file: `<out>.manifest.json`.
pub fn manifest_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".manifest.json");
    out.with_file_name(name)
}

fn file_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::File { path: path.display().to_string(), message: e.to_string() }
}

/// SHA-256 of a file's bytes.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(|e| file_error(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| file_error(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Checks a Parquet spine before DataFusion reads it: whole (`PAR1` at both ends and a footer
/// length that fits the file: a truncated file is named here), a footer whose declared sizes
/// and offsets are possible, and data that decodes.
fn check_parquet_spine(path: &Path) -> Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let truncated = || {
        file_error(
            path,
            "cannot read the spine: not a complete Parquet file (its footer is missing or cut short)",
        )
    };
    let mut file =
        std::fs::File::open(path).map_err(|e| file_error(path, format!("cannot read the spine: {e}")))?;
    let len = file.metadata().map_err(|e| file_error(path, format!("cannot read the spine: {e}")))?.len();
    if len < 12 {
        return Err(truncated());
    }
    let mut head = [0u8; 4];
    let mut tail = [0u8; 8];
    file.read_exact(&mut head).map_err(|_| truncated())?;
    file.seek(SeekFrom::End(-8)).map_err(|_| truncated())?;
    file.read_exact(&mut tail).map_err(|_| truncated())?;
    let footer = u64::from(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]));
    if &head != b"PAR1" || &tail[4..] != b"PAR1" || footer + 12 > len {
        return Err(truncated());
    }
    check_declared_sizes(path, &file, len)?;
    decode_whole(path, &file, len)
}

/// Decodes the whole spine once, its rows dropped as they come, with any panic caught: the
/// Parquet reader panics on some damaged files (a page that runs past its column chunk, an
/// embedded Arrow schema with a type Arrow does not know; found by the `spine` fuzz target),
/// and DataFusion, reading the same pages afterwards, would meet that panic in a worker.
/// The decoder is the one DataFusion reads with (Parquet's push decoder: it asks for each row
/// group's column chunks as byte ranges), so it meets the same pages the same way. One row
/// group's chunks are held at a time.
fn decode_whole(path: &Path, file: &std::fs::File, file_len: u64) -> Result<()> {
    use parquet::DecodeResult;
    use parquet::arrow::push_decoder::ParquetPushDecoderBuilder;
    use parquet::file::metadata::{PageIndexPolicy, ParquetMetaDataReader};
    use std::io::{Read, Seek, SeekFrom};
    let mut file = file.try_clone().map_err(|e| file_error(path, format!("cannot read the spine: {e}")))?;
    let decoded = quiver_core::untrusted::guarded(|| -> std::result::Result<(), String> {
        // With the page index when the file has one, as DataFusion reads it: the pages are
        // then found by the offset index's locations, not by walking their headers.
        let metadata = ParquetMetaDataReader::new()
            .with_page_index_policy(PageIndexPolicy::Optional)
            .parse_and_finish(&file)
            .map_err(|e| e.to_string())?;
        let mut decoder = ParquetPushDecoderBuilder::try_new_decoder(std::sync::Arc::new(metadata))
            .and_then(|builder| builder.with_batch_size(8192).build())
            .map_err(|e| e.to_string())?;
        loop {
            match decoder.try_decode().map_err(|e| e.to_string())? {
                DecodeResult::NeedsData(ranges) => {
                    let mut data = Vec::with_capacity(ranges.len());
                    for range in &ranges {
                        // A range comes from the footer or the page index: refused, before
                        // anything is allocated for it, unless it lies inside the file.
                        if range.start > range.end || range.end > file_len {
                            return Err(format!("asks for bytes {range:?} of a {file_len}-byte file"));
                        }
                        let len = usize::try_from(range.end - range.start).map_err(|e| e.to_string())?;
                        let mut bytes = vec![0u8; len];
                        file.seek(SeekFrom::Start(range.start)).map_err(|e| e.to_string())?;
                        file.read_exact(&mut bytes).map_err(|e| e.to_string())?;
                        data.push(bytes::Bytes::from(bytes));
                    }
                    decoder.push_ranges(ranges, data).map_err(|e| e.to_string())?;
                }
                DecodeResult::Data(_) => {}
                DecodeResult::Finished => return Ok(()),
            }
        }
    });
    let problem = match decoded {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(e)) => e,
        Err(panic) => {
            format!("the reader panicked: {}", quiver_core::untrusted::panic_message(panic.as_ref()))
        }
    };
    tracing::info!(spine = %path.display(), problem = %problem, "a Parquet spine that does not decode");
    Err(file_error(
        path,
        "cannot read the spine: its Parquet data does not decode (a damaged or unsupported file)",
    ))
}

/// The most rows a spine file may declare. Far above any spine a server accepts, far below
/// the counts whose byte sizes overflow DataFusion's size estimates.
const MAX_DECLARED_SPINE_ROWS: i64 = 1 << 40;

/// Checks the row counts, sizes and chunk offsets a Parquet footer declares before DataFusion
/// plans with them: it multiplies a declared row count by a value width and sums declared
/// sizes without checking, which panics (or, in a release build, wraps) on a crafted footer,
/// and the Parquet reader panics on a chunk that starts before the file (both found by the
/// `spine` fuzz target).
fn check_declared_sizes(path: &Path, file: &std::fs::File, file_len: u64) -> Result<()> {
    use parquet::file::metadata::ParquetMetaDataReader;
    let bad = |what: String| file_error(path, format!("cannot read the spine: its Parquet footer {what}"));
    let metadata = ParquetMetaDataReader::new()
        .parse_and_finish(file)
        .map_err(|e| bad(format!("cannot be read ({e})")))?;
    let (mut rows, mut bytes): (i64, i64) = (0, 0);
    for (i, group) in metadata.row_groups().iter().enumerate() {
        let declared = group.num_rows();
        rows = rows
            .checked_add(declared)
            .filter(|r| declared >= 0 && *r <= MAX_DECLARED_SPINE_ROWS)
            .ok_or_else(|| bad(format!("declares an impossible row count in row group {i}")))?;
        for column in group.columns() {
            let (size, packed) = (column.uncompressed_size(), column.compressed_size());
            bytes = bytes
                .checked_add(size)
                .filter(|_| size >= 0 && packed >= 0)
                .ok_or_else(|| bad(format!("declares an impossible column size in row group {i}")))?;
            // The Parquet reader asserts that a chunk's start is not negative (a panic on a
            // crafted footer); a chunk must also lie inside the file.
            let start = column.dictionary_page_offset().unwrap_or(column.data_page_offset());
            let inside = u64::try_from(start)
                .ok()
                .filter(|_| column.data_page_offset() >= 0)
                .and_then(|start| start.checked_add(u64::try_from(packed).ok()?))
                .is_some_and(|end| end <= file_len);
            if !inside {
                return Err(bad(format!("places a column chunk outside the file in row group {i}")));
            }
        }
    }
    Ok(())
}

/// Reads a spine file (`.parquet` or `.csv`) in one partition.
pub async fn read_spine(ctx: &SessionContext, path: &Path) -> Result<DataFrame> {
    if !path.is_file() {
        return Err(file_error(path, "no such spine file"));
    }
    let text = path.to_str().ok_or_else(|| file_error(path, "the path is not valid UTF-8"))?;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
    match ext.as_str() {
        "parquet" => {
            let owned = path.to_path_buf();
            tokio::task::spawn_blocking(move || check_parquet_spine(&owned))
                .await
                .map_err(|e| Error::Internal(format!("the spine check stopped: {e}")))??
        }
        "csv" => {}
        _ => return Err(file_error(path, "the spine must be a .parquet or .csv file")),
    }
    read_spine_at(ctx, text, &ext).await.map_err(|e| file_error(path, format!("cannot read the spine: {e}")))
}

/// The spine at `location` (a path or a URL `ctx` can read), a `.parquet` or `.csv` file
/// by `ext`, in one partition.
async fn read_spine_at(
    ctx: &SessionContext,
    location: &str,
    ext: &str,
) -> std::result::Result<DataFrame, datafusion::error::DataFusionError> {
    let spine_ctx = spine_session(ctx);
    if ext == "parquet" {
        spine_ctx.read_parquet(location, ParquetReadOptions::default().file_extension(".parquet")).await
    } else {
        spine_ctx.read_csv(location, CsvReadOptions::new().has_header(true).file_extension(".csv")).await
    }
}

/// The folder of the offline store that spines are copied to while a cluster reads them.
pub const STAGED_SPINES: &str = ".quiver/spines";

/// A spine copied into the offline store for an engine that runs elsewhere: its executors
/// read it from there. Removed when the training set is done, built or not.
struct StagedSpine {
    store: std::sync::Arc<dyn object_store::ObjectStore>,
    key: object_store::path::Path,
    url: url::Url,
}

impl StagedSpine {
    /// Copies the spine file at `path` under [`STAGED_SPINES`], by a name of its own (two
    /// jobs with the same spine never share a copy), in parts, without reading it whole.
    async fn upload(store: &OfflineStore, path: &Path, ext: &str) -> Result<StagedSpine> {
        use tokio::io::AsyncWriteExt;
        let (objects, prefix) = store.objects()?;
        let mut random = [0u8; 16];
        getrandom::fill(&mut random).map_err(|e| Error::Internal(format!("no random numbers: {e}")))?;
        let name = format!("{}.{ext}", random.iter().map(|b| format!("{b:02x}")).collect::<String>());
        let mut key = prefix.clone();
        for part in STAGED_SPINES.split('/') {
            key = key.join(part);
        }
        sweep_staged(objects.as_ref(), &key).await;
        let key = key.join(name.as_str());
        let url = store
            .root()
            .join(&format!("{STAGED_SPINES}/{name}"))
            .map_err(|e| Error::Internal(format!("the staged spine's URL: {e}")))?;
        let staged = StagedSpine { store: objects.clone(), key: key.clone(), url };
        let copy = async {
            let mut file = tokio::fs::File::open(path).await.map_err(|e| file_error(path, e))?;
            let mut writer = object_store::buffered::BufWriter::new(objects, key);
            tokio::io::copy(&mut file, &mut writer).await.map_err(|e| {
                Error::Store(format!("copying the spine into the offline store {}: {e}", store.root()))
            })?;
            writer.shutdown().await.map_err(|e| {
                Error::Store(format!("copying the spine into the offline store {}: {e}", store.root()))
            })
        };
        match copy.await {
            Ok(()) => Ok(staged),
            Err(e) => {
                staged.remove().await;
                Err(e)
            }
        }
    }

    async fn remove(&self) {
        use object_store::ObjectStoreExt as _;
        if let Err(e) = self.store.delete(&self.key).await
            && !matches!(e, object_store::Error::NotFound { .. })
        {
            tracing::warn!(spine = %self.url, error = %e, "cannot remove a spine copied for a cluster");
        }
    }
}

/// How old a spine's copy is before any later job removes it: the copies of jobs whose
/// process died before removing its own. No training set job runs this long.
const STAGED_SPINE_MAX_AGE: chrono::TimeDelta = chrono::TimeDelta::days(2);

/// Removes the copies in `folder` older than [`STAGED_SPINE_MAX_AGE`]; a failure is logged
/// and left for the next job.
async fn sweep_staged(objects: &dyn object_store::ObjectStore, folder: &object_store::path::Path) {
    use object_store::ObjectStoreExt as _;
    let cutoff = Utc::now() - STAGED_SPINE_MAX_AGE;
    let listed = match objects.list_with_delimiter(Some(folder)).await {
        Ok(listed) => listed,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list the spines copied for a cluster");
            return;
        }
    };
    for old in listed.objects.iter().filter(|o| o.last_modified < cutoff) {
        if let Err(e) = objects.delete(&old.location).await {
            tracing::warn!(spine = %old.location, error = %e, "cannot remove an old spine copy");
        }
    }
}

/// Builds a training set and its manifest from the definitions of `registry`, on this
/// process's engine.
pub async fn build(
    ctx: &SessionContext,
    registry: &Snapshot,
    store: &OfflineStore,
    request: &TrainingSetRequest,
) -> Result<Manifest> {
    build_on(&LocalEngine, ctx, registry, store, request).await
}

/// Builds a training set and its manifest from the definitions of `registry`, its plan run
/// by `engine`. The output file and the manifest are written by this process either way.
pub async fn build_on(
    engine: &dyn Engine,
    ctx: &SessionContext,
    registry: &Snapshot,
    store: &OfflineStore,
    request: &TrainingSetRequest,
) -> Result<Manifest> {
    let started = Instant::now();
    check_output(request)?;
    let local_spine = read_spine(ctx, &request.spine).await?;
    if !engine.runs_elsewhere() {
        let spines = Spines { planned: local_spine.clone(), local: local_spine };
        return build_from(engine, ctx, registry, store, request, spines, started).await;
    }
    let ext = request.spine.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
    let staged = StagedSpine::upload(store, &request.spine, &ext).await?;
    let built = async {
        let spine = read_spine_at(ctx, staged.url.as_str(), &ext).await.map_err(|e| {
            file_error(&request.spine, format!("cannot read the spine's copy in the offline store: {e}"))
        })?;
        build_from(
            engine,
            ctx,
            registry,
            store,
            request,
            Spines { planned: spine, local: local_spine },
            started,
        )
        .await
    }
    .await;
    staged.remove().await;
    built
}

/// The spine as the plan reads it (where the engine runs) and as this process reads it for
/// the checks it makes itself; the same frame on the local engine.
struct Spines {
    planned: DataFrame,
    local: DataFrame,
}

/// [`build_on`] once the spine is readable where the engine runs.
async fn build_from(
    engine: &dyn Engine,
    ctx: &SessionContext,
    registry: &Snapshot,
    store: &OfflineStore,
    request: &TrainingSetRequest,
    spines: Spines,
    started: Instant,
) -> Result<Manifest> {
    // Hashed before anything is written, so the manifest always names the input.
    let spine_sha256 = sha256_file(&request.spine)?;
    let historical = HistoricalRequest {
        features: request.features.clone(),
        full_feature_names: request.full_feature_names,
        timestamp_column: request.timestamp_column.clone(),
        table_versions: request.table_versions.clone(),
        partitions: engine.join_partitions(),
    };
    let planned = plan_historical(ctx, &registry.definitions, store, spines.planned, &historical).await?;
    // The first whole read of the spine: every failure to decode it is the spine's.
    let missing_time = spines
        .local
        .filter(col(datafusion::common::Column::from_name(&request.timestamp_column)).is_null())?
        .count()
        .await
        .map_err(|e| spine_error(e.into(), true))?;
    if missing_time > 0 {
        return Err(Error::InvalidInput(format!(
            "{missing_time} spine rows have no value in the timestamp column '{}'; every row needs a time",
            request.timestamp_column
        )));
    }

    let out = &request.out;
    let dir = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| file_error(dir, e))?;
    let partial = dir.join(format!(
        ".{}.partial-{}",
        out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        std::process::id()
    ));
    let result = write_output(engine, ctx, &planned, &partial).await.map_err(|e| spine_error(e, false));
    let output_rows = match result {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    std::fs::rename(&partial, out).map_err(|e| file_error(out, e))?;

    let absolute =
        |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()).display().to_string();
    let views = planned
        .tables
        .iter()
        .map(|(name, snapshot)| {
            Ok(ManifestView {
                name: name.clone(),
                definition_hash: registry
                    .hashes
                    .get(&format!("feature_views/{name}"))
                    .cloned()
                    .unwrap_or_default(),
                table: store.table_url(name)?.to_string(),
                table_version: snapshot.as_ref().map(|s| s.version),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let manifest = Manifest {
        format: MANIFEST_FORMAT,
        quiver_version: env!("CARGO_PKG_VERSION").to_string(),
        created_at: Utc::now(),
        seconds: format!("{:.3}", started.elapsed().as_secs_f64()),
        project: registry.project.clone(),
        registry_version: registry.version,
        definitions_hash: registry.definitions_hash.clone(),
        feature_service: request.feature_service.clone(),
        features: request.features.iter().map(|f| f.to_string()).collect(),
        full_feature_names: request.full_feature_names,
        timestamp_column: request.timestamp_column.clone(),
        views,
        spine_path: absolute(&request.spine),
        spine_rows: output_rows,
        spine_sha256,
        output_path: absolute(out),
        output_rows,
    };
    let body = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Internal(format!("manifest: {e}")))?;
    let mpath = manifest_path(out);
    std::fs::write(&mpath, body).map_err(|e| file_error(&mpath, e))?;
    Ok(manifest)
}

/// `e` as the spine's fault when it can only be one: a value that does not parse as its
/// column's type (or cast to a join key's) comes from the spine, since the offline store's
/// files are typed Parquet; with `spine_only` (a read of nothing but the spine), so does a
/// Parquet file that does not decode. The message never repeats a value or a line of the
/// spine: it is the caller's data, and may be anything. The whole error goes to the log.
fn spine_error(e: Error, spine_only: bool) -> Error {
    use datafusion::arrow::error::ArrowError as A;
    let mut parse = false;
    let mut parquet = false;
    let mut cause: Option<&(dyn std::error::Error + 'static)> = match &e {
        Error::DataFusion(inner) => Some(inner),
        Error::Arrow(inner) => Some(inner),
        _ => return e,
    };
    while let Some(error) = cause {
        if let Some(arrow) = error.downcast_ref::<A>() {
            parse |= matches!(arrow, A::ParseError(_) | A::CsvError(_) | A::CastError(_));
            parquet |= matches!(arrow, A::ParquetError(_));
        }
        parquet |= error.downcast_ref::<parquet::errors::ParquetError>().is_some();
        cause = error.source();
    }
    let message = if parse {
        "cannot read the spine: a value does not parse as its column's type (a CSV spine's \
         column types are inferred from its first rows: every row needs the same kind of value \
         in a column, and times written as RFC 3339)"
    } else if parquet && spine_only {
        "cannot read the spine: its Parquet data does not decode (a damaged or unsupported file)"
    } else {
        return e;
    };
    tracing::info!(error = %e, "a spine that cannot be read");
    Error::InvalidInput(message.into())
}

async fn write_output(
    engine: &dyn Engine,
    ctx: &SessionContext,
    planned: &crate::historical::HistoricalPlan,
    path: &Path,
) -> Result<u64> {
    let file = std::fs::File::create(path).map_err(|e| file_error(path, e))?;
    let mut writer =
        ArrowWriter::try_new(file, planned.schema.clone(), None).map_err(|e| file_error(path, e))?;
    let mut stream = engine.execute(ctx, planned.plan.clone()).await?;
    let mut rows = 0u64;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        rows += batch.num_rows() as u64;
        writer.write(&batch).map_err(|e| file_error(path, e))?;
    }
    writer.close().map_err(|e| file_error(path, e))?;
    Ok(rows)
}

/// Reads a manifest file.
pub fn read_manifest(path: &Path) -> Result<Manifest> {
    let bytes = std::fs::read(path).map_err(|e| file_error(path, e))?;
    let manifest: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| file_error(path, format!("not a training set manifest: {e}")))?;
    if manifest.format != MANIFEST_FORMAT {
        return Err(file_error(
            path,
            format!("manifest format {} is not understood by this Quiver", manifest.format),
        ));
    }
    Ok(manifest)
}

/// The request that rebuilds a manifest's training set into `out` — always named by the
/// user: a manifest is a file anyone may have edited, so its `output_path` is never written
/// to. Fails when the spine file changed since.
pub fn rebuild_request(manifest: &Manifest, out: PathBuf, overwrite: bool) -> Result<TrainingSetRequest> {
    let spine = PathBuf::from(&manifest.spine_path);
    let sha = sha256_file(&spine)?;
    if sha != manifest.spine_sha256 {
        return Err(Error::InvalidInput(format!(
            "the spine {} changed since the manifest was written (SHA-256 {sha}, manifest says {}); \
             the training set cannot be rebuilt from it",
            spine.display(),
            manifest.spine_sha256
        )));
    }
    let features =
        manifest.features.iter().map(|f| FeatureRef::parse(f)).collect::<quiver_core::Result<Vec<_>>>()?;
    Ok(TrainingSetRequest {
        spine,
        out,
        overwrite,
        features,
        feature_service: manifest.feature_service.clone(),
        full_feature_names: manifest.full_feature_names,
        timestamp_column: manifest.timestamp_column.clone(),
        table_versions: manifest
            .views
            .iter()
            .filter_map(|v| v.table_version.map(|t| (v.name.clone(), t)))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, RecordBatch, TimestampNanosecondArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use parquet::file::metadata::{ParquetMetaDataReader, ParquetMetaDataWriter};
    use std::sync::Arc;

    #[tokio::test]
    async fn a_spine_copy_older_than_two_days_is_swept_and_a_newer_one_kept() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join(STAGED_SPINES);
        std::fs::create_dir_all(&folder).unwrap();
        for (name, age_hours) in [("abandoned.csv", 49), ("running.csv", 47), ("fresh.parquet", 0)] {
            let file = std::fs::File::create(folder.join(name)).unwrap();
            let when = std::time::SystemTime::now() - std::time::Duration::from_secs(age_hours * 3_600);
            file.set_modified(when).unwrap();
        }
        let store = OfflineStore::new(url::Url::from_directory_path(dir.path()).unwrap());
        let (objects, prefix) = store.objects().unwrap();
        sweep_staged(objects.as_ref(), &prefix.clone().join(".quiver").join("spines")).await;
        let mut left: Vec<_> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["fresh.parquet", "running.csv"]);
    }

    /// A small spine as Parquet bytes.
    fn spine_bytes() -> Vec<u8> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("driver_id", DataType::Int64, false),
            Field::new("event_timestamp", DataType::Timestamp(TimeUnit::Nanosecond, None), false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from_iter_values(0..100)),
                Arc::new(TimestampNanosecondArray::from_iter_values((0..100).map(|i| i * 1_000_000_000))),
            ],
        )
        .unwrap();
        let mut w = ArrowWriter::try_new(Vec::new(), schema, None).unwrap();
        w.write(&batch).unwrap();
        w.into_inner().unwrap()
    }

    /// `bytes` with its footer replaced by one whose row groups declare `rows` rows.
    fn with_declared_rows(bytes: &[u8], rows: i64) -> Vec<u8> {
        let footer = u32::from_le_bytes(bytes[bytes.len() - 8..bytes.len() - 4].try_into().unwrap()) as usize;
        let body = &bytes[..bytes.len() - 8 - footer];
        let metadata =
            ParquetMetaDataReader::new().parse_and_finish(&bytes::Bytes::copy_from_slice(bytes)).unwrap();
        let mut builder = metadata.into_builder();
        let groups = builder
            .take_row_groups()
            .into_iter()
            .map(|g| g.into_builder().set_num_rows(rows).build().unwrap())
            .collect();
        let metadata = builder.set_row_groups(groups).build();
        let mut out = body.to_vec();
        ParquetMetaDataWriter::new(&mut out, &metadata).finish().unwrap();
        out
    }

    #[tokio::test]
    async fn a_spine_footer_declaring_impossible_row_counts_is_refused_before_planning() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = SessionContext::new();
        let good = spine_bytes();
        let path = dir.path().join("spine.parquet");
        // The rewritten footer is itself readable: with its true row count it reads back.
        std::fs::write(&path, with_declared_rows(&good, 100)).unwrap();
        let frame = read_spine(&ctx, &path).await.unwrap();
        assert_eq!(frame.count().await.unwrap(), 100);
        for rows in [i64::MAX / 4, -5] {
            std::fs::write(&path, with_declared_rows(&good, rows)).unwrap();
            let e = read_spine(&ctx, &path).await.unwrap_err();
            let shown = e.to_string();
            assert!(shown.contains("spine.parquet") && shown.contains("impossible row count"), "{shown}");
        }
    }
}
