//! The soak driver behind `bench/soak.sh` (see RELIABILITY.md).
//!
//! `soak lake DIR` writes the starting lake file of the soak project into DIR/soak/ (every
//! entity once, `seq` 0, an hour old). `soak run ADDR SECONDS SERVER_PID LAKE_DIR` then drives
//! a running `quiver serve` for SECONDS:
//!
//! - online reads at a fixed rate (`SOAK_READS_PER_S`, default 500), one entity each, half
//!   of them lake entities and half pushed ones, each with a 1 s deadline. Every answer is
//!   checked: the entity must be PRESENT, its `seq` no older than what was acknowledged when
//!   the read was sent (a pushed row, or the last finished materialization), and its `score`
//!   must be `seq / 2` (one row, not parts of two);
//! - pushes (`SOAK_PUSH_ROWS_PER_S`, default 200 rows) in batches every 50 ms, round-robin
//!   over the pushed entities, each row a new `seq` with event time now; every 100th batch
//!   goes online and offline, the others online only;
//! - once a minute a new lake file (every lake entity, `seq` = the minute) and an
//!   incremental materialization up to now through `MaterializeService`;
//! - halfway, a Redis restart: `SOAK_REDIS_STOP` then, 5 s later, `SOAK_REDIS_START` (shell
//!   commands; no restart when unset).
//!
//! Each minute it prints one JSON line: reads, p50/p99/p99.9 latency, pushes, the
//! materialization, errors by kind, the server's RSS (from /proc/SERVER_PID/status) and, when
//! `SOAK_METRICS` names the server's metrics address, what its offline file caches hold (the
//! `quiver_offline_cache_bytes` gauges: bounded caches that grow as new files are read). An
//! error is *explained* when it is UNAVAILABLE, RESOURCE_EXHAUSTED (load shed) or a deadline
//! (DEADLINE_EXCEEDED, or the tonic client's own CANCELLED "Timeout expired") and the call
//! overlapped the Redis restart (from the stop until 10 s after the start); every other error, and every
//! wrong answer, is *unexplained*. At the end it reads every pushed and every lake entity
//! back online and builds a training set of all of them as of now: each must hold a `seq`
//! from the newest acknowledged write (push, offline push, or finished materialization) to
//! the newest attempted one (a failed call may have written some of its rows); and every row
//! of an acknowledged offline push must come back exactly in a training set at its own event
//! time. It prints a
//! summary line and exits 1 when anything is unexplained or wrong.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark program: it stops loudly on any failure

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use datafusion::arrow::array::{
    Array, ArrayRef, Float64Array, Int64Array, RecordBatch, TimestampMicrosecondArray,
    TimestampNanosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use parquet::arrow::ArrowWriter;
use quiver_server::pb;
use quiver_server::pb::materialize_service_client::MaterializeServiceClient;
use quiver_server::pb::offline_service_client::OfflineServiceClient;
use quiver_server::pb::online_service_client::OnlineServiceClient;
use quiver_server::pb::push_service_client::PushServiceClient;
use tonic::transport::Channel;

/// Lake entities are 1..=LAKE; pushed entities PUSHED_BASE+1..=PUSHED_BASE+PUSHED.
const LAKE: i64 = 10_000;
const PUSHED_BASE: i64 = 1_000_000;
const PUSHED: usize = 2_000;
const REFS: [&str; 2] = ["soak:seq", "soak:score"];
const RESTART_GRACE: Duration = Duration::from_secs(10);
const READ_DEADLINE: Duration = Duration::from_secs(1);
/// Reads in flight at most; a tick finding this many is counted as skipped.
const MAX_IN_FLIGHT: usize = 512;

fn now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as i64
}

fn env_rate(name: &str, default: u64) -> u64 {
    let rate =
        std::env::var(name).ok().map(|v| v.parse::<u64>().unwrap_or_else(|_| panic!("{name}: a count")));
    let rate = rate.unwrap_or(default);
    assert!((1..=100_000).contains(&rate), "{name} must be in 1..=100000");
    rate
}

/// A small deterministic generator (no dependency for a benchmark's dice).
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn lake_schema() -> Arc<Schema> {
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("driver_id", DataType::Int64, false),
        Field::new("event_timestamp", ts.clone(), false),
        Field::new("created", ts, false),
        Field::new("seq", DataType::Int64, false),
        Field::new("score", DataType::Float64, false),
    ]))
}

