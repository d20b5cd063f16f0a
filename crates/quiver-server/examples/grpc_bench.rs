//! Online serving through gRPC on loopback (see BENCHMARKS.md).
//!
//! `grpc_bench REDIS_URL [ENTITIES] [CALLS] [SECONDS]` — server and client in one process;
//! `grpc_bench serve REDIS_URL [ENTITIES]` and `grpc_bench client ADDR [ENTITIES] [CALLS] [SECONDS]`
//! — the same in two processes (the server prints its address and stops when its standard
//! input closes).
//!
//! Sets up a project whose registry holds two views of 3 features each, writes ENTITIES
//! entities per view into Redis, and serves it with `quiver_server::serve` on a free
//! loopback port, on a runtime of its own (`QUIVER_BENCH_SERVER_THREADS` worker threads,
//! default 2). The client runs on another runtime (`QUIVER_BENCH_CLIENT_THREADS`, default 2)
//! and talks to it over TCP with the generated tonic client:
//!
//! - latency of CALLS sequential calls of batch 1 and of batch 100 (6 features each),
//!   percentiles; `QUIVER_BENCH_BATCHES` (a comma-separated list, e.g. `1,10,100,1000`)
//!   sets other batch sizes;
//! - throughput in entity rows per second at concurrency 1, 8 and 64, for SECONDS each, with
//!   batch 1 and batch 100 (SECONDS 0 leaves it out).
//!
//! With `QUIVER_BENCH_JSON=1` every figure is printed as one JSON line instead of text:
//! `{"kind": "latency", "batch", "calls", "p50_ms", …}` and
//! `{"kind": "throughput", "batch", "concurrency", "connections", "rows_per_s"}`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark program: it stops loudly on any failure

use std::collections::HashMap;
use std::time::{Duration, Instant};

use quiver_core::config::Config;
use quiver_core::registry::Registry;
use quiver_core::repo::parse_documents;
use quiver_online::keys::entity_key;
use quiver_online::store::RowWrite;
use quiver_online::value::{StoredRow, Value, encode};
use quiver_server::pb;
use quiver_server::pb::online_service_client::OnlineServiceClient;
use tonic::transport::Channel;

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

const REFS: [&str; 2] = ["driver_stats", "customer_profile"];

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// A deterministic stream of entity ids in 1..=entities.
struct Ids(u64, i64);

impl Ids {
    fn next(&mut self) -> i64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 33) as i64 % self.1) + 1
    }
}

fn request(ids: &mut Ids, batch: usize) -> pb::GetOnlineFeaturesRequest {
    let column = |ids: &mut Ids| pb::RepeatedValue {
        values: (0..batch)
            .map(|_| pb::Value { kind: Some(pb::value::Kind::Int64Value(ids.next())) })
            .collect(),
    };
    let mut entities = HashMap::new();
    entities.insert("driver_id".to_string(), column(ids));
    entities.insert("customer_id".to_string(), column(ids));
    pb::GetOnlineFeaturesRequest {
        kind: Some(pb::get_online_features_request::Kind::Features(pb::FeatureList {
            refs: REFS.iter().map(|s| s.to_string()).collect(),
        })),
        entities,
        at_ns: 0,
        arrow: false,
    }
}

/// Latencies of `calls` sequential calls, in milliseconds, sorted.
async fn latency(channel: Channel, entities: i64, batch: usize, calls: usize) -> Vec<f64> {
    let mut client = OnlineServiceClient::new(channel);
    let mut ids = Ids(batch as u64, entities);
    for _ in 0..200 {
        client.get_online_features(request(&mut ids, batch)).await.unwrap();
    }
    let mut times = Vec::with_capacity(calls);
    for _ in 0..calls {
        let r = request(&mut ids, batch);
        let t = Instant::now();
        let answer = client.get_online_features(r).await.unwrap().into_inner();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(answer.results.len(), 6);
        assert_eq!(answer.results[0].statuses[0], pb::FeatureStatus::Present as i32);
    }
    times.sort_by(f64::total_cmp);
    times
}

