//! Checking definitions against the data they read, before anything is applied: every
//! source can be listed and read, its timestamp columns exist, every view's transform
//! plans and runs, and the view's output holds the join keys and features with types
//! compatible with what was declared.
//!
//! Each check reads schemas and a small sample (up to [`SAMPLE_ROWS`] rows), so a
//! malformed file or a timestamp that does not parse shows up here rather than in the
//! first materialization. A transform is checked over that sample of its source, never the
//! whole source.
//!
//! Definitions may come from anyone allowed to plan (over gRPC, from the network), so the
//! checks are bounded: they run under [`CheckLimits`] (a time limit, and a memory pool of
//! their own), stop when the caller goes away (the work runs inside the caller's future),
//! and their problem texts name files, columns and types but never quote data values
//! ([`crate::lake::describe_data_error`]).

use std::collections::BTreeMap;
use std::time::Duration;

use datafusion::arrow::datatypes::Schema;
use datafusion::prelude::DataFrame;
use quiver_core::definitions::{FeatureView, Source};
use quiver_core::problem::{ObjectKind, Problem, Problems};
use quiver_core::repo::LoadedDefinitions;

use crate::error::Error;
use crate::lake::{Lake, describe_data_error};
use crate::types::{is_compatible, is_text, is_timestamp_like, suggested_dtype};

/// How many rows of each source and view output are read to prove they decode.
pub const SAMPLE_ROWS: usize = 100;

/// Bounds on checking definitions against the lake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckLimits {
    /// The whole check of one set of definitions.
    pub time: Duration,
    /// Memory the check's queries may hold (a pool of their own).
    pub memory: usize,
}

impl Default for CheckLimits {
    fn default() -> Self {
        CheckLimits { time: Duration::from_secs(60), memory: 256 << 20 }
    }
}

/// Every problem found checking `loaded` against the lake. Objects that already failed
/// structural validation are skipped rather than reported twice.
pub async fn check_against_lake(loaded: &LoadedDefinitions, lake: &Lake) -> Problems {
    let defs = &loaded.definitions;
    let origins = &loaded.origins;
    let mut problems = Problems::default();
    // Source name -> its frame, for sources that read fine.
    let mut frames: BTreeMap<&str, DataFrame> = BTreeMap::new();

    for source in &defs.sources {
        match check_source(lake, source).await {
            Ok(frame) => {
                let schema = frame.schema().as_arrow().clone();
                let mut ok = true;
                for (field, column) in std::iter::once(("timestamp_field", source.timestamp_field.as_str()))
                    .chain(source.created_timestamp_field.as_deref().map(|c| ("created_timestamp_field", c)))
                {
                    if schema.field_with_name(column).is_err() {
                        ok = false;
                        problems.push(
                            Problem::at(origins.field(ObjectKind::Source, &source.name, field), ObjectKind::Source, &source.name, Some(field.into()), format!("column '{column}' is not in the data"))
                                .with_hint(format!("the files have columns: {}", column_list(&schema))),
                        );
                    }
                }
                if ok {
                    frames.insert(&source.name, frame);
                }
            }
            Err(message) => problems.push(
                Problem::at(origins.field(ObjectKind::Source, &source.name, "path"), ObjectKind::Source, &source.name, Some("path".into()), message)
                    .with_hint(format!("paths are relative to the lake ({}) unless they are full URLs; a folder reads its {} files", lake.base(), source.format.extension())),
            ),
        }
    }

    for view in &defs.feature_views {
        let Some(frame) = frames.get(view.source.as_str()) else { continue };
        let Some(source) = defs.source(&view.source) else { continue };
        problems.extend(check_view(lake, loaded, view, source, frame.clone()).await);
    }
    problems
}

/// Lists and samples a source; the error is a one-line message for the user.
async fn check_source(lake: &Lake, source: &Source) -> Result<DataFrame, String> {
    let frame = lake.source_frame(source).await.map_err(|e| match e {
        Error::Source { message, .. } => message,
        other => other.to_string(),
    })?;
    sample(&frame).await.map_err(|e| format!("cannot read the data: {e}"))?;
    Ok(frame)
}

async fn sample(frame: &DataFrame) -> Result<(), String> {
    frame
        .clone()
        .limit(0, Some(SAMPLE_ROWS))
        .map_err(|e| describe_data_error(&e))?
        .collect()
        .await
        .map(|_| ())
        .map_err(|e| describe_data_error(&e))
}

fn column_list(schema: &Schema) -> String {
    schema.fields().iter().map(|f| format!("{} ({})", f.name(), f.data_type())).collect::<Vec<_>>().join(", ")
}