/// Writes `ids` with `seq`, event times spread over [from_ns, to_ns), as a Parquet file
/// written aside and renamed into place, as a lake writer would.
fn write_lake_file(path: &Path, ids: &[i64], seq: i64, from_ns: i64, to_ns: i64) {
    let span = (to_ns - from_ns).max(1) / 1000;
    let n = ids.len() as i64;
    // Microseconds from the first one at or after `from_ns` (a run's window starts there).
    let from_us = (from_ns + 999) / 1000;
    let event: Vec<i64> = (0..n).map(|i| from_us + span * i / n).collect();
    let created = vec![now_ns() / 1000; ids.len()];
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(ids.to_vec())),
        Arc::new(TimestampMicrosecondArray::from(event).with_timezone("UTC")),
        Arc::new(TimestampMicrosecondArray::from(created).with_timezone("UTC")),
        Arc::new(Int64Array::from(vec![seq; ids.len()])),
        Arc::new(Float64Array::from(vec![seq as f64 / 2.0; ids.len()])),
    ];
    let batch = RecordBatch::try_new(lake_schema(), columns).unwrap();
    let aside = path.with_extension("writing");
    let mut writer =
        ArrowWriter::try_new(std::fs::File::create(&aside).unwrap(), batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    std::fs::rename(&aside, path).unwrap();
}

fn pushed_id(i: usize) -> i64 {
    PUSHED_BASE + 1 + i as i64
}

/// What one minute saw.
#[derive(Default)]
struct Minute {
    reads: u64,
    latencies_us: Vec<u32>,
    skipped_ticks: u64,
    pushed_rows: u64,
    materialization: Option<String>,
    explained: BTreeMap<String, u64>,
    unexplained: BTreeMap<String, u64>,
}

#[derive(Default)]
struct Totals {
    reads: u64,
    pushed_rows: u64,
    explained: BTreeMap<String, u64>,
    unexplained: BTreeMap<String, u64>,
    rss_mib: Vec<f64>,
    cache_mib: Vec<f64>,
    materializations_ok: u64,
    materializations_failed: u64,
}

struct Shared {
    start: Instant,
    /// Per pushed entity: the newest `seq` acknowledged online, and the newest attempted.
    acked: Vec<AtomicI64>,
    attempted: Vec<AtomicI64>,
    /// The same for pushes that also went offline.
    acked_offline: Vec<AtomicI64>,
    attempted_offline: Vec<AtomicI64>,
    /// Every row of an acknowledged offline push: (entity, seq, event time ns). Each is read
    /// back at its own event time in a training set at the end.
    offline_rows: Mutex<Vec<(i64, i64, i64)>>,
    /// The `seq` of the lake as of the last materialization that succeeded, and of the
    /// newest lake file (a failed run may have committed it offline, or written some of it
    /// online).
    lake_seq: AtomicI64,
    lake_attempted: AtomicI64,
    /// The Redis restart: (stopped, started), as milliseconds since `start` (-1: not yet).
    redis_down_ms: AtomicI64,
    redis_up_ms: AtomicI64,
    minute: Mutex<Minute>,
    in_flight: AtomicUsize,
    wrong_answers: AtomicU64,
}

impl Shared {
    fn ms(&self, t: Instant) -> i64 {
        t.duration_since(self.start).as_millis() as i64
    }

    /// Whether a call from `sent` to `done` overlapped the Redis restart (plus the grace).
    fn during_restart(&self, sent: Instant, done: Instant) -> bool {
        let down = self.redis_down_ms.load(Ordering::SeqCst);
        if down < 0 {
            return false;
        }
        let up = self.redis_up_ms.load(Ordering::SeqCst);
        let end = if up < 0 { i64::MAX } else { up + RESTART_GRACE.as_millis() as i64 };
        self.ms(sent) <= end && self.ms(done) >= down
    }

    fn error(&self, kind: String, code: Option<tonic::Code>, sent: Instant, done: Instant) {
        // While Redis is away reads wait for it and pile up, so the server sheds some
        // (RESOURCE_EXHAUSTED) and some pass their deadline.
        let transient = matches!(
            code,
            Some(tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::ResourceExhausted)
        );
        let mut m = self.minute.lock().unwrap();
        let map =
            if transient && self.during_restart(sent, done) { &mut m.explained } else { &mut m.unexplained };
        *map.entry(kind).or_default() += 1;
    }

    fn wrong(&self, kind: &str) {
        self.wrong_answers.fetch_add(1, Ordering::Relaxed);
        *self.minute.lock().unwrap().unexplained.entry(kind.to_string()).or_default() += 1;
    }
}

