//! Historical (training) retrieval: the spine with, for each row, every requested feature as
//! it was at that row's time.
//!
//! The plan, per request:
//! 1. the spine is read in one partition (so row numbers follow the file) and numbered;
//!    its timestamp column is parsed to UTC nanoseconds and each view's join keys are cast
//!    to the declared types, in extra columns;
//! 2. for each view: sort the running result by (that view's keys, time), read the view's
//!    offline rows at a pinned table version in (keys, event time, created time, features)
//!    order — a merge of its sorted files ([`crate::sorted`]) — and join the two with
//!    [`AsofJoinExec`];
//! 3. sort by row number, drop the helper columns: every spine row comes back once, in
//!    input order, with all its columns, followed by the features in the requested order.
//!
//! With [`HistoricalRequest::partitions`] above 1 (on a cluster), step 2 splits both sides
//! by a hash of the view's join keys instead, and sorts and joins each partition on its own;
//! step 3 merges the sorted partitions back into one.
//!
//! Everything is a DataFusion physical plan: the sorts are Quiver's own
//! ([`crate::rowsort::SortRowsExec`]), which spill sorted runs under the session's memory
//! limit, and the custom nodes have a codec ([`crate::pit::QuiverCodec`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::logical_expr::{Expr, col};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{LexOrdering, PhysicalExpr, PhysicalSortExpr};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::Partitioning;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::prelude::{DataFrame, SessionContext, cast};
use quiver_core::definitions::{Definitions, FeatureRef, FeatureView};

use crate::error::{Error, Result};
use crate::lake::normalize_timestamps;
use crate::layout::{EVENT_TIMESTAMP, offline_schema};
use crate::pit::{AsofJoinExec, AsofParams};
use crate::store::{OfflineStore, TableSnapshot};
use crate::types::{arrow_type, is_compatible};

/// What every helper column's name starts with; no spine column may hold it.
const RESERVED_MARKER: &str = "__quiver";
/// Helper column: the spine row's position in the input.
const ROW: &str = "__quiver_row";
/// Helper column: the spine's time as UTC nanoseconds.
const TIME: &str = "__quiver_ts";

/// What to retrieve.
#[derive(Clone, Debug)]
pub struct HistoricalRequest {
    pub features: Vec<FeatureRef>,
    /// Name features `view__feature` instead of `feature`.
    pub full_feature_names: bool,
    /// The spine's timestamp column.
    pub timestamp_column: String,
    /// Table version to read per view; the latest when absent.
    pub table_versions: BTreeMap<String, u64>,
    /// How many partitions each view's join runs in. 1 (what one process uses): the spine
    /// and the view's sorted files are merged into one sorted stream each. More (what a
    /// cluster uses): both sides are split by a hash of the view's join keys, so all rows of
    /// one entity meet in one partition, and each partition is sorted and joined on its own.
    /// The answer is the same.
    pub partitions: usize,
}

/// A planned retrieval.
pub struct HistoricalPlan {
    pub plan: Arc<dyn ExecutionPlan>,
    pub schema: SchemaRef,
    /// Per view, the table version read (`None`: never materialized, features are null).
    pub tables: Vec<(String, Option<TableSnapshot>)>,
    /// The output names of the features, in order.
    pub feature_columns: Vec<String>,
}

/// The output name of a feature.
pub fn output_name(r: &FeatureRef, full: bool) -> String {
    if full { format!("{}__{}", r.view, r.feature) } else { r.feature.clone() }
}

/// A session for reading a spine: one partition, so row numbers follow the file.
pub fn spine_session(ctx: &SessionContext) -> SessionContext {
    let config = ctx.copied_config().with_target_partitions(1);
    SessionContext::new_with_config_rt(config, ctx.runtime_env())
}

