//! Reading a materialization window from the lake: the view's rows of the window in the
//! offline layout, the start of a view's data (where an incremental run begins when the view
//! has no watermark), and the number of writers a window gets.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::common::ScalarValue;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties, Partitioning};
use datafusion::prelude::DataFrame;
use quiver_core::definitions::{Definitions, FeatureView};

use crate::error::{Error, Result};
use crate::lake::Lake;
use crate::layout::{Window, column, layout_exprs};

/// The rows of `window` of a view, laid out and typed as its offline table (not yet sorted:
/// see [`crate::layout::latest_row_ordering`]). Rows missing a join key are still here, and
/// so are the source's rows without an event time (which belong to no window): the
/// materialization drops both as it reads, and counts them for the run's report.
pub async fn window_rows(
    lake: &Lake,
    defs: &Definitions,
    view: &FeatureView,
    window: &Window,
) -> Result<DataFrame> {
    let source = defs
        .source(&view.source)
        .ok_or_else(|| Error::Internal(format!("view '{}' has no source in the registry", view.name)))?;
    let frame = lake.view_frame(defs, view).await?;
    let filter = window.lake_filter(&source.timestamp_field).or(column(&source.timestamp_field).is_null());
    let layout = layout_exprs(defs, view, &source.timestamp_field, source.created_timestamp_field.as_deref());
    Ok(frame.filter(filter)?.select(layout)?)
}

/// The earliest event time of a view's data, or `None` when it has no rows.
pub async fn data_start(
    lake: &Lake,
    defs: &Definitions,
    view: &FeatureView,
) -> Result<Option<DateTime<Utc>>> {
    let source = defs
        .source(&view.source)
        .ok_or_else(|| Error::Internal(format!("view '{}' has no source in the registry", view.name)))?;
    let frame = lake.view_frame(defs, view).await?;
    let ts = column(&source.timestamp_field);
    let batches = frame
        .aggregate(vec![], vec![datafusion::functions_aggregate::expr_fn::min(ts).alias("m")])?
        .collect()
        .await?;
    let value = batches
        .first()
        .filter(|b| b.num_rows() > 0)
        .map(|b| ScalarValue::try_from_array(b.column(0), 0))
        .transpose()?;
    Ok(match value {
        Some(ScalarValue::TimestampNanosecond(Some(ns), _)) => {
            Some(DateTime::<Utc>::from_timestamp_nanos(ns))
        }
        _ => None,
    })
}

/// The window's rows in as many partitions as it gets writers: the session's target
/// partitions, fewer for a window estimated below the minimum rows per writer (each
/// partition becomes files of its own, so small windows do not scatter into small files).
/// Batches are dealt round-robin when the scan made another number of partitions.
pub(super) fn writer_partitions(
    rows: Arc<dyn ExecutionPlan>,
    target_partitions: usize,
    per_writer: usize,
) -> Result<Arc<dyn ExecutionPlan>> {
    let statistics = datafusion::physical_plan::StatisticsContext::new()
        .compute(rows.as_ref(), &datafusion::physical_plan::StatisticsArgs::new())?;
    let estimate = statistics.num_rows.get_value().copied();
    let wanted = match estimate {
        Some(n) => n.div_ceil(per_writer).clamp(1, target_partitions.max(1)),
        None => target_partitions.max(1),
    };
    if wanted == rows.output_partitioning().partition_count() {
        return Ok(rows);
    }
    Ok(Arc::new(RepartitionExec::try_new(rows, Partitioning::RoundRobinBatch(wanted))?))
}
