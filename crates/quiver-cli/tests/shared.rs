//! Quiver as a shared service, through the `quiver` binary, with the registry, the lake and
//! the offline store on a real S3-compatible server (the testkit's, started per test) and the
//! online store in Redis: the whole flow of commands; one process at a time per view, with a
//! clear refusal naming the holder; a SIGKILL-ed holder's lease taken over once it expired;
//! bad object store settings refused with a message naming the URL, nothing written; and the
//! registry and offline store on Azure Blob Storage (Azurite), through the same code path.
//!
//! Every command gets the server's `AWS_*` variables in its own environment (the test process
//! never sets its own).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use quiver_testkit::S3Server;
use quiver_testkit::redis::RedisServer;
use support::text;

const BUCKET: &str = "quiver";

/// A project whose stores all live in one bucket of `s3` (and Redis online), with the
/// example definitions and a sample lake of `rows` rows uploaded to `s3://quiver/lake`.
struct SharedProject {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    s3: S3Server,
    _redis: RedisServer,
    env: Vec<(String, String)>,
}

impl SharedProject {
    async fn new(rows: u64) -> SharedProject {
        Self::with_lake(&["--rows", &rows.to_string()]).await
    }

    /// A project whose sample lake is written with `lake_args` (`--rows`, `--seed`, ...).
    async fn with_lake(lake_args: &[&str]) -> SharedProject {
        let s3 = S3Server::start().unwrap();
        s3.create_bucket(BUCKET).unwrap();
        let redis = RedisServer::start();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("p");
        support::copy_example_definitions(&dir);
        std::fs::write(
            dir.join("quiver.yaml"),
            format!(
                "project: rides\ndefinitions: feature_defs/rides\nregistry: s3://{BUCKET}/registry\n\
                 lake: s3://{BUCKET}/lake\noffline_store: s3://{BUCKET}/offline\n\
                 online_store:\n  type: redis\n  url: {}\n",
                redis.url()
            ),
        )
        .unwrap();
        let project = SharedProject { env: s3.env(), _tmp: tmp, dir, s3, _redis: redis };
        project.ok(&[&["sample-lake", "--dir", "local-lake"], lake_args].concat());
        project.s3.upload_dir(BUCKET, "lake", &project.dir.join("local-lake")).await.unwrap();
        std::fs::remove_dir_all(project.dir.join("local-lake")).unwrap();
        project
    }

    /// Applies the definitions here and to a second project in `cluster.yaml`, with its own
    /// registry, offline store (`offline-cluster/`) and Redis database.
    fn apply_with_twin(&self) {
        let config = std::fs::read_to_string(self.dir.join("quiver.yaml")).unwrap();
        let other = config
            .replace("/registry\n", "/registry-cluster\n")
            .replace("/offline\n", "/offline-cluster\n")
            .replace("/0\n", "/1\n");
        assert_ne!(other, config);
        std::fs::write(self.dir.join("cluster.yaml"), other).unwrap();
        self.ok(&["apply"]);
        self.ok(&["--config", "cluster.yaml", "apply"]);
    }

    fn command(&self, args: &[&str], extra: &[(&str, &str)]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_quiver"));
        command
            .args(args)
            .current_dir(&self.dir)
            .env_remove("QUIVER_CONFIG")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(extra.iter().copied());
        command
    }

    fn run(&self, args: &[&str], extra: &[(&str, &str)]) -> Output {
        self.command(args, extra).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args, &[]);
        let (out, err) = text(&o);
        assert!(o.status.success(), "quiver {args:?} failed ({:?}):\n{out}\n{err}", o.status.code());
        out
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.push("--json");
        serde_json::from_str(&self.ok(&all)).unwrap()
    }

    fn store(&self) -> std::sync::Arc<dyn ObjectStore> {
        self.s3.store(BUCKET).unwrap()
    }

    /// Keys below `prefix` in the bucket.
    async fn keys(&self, prefix: &str) -> Vec<String> {
        let listed: Vec<_> = self.store().list(Some(&ObjectPath::from(prefix))).try_collect().await.unwrap();
        listed.into_iter().map(|m| m.location.to_string()).collect()
    }
}

/// Materializing driver_stats for the sample's whole week.
const WEEK: &[&str] =
    &["materialize", "--start", "2026-01-01", "--end", "2026-01-08", "--views", "driver_stats"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_runs_with_registry_lake_and_offline_store_on_s3() {
    let p = SharedProject::new(5_000).await;
    assert!(p.ok(&["plan"]).contains("driver_stats"));
    p.ok(&["apply"]);

    // A window, then incremental runs from the watermark.
    let first = p.json(&["materialize", "--start", "2026-01-01", "--end", "2026-01-04"]);
    let views = first["views"].as_array().unwrap();
    assert!(views.iter().all(|v| v["error"].is_null()), "{first}");
    let stats = views.iter().find(|v| v["view"] == "driver_stats").unwrap();
    let window_rows = stats["rows"].as_u64().unwrap();
    assert!(window_rows > 0, "{first}");
    let rest = p.json(&["materialize-incremental", "--end", "2026-01-08"]);
    let stats_rest = rest["views"].as_array().unwrap().iter().find(|v| v["view"] == "driver_stats").unwrap();
    assert_eq!(stats_rest["window_start"], stats["window_end"], "{rest}");
    assert_eq!(window_rows + stats_rest["rows"].as_u64().unwrap(), 5_000, "every row once: {first} {rest}");
    let again = p.json(&["materialize-incremental", "--end", "2026-01-08"]);
    assert!(again["views"][0]["skipped"].as_str().unwrap().contains("already materialized"), "{again}");

    // The tables, their commits and the leases are in the bucket; nothing on the local disk.
    let offline = p.keys("offline/driver_stats/_delta_log").await;
    assert!(offline.iter().any(|k| k.ends_with("00000000000000000001.json")), "{offline:?}");
    let leases = p.json(&["leases"]);
    let leases = leases["leases"].as_array().unwrap();
    assert!(!leases.is_empty() && leases.iter().all(|l| l["free"] == true), "{leases:?}");
    assert!(!p.dir.join(".quiver/offline").exists());
    let state = p.keys("offline/.quiver/state/views").await;
    assert!(state.iter().any(|k| k.ends_with("/driver_stats.json")), "state in the offline store: {state:?}");
    assert!(p.keys("registry/state").await.is_empty(), "no state beside the registry");

    // A training set, and the same set rebuilt from its manifest.
    std::fs::write(
        p.dir.join("spine.csv"),
        "driver_id,customer_id,event_timestamp,label\n1001,2001,2026-01-05T00:00:00Z,1\n\
         1002,2002,2026-01-06T12:00:00Z,0\n1003,2003,2026-01-03T00:00:00Z,1\n",
    )
    .unwrap();
    p.ok(&["historical", "--entities", "spine.csv", "--service", "ride_ranking_v1", "--out", "t.parquet"]);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p.dir.join("t.parquet.manifest.json")).unwrap()).unwrap();
    let table = manifest["views"][0]["table"].as_str().unwrap();
    assert!(table.starts_with("s3://quiver/offline/"), "{manifest}");
    // A copy of the manifest is kept in the offline store, for the whole team.
    let kept = p.keys("offline/.quiver/manifests").await;
    assert_eq!(kept.len(), 1, "{kept:?}");
    let copy = p.store().get(&ObjectPath::from(kept[0].as_str())).await.unwrap().bytes().await.unwrap();
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&copy).unwrap(), manifest);
    p.ok(&["historical", "--from-manifest", "t.parquet.manifest.json", "--out", "again.parquet"]);
    let built = std::fs::read(p.dir.join("t.parquet")).unwrap();
    let rebuilt = std::fs::read(p.dir.join("again.parquet")).unwrap();
    assert_eq!(built.len(), rebuilt.len());
    assert_eq!(built, rebuilt, "a manifest rebuilds the same training set, byte for byte");

    // Online values were written by the materializations: the newest row of driver 1001,
    // present when read at its own event time.
    let online = |at: &str| -> serde_json::Value {
        let out = p.ok(&[
            "online",
            "--features",
            "driver_stats:conv_rate",
            "--entity",
            "driver_id=1001",
            "--at",
            at,
        ]);
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["results"][0]["features"]["driver_stats:conv_rate"]
            .clone()
    };
    let newest = online("2026-01-08");
    let when = newest["event_timestamp"].as_str().unwrap().to_string();
    assert!(when.starts_with("2026-01-07"), "{newest}");
    let value = online(&when);
    assert_eq!(value["status"], "PRESENT", "{value}");
    assert!(value["value"].is_number(), "{value}");
}

