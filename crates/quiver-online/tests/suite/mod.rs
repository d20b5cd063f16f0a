//! The conformance suite every [`OnlineStore`] implementation runs (Redis, Redis Cluster,
//! embedded): the trait's contract, checked against a real store.
//!
//! Call [`run`] with a store nobody else writes to under the view names used here
//! (`conf_a`, `conf_b`, `conf_race` prefixed with `tag`). Panics with a description of the
//! first broken rule.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test suite: failing loudly is the point

use std::sync::Arc;

use quiver_online::keys::entity_key;
use quiver_online::store::{EntityKey, OnlineStore, RowWrite};
use quiver_online::value::{StoredRow, Value, decode, encode};

fn key(id: i64) -> EntityKey {
    entity_key(&[("id", &Value::Int64(id))]).unwrap()
}

fn row(
    view: &str,
    entity: &EntityKey,
    event: i64,
    created: Option<i64>,
    v: i64,
    fingerprint: u32,
) -> RowWrite {
    RowWrite {
        view: view.to_string(),
        entity: entity.clone(),
        bytes: encode(
            &StoredRow { event_ns: event, created_ns: created, values: vec![Value::Int64(v)] },
            fingerprint,
            &[true],
        ),
        expire_at_ms: None,
    }
}

async fn value_of(store: &dyn OnlineStore, view: &str, entity: &EntityKey) -> Option<i64> {
    let got = store.read(&[(view, entity.clone())]).await.unwrap();
    got[0].as_ref().map(|b| match decode(b, "conformance").unwrap().values[0] {
        Value::Int64(v) => v,
        ref other => panic!("unexpected value {other:?}"),
    })
}

