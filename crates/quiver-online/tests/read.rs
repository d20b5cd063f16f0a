//! Online reads: every status, ttl boundaries, whole-row semantics, compound and string
//! keys, list values, clear errors, and one store call per request.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use quiver_core::definitions::{Definitions, FeatureRef};
use quiver_core::repo::parse_documents;
use quiver_online::embedded::EmbeddedStore;
use quiver_online::keys::entity_key;
use quiver_online::read::{Status, get_online_features};
use quiver_online::rows::{sortable_features, view_fingerprint};
use quiver_online::store::{EntityKey, OnlineStore, RowWrite};
use quiver_online::value::{StoredRow, Value, encode};

/// Counts calls to the store it wraps (a real store underneath).
#[derive(Debug)]
struct Counting {
    inner: EmbeddedStore,
    reads: AtomicUsize,
}

#[async_trait]
impl OnlineStore for Counting {
    async fn write(&self, rows: &[RowWrite]) -> quiver_online::Result<u64> {
        self.inner.write(rows).await
    }
    async fn read(&self, keys: &[(&str, EntityKey)]) -> quiver_online::Result<Vec<Option<Vec<u8>>>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.read(keys).await
    }
    async fn delete_view(&self, view: &str) -> quiver_online::Result<u64> {
        self.inner.delete_view(view).await
    }
    fn describe(&self) -> String {
        "counting".into()
    }
}

const DEFS: &str = "
entities:
  - {name: driver, join_keys: [{name: driver_id, dtype: int64}]}
  - {name: driver_city, join_keys: [{name: driver_id, dtype: int64}, {name: city, dtype: string}]}
  - {name: zone, join_keys: [{name: zone_id, dtype: string}]}
sources:
  - {name: s, path: x/, format: parquet, timestamp_field: ts}
