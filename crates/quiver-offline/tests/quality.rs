//! Data quality of materialized windows and pushes.
//!
//! Expectations: a window that breaks them is not committed under `on_failure: fail`
//! (table, watermark and online rows stay as they were) and is committed under `warn`;
//! either way the run records every broken expectation with its exact count of breaking
//! rows, checked here against counts taken from the rows the test wrote, over several seeds.
//!
//! Statistics: every run keeps per-feature statistics, checked against a direct computation
//! over the rows written: exact where the documentation says so, quantile ranks and distinct
//! counts within their documented error otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{
    ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use quiver_core::definitions::{Definitions, FeatureRef};
use quiver_core::registry::Registry;
use quiver_core::repo::parse_documents;
use quiver_core::state::{ExpectationFailure, RunStatus};
use quiver_core::storage::resolve_location;
use quiver_offline::lake::Lake;
use quiver_offline::lease::LeaseSettings;
use quiver_offline::materialize::{Materializer, NoProgress, Span, ViewReport};
use quiver_offline::push::{DEFAULT_MAX_FUTURE, PushTargets, push};
use quiver_offline::store::OfflineStore;
use quiver_online::OnlineStore;
use quiver_online::embedded::EmbeddedStore;
use quiver_online::read::get_online_features;
use quiver_online::value::Value;
use url::Url;

type Rng = quiver_sample::rng::SplitMix64;

const DAY1_US: i64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z
const DAY_US: i64 = 86_400_000_000;
const MINUTE_US: i64 = 60_000_000;
const IDS: u64 = 40;

fn defs(on_failure: &str) -> Definitions {
    let text = format!(
        "\
entities:
  - {{name: e, join_keys: [{{name: id, dtype: int64}}]}}
sources:
  - {{name: src, path: src/, format: parquet, timestamp_field: ts}}
feature_views:
  - name: v
    entities: [e]
    source: src
    features: [{{name: x, dtype: float64}}, {{name: kind, dtype: string}}]
    expectations:
      - {{column: x, not_null: true, min: 0, max: 1}}
      - {{column: kind, allowed: [a, b]}}
      - {{unique: [id, event_timestamp]}}
      - {{rows: {{min: 1000}}}}
      - {{freshness: 1h}}
    on_failure: {on_failure}
"
    );
    let loaded = parse_documents(&[("defs.yaml".into(), text)]);
    assert!(loaded.problems.is_empty(), "{}", loaded.problems);
    loaded.definitions
}

#[derive(Clone, Debug)]
struct Row {
    id: i64,
    ts_us: i64,
    x: Option<f64>,
    kind: Option<String>,
}

/// `n` good rows a minute (and a bit) apart from `start_us`, ending within the last hour of
/// the day: every expectation holds.
fn good_rows(rng: &mut Rng, start_us: i64, n: i64) -> Vec<Row> {
    let step = (DAY_US - 30 * MINUTE_US) / n;
    (0..n)
        .map(|i| Row {
            id: 1 + rng.below(IDS) as i64,
            ts_us: start_us + i * step,
            x: Some(rng.below(1001) as f64 / 1000.0),
            kind: Some(["a", "b"][rng.below(2) as usize].to_string()),
        })
        .collect()
}

/// Good rows squeezed into the first half of the day (the newest is hours old at the
/// window's end), then breakage drawn at random: nulls, numbers outside [0, 1] (NaN among
/// them), kinds outside the list (and null kinds, which break nothing), repeated (id, time)
/// pairs.
fn broken_rows(rng: &mut Rng, start_us: i64, n: i64) -> Vec<Row> {
    let mut rows = good_rows(rng, start_us, n);
    for r in &mut rows {
        r.ts_us = start_us + (r.ts_us - start_us) / 2;
    }
    for i in 0..rows.len() {
        match rng.below(12) {
            0 => rows[i].x = None,
            1 => rows[i].x = Some([1.5, -0.25, f64::NAN, 7.0][rng.below(4) as usize]),
            2 => rows[i].kind = Some("z".into()),
            3 => rows[i].kind = None,
            4 if i > 0 => {
                let j = rng.below(i as u64) as usize;
                rows[i].id = rows[j].id;
                rows[i].ts_us = rows[j].ts_us;
            }
            _ => {}
        }
    }
    rows
}

