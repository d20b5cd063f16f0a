//! Push: rows computed outside Quiver (a stream job, a request-time computation) written
//! straight to a feature view's offline table, online store, or both.
//!
//! The rows must carry the view's join keys, `event_timestamp`, optionally
//! `created_timestamp`, and every feature, with types that convert to the declared ones
//! without loss. They are laid out and sorted exactly as materialization lays out a window,
//! so the offline files keep their (keys, time) order and the online store gets the latest
//! row per entity by the same rule. Offline goes first: the online store never holds a
//! pushed value the offline store does not (when both are asked).

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::prelude::SessionContext;
use quiver_core::definitions::{Definitions, FeatureView, OnFailure};
use quiver_core::state::ExpectationFailure;
use quiver_online::OnlineStore;
use quiver_online::rows::LatestRows;

use crate::error::{Error, Result};
use crate::expect::{Checker, describe};
use crate::layout::{CREATED_TIMESTAMP, EVENT_TIMESTAMP, latest_row_order, layout_exprs, offline_schema};
use crate::lease::LeaseSettings;
use crate::store::{CommitGuard, OfflineStore};
use crate::types::{is_compatible, is_timestamp_like};

/// Where pushed rows go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PushTargets {
    pub online: bool,
    pub offline: bool,
    /// Give online rows an expiry at event time + ttl (Redis with `expire_keys`).
    pub online_expiry: bool,
    /// Refuse rows whose event time is further than this past now (`None`: no bound but
    /// the representable range). A value stamped far in the future would win every later
    /// newer-wins comparison online.
    pub max_future: Option<std::time::Duration>,
}

/// How far in the future a pushed event time may be unless the caller says otherwise.
pub const DEFAULT_MAX_FUTURE: std::time::Duration = std::time::Duration::from_secs(300);

/// Checks every pushed event (and created) time: within the nanosecond range online values
/// are kept in (1677-09-21 to 2262-04-11), and not beyond `max_future` from now. The error
/// names the first row (0-based, across the batches) and the column, not the value.
fn check_times(view: &str, batches: &[RecordBatch], max_future: Option<std::time::Duration>) -> Result<()> {
    use datafusion::arrow::array::{Array, TimestampMicrosecondArray};
    use datafusion::arrow::datatypes::{DataType, TimeUnit};
    let now_us = chrono::Utc::now().timestamp_micros();
    let limit_us =
        max_future.map(|d| now_us.saturating_add(i64::try_from(d.as_micros()).unwrap_or(i64::MAX)));
    for name in [EVENT_TIMESTAMP, CREATED_TIMESTAMP] {
        let mut offset = 0usize;
        for batch in batches {
            let Some(column) = batch.column_by_name(name) else { break };
            // Microseconds hold every date a Parquet or Arrow timestamp can carry here.
            let options = datafusion::arrow::compute::CastOptions { safe: false, ..Default::default() };
            let micros = datafusion::arrow::compute::cast_with_options(
                column,
                &DataType::Timestamp(TimeUnit::Microsecond, None),
                &options,
            )
            .map_err(|_| {
                Error::InvalidInput(format!(
                    "pushed '{name}' of feature view '{view}' holds a time outside the range Quiver keeps \
                     (1677-09-21 to 2262-04-11)"
                ))
            })?;
            let micros = micros
                .as_any()
                .downcast_ref::<TimestampMicrosecondArray>()
                .ok_or_else(|| Error::Internal("a timestamp cast gave another type".into()))?;
            for i in 0..micros.len() {
                if micros.is_null(i) {
                    continue;
                }
                let us = micros.value(i);
                let row = offset + i;
                if us.checked_mul(1000).is_none() {
                    return Err(Error::InvalidInput(format!(
                        "pushed row {row} of feature view '{view}': '{name}' is outside the range Quiver \
                         keeps (1677-09-21 to 2262-04-11); nothing was written"
                    )));
                }
                if name == EVENT_TIMESTAMP && limit_us.is_some_and(|limit| us > limit) {
                    return Err(Error::InvalidInput(format!(
                        "pushed row {row} of feature view '{view}': '{name}' is more than {}s in the \
                         future; a future-dated value would win every later write online. Nothing was \
                         written",
                        max_future.map_or(0, |d| d.as_secs())
                    )));
                }
            }
            offset += batch.num_rows();
        }
    }
    Ok(())
}

/// What a push did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PushOutcome {
    /// Rows received.
    pub rows: u64,
    /// Entities whose online value was created or replaced (older rows are skipped).
    pub online_rows_written: u64,
    /// The offline table version committed.
    pub offline_version: Option<u64>,
    /// The view's row expectations the pushed rows broke (pushed anyway: the view's
    /// `on_failure` is `warn`).
    pub expectations: Vec<ExpectationFailure>,
}

