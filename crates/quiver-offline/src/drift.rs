//! Drift: how far a view's feature distributions moved between two periods of event time,
//! read from its offline table (the latest version).
//!
//! Each period is one scan of the table filtered to the period. Numbers keep a uniform
//! sample of [`crate::stats::SAMPLE`] values per period (exact below that) and get the
//! two-sample Kolmogorov-Smirnov statistic (the largest gap between the two empirical
//! distribution functions) and the population stability index over ten bins cut at the
//! reference's deciles. Strings and booleans count every value (up to [`MAX_CATEGORIES`]
//! distinct ones, the rest pooled as one) and get the PSI over the categories and the
//! Jensen-Shannon distance (base 2: 0 for equal distributions, 1 for disjoint ones). Nulls are
//! left out of the distributions; bins or categories empty on one side count as a tiny share
//! ([`EPSILON`]) so the PSI stays finite.

use std::collections::{BTreeMap, HashMap};

use datafusion::arrow::array::AsArray;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use futures::StreamExt;
use quiver_core::definitions::{DriftThresholds, FeatureView, Period};
use quiver_core::dtype::DType;
use quiver_core::state::ViewState;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::layout::{Window, column};
use crate::stats::Reservoir;
use crate::store::OfflineStore;

/// Distinct values of a category feature counted one by one; the rest are pooled.
pub const MAX_CATEGORIES: usize = 10_000;
/// The share given to a bin or category empty on one side.
pub const EPSILON: f64 = 1e-4;
const OTHER: &str = "\u{0}other";

/// One feature's scores.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FeatureDrift {
    /// Non-null values in the reference and current periods.
    pub reference_values: u64,
    pub current_values: u64,
    pub psi: f64,
    /// Numbers only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ks: Option<f64>,
    /// Strings and booleans only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub js: Option<f64>,
    /// Over one of the view's thresholds.
    pub drifted: bool,
}

/// The drift of every feature of a view between two periods.
#[derive(Clone, Debug, Serialize)]
pub struct DriftReport {
    pub view: String,
    pub table_version: u64,
    pub reference: Period,
    pub current: Period,
    pub thresholds: DriftThresholds,
    pub features: BTreeMap<String, FeatureDrift>,
}

impl DriftReport {
    pub fn drifted(&self) -> Vec<&str> {
        self.features.iter().filter(|(_, f)| f.drifted).map(|(n, _)| n.as_str()).collect()
    }
}

/// What one period holds of one feature.
enum Values {
    Numbers {
        sample: Reservoir,
        count: u64,
    },
    Categories(HashMap<String, u64>),
    /// Lists and other types drift is not measured on.
    Skipped,
}

fn values_for(dtype: &DType, seed: u64) -> Values {
    match dtype {
        DType::Int32 | DType::Int64 | DType::Float32 | DType::Float64 | DType::Timestamp => {
            Values::Numbers { sample: Reservoir::new(seed), count: 0 }
        }
        DType::String | DType::Bool => Values::Categories(HashMap::new()),
        DType::Bytes | DType::List(_) => Values::Skipped,
    }
}

/// The features' values in `period` of the view's table.
async fn read_period(
    ctx: &SessionContext,
    view: &FeatureView,
    urls: &[String],
    schema: &datafusion::arrow::datatypes::Schema,
    period: &Window,
    seed: u64,
) -> Result<Vec<Values>> {
    let mut out: Vec<Values> = view.features.iter().map(|f| values_for(&f.dtype, seed)).collect();
    let frame = ctx
        .read_parquet(urls.to_vec(), ParquetReadOptions::default().schema(schema))
        .await?
        .filter(period.table_inside())?
        .select(view.features.iter().map(|f| column(&f.name)).collect::<Vec<_>>())?;
    let mut stream = frame.execute_stream().await?;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        for (values, array) in out.iter_mut().zip(batch.columns()) {
            match values {
                Values::Numbers { sample, count } => {
                    let numbers = cast(array, &DataType::Float64)?;
                    let finite: Vec<f64> = numbers
                        .as_primitive::<Float64Type>()
                        .iter()
                        .flatten()
                        .filter(|v| v.is_finite())
                        .collect();
                    *count += finite.len() as u64;
                    sample.offer(&finite);
                }
                Values::Categories(counts) => {
                    let text = cast(array, &DataType::Utf8)?;
                    for v in text.as_string::<i32>().iter().flatten() {
                        if let Some(n) = counts.get_mut(v) {
                            *n += 1;
                        } else if counts.len() < MAX_CATEGORIES {
                            counts.insert(v.to_string(), 1);
                        } else {
                            *counts.entry(OTHER.to_string()).or_default() += 1;
                        }
                    }
                }
                Values::Skipped => {}
            }
        }
    }
    Ok(out)
}

/// Sum over bins of (current - reference) ln(current / reference), shares floored at
/// [`EPSILON`].
fn psi(reference: &[f64], current: &[f64]) -> f64 {
    reference
        .iter()
        .zip(current)
        .map(|(r, c)| {
            let (r, c) = (r.max(EPSILON), c.max(EPSILON));
            (c - r) * (c / r).ln()
        })
        .sum()
}