async fn throughput(channel: Channel, entities: i64, batch: usize, concurrency: usize, seconds: f64) -> f64 {
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..concurrency {
        let channel = channel.clone();
        tasks.push(tokio::spawn(async move {
            let mut client = OnlineServiceClient::new(channel);
            let mut ids = Ids(c as u64 + 7, entities);
            let mut rows = 0u64;
            while Instant::now() < end {
                client.get_online_features(request(&mut ids, batch)).await.unwrap();
                rows += batch as u64;
            }
            rows
        }));
    }
    let mut rows = 0;
    for t in tasks {
        rows += t.await.unwrap();
    }
    rows as f64 / started.elapsed().as_secs_f64()
}

/// The latency batch sizes: `QUIVER_BENCH_BATCHES`, else 1 and 100.
fn latency_batches() -> Vec<usize> {
    match std::env::var("QUIVER_BENCH_BATCHES") {
        Ok(list) if !list.trim().is_empty() => list
            .split(',')
            .map(|b| {
                let b: usize =
                    b.trim().parse().expect("QUIVER_BENCH_BATCHES: a comma-separated list of sizes");
                assert!(b > 0, "batch sizes must be positive");
                b
            })
            .collect(),
        _ => vec![1, 100],
    }
}

fn json_output() -> bool {
    std::env::var("QUIVER_BENCH_JSON").is_ok_and(|v| v == "1")
}

fn threads(var: &str) -> usize {
    std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(2)
}

fn runtime(var: &str) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(threads(var)).enable_all().build().unwrap()
}

/// Writes the entities into Redis and starts the server; returns its address.
async fn start_server(url: &str, entities: i64, dir: &std::path::Path) -> std::net::SocketAddr {
    let config_path = dir.join("quiver.yaml");
    std::fs::write(&config_path, format!("project: bench\nonline_store:\n  type: redis\n  url: {url}\n"))
        .unwrap();
    let config = Config::load(&config_path).unwrap();
    let defs = parse_documents(&[("bench.yaml".into(), DEFS.into())]).definitions;
    Registry::open(&config.registry, &config.project).unwrap().apply(&defs, 0, "bench").await.unwrap();
    let store = quiver_online::open(&config.online_store, &config.project).await.unwrap();
    for view in REFS {
        store.delete_view(view).await.unwrap();
        let v = defs.feature_view(view).unwrap();
        let fingerprint = quiver_online::rows::view_fingerprint(v);
        let sortable = quiver_online::rows::sortable_features(v);
        let key = defs.join_keys(v)[0].name.clone();
        let rows: Vec<RowWrite> = (1..=entities)
            .map(|i| {
                let stored = StoredRow {
                    event_ns: 1_767_225_600_000_000_000 + i,
                    created_ns: None,
                    values: vec![Value::Float32(0.5), Value::Float32(0.25), Value::Int64(i)],
                };
                RowWrite {
                    view: view.to_string(),
                    entity: entity_key(&[(key.as_str(), &Value::Int64(i))]).unwrap(),
                    bytes: encode(&stored, fingerprint, &sortable),
                    expire_at_ms: None,
                }
            })
            .collect();
        for chunk in rows.chunks(10_000) {
            store.write(chunk).await.unwrap();
        }
    }
    let app = quiver_server::App::open(config.clone(), 1 << 30, None, dir.join("work")).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(quiver_server::serve(
        app,
        listener,
        quiver_server::Limits::default(),
        std::future::pending(),
    ));
    addr
}

