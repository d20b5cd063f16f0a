//! Online read benchmark (see BENCHMARKS.md).
//!
//! `cargo run --release -p quiver-online --example online_bench -- REDIS_URL [ENTITIES] [ITERATIONS] [BATCHES]`
//!
//! Writes ENTITIES entities into two views of 3 features each, then, for each batch size
//! of BATCHES (a comma-separated list, default `100`), times ITERATIONS reads of that many
//! random entities × 6 features through `get_online_features` (decode, statuses and all)
//! and, as the floor, the same keys (two per entity) as one raw `MGET` with the redis
//! crate (the one command Quiver sends too). Prints one JSON line per batch size: p50/p99
//! of both, with the write throughput and Redis memory per entity repeated on each line.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark program: it stops loudly on any failure

use std::collections::BTreeMap;
use std::time::Instant;

use quiver_core::repo::parse_documents;
use quiver_online::keys::entity_key;
use quiver_online::read::get_online_features;
use quiver_online::redis_store::RedisStore;
use quiver_online::store::{OnlineStore, RowWrite};
use quiver_online::value::{StoredRow, Value, encode};

const DEFS: &str = "
entities:
  - {name: driver, join_keys: [{name: driver_id, dtype: int64}]}
  - {name: customer, join_keys: [{name: customer_id, dtype: int64}]}
sources:
  - {name: s, path: x/, format: parquet, timestamp_field: ts}
feature_views:
  - {name: driver_stats, entities: [driver], source: s, ttl: 0, features: [{name: conv_rate, dtype: float32}, {name: acc_rate, dtype: float32}, {name: avg_daily_trips, dtype: int64}]}
  - {name: customer_profile, entities: [customer], source: s, ttl: 0, features: [{name: current_balance, dtype: float32}, {name: avg_passenger_count, dtype: float32}, {name: lifetime_trip_count, dtype: int64}]}
";

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn used_memory(url: &str) -> u64 {
    let client = redis::Client::open(url).expect("url");
    let mut c = client.get_multiplexed_async_connection().await.expect("connection");
    let info: String = redis::cmd("INFO").arg("memory").query_async(&mut c).await.expect("info");
    info.lines().find_map(|l| l.strip_prefix("used_memory:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url = args.get(1).cloned().unwrap_or_else(|| "redis://127.0.0.1:6379/0".into());
    let entities: i64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let iterations: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(2_000);
    let batches: Vec<usize> = args
        .get(4)
        .map_or("100", String::as_str)
        .split(',')
        .map(|b| b.trim().parse().expect("BATCHES: a comma-separated list of batch sizes"))
        .collect();
    assert!(batches.iter().all(|&b| b > 0), "batch sizes must be positive");
    let loaded = parse_documents(&[("b.yaml".into(), DEFS.into())]);
    let defs = loaded.definitions;
    let store = RedisStore::connect(&url, "bench").await.expect("redis");
    for v in ["driver_stats", "customer_profile"] {
        store.delete_view(v).await.expect("clean");
    }
    let memory_before = used_memory(&url).await;

    // Writes: one row per entity per view.
    let fingerprint =
        |name: &str| quiver_online::rows::view_fingerprint(defs.feature_view(name).expect("view"));
    let (fd, fc) = (fingerprint("driver_stats"), fingerprint("customer_profile"));
    let mut rows = Vec::with_capacity(entities as usize * 2);
    for i in 0..entities {
        let t = 1_767_225_600_000_000_000 + i;
        let d = StoredRow {
            event_ns: t,
            created_ns: Some(t),
            values: vec![Value::Float32(0.5), Value::Float32(0.9), Value::Int64(i % 50)],
        };
        let c = StoredRow {
            event_ns: t,
            created_ns: None,
            values: vec![Value::Float32(120.5), Value::Float32(1.5), Value::Int64(i)],
        };
        rows.push(RowWrite {
            view: "driver_stats".into(),
            entity: entity_key(&[("driver_id", &Value::Int64(i))]).expect("key"),
            bytes: encode(&d, fd, &[true; 3]),
            expire_at_ms: None,
        });
        rows.push(RowWrite {
            view: "customer_profile".into(),
            entity: entity_key(&[("customer_id", &Value::Int64(i))]).expect("key"),
            bytes: encode(&c, fc, &[true; 3]),
            expire_at_ms: None,
        });
    }
    let t0 = Instant::now();
    store.write(&rows).await.expect("write");
    let write_s = t0.elapsed().as_secs_f64();
    let memory_after = used_memory(&url).await;

    let features: Vec<quiver_core::definitions::FeatureRef> = ["driver_stats", "customer_profile"]
        .iter()
        .flat_map(|v| defs.expand_reference(v).expect("view"))
        .collect();
    let client = redis::Client::open(url.as_str()).expect("url");
    let mut raw = client.get_multiplexed_async_connection().await.expect("connection");
    let mut seed = 42u64;
    for &size in &batches {
        let mut quiver_ms = Vec::with_capacity(iterations);
        let mut floor_ms = Vec::with_capacity(iterations);
        for it in 0..iterations + 100 {
            let mut batch = Vec::with_capacity(size);
            for _ in 0..size {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let id = ((seed >> 33) as i64) % entities;
                let mut row = BTreeMap::new();
                row.insert("driver_id".to_string(), Value::Int64(id));
                row.insert("customer_id".to_string(), Value::Int64((id * 7) % entities));
                batch.push(row);
            }
            let t = Instant::now();
            let r = get_online_features(
                &store,
                &defs,
                &features,
                &batch[..],
                1_767_225_600_000_000_000 + entities,
            )
            .await
            .expect("read");
            let q = t.elapsed().as_secs_f64() * 1000.0;
            assert_eq!(r.rows.len(), size);
            let mut mget = redis::cmd("MGET");
            for row in &batch {
                if let (Some(Value::Int64(d)), Some(Value::Int64(c))) =
                    (row.get("driver_id"), row.get("customer_id"))
                {
                    mget.arg(format!("bench:{{driver_id={d}}}:driver_stats"));
                    mget.arg(format!("bench:{{customer_id={c}}}:customer_profile"));
                }
            }
            let t = Instant::now();
            let got: Vec<Option<Vec<u8>>> = mget.query_async(&mut raw).await.expect("raw");
            let f = t.elapsed().as_secs_f64() * 1000.0;
            assert_eq!(got.len(), 2 * size);
            assert!(got.iter().all(Option::is_some), "every key of the floor's MGET is present");
            if it >= 100 {
                quiver_ms.push(q);
                floor_ms.push(f);
            }
        }
        quiver_ms.sort_by(f64::total_cmp);
        floor_ms.sort_by(f64::total_cmp);
        println!(
            "{{\"entities\": {entities}, \"batch\": {size}, \"iterations\": {iterations}, \"write_rows\": {}, \"write_s\": {write_s:.2}, \"write_rows_per_s\": {:.0}, \"bytes_per_entity_view\": {:.0}, \"read_p50_ms\": {:.3}, \"read_p99_ms\": {:.3}, \"raw_get_p50_ms\": {:.3}, \"raw_get_p99_ms\": {:.3}}}",
            rows.len(),
            rows.len() as f64 / write_s,
            (memory_after.saturating_sub(memory_before)) as f64 / rows.len() as f64,
            percentile(&quiver_ms, 0.5),
            percentile(&quiver_ms, 0.99),
            percentile(&floor_ms, 0.5),
            percentile(&floor_ms, 0.99),
        );
    }
    for v in ["driver_stats", "customer_profile"] {
        store.delete_view(v).await.expect("clean");
    }
}