/// Checks pushed columns against the view: every key, the event time and every feature
/// present with a lossless type; nothing else but an optional `created_timestamp`.
pub fn check_push_schema(defs: &Definitions, view: &FeatureView, schema: &SchemaRef) -> Result<()> {
    let given: BTreeSet<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let mut expected: Vec<(String, Option<quiver_core::dtype::DType>)> =
        defs.join_keys(view).into_iter().map(|k| (k.name, Some(k.dtype))).collect();
    expected.push((EVENT_TIMESTAMP.to_string(), None));
    expected.extend(view.features.iter().map(|f| (f.name.clone(), Some(f.dtype.clone()))));
    let missing: Vec<&str> =
        expected.iter().map(|(n, _)| n.as_str()).filter(|n| !given.contains(n)).collect();
    if !missing.is_empty() {
        return Err(Error::InvalidInput(format!(
            "pushed rows for feature view '{}' lack column(s) {}; push needs the join keys, \
             event_timestamp and every feature of the view",
            view.name,
            missing.join(", ")
        )));
    }
    let known: BTreeSet<&str> = expected.iter().map(|(n, _)| n.as_str()).chain([CREATED_TIMESTAMP]).collect();
    let extra: Vec<&str> = given.iter().copied().filter(|n| !known.contains(n)).collect();
    if !extra.is_empty() {
        return Err(Error::InvalidInput(format!(
            "pushed rows for feature view '{}' have column(s) {} that the view does not declare",
            view.name,
            extra.join(", ")
        )));
    }
    for field in schema.fields() {
        let name = field.name().as_str();
        let ok = match expected.iter().find(|(n, _)| n == name) {
            Some((_, Some(dtype))) => is_compatible(dtype, field.data_type()),
            // event_timestamp / created_timestamp
            _ => is_timestamp_like(field.data_type()),
        };
        if !ok {
            let declared = expected
                .iter()
                .find(|(n, _)| n == name)
                .and_then(|(_, d)| d.as_ref().map(|d| d.to_string()))
                .unwrap_or_else(|| "a timestamp".to_string());
            return Err(Error::InvalidInput(format!(
                "pushed column '{name}' of feature view '{}' is {}, which does not convert to {declared} without loss",
                view.name,
                field.data_type()
            )));
        }
    }
    Ok(())
}

/// The view's row expectations over the laid-out pushed rows: an error under
/// `on_failure: fail` when one broke (nothing is written), else what broke.
fn check_expectations(
    ctx: &SessionContext,
    defs: &Definitions,
    view: &FeatureView,
    sorted: &[RecordBatch],
) -> Result<Vec<ExpectationFailure>> {
    let Some(first) = sorted.first() else { return Ok(Vec::new()) };
    let pool = ctx.runtime_env().memory_pool.clone();
    let Some(checker) = Checker::new(defs, view, &first.schema(), 1, true, Some(&pool))? else {
        return Ok(Vec::new());
    };
    for batch in sorted {
        checker.observe(0, batch)?;
    }
    let failures = checker.failures(None);
    if failures.is_empty() {
        return Ok(failures);
    }
    if checker.on_failure() == OnFailure::Fail {
        return Err(Error::Expectations(format!(
            "{}; nothing was written (the view's on_failure is fail)",
            describe(&view.name, &failures)
        )));
    }
    for failure in &failures {
        tracing::warn!(view = %view.name, "expectation broken, rows pushed (on_failure: warn): {failure}");
    }
    Ok(failures)
}

/// Pushes `batches` (all with the same schema) to a view. The offline append holds the
/// view's materialization lease (taken with `lease`), so it never runs beside a
/// materialization of the same view in any process.
#[allow(clippy::too_many_arguments)] // one call site per front end; each argument is a separate concern
pub async fn push(
    ctx: &SessionContext,
    defs: &Definitions,
    view: &FeatureView,
    store: &OfflineStore,
    online: Option<&dyn OnlineStore>,
    batches: Vec<RecordBatch>,
    targets: PushTargets,
    lease: &LeaseSettings,
) -> Result<PushOutcome> {
    if !targets.online && !targets.offline {
        return Err(Error::InvalidInput("say where to push: online, offline, or both".into()));
    }
    if targets.online && !view.online {
        return Err(Error::InvalidInput(format!(
            "feature view '{}' is not online (online: false); push it offline only, or declare it online",
            view.name
        )));
    }
    let Some(first) = batches.first() else {
        return Ok(PushOutcome::default());
    };
    let schema = first.schema();
    check_push_schema(defs, view, &schema)?;
    let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
    if rows == 0 {
        return Ok(PushOutcome::default());
    }
    let keys = defs.join_keys(view);
    for name in keys.iter().map(|k| k.name.as_str()).chain([EVENT_TIMESTAMP]) {
        let nulls: usize =
            batches.iter().filter_map(|b| b.column_by_name(name)).map(|c| c.null_count()).sum();
        if nulls > 0 {
            return Err(Error::InvalidInput(format!(
                "{nulls} pushed row(s) for feature view '{}' have no value in '{name}'; every row needs its keys and event time",
                view.name
            )));
        }
    }
    check_times(&view.name, &batches, targets.max_future)?;
    let frame = ctx.read_batches(batches)?;
    let created = schema.field_with_name(CREATED_TIMESTAMP).is_ok().then_some(CREATED_TIMESTAMP);
    let exprs = layout_exprs(defs, view, EVENT_TIMESTAMP, created);
    let sorted = frame.select(exprs)?.sort(latest_row_order(defs, view))?.collect().await?;

    let mut outcome = PushOutcome { rows, ..Default::default() };
    outcome.expectations = check_expectations(ctx, defs, view, &sorted)?;
    if targets.offline {
        let held = Arc::new(store.leases()?.acquire(&view.name, lease).await?);
        let guard: CommitGuard = {
            let held = held.clone();
            Arc::new(move || held.check())
        };
        let written = store.append(&view.name, offline_schema(defs, view), sorted.clone(), Some(guard)).await;
        if let Ok(held) = Arc::try_unwrap(held) {
            held.release().await;
        }
        outcome.offline_version = Some(written?.version);
    }
    if targets.online {
        let online = online.ok_or_else(|| Error::InvalidInput("this server has no online store".into()))?;
        let mut latest = LatestRows::new(defs, view, targets.online_expiry);
        let mut writes = Vec::new();
        for batch in &sorted {
            writes.extend(latest.push(batch)?);
        }
        writes.extend(latest.finish()?);
        outcome.online_rows_written = online.write(&writes).await?;
    }
    Ok(outcome)
}
