//! Reading the lake: a [`Source`] becomes a DataFusion `ListingTable`, and a feature view
//! becomes the DataFrame its features are computed from (the source, or its SQL transform).
//!
//! How a source path is read:
//! - relative paths join the configured lake base; full URLs (`file://`, `s3://`, ...) are
//!   used as they are;
//! - the path is split at the first segment holding a glob character (`*`, `?`, `[`): the
//!   part before is the listing prefix, the rest a pattern files must match;
//! - a path naming a folder (local folders are detected; elsewhere write a trailing `/`)
//!   reads every file with the format's extension below it;
//! - `key=value` folders (hive partitioning) become string columns.
//!
//! Timestamp columns written as text (csv and json have no timestamp type) are parsed here,
//! as UTC when they carry no offset, so a transform and every later step see real
//! timestamps.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::json::JsonFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::{Expr, col};
use datafusion::prelude::{DataFrame, cast};
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use quiver_core::definitions::{Definitions, FeatureView, Source, SourceFormat};
use quiver_core::storage::{is_url, open_location};
use url::Url;

use crate::error::{Error, Result};
use crate::types::{is_text, is_timestamp_like, timestamp_type};

/// The lake a project reads its sources from, with one DataFusion session whose object
/// stores are registered as sources need them.
#[derive(Clone)]
pub struct Lake {
    base: Url,
    ctx: SessionContext,
}

/// Session settings for lake reads: a folder's files are read at any depth, and a glob may
/// span folders (`events/*/*.parquet`).
pub fn lake_config() -> datafusion::prelude::SessionConfig {
    datafusion::prelude::SessionConfig::new()
        .set_bool("datafusion.execution.listing_table_ignore_subdirectory", false)
}

/// Where a source's files are: a listing prefix and an optional glob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceLocation {
    pub prefix: Url,
    pub glob: Option<String>,
    /// True when the prefix is a folder whose files are read.
    pub is_folder: bool,
}

impl Lake {
    /// A lake rooted at `base` (a folder URL; a trailing `/` is added when missing).
    pub fn new(base: Url) -> Self {
        let mut base = base;
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        Lake { base, ctx: SessionContext::new_with_config(lake_config()) }
    }