async fn run_client(addr: std::net::SocketAddr, entities: i64, calls: usize, seconds: f64) {
    let json = json_output();
    let channel = Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
    if !json {
        println!("gRPC GetOnlineFeatures on loopback, 2 views x 3 features, {entities} entities per view");
    }
    for batch in latency_batches() {
        let times = latency(channel.clone(), entities, batch, calls).await;
        let (p50, p90, p99, p999, max) = (
            percentile(&times, 0.5),
            percentile(&times, 0.9),
            percentile(&times, 0.99),
            percentile(&times, 0.999),
            times[times.len() - 1],
        );
        if json {
            println!(
                "{{\"kind\": \"latency\", \"entities\": {entities}, \"batch\": {batch}, \"calls\": {calls}, \"p50_ms\": {p50:.3}, \"p90_ms\": {p90:.3}, \"p99_ms\": {p99:.3}, \"p999_ms\": {p999:.3}, \"max_ms\": {max:.3}}}"
            );
        } else {
            println!(
                "  batch {batch:>3}: p50 {p50:.3} ms  p90 {p90:.3} ms  p99 {p99:.3} ms  p99.9 {p999:.3} ms  max {max:.3} ms  ({calls} sequential calls)"
            );
        }
    }
    if seconds <= 0.0 {
        return;
    }
    for batch in [1usize, 100] {
        for concurrency in [1usize, 8, 64] {
            // One HTTP/2 connection per 8 callers, as a pool of clients would have.
            let connections = concurrency.div_ceil(8);
            let mut channels = Vec::new();
            for _ in 0..connections {
                channels
                    .push(Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap());
            }
            let per = concurrency / connections;
            let mut total = 0.0;
            let mut handles = Vec::new();
            for ch in channels {
                handles.push(tokio::spawn(throughput(ch, entities, batch, per, seconds)));
            }
            for h in handles {
                total += h.await.unwrap();
            }
            if json {
                println!(
                    "{{\"kind\": \"throughput\", \"entities\": {entities}, \"batch\": {batch}, \"concurrency\": {concurrency}, \"connections\": {connections}, \"seconds\": {seconds}, \"rows_per_s\": {total:.0}}}"
                );
            } else {
                println!(
                    "  batch {batch:>3}, concurrency {concurrency:>2} ({connections} connection(s)): {total:>10.0} entity rows/s"
                );
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| args.get(i).cloned();
    match args.get(1).map(String::as_str) {
        // Server and client in two processes: `serve REDIS_URL ENTITIES` prints the address
        // and serves until its standard input closes; `client ADDR ENTITIES CALLS SECONDS`.
        Some("serve") => {
            let url = arg(2).expect("serve REDIS_URL ENTITIES");
            let entities: i64 = arg(3).and_then(|s| s.parse().ok()).unwrap_or(100_000);
            let dir = tempfile::tempdir().unwrap();
            let rt = runtime("QUIVER_BENCH_SERVER_THREADS");
            let addr = rt.block_on(start_server(&url, entities, dir.path()));
            println!("{addr}");
            let mut sink = String::new();
            while std::io::stdin().read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {}
            drop(rt);
        }
        Some("client") => {
            let addr: std::net::SocketAddr =
                arg(2).expect("client ADDR ENTITIES CALLS SECONDS").parse().unwrap();
            let entities: i64 = arg(3).and_then(|s| s.parse().ok()).unwrap_or(100_000);
            let calls: usize = arg(4).and_then(|s| s.parse().ok()).unwrap_or(5_000);
            let seconds: f64 = arg(5).and_then(|s| s.parse().ok()).unwrap_or(5.0);
            runtime("QUIVER_BENCH_CLIENT_THREADS").block_on(run_client(addr, entities, calls, seconds));
        }
        // Both in this process, on two runtimes.
        _ => {
            let url = arg(1).unwrap_or_else(|| "redis://127.0.0.1:6379/0".into());
            let entities: i64 = arg(2).and_then(|s| s.parse().ok()).unwrap_or(100_000);
            let calls: usize = arg(3).and_then(|s| s.parse().ok()).unwrap_or(5_000);
            let seconds: f64 = arg(4).and_then(|s| s.parse().ok()).unwrap_or(5.0);
            let dir = tempfile::tempdir().unwrap();
            let server_rt = runtime("QUIVER_BENCH_SERVER_THREADS");
            let client_rt = runtime("QUIVER_BENCH_CLIENT_THREADS");
            let addr = server_rt.block_on(start_server(&url, entities, dir.path()));
            client_rt.block_on(run_client(addr, entities, calls, seconds));
            drop(server_rt);
        }
    }
}
