//! The layout of a view's offline table, in one place: its columns, the stored timestamp
//! type, the latest-row order, and the window of event time a materialization replaces.
//!
//! Columns, in order: the view's join keys (declared types), `event_timestamp` and
//! `created_timestamp` (`Timestamp(µs, UTC)`, Delta's timestamp precision; `created` is null
//! when the source has none), then the features (declared types).
//!
//! The latest-row order sorts rows ascending, nulls first, by the join keys, event time,
//! created time, then every feature that is not a list: the last row of a key group at or
//! before a time is the one the point-in-time join and the online store choose, and a full
//! tie is broken by the values, so the choice never depends on file order. Every file Quiver
//! writes holds its rows in this order ([`crate::sidecar`] records which files do).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::datatypes::{DataType, Field as ArrowField, Schema, SchemaRef, TimeUnit};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Expr, SortExpr, col, lit};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{LexOrdering, PhysicalSortExpr};
use datafusion::prelude::cast;
use quiver_core::definitions::{Definitions, FeatureView};

use crate::error::{Error, Result};
use crate::types::{UTC, arrow_type};

/// Name of the event time column in offline tables.
pub const EVENT_TIMESTAMP: &str = "event_timestamp";
/// Name of the created time column in offline tables.
pub const CREATED_TIMESTAMP: &str = "created_timestamp";

/// The folder, inside a view's table, of the files push appends. Rows pushed to the offline
/// store exist nowhere else (not in the lake), so replacing a window never removes or
/// rewrites a file here: materialization replaces only what it can compute again. The
/// Delta log names these files `pushed/part-….parquet`, so the mark travels with the commit
/// that adds them.
pub const PUSHED_DIR: &str = "pushed";

/// The timestamp type of offline tables (Delta Lake stores microseconds).
pub fn stored_timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into()))
}

/// The schema of a view's offline table.
pub fn offline_schema(defs: &Definitions, view: &FeatureView) -> SchemaRef {
    let mut fields: Vec<ArrowField> =
        defs.join_keys(view).iter().map(|k| ArrowField::new(&k.name, arrow_type(&k.dtype), true)).collect();
    fields.push(ArrowField::new(EVENT_TIMESTAMP, stored_timestamp_type(), true));
    fields.push(ArrowField::new(CREATED_TIMESTAMP, stored_timestamp_type(), true));
    fields.extend(view.features.iter().map(|f| ArrowField::new(&f.name, arrow_type(&f.dtype), true)));
    Arc::new(Schema::new(fields))
}

/// The select list that lays a frame out as a view's offline table: the keys and features
/// (named as the view declares them) cast to their declared types, `event` as the event time
/// and `created` (or null) as the created time, both cast to the stored timestamp type.
pub fn layout_exprs(defs: &Definitions, view: &FeatureView, event: &str, created: Option<&str>) -> Vec<Expr> {
    let mut exprs: Vec<Expr> = defs
        .join_keys(view)
        .iter()
        .map(|k| cast(column(&k.name), arrow_type(&k.dtype)).alias(&k.name))
        .collect();
    exprs.push(cast(column(event), stored_timestamp_type()).alias(EVENT_TIMESTAMP));
    let created = match created {
        Some(name) => cast(column(name), stored_timestamp_type()),
        None => cast(lit(ScalarValue::TimestampNanosecond(None, Some(UTC.into()))), stored_timestamp_type()),
    };
    exprs.push(created.alias(CREATED_TIMESTAMP));
    exprs.extend(view.features.iter().map(|f| cast(column(&f.name), arrow_type(&f.dtype)).alias(&f.name)));
    exprs
}

/// A column named exactly `name` (no parsing of dots or quotes).
pub(crate) fn column(name: &str) -> Expr {
    col(datafusion::common::Column::from_name(name))
}

/// The columns of the latest-row order for a table of `schema`: the join keys (the columns
/// before `event_timestamp`), `event_timestamp`, `created_timestamp`, then every feature
/// that is not a list.
pub fn sort_columns(schema: &Schema) -> Vec<String> {
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let event = names.iter().position(|n| *n == EVENT_TIMESTAMP).unwrap_or(names.len());
    let mut order: Vec<String> = names[..event].iter().map(|n| n.to_string()).collect();
    order.push(EVENT_TIMESTAMP.into());
    order.push(CREATED_TIMESTAMP.into());
    for field in schema.fields() {
        let name = field.name().as_str();
        if names[..event].contains(&name) || name == EVENT_TIMESTAMP || name == CREATED_TIMESTAMP {
            continue;
        }
        if !matches!(field.data_type(), DataType::List(_) | DataType::LargeList(_)) {
            order.push(name.to_string());
        }
    }
    order
}

/// The direction of every column of the latest-row order: ascending, nulls first.
pub const SORT_OPTIONS: SortOptions = SortOptions { descending: false, nulls_first: true };