fn status_kind(what: &str, s: &tonic::Status) -> String {
    format!("{what}: {:?}", code(s))
}

/// A status's code, with the tonic client's own deadline (CANCELLED, "Timeout expired")
/// counted as the deadline it is.
fn code(s: &tonic::Status) -> tonic::Code {
    if s.code() == tonic::Code::Cancelled && s.message() == "Timeout expired" {
        tonic::Code::DeadlineExceeded
    } else {
        s.code()
    }
}

fn online_request(ids: &[i64]) -> pb::GetOnlineFeaturesRequest {
    let values = ids.iter().map(|&i| pb::Value { kind: Some(pb::value::Kind::Int64Value(i)) }).collect();
    pb::GetOnlineFeaturesRequest {
        kind: Some(pb::get_online_features_request::Kind::Features(pb::FeatureList {
            refs: REFS.iter().map(|s| s.to_string()).collect(),
        })),
        entities: [("driver_id".to_string(), pb::RepeatedValue { values })].into(),
        at_ns: 0,
        arrow: false,
    }
}

/// The (seq, score) of each entity row of an answer, or what is wrong with it.
fn answer_rows(answer: &pb::GetOnlineFeaturesResponse, n: usize) -> Result<Vec<(i64, f64)>, &'static str> {
    if answer.results.len() != 2
        || answer.results.iter().any(|c| c.values.len() != n || c.statuses.len() != n)
    {
        return Err("malformed answer");
    }
    let mut rows = Vec::with_capacity(n);
    for i in 0..n {
        for c in &answer.results {
            match pb::FeatureStatus::try_from(c.statuses[i]) {
                Ok(pb::FeatureStatus::Present) => {}
                Ok(pb::FeatureStatus::NotFound) => return Err("wrong NOT_FOUND"),
                _ => return Err("wrong status"),
            }
        }
        let seq = match answer.results[0].values[i].kind {
            Some(pb::value::Kind::Int64Value(v)) => v,
            _ => return Err("seq not an int64"),
        };
        let score = match answer.results[1].values[i].kind {
            Some(pb::value::Kind::DoubleValue(v)) => v,
            _ => return Err("score not a double"),
        };
        rows.push((seq, score));
    }
    Ok(rows)
}

async fn one_read(shared: Arc<Shared>, mut client: OnlineServiceClient<Channel>, id: i64) {
    let floor = if id > PUSHED_BASE {
        shared.acked[(id - PUSHED_BASE - 1) as usize].load(Ordering::SeqCst)
    } else {
        shared.lake_seq.load(Ordering::SeqCst)
    };
    let mut request = tonic::Request::new(online_request(&[id]));
    request.set_timeout(READ_DEADLINE);
    let sent = Instant::now();
    let result =
        tokio::time::timeout(READ_DEADLINE + Duration::from_millis(200), client.get_online_features(request))
            .await;
    let done = Instant::now();
    shared.in_flight.fetch_sub(1, Ordering::SeqCst);
    let answer = match result {
        Err(_) => {
            return shared.error(
                "read: client timeout".into(),
                Some(tonic::Code::DeadlineExceeded),
                sent,
                done,
            );
        }
        Ok(Err(s)) => return shared.error(status_kind("read", &s), Some(code(&s)), sent, done),
        Ok(Ok(a)) => a.into_inner(),
    };
    {
        let mut m = shared.minute.lock().unwrap();
        m.reads += 1;
        m.latencies_us.push(done.duration_since(sent).as_micros().min(u32::MAX as u128) as u32);
    }
    match answer_rows(&answer, 1) {
        Err(what) => shared.wrong(what),
        Ok(rows) => {
            let (seq, score) = rows[0];
            if seq < floor {
                shared.wrong("stale read (older than acknowledged)");
            } else if score != seq as f64 / 2.0 {
                shared.wrong("torn row (score is not seq / 2)");
            }
        }
    }
}

async fn readers(shared: Arc<Shared>, channel: Channel, rate: u64, until: Instant) {
    let client = OnlineServiceClient::new(channel);
    let mut tick = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut dice = Dice(17);
    let mut n = 0u64;
    while Instant::now() < until {
        tick.tick().await;
        n += 1;
        let id = if n.is_multiple_of(2) {
            1 + dice.below(LAKE as u64) as i64
        } else {
            pushed_id(dice.below(PUSHED as u64) as usize)
        };
        if shared.in_flight.load(Ordering::SeqCst) >= MAX_IN_FLIGHT {
            shared.minute.lock().unwrap().skipped_ticks += 1;
            continue;
        }
        shared.in_flight.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(one_read(shared.clone(), client.clone(), id));
    }
}