/// Whether the newest generation of driver_stats's lease is held (not released) by process `pid`.
async fn held_by(p: &SharedProject, pid: u32) -> bool {
    let Some(top) = p.keys("offline/.quiver/leases/driver_stats").await.into_iter().max() else {
        return false;
    };
    let Ok(got) = p.store().get(&ObjectPath::from(top)).await else { return false };
    let record: serde_json::Value = serde_json::from_slice(&got.bytes().await.unwrap()).unwrap();
    record["released"] == false && record["holder"].as_str().unwrap().contains(&format!("(pid {pid} on"))
}

/// Spawns `quiver ARGS` with a short lease lifetime and waits until it holds driver_stats's
/// lease; `None` when it finished first (the lake was too small to catch it running).
async fn holding(p: &SharedProject, args: &[&str]) -> Option<Child> {
    let mut child = p
        .command(args, &[("QUIVER_LEASE_TTL", "3s")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if child.try_wait().unwrap().is_some() {
            return None;
        }
        if held_by(p, child.id()).await {
            return Some(child);
        }
        assert!(Instant::now() < deadline, "the run never took its lease");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_is_materialized_by_one_process_at_a_time_and_a_killed_holder_is_taken_over() {
    for rows in [400_000u64, 1_600_000] {
        let p = SharedProject::new(rows).await;
        p.ok(&["apply"]);

        // Two processes at once: the second is refused, naming the first, while it runs.
        let Some(first) = holding(&p, WEEK).await else { continue };
        let refused = p.run(WEEK, &[]);
        let first_pid = first.id();
        let mut first = first;
        if first.try_wait().unwrap().is_some() {
            continue; // the first one finished before the second asked: try a larger lake
        }
        let (_, err) = text(&refused);
        assert_eq!(refused.status.code(), Some(1), "{err}");
        assert!(
            err.contains(&format!("is being materialized by quiver materialize (pid {first_pid} on")),
            "{err}"
        );
        assert!(err.contains("lease expires at"), "{err}");
        let first_out = first.wait_with_output().unwrap();
        assert!(first_out.status.success(), "{}", String::from_utf8_lossy(&first_out.stderr));
        // Then it succeeds.
        let second = p.json(WEEK);
        assert_eq!(second["views"][0]["rows"].as_u64(), Some(rows), "{second}");

        // A holder killed with SIGKILL releases nothing: its lease is refused until it
        // expires, then taken over by a process that waits for it.
        let Some(mut killed) = holding(&p, WEEK).await else { continue };
        let killed_pid = killed.id();
        killed.kill().unwrap();
        killed.wait().unwrap();
        let refused = p.run(WEEK, &[]);
        assert!(
            text(&refused).1.contains(&format!("quiver materialize (pid {killed_pid} on")),
            "{}",
            text(&refused).1
        );
        let waited = p.run(&[WEEK, &["--wait-for-lease", "60s", "--json"]].concat(), &[]);
        let (out, err) = text(&waited);
        assert!(
            waited.status.success(),
            "{out}
{err}"
        );
        assert!(err.contains("took over an expired materialization lease"), "{err}");
        let report: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(report["views"][0]["rows"].as_u64(), Some(rows), "the window is whole: {report}");
        let leases = p.json(&["leases"]);
        assert_eq!(leases["leases"][0]["free"], true, "{leases}");
        return;
    }
    panic!("every run finished before it could be caught holding its lease");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_object_store_settings_are_refused_naming_the_url_and_writing_nothing() {
    let p = SharedProject::new(500).await;
    p.ok(&["apply"]);
    let before = p.keys("").await;
    // Each bad setting is refused by a command and by `quiver serve` at startup, with the
    // same message: the URL and what to check.
    let refused = |extra: &[(&str, &str)], config: &str| -> Vec<String> {
        let o = p.run(&[WEEK, &["--config", config]].concat(), extra);
        assert_ne!(o.status.code(), Some(0), "materialize with {extra:?} and {config} should fail");
        let mut server = p
            .command(
                &["serve", "--addr", &free_addr(), "--config", config],
                &[&[("QUIVER_AUTH_TOKEN", "")], extra].concat(),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while server.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                server.kill().unwrap();
                panic!("quiver serve with {extra:?} and {config} kept running");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let served = server.wait_with_output().unwrap();
        assert_ne!(served.status.code(), Some(0), "serve with {extra:?} and {config} should fail");
        vec![text(&o).1, String::from_utf8_lossy(&served.stderr).into_owned()]
    };
    // Nothing listens there. The client retries a refused connection with a growing random
    // pause, so a process either gives up after its retries or hits the startup check's time
    // limit first: both say the store cannot be reached.
    for err in refused(&[("AWS_ENDPOINT", "http://127.0.0.1:9")], "quiver.yaml") {
        assert!(err.contains("s3://quiver/"), "{err}");
        assert!(err.contains("the store cannot be reached: check AWS_ENDPOINT"), "{err}");
    }
    // Wrong credentials.
    for err in refused(&[("AWS_SECRET_ACCESS_KEY", "not-the-secret")], "quiver.yaml") {
        assert!(err.contains("s3://quiver/"), "{err}");
        assert!(
            err.contains("the credentials were refused: check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY"),
            "{err}"
        );
    }
    // A bucket that does not exist.
    let config = std::fs::read_to_string(p.dir.join("quiver.yaml")).unwrap();
    std::fs::write(
        p.dir.join("other.yaml"),
        config.replace("offline_store: s3://quiver/offline", "offline_store: s3://no-such-bucket/offline"),
    )
    .unwrap();
    for err in refused(&[], "other.yaml") {
        assert!(err.contains("offline_store s3://no-such-bucket/offline"), "{err}");
        assert!(err.contains("the bucket 'no-such-bucket' does not exist: create it"), "{err}");
    }
    // A prefix that holds something else than an offline store.
    p.s3.put_object(BUCKET, "reports/2026/summary.csv", b"a,b\n1,2\n".to_vec()).await.unwrap();
    std::fs::write(
        p.dir.join("other.yaml"),
        config.replace("offline_store: s3://quiver/offline", "offline_store: s3://quiver/reports"),
    )
    .unwrap();
    for err in refused(&[], "other.yaml") {
        assert!(err.contains("offline_store s3://quiver/reports"), "{err}");
        assert!(err.contains("is not a Quiver offline store"), "{err}");
        assert!(err.contains("Point offline_store at an empty prefix"), "{err}");
    }
    // Nothing was written by any of them.
    let mut after = p.keys("").await;
    after.retain(|k| k != "reports/2026/summary.csv");
    assert_eq!(after, before);
}

/// A free loopback address.
fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

/// `quiver serve` on `addr` with its own work folder and `extra` in its environment;
/// returns once it accepts calls.
async fn replica(p: &SharedProject, name: &str, addr: &str, extra: &[(&str, &str)]) -> Child {
    let work = p.dir.join(format!("work-{name}"));
    let mut child = p
        .command(
            &["serve", "--addr", addr, "--work-dir", work.to_str().unwrap(), "--ticket-ttl", "4s"],
            &[&[("QUIVER_AUTH_TOKEN", "")], extra].concat(),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(child.try_wait().unwrap().is_none(), "replica {name} exited");
        assert!(Instant::now() < deadline, "replica {name} did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child
}

async fn channel(addr: &str) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap()
}

fn spine() -> datafusion::arrow::array::RecordBatch {
    use datafusion::arrow::array::{Int64Array, TimestampNanosecondArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    let at = |t: &str| chrono::DateTime::parse_from_rfc3339(t).unwrap().timestamp_nanos_opt().unwrap();
    let schema = std::sync::Arc::new(Schema::new(vec![
        Field::new("driver_id", DataType::Int64, false),
        Field::new("event_timestamp", DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())), false),
    ]));
    datafusion::arrow::array::RecordBatch::try_new(
        schema,
        vec![
            std::sync::Arc::new(Int64Array::from(vec![1001, 1002, 1003])),
            std::sync::Arc::new(
                TimestampNanosecondArray::from(vec![
                    at("2026-01-05T00:00:00Z"),
                    at("2026-01-06T00:00:00Z"),
                    at("2026-01-07T00:00:00Z"),
                ])
                .with_timezone("UTC"),
            ),
        ],
    )
    .unwrap()
}

/// One driver_stats row as the push API takes it.
fn push_batch(driver: i64, event: &str, trips: i64) -> datafusion::arrow::array::RecordBatch {
    use datafusion::arrow::array::{Float32Array, Int64Array, TimestampMicrosecondArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    let us = chrono::DateTime::parse_from_rfc3339(event).unwrap().timestamp_micros();
    let schema = std::sync::Arc::new(Schema::new(vec![
        Field::new("driver_id", DataType::Int64, false),
        Field::new("event_timestamp", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
        Field::new("conv_rate", DataType::Float32, true),
        Field::new("acc_rate", DataType::Float32, true),
        Field::new("avg_daily_trips", DataType::Int64, true),
    ]));
    datafusion::arrow::array::RecordBatch::try_new(
        schema,
        vec![
            std::sync::Arc::new(Int64Array::from(vec![driver])),
            std::sync::Arc::new(TimestampMicrosecondArray::from(vec![us]).with_timezone("UTC")),
            std::sync::Arc::new(Float32Array::from(vec![0.5])),
            std::sync::Arc::new(Float32Array::from(vec![0.25])),
            std::sync::Arc::new(Int64Array::from(vec![trips])),
        ],
    )
    .unwrap()
}

/// A batch as Arrow IPC stream bytes.
fn ipc(batch: &datafusion::arrow::array::RecordBatch) -> Vec<u8> {
    let mut w = datafusion::arrow::ipc::writer::StreamWriter::try_new(Vec::new(), &batch.schema()).unwrap();
    w.write(batch).unwrap();
    w.finish().unwrap();
    w.into_inner().unwrap()
}

async fn put_spine(addr: &str) -> String {
    let mut flight = arrow_flight::FlightClient::new(channel(addr).await);
    let command = serde_json::json!({"features": ["driver_stats:conv_rate"]});
    let data = arrow_flight::encode::FlightDataEncoderBuilder::new()
        .with_flight_descriptor(Some(arrow_flight::FlightDescriptor::new_cmd(command.to_string())))
        .build(futures::stream::iter([Ok(spine())]));
    let results: Vec<_> = flight.do_put(data).await.unwrap().try_collect().await.unwrap();
    let meta: serde_json::Value = serde_json::from_slice(&results[0].app_metadata).unwrap();
    meta["ticket"].as_str().unwrap().to_string()
}

async fn get_set(addr: &str, ticket: &str) -> Result<usize, String> {
    Ok(fetch_set(addr, ticket).await?.iter().map(|b| b.num_rows()).sum())
}

async fn fetch_set(addr: &str, ticket: &str) -> Result<Vec<datafusion::arrow::array::RecordBatch>, String> {
    let mut flight = arrow_flight::FlightClient::new(channel(addr).await);
    flight
        .do_get(arrow_flight::Ticket::new(ticket.to_string()))
        .await
        .map_err(|e| e.to_string())?
        .try_collect()
        .await
        .map_err(|e| e.to_string())
}

/// Rows as a table, in their order: equal texts are equal rows in the same order.
fn table_text(batches: &[datafusion::arrow::array::RecordBatch]) -> String {
    datafusion::arrow::util::pretty::pretty_format_batches(batches).unwrap().to_string()
}

/// A training set file's rows as a table, in their order.
async fn file_rows(path: &std::path::Path) -> String {
    let ctx = datafusion::prelude::SessionContext::new();
    let batches =
        ctx.read_parquet(path.to_str().unwrap(), Default::default()).await.unwrap().collect().await.unwrap();
    table_text(&batches)
}

/// Training sets on a Ballista cluster of `quiver ballista` processes (a scheduler and two
/// executors, which reach the bucket with the `AWS_*` of their own environment):
/// `historical --offline-engine df://…` gives, row for row and in order, what the local
/// engine gives; so do `--from-manifest`, `offline_engine:` in the config, and a server's
/// Flight training set with `QUIVER_OFFLINE_ENGINE`. The spine's copy in the offline store
/// is removed after each job. Once the cluster is gone, the same commands fail naming the
/// scheduler, which shows they ran there, and write no output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn training_sets_on_a_ballista_cluster_equal_local_ones() {
    let p = SharedProject::new(3_000).await;
    p.ok(&["apply"]);
    p.ok(&["materialize", "--start", "2026-01-01", "--end", "2026-01-08"]);
    // 300 spine rows: drivers and customers with and without rows, times across the week
    // and before it, repeated entities, out of time order.
    let mut spine = String::from("driver_id,customer_id,event_timestamp,label\n");
    for i in 0..300u64 {
        let (driver, customer) = (1000 + (i * 7) % 60, 2000 + (i * 11) % 40);
        // Day 0 is before the first row, day 8 after the last.
        let day = (i * 37) % 9;
        let date = if day == 0 { "2025-12-31".to_string() } else { format!("2026-01-{day:02}") };
        spine.push_str(&format!(
            "{driver},{customer},{date}T{:02}:{:02}:00Z,{}\n",
            (i * 5) % 24,
            i % 60,
            i % 2
        ));
    }
    std::fs::write(p.dir.join("spine.csv"), spine).unwrap();
    let historical = |extra: &[&str], out: &str| {
        let args =
            [extra, &["historical", "--entities", "spine.csv", "--service", "ride_ranking_v1", "--out", out]]
                .concat();
        p.run(&args, &[])
    };
    let local = historical(&[], "local.parquet");
    assert!(local.status.success(), "{:?}", text(&local));
    let expected = file_rows(&p.dir.join("local.parquet")).await;
    // A border, the header, a rule, 300 rows, a border.
    assert_eq!(expected.lines().count(), 304, "{expected}");

    let cluster = support::cluster::Cluster::start(2, &p.env, &p.dir.join("cluster")).await;
    let on_cluster = historical(&["--offline-engine", &cluster.url], "cluster.parquet");
    assert!(on_cluster.status.success(), "{:?}", text(&on_cluster));
    assert_eq!(file_rows(&p.dir.join("cluster.parquet")).await, expected);
    // The manifest names the same inputs: the same tables, versions and spine.
    let manifest = |name: &str| -> serde_json::Value {
        let mut m: serde_json::Value = serde_json::from_slice(
            &std::fs::read(p.dir.join(format!("{name}.parquet.manifest.json"))).unwrap(),
        )
        .unwrap();
        for volatile in ["created_at", "seconds", "output_path"] {
            m.as_object_mut().unwrap().remove(volatile);
        }
        m
    };
    assert_eq!(manifest("cluster"), manifest("local"));
    let rebuilt = p.run(
        &[
            "--offline-engine",
            &cluster.url,
            "historical",
            "--from-manifest",
            "local.parquet.manifest.json",
            "--out",
            "rebuilt.parquet",
        ],
        &[],
    );
    assert!(rebuilt.status.success(), "{:?}", text(&rebuilt));
    assert_eq!(file_rows(&p.dir.join("rebuilt.parquet")).await, expected);
    let config = std::fs::read_to_string(p.dir.join("quiver.yaml")).unwrap();
    std::fs::write(
        p.dir.join("cluster.yaml"),
        format!("{config}offline_engine:\n  type: ballista\n  scheduler: {}\n", cluster.url),
    )
    .unwrap();
    let configured = historical(&["--config", "cluster.yaml"], "configured.parquet");
    assert!(configured.status.success(), "{:?}", text(&configured));
    assert_eq!(file_rows(&p.dir.join("configured.parquet")).await, expected);

    // A server's training set, through Flight: on the cluster, the rows of a local server.
    let (near, far) = (free_addr(), free_addr());
    let mut local_server = replica(&p, "local", &near, &[]).await;
    let mut cluster_server =
        replica(&p, "cluster", &far, &[("QUIVER_OFFLINE_ENGINE", cluster.url.as_str())]).await;
    let from_local = fetch_set(&near, &put_spine(&near).await).await.unwrap();
    let from_cluster = fetch_set(&far, &put_spine(&far).await).await.unwrap();
    assert_eq!(table_text(&from_cluster), table_text(&from_local));
    assert!(p.keys("offline/.quiver/spines").await.is_empty(), "the spines' copies are removed");

    // Without the cluster, each fails (the CLI naming the scheduler) and leaves nothing behind.
    let url = cluster.url.clone();
    drop(cluster);
    let failed = historical(&["--offline-engine", &url], "none.parquet");
    let (_, err) = text(&failed);
    assert_eq!(failed.status.code(), Some(1), "{err}");
    assert!(err.contains(&url) && err.contains("unreachable"), "{err}");
    assert!(!p.dir.join("none.parquet").exists());
    let mut flight = arrow_flight::FlightClient::new(channel(&far).await);
    let command = serde_json::json!({"features": ["driver_stats:conv_rate"]});
    let data = arrow_flight::encode::FlightDataEncoderBuilder::new()
        .with_flight_descriptor(Some(arrow_flight::FlightDescriptor::new_cmd(command.to_string())))
        .build(futures::stream::iter([Ok(self::spine())]));
    let refused = match flight.do_put(data).await {
        Ok(stream) => stream.try_collect::<Vec<_>>().await.map(|_| ()).unwrap_err(),
        Err(e) => e,
    };
    // The caller reads the kind of fault and a reference; the scheduler's address stays in
    // the server's log.
    let refused = refused.to_string();
    assert!(
        refused.contains("offline engine unavailable") && refused.contains("under reference"),
        "{refused}"
    );
    let address = url.trim_start_matches("df://");
    assert!(!refused.contains(address), "the scheduler's address reached the caller: {refused}");
    assert!(p.keys("offline/.quiver/spines").await.is_empty(), "the spines' copies are removed");
    for server in [&mut local_server, &mut cluster_server] {
        server.kill().unwrap();
        server.wait().unwrap();
    }
}

/// `a` equals `b`, numbers within a relative 1e-9.
fn assert_close(a: &serde_json::Value, b: &serde_json::Value, at: &str) {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!((x - y).abs() <= 1e-9 * x.abs().max(y.abs()), "{at}: {x} vs {y}");
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{at}");
            for (i, (x, y)) in x.iter().zip(y).enumerate() {
                assert_close(x, y, &format!("{at}[{i}]"));
            }
        }
        (Value::Object(x), Value::Object(y)) => {
            assert_eq!(x.keys().collect::<Vec<_>>(), y.keys().collect::<Vec<_>>(), "{at}");
            for (k, x) in x {
                assert_close(x, &y[k], &format!("{at}.{k}"));
            }
        }
        _ => assert_eq!(a, b, "{at}"),
    }
}

/// Every row of the Parquet files under `prefix` in the bucket (a table written once: all
/// its files are live), one line per row, sorted.
async fn stored_rows(p: &SharedProject, prefix: &str) -> Vec<String> {
    use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
    let mut rows = Vec::new();
    for key in p.keys(prefix).await {
        if !key.ends_with(".parquet") || key.contains("_delta_log") {
            continue;
        }
        let bytes = p.store().get(&ObjectPath::from(key.as_str())).await.unwrap().bytes().await.unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let options = FormatOptions::default().with_null("null");
            let columns: Vec<_> = batch
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap())
                .collect();
            for row in 0..batch.num_rows() {
                rows.push(columns.iter().map(|c| c.value(row).to_string()).collect::<Vec<_>>().join(","));
            }
        }
    }
    rows.sort();
    rows
}

/// Materialization on a Ballista cluster (a scheduler and two executors, reaching the bucket
/// with their own `AWS_*`): the executors read each view's window from the lake (transforms
/// included), shuffle it by the join keys, sort and write the Parquet files into the table;
/// the CLI commits them. Against a second project on the same lake materialized by the local
/// engine: the same table rows, the same online values, the same counts, expectation
/// results (a `unique` check broken across partitions, on_failure: warn) and statistics,
/// and the same training sets after a repeated window. Without the cluster the run fails
/// naming the scheduler and commits nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn materialization_on_a_ballista_cluster_equals_local() {
    let p = SharedProject::new(3_000).await;
    let views = p.dir.join("feature_defs/rides/views.yaml");
    let defs = std::fs::read_to_string(&views).unwrap();
    let defs = defs.replacen(
        "      - {column: avg_daily_trips, min: 0}\n",
        "      - {column: avg_daily_trips, min: 0}\n      - {unique: [event_timestamp]}\n    on_failure: warn\n",
        1,
    );
    std::fs::write(&views, defs).unwrap();
    p.apply_with_twin();
    let cluster = support::cluster::Cluster::start(2, &p.env, &p.dir.join("cluster")).await;
    let week = ["materialize", "--start", "2026-01-01", "--end", "2026-01-08", "--json"];
    let report = |args: &[&str]| -> serde_json::Value {
        let out = p.ok(args);
        let mut report: serde_json::Value = serde_json::from_str(&out).unwrap();
        for view in report["views"].as_array_mut().unwrap() {
            let view = view.as_object_mut().unwrap();
            for volatile in ["seconds", "online_seconds"] {
                view.remove(volatile);
            }
            // Which rows are shown as examples depends on the order they were seen in.
            for broken in view.get_mut("expectations").and_then(|e| e.as_array_mut()).into_iter().flatten() {
                broken.as_object_mut().unwrap().remove("examples");
            }
        }
        report
    };
    let local = report(&week);
    let on_cluster =
        report(&[&["--config", "cluster.yaml", "--offline-engine", &cluster.url], &week[..]].concat());
    assert_eq!(on_cluster, local);
    let driver_stats = |report: &serde_json::Value| {
        report["views"].as_array().unwrap().iter().find(|v| v["view"] == "driver_stats").unwrap().clone()
    };
    let unique = driver_stats(&local)["expectations"][0].clone();
    assert_eq!(unique["expectation"], "unique [event_timestamp]", "{local}");
    assert!(unique["failing_rows"].as_u64().unwrap() > 0, "{local}");

    let views = [
        "driver_stats",
        "customer_profile",
        "driver_city_stats",
        "customer_embeddings",
        "driver_trip_features",
    ];
    for view in views {
        let rows = stored_rows(&p, &format!("offline/{view}")).await;
        assert!(!rows.is_empty() || view != "driver_stats", "{view}");
        assert_eq!(stored_rows(&p, &format!("offline-cluster/{view}")).await, rows, "{view}");
        let stats = |extra: &[&str]| {
            let mut s = p.json(&[extra, &["stats", view]].concat());
            s.as_object_mut().unwrap().remove("run");
            s
        };
        // Means and deviations are summed in another order: equal to the last few bits.
        assert_close(&stats(&["--config", "cluster.yaml"]), &stats(&[]), view);
    }
    let online = |extra: &[&str]| {
        let mut args = extra.to_vec();
        // As of the window's end: the sample's values are long past their ttl now.
        args.extend(["online", "--service", "ride_ranking_v1", "--at", "2026-01-08T00:00:00Z"]);
        for i in 0..60 {
            args.push("--entity");
            args.push(Box::leak(
                format!("driver_id={},customer_id={}", 1000 + i, 2000 + i % 45).into_boxed_str(),
            ));
        }
        p.ok(&args)
    };
    let online_local = online(&[]);
    assert!(online_local.contains("\"PRESENT\""), "{online_local}");
    assert_eq!(online(&["--config", "cluster.yaml"]), online_local);

    // The same window again replaces it: a training set reads the same rows.
    let again =
        report(&[&["--config", "cluster.yaml", "--offline-engine", &cluster.url], &week[..]].concat());
    assert_eq!(driver_stats(&again)["rows"], driver_stats(&local)["rows"]);
    let mut spine = String::from("driver_id,customer_id,event_timestamp\n");
    for i in 0..200u64 {
        spine.push_str(&format!(
            "{},{},2026-01-0{}T{:02}:30:00Z\n",
            1000 + i % 60,
            2000 + i % 40,
            1 + i % 8,
            i % 24
        ));
    }
    std::fs::write(p.dir.join("spine.csv"), spine).unwrap();
    let set = |extra: &[&str], out: &str| {
        p.ok(&[
            extra,
            &["historical", "--entities", "spine.csv", "--service", "ride_ranking_v1", "--out", out],
        ]
        .concat());
    };
    set(&[], "local.parquet");
    set(&["--config", "cluster.yaml"], "cluster.parquet");
    assert_eq!(
        file_rows(&p.dir.join("cluster.parquet")).await,
        file_rows(&p.dir.join("local.parquet")).await
    );

    // Without the cluster: a clear error naming the scheduler, nothing committed.
    let url = cluster.url.clone();
    drop(cluster);
    let before = p.keys("offline-cluster/driver_stats/_delta_log").await;
    let failed = p.run(
        &[
            "--config",
            "cluster.yaml",
            "--offline-engine",
            &url,
            "materialize",
            "--start",
            "2026-01-01",
            "--end",
            "2026-01-08",
        ],
        &[],
    );
    let (out, err) = text(&failed);
    assert_eq!(failed.status.code(), Some(1), "{out}{err}");
    assert!(format!("{out}{err}").contains(&url), "{out}{err}");
    assert_eq!(p.keys("offline-cluster/driver_stats/_delta_log").await, before);
}

/// Over several seeds of the sample lake (sizes and driver counts drawn from the seed; one
/// seed new each run, printed), a materialization on a cluster of two executors stores the
/// same rows of every view and serves the same online values as a local one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn materialization_on_a_cluster_equals_local_over_random_lakes() {
    let clock = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    for seed in [7u64, 31_337, (clock % 1_000_000) as u64] {
        let rows = 1_000 + seed % 4_000;
        let drivers = 20 + seed % 150;
        eprintln!("seed {seed}: {rows} rows over {drivers} drivers");
        let lake =
            ["--seed", &seed.to_string(), "--rows", &rows.to_string(), "--drivers", &drivers.to_string()];
        let p = SharedProject::with_lake(&lake).await;
        p.apply_with_twin();
        let cluster = support::cluster::Cluster::start(2, &p.env, &p.dir.join("cluster")).await;
        let week = ["materialize", "--start", "2026-01-01", "--end", "2026-01-08"];
        p.ok(&week);
        p.ok(&[&["--config", "cluster.yaml", "--offline-engine", &cluster.url], &week[..]].concat());
        for view in ["driver_stats", "customer_profile", "driver_city_stats", "customer_embeddings"] {
            let rows = stored_rows(&p, &format!("offline/{view}")).await;
            assert!(!rows.is_empty(), "seed {seed}: {view} is empty");
            assert_eq!(
                stored_rows(&p, &format!("offline-cluster/{view}")).await,
                rows,
                "seed {seed}: {view}"
            );
        }
        let online = |extra: &[&str]| {
            let mut args = extra.to_vec();
            args.extend(["online", "--service", "ride_ranking_v1", "--at", "2026-01-08T00:00:00Z"]);
            let entities: Vec<String> = (0..drivers.min(40))
                .map(|i| format!("driver_id={},customer_id={}", 1000 + i, 2000 + i % 45))
                .collect();
            for e in &entities {
                args.extend(["--entity", e.as_str()]);
            }
            p.ok(&args)
        };
        let local = online(&[]);
        assert!(local.contains("\"PRESENT\""), "seed {seed}: {local}");
        assert_eq!(online(&["--config", "cluster.yaml"]), local, "seed {seed}");
    }
}