/// Breaking rows per row expectation, counted from the rows themselves.
fn expected_counts(rows: &[Row]) -> BTreeMap<&'static str, u64> {
    let mut seen = std::collections::HashSet::new();
    let duplicates = rows.iter().filter(|r| !seen.insert((r.id, r.ts_us))).count() as u64;
    BTreeMap::from([
        ("x not_null", rows.iter().filter(|r| r.x.is_none()).count() as u64),
        (
            "x between 0 and 1",
            rows.iter().filter(|r| r.x.is_some_and(|x| !(0.0..=1.0).contains(&x))).count() as u64,
        ),
        (
            "kind in [a, b]",
            rows.iter().filter(|r| r.kind.as_deref().is_some_and(|k| k != "a" && k != "b")).count() as u64,
        ),
        ("unique [id, event_timestamp]", duplicates),
    ])
}

fn batch(rows: &[Row], event: &str) -> RecordBatch {
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let schema = Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new(event, ts, false),
        Field::new("x", DataType::Float64, true),
        Field::new("kind", DataType::Utf8, true),
    ]);
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(rows.iter().map(|r| r.id).collect::<Vec<_>>())),
        Arc::new(
            TimestampMicrosecondArray::from(rows.iter().map(|r| r.ts_us).collect::<Vec<_>>())
                .with_timezone("UTC"),
        ),
        Arc::new(Float64Array::from(rows.iter().map(|r| r.x).collect::<Vec<_>>())),
        Arc::new(StringArray::from(rows.iter().map(|r| r.kind.clone()).collect::<Vec<_>>())),
    ];
    RecordBatch::try_new(Arc::new(schema), columns).unwrap()
}

fn write_parquet(path: &Path, batch: &RecordBatch) {
    quiver_sample::write_batch(path, batch).unwrap();
}

fn at(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap()
}

struct Project {
    _tmp: tempfile::TempDir,
    defs: Definitions,
    registry: Registry,
    store: OfflineStore,
    online: Arc<dyn OnlineStore>,
    materializer: Materializer,
}

/// A project whose lake holds day 1 (good, 1 200 rows) and day 2 (`day2`).
async fn project(on_failure: &str, day2: &[Row], seed: u64) -> Project {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(seed ^ 0x5eed);
    let day1 = good_rows(&mut rng, DAY1_US, 1200);
    write_parquet(&tmp.path().join("lake/src/day1.parquet"), &batch(&day1, "ts"));
    write_parquet(&tmp.path().join("lake/src/day2.parquet"), &batch(day2, "ts"));
    let defs = defs(on_failure);
    let registry = Registry::open(&resolve_location("registry/", tmp.path()).unwrap(), "p").unwrap();
    registry.apply(&defs, 0, "test").await.unwrap();
    let lake = Lake::new(Url::from_directory_path(tmp.path().join("lake")).unwrap());
    let store = OfflineStore::new(Url::from_directory_path(tmp.path().join("offline")).unwrap());
    let online: Arc<dyn OnlineStore> = Arc::new(EmbeddedStore::open(&tmp.path().join("online")).unwrap());
    let mut materializer = Materializer::new(lake, store.clone(), registry.clone()).unwrap();
    materializer.online = Some(online.clone());
    // Small writers: the window's rows are checked by several partitions at once.
    materializer.rows_per_writer = 100;
    Project { _tmp: tmp, defs, registry, store, online, materializer }
}

impl Project {
    async fn day(&self, day: i64) -> ViewReport {
        let start = DAY1_US + day * DAY_US;
        let span = Span::Window { start: at(start), end: at(start + DAY_US) };
        let mut reports = self.materializer.run(span, &[], &NoProgress).await.unwrap();
        reports.remove(0)
    }

    /// Online x of every id (NaN for a null or missing value, so the lists compare).
    async fn online_x(&self) -> Vec<String> {
        let features = vec![FeatureRef::parse("v:x").unwrap()];
        let rows: Vec<BTreeMap<String, Value>> =
            (1..=IDS as i64).map(|id| BTreeMap::from([("id".to_string(), Value::Int64(id))])).collect();
        let now = Utc::now().timestamp_nanos_opt().unwrap();
        let answer =
            get_online_features(self.online.as_ref(), &self.defs, &features, &rows[..], now).await.unwrap();
        answer.rows.iter().map(|r| format!("{:?}@{:?}", r[0].value, r[0].event_ns)).collect()
    }
}