fn push_ipc(ids: &[i64], seqs: &[i64], event_ns: i64) -> Vec<u8> {
    let ts = DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()));
    let schema = Arc::new(Schema::new(vec![
        Field::new("driver_id", DataType::Int64, false),
        Field::new("event_timestamp", ts, false),
        Field::new("seq", DataType::Int64, false),
        Field::new("score", DataType::Float64, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(ids.to_vec())),
        Arc::new(TimestampNanosecondArray::from(vec![event_ns; ids.len()]).with_timezone("UTC")),
        Arc::new(Int64Array::from(seqs.to_vec())),
        Arc::new(Float64Array::from(seqs.iter().map(|&s| s as f64 / 2.0).collect::<Vec<_>>())),
    ];
    ipc(&RecordBatch::try_new(schema, columns).unwrap())
}

/// One batch as an Arrow IPC stream (a push body, a spine).
fn ipc(batch: &RecordBatch) -> Vec<u8> {
    let mut out = Vec::new();
    let mut writer = StreamWriter::try_new(&mut out, &batch.schema()).unwrap();
    writer.write(batch).unwrap();
    writer.finish().unwrap();
    drop(writer);
    out
}

async fn pusher(shared: Arc<Shared>, channel: Channel, rows_per_s: u64, until: Instant) {
    let mut client = PushServiceClient::new(channel);
    let per_batch = (rows_per_s / 20).max(1) as usize;
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut next, mut seq, mut batches) = (0usize, 0i64, 0u64);
    while Instant::now() < until {
        tick.tick().await;
        batches += 1;
        let offline = batches.is_multiple_of(100);
        let idx: Vec<usize> = (0..per_batch).map(|k| (next + k) % PUSHED).collect();
        next = (next + per_batch) % PUSHED;
        let seqs: Vec<i64> = idx
            .iter()
            .map(|_| {
                seq += 1;
                seq
            })
            .collect();
        let ids: Vec<i64> = idx.iter().map(|&i| pushed_id(i)).collect();
        for (&i, &s) in idx.iter().zip(&seqs) {
            shared.attempted[i].fetch_max(s, Ordering::SeqCst);
            if offline {
                shared.attempted_offline[i].fetch_max(s, Ordering::SeqCst);
            }
        }
        let to = if offline { pb::PushTarget::OnlineAndOffline } else { pb::PushTarget::Online };
        let event_ns = now_ns();
        let mut request = tonic::Request::new(pb::PushRequest {
            feature_view: "soak".into(),
            arrow_ipc: push_ipc(&ids, &seqs, event_ns),
            to: to as i32,
        });
        request.set_timeout(Duration::from_secs(10));
        let sent = Instant::now();
        match client.push(request).await {
            Ok(r) if r.get_ref().rows == ids.len() as u64 => {
                for (&i, &s) in idx.iter().zip(&seqs) {
                    shared.acked[i].fetch_max(s, Ordering::SeqCst);
                    if offline {
                        shared.acked_offline[i].fetch_max(s, Ordering::SeqCst);
                    }
                }
                if offline {
                    let mut rows = shared.offline_rows.lock().unwrap();
                    rows.extend(ids.iter().zip(&seqs).map(|(&id, &s)| (id, s, event_ns)));
                }
                shared.minute.lock().unwrap().pushed_rows += ids.len() as u64;
            }
            Ok(_) => shared.wrong("push: row count in the answer differs"),
            Err(s) => {
                let what = if offline { "push online+offline" } else { "push online" };
                shared.error(status_kind(what, &s), Some(code(&s)), sent, Instant::now());
            }
        }
    }
}