/// An executor killed while a materialization writes its files: the run either fails with
/// a clear error and commits nothing (no table version, no online rows), or Ballista runs
/// the lost work again and the table holds exactly the rows of a local run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_executor_killed_mid_materialization_commits_nothing_or_the_same_rows() {
    let p = SharedProject::new(20_000).await;
    p.apply_with_twin();
    p.ok(WEEK);
    let mut cluster =
        support::cluster::Cluster::start_with(2, &p.env, &p.dir.join("cluster"), Some(("1s", "5s"))).await;
    let mut run = p
        .command(&[&["--config", "cluster.yaml", "--offline-engine", &cluster.url], WEEK].concat(), &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first data file in the table's folder: the executors are writing.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let keys = p.keys("offline-cluster/driver_stats").await;
        if keys.iter().any(|k| k.ends_with(".parquet")) {
            break;
        }
        assert!(run.try_wait().unwrap().is_none(), "the run ended before writing a file");
        assert!(Instant::now() < deadline, "no file written");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut killed = cluster.executors.remove(0);
    killed.0.kill().unwrap();
    killed.0.wait().unwrap();
    // The run ends, one way or the other, well within a few executor timeouts; when it does
    // not, the failure shows what the cluster logged.
    let pid = run.id();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done_tx.send(run.wait_with_output().unwrap());
    });
    let finished = match done_rx.recv_timeout(Duration::from_secs(180)) {
        Ok(finished) => finished,
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            let log =
                |name: &str| std::fs::read_to_string(p.dir.join("cluster").join(name)).unwrap_or_default();
            let tail = |s: String| {
                s.lines().rev().take(60).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
            };
            panic!(
                "the materialization did not end within 180 s of the kill\nscheduler:\n{}\nsurviving executor:\n{}",
                tail(log("scheduler.log")),
                tail(log("executor-1.log"))
            );
        }
    };
    let (out, err) = text(&finished);
    let online = |config: &str| {
        let at = ["--at", "2026-01-08T00:00:00Z"];
        p.ok(&[
            &[
                "--config",
                config,
                "online",
                "--features",
                "driver_stats:conv_rate",
                "--entity",
                "driver_id=1001",
            ],
            &at[..],
        ]
        .concat())
    };
    let log = p.keys("offline-cluster/driver_stats/_delta_log").await;
    eprintln!(
        "after the kill the run {}: {out}{err}",
        if finished.status.success() { "completed" } else { "failed" }
    );
    if finished.status.success() {
        // Retried: the same rows as the local run (read through the committed version: a
        // lost attempt's files stay in the folder, uncommitted), the same online value.
        let set = |extra: &[&str], out: &str| {
            p.ok(&[
                extra,
                &[
                    "historical",
                    "--entities",
                    "spine.csv",
                    "--features",
                    "driver_stats:conv_rate",
                    "--out",
                    out,
                ],
            ]
            .concat());
        };
        let mut spine = String::from("driver_id,event_timestamp\n");
        for i in 0..100u64 {
            spine.push_str(&format!("{},2026-01-0{}T{:02}:30:00Z\n", 1000 + i % 60, 1 + i % 8, i % 24));
        }
        std::fs::write(p.dir.join("spine.csv"), spine).unwrap();
        set(&[], "local.parquet");
        set(&["--config", "cluster.yaml"], "cluster.parquet");
        assert_eq!(
            file_rows(&p.dir.join("cluster.parquet")).await,
            file_rows(&p.dir.join("local.parquet")).await
        );
        assert_eq!(online("cluster.yaml"), online("quiver.yaml"));
    } else {
        assert_eq!(finished.status.code(), Some(1), "{out}{err}");
        assert!(format!("{out}{err}").contains("driver_stats"), "{out}{err}");
        assert!(log.iter().all(|k| !k.ends_with(".json")), "a commit was made: {log:?}\n{out}{err}");
        let nothing = online("cluster.yaml");
        assert!(nothing.contains("NOT_FOUND") && !nothing.contains("PRESENT"), "{nothing}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_configuration_serve_each_others_training_sets_and_jobs() {
    use quiver_server::pb;
    use quiver_server::pb::materialize_service_client::MaterializeServiceClient;

    let p = SharedProject::new(5_000).await;
    p.ok(&["apply"]);
    let (a, b) = (free_addr(), free_addr());
    let mut first = replica(&p, "a", &a, &[]).await;
    let mut second = replica(&p, "b", &b, &[]).await;

    // A job started on one replica is followed on the other, to the end.
    let window = pb::start_materialization_request::Span::Window(pb::Window {
        start_ns: chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .timestamp_nanos_opt()
            .unwrap(),
        end_ns: chrono::DateTime::parse_from_rfc3339("2026-01-08T00:00:00Z")
            .unwrap()
            .timestamp_nanos_opt()
            .unwrap(),
    });
    let job = MaterializeServiceClient::new(channel(&a).await)
        .start(pb::StartMaterializationRequest { span: Some(window), views: vec!["driver_stats".into()] })
        .await
        .unwrap()
        .into_inner();
    let mut on_b = MaterializeServiceClient::new(channel(&b).await);
    let deadline = Instant::now() + Duration::from_secs(120);
    let done = loop {
        let seen = on_b.get(pb::GetMaterializationRequest { id: job.id.clone() }).await.unwrap().into_inner();
        if seen.finished_at_ns != 0 {
            break seen;
        }
        assert!(Instant::now() < deadline, "the job never finished: {seen:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(done.state(), pb::JobState::Succeeded, "{done:?}");
    assert_eq!(done.views[0].rows_done, 5_000, "{done:?}");
    let listed = on_b.list(pb::ListMaterializationsRequest {}).await.unwrap().into_inner();
    assert!(listed.jobs.iter().any(|j| j.id == job.id), "{listed:?}");

    // Rows pushed to the offline store (and online) through one replica are in the S3
    // table for training sets and in Redis for online reads.
    let pushed = push_batch(1001, "2026-01-07T23:59:59Z", 4242);
    let reply = quiver_server::pb::push_service_client::PushServiceClient::new(channel(&a).await)
        .push(pb::PushRequest {
            feature_view: "driver_stats".into(),
            arrow_ipc: ipc(&pushed),
            to: pb::PushTarget::OnlineAndOffline as i32,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((reply.rows, reply.online_rows_written), (1, 1), "{reply:?}");
    assert!(reply.offline_version.is_some(), "{reply:?}");
    let online: serde_json::Value = serde_json::from_str(&p.ok(&[
        "online",
        "--features",
        "driver_stats:avg_daily_trips",
        "--entity",
        "driver_id=1001",
        "--at",
        "2026-01-07T23:59:59Z",
    ]))
    .unwrap();
    assert_eq!(online["results"][0]["features"]["driver_stats:avg_daily_trips"]["value"], 4242, "{online}");
    std::fs::write(p.dir.join("late.csv"), "driver_id,event_timestamp\n1001,2026-01-07T23:59:59Z\n").unwrap();
    p.ok(&[
        "historical",
        "--entities",
        "late.csv",
        "--features",
        "driver_stats:avg_daily_trips",
        "--out",
        "late.parquet",
    ]);
    let ctx = datafusion::prelude::SessionContext::new();
    let out = ctx
        .read_parquet(p.dir.join("late.parquet").to_str().unwrap(), Default::default())
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let trips = datafusion::arrow::compute::cast(
        out[0].column_by_name("avg_daily_trips").unwrap(),
        &datafusion::arrow::datatypes::DataType::Int64,
    )
    .unwrap();
    assert_eq!(
        datafusion::arrow::array::AsArray::as_primitive::<datafusion::arrow::datatypes::Int64Type>(&trips)
            .value(0),
        4242
    );

    // A training set built on one replica is fetched from the other, until its ticket expires.
    let ticket = put_spine(&a).await;
    assert_eq!(get_set(&b, &ticket).await, Ok(3));
    assert_eq!(get_set(&a, &ticket).await, Ok(3));
    let stored = p.keys(&format!("offline/.quiver/training_sets/{ticket}")).await;
    assert_eq!(stored.len(), 3, "data, manifest and record: {stored:?}");
    assert!(stored.iter().any(|k| k.ends_with(&format!("{ticket}/manifest.json"))), "{stored:?}");
    let forged = format!("ts-{}", "0".repeat(32));
    assert!(get_set(&b, &forged).await.unwrap_err().contains("no training set with this ticket"));
    assert!(get_set(&b, "../../registry").await.unwrap_err().contains("no training set with this ticket"));
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    let expired = get_set(&b, &ticket).await.unwrap_err();
    assert!(expired.contains("no training set with this ticket"), "{expired}");
    assert!(p.keys(&format!("offline/.quiver/training_sets/{ticket}")).await.is_empty(), "files deleted");

    // A replica killed in the middle of a job (held still, with the view's lease, just
    // after planning its window): its record says so on the other replica once it has gone
    // silent, its lease expires, and the other replica then materializes the view.
    let gate = p.dir.join("gate");
    let c = free_addr();
    let mut third = replica(
        &p,
        "c",
        &c,
        &[
            ("QUIVER_FAULT", "materialize.after_plan@pause"),
            ("QUIVER_FAULT_GATE", gate.to_str().unwrap()),
            ("QUIVER_LEASE_TTL", "3s"),
        ],
    )
    .await;
    let started = MaterializeServiceClient::new(channel(&c).await)
        .start(pb::StartMaterializationRequest { span: Some(window), views: vec!["driver_stats".into()] })
        .await
        .unwrap()
        .into_inner();
    let reached = p.dir.join("gate.reached");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !reached.exists() {
        assert!(Instant::now() < deadline, "the job on the third replica never reached its window");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(held_by(&p, third.id()).await, "the paused job holds driver_stats's lease");
    third.kill().unwrap();
    third.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    let failed = loop {
        let seen =
            on_b.get(pb::GetMaterializationRequest { id: started.id.clone() }).await.unwrap().into_inner();
        if seen.finished_at_ns != 0 {
            break seen;
        }
        assert!(matches!(seen.state(), pb::JobState::Pending | pb::JobState::Running), "{seen:?}");
        assert!(Instant::now() < deadline, "a dead replica's job never turned failed: {seen:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(failed.state(), pb::JobState::Failed, "{failed:?}");
    assert!(failed.error.contains("stopped before it finished"), "{failed:?}");
    let leases = p.json(&["leases"]);
    let lease = leases["leases"].as_array().unwrap().iter().find(|l| l["view"] == "driver_stats").unwrap();
    assert_eq!(lease["free"], true, "the dead replica's lease expired: {leases}");
    assert!(lease["holder"].as_str().unwrap().contains(&format!("(pid {} on", third.id())), "{leases}");
    let retried = on_b
        .start(pb::StartMaterializationRequest { span: Some(window), views: vec!["driver_stats".into()] })
        .await
        .unwrap()
        .into_inner();
    let deadline = Instant::now() + Duration::from_secs(120);
    let retried = loop {
        let seen =
            on_b.get(pb::GetMaterializationRequest { id: retried.id.clone() }).await.unwrap().into_inner();
        if seen.finished_at_ns != 0 {
            break seen;
        }
        assert!(Instant::now() < deadline, "the retried job never finished: {seen:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(retried.state(), pb::JobState::Succeeded, "{retried:?}");
    assert_eq!(retried.views[0].rows_done, 5_000, "{retried:?}");

    // The jobs a replica finished stay readable after it restarts.
    first.kill().unwrap();
    first.wait().unwrap();
    let mut restarted = replica(&p, "a", &a, &[]).await;
    let old = MaterializeServiceClient::new(channel(&a).await)
        .get(pb::GetMaterializationRequest { id: job.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(old.state(), pb::JobState::Succeeded);
    for child in [&mut restarted, &mut second] {
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_and_offline_store_on_azure_blob_storage_run_the_same_flow() {
    use quiver_testkit::azurite::Azurite;
    let azurite = Azurite::start();
    azurite.create_container("quiver");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    support::copy_example_definitions(&dir);
    std::fs::write(
        dir.join("quiver.yaml"),
        "project: rides\ndefinitions: feature_defs/rides\nregistry: az://quiver/registry\n\
         lake: lake\noffline_store: az://quiver/offline\n",
    )
    .unwrap();
    let env = azurite.env();
    let run = |args: &[&str]| -> String {
        let o = Command::new(env!("CARGO_BIN_EXE_quiver"))
            .args(args)
            .current_dir(&dir)
            .env_remove("QUIVER_CONFIG")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .unwrap();
        let (out, err) = text(&o);
        assert!(o.status.success(), "quiver {args:?} failed:\n{out}\n{err}");
        out
    };
    run(&["sample-lake", "--dir", "lake", "--rows", "3000"]);
    run(&["apply"]);
    let json = |args: &[&str]| -> serde_json::Value {
        serde_json::from_str(&run(&[args, &["--json"]].concat())).unwrap()
    };
    let first =
        json(&["materialize", "--start", "2026-01-01", "--end", "2026-01-04", "--views", "driver_stats"]);
    let rest = json(&["materialize-incremental", "--end", "2026-01-08", "--views", "driver_stats"]);
    assert_eq!(rest["views"][0]["window_start"], first["views"][0]["window_end"], "{rest}");
    let rows = first["views"][0]["rows"].as_u64().unwrap() + rest["views"][0]["rows"].as_u64().unwrap();
    assert_eq!(rows, 3_000, "every row once: {first} {rest}");

    // A training set read from the tables on Azure equals the one read from the same
    // windows materialized to a local offline store.
    let spine: String = (1001..=1040)
        .flat_map(|d| [format!("{d},2026-01-03T06:00:00Z\n"), format!("{d},2026-01-07T18:00:00Z\n")])
        .collect();
    std::fs::write(dir.join("spine.csv"), format!("driver_id,event_timestamp\n{spine}")).unwrap();
    let historical = |config: &str, out: &str| {
        run(&[
            "historical",
            "--config",
            config,
            "--entities",
            "spine.csv",
            "--features",
            "driver_stats:conv_rate",
            "--out",
            out,
        ]);
    };
    historical("quiver.yaml", "azure.parquet");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("azure.parquet.manifest.json")).unwrap()).unwrap();
    assert!(
        manifest["views"][0]["table"].as_str().unwrap().starts_with("az://quiver/offline/"),
        "{manifest}"
    );
    std::fs::write(
        dir.join("local.yaml"),
        "project: rides\ndefinitions: feature_defs/rides\nregistry: local-registry\nlake: lake\n\
         offline_store: local-offline\n",
    )
    .unwrap();
    run(&["apply", "--config", "local.yaml"]);
    run(&[
        "materialize",
        "--config",
        "local.yaml",
        "--start",
        "2026-01-01",
        "--end",
        "2026-01-04",
        "--views",
        "driver_stats",
    ]);
    run(&[
        "materialize-incremental",
        "--config",
        "local.yaml",
        "--end",
        "2026-01-08",
        "--views",
        "driver_stats",
    ]);
    historical("local.yaml", "local.parquet");
    let ctx = datafusion::prelude::SessionContext::new();
    let read = |name: &str| {
        let path = dir.join(name);
        let ctx = ctx.clone();
        async move {
            ctx.read_parquet(path.to_str().unwrap(), Default::default())
                .await
                .unwrap()
                .collect()
                .await
                .unwrap()
        }
    };
    let (azure, local) = (read("azure.parquet").await, read("local.parquet").await);
    assert_eq!(azure, local, "the same training set from Azure and from a local offline store");
    let values: usize =
        azure.iter().map(|b| b.num_rows() - b.column_by_name("conv_rate").unwrap().null_count()).sum();
    assert!(values > 0, "some spine rows find a value: {azure:?}");

    // Everything lives in the container: the registry, the table's commits, the state, the
    // store's marker; nothing on the local disk.
    let store = azurite.store("quiver");
    let listed: Vec<_> = store.list(None).try_collect().await.unwrap();
    let keys: Vec<String> = listed.into_iter().map(|m| m.location.to_string()).collect();
    for wanted in [
        "offline/driver_stats/_delta_log/00000000000000000001.json",
        "offline/.quiver/state/views/driver_stats.json",
        "offline/.quiver/offline-store.json",
    ] {
        assert!(keys.iter().any(|k| k == wanted), "{wanted} missing from {keys:?}");
    }
    assert!(keys.iter().any(|k| k.starts_with("registry/")), "{keys:?}");
    assert!(!dir.join(".quiver/offline").exists());
}