fn by_name(failures: &[ExpectationFailure]) -> BTreeMap<String, &ExpectationFailure> {
    failures.iter().map(|f| (f.expectation.clone(), f)).collect()
}

/// Every broken expectation of `report` has the count taken from `rows`, examples that show
/// the breaking value, and the window checks say what they saw.
fn check_report(report: &ViewReport, rows: &[Row], seed: u64) {
    let failures = by_name(&report.expectations);
    for (name, count) in expected_counts(rows) {
        match failures.get(name) {
            Some(f) => {
                assert_eq!(f.failing_rows, Some(count), "seed {seed}: {name}");
                assert_eq!(f.rows, rows.len() as u64, "seed {seed}: {name}");
                assert_eq!(f.examples.len() as u64, count.min(5), "seed {seed}: {name}");
                for example in &f.examples {
                    assert!(
                        example.contains_key("id") && example.contains_key("event_timestamp"),
                        "{example:?}"
                    );
                    match name {
                        "x not_null" => assert_eq!(example["x"], "null"),
                        "x between 0 and 1" => assert!(
                            ["1.5", "-0.25", "NaN", "7.0"].contains(&example["x"].as_str()),
                            "{example:?}"
                        ),
                        "kind in [a, b]" => assert_eq!(example["kind"], "z"),
                        _ => {}
                    }
                }
            }
            None => assert_eq!(
                count, 0,
                "seed {seed}: {name} broke {count} times but is not reported: {failures:#?}"
            ),
        }
    }
    let rows_check = failures.get("rows at least 1000").expect("300 rows break rows >= 1000");
    assert_eq!(rows_check.observed.as_deref(), Some("the window holds 300 rows"));
    assert_eq!(rows_check.failing_rows, None);
    let fresh = failures.get("freshness 1h").expect("the day-2 rows end long before the window");
    assert!(fresh.observed.as_deref().unwrap().contains("old at the window's end"), "{fresh:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_breaking_expectations_is_not_committed_and_the_run_says_why() {
    for seed in 1..=3u64 {
        let mut rng = Rng::new(seed);
        let day2 = broken_rows(&mut rng, DAY1_US + DAY_US, 300);
        let p = project("fail", &day2, seed).await;

        let first = p.day(0).await;
        assert!(first.error.is_none() && first.expectations.is_empty(), "seed {seed}: {first:?}");
        let version = p.store.latest_version("v").await.unwrap();
        let online_before = p.online_x().await;
        let state_before = p.store.state(&p.registry).unwrap().view("v").await.unwrap();

        let second = p.day(1).await;
        let error = second.error.clone().expect("the broken window fails");
        assert!(error.starts_with("feature view 'v' broke"), "{error}");
        assert!(error.contains("nothing was committed"), "{error}");
        for (name, count) in expected_counts(&day2) {
            if count > 0 {
                assert!(
                    error.contains(&format!("{name}: {count} of 300 rows break it")),
                    "seed {seed}: {error}"
                );
            }
        }
        check_report(&second, &day2, seed);
        assert_eq!(second.offline_version, None);

        // Nothing moved: table version, online values, watermark; the run is recorded failed.
        assert_eq!(p.store.latest_version("v").await.unwrap(), version, "seed {seed}");
        assert_eq!(p.online_x().await, online_before, "seed {seed}");
        let state = p.store.state(&p.registry).unwrap().view("v").await.unwrap();
        assert_eq!(state.watermark, state_before.watermark);
        let run = state.runs.last().unwrap();
        assert_eq!(run.status, RunStatus::Failed);
        assert_eq!(run.expectations, second.expectations);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_warn_the_window_is_committed_and_the_same_report_recorded() {
    let seed = 7;
    let mut rng = Rng::new(seed);
    let day2 = broken_rows(&mut rng, DAY1_US + DAY_US, 300);
    let p = project("warn", &day2, seed).await;
    p.day(0).await;
    let version = p.store.latest_version("v").await.unwrap().unwrap();

    let second = p.day(1).await;
    assert!(second.error.is_none(), "{second:?}");
    check_report(&second, &day2, seed);
    assert_eq!(p.store.latest_version("v").await.unwrap(), Some(version + 1));
    let state = p.store.state(&p.registry).unwrap().view("v").await.unwrap();
    assert_eq!(state.watermark, Some(at(DAY1_US + 2 * DAY_US)));
    let run = state.runs.last().unwrap();
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(run.expectations, second.expectations);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_rows_are_held_to_the_row_expectations() {
    for (on_failure, refused) in [("fail", true), ("warn", false)] {
        let p = project(on_failure, &[], 3).await;
        p.day(0).await;
        let version = p.store.latest_version("v").await.unwrap();
        let online_before = p.online_x().await;
        let ctx = p.materializer.lake.session().clone();
        let view = p.defs.feature_view("v").unwrap();
        let now = Utc::now().timestamp_micros();
        let rows = vec![
            Row { id: 1, ts_us: now, x: None, kind: Some("a".into()) },
            Row { id: 2, ts_us: now, x: Some(0.5), kind: Some("q".into()) },
            Row { id: 3, ts_us: now, x: Some(0.25), kind: Some("b".into()) },
        ];
        let targets = PushTargets {
            online: true,
            offline: true,
            online_expiry: false,
            max_future: Some(DEFAULT_MAX_FUTURE),
        };
        let lease = LeaseSettings::for_process("expectations test");
        let result = push(
            &ctx,
            &p.defs,
            view,
            &p.store,
            Some(p.online.as_ref()),
            vec![batch(&rows, "event_timestamp")],
            targets,
            &lease,
        )
        .await;
        if refused {
            let error = result.unwrap_err().to_string();
            assert!(error.contains("x not_null: 1 of 3 rows break it"), "{error}");
            assert!(error.contains("kind in [a, b]: 1 of 3 rows break it"), "{error}");
            assert!(error.contains("nothing was written"), "{error}");
            // Window checks do not judge a push: three rows are not "rows at least 1000".
            assert!(!error.contains("rows at least"), "{error}");
            assert_eq!(p.store.latest_version("v").await.unwrap(), version);
            assert_eq!(p.online_x().await, online_before);
        } else {
            let outcome = result.unwrap();
            let names: Vec<&str> = outcome.expectations.iter().map(|f| f.expectation.as_str()).collect();
            assert_eq!(names, ["x not_null", "kind in [a, b]"]);
            assert_eq!(outcome.offline_version, version.map(|v| v + 1));
            assert_ne!(p.online_x().await, online_before);
        }
    }
}

/// `n` rows over day 2 with a skewed number (some nulls and NaN) and a few categories.
fn random_rows(rng: &mut Rng, n: i64) -> Vec<Row> {
    let mut rows = good_rows(rng, DAY1_US + DAY_US, n);
    for r in &mut rows {
        let u = rng.unit();
        r.x = match rng.below(50) {
            0 => None,
            1 => Some(f64::NAN),
            _ => Some((u * u * u * 1000.0).round() / 10.0),
        };
        r.kind = match rng.below(20) {
            0 => None,
            1..=3 => Some("z".into()),
            4..=9 => Some("b".into()),
            _ => Some("a".into()),
        };
    }
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_run_keeps_statistics_that_match_a_direct_computation() {
    use quiver_core::state::Histogram;
    // 2 000 rows: every partition holds fewer values than the sample, so quantiles and
    // histogram are exact. 120 000 rows: sampled, within the documented error.
    for (n, seed) in [(2_000i64, 11u64), (120_000, 12), (120_000, 13)] {
        let mut rng = Rng::new(seed);
        let rows = random_rows(&mut rng, n);
        let mut p = project("warn", &rows, seed).await;
        p.materializer.rows_per_writer = 30_000;
        p.day(0).await;
        let report = p.day(1).await;
        assert!(report.error.is_none(), "{report:?}");
        let state = p.store.state(&p.registry).unwrap().view("v").await.unwrap();
        let stats = &state.runs.last().unwrap().statistics;
        assert_eq!(stats.keys().collect::<Vec<_>>(), ["kind", "x"]);

        // x: counts, moments and quantiles over the finite values.
        let x = &stats["x"];
        let mut finite: Vec<f64> = rows.iter().filter_map(|r| r.x).filter(|v| v.is_finite()).collect();
        finite.sort_by(f64::total_cmp);
        let len = finite.len() as f64;
        assert_eq!(x.count, n as u64, "seed {seed}");
        assert_eq!(x.nulls, rows.iter().filter(|r| r.x.is_none()).count() as u64);
        assert_eq!(x.non_finite, rows.iter().filter(|r| r.x.is_some_and(f64::is_nan)).count() as u64);
        assert_eq!(x.min, finite.first().copied());
        assert_eq!(x.max, finite.last().copied());
        let mean = finite.iter().sum::<f64>() / len;
        let stddev = (finite.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / len).sqrt();
        assert!((x.mean.unwrap() - mean).abs() < 1e-9 * mean.abs().max(1.0), "seed {seed}");
        assert!((x.stddev.unwrap() - stddev).abs() < 1e-9 * stddev.max(1.0), "seed {seed}");
        let exact = n == 2_000;
        for (q, estimate) in &x.quantiles {
            let q: f64 = q.parse().unwrap();
            if exact {
                // Nearest rank: the first value whose rank reaches q of them all.
                let rank = (0..finite.len()).find(|i| (i + 1) as f64 >= q * len * (1.0 - 1e-12)).unwrap();
                assert_eq!(*estimate, finite[rank], "seed {seed}: quantile {q}");
            } else {
                // The estimate's rank in the whole lies within 2 % of q.
                let below = finite.partition_point(|v| v < estimate) as f64 / len;
                let upto = finite.partition_point(|v| v <= estimate) as f64 / len;
                assert!(
                    below <= q + 0.02 && upto >= q - 0.02,
                    "seed {seed}: quantile {q}: {estimate} has rank {below}..{upto}"
                );
            }
        }
        let distinct = {
            let mut bits: Vec<u64> = finite.iter().map(|v| v.to_bits()).collect();
            bits.push(f64::NAN.to_bits());
            bits.sort_unstable();
            bits.dedup();
            bits.len() as f64
        };
        let estimated = x.distinct.unwrap() as f64;
        assert!(
            (estimated - distinct).abs() <= 0.05 * distinct,
            "seed {seed}: distinct {estimated} against {distinct}"
        );
        let Some(Histogram::Bins { edges, counts }) = &x.histogram else { panic!("x has no bins: {x:?}") };
        assert_eq!(edges.len(), counts.len() + 1);
        assert_eq!((edges[0], *edges.last().unwrap()), (finite[0], *finite.last().unwrap()));
        assert_eq!(counts.iter().sum::<u64>(), finite.len() as u64);
        if exact {
            let width = (edges.last().unwrap() - edges[0]) / counts.len() as f64;
            let mut direct = vec![0u64; counts.len()];
            for v in &finite {
                direct[(((v - edges[0]) / width) as usize).min(counts.len() - 1)] += 1;
            }
            assert_eq!(counts, &direct, "seed {seed}");
        }

        // kind: the most frequent values with exact counts (three values only).
        let kind = &stats["kind"];
        assert_eq!(kind.nulls, rows.iter().filter(|r| r.kind.is_none()).count() as u64);
        assert_eq!(kind.distinct, Some(3));
        let count = |k: &str| rows.iter().filter(|r| r.kind.as_deref() == Some(k)).count() as u64;
        let Some(Histogram::Top { values, other }) = &kind.histogram else { panic!("{kind:?}") };
        let mut want =
            vec![("a".to_string(), count("a")), ("b".to_string(), count("b")), ("z".to_string(), count("z"))];
        want.sort_by_key(|(v, n)| (std::cmp::Reverse(*n), v.clone()));
        assert_eq!(values, &want, "seed {seed}");
        assert_eq!(*other, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_flagged_on_a_shifted_distribution_and_not_on_a_stable_one() {
    use quiver_offline::drift::drift;
    use quiver_offline::layout::Window;
    let day = |d: i64| Window::new(at(DAY1_US + d * DAY_US), at(DAY1_US + (d + 1) * DAY_US)).unwrap();
    for seed in 21..=23u64 {
        let mut rng = Rng::new(seed);
        // Day 2 drawn like day 1 (1 200 rows of x uniform in [0, 1], kind a or b evenly)...
        let stable = good_rows(&mut rng, DAY1_US + DAY_US, 1200);
        // ... or moved: x up by 0.3, and kind mostly b.
        let mut shifted = good_rows(&mut rng, DAY1_US + DAY_US, 1200);
        for r in &mut shifted {
            r.x = r.x.map(|x| x + 0.3);
            r.kind = Some(if rng.below(10) < 8 { "b" } else { "a" }.to_string());
        }
        for (rows, moved) in [(&stable, false), (&shifted, true)] {
            let p = project("warn", rows, seed).await;
            p.day(0).await;
            p.day(1).await;
            let ctx = p.materializer.lake.session().clone();
            let view = p.defs.feature_view("v").unwrap();
            let report = drift(&ctx, view, &p.store, &day(0), &day(1)).await.unwrap();
            let (x, kind) = (&report.features["x"], &report.features["kind"]);
            assert_eq!((x.reference_values, x.current_values), (1200, 1200));
            assert_eq!(x.drifted, moved, "seed {seed}, moved {moved}: {x:?}");
            assert_eq!(kind.drifted, moved, "seed {seed}, moved {moved}: {kind:?}");
            if moved {
                // Three tenths of the mass moved past every value: KS is about 0.3.
                assert!((x.ks.unwrap() - 0.3).abs() < 0.06, "{x:?}");
                assert!(kind.js.unwrap() > 0.1 && kind.psi > 0.2, "{kind:?}");
            } else {
                assert!(x.ks.unwrap() < 0.1 && x.psi < 0.1 && kind.js.unwrap() < 0.1, "{x:?} {kind:?}");
            }
            // A period compared with itself has not moved at all.
            let same = drift(&ctx, view, &p.store, &day(1), &day(1)).await.unwrap();
            assert!(same.features.values().all(|f| !f.drifted && f.psi.abs() < 1e-9), "{same:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skew_is_zero_after_a_clean_materialization_and_counts_an_online_value_pushed_over() {
    use quiver_offline::skew::skew;
    let mut rng = Rng::new(31);
    let day2 = good_rows(&mut rng, DAY1_US + DAY_US, 1200);
    let p = project("warn", &day2, 31).await;
    p.day(0).await;
    p.day(1).await;
    let ctx = p.materializer.lake.session().clone();
    let features = vec![FeatureRef::parse("v:x").unwrap(), FeatureRef::parse("v:kind").unwrap()];
    let clean = skew(&ctx, &p.defs, &p.store, p.online.as_ref(), &features, 1000, 1).await.unwrap();
    assert_eq!(clean.entities, IDS as usize, "every entity, when the sample is larger");
    assert_eq!(clean.differing(), 0, "{clean:?}");

    // Entity 7's online value replaced by a push (online only) of the same event time and a
    // larger x, which wins the tie: training still reads the materialized row.
    let row = BTreeMap::from([("id".to_string(), Value::Int64(7))]);
    let now = Utc::now().timestamp_nanos_opt().unwrap();
    let served = get_online_features(p.online.as_ref(), &p.defs, &features, &[row][..], now).await.unwrap();
    let (Value::Float64(x), Some(event_ns)) = (&served.rows[0][0].value, served.rows[0][0].event_ns) else {
        panic!("{served:?}")
    };
    let Value::String(kind) = &served.rows[0][1].value else { panic!("{served:?}") };
    let pushed = Row { id: 7, ts_us: event_ns / 1000, x: Some(x + 5.0), kind: Some(kind.clone()) };
    let targets = PushTargets {
        online: true,
        offline: false,
        online_expiry: false,
        max_future: Some(DEFAULT_MAX_FUTURE),
    };
    let lease = LeaseSettings::for_process("skew test");
    let view = p.defs.feature_view("v").unwrap();
    let outcome = push(
        &ctx,
        &p.defs,
        view,
        &p.store,
        Some(p.online.as_ref()),
        vec![batch(&[pushed], "event_timestamp")],
        targets,
        &lease,
    )
    .await
    .unwrap();
    assert_eq!(outcome.online_rows_written, 1);

    let skewed = skew(&ctx, &p.defs, &p.store, p.online.as_ref(), &features, 1000, 2).await.unwrap();
    let x_skew = &skewed.features["v:x"];
    assert_eq!((x_skew.differ, skewed.features["v:kind"].differ), (1, 0), "{skewed:?}");
    assert_eq!(x_skew.examples[0].entity["id"], serde_json::json!(7));
    assert_eq!(x_skew.examples[0].online, serde_json::json!(x + 5.0));
    assert_eq!(x_skew.examples[0].offline, serde_json::json!(x));
    // A sample smaller than the entities compares that many.
    assert_eq!(
        skew(&ctx, &p.defs, &p.store, p.online.as_ref(), &features, 10, 3).await.unwrap().entities,
        10
    );
}
