//! Reading the lake: a [`Source`] becomes a DataFusion `ListingTable`, and a feature view
//! becomes the DataFrame its features are computed from (the source, or its SQL transform).
//!
//! How a source path is read:
//! - relative paths join the configured lake base; absolute paths and full URLs (`file://`,
//!   `s3://`, ...) are used as they are. Either way the result must lie inside the lake or
//!   one of the configured `lake_roots`: definitions come from people (and over gRPC from
//!   the network), so a source cannot name `/etc/passwd` or climb out with `..`;
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
    /// Folders (besides `base`) that sources may read, each ending in `/`.
    roots: Vec<Url>,
    ctx: SessionContext,
}

/// The longest transform SQL accepted, in bytes.
pub const MAX_TRANSFORM_BYTES: usize = 64 * 1024;

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
        let runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
            .with_cache_manager(crate::session::fresh_listings())
            .build_arc();
        let ctx = match runtime {
            Ok(rt) => SessionContext::new_with_config_rt(lake_config(), rt),
            // Building a runtime from defaults cannot fail today; if it ever does, a default
            // session still reads the lake (one process, one listing).
            Err(_) => SessionContext::new_with_config(lake_config()),
        };
        Lake { base, roots: Vec::new(), ctx }
    }

    /// Lets sources also read below these folders (the config's `lake_roots`).
    pub fn with_roots(mut self, roots: Vec<Url>) -> Self {
        self.roots = roots;
        self
    }

    /// The same lake whose queries run under their own memory pool of `memory_limit` bytes
    /// (object stores shared): what checking definitions from a request uses, so a hostile
    /// transform cannot take the memory materialization and training sets need.
    pub fn bounded(&self, memory_limit: usize) -> Self {
        let env = self.ctx.runtime_env();
        let runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(datafusion::execution::memory_pool::GreedyMemoryPool::new(
                memory_limit,
            )))
            .with_object_store_registry(env.object_store_registry.clone())
            .with_cache_manager(crate::session::fresh_listings())
            .with_disk_manager_builder(
                datafusion::execution::disk_manager::DiskManagerBuilder::default()
                    .with_mode(datafusion::execution::disk_manager::DiskManagerMode::Disabled),
            )
            .build_arc();
        let ctx = match runtime {
            Ok(rt) => SessionContext::new_with_config_rt(self.ctx.copied_config(), rt),
            // Building a runtime from these parts cannot fail today; if it ever does, the
            // shared session still enforces the process's own limit.
            Err(_) => self.ctx.clone(),
        };
        Lake { base: self.base.clone(), roots: self.roots.clone(), ctx }
    }

    /// Whether `url` lies inside the lake or one of its roots (same scheme and authority,
    /// path below the root's).
    fn contains(&self, url: &Url) -> bool {
        std::iter::once(&self.base).chain(&self.roots).any(|root| {
            root.scheme() == url.scheme()
                && root.authority() == url.authority()
                && (url.path().starts_with(root.path()) || format!("{}/", url.path()) == root.path())
        })
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

    /// Splits a source path into listing prefix and glob, resolved against the lake, and
    /// refuses a path outside the lake and its roots.
    pub fn locate(&self, path: &str) -> Result<SourceLocation> {
        let location = self.locate_unchecked(path)?;
        let climbs = path.split(['/', '\\']).any(|s| s == ".." || s.eq_ignore_ascii_case("%2e%2e"));
        if climbs || !self.contains(&location.prefix) {
            let roots = if self.roots.is_empty() {
                String::from("no lake_roots are configured")
            } else {
                format!("lake_roots: {}", self.roots.iter().map(Url::as_str).collect::<Vec<_>>().join(", "))
            };
            return Err(Error::Schema(format!(
                "the path is outside the lake ({}; {roots}){}",
                self.base,
                if climbs { ": '..' may not be used in a source path" } else { "" }
            )));
        }
        if location.prefix.scheme() == "file" {
            self.check_no_escape_through_links(&location.prefix)?;
        }
        Ok(location)
    }

    /// A local prefix must stay inside a root once symbolic links are followed.
    fn check_no_escape_through_links(&self, prefix: &Url) -> Result<()> {
        let Ok(path) = prefix.to_file_path() else { return Ok(()) };
        // The deepest existing ancestor decides: a path that does not exist yet lists nothing.
        let Some(existing) = path.ancestors().find(|p| p.exists()) else { return Ok(()) };
        let Ok(real) = std::fs::canonicalize(existing) else { return Ok(()) };
        let roots: Vec<std::path::PathBuf> = std::iter::once(&self.base)
            .chain(&self.roots)
            .filter(|r| r.scheme() == "file")
            .filter_map(|r| r.to_file_path().ok())
            .filter(|r| path.starts_with(r))
            .collect();
        // A root that does not exist yet holds no files to list, and so no links.
        if roots.iter().any(|r| !existing.starts_with(r)) {
            return Ok(());
        }
        let inside = roots.iter().any(|r| std::fs::canonicalize(r).is_ok_and(|r| real.starts_with(r)));
        if inside {
            Ok(())
        } else {
            Err(Error::Schema(format!(
                "the path leads outside the lake ({}) through a symbolic link",
                self.base
            )))
        }
    }

    fn locate_unchecked(&self, path: &str) -> Result<SourceLocation> {
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
            .map_err(|e| fail(format!("cannot read the files' schema: {}", describe_data_error(&e))))?;
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
    ///
    /// A transform is exactly one read-only query that reads nothing but `source`: no DDL
    /// (`CREATE EXTERNAL TABLE` would run while planning), no DML or `COPY`, no `SET`, no
    /// `EXPLAIN`, no URL tables and no table functions (`generate_series` can make rows
    /// without end). Checked on the statement and again on the whole plan, subqueries included.
    pub async fn transform(&self, view: &str, input: DataFrame, sql: &str) -> Result<DataFrame> {
        let fail = |message: String| Error::Transform { view: view.to_string(), message };
        let df_fail = |e: datafusion::error::DataFusionError| fail(first_line(&e.to_string()));
        if sql.len() > MAX_TRANSFORM_BYTES {
            return Err(fail(format!("the SQL is {} bytes; the limit is {MAX_TRANSFORM_BYTES}", sql.len())));
        }
        // A fresh catalog over the same runtime (object stores, memory pool).
        let ctx = SessionContext::new_with_config_rt(self.ctx.copied_config(), self.ctx.runtime_env());
        let input_plan = input.logical_plan().clone();
        ctx.register_table("source", input.into_view()).map_err(df_fail)?;
        let state = ctx.state();
        let dialect = state.config().options().sql_parser.dialect;
        let statement = state.sql_to_statement(sql, &dialect).map_err(df_fail)?;
        let is_query = matches!(&statement, datafusion::sql::parser::Statement::Statement(s)
            if matches!(**s, datafusion::sql::sqlparser::ast::Statement::Query(_)));
        if !is_query {
            return Err(fail(
                "a transform is one read-only SELECT over the table `source` (no DDL, DML, COPY, SET or EXPLAIN)"
                    .into(),
            ));
        }
        let plan = state.statement_to_plan(statement).await.map_err(df_fail)?;
        datafusion::execution::context::SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false)
            .verify_plan(&plan)
            .map_err(df_fail)?;
        check_reads_only_source(&plan, &input_plan).map_err(fail)?;
        ctx.execute_logical_plan(plan).await.map_err(df_fail)
    }
}