feature_views:
  - {name: stats, entities: [driver], source: s, ttl: 1h, features: [{name: a, dtype: float32}, {name: b, dtype: int64}]}
  - {name: city, entities: [driver_city], source: s, ttl: 0, features: [{name: trips, dtype: int64}, {name: emb, dtype: \"list<float32>\"}]}
  - {name: zones, entities: [zone], source: s, ttl: 30m, features: [{name: surge, dtype: float64}]}
";

const HOUR: i64 = 3_600_000_000_000;
const NOW: i64 = 1_767_225_600_000_000_000 + 100 * HOUR;

fn defs() -> Definitions {
    let l = parse_documents(&[("d.yaml".into(), DEFS.into())]);
    assert!(l.problems.is_empty(), "{}", l.problems);
    l.definitions
}

fn write(
    defs: &Definitions,
    view: &str,
    key: &[(&str, Value)],
    event_ns: i64,
    values: Vec<Value>,
) -> RowWrite {
    let parts: Vec<(&str, &Value)> = key.iter().map(|(k, v)| (*k, v)).collect();
    RowWrite {
        view: view.into(),
        entity: entity_key(&parts).unwrap(),
        bytes: encode(
            &StoredRow { event_ns, created_ns: None, values },
            view_fingerprint(defs.feature_view(view).unwrap()),
            &sortable_features(defs.feature_view(view).unwrap()),
        ),
        expire_at_ms: None,
    }
}

fn entity(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

fn refs(list: &[&str]) -> Vec<FeatureRef> {
    list.iter().map(|r| FeatureRef::parse(r).unwrap()).collect()
}

#[tokio::test]
async fn every_status_comes_out_as_training_would_see_it() {
    let d = defs();
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(Counting { inner: EmbeddedStore::open(dir.path()).unwrap(), reads: AtomicUsize::new(0) });
    let driver = |id: i64| vec![("driver_id", Value::Int64(id))];
    store
        .write(&[
            write(&d, "stats", &driver(1), NOW - HOUR / 2, vec![Value::Float32(0.5), Value::Int64(3)]),
            // The latest row has a null: the feature is NULL_VALUE, never an older value.
            write(&d, "stats", &driver(2), NOW - HOUR / 2, vec![Value::Null, Value::Int64(4)]),
            // Exactly at the ttl boundary: still inside (the point-in-time rule is inclusive).
            write(&d, "stats", &driver(3), NOW - HOUR, vec![Value::Float32(1.0), Value::Int64(5)]),
            // One nanosecond past it: outside.
            write(&d, "stats", &driver(4), NOW - HOUR - 1, vec![Value::Float32(1.0), Value::Int64(6)]),
            write(
                &d,
                "city",
                &[("driver_id", Value::Int64(1)), ("city", Value::String("São Paulo".into()))],
                NOW - 1000 * HOUR,
                vec![Value::Int64(9), Value::List(vec![Value::Float32(0.25), Value::Float32(-1.0)])],
            ),
            write(
                &d,
                "zones",
                &[("zone_id", Value::String("zone_007".into()))],
                NOW - 10,
                vec![Value::Float64(1.75)],
            ),
        ])
        .await
        .unwrap();
    // A row of an older definition of `stats` (another fingerprint) reads as absent.
    let mut stale = write(&d, "stats", &driver(5), NOW, vec![Value::Float32(1.0), Value::Int64(7)]);
    stale.bytes[1] ^= 0xff;
    store.write(&[stale]).await.unwrap();

    let features = refs(&["stats:a", "stats:b", "city:emb", "zones:surge", "city:trips"]);
    let rows: Vec<BTreeMap<String, Value>> = (1..=6)
        .map(|id| {
            entity(&[
                ("driver_id", Value::Int64(id)),
                ("city", Value::String("São Paulo".into())),
                ("zone_id", Value::String(if id == 1 { "zone_007".into() } else { "zone_999".into() })),
            ])
        })
        .collect();
    let r = get_online_features(store.as_ref(), &d, &features, &rows[..], NOW).await.unwrap();
    assert_eq!(store.reads.load(Ordering::SeqCst), 1, "one store call for 6 entities x 3 views");
    let status = |row: usize, col: usize| r.rows[row][col].status;
    assert_eq!((status(0, 0), status(0, 1)), (Status::Present, Status::Present));
    assert_eq!(r.rows[0][0].value, Value::Float32(0.5));
    assert_eq!(r.rows[0][0].event_ns, Some(NOW - HOUR / 2));
    assert_eq!((status(1, 0), status(1, 1)), (Status::NullValue, Status::Present));
    assert_eq!(r.rows[1][1].value, Value::Int64(4));
    assert_eq!(status(2, 0), Status::Present, "exactly ttl old");
    assert_eq!(status(3, 0), Status::OutsideMaxAge, "a nanosecond older than the ttl");
    assert_eq!(r.rows[3][0].value, Value::Null);
    assert_eq!(r.rows[3][0].event_ns, Some(NOW - HOUR - 1));
    assert_eq!(status(4, 0), Status::NotFound, "written for another definition");
    assert_eq!(status(5, 0), Status::NotFound, "never written");
    assert_eq!(r.rows[5][0].event_ns, None);
    // ttl 0 never expires; compound string keys; list values.
    assert_eq!(status(0, 2), Status::Present);
    assert_eq!(r.rows[0][2].value, Value::List(vec![Value::Float32(0.25), Value::Float32(-1.0)]));
    assert_eq!(r.rows[0][4].value, Value::Int64(9));
    assert_eq!(status(0, 3), Status::Present);
    assert_eq!(status(1, 3), Status::NotFound);

    // Read at a moment before the stored rows: what training would see is not here, and a
    // value from later is never given for it.
    let before =
        get_online_features(store.as_ref(), &d, &features, &rows[..], NOW - HOUR / 2 - 1).await.unwrap();
    assert_eq!(before.rows[0][0].status, Status::NotFound, "stored half an hour ago, asked just before");
    assert_eq!((before.rows[0][0].value.clone(), before.rows[0][0].event_ns), (Value::Null, None));
    assert_eq!(before.rows[2][0].status, Status::Present, "stored an hour ago: known then");
    assert_eq!(before.rows[0][2].status, Status::Present, "city row from long before");
    // Exactly at the row's event time it is known (the point-in-time rule is inclusive).
    let at = get_online_features(store.as_ref(), &d, &features, &rows[..], NOW - HOUR / 2).await.unwrap();
    assert_eq!(at.rows[0][0].status, Status::Present);
}

#[tokio::test]
async fn bad_requests_are_clear_errors() {
    let d = defs();
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let one = vec![entity(&[("driver_id", Value::Int64(1))])];
    type Case = (Vec<FeatureRef>, Vec<BTreeMap<String, Value>>, &'static str);
    let cases: Vec<Case> = vec![
        (refs(&["nope:a"]), one.clone(), "unknown feature view 'nope'"),
        (refs(&["stats:c"]), one.clone(), "feature view 'stats' has no feature 'c'; did you mean 'a'?"),
        (
            refs(&["city:trips"]),
            one.clone(),
            "entity row 0 has no value for join key 'city' of feature view 'city'",
        ),
        (
            refs(&["stats:a"]),
            vec![entity(&[("driver_id", Value::String("1".into()))])],
            "join key 'driver_id' of feature view 'stats' is int64, but the request gives",
        ),
        (refs(&["stats:a"]), vec![entity(&[("driver_id", Value::Null)])], "gives null"),
        (vec![], one.clone(), "no features requested"),
    ];
    for (features, rows, expected) in cases {
        let err = get_online_features(&store, &d, &features, &rows[..], NOW).await.unwrap_err();
        assert!(matches!(err, quiver_online::Error::InvalidInput(_)), "{err}");
        assert!(err.to_string().contains(expected), "expected {expected:?} in {err}");
    }
    // int32 keys given for an int64 key are widened, not refused.
    let ok = get_online_features(
        &store,
        &d,
        &refs(&["stats:a"]),
        &[entity(&[("driver_id", Value::Int32(1))])][..],
        NOW,
    )
    .await
    .unwrap();
    assert_eq!(ok.rows[0][0].status, Status::NotFound);
}