    /// With a caller's DataFusion session (memory limits, object stores already registered).
    pub fn with_session(base: Url, ctx: SessionContext) -> Self {
        let mut lake = Lake::new(base);
        lake.ctx = ctx;
        lake
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    pub fn session(&self) -> &SessionContext {
        &self.ctx
    }

    /// Splits a source path into listing prefix and glob, resolved against the lake.
    pub fn locate(&self, path: &str) -> Result<SourceLocation> {
        let bad = |message: String| Error::Schema(message);
        let segments: Vec<&str> = path.split('/').collect();
        let glob_at = segments.iter().position(|s| s.contains(['*', '?', '[']));
        let (prefix_text, glob) = match glob_at {
            Some(i) => {
                // DataFusion matches globs with `key=value` folders (hive partitions) removed
                // from the path, so they are dropped from the pattern too; partition values
                // are then read as columns.
                let pattern: Vec<&str> = segments[i..].iter().copied().filter(|s| !s.contains('=')).collect();
                (format!("{}/", segments[..i].join("/")), Some(pattern.join("/")))
            }
            None => (path.to_string(), None),
        };
        let prefix_text =
            if prefix_text == "/" && !path.starts_with('/') { String::new() } else { prefix_text };
        let mut prefix = if is_url(&prefix_text) {
            Url::parse(&prefix_text).map_err(|e| bad(format!("'{path}' is not a valid URL: {e}")))?
        } else if prefix_text.starts_with('/') {
            Url::from_file_path(&prefix_text).map_err(|()| bad(format!("'{path}' is not a valid path")))?
        } else {
            self.base
                .join(&prefix_text)
                .map_err(|e| bad(format!("'{path}' cannot be joined to the lake {}: {e}", self.base)))?
        };
        if glob.is_some() {
            if prefix_text.is_empty() || prefix_text.ends_with('/') {
                // from_file_path drops a trailing slash; the prefix is a folder.
                if !prefix.path().ends_with('/') {
                    let p = format!("{}/", prefix.path());
                    prefix.set_path(&p);
                }
            }
            return Ok(SourceLocation { prefix, glob, is_folder: true });
        }
        let local_dir =
            prefix.scheme() == "file" && prefix.to_file_path().map(|p| p.is_dir()).unwrap_or(false);
        let is_folder = prefix.path().ends_with('/') || local_dir;
        if is_folder && !prefix.path().ends_with('/') {
            let p = format!("{}/", prefix.path());
            prefix.set_path(&p);
        }
        Ok(SourceLocation { prefix, glob: None, is_folder })
    }

    /// Makes sure the session can reach the object store behind `url`.
    fn register_store(&self, url: &Url) -> Result<()> {
        if url.scheme() == "file" {
            return Ok(()); // DataFusion's session has the local file system already.
        }
        let root = Url::parse(&format!("{}://{}", url.scheme(), url.authority()))
            .map_err(|e| Error::Schema(format!("'{url}': {e}")))?;
        let store_url = datafusion::execution::object_store::ObjectStoreUrl::parse(root.as_str())?;
        if self.ctx.runtime_env().object_store(&store_url).is_ok() {
            return Ok(()); // registered by the caller or by an earlier source: keep it.
        }
        let store = open_location(&root)?;
        self.ctx.register_object_store(&root, store.store);
        Ok(())
    }

    /// A table over the source's files, as they are (no timestamp parsing).
    pub async fn source_table(&self, source: &Source) -> Result<ListingTable> {
        let fail = |message: String| Error::Source { source_name: source.name.clone(), message };
        let mut location = self.locate(&source.path).map_err(|e| fail(e.to_string()))?;
        self.register_store(&location.prefix).map_err(|e| fail(e.to_string()))?;
        if !location.is_folder && location.prefix.scheme() != "file" {
            // On an object store a folder is a prefix: a path that is not an object is read
            // as a folder, as a local folder would be.
            let table_url =
                ListingTableUrl::try_new(location.prefix.clone(), None).map_err(|e| fail(e.to_string()))?;
            let store = self.ctx.runtime_env().object_store(&table_url).map_err(|e| fail(e.to_string()))?;
            let missing =
                matches!(store.head(table_url.prefix()).await, Err(object_store::Error::NotFound { .. }));
            let has_children = missing && {
                use futures::StreamExt;
                let folder = object_store::path::Path::from(format!("{}/", table_url.prefix()));
                store.list(Some(&folder)).next().await.is_some()
            };
            if has_children {
                let p = format!("{}/", location.prefix.path());
                location.prefix.set_path(&p);
                location.is_folder = true;
            }
        }
        let pattern = match &location.glob {
            Some(g) => Some(glob::Pattern::new(g).map_err(|e| fail(format!("bad glob '{g}': {e}")))?),
            None => None,
        };
        let table_url =
            ListingTableUrl::try_new(location.prefix.clone(), pattern).map_err(|e| fail(e.to_string()))?;
        let format: Arc<dyn FileFormat> = match source.format {
            SourceFormat::Parquet => Arc::new(ParquetFormat::default()),
            SourceFormat::Csv => {
                let opts = source.csv.clone().unwrap_or_default();
                Arc::new(
                    CsvFormat::default()
                        .with_has_header(opts.has_header)
                        .with_delimiter(opts.delimiter as u8),
                )
            }
            SourceFormat::Json => Arc::new(JsonFormat::default()),
        };
        // A folder reads the format's files only; a glob or a single file says itself what
        // to read.
        let extension =
            if location.is_folder && location.glob.is_none() { source.format.extension() } else { "" };
        let options = ListingOptions::new(format).with_file_extension(extension);
        let state = self.ctx.state();
        let store = self.ctx.runtime_env().object_store(&table_url).map_err(|e| fail(e.to_string()))?;
        let first: Vec<_> = table_url
            .list_all_files(&state, store.as_ref(), extension)
            .await
            .map_err(|e| fail(format!("cannot list {}: {e}", location.prefix)))?
            .try_collect()
            .await
            .map_err(|e| fail(format!("cannot list {}: {e}", location.prefix)))?;
        if first.is_empty() {
            let what = match &location.glob {
                Some(g) => format!("no file under {} matches '{g}'", location.prefix),
                None if location.is_folder => {
                    format!("no {} file under {}", source.format.extension(), location.prefix)
                }
                None => format!("{} does not exist", location.prefix),
            };
            return Err(fail(what));
        }
        let partitions = options
            .infer_partitions(&state, &table_url)
            .await
            .map_err(|e| fail(format!("inconsistent partition folders: {e}")))?;
        let options =
            options.with_table_partition_cols(partitions.into_iter().map(|c| (c, DataType::Utf8)).collect());
        let config = ListingTableConfig::new(table_url)
            .with_listing_options(options)
            .infer_schema(&state)
            .await
            .map_err(|e| fail(format!("cannot read the files' schema: {e}")))?;
        ListingTable::try_new(config).map_err(|e| fail(e.to_string()))
    }

    /// The source as a DataFrame, with text and date timestamp columns parsed to
    /// UTC timestamps.
    pub async fn source_frame(&self, source: &Source) -> Result<DataFrame> {
        let table = self.source_table(source).await?;
        let df = self.ctx.read_table(Arc::new(table))?;
        let ts_columns: Vec<&str> = std::iter::once(source.timestamp_field.as_str())
            .chain(source.created_timestamp_field.as_deref())
            .collect();
        normalize_timestamps(df, &ts_columns, false)
    }

    /// The rows a view's features come from: the source, or the transform over it (with the
    /// source visible as table `source`). Timestamp columns come out as UTC nanoseconds.
    pub async fn view_frame(&self, definitions: &Definitions, view: &FeatureView) -> Result<DataFrame> {
        let source = definitions.source(&view.source).ok_or_else(|| {
            Error::Internal(format!(
                "view '{}' names source '{}' which validation should have caught",
                view.name, view.source
            ))
        })?;
        let frame = self.source_frame(source).await?;
        let frame = match &view.transform {
            None => frame,
            Some(sql) => self.transform(&view.name, frame, sql).await?,
        };
        let ts_columns: Vec<&str> = std::iter::once(source.timestamp_field.as_str())
            .chain(source.created_timestamp_field.as_deref())
            .collect();
        normalize_timestamps(frame, &ts_columns, true)
    }

    /// Plans `sql` with `input` visible as table `source`, in a session of its own so
    /// transforms of different views cannot see each other's tables.
    pub async fn transform(&self, view: &str, input: DataFrame, sql: &str) -> Result<DataFrame> {
        // A fresh catalog over the same runtime (object stores, memory pool).
        let ctx = SessionContext::new_with_config_rt(self.ctx.copied_config(), self.ctx.runtime_env());
        let fail = |e: datafusion::error::DataFusionError| Error::Transform {
            view: view.to_string(),
            message: first_line(&e.to_string()),
        };
        ctx.register_table("source", input.into_view()).map_err(fail)?;
        ctx.sql(sql).await.map_err(fail)
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().trim().to_string()
}

/// Casts the named timestamp columns to UTC nanoseconds. Text is parsed; dates become
/// midnight UTC. With `strict`, a column of another type is an error (e.g. epoch
/// integers, which need an explicit conversion in a transform); otherwise it is left alone.
pub fn normalize_timestamps(df: DataFrame, columns: &[&str], strict: bool) -> Result<DataFrame> {
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let mut changed = false;
    let mut exprs: Vec<Expr> = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let name = field.name();
        let e = col(datafusion::common::Column::from_name(name));
        if columns.contains(&name.as_str()) {
            let t = field.data_type();
            if *t == timestamp_type() {
                exprs.push(e);
            } else if is_timestamp_like(t) || is_text(t) {
                exprs.push(cast(e, timestamp_type()).alias(name));
                changed = true;
            } else if strict {
                return Err(Error::Schema(format!(
                    "column '{name}' is {t}, not a timestamp; convert it in a transform, e.g. \
                     SELECT *, to_timestamp_seconds({name}) AS {name} ... for epoch seconds"
                )));
            } else {
                exprs.push(e);
            }
        } else {
            exprs.push(e);
        }
    }
    if !changed {
        return Ok(df);
    }
    Ok(df.select(exprs)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_paths_split_into_prefix_and_glob() {
        let lake = Lake::new(Url::parse("file:///lake").unwrap());
        let l = lake.locate("driver_stats/*.parquet").unwrap();
        assert_eq!(l.prefix.as_str(), "file:///lake/driver_stats/");
        assert_eq!(l.glob.as_deref(), Some("*.parquet"));
        let l = lake.locate("a/year=*/part-?.csv").unwrap();
        assert_eq!(l.prefix.as_str(), "file:///lake/a/");
        assert_eq!(l.glob.as_deref(), Some("part-?.csv"), "partition folders are transparent");
        let l = lake.locate("s3://bucket/raw/*.json").unwrap();
        assert_eq!(l.prefix.as_str(), "s3://bucket/raw/");
        let l = lake.locate("events/").unwrap();
        assert!(l.is_folder);
        let l = lake.locate("/abs/file.parquet").unwrap();
        assert_eq!(l.prefix.as_str(), "file:///abs/file.parquet");
        assert!(!l.is_folder);
        let l = lake.locate("*.parquet").unwrap();
        assert_eq!(l.prefix.as_str(), "file:///lake/");
    }
}