/// Runs an incremental materialization up to `end_ns`; the rows it read and its window
/// (seconds before `end_ns` it started at), or why it failed.
async fn materialize(client: &mut MaterializeServiceClient<Channel>, end_ns: i64) -> Result<String, String> {
    let span = pb::start_materialization_request::Span::Incremental(pb::Incremental { end_ns });
    let job = client
        .start(pb::StartMaterializationRequest { span: Some(span), views: vec!["soak".into()] })
        .await
        .map_err(|s| status_kind("materialize start", &s))?
        .into_inner();
    let until = Instant::now() + Duration::from_secs(50);
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let j = client
            .get(pb::GetMaterializationRequest { id: job.id.clone() })
            .await
            .map_err(|s| status_kind("materialize get", &s))?
            .into_inner();
        match j.state() {
            pb::JobState::Succeeded => {
                return Ok(j
                    .views
                    .iter()
                    .map(|v| {
                        let span = (end_ns - v.window_start_ns) as f64 / 1e9;
                        format!("{} rows of the last {span:.1} s ({:?})", v.rows_done, v.state())
                    })
                    .collect::<Vec<_>>()
                    .join(", "));
            }
            pb::JobState::Failed => {
                let message =
                    j.views.iter().map(|v| v.message.as_str()).find(|m| !m.is_empty()).unwrap_or(&j.error);
                // The kind of failure, not its whole text (it names files and times).
                let short: String = message.chars().take(80).collect();
                return Err(format!("materialization failed: {short}"));
            }
            _ if Instant::now() > until => return Err("materialization still running after 50 s".into()),
            _ => {}
        }
    }
}