async fn check_view(
    lake: &Lake,
    loaded: &LoadedDefinitions,
    view: &FeatureView,
    source: &Source,
    source_frame: DataFrame,
) -> Problems {
    let kind = ObjectKind::FeatureView;
    let name = view.name.as_str();
    let origins = &loaded.origins;
    let mut problems = Problems::default();
    let input_schema = source_frame.schema().as_arrow().clone();
    let frame = match &view.transform {
        None => source_frame,
        // The transform reads a sample of its source: a check never scans the whole lake.
        Some(sql) => {
            match async { lake.transform(name, source_frame.limit(0, Some(SAMPLE_ROWS))?, sql).await }.await {
                Ok(f) => f,
                Err(e) => {
                    let message = match e {
                        Error::Transform { message, .. } => message,
                        other => other.to_string(),
                    };
                    problems.push(
                        origins
                            .problem(kind, name, "transform", format!("the SQL does not plan: {message}"))
                            .with_hint(format!(
                                "the source is the table `source` with columns: {}",
                                column_list(&input_schema)
                            )),
                    );
                    return problems;
                }
            }
        }
    };
    let schema = frame.schema().as_arrow().clone();
    let from = if view.transform.is_some() { "the transform's output" } else { "the source" };
    let columns = column_list(&schema);

    for (field, column) in std::iter::once(("timestamp", source.timestamp_field.as_str()))
        .chain(source.created_timestamp_field.as_deref().map(|c| ("created timestamp", c)))
    {
        match schema.field_with_name(column) {
            Err(_) => problems.push(
                origins.problem(kind, name, "transform", format!("{from} has no {field} column '{column}'"))
                    .with_hint(format!("keep the column in the SELECT; {from} has: {columns}")),
            ),
            Ok(f) if !(is_timestamp_like(f.data_type()) || is_text(f.data_type())) => problems.push(
                Problem::at(origins.field(ObjectKind::Source, &source.name, "timestamp_field"), kind, name, None, format!("{field} column '{column}' is {}, not a timestamp", f.data_type()))
                    .with_hint(format!("convert it in a transform, e.g. SELECT *, to_timestamp_seconds({column}) AS {column} FROM source ... for epoch seconds")),
            ),
            Ok(_) => {}
        }
    }

    let keys = loaded.definitions.join_keys(view);
    let checks =
        keys.iter().map(|k| (format!("entities (join key {})", k.name), "entities".to_string(), k)).chain(
            view.features
                .iter()
                .map(|f| (format!("features[{}]", f.name), format!("features[{}].dtype", f.name), f)),
        );
    for (field, origin_field, declared) in checks {
        let what = if field.starts_with("entities") { "join key" } else { "feature" };
        match schema.field_with_name(&declared.name) {
            Err(_) => problems.push(
                Problem::at(
                    origins.field(kind, name, &origin_field),
                    kind,
                    name,
                    Some(field),
                    format!("{what} column '{}' is not in {from}", declared.name),
                )
                .with_hint(format!("{from} has: {columns}")),
            ),
            Ok(actual) if !is_compatible(&declared.dtype, actual.data_type()) => {
                let hint = match suggested_dtype(actual.data_type()) {
                    Some(d) => format!(
                        "declare it as {d}, or cast it in a transform: SELECT CAST({n} AS <type>) AS {n} ...",
                        n = declared.name
                    ),
                    None => format!(
                        "cast it in a transform: SELECT CAST({n} AS <type>) AS {n} ...",
                        n = declared.name
                    ),
                };
                problems.push(
                    Problem::at(
                        origins.field(kind, name, &origin_field),
                        kind,
                        name,
                        Some(field),
                        format!(
                            "{what} '{}' is declared {} but the column is {}",
                            declared.name,
                            declared.dtype,
                            actual.data_type()
                        ),
                    )
                    .with_hint(hint),
                );
            }
            Ok(_) => {}
        }
    }

    if problems.is_empty() {
        // Planning is not running: casts, divisions and text timestamps fail only on data.
        let ts: Vec<&str> = std::iter::once(source.timestamp_field.as_str())
            .chain(source.created_timestamp_field.as_deref())
            .collect();
        let outcome = match crate::lake::normalize_timestamps(frame, &ts, true) {
            Ok(f) => sample(&f).await,
            Err(e) => Err(e.to_string()),
        };
        if let Err(message) = outcome {
            let field = if view.transform.is_some() { "transform" } else { "source" };
            problems.push(
                origins
                    .problem(
                        kind,
                        name,
                        field,
                        format!("reading the first {SAMPLE_ROWS} rows failed: {message}"),
                    )
                    .with_hint("fix the data or the transform so every row converts"),
            );
        }
    }
    problems
}

/// Every check on loaded definitions: what reading found, references between objects, and
/// the lake data. All problems together, sorted by place; `Ok` when there are none.
pub async fn check_all(
    loaded: &LoadedDefinitions,
    lake: &Lake,
    limits: CheckLimits,
) -> quiver_core::Result<()> {
    let mut problems = Problems::default();
    problems.extend(loaded.problems.clone());
    problems.extend(quiver_core::validate::validate_references(loaded));
    let bounded = lake.bounded(limits.memory);
    match tokio::time::timeout(limits.time, check_against_lake(loaded, &bounded)).await {
        Ok(found) => problems.extend(found),
        Err(_) => {
            return Err(quiver_core::Error::InvalidArgument(format!(
                "checking the definitions against the lake did not finish within {:?} (the limit for \
                 checking definitions); make the transforms cheaper over a sample of {SAMPLE_ROWS} rows",
                limits.time
            )));
        }
    }
    problems.sort_by_place();
    problems.into_result()
}