/// The largest gap between the empirical distribution functions of two sorted samples.
fn ks(reference: &[f64], current: &[f64]) -> f64 {
    let (mut i, mut j, mut gap) = (0usize, 0usize, 0.0f64);
    while i < reference.len() && j < current.len() {
        let x = reference[i].min(current[j]);
        while i < reference.len() && reference[i] <= x {
            i += 1;
        }
        while j < current.len() && current[j] <= x {
            j += 1;
        }
        gap = gap.max((i as f64 / reference.len() as f64 - j as f64 / current.len() as f64).abs());
    }
    gap
}

/// Shares of `sorted` values in the bins cut at `edges` (a value equal to an edge goes
/// above it).
fn bin_shares(sorted: &[f64], edges: &[f64]) -> Vec<f64> {
    let mut shares = Vec::with_capacity(edges.len() + 1);
    let mut below = 0usize;
    for edge in edges {
        let upto = sorted.partition_point(|v| v < edge);
        shares.push((upto - below) as f64 / sorted.len() as f64);
        below = upto;
    }
    shares.push((sorted.len() - below) as f64 / sorted.len() as f64);
    shares
}

fn number_drift(reference: &mut [f64], current: &mut [f64]) -> (f64, f64) {
    reference.sort_by(f64::total_cmp);
    current.sort_by(f64::total_cmp);
    // Cuts at the reference's deciles, each once.
    let mut edges: Vec<f64> =
        (1..10).map(|d| reference[(reference.len() * d / 10).min(reference.len() - 1)]).collect();
    edges.dedup();
    let psi = psi(&bin_shares(reference, &edges), &bin_shares(current, &edges));
    (psi, ks(reference, current))
}

fn category_drift(reference: &HashMap<String, u64>, current: &HashMap<String, u64>) -> (f64, f64) {
    let total = |m: &HashMap<String, u64>| m.values().sum::<u64>() as f64;
    let (rt, ct) = (total(reference), total(current));
    let mut keys: Vec<&String> = reference.keys().chain(current.keys()).collect();
    keys.sort();
    keys.dedup();
    let share = |m: &HashMap<String, u64>, t: f64, k: &String| m.get(k).map_or(0.0, |n| *n as f64 / t);
    let r: Vec<f64> = keys.iter().map(|k| share(reference, rt, k)).collect();
    let c: Vec<f64> = keys.iter().map(|k| share(current, ct, k)).collect();
    // Jensen-Shannon divergence in bits, then its square root (a distance).
    let kl = |p: &[f64], m: &[f64]| -> f64 {
        p.iter().zip(m).filter(|(p, _)| **p > 0.0).map(|(p, m)| p * (p / m).log2()).sum()
    };
    let m: Vec<f64> = r.iter().zip(&c).map(|(a, b)| (a + b) / 2.0).collect();
    let js = ((kl(&r, &m) + kl(&c, &m)) / 2.0).max(0.0).sqrt();
    (psi(&r, &c), js)
}

/// The drift of `view`'s features from `reference` to `current` (event-time periods), in
/// its offline table's latest version.
pub async fn drift(
    ctx: &SessionContext,
    view: &FeatureView,
    store: &OfflineStore,
    reference: &Window,
    current: &Window,
) -> Result<DriftReport> {
    let snapshot = store.snapshot(&view.name, None).await?.ok_or_else(|| {
        Error::InvalidInput(format!(
            "feature view '{}' has no offline table yet: materialize it first",
            view.name
        ))
    })?;
    store.register(ctx)?;
    let urls: Vec<String> = snapshot.files.iter().map(|f| f.url.clone()).collect();
    if urls.is_empty() {
        return Err(Error::InvalidInput(format!(
            "feature view '{}' has no rows in its offline table",
            view.name
        )));
    }
    let seed = view.name.bytes().fold(0x0d71_f700_u64, |h, b| h.rotate_left(5) ^ u64::from(b));
    let before = read_period(ctx, view, &urls, &snapshot.schema, reference, seed).await?;
    let after = read_period(ctx, view, &urls, &snapshot.schema, current, seed ^ 1).await?;
    let thresholds = view.drift.unwrap_or_default();
    let mut features = BTreeMap::new();
    for ((feature, before), after) in view.features.iter().zip(before).zip(after) {
        let scored = match (before, after) {
            (Values::Numbers { sample: mut r, count: rc }, Values::Numbers { sample: mut c, count: cc }) => {
                if rc == 0 || cc == 0 {
                    continue;
                }
                let (psi, ks) = number_drift(&mut r.values, &mut c.values);
                let drifted = psi > thresholds.psi.0 || ks > thresholds.ks.0;
                FeatureDrift {
                    reference_values: rc,
                    current_values: cc,
                    psi,
                    ks: Some(ks),
                    js: None,
                    drifted,
                }
            }
            (Values::Categories(r), Values::Categories(c)) => {
                let (rc, cc) = (r.values().sum::<u64>(), c.values().sum::<u64>());
                if rc == 0 || cc == 0 {
                    continue;
                }
                let (psi, js) = category_drift(&r, &c);
                let drifted = psi > thresholds.psi.0 || js > thresholds.js.0;
                FeatureDrift {
                    reference_values: rc,
                    current_values: cc,
                    psi,
                    ks: None,
                    js: Some(js),
                    drifted,
                }
            }
            _ => continue,
        };
        features.insert(feature.name.clone(), scored);
    }
    if features.is_empty() {
        return Err(Error::InvalidInput(format!(
            "feature view '{}': no feature has values in both periods (reference {} to {}, current {} to {})",
            view.name,
            reference.start(),
            reference.end(),
            current.start(),
            current.end()
        )));
    }
    let period = |w: &Window| Period { start: w.start(), end: w.end() };
    Ok(DriftReport {
        view: view.name.clone(),
        table_version: snapshot.version,
        reference: period(reference),
        current: period(current),
        thresholds,
        features,
    })
}