/// Every table a transform's plan reads (subqueries included) is `source`, whose own plan
/// (`input`, inlined by the planner) is Quiver's and is not looked into.
fn check_reads_only_source(
    plan: &datafusion::logical_expr::LogicalPlan,
    input: &datafusion::logical_expr::LogicalPlan,
) -> std::result::Result<(), String> {
    use datafusion::common::tree_node::TreeNodeRecursion;
    use datafusion::logical_expr::LogicalPlan;
    let mut refused: Option<String> = None;
    let walked = plan.apply_with_subqueries(|node| {
        if node == input {
            return Ok(TreeNodeRecursion::Jump);
        }
        let problem = match node {
            LogicalPlan::TableScan(scan) if scan.table_name.table() != "source" || scan.table_name.schema().is_some() => {
                Some("a transform may read only the table `source` (no other tables, files or table functions)")
            }
            LogicalPlan::Ddl(_) | LogicalPlan::Dml(_) | LogicalPlan::Copy(_) | LogicalPlan::Statement(_) => {
                Some("a transform may not define, change or copy tables")
            }
            LogicalPlan::Explain(_) | LogicalPlan::Analyze(_) => Some("a transform may not be an EXPLAIN"),
            LogicalPlan::Extension(_) => Some("a transform may not use extension plan nodes"),
            _ => None,
        };
        if let Some(p) = problem {
            refused = Some(p.to_string());
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    if let Err(e) = walked {
        return Err(first_line(&e.to_string()));
    }
    refused.map_or(Ok(()), Err)
}

/// Describes a failure to read or compute data without the data itself: DataFusion's and
/// Arrow's messages quote the offending value (`Cannot cast string 'alice=123-45-6789'`),
/// and a problem text goes back to whoever sent the definitions. Planning errors (names and
/// types only) keep their message.
pub fn describe_data_error(e: &datafusion::error::DataFusionError) -> String {
    use datafusion::arrow::error::ArrowError;
    use datafusion::error::DataFusionError as D;
    let hidden = "(details are not shown: they may contain data values)";
    match e.find_root() {
        D::Plan(_) | D::SchemaError(..) | D::NotImplemented(_) | D::Configuration(_) => {
            first_line(&e.to_string())
        }
        D::ResourcesExhausted(_) => {
            "the check ran out of memory: the limit for checking definitions was reached".into()
        }
        D::ArrowError(a, _) => match a.as_ref() {
            ArrowError::CastError(_) => format!("a value does not convert to the column's type {hidden}"),
            ArrowError::ParseError(_) => format!("a value does not parse {hidden}"),
            ArrowError::CsvError(_) => format!("the CSV data is malformed {hidden}"),
            ArrowError::JsonError(_) => format!("the JSON data is malformed {hidden}"),
            ArrowError::DivideByZero => "division by zero".into(),
            ArrowError::ArithmeticOverflow(_) => format!("an arithmetic overflow {hidden}"),
            ArrowError::SchemaError(_) => format!("the data does not match its schema {hidden}"),
            _ => format!("the data cannot be read or computed {hidden}"),
        },
        D::ParquetError(_) => format!("the Parquet data cannot be decoded {hidden}"),
        D::ObjectStore(_) | D::IoError(_) => format!("the files cannot be read {hidden}"),
        _ => format!("the query failed while running {hidden}"),
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
        let l = lake.locate_unchecked("driver_stats/*.parquet").unwrap();
        assert_eq!(l.prefix.as_str(), "file:///lake/driver_stats/");
        assert_eq!(l.glob.as_deref(), Some("*.parquet"));
        let l = lake.locate_unchecked("a/year=*/part-?.csv").unwrap();
        assert_eq!(l.prefix.as_str(), "file:///lake/a/");
        assert_eq!(l.glob.as_deref(), Some("part-?.csv"), "partition folders are transparent");
        let l = lake.locate_unchecked("s3://bucket/raw/*.json").unwrap();
        assert_eq!(l.prefix.as_str(), "s3://bucket/raw/");
        let l = lake.locate_unchecked("events/").unwrap();
        assert!(l.is_folder);
        let l = lake.locate_unchecked("/abs/file.parquet").unwrap();
        assert_eq!(l.prefix.as_str(), "file:///abs/file.parquet");
        assert!(!l.is_folder);
        let l = lake.locate_unchecked("*.parquet").unwrap();
        assert_eq!(l.prefix.as_str(), "file:///lake/");
    }

    #[test]
    fn source_paths_stay_inside_the_lake_and_its_roots() {
        let lake = Lake::new(Url::parse("file:///lake").unwrap()).with_roots(vec![
            Url::parse("file:///shared/raw/").unwrap(),
            Url::parse("s3://bucket/events/").unwrap(),
        ]);
        for inside in [
            "driver_stats/*.parquet",
            "a/b.csv",
            "/lake/x.parquet",
            "file:///lake/x/",
            "/shared/raw/y.json",
            "s3://bucket/events/2026/*.parquet",
        ] {
            assert!(lake.locate(inside).is_ok(), "{inside}: {:?}", lake.locate(inside));
        }
        for outside in [
            "/etc/passwd",
            "file:///etc/passwd",
            "../quiver.yaml",
            "a/../../etc/passwd",
            "a/%2e%2e/%2E%2E/etc/passwd",
            "/lake/../etc/passwd",
            "/lakeside/x.parquet",
            "/shared/rawx/y.json",
            "s3://bucket/other/x.parquet",
            "s3://other-bucket/events/x.parquet",
            "memory:///x.parquet",
            "http://169.254.169.254/latest/meta-data",
        ] {
            let e = lake.locate(outside).expect_err(outside).to_string();
            assert!(e.contains("outside the lake"), "{outside}: {e}");
        }
        let e = lake.locate("a/../b.csv").unwrap_err().to_string();
        assert!(e.contains("'..' may not be used"), "{e}");
    }

    #[tokio::test]
    async fn a_transform_is_one_select_over_source_and_nothing_else() {
        let lake = Lake::new(Url::parse("file:///lake").unwrap());
        let input = || {
            lake.session()
                .read_empty()
                .unwrap()
                .select(vec![datafusion::prelude::lit(1_i64).alias("x")])
                .unwrap()
        };
        let ok = lake
            .transform("v", input(), "SELECT x, x + 1 AS y FROM source WHERE x IN (SELECT x FROM source)")
            .await;
        assert!(ok.is_ok(), "{:?}", ok.err());
        for (sql, expected) in [
            ("SELECT 1 AS x; SELECT 2 AS x", "single SQL statement"),
            ("CREATE TABLE t AS SELECT 1", "one read-only SELECT"),
            ("INSERT INTO source VALUES (1)", "one read-only SELECT"),
            ("DROP TABLE source", "one read-only SELECT"),
            ("SELECT * FROM range(10)", "only the table `source`"),
            (
                "SELECT * FROM source WHERE x > (SELECT max(value) FROM generate_series(1, 3))",
                "only the table `source`",
            ),
            ("SELECT * FROM information_schema.tables", "information_schema"),
        ] {
            let e = lake.transform("v", input(), sql).await.expect_err(sql).to_string();
            assert!(e.contains(expected), "{sql}: {e}");
        }
        let long = format!("SELECT x FROM source -- {}", "y".repeat(MAX_TRANSFORM_BYTES));
        let e = lake.transform("v", input(), &long).await.unwrap_err().to_string();
        assert!(e.contains("the limit is 65536"), "{e}");
    }
}