async fn materializer(
    shared: Arc<Shared>,
    channel: Channel,
    lake: PathBuf,
    until: Instant,
    totals: Arc<Mutex<Totals>>,
) {
    let mut client = MaterializeServiceClient::new(channel);
    let ids: Vec<i64> = (1..=LAKE).collect();
    let mut minute = 0i64;
    // Each minute's rows fall after the previous run's end: rows older than a run's end are
    // late data, which an incremental run does not go back for.
    let mut previous_end = now_ns();
    loop {
        let next = shared.start + Duration::from_secs(60 * (minute as u64 + 1));
        if next >= until {
            return;
        }
        tokio::time::sleep_until(next.into()).await;
        minute += 1;
        let now = now_ns();
        write_lake_file(
            &lake.join(format!("soak/minute-{minute:05}.parquet")),
            &ids,
            minute,
            previous_end,
            now,
        );
        shared.lake_attempted.store(minute, Ordering::SeqCst);
        let end = now_ns();
        previous_end = end;
        let sent = Instant::now();
        let outcome = materialize(&mut client, end).await;
        let seconds = sent.elapsed().as_secs_f64();
        let line = match &outcome {
            Ok(what) => {
                shared.lake_seq.store(minute, Ordering::SeqCst);
                totals.lock().unwrap().materializations_ok += 1;
                format!("succeeded in {seconds:.2} s: {what}")
            }
            Err(e) => {
                totals.lock().unwrap().materializations_failed += 1;
                let code = if shared.during_restart(sent, Instant::now()) {
                    Some(tonic::Code::Unavailable)
                } else {
                    None
                };
                shared.error(e.clone(), code, sent, Instant::now());
                format!("failed after {seconds:.2} s")
            }
        };
        shared.minute.lock().unwrap().materialization = Some(line);
    }
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// What the server's offline file caches hold, in MiB, from its `/metrics` at `SOAK_METRICS`
/// (NaN without it or when the scrape fails).
fn cache_mib() -> f64 {
    use std::io::{Read, Write};
    let Ok(addr) = std::env::var("SOAK_METRICS") else { return f64::NAN };
    let scrape = || -> std::io::Result<String> {
        let addr: std::net::SocketAddr =
            addr.parse().map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        write!(stream, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
        let mut body = String::new();
        stream.take(4 << 20).read_to_string(&mut body)?;
        Ok(body)
    };
    let Ok(body) = scrape() else { return f64::NAN };
    let bytes: Vec<f64> = body
        .lines()
        .filter(|l| l.starts_with("quiver_offline_cache_bytes{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    if bytes.is_empty() { f64::NAN } else { bytes.iter().sum::<f64>() / (1 << 20) as f64 }
}

fn percentile_ms(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize] as f64 / 1000.0
}

fn json_map(m: &BTreeMap<String, u64>) -> serde_json::Value {
    m.iter().map(|(k, v)| (k.clone(), serde_json::json!(v))).collect::<serde_json::Map<_, _>>().into()
}

/// Prints the minute's line and folds it into the totals.
fn report_minute(shared: &Shared, totals: &Mutex<Totals>, index: u64, pid: u32) {
    let mut m = std::mem::take(&mut *shared.minute.lock().unwrap());
    m.latencies_us.sort_unstable();
    let rss = rss_mib(pid);
    let caches = cache_mib();
    println!(
        "{}",
        serde_json::json!({
            "kind": "minute", "minute": index, "reads": m.reads,
            "p50_ms": percentile_ms(&m.latencies_us, 0.5), "p99_ms": percentile_ms(&m.latencies_us, 0.99),
            "p999_ms": percentile_ms(&m.latencies_us, 0.999),
            "skipped_ticks": m.skipped_ticks, "pushed_rows": m.pushed_rows,
            "materialization": m.materialization, "explained_errors": json_map(&m.explained),
            "unexplained_errors": json_map(&m.unexplained), "server_rss_mib": (rss * 10.0).round() / 10.0,
            "server_cache_mib": (caches * 10.0).round() / 10.0,
        })
    );
    let mut t = totals.lock().unwrap();
    t.reads += m.reads;
    t.pushed_rows += m.pushed_rows;
    t.rss_mib.push(rss);
    t.cache_mib.push(caches);
    for (k, v) in m.explained {
        *t.explained.entry(k).or_default() += v;
    }
    for (k, v) in m.unexplained {
        *t.unexplained.entry(k).or_default() += v;
    }
}

async fn shell(command: String) -> std::process::ExitStatus {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new("sh").arg("-c").arg(command).status().unwrap()
    })
    .await
    .unwrap()
}

async fn restart_redis(shared: Arc<Shared>, at: Instant) {
    let (Ok(stop), Ok(start)) = (std::env::var("SOAK_REDIS_STOP"), std::env::var("SOAK_REDIS_START")) else {
        return;
    };
    tokio::time::sleep_until(at.into()).await;
    shared.redis_down_ms.store(shared.ms(Instant::now()), Ordering::SeqCst);
    let status = shell(stop).await;
    eprintln!("soak: Redis stopped ({status})");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let status = shell(start).await;
    shared.redis_up_ms.store(shared.ms(Instant::now()), Ordering::SeqCst);
    eprintln!("soak: Redis started again ({status})");
}

/// The `seq` an entity may have once everything stopped: from what was acknowledged to
/// what was attempted (a failed call may have written some or all of its rows).
fn expected(shared: &Shared, id: i64, offline: bool) -> (i64, i64) {
    if id > PUSHED_BASE {
        let i = (id - PUSHED_BASE - 1) as usize;
        let (acked, attempted) = if offline {
            (&shared.acked_offline[i], &shared.attempted_offline[i])
        } else {
            (&shared.acked[i], &shared.attempted[i])
        };
        (acked.load(Ordering::SeqCst), attempted.load(Ordering::SeqCst))
    } else {
        (shared.lake_seq.load(Ordering::SeqCst), shared.lake_attempted.load(Ordering::SeqCst))
    }
}

/// Entities whose read-back disagrees, by store and kind of entity; and how many offline
/// pushed rows were read back.
#[derive(Default)]
struct Disagreements(BTreeMap<&'static str, u64>, u64);

impl Disagreements {
    fn add(&mut self, what: &'static str, id: i64, seq: i64, (lo, hi): (i64, i64)) {
        let n = self.0.entry(what).or_default();
        if *n < 3 {
            eprintln!("soak: {what}: driver_id {id} has seq {seq}, expected {lo}..={hi}");
        }
        *n += 1;
    }

    fn total(&self) -> u64 {
        self.0.values().sum()
    }
}

/// The `(driver_id, seq)` of each row of a training set of `ids` at `times` (ns), in spine
/// order (`seq` -1 when null).
async fn training_seqs(channel: &Channel, ids: &[i64], times: &[i64]) -> Vec<(i64, i64)> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("driver_id", DataType::Int64, false),
        Field::new("event_timestamp", DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())), false),
    ]));
    let spine = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(ids.to_vec())),
            Arc::new(TimestampNanosecondArray::from(times.to_vec()).with_timezone("UTC")),
        ],
    )
    .unwrap();
    let mut offline = OfflineServiceClient::new(channel.clone()).max_decoding_message_size(64 << 20);
    let mut stream = offline
        .get_historical_features(pb::GetHistoricalFeaturesRequest {
            kind: Some(pb::get_historical_features_request::Kind::Features(pb::FeatureList {
                refs: REFS.iter().map(|s| s.to_string()).collect(),
            })),
            spine_arrow_ipc: ipc(&spine),
            full_feature_names: false,
            timestamp_column: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut bytes = Vec::new();
    while let Some(part) = stream.message().await.unwrap() {
        if let Some(pb::get_historical_features_response::Part::ArrowIpc(b)) = part.part {
            bytes.extend_from_slice(&b);
        }
    }
    let mut out = Vec::with_capacity(ids.len());
    for batch in StreamReader::try_new(std::io::Cursor::new(bytes), None).unwrap() {
        let batch = batch.unwrap();
        let id =
            batch.column_by_name("driver_id").unwrap().as_any().downcast_ref::<Int64Array>().unwrap().clone();
        let seq = batch.column_by_name("seq").unwrap().as_any().downcast_ref::<Int64Array>().unwrap().clone();
        out.extend(
            (0..batch.num_rows()).map(|r| (id.value(r), if seq.is_null(r) { -1 } else { seq.value(r) })),
        );
    }
    out
}

/// Reads every pushed and lake entity back online and in a training set as of now, and
/// every row pushed offline in a training set at its own event time, and compares each with
/// what was acknowledged.
async fn read_back(shared: &Shared, channel: Channel) -> Disagreements {
    let pushed: Vec<i64> = (0..PUSHED).map(pushed_id).collect();
    let lake: Vec<i64> = (1..=LAKE).collect();
    let mut wrong = Disagreements::default();
    let mut client = OnlineServiceClient::new(channel.clone());
    for chunk in pushed.chunks(500).chain(lake.chunks(500)) {
        let answer = client.get_online_features(online_request(chunk)).await.unwrap().into_inner();
        match answer_rows(&answer, chunk.len()) {
            Err(what) => {
                eprintln!("soak: online read-back: {what}");
                *wrong.0.entry("online answer malformed").or_default() += chunk.len() as u64;
            }
            Ok(rows) => {
                for (&id, &(seq, score)) in chunk.iter().zip(&rows) {
                    let range = expected(shared, id, false);
                    let what = if id > PUSHED_BASE { "online, pushed entity" } else { "online, lake entity" };
                    if seq < range.0 || seq > range.1 || score != seq as f64 / 2.0 {
                        wrong.add(what, id, seq, range);
                    }
                }
            }
        }
    }

    // Offline: as of now, a pushed entity has its newest offline push (or the lake's seq 0
    // when none went offline), a lake entity the last materialized minute.
    let ids: Vec<i64> = pushed.iter().chain(&lake).copied().collect();
    let at = now_ns();
    let seqs = training_seqs(&channel, &ids, &vec![at; ids.len()]).await;
    if seqs.len() != ids.len() {
        eprintln!("soak: the training set has {} rows for {} spine rows", seqs.len(), ids.len());
        *wrong.0.entry("training set rows missing or extra").or_default() +=
            ids.len().abs_diff(seqs.len()) as u64;
    }
    for (&(id, seq), &asked) in seqs.iter().zip(&ids) {
        let range = expected(shared, id, true);
        if id != asked || seq < range.0 || seq > range.1 {
            wrong.add(
                if id > PUSHED_BASE { "offline, pushed entity" } else { "offline, lake entity" },
                id,
                seq,
                range,
            );
        }
    }

    // Every acknowledged offline push, row by row: at its own event time a training set
    // must give exactly that row (no other offline row of the entity shares its time).
    let rows = shared.offline_rows.lock().unwrap().clone();
    let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let times: Vec<i64> = rows.iter().map(|r| r.2).collect();
    let seqs = training_seqs(&channel, &ids, &times).await;
    if seqs.len() != rows.len() {
        *wrong.0.entry("pushed offline rows: training set rows missing or extra").or_default() +=
            rows.len().abs_diff(seqs.len()) as u64;
    }
    for (&(id, seq), &(asked, pushed_seq, _)) in seqs.iter().zip(&rows) {
        if id != asked || seq != pushed_seq {
            wrong.add("offline, a pushed row at its time", id, seq, (pushed_seq, pushed_seq));
        }
    }
    eprintln!("soak: {} rows pushed offline read back at their event times", rows.len());
    wrong.1 = rows.len() as u64;
    wrong
}

async fn run(addr: String, seconds: u64, pid: u32, lake: PathBuf) -> bool {
    let reads_per_s = env_rate("SOAK_READS_PER_S", 500);
    let push_rows_per_s = env_rate("SOAK_PUSH_ROWS_PER_S", 200);
    let channel = Channel::from_shared(format!("http://{addr}")).unwrap();
    let channel = {
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            match channel.clone().connect().await {
                Ok(c) => break c,
                Err(_) if Instant::now() < until => tokio::time::sleep(Duration::from_millis(200)).await,
                Err(e) => panic!("no server at {addr}: {e}"),
            }
        }
    };
    let zeros = || (0..PUSHED).map(|_| AtomicI64::new(0)).collect::<Vec<_>>();
    let start = Instant::now();
    let shared = Arc::new(Shared {
        start,
        acked: zeros(),
        attempted: zeros(),
        acked_offline: zeros(),
        attempted_offline: zeros(),
        offline_rows: Mutex::new(Vec::new()),
        lake_seq: AtomicI64::new(0),
        lake_attempted: AtomicI64::new(0),
        redis_down_ms: AtomicI64::new(-1),
        redis_up_ms: AtomicI64::new(-1),
        minute: Mutex::new(Minute::default()),
        in_flight: AtomicUsize::new(0),
        wrong_answers: AtomicU64::new(0),
    });
    let totals = Arc::new(Mutex::new(Totals::default()));
    let until = start + Duration::from_secs(seconds);
    eprintln!(
        "soak: {seconds} s against {addr}: {reads_per_s} reads/s, {push_rows_per_s} pushed rows/s, a materialization a minute"
    );
    let tasks = vec![
        tokio::spawn(readers(shared.clone(), channel.clone(), reads_per_s, until)),
        tokio::spawn(pusher(shared.clone(), channel.clone(), push_rows_per_s, until)),
        tokio::spawn(materializer(shared.clone(), channel.clone(), lake, until, totals.clone())),
        tokio::spawn(restart_redis(shared.clone(), start + Duration::from_secs(seconds / 2))),
    ];
    let mut index = 0u64;
    loop {
        let next = start + Duration::from_secs(60 * (index + 1));
        let last = next >= until;
        tokio::time::sleep_until(if last { until } else { next }.into()).await;
        index += 1;
        if last {
            break;
        }
        report_minute(&shared, &totals, index, pid);
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Calls still in flight finish within their deadline.
    let drain = Instant::now() + READ_DEADLINE * 2;
    while shared.in_flight.load(Ordering::SeqCst) > 0 && Instant::now() < drain {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    report_minute(&shared, &totals, index, pid);

    let wrong = read_back(&shared, channel).await;
    let t = totals.lock().unwrap();
    let unexplained: u64 = t.unexplained.values().sum();
    let warm = t.rss_mib.get(1).copied().unwrap_or(f64::NAN);
    let last = t.rss_mib.last().copied().unwrap_or(f64::NAN);
    println!(
        "{}",
        serde_json::json!({
            "kind": "summary", "seconds": seconds, "reads": t.reads, "pushed_rows": t.pushed_rows,
            "materializations_succeeded": t.materializations_ok, "materializations_failed": t.materializations_failed,
            "explained_errors": json_map(&t.explained), "unexplained_errors": json_map(&t.unexplained),
            "wrong_answers": shared.wrong_answers.load(Ordering::Relaxed),
            "pushed_entities": PUSHED, "lake_entities": LAKE, "offline_pushed_rows_read_back": wrong.1,
            "read_back_wrong": json_map(&wrong.0.iter().map(|(k, v)| (k.to_string(), *v)).collect()),
            "server_rss_mib_after_first_minute": (warm * 10.0).round() / 10.0,
            "server_rss_mib_at_end": (last * 10.0).round() / 10.0,
            "server_cache_mib_after_first_minute": (t.cache_mib.get(1).copied().unwrap_or(f64::NAN) * 10.0).round() / 10.0,
            "server_cache_mib_at_end": (t.cache_mib.last().copied().unwrap_or(f64::NAN) * 10.0).round() / 10.0,
        })
    );
    unexplained == 0 && wrong.total() == 0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: soak lake DIR | soak run ADDR SECONDS SERVER_PID LAKE_DIR";
    match args.get(1).map(String::as_str) {
        Some("lake") => {
            let dir = PathBuf::from(args.get(2).expect(usage)).join("soak");
            std::fs::create_dir_all(&dir).unwrap();
            let ids: Vec<i64> = (1..=LAKE).chain((0..PUSHED).map(pushed_id)).collect();
            let now = now_ns();
            write_lake_file(
                &dir.join("start.parquet"),
                &ids,
                0,
                now - 3_600_000_000_000,
                now - 60_000_000_000,
            );
        }
        Some("run") => {
            let addr = args.get(2).expect(usage).clone();
            let seconds: u64 = args.get(3).and_then(|s| s.parse().ok()).expect(usage);
            assert!((60..=86_400).contains(&seconds), "SECONDS must be in 60..=86400");
            let pid: u32 = args.get(4).and_then(|s| s.parse().ok()).expect(usage);
            let lake = PathBuf::from(args.get(5).expect(usage));
            let rt =
                tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            if !rt.block_on(run(addr, seconds, pid, lake)) {
                std::process::exit(1);
            }
        }
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    }
}