/// The periods of a view's declared drift check, `(reference, current)`: the current period
/// is the window of its newest successful materialization, the reference its
/// `drift.reference` period or else the window of the same length just before the current
/// one.
pub fn declared_periods(view: &FeatureView, state: &ViewState) -> Result<(Window, Window)> {
    let run = state.last_success().ok_or_else(|| {
        Error::InvalidInput(format!(
            "feature view '{}' has no successful materialization to check for drift yet",
            view.name
        ))
    })?;
    let current = Window::new(run.window_start, run.window_end)?;
    let reference = match view.drift.and_then(|d| d.reference) {
        Some(p) => Window::new(p.start, p.end)?,
        None => {
            let length = run.window_end - run.window_start;
            let start = run.window_start.checked_sub_signed(length).ok_or_else(|| {
                Error::InvalidInput(format!(
                    "feature view '{}': the window before {} is out of range; declare drift.reference",
                    view.name, run.window_start
                ))
            })?;
            Window::new(start, run.window_start)?
        }
    };
    Ok((reference, current))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_declared_check_compares_the_newest_good_window_with_the_one_before_or_the_reference() {
        use chrono::TimeZone;
        use quiver_core::state::{RunRecord, RunStatus};
        let t = |d: u32| chrono::Utc.with_ymd_and_hms(2026, 3, d, 0, 0, 0).unwrap();
        let run = |start: u32, end: u32, status: RunStatus| RunRecord {
            run_id: format!("r{start}"),
            started_at: t(end),
            finished_at: t(end),
            window_start: t(start),
            window_end: t(end),
            status,
            rows: 1,
            dropped_null_keys: 0,
            dropped_null_event_times: 0,
            offline_version: None,
            online_rows: None,
            registry_version: 1,
            error: None,
            expectations: Vec::new(),
            statistics: Default::default(),
        };
        let mut view: FeatureView = serde_json::from_value(serde_json::json!({
            "name": "v", "entities": ["e"], "source": "s", "ttl": "1d", "online": false, "features": []
        }))
        .unwrap();
        let mut state = ViewState { view: "v".into(), ..Default::default() };
        assert!(declared_periods(&view, &state).is_err());
        state.runs = vec![run(1, 5, RunStatus::Succeeded), run(5, 8, RunStatus::Failed)];
        let (reference, current) = declared_periods(&view, &state).unwrap();
        assert_eq!((current.start(), current.end()), (t(1), t(5)));
        assert_eq!(
            (reference.start(), reference.end()),
            (chrono::Utc.with_ymd_and_hms(2026, 2, 25, 0, 0, 0).unwrap(), t(1))
        );
        view.drift = Some(DriftThresholds {
            reference: Some(Period { start: t(10), end: t(12) }),
            ..Default::default()
        });
        let (reference, _) = declared_periods(&view, &state).unwrap();
        assert_eq!((reference.start(), reference.end()), (t(10), t(12)));
    }

    #[test]
    fn ks_is_the_largest_gap_between_the_distribution_functions() {
        assert_eq!(ks(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]), 0.0);
        assert_eq!(ks(&[1.0, 2.0], &[3.0, 4.0]), 1.0);
        // F_r(2) = 2/4, F_c(2) = 0: the gap is 0.5.
        assert_eq!(ks(&[1.0, 2.0, 3.0, 4.0], &[3.0, 4.0, 5.0, 6.0]), 0.5);
    }

    #[test]
    fn categories_score_zero_when_equal_and_the_most_when_disjoint() {
        let counts = |pairs: &[(&str, u64)]| pairs.iter().map(|(k, n)| (k.to_string(), *n)).collect();
        let (psi, js) = category_drift(&counts(&[("a", 5), ("b", 5)]), &counts(&[("a", 50), ("b", 50)]));
        assert!(psi.abs() < 1e-12 && js.abs() < 1e-12);
        let (psi, js) = category_drift(&counts(&[("a", 1)]), &counts(&[("b", 1)]));
        assert!((js - 1.0).abs() < 1e-12 && psi > 10.0, "{psi} {js}");
    }
}
