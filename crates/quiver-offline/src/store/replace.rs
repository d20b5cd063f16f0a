//! Replacing a window of event time (Delta's `replaceWhere`): which live files a window
//! covers, by their statistics, and the rewrite of files that straddle its edges.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use datafusion::datasource::listing::{ListingTableUrl, PartitionedFile};
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder};
use datafusion::datasource::source::DataSourceExec;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;

use crate::error::Result;
use crate::layout::{EVENT_TIMESTAMP, Window};

/// Where a file's rows lie against a window of event time, by its Delta statistics.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum InWindow {
    /// Every row inside: the file is removed.
    Inside,
    /// No row inside: the file is kept.
    Outside,
    /// Some rows may be inside (or the statistics do not tell): the file is rewritten with
    /// its rows outside the window.
    Straddles,
}

/// Delta keeps timestamp statistics in milliseconds: a row's time lies in
/// `[min_ms, max_ms + 1 ms)`, so both tests below are conservative. A file with null event
/// times is never "inside" (those rows are outside every window).
pub(super) fn file_in_window(stats: Option<&str>, window: &Window) -> InWindow {
    let Some(stats) = stats.and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok()) else {
        return InWindow::Straddles;
    };
    if stats.get("numRecords").and_then(|n| n.as_u64()) == Some(0) {
        return InWindow::Inside;
    }
    let time = |kind: &str| -> Option<i64> {
        let text = stats.get(kind)?.get(EVENT_TIMESTAMP)?.as_str()?;
        Some(chrono::DateTime::parse_from_rfc3339(text).ok()?.timestamp_micros())
    };
    let nulls = stats.get("nullCount").and_then(|n| n.get(EVENT_TIMESTAMP)).and_then(|n| n.as_u64());
    let (Some(min), Some(max)) = (time("minValues"), time("maxValues")) else {
        return match nulls {
            // Every event time is null: no row can be inside.
            Some(n) if Some(n) == stats.get("numRecords").and_then(|r| r.as_u64()) => InWindow::Outside,
            _ => InWindow::Straddles,
        };
    };
    let (start, end) = window.micros();
    let max_upper = max.saturating_add(999);
    if max_upper < start || min >= end {
        InWindow::Outside
    } else if min >= start && max_upper < end && nulls == Some(0) {
        InWindow::Inside
    } else {
        InWindow::Straddles
    }
}

/// Writes the rows of `file` outside the window to new files, in the file's own order.
pub(super) async fn rewrite_outside(
    ctx: &SessionContext,
    view: &str,
    file: &super::table::LiveFile,
    target: &super::writer::FileTarget,
    window: &Window,
) -> Result<Vec<deltalake::kernel::Add>> {
    let schema = target.file_schema.clone();
    let url = ListingTableUrl::parse(&file.url)?;
    let source = crate::sorted::table_file_source(ctx, schema.clone(), &url.object_store())?;
    let config = FileScanConfigBuilder::new(url.object_store(), source)
        .with_file_groups(vec![FileGroup::new(vec![PartitionedFile::new(
            url.prefix().to_string(),
            file.size,
        )])])
        .build();
    let scan = DataSourceExec::from_data_source(config);
    let keep = window.table_outside();
    let df_schema = datafusion::common::DFSchema::try_from(schema.as_ref().clone())?;
    let keep = ctx.create_physical_expr(keep, &df_schema)?;
    let filtered: Arc<dyn ExecutionPlan> =
        Arc::new(datafusion::physical_plan::filter::FilterExec::try_new(keep, scan)?);
    super::writer::write_partitions(view, filtered, ctx.task_ctx(), target, Arc::new(AtomicU64::new(0)), None)
        .await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn stats(min: &str, max: &str, nulls: u64) -> String {
        format!(
            r#"{{"numRecords": 10, "minValues": {{"{EVENT_TIMESTAMP}": "{min}"}},
                 "maxValues": {{"{EVENT_TIMESTAMP}": "{max}"}}, "nullCount": {{"{EVENT_TIMESTAMP}": {nulls}}}}}"#
        )
    }

    fn window_of(start: &str, end: &str) -> Window {
        let t = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        Window::new(t(start), t(end)).unwrap()
    }

    #[test]
    fn files_are_judged_against_a_window_conservatively() {
        let window = window_of("2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z");
        let judge = |min: &str, max: &str, nulls: u64| file_in_window(Some(&stats(min, max, nulls)), &window);
        assert_eq!(judge("2026-01-02T00:00:00.000Z", "2026-01-02T23:59:59.998Z", 0), InWindow::Inside);
        assert_eq!(judge("2026-01-01T00:00:00.000Z", "2026-01-01T23:59:59.000Z", 0), InWindow::Outside);
        assert_eq!(judge("2026-01-03T00:00:00.000Z", "2026-01-04T00:00:00.000Z", 0), InWindow::Outside);
        assert_eq!(judge("2026-01-01T12:00:00.000Z", "2026-01-02T12:00:00.000Z", 0), InWindow::Straddles);
        assert_eq!(judge("2026-01-02T12:00:00.000Z", "2026-01-03T12:00:00.000Z", 0), InWindow::Straddles);
        // Delta truncates timestamp statistics to milliseconds: a row may lie up to 999 µs
        // after the recorded maximum, which matters for windows with sub-millisecond edges.
        assert_eq!(judge("2026-01-02T00:00:00.000Z", "2026-01-02T23:59:59.999Z", 0), InWindow::Inside);
        assert_eq!(judge("2026-01-01T00:00:00.000Z", "2026-01-01T23:59:59.999Z", 0), InWindow::Outside);
        let fine = window_of("2026-01-02T00:00:00.000500Z", "2026-01-03T00:00:00.000500Z");
        let judge_fine = |min: &str, max: &str| file_in_window(Some(&stats(min, max, 0)), &fine);
        assert_eq!(judge_fine("2026-01-02T00:00:00.001Z", "2026-01-03T00:00:00.000Z"), InWindow::Straddles);
        assert_eq!(judge_fine("2026-01-01T00:00:00.000Z", "2026-01-02T00:00:00.000Z"), InWindow::Straddles);
        assert_eq!(judge_fine("2026-01-02T00:00:00.001Z", "2026-01-02T23:59:59.999Z"), InWindow::Inside);
        // Rows with no event time are outside every window, so such a file is not removed.
        assert_eq!(judge("2026-01-02T00:00:00.000Z", "2026-01-02T12:00:00.000Z", 1), InWindow::Straddles);
        // No statistics, or unreadable ones: rewritten, never dropped or kept blindly.
        assert_eq!(file_in_window(None, &window), InWindow::Straddles);
        assert_eq!(file_in_window(Some("{"), &window), InWindow::Straddles);
        assert_eq!(file_in_window(Some(r#"{"numRecords": 3}"#), &window), InWindow::Straddles);
        let all_null = format!(r#"{{"numRecords": 3, "nullCount": {{"{EVENT_TIMESTAMP}": 3}}}}"#);
        assert_eq!(file_in_window(Some(&all_null), &window), InWindow::Outside);
        assert_eq!(file_in_window(Some(r#"{"numRecords": 0}"#), &window), InWindow::Inside);
    }
}