/// Plans a retrieval of `request` for the spine `spine` (read with [`spine_session`]).
pub async fn plan_historical(
    ctx: &SessionContext,
    defs: &Definitions,
    store: &OfflineStore,
    spine: DataFrame,
    request: &HistoricalRequest,
) -> Result<HistoricalPlan> {
    if request.features.is_empty() {
        return Err(Error::InvalidInput("no features requested".into()));
    }
    // Views in order of first mention, with their features in request order.
    let mut views: Vec<(&FeatureView, Vec<&FeatureRef>)> = Vec::new();
    for r in &request.features {
        let view = defs.feature_view(&r.view).ok_or_else(|| {
            Error::InvalidInput(format!(
                "unknown feature view '{}'{}",
                r.view,
                quiver_core::definitions::suggest(
                    &r.view,
                    defs.feature_views.iter().map(|v| v.name.as_str())
                )
            ))
        })?;
        if view.feature(&r.feature).is_none() {
            return Err(Error::InvalidInput(format!(
                "feature view '{}' has no feature '{}'{}",
                r.view,
                r.feature,
                quiver_core::definitions::suggest(&r.feature, view.features.iter().map(|f| f.name.as_str()))
            )));
        }
        match views.iter_mut().find(|(v, _)| v.name == view.name) {
            Some((_, refs)) => {
                if !refs.contains(&r) {
                    refs.push(r)
                }
            }
            None => views.push((view, vec![r])),
        }
    }
    let spine_schema = spine.schema().as_arrow().clone();
    let spine_columns: Vec<String> = spine_schema.fields().iter().map(|f| f.name().clone()).collect();
    // Quiver's own helper columns while it joins are named `__quiver…`. A spine column with
    // that marker anywhere in its name is refused, and the error gives its position, not its
    // name: a reserved name in a message would read as an internal column leaking out.
    if let Some(position) = spine_columns.iter().position(|c| c.contains(RESERVED_MARKER)) {
        return Err(Error::InvalidInput(format!(
            "spine column {}: its name holds two underscores followed by 'quiver', a marker \
             reserved for Quiver's own helper columns; rename it",
            position + 1
        )));
    }

    // Output names: unique, and not clashing with the spine.
    let mut names: BTreeMap<String, &FeatureRef> = BTreeMap::new();
    let mut feature_columns = Vec::new();
    for r in &request.features {
        let name = output_name(r, request.full_feature_names);
        if let Some(other) = names.get(&name) {
            if *other == r {
                continue;
            }
            return Err(Error::InvalidInput(format!(
                "feature name '{name}' is requested from both view '{}' and view '{}'; pass --full-feature-names \
                 to name them view__feature",
                other.view, r.view
            )));
        }
        if spine_columns.contains(&name) {
            return Err(Error::InvalidInput(format!(
                "the spine already has a column '{name}', the name of feature {r}; rename the spine column or pass --full-feature-names"
            )));
        }
        names.insert(name.clone(), r);
        feature_columns.push(name);
    }

    // The spine: timestamp present (its type is checked when it is parsed below), keys
    // present with compatible types.
    spine_schema.field_with_name(&request.timestamp_column).map_err(|_| {
        Error::InvalidInput(format!(
            "the spine has no timestamp column '{}' (columns: {}); name it with --timestamp-column",
            request.timestamp_column,
            shown_columns(&spine_columns)
        ))
    })?;
    let mut exprs: Vec<Expr> =
        spine_columns.iter().map(|c| col(datafusion::common::Column::from_name(c))).collect();
    exprs.push(col(datafusion::common::Column::from_name(&request.timestamp_column)).alias(TIME));
    for (j, (view, _)) in views.iter().enumerate() {
        for (i, key) in defs.join_keys(view).iter().enumerate() {
            let field = spine_schema.field_with_name(&key.name).map_err(|_| {
                Error::InvalidInput(format!(
                    "the spine has no column '{}', a join key of feature view '{}' (spine columns: {})",
                    key.name,
                    view.name,
                    shown_columns(&spine_columns)
                ))
            })?;
            if !is_compatible(&key.dtype, field.data_type()) {
                return Err(Error::InvalidInput(format!(
                    "the spine's column '{}' is {}, but it is a {} join key of feature view '{}'",
                    key.name,
                    field.data_type(),
                    key.dtype,
                    view.name
                )));
            }
            exprs.push(
                cast(col(datafusion::common::Column::from_name(&key.name)), arrow_type(&key.dtype))
                    .alias(key_column(j, i)),
            );
        }
    }
    let spine = spine.select(exprs)?;
    let spine = normalize_timestamps(spine, &[TIME], true).map_err(|e| match e {
        // The check ran on the helper column; the user knows the column by its own name.
        Error::Schema(m) => Error::InvalidInput(format!(
            "the spine's timestamp column: {}",
            m.replace(TIME, &request.timestamp_column)
        )),
        other => other,
    })?;
    let spine = spine.window(vec![datafusion::functions_window::expr_fn::row_number().alias(ROW)])?;
    let mut current: Arc<dyn ExecutionPlan> = spine.create_physical_plan().await?;

    let mut tables = Vec::new();
    for (j, (view, refs)) in views.iter().enumerate() {
        let keys = defs.join_keys(view);
        let schema = current.schema();
        let spine_keys: Vec<usize> = (0..keys.len())
            .map(|i| schema.index_of(&key_column(j, i)))
            .collect::<std::result::Result<_, _>>()?;
        let spine_ts = schema.index_of(TIME)?;
        let mut order: Vec<PhysicalSortExpr> = spine_keys
            .iter()
            .chain(std::iter::once(&spine_ts))
            .map(|i| PhysicalSortExpr::new(Arc::new(Column::new(schema.field(*i).name(), *i)), ascending()))
            .collect();
        order.dedup_by(|a, b| a.expr.to_string() == b.expr.to_string());
        let ordering = LexOrdering::new(order).ok_or_else(|| Error::Internal("empty sort order".into()))?;

        let snapshot = store.snapshot(&view.name, request.table_versions.get(&view.name).copied()).await?;
        let table_schema = offline_schema(defs, view);
        let feature_keys: Vec<usize> =
            keys.iter().map(|k| table_schema.index_of(&k.name)).collect::<std::result::Result<_, _>>()?;
        let (sorted_spine, features) = if request.partitions <= 1 {
            (
                parallel_sort(ctx, ordering, current)?,
                crate::sorted::sorted_rows(ctx, snapshot.as_ref(), table_schema.clone())?,
            )
        } else {
            // Spine rows go to the partition their keys hash to, as the feature rows do in
            // `partitioned_rows`: the key columns have the same types on both sides (the
            // spine's are cast to the declared ones), so equal keys hash alike.
            let hash = spine_keys
                .iter()
                .map(|i| Arc::new(Column::new(schema.field(*i).name(), *i)) as Arc<dyn PhysicalExpr>)
                .collect();
            let split =
                Arc::new(RepartitionExec::try_new(current, Partitioning::Hash(hash, request.partitions))?);
            (
                Arc::new(crate::rowsort::SortRowsExec::new(ordering, split)) as Arc<dyn ExecutionPlan>,
                crate::sorted::partitioned_rows(
                    ctx,
                    snapshot.as_ref(),
                    table_schema.clone(),
                    &feature_keys,
                    request.partitions,
                )?,
            )
        };
        let fschema = features.schema();
        let params = AsofParams {
            spine_keys,
            spine_ts,
            feature_keys,
            feature_ts: fschema.index_of(EVENT_TIMESTAMP)?,
            feature_values: refs
                .iter()
                .map(|r| fschema.index_of(&r.feature))
                .collect::<std::result::Result<_, _>>()?,
            output_names: refs.iter().map(|r| output_name(r, request.full_feature_names)).collect(),
            ttl_ns: i64::try_from(view.ttl.seconds())
                .ok()
                .and_then(|s| s.checked_mul(1_000_000_000))
                .ok_or_else(|| Error::InvalidInput(format!("view '{}': ttl too large", view.name)))?,
        };
        current = Arc::new(AsofJoinExec::try_new(sorted_spine, features, params)?);
        tables.push((view.name.clone(), snapshot));
    }

    // Back to input order, helper columns dropped, features in request order.
    let schema = current.schema();
    let row = schema.index_of(ROW)?;
    let ordering =
        LexOrdering::new(vec![PhysicalSortExpr::new(Arc::new(Column::new(ROW, row)), ascending())])
            .ok_or_else(|| Error::Internal("empty sort order".into()))?;
    let sorted = parallel_sort(ctx, ordering, current)?;
    let mut projection: Vec<(Arc<dyn datafusion::physical_expr::PhysicalExpr>, String)> = Vec::new();
    for name in spine_columns.iter().chain(feature_columns.iter()) {
        let i = schema.index_of(name)?;
        projection.push((Arc::new(Column::new(name, i)), name.clone()));
    }
    let plan: Arc<dyn ExecutionPlan> = Arc::new(ProjectionExec::try_new(projection, sorted)?);
    Ok(HistoricalPlan { schema: plan.schema(), plan, tables, feature_columns })
}

