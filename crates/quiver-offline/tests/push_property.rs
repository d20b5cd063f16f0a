//! Pushes and materializations in random order: pushed rows survive every later
//! materialization of a window that holds them, and afterwards the online store serves, for
//! every entity, exactly the row a training set picks at the same moment. Both are checked
//! against a brute-force model of the table (the lake rows of every window materialized, plus
//! every pushed row), over many seeded sequences. Times, created times and values are drawn
//! from small sets, so pushed and lake rows often tie on event and created time and the
//! values decide.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{
    Array, ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
    TimestampNanosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::physical_plan::collect;
use datafusion::prelude::SessionContext;
use quiver_core::definitions::{Definitions, FeatureRef};
use quiver_core::registry::Registry;
use quiver_core::repo::parse_documents;
use quiver_core::storage::resolve_location;
use quiver_offline::historical::{HistoricalRequest, plan_historical, spine_session};
use quiver_offline::lake::Lake;
use quiver_offline::lease::LeaseSettings;
use quiver_offline::materialize::{Materializer, NoProgress, Span};
use quiver_offline::push::{DEFAULT_MAX_FUTURE, PushTargets, push};
use quiver_offline::store::OfflineStore;
use quiver_online::OnlineStore;
use quiver_online::embedded::EmbeddedStore;
use quiver_online::read::{Status, get_online_features};
use quiver_online::value::Value;
use url::Url;

type Rng = quiver_sample::rng::SplitMix64;

const BASE_US: i64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z
const MINUTE_US: i64 = 60_000_000;
const ENTITIES: i64 = 4;

const DEFS: &str = "\
entities:
  - {name: e, join_keys: [{name: id, dtype: int64}]}
sources:
  - {name: src, path: src/, format: parquet, timestamp_field: ts, created_timestamp_field: created}
feature_views:
  - {name: v, entities: [e], source: src, online: true, features: [{name: x, dtype: int64}, {name: s, dtype: string}]}
";

/// One row of the view, as the lake or a push holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Row {
    id: i64,
    event_us: i64,
    created_us: Option<i64>,
    x: Option<i64>,
    s: Option<String>,
}

impl Row {
    /// The latest-row order: event time, created time, then the features, nulls first.
    fn order(&self) -> (i64, Option<i64>, Option<i64>, Option<&str>) {
        (self.event_us, self.created_us, self.x, self.s.as_deref())
    }
}

fn random_row(rng: &mut Rng, created: bool) -> Row {
    Row {
        id: 1 + rng.below(ENTITIES as u64) as i64,
        event_us: BASE_US + rng.below(8) as i64 * MINUTE_US,
        created_us: (created && !rng.one_in(3)).then(|| BASE_US + rng.below(2) as i64 * MINUTE_US),
        x: (!rng.one_in(5)).then(|| rng.below(3) as i64 - 1),
        s: [None, Some("a"), Some("b")][rng.below(3) as usize].map(str::to_string),
    }
}

fn times(values: impl Iterator<Item = Option<i64>>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from(values.collect::<Vec<_>>()).with_timezone("UTC"))
}

/// `rows` with the lake's column names (`ts`, `created`) or push's (`event_timestamp`,
/// optionally `created_timestamp`).
fn batch(rows: &[Row], event: &str, created: Option<&str>) -> RecordBatch {
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let mut fields = vec![Field::new("id", DataType::Int64, false), Field::new(event, ts.clone(), false)];
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(rows.iter().map(|r| r.id).collect::<Vec<_>>())),
        times(rows.iter().map(|r| Some(r.event_us))),
    ];
    if let Some(name) = created {
        fields.push(Field::new(name, ts, true));
        columns.push(times(rows.iter().map(|r| r.created_us)));
    }
    fields.push(Field::new("x", DataType::Int64, true));
    columns.push(Arc::new(Int64Array::from(rows.iter().map(|r| r.x).collect::<Vec<_>>())));
    fields.push(Field::new("s", DataType::Utf8, true));
    columns.push(Arc::new(StringArray::from(rows.iter().map(|r| r.s.clone()).collect::<Vec<_>>())));
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
}