/// The latest-row order of `schema` as a physical sort order.
pub fn latest_row_ordering(schema: &Schema) -> Result<LexOrdering> {
    let order: Vec<PhysicalSortExpr> = sort_columns(schema)
        .iter()
        .map(|name| Ok(PhysicalSortExpr::new(Arc::new(Column::new_with_schema(name, schema)?), SORT_OPTIONS)))
        .collect::<Result<_>>()?;
    LexOrdering::new(order).ok_or_else(|| Error::Internal("empty sort order".into()))
}

/// The latest-row order of a view's table as logical sort expressions.
pub fn latest_row_order(defs: &Definitions, view: &FeatureView) -> Vec<SortExpr> {
    sort_columns(&offline_schema(defs, view))
        .iter()
        .map(|name| column(name).sort(!SORT_OPTIONS.descending, SORT_OPTIONS.nulls_first))
        .collect()
}

/// A window of event time, `[start, end)`, that a materialization computes and replaces.
/// Both ends are representable as nanoseconds (the lake's finest precision) and as the
/// table's microseconds; `start < end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    start_ns: i64,
    end_ns: i64,
}

impl Window {
    /// The window `[start, end)`; refused when empty or outside the nanosecond range.
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Self> {
        if start >= end {
            return Err(Error::InvalidInput(format!(
                "the window is empty: start {start} is not before end {end}"
            )));
        }
        let ns = |t: DateTime<Utc>| {
            t.timestamp_nanos_opt().ok_or_else(|| {
                Error::InvalidInput(format!("{t} is outside the range of nanosecond timestamps (1677-2262)"))
            })
        };
        let (start_ns, end_ns) = (ns(start)?, ns(end)?);
        Ok(Window { start, end, start_ns, end_ns })
    }

    pub fn start(&self) -> DateTime<Utc> {
        self.start
    }

    pub fn end(&self) -> DateTime<Utc> {
        self.end
    }

    /// `[start, end)` in microseconds, the table's precision.
    pub fn micros(&self) -> (i64, i64) {
        (self.start_ns.div_euclid(1000), self.end_ns.div_euclid(1000))
    }

    /// Rows of a lake frame whose `event` column lies in the window (compared at nanosecond
    /// precision, whatever the column's own unit).
    pub fn lake_filter(&self, event: &str) -> Expr {
        let at = |ns| lit(ScalarValue::TimestampNanosecond(Some(ns), Some(UTC.into())));
        column(event).gt_eq(at(self.start_ns)).and(column(event).lt(at(self.end_ns)))
    }

    /// Rows of an offline table inside the window.
    pub fn table_inside(&self) -> Expr {
        let (start, end) = self.table_bounds();
        column(EVENT_TIMESTAMP).gt_eq(start).and(column(EVENT_TIMESTAMP).lt(end))
    }

    /// Rows of an offline table outside the window, rows with no event time included.
    pub fn table_outside(&self) -> Expr {
        let (start, end) = self.table_bounds();
        column(EVENT_TIMESTAMP)
            .is_null()
            .or(column(EVENT_TIMESTAMP).lt(start))
            .or(column(EVENT_TIMESTAMP).gt_eq(end))
    }

    /// The window's ends as literals of the stored timestamp type.
    fn table_bounds(&self) -> (Expr, Expr) {
        let (start, end) = self.micros();
        let at = |us| lit(ScalarValue::TimestampMicrosecond(Some(us), Some(UTC.into())));
        (at(start), at(end))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_window_is_refused_when_empty_or_beyond_nanoseconds() {
        let w = Window::new(t("2026-01-01T00:00:00Z"), t("2026-01-02T00:00:00.000001500Z")).unwrap();
        assert_eq!(w.micros(), (1_767_225_600_000_000, 1_767_312_000_000_001));
        let empty =
            Window::new(t("2026-01-02T00:00:00Z"), t("2026-01-02T00:00:00Z")).unwrap_err().to_string();
        assert!(empty.contains("the window is empty"), "{empty}");
        let far = Window::new(t("2026-01-02T00:00:00Z"), t("2300-01-01T00:00:00Z")).unwrap_err().to_string();
        assert!(far.contains("outside the range of nanosecond timestamps"), "{far}");
        let before_1970 =
            Window::new(t("1969-12-31T23:59:59.999999500Z"), t("1970-01-01T00:00:00Z")).unwrap();
        assert_eq!(before_1970.micros(), (-1, 0), "micros round down, also before 1970");
    }

    #[test]
    fn the_sort_columns_are_keys_times_then_scalar_features() {
        let ts = stored_timestamp_type();
        let schema = Schema::new(vec![
            ArrowField::new("a", DataType::Int64, true),
            ArrowField::new("b", DataType::Utf8, true),
            ArrowField::new(EVENT_TIMESTAMP, ts.clone(), true),
            ArrowField::new(CREATED_TIMESTAMP, ts, true),
            ArrowField::new("f", DataType::Float64, true),
            ArrowField::new("l", DataType::new_list(DataType::Int64, true), true),
            ArrowField::new("g", DataType::Boolean, true),
        ]);
        assert_eq!(sort_columns(&schema), ["a", "b", EVENT_TIMESTAMP, CREATED_TIMESTAMP, "f", "g"]);
    }
}