/// Sorts `input` into one partition using the session's cores: its batches are dealt
/// round-robin to the session's partitions, each partition is sorted by Quiver's own sort
/// (`SortRowsExec`: every byte it holds is in its own spillable reservation, so the several
/// sorts of one training set share the pool and spill rather than fail) and the sorted
/// partitions are merged.
fn parallel_sort(
    ctx: &SessionContext,
    ordering: LexOrdering,
    input: Arc<dyn ExecutionPlan>,
) -> Result<Arc<dyn ExecutionPlan>> {
    let partitions = ctx.copied_config().target_partitions();
    if partitions <= 1 {
        return Ok(crate::sorted::sort_into_one(input, ordering));
    }
    let dealt = Arc::new(RepartitionExec::try_new(input, Partitioning::RoundRobinBatch(partitions))?);
    Ok(crate::sorted::sort_into_one(dealt, ordering))
}

/// The spine's column names for an error message, bounded: at most [`SHOWN_COLUMNS`] names of
/// at most [`SHOWN_NAME_CHARS`] characters each, control characters escaped, and how many
/// more there are. A spine's header is the caller's input; a message never repeats it whole.
fn shown_columns(columns: &[String]) -> String {
    let mut shown: Vec<String> = columns
        .iter()
        .take(SHOWN_COLUMNS)
        .map(|c| {
            let mut name = String::new();
            for ch in c.chars().take(SHOWN_NAME_CHARS) {
                if ch.is_control() {
                    name.extend(ch.escape_default());
                } else {
                    name.push(ch);
                }
            }
            if c.chars().nth(SHOWN_NAME_CHARS).is_some() {
                name.push('…');
            }
            name
        })
        .collect();
    if columns.len() > SHOWN_COLUMNS {
        shown.push(format!("and {} more", columns.len() - SHOWN_COLUMNS));
    }
    shown.join(", ")
}
const SHOWN_COLUMNS: usize = 20;
const SHOWN_NAME_CHARS: usize = 64;

fn key_column(view: usize, key: usize) -> String {
    format!("__quiver_v{view}_k{key}")
}

fn ascending() -> SortOptions {
    SortOptions { descending: false, nulls_first: true }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spine_columns_in_a_message_are_bounded_and_control_characters_escaped() {
        let columns: Vec<String> = (0..25).map(|i| format!("c{i}")).collect();
        let shown = shown_columns(&columns);
        assert!(shown.starts_with("c0, c1, "), "{shown}");
        assert!(shown.ends_with("c19, and 5 more"), "{shown}");

        let long = "é".repeat(100);
        let shown = shown_columns(&[long, "a\u{0}b\nc".into()]);
        assert_eq!(shown, format!("{}…, a\\u{{0}}b\\nc", "é".repeat(64)));
        assert_eq!(shown_columns(&[]), "");
    }
}
