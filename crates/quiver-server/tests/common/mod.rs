//! A real server for tests: an example project (the repository's ride-hailing definitions,
//! a small generated lake), its own `redis-server`, and `quiver serve` in-process on a free
//! port, reached over TCP by real clients.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray, TimestampNanosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::ipc::writer::StreamWriter;
use quiver_core::config::Config;
use quiver_server::pb;
use quiver_server::{App, Limits};
use quiver_testkit::redis::RedisServer;
use tokio::sync::oneshot;
use tonic::transport::Channel;

/// First day of the sample data; it spans two days.
pub const DATA_START: &str = "2026-01-01T00:00:00Z";

pub fn ns(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339).unwrap().timestamp_nanos_opt().unwrap()
}

/// The repository's example definitions as YAML documents.
pub fn example_documents() -> Vec<pb::YamlDocument> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../feature_defs/rides");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
        .into_iter()
        .map(|p| pb::YamlDocument {
            name: p.file_name().unwrap().to_string_lossy().into_owned(),
            content: std::fs::read_to_string(&p).unwrap(),
        })
        .collect()
}

/// A project folder with a sample lake and a config using `redis_url`.
pub fn project(redis_url: &str) -> (tempfile::TempDir, Config) {
    project_with(redis_url, "")
}

/// [`project`] with more lines appended to its `quiver.yaml` (e.g. a `server:` section, or
/// an `offline_store:` in place of the local folder `offline`).
pub fn project_with(redis_url: &str, extra_config: &str) -> (tempfile::TempDir, Config) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let spec = quiver_sample::SampleSpec {
        rows: 2_000,
        drivers: 20,
        customers: 50,
        days: 2,
        seed: 7,
        start: chrono::DateTime::parse_from_rfc3339(DATA_START).unwrap().to_utc(),
    };
    quiver_sample::generate_lake(&dir.join("lake"), &spec).unwrap();
    // `extra_config` may name its own offline store.
    let offline = if extra_config.contains("offline_store:") { "" } else { "offline_store: offline\n" };
    let text = format!(
        "project: rides\nregistry: registry\nlake: lake\n{offline}online_store:\n  type: redis\n  url: {redis_url}\n{extra_config}"
    );
    let path = dir.join("quiver.yaml");
    std::fs::write(&path, text).unwrap();
    let config = Config::load(&path).unwrap();
    (tmp, config)
}

/// A running server.
pub struct TestServer {
    pub addr: SocketAddr,
    pub app: Arc<App>,
    pub redis: RedisServer,
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    pub handle: Option<tokio::task::JoinHandle<Result<(), quiver_server::ServeError>>>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(Limits::default(), None).await
    }

    pub async fn start_with(limits: Limits, token: Option<&str>) -> Self {
        Self::start_custom(limits, token, "", |_| {}).await
    }

    /// A server whose `quiver.yaml` has `extra_config` appended, its project options set
    /// by `options`.
    pub async fn start_custom(
        limits: Limits,
        token: Option<&str>,
        extra_config: &str,
        options: impl FnOnce(&mut quiver_server::domain::ProjectOptions),
    ) -> Self {
        let redis = RedisServer::start();
        let (dir, config) = project_with(&redis.url(), extra_config);
        let mut project = quiver_server::domain::ProjectOptions::new(512 << 20, dir.path().join("work"));
        options(&mut project);
        let app = App::open_with(config, token.map(str::to_string), project).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(quiver_server::serve(app.clone(), listener, limits, async move {
            let _ = stopped.await;
        }));
        TestServer { addr, app, redis, dir, stop: Some(stop), handle: Some(handle) }
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr)).unwrap().connect().await.unwrap()
    }

    /// Asks the server to stop; returns when it has (calls in flight finish first).
    pub async fn shutdown(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.unwrap().unwrap();
        }
    }
}