/// Runs every check. `tag` keeps view names apart from other runs on a shared store.
pub async fn run(store: Arc<dyn OnlineStore>, tag: &str) {
    let a = format!("{tag}_conf_a");
    let b = format!("{tag}_conf_b");
    let s = store.as_ref();

    // A missing key reads as None.
    assert_eq!(s.read(&[(a.as_str(), key(1))]).await.unwrap(), vec![None], "{}: missing key", s.describe());
    assert_eq!(s.read(&[]).await.unwrap(), Vec::<Option<Vec<u8>>>::new());

    // Write, read back byte for byte.
    let first = row(&a, &key(1), 100, None, 1, 7);
    assert_eq!(s.write(std::slice::from_ref(&first)).await.unwrap(), 1);
    assert_eq!(s.read(&[(a.as_str(), key(1))]).await.unwrap()[0].as_deref(), Some(first.bytes.as_slice()));

    // Newer wins by (event, created, then the values: the offline latest-row order); older
    // and equal rows are skipped.
    assert_eq!(s.write(&[row(&a, &key(1), 99, Some(i64::MAX), 2, 7)]).await.unwrap(), 0, "older event time");
    assert_eq!(s.write(std::slice::from_ref(&first)).await.unwrap(), 0, "an equal row is skipped");
    assert_eq!(
        s.write(&[row(&a, &key(1), 100, None, -1, 7)]).await.unwrap(),
        0,
        "equal times and a smaller value: the offline order picks the stored row"
    );
    assert_eq!(value_of(s, &a, &key(1)).await, Some(1));
    assert_eq!(
        s.write(&[row(&a, &key(1), 100, None, 3, 7)]).await.unwrap(),
        1,
        "equal times and a larger value: the offline order picks the new row"
    );
    assert_eq!(value_of(s, &a, &key(1)).await, Some(3));
    assert_eq!(
        s.write(&[row(&a, &key(1), 100, Some(5), 4, 7)]).await.unwrap(),
        1,
        "a created time beats none"
    );
    assert_eq!(
        s.write(&[row(&a, &key(1), 100, Some(4), 5, 7)]).await.unwrap(),
        0,
        "an earlier created time loses"
    );
    assert_eq!(s.write(&[row(&a, &key(1), 101, None, 6, 7)]).await.unwrap(), 1, "a later event wins");
    assert_eq!(value_of(s, &a, &key(1)).await, Some(6));
    // Negative times (before 1970) order correctly too.
    assert_eq!(s.write(&[row(&a, &key(9), -50, None, 1, 7)]).await.unwrap(), 1);
    assert_eq!(s.write(&[row(&a, &key(9), -60, None, 2, 7)]).await.unwrap(), 0);
    // A row written for another definition of the view is replaced whatever its time.
    assert_eq!(s.write(&[row(&a, &key(1), 1, None, 7, 8)]).await.unwrap(), 1, "new fingerprint replaces");
    assert_eq!(value_of(s, &a, &key(1)).await, Some(7));

    // Many rows in one call, several views; reads come back in request order.
    let mut batch = Vec::new();
    for id in 0..5_000 {
        batch.push(row(&a, &key(1000 + id), 10, None, id, 7));
        batch.push(row(&b, &key(1000 + id), 10, None, -id, 7));
    }
    assert_eq!(s.write(&batch).await.unwrap(), 10_000);
    let wanted: Vec<(&str, EntityKey)> = (0..300)
        .rev()
        .flat_map(|id| {
            [(b.as_str(), key(1000 + id)), (a.as_str(), key(1000 + id)), (a.as_str(), key(-id - 1))]
        })
        .collect();
    let got = s.read(&wanted).await.unwrap();
    assert_eq!(got.len(), wanted.len());
    for (i, id) in (0..300).rev().enumerate() {
        let v = |bytes: &Option<Vec<u8>>| bytes.as_ref().map(|x| decode(x, "c").unwrap().values[0].clone());
        assert_eq!(v(&got[3 * i]), Some(Value::Int64(-id)));
        assert_eq!(v(&got[3 * i + 1]), Some(Value::Int64(id)));
        assert_eq!(got[3 * i + 2], None);
    }

    // Compound and string keys, list values.
    let compound =
        entity_key(&[("driver_id", &Value::Int64(7)), ("city", &Value::String("São Paulo {x}".into()))])
            .unwrap();
    let list_row = RowWrite {
        view: b.clone(),
        entity: compound.clone(),
        bytes: encode(
            &StoredRow {
                event_ns: 1,
                created_ns: None,
                values: vec![Value::List(vec![Value::Float32(0.25), Value::Null]), Value::String("x".into())],
            },
            7,
            &[false, true],
        ),
        expire_at_ms: None,
    };
    s.write(std::slice::from_ref(&list_row)).await.unwrap();
    assert_eq!(
        s.read(&[(b.as_str(), compound)]).await.unwrap()[0].as_deref(),
        Some(list_row.bytes.as_slice())
    );

    // Concurrent writers: whatever the interleaving, the newest row of each key remains.
    let race = format!("{tag}_conf_race");
    let mut tasks = Vec::new();
    for w in 0..8i64 {
        let store = store.clone();
        let race = race.clone();
        tasks.push(tokio::spawn(async move {
            for round in 0..20i64 {
                // Writer w writes event time (round * 8 + w) for keys 0..50, in shuffled order.
                let t = round * 8 + ((w * 5 + round) % 8);
                let rows: Vec<RowWrite> =
                    (0..50).map(|id| row(&race, &key((id * 7 + w) % 50), t, None, t, 7)).collect();
                store.write(&rows).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for id in 0..50 {
        assert_eq!(
            value_of(s, &race, &key(id)).await,
            Some(19 * 8 + 7),
            "{}: key {id} moved backwards",
            s.describe()
        );
    }

    // Deleting a view removes exactly its rows.
    let removed = s.delete_view(&a).await.unwrap();
    assert_eq!(removed, 5_002, "{}: rows of {a}", s.describe());
    assert_eq!(value_of(s, &a, &key(1)).await, None);
    assert_eq!(value_of(s, &b, &key(1000)).await, Some(0), "other views are kept");
    assert_eq!(s.delete_view(&a).await.unwrap(), 0);
    s.delete_view(&b).await.unwrap();
    s.delete_view(&race).await.unwrap();
}