fn write_parquet(path: &Path, batch: &RecordBatch) {
    quiver_sample::write_batch(path, batch).unwrap();
}

/// The model's answer for `id`: the latest row among the table's rows.
fn expected(table: &[Row], id: i64) -> Option<&Row> {
    table.iter().filter(|r| r.id == id).max_by(|a, b| a.order().cmp(&b.order()))
}

/// What a training set says for every entity at `at_us`: (x, s) per id, in id order.
async fn training(
    ctx: &SessionContext,
    defs: &Definitions,
    store: &OfflineStore,
    at_us: i64,
) -> Vec<(Option<i64>, Option<String>)> {
    let ids: Vec<i64> = (1..=ENTITIES).collect();
    let spine = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new(
                "event_timestamp",
                DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
                false,
            ),
        ])),
        vec![
            Arc::new(Int64Array::from(ids.clone())),
            Arc::new(TimestampNanosecondArray::from(vec![at_us * 1000; ids.len()]).with_timezone("UTC")),
        ],
    )
    .unwrap();
    let spine = spine_session(ctx).read_batch(spine).unwrap();
    let request = HistoricalRequest {
        features: vec![FeatureRef::parse("v:x").unwrap(), FeatureRef::parse("v:s").unwrap()],
        full_feature_names: false,
        timestamp_column: "event_timestamp".into(),
        table_versions: Default::default(),
        partitions: 1,
    };
    let planned = plan_historical(ctx, defs, store, spine, &request).await.unwrap();
    let batches = collect(planned.plan.clone(), ctx.task_ctx()).await.unwrap();
    let out = datafusion::arrow::compute::concat_batches(&planned.schema, &batches).unwrap();
    let x = out.column_by_name("x").unwrap().as_any().downcast_ref::<Int64Array>().unwrap().clone();
    let s = datafusion::arrow::compute::cast(out.column_by_name("s").unwrap(), &DataType::Utf8).unwrap();
    let s = s.as_any().downcast_ref::<StringArray>().unwrap();
    (0..out.num_rows())
        .map(|i| (x.is_valid(i).then(|| x.value(i)), s.is_valid(i).then(|| s.value(i).to_string())))
        .collect()
}

/// What the online store serves for every entity now: the row's event time and (x, s), or
/// `None` when it has no row.
async fn online(
    store: &dyn OnlineStore,
    defs: &Definitions,
) -> Vec<Option<(i64, Option<i64>, Option<String>)>> {
    let features = vec![FeatureRef::parse("v:x").unwrap(), FeatureRef::parse("v:s").unwrap()];
    let rows: Vec<BTreeMap<String, Value>> =
        (1..=ENTITIES).map(|id| BTreeMap::from([("id".to_string(), Value::Int64(id))])).collect();
    let now = Utc::now().timestamp_nanos_opt().unwrap();
    let answer = get_online_features(store, defs, &features, &rows[..], now).await.unwrap();
    answer
        .rows
        .iter()
        .map(|row| {
            if row[0].status == Status::NotFound {
                return None;
            }
            let x = match &row[0].value {
                Value::Int64(v) => Some(*v),
                Value::Null => None,
                other => panic!("x is {other:?}"),
            };
            let s = match &row[1].value {
                Value::String(v) => Some(v.clone()),
                Value::Null => None,
                other => panic!("s is {other:?}"),
            };
            Some((row[0].event_ns.unwrap() / 1000, x, s))
        })
        .collect()
}

fn at(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap()
}