/// Applies the example definitions through the API (no token).
pub async fn apply_example(channel: Channel) -> u64 {
    let mut registry = pb::registry_service_client::RegistryServiceClient::new(channel);
    let response = registry
        .apply(pb::ApplyRequest {
            documents: example_documents(),
            expected_version: 0,
            applied_by: "test".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(response.applied);
    response.version
}

/// Materializes every view over the whole sample and waits for the job.
pub async fn materialize_all(channel: Channel) -> pb::MaterializationJob {
    let mut jobs = pb::materialize_service_client::MaterializeServiceClient::new(channel);
    let started = jobs
        .start(pb::StartMaterializationRequest {
            span: Some(pb::start_materialization_request::Span::Window(pb::Window {
                start_ns: ns(DATA_START),
                end_ns: ns("2026-01-04T00:00:00Z"),
            })),
            views: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    wait_for_job(&mut jobs, &started.id).await
}

/// Materializes `views` over `[start, end)` through a job and waits for it to succeed.
pub async fn materialize_window(channel: Channel, views: &[&str], start: &str, end: &str) {
    let mut jobs = pb::materialize_service_client::MaterializeServiceClient::new(channel);
    let job = jobs
        .start(pb::StartMaterializationRequest {
            span: Some(pb::start_materialization_request::Span::Window(pb::Window {
                start_ns: ns(start),
                end_ns: ns(end),
            })),
            views: views.iter().map(|v| v.to_string()).collect(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(wait_for_job(&mut jobs, &job.id).await.state(), pb::JobState::Succeeded);
}

pub async fn wait_for_job(
    jobs: &mut pb::materialize_service_client::MaterializeServiceClient<Channel>,
    id: &str,
) -> pb::MaterializationJob {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let job = jobs.get(pb::GetMaterializationRequest { id: id.to_string() }).await.unwrap().into_inner();
        if job.finished_at_ns != 0 {
            return job;
        }
        assert!(std::time::Instant::now() < deadline, "job {id} did not finish: {job:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A spine: driver ids and times (RFC 3339), with a label column.
pub fn driver_spine(rows: &[(i64, &str)]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("driver_id", DataType::Int64, false),
        Field::new("event_timestamp", DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())), false),
        Field::new("label", DataType::Utf8, true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())),
            Arc::new(
                TimestampNanosecondArray::from(rows.iter().map(|r| ns(r.1)).collect::<Vec<_>>())
                    .with_timezone("UTC"),
            ),
            Arc::new(StringArray::from((0..rows.len()).map(|i| format!("row{i}")).collect::<Vec<_>>())),
        ],
    )
    .unwrap()
}

/// The values of one `driver_stats` row (the example view), for pushes.
pub struct DriverStats {
    pub driver: i64,
    /// Event time since the epoch, in `unit` (ns or us: a time in us may lie beyond what
    /// ns can hold, as a client's may).
    pub event: i64,
    pub unit: TimeUnit,
    pub conv_rate: Option<f32>,
    pub acc_rate: f32,
    pub trips: i64,
}

impl DriverStats {
    /// Driver `driver` at `event_ns` with conversion 0.5, acceptance 0.25 and 3 trips.
    pub fn at(driver: i64, event_ns: i64) -> DriverStats {
        DriverStats {
            driver,
            event: event_ns,
            unit: TimeUnit::Nanosecond,
            conv_rate: Some(0.5),
            acc_rate: 0.25,
            trips: 3,
        }
    }

    /// The row as a one-row batch.
    pub fn batch(&self) -> RecordBatch {
        use datafusion::arrow::array::{ArrayRef, Float32Array, TimestampMicrosecondArray};
        let event: ArrayRef = match self.unit {
            TimeUnit::Microsecond => {
                Arc::new(TimestampMicrosecondArray::from(vec![self.event]).with_timezone("UTC"))
            }
            TimeUnit::Nanosecond => {
                Arc::new(TimestampNanosecondArray::from(vec![self.event]).with_timezone("UTC"))
            }
            other => panic!("DriverStats sends ns or us event times, not {other:?}"),
        };
        let schema = Arc::new(Schema::new(vec![
            Field::new("driver_id", DataType::Int64, false),
            Field::new("event_timestamp", DataType::Timestamp(self.unit, Some("UTC".into())), false),
            Field::new("conv_rate", DataType::Float32, true),
            Field::new("acc_rate", DataType::Float32, true),
            Field::new("avg_daily_trips", DataType::Int64, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![self.driver])),
                event,
                Arc::new(Float32Array::from(vec![self.conv_rate])),
                Arc::new(Float32Array::from(vec![self.acc_rate])),
                Arc::new(Int64Array::from(vec![self.trips])),
            ],
        )
        .unwrap()
    }
}

/// Arrow IPC stream bytes of batches.
pub fn ipc(batches: &[RecordBatch]) -> Vec<u8> {
    let mut w = StreamWriter::try_new(Vec::new(), &batches[0].schema()).unwrap();
    for b in batches {
        w.write(b).unwrap();
    }
    w.finish().unwrap();
    w.into_inner().unwrap()
}

/// Online values of `refs` for driver ids, at `at_ns` (0 = now).
pub async fn online(
    channel: Channel,
    refs: &[&str],
    drivers: &[i64],
    at_ns: i64,
) -> Result<pb::GetOnlineFeaturesResponse, tonic::Status> {
    online_as(channel, refs, drivers, at_ns, false).await
}

/// [`online`], asking for the Arrow answer when `arrow` is set.
pub async fn online_as(
    channel: Channel,
    refs: &[&str],
    drivers: &[i64],
    at_ns: i64,
    arrow: bool,
) -> Result<pb::GetOnlineFeaturesResponse, tonic::Status> {
    let mut client = pb::online_service_client::OnlineServiceClient::new(channel);
    let mut entities = std::collections::HashMap::new();
    entities.insert(
        "driver_id".to_string(),
        pb::RepeatedValue {
            values: drivers
                .iter()
                .map(|d| pb::Value { kind: Some(pb::value::Kind::Int64Value(*d)) })
                .collect(),
        },
    );
    client
        .get_online_features(pb::GetOnlineFeaturesRequest {
            kind: Some(pb::get_online_features_request::Kind::Features(pb::FeatureList {
                refs: refs.iter().map(|s| s.to_string()).collect(),
            })),
            entities,
            at_ns,
            arrow,
        })
        .await
        .map(|r| r.into_inner())
}

/// Scrapes `/metrics` from a metrics listener started for the test.
pub async fn metrics_text(app: &Arc<quiver_server::App>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(quiver_server::metrics::serve_metrics(listener, app.clone(), async move {
        let _ = stopped.await;
    }));
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).await.unwrap();
    let _ = stop.send(());
    let _ = task.await;
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    out
}