async fn run_seed(seed: u64) {
    let mut rng = Rng::new(seed);
    let tmp = tempfile::tempdir().unwrap();
    let lake_rows: Vec<Row> = (0..24).map(|_| random_row(&mut rng, true)).collect();
    write_parquet(&tmp.path().join("lake/src/part-0.parquet"), &batch(&lake_rows, "ts", Some("created")));
    let loaded = parse_documents(&[("defs.yaml".into(), DEFS.into())]);
    assert!(loaded.problems.is_empty(), "{}", loaded.problems);
    let defs = loaded.definitions;
    let registry = Registry::open(&resolve_location("registry/", tmp.path()).unwrap(), "p").unwrap();
    registry.apply(&defs, 0, "test").await.unwrap();
    let lake = Lake::new(Url::from_directory_path(tmp.path().join("lake")).unwrap());
    let store = OfflineStore::new(Url::from_directory_path(tmp.path().join("offline")).unwrap());
    let online_store: Arc<dyn OnlineStore> =
        Arc::new(EmbeddedStore::open(&tmp.path().join("online")).unwrap());
    let mut materializer = Materializer::new(lake.clone(), store.clone(), registry.clone()).unwrap();
    materializer.online = Some(online_store.clone());
    let ctx = lake.session().clone();
    let view = defs.feature_view("v").unwrap();
    let lease = LeaseSettings::for_process("push property test");
    let targets = PushTargets {
        online: true,
        offline: true,
        online_expiry: false,
        max_future: Some(DEFAULT_MAX_FUTURE),
    };

    // The model: what the offline table holds.
    let mut table: Vec<Row> = Vec::new();
    let mut windows: Vec<(i64, i64)> = Vec::new();
    let mut pushed: Vec<Row> = Vec::new();
    let mut log = Vec::new();
    for _ in 0..8 {
        if rng.one_in(2) {
            let start = BASE_US + (rng.below(9) as i64 - 1) * MINUTE_US;
            let end = start + (1 + rng.below(8) as i64) * MINUTE_US;
            log.push(format!(
                "materialize [{}, {}) min",
                (start - BASE_US) / MINUTE_US,
                (end - BASE_US) / MINUTE_US
            ));
            let reports = materializer
                .run(Span::Window { start: at(start), end: at(end) }, &[], &NoProgress)
                .await
                .unwrap();
            assert!(reports.iter().all(|r| r.error.is_none()), "seed {seed}: {reports:?}");
            windows.push((start, end));
        } else {
            let with_created = rng.one_in(2);
            let rows: Vec<Row> = (0..1 + rng.below(4)).map(|_| random_row(&mut rng, with_created)).collect();
            log.push(format!("push {rows:?}"));
            let pushed_batch = batch(&rows, "event_timestamp", with_created.then_some("created_timestamp"));
            push(&ctx, &defs, view, &store, Some(online_store.as_ref()), vec![pushed_batch], targets, &lease)
                .await
                .unwrap();
            pushed.extend(rows);
        }
        table.clear();
        table.extend(
            lake_rows
                .iter()
                .filter(|r| windows.iter().any(|(s, e)| *s <= r.event_us && r.event_us < *e))
                .cloned(),
        );
        table.extend(pushed.iter().cloned());
    }

    let later = BASE_US + 24 * 60 * MINUTE_US;
    let trained = training(&ctx, &defs, &store, later).await;
    let served = online(online_store.as_ref(), &defs).await;
    for id in 1..=ENTITIES {
        let want = expected(&table, id);
        let i = (id - 1) as usize;
        let context = format!("seed {seed}, entity {id}, after:\n  {}", log.join("\n  "));
        let want_values = want.map_or((None, None), |r| (r.x, r.s.clone()));
        assert_eq!(trained[i], want_values, "training set: {context}");
        assert_eq!(
            served[i],
            want.map(|r| (r.event_us, r.x, r.s.clone())),
            "online (the model's row: {want:?}): {context}"
        );
    }
}

#[tokio::test]
async fn online_agrees_with_training_after_any_pushes_and_materializations() {
    for seed in 0..16 {
        run_seed(seed).await;
    }
}
