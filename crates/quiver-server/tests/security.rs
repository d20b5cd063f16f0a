//! The server tried as an attacker would: each test is one way in that was open, and fails
//! if it opens again. Real server on a real socket, real Redis, real TLS.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use arrow_flight::{FlightClient, FlightDescriptor};
use common::*;
use futures::{StreamExt, TryStreamExt};
use quiver_server::Limits;
use quiver_server::pb;
use quiver_server::pb::registry_service_client::RegistryServiceClient;
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// A request with `authorization: Bearer <token>` when a token is given.
fn with_token<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(t) = token {
        request.metadata_mut().insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    request
}

fn plan_of(yaml: &str) -> pb::PlanRequest {
    pb::PlanRequest { documents: vec![pb::YamlDocument { name: "attack.yaml".into(), content: yaml.into() }] }
}

/// Definitions of one csv source at `path` and one view over it, optionally transformed.
fn person_defs(path: &str, transform: Option<&str>, features: &str) -> String {
    let transform = transform.map_or(String::new(), |t| format!("    transform: \"{t}\"\n"));
    format!(
        "entities:\n  - name: person\n    join_keys: [{{name: user, dtype: string}}]\n\
         sources:\n  - name: people\n    path: '{path}'\n    format: csv\n    timestamp_field: event_timestamp\n    options: {{has_header: true}}\n\
         feature_views:\n  - name: leak\n    entities: [person]\n    source: people\n    features: [{features}]\n{transform}"
    )
}

async fn plan_error(server: &TestServer, yaml: &str) -> tonic::Status {
    let mut registry = RegistryServiceClient::new(server.channel().await);
    registry.plan(plan_of(yaml)).await.expect_err("the plan should be refused")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_reads_nothing_outside_the_lake_and_never_echoes_data() {
    let mut server = TestServer::start().await;
    let root = server.dir.path().to_path_buf();
    let secret = "user,ssn,event_timestamp\nalice,123-45-6789,2026-01-01T00:00:00Z\nbob,987-65-4321,2026-01-01T01:00:00Z\n";
    std::fs::create_dir_all(root.join("lake/people")).unwrap();
    std::fs::write(root.join("lake/people/people.csv"), secret).unwrap();
    std::fs::create_dir_all(root.join("outside")).unwrap();
    std::fs::write(root.join("outside/passwd.csv"), "root:x:0:0:root:/root:/bin/bash\nuser,1,2\n").unwrap();
    std::os::unix::fs::symlink(root.join("outside"), root.join("lake/link")).unwrap();
    let ok_features = "{name: ssn, dtype: string}";

    // A file outside the lake: absolute, climbing with `..`, as a URL, through a link.
    let outside = root.join("outside/passwd.csv").display().to_string();
    for path in [
        outside.clone(),
        format!("file://{outside}"),
        "../quiver.yaml".into(),
        "people/../../outside/passwd.csv".into(),
        "link/passwd.csv".into(),
    ] {
        let e = plan_error(&server, &person_defs(&path, None, ok_features)).await;
        assert_eq!(e.code(), Code::InvalidArgument, "{path}: {e:?}");
        assert!(e.message().contains("outside the lake"), "{path}: {}", e.message());
        for leaked in ["root:x", "/bin/bash", "project: rides"] {
            assert!(!e.message().contains(leaked), "{path} leaked {leaked}: {}", e.message());
        }
    }

    // A transform that smuggles a whole column into a cast error: the value is not shown.
    let smuggle = "SELECT user, CAST((SELECT string_agg(user || '=' || ssn, ' ; ') FROM source) AS BIGINT) AS ssn, event_timestamp FROM source";
    let e = plan_error(&server, &person_defs("people/", Some(smuggle), "{name: ssn, dtype: int64}")).await;
    assert!(e.message().contains("does not convert"), "{}", e.message());
    for leaked in ["123-45", "alice=", "987-65"] {
        assert!(!e.message().contains(leaked), "leaked {leaked}: {}", e.message());
    }

    // Not one read-only SELECT over `source`: refused before anything runs.
    let ddl = format!("CREATE EXTERNAL TABLE stolen STORED AS CSV LOCATION '{outside}'");
    for (sql, expected) in [
        (ddl.as_str(), "one read-only SELECT"),
        ("COPY (SELECT 1) TO '/tmp/quiver-copy-attack.csv'", "one read-only SELECT"),
        ("SET datafusion.execution.batch_size = 1", "one read-only SELECT"),
        ("EXPLAIN SELECT * FROM source", "one read-only SELECT"),
        ("SELECT s.* FROM source s, generate_series(1, 1000000000000)", "only the table `source`"),
        ("SELECT * FROM source WHERE user IN (SELECT value FROM range(10))", "only the table `source`"),
    ] {
        let e = plan_error(&server, &person_defs("people/", Some(sql), ok_features)).await;
        assert_eq!(e.code(), Code::InvalidArgument, "{sql}: {e:?}");
        assert!(e.message().contains(expected), "{sql}: {}", e.message());
    }
    assert!(!std::path::Path::new("/tmp/quiver-copy-attack.csv").exists());

    // The honest version of the same definitions plans.
    let mut registry = RegistryServiceClient::new(server.channel().await);
    let ok = registry.plan(plan_of(&person_defs("people/", None, ok_features))).await;
    assert!(ok.is_ok(), "{ok:?}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_checks_stop_at_their_time_and_memory_limits() {
    let options = |o: &mut quiver_server::domain::ProjectOptions| {
        o.check_limits = quiver_offline::check::CheckLimits { time: Duration::from_secs(2), memory: 2 << 20 };
    };
    let mut server = TestServer::start_custom(Limits::default(), None, "", options).await;
    let root = server.dir.path().to_path_buf();
    let rows: String = (0..100).map(|i| format!("user{i},{i},2026-01-01T00:00:00Z\n")).collect();
    std::fs::create_dir_all(root.join("lake/people")).unwrap();
    std::fs::write(root.join("lake/people/people.csv"), format!("user,ssn,event_timestamp\n{rows}")).unwrap();
    let features = "{name: ssn, dtype: int64}";
    // 100^6 rows counted: would run for hours; the check gives up at its time limit.
    let endless = "SELECT user, (SELECT count(*) FROM source a, source b, source c, source d, source e, source f) AS ssn, event_timestamp FROM source";
    let e = tokio::time::timeout(
        Duration::from_secs(120),
        plan_error(&server, &person_defs("people/", Some(endless), features)),
    )
    .await
    .expect("the plan returned");
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("did not finish within 2s"), "{}", e.message());
    // 10^6 rows sorted in a 2 MiB pool with no spilling: out of memory, said so.
    let hungry =
        "SELECT a.user, a.ssn, a.event_timestamp FROM source a, source b, source c ORDER BY b.user, c.user";
    let e = plan_error(&server, &person_defs("people/", Some(hungry), features)).await;
    assert!(e.message().contains("ran out of memory"), "{}", e.message());
    // The server still answers.
    let mut registry = RegistryServiceClient::new(server.channel().await);
    assert!(registry.history(pb::HistoryRequest {}).await.is_ok());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_reads_count_each_feature_once_and_are_capped_before_any_work() {
    let limits = Limits { max_online_values: 100, ..Limits::default() };
    let mut server = TestServer::start_with(limits, None).await;
    let channel = server.channel().await;
    apply_example(channel.clone()).await;
    let repeated: Vec<&str> = std::iter::repeat_n("driver_stats", 1000).collect();
    let answer = online(channel.clone(), &repeated, &[1001, 1002], 0).await.unwrap();
    let views = server.app.project().current().unwrap();
    let features = views.definitions.feature_view("driver_stats").unwrap().features.len();
    assert_eq!(answer.feature_names.len(), features, "{:?}", answer.feature_names);
    let refs = ["driver_stats:conv_rate", "driver_stats:acc_rate", "driver_stats:avg_daily_trips"];
    let drivers: Vec<i64> = (1001..1051).collect();
    let e = online(channel.clone(), &refs, &drivers, 0).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted);
    assert!(e.message().contains("limit is 100 values"), "{}", e.message());
    assert!(online(channel.clone(), &refs, &drivers[..30], 0).await.is_ok(), "90 values are within 100");
    server.shutdown().await;
}

/// `DoPut` of a small spine as `token`; the reply's metadata.
async fn put_spine(channel: Channel, token: Option<&str>) -> Result<serde_json::Value, String> {
    let mut flight = FlightClient::new(channel);
    if let Some(t) = token {
        flight.add_header("authorization", &format!("Bearer {t}")).unwrap();
    }
    let command = serde_json::json!({"features": ["driver_stats:conv_rate"]});
    let spine = driver_spine(&[(1001, "2026-01-01T12:00:00Z"), (1002, "2026-01-02T00:00:00Z")]);
    let data = arrow_flight::encode::FlightDataEncoderBuilder::new()
        .with_flight_descriptor(Some(FlightDescriptor::new_cmd(command.to_string())))
        .build(futures::stream::iter([Ok(spine)]));
    let results: Vec<_> = flight
        .do_put(data)
        .await
        .map_err(|e| e.to_string())?
        .try_collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok(serde_json::from_slice(&results[0].app_metadata).unwrap())
}

async fn get_set(channel: Channel, ticket: &str, token: Option<&str>) -> Result<usize, String> {
    let mut flight = FlightClient::new(channel);
    if let Some(t) = token {
        flight.add_header("authorization", &format!("Bearer {t}")).unwrap();
    }
    let batches: Vec<_> = flight
        .do_get(arrow_flight::Ticket::new(ticket.to_string()))
        .await
        .map_err(|e| e.to_string())?
        .try_collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok(batches.iter().map(|b| b.num_rows()).sum())
}

const ALICE: &str = "alice-token-1";
const BOB: &str = "bob-token-2";
const ADMIN: &str = "admin-token-3";
const READER: &str = "reader-token-4";

fn tokens_config(extra: &str) -> String {
    let digest = |t: &str| hex::encode(quiver_server::auth::token_digest(t));
    format!(
        "server:\n  tokens:\n    - {{name: alice, role: writer, sha256: {}}}\n    - {{name: bob, role: writer, sha256: {}}}\n    - {{name: ops, role: admin, sha256: {}}}\n    - {{name: model_svc, role: reader, sha256: {}}}\n{extra}",
        digest(ALICE),
        digest(BOB),
        digest(ADMIN),
        digest(READER)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn training_set_tickets_are_random_owned_by_their_uploader_and_expire() {
    let options = |o: &mut quiver_server::domain::ProjectOptions| o.ticket_ttl = Duration::from_secs(6);
    let mut server = TestServer::start_custom(Limits::default(), None, &tokens_config(""), options).await;
    let channel = server.channel().await;
    let mut registry = RegistryServiceClient::new(channel.clone());
    let apply =
        pb::ApplyRequest { documents: example_documents(), expected_version: 0, applied_by: String::new() };
    registry.apply(with_token(apply, Some(ADMIN))).await.unwrap();

    let meta = put_spine(channel.clone(), Some(ALICE)).await.unwrap();
    let ticket = meta["ticket"].as_str().unwrap().to_string();
    let hex = ticket.strip_prefix("ts-").unwrap();
    assert!(hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()), "{ticket}");
    let again = put_spine(channel.clone(), Some(ALICE)).await.unwrap();
    assert_ne!(again["ticket"], meta["ticket"]);
    // No server path in the reply.
    let text = meta.to_string();
    let root = server.dir.path().display().to_string();
    assert!(!text.contains(&root) && !text.contains("\"/"), "a server path leaked: {text}");
    assert_eq!(meta["manifest"]["spine_path"], "spine.parquet");
    assert_eq!(meta["manifest"]["output_path"], "training_set.parquet");
    assert_eq!(meta["manifest"]["views"][0]["table"], "offline_store/driver_stats");
    // The set, its manifest (as the client got it) and its record are in the offline store.
    let stored = server.dir.path().join("offline/.quiver/training_sets").join(&ticket);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(stored.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest, meta["manifest"]);
    assert!(stored.join("training_set.parquet").is_file() && stored.join("set.json").is_file());

    // Uploads need a writer; a reader is refused, nobody anonymous gets in.
    let anonymous = put_spine(channel.clone(), None).await.unwrap_err();
    assert!(anonymous.contains("needs a token with role writer"), "{anonymous}");
    let reader = put_spine(channel.clone(), Some(READER)).await.unwrap_err();
    assert!(reader.contains("needs role writer"), "{reader}");

    // Only the uploader fetches it; the others cannot tell it exists.
    assert_eq!(get_set(channel.clone(), &ticket, Some(ALICE)).await, Ok(2));
    for other in [Some(BOB), None, Some(ADMIN)] {
        let e = get_set(channel.clone(), &ticket, other).await.unwrap_err();
        assert!(e.contains("no training set with this ticket"), "{other:?}: {e}");
    }
    // After the ticket lifetime it is gone, files included: the sweep deletes data,
    // manifest and record.
    tokio::time::sleep(Duration::from_millis(6500)).await;
    server.app.project().training().sweep().await.unwrap();
    for name in ["set.json", "training_set.parquet", "manifest.json"] {
        assert!(!stored.join(name).exists(), "{name} left after the sweep");
    }
    let e = get_set(channel.clone(), &ticket, Some(ALICE)).await.unwrap_err();
    assert!(e.contains("no training set with this ticket"), "{e}");
    assert!(!server.app.project().work_dir().join("training_sets").join(&ticket).exists());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_deletes_only_training_sets_it_made_and_never_shares_a_work_folder() {
    let redis = quiver_testkit::redis::RedisServer::start();
    let (dir, config) = project(&redis.url());
    let work = dir.path().join("work");
    let sets = work.join("training_sets");
    let leftover = sets.join(format!("ts-{}", "a".repeat(32)));
    let unmarked = sets.join(format!("ts-{}", "b".repeat(32)));
    let users = sets.join("my-notes");
    for d in [&leftover, &unmarked, &users] {
        std::fs::create_dir_all(d).unwrap();
        std::fs::write(d.join("data.txt"), "keep me").unwrap();
    }
    std::fs::write(leftover.join(".quiver-training-set"), "").unwrap();

    let app = quiver_server::App::open(config.clone(), 256 << 20, None, work.clone()).await.unwrap();
    assert!(leftover.exists(), "nothing is deleted before the server owns its port");
    // A second server on the same folder is refused and deletes nothing.
    let second = quiver_server::App::open(config.clone(), 256 << 20, None, work.clone()).await;
    let e = quiver_server::error::to_status(second.err().expect("a second server on one work folder"));
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("in use by another"), "{}", e.message());
    assert!(leftover.exists() && unmarked.exists() && users.exists());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(quiver_server::serve(app.clone(), listener, Limits::default(), async move {
        let _ = stopped.await;
    }));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while leftover.exists() {
        assert!(std::time::Instant::now() < deadline, "the leftover set was never deleted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(unmarked.join("data.txt").exists(), "a folder without the marker is not Quiver's");
    assert!(users.join("data.txt").exists(), "a user's folder is not Quiver's");
    let _ = stop.send(());
    serving.await.unwrap().unwrap();
    drop(app);
}

/// A DoPut that sends its first message and then nothing, never finishing.
async fn stalled_upload(channel: Channel) -> tonic::Status {
    let mut flight = FlightClient::new(channel);
    let spine = driver_spine(&[(1001, "2026-01-01T12:00:00Z")]);
    let command = serde_json::json!({"features": ["driver_stats:conv_rate"]});
    let first: Vec<_> = arrow_flight::encode::FlightDataEncoderBuilder::new()
        .with_flight_descriptor(Some(FlightDescriptor::new_cmd(command.to_string())))
        .build(futures::stream::iter([Ok(spine)]))
        .collect()
        .await;
    let stream = futures::stream::iter(first.into_iter().take(1)).chain(futures::stream::pending());
    match flight.do_put(stream).await {
        Ok(mut results) => match results.next().await {
            Some(Err(arrow_flight::error::FlightError::Tonic(s))) => *s,
            other => panic!("a stalled upload answered {other:?}"),
        },
        Err(arrow_flight::error::FlightError::Tonic(s)) => *s,
        Err(other) => panic!("{other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_holding_uploads_open_locks_nobody_else_out() {
    let limits = Limits {
        max_uploads_per_connection: 2,
        upload_idle_timeout: Duration::from_secs(5),
        ..Limits::default()
    };
    let mut server = TestServer::start_with(limits, None).await;
    let attacker = server.channel().await;
    apply_example(attacker.clone()).await;
    let uploads: Vec<_> = (0..10).map(|_| tokio::spawn(stalled_upload(attacker.clone()))).collect();
    // While they hang, another client reads online and lists the registry.
    let other = server.channel().await;
    for _ in 0..5 {
        assert!(online(other.clone(), &["driver_stats:conv_rate"], &[1001], 0).await.is_ok());
        let mut registry = RegistryServiceClient::new(other.clone());
        assert!(registry.history(pb::HistoryRequest {}).await.is_ok());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut codes = Vec::new();
    for u in uploads {
        let status = u.await.unwrap();
        if status.code() == Code::ResourceExhausted {
            assert!(status.message().contains("limit per connection"), "{}", status.message());
        } else {
            assert!(status.message().contains("upload idle timeout"), "{}", status.message());
        }
        codes.push(status.code());
    }
    let idle = codes.iter().filter(|c| **c == Code::DeadlineExceeded).count();
    let refused = codes.iter().filter(|c| **c == Code::ResourceExhausted).count();
    assert_eq!((idle, refused), (2, 8), "{codes:?}");
    let text = metrics_text(&server.app).await;
    assert!(text.contains(r#"quiver_grpc_rejected_total{reason="connection"} 8"#), "{text}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_capped_and_idle_ones_are_closed() {
    use tokio::io::AsyncReadExt;
    let limits = Limits { max_connections: 2, idle_timeout: Duration::from_secs(1), ..Limits::default() };
    let mut server = TestServer::start_with(limits, None).await;
    // An idle connection (no call, not even an HTTP/2 preface) is closed by the server.
    let mut idle = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut buf = [0u8; 64];
    // The server's HTTP/2 settings arrive first; then the close.
    let closed = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(n) = idle.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the idle connection stayed open");
    drop(idle);
    // Two held connections fill the cap; a third is closed at once.
    let held = [
        tokio::net::TcpStream::connect(server.addr).await.unwrap(),
        tokio::net::TcpStream::connect(server.addr).await.unwrap(),
    ];
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    // Closed before any byte (the held two get the server's HTTP/2 settings; this one not).
    let read = tokio::time::timeout(Duration::from_millis(900), third.read(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(0) | Err(_))), "the third connection was not closed at once: {read:?}");
    drop(held);
    // Slots come back.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let mut registry = RegistryServiceClient::new(server.channel().await);
        if registry.history(pb::HistoryRequest {}).await.is_ok() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no connection slot came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let text = metrics_text(&server.app).await;
    assert!(text.contains(r#"quiver_grpc_rejected_total{reason="connections"}"#), "{text}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_to_unknown_methods_share_one_metrics_label() {
    let mut server = TestServer::start().await;
    let channel = server.channel().await;
    for i in 0..300 {
        let mut grpc = tonic::client::Grpc::new(channel.clone());
        grpc.ready().await.unwrap();
        let path = http::uri::PathAndQuery::try_from(format!("/x.Svc{i}/M{i}")).unwrap();
        let codec = tonic_prost::ProstCodec::<pb::HistoryRequest, pb::HistoryResponse>::default();
        let e = grpc.unary(tonic::Request::new(pb::HistoryRequest {}), path, codec).await.unwrap_err();
        assert_eq!(e.code(), Code::Unimplemented);
    }
    let text = metrics_text(&server.app).await;
    assert!(text.contains(r#"quiver_grpc_calls_total{code="Unimplemented",method="unknown"} 300"#), "{text}");
    assert!(!text.contains("Svc1"), "a path became a label");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_decide_who_may_plan_apply_push_and_read() {
    let config = tokens_config("  reads_need_token: true\n");
    let mut server = TestServer::start_custom(Limits::default(), None, &config, |_| {}).await;
    let channel = server.channel().await;
    let mut registry = RegistryServiceClient::new(channel.clone());
    let plan = || pb::PlanRequest { documents: example_documents() };
    assert_eq!(registry.plan(with_token(plan(), None)).await.unwrap_err().code(), Code::Unauthenticated);
    let e = registry.plan(with_token(plan(), Some(ALICE))).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(
        e.message().contains("needs role admin") && e.message().contains("'alice' has role writer"),
        "{}",
        e.message()
    );
    assert!(registry.plan(with_token(plan(), Some(ADMIN))).await.is_ok());
    // Apply records the token's name, not what the request claims.
    let apply = pb::ApplyRequest {
        documents: example_documents(),
        expected_version: 0,
        applied_by: "mallory".into(),
    };
    assert_eq!(
        registry.apply(with_token(apply.clone(), Some(BOB))).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    let mut lower = tonic::Request::new(apply);
    lower.metadata_mut().insert("authorization", format!("bearer {ADMIN}").parse().unwrap());
    assert!(registry.apply(lower).await.unwrap().into_inner().applied);
    let history =
        registry.history(with_token(pb::HistoryRequest {}, Some(READER))).await.unwrap().into_inner();
    assert_eq!(history.versions.last().unwrap().applied_by, "ops");
    // Reads need a token here; a reader's is enough; a writer cannot push as a reader.
    assert_eq!(registry.history(pb::HistoryRequest {}).await.unwrap_err().code(), Code::Unauthenticated);
    let mut push = pb::push_service_client::PushServiceClient::new(channel.clone());
    let request = pb::PushRequest { feature_view: "driver_stats".into(), arrow_ipc: vec![], to: 1 };
    assert_eq!(
        push.push(with_token(request.clone(), Some(READER))).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    assert_eq!(
        push.push(with_token(request, Some(ALICE))).await.unwrap_err().code(),
        Code::InvalidArgument,
        "past auth"
    );
    // Health checks stay open for probes.
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    assert!(health.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await.is_ok());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_speaks_v1_and_v1alpha_and_lists_every_service() {
    let mut server = TestServer::start().await;
    let channel = server.channel().await;
    let expected = [
        "arrow.flight.protocol.FlightService",
        "grpc.health.v1.Health",
        "quiver.v1.MaterializeService",
        "quiver.v1.OfflineService",
        "quiver.v1.OnlineService",
        "quiver.v1.PushService",
        "quiver.v1.RegistryService",
    ];
    {
        use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
        use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
        let mut client = ServerReflectionClient::new(channel.clone());
        let asks = [
            MessageRequest::ListServices(String::new()),
            MessageRequest::FileContainingSymbol("arrow.flight.protocol.FlightService".into()),
        ];
        let requests = futures::stream::iter(
            asks.map(|m| ServerReflectionRequest { host: String::new(), message_request: Some(m) }),
        );
        let answers: Vec<_> =
            client.server_reflection_info(requests).await.unwrap().into_inner().try_collect().await.unwrap();
        let Some(MessageResponse::ListServicesResponse(list)) = &answers[0].message_response else {
            panic!("{answers:?}")
        };
        let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
        for name in expected {
            assert!(names.contains(&name), "v1alpha lacks {name}: {names:?}");
        }
        let Some(MessageResponse::FileDescriptorResponse(files)) = &answers[1].message_response else {
            panic!("{answers:?}")
        };
        assert!(!files.file_descriptor_proto.is_empty());
    }
    {
        use tonic_reflection::pb::v1::ServerReflectionRequest;
        use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
        let mut client = ServerReflectionClient::new(channel.clone());
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let answers: Vec<_> = client
            .server_reflection_info(futures::stream::iter([request]))
            .await
            .unwrap()
            .into_inner()
            .try_collect()
            .await
            .unwrap();
        let Some(MessageResponse::ListServicesResponse(list)) = &answers[0].message_response else {
            panic!("{answers:?}")
        };
        let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
        for name in expected {
            assert!(names.contains(&name), "v1 lacks {name}: {names:?}");
        }
    }
    server.shutdown().await;
}

/// Connects over TLS trusting `ca`, optionally presenting a client certificate.
async fn tls_channel(
    server: &TestServer,
    ca: Option<&[u8]>,
    identity: Option<Identity>,
) -> Result<Channel, String> {
    let mut tls = ClientTlsConfig::new().domain_name("localhost");
    if let Some(ca) = ca {
        tls = tls.ca_certificate(Certificate::from_pem(ca));
    }
    if let Some(id) = identity {
        tls = tls.identity(id);
    }
    let endpoint = Channel::from_shared(format!("https://localhost:{}", server.addr.port()))
        .unwrap()
        .tls_config(tls)
        .map_err(|e| e.to_string())?;
    endpoint.connect().await.map_err(|e| format!("{e:?}"))
}

async fn healthy(channel: Channel) -> bool {
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    health.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_clients_that_trust_its_ca_and_mutual_tls_wants_their_certificate() {
    let certs = quiver_testkit::tls::TestCerts::generate();
    let tls = |client_ca: bool| {
        let mut s = format!(
            "server:\n  tls:\n    cert: {}\n    key: {}\n",
            certs.server_cert().display(),
            certs.server_key().display()
        );
        if client_ca {
            s.push_str(&format!("    client_ca: {}\n", certs.ca().display()));
        }
        s
    };
    let mut server = TestServer::start_custom(Limits::default(), None, &tls(false), |_| {}).await;
    let ca = certs.read("ca.pem");
    assert!(healthy(tls_channel(&server, Some(&ca), None).await.unwrap()).await, "a client trusting the CA");
    let untrusting = tls_channel(&server, Some(&certs.read("other-ca.pem")), None).await;
    assert!(!matches!(untrusting, Ok(c) if healthy(c.clone()).await), "a client trusting another CA got in");
    let plain = Channel::from_shared(format!("http://{}", server.addr)).unwrap().connect().await;
    assert!(!matches!(plain, Ok(c) if healthy(c.clone()).await), "a plaintext client got in");
    server.shutdown().await;

    let mut server = TestServer::start_custom(Limits::default(), None, &tls(true), |_| {}).await;
    let without = tls_channel(&server, Some(&ca), None).await;
    assert!(
        !matches!(without, Ok(c) if healthy(c.clone()).await),
        "mutual TLS let a client without a certificate in"
    );
    let identity = Identity::from_pem(certs.read("client.pem"), certs.read("client.key"));
    assert!(healthy(tls_channel(&server, Some(&ca), Some(identity)).await.unwrap()).await);
    server.shutdown().await;
}

/// Sends bytes as they are: a client whose messages are not the method's protobuf.
#[derive(Clone, Copy, Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }
    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut tonic::codec::EncodeBuf<'_>) -> Result<(), tonic::Status> {
        bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        let n = bytes::Buf::remaining(src);
        Ok(Some(bytes::Buf::copy_to_bytes(src, n).to_vec()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_requests_are_the_callers_error_not_the_servers() {
    let mut server = TestServer::start().await;
    let mut grpc = tonic::client::Grpc::new(server.channel().await);
    for method in
        ["/quiver.v1.OnlineService/GetOnlineFeatures", "/quiver.v1.RegistryService/ListFeatureViews"]
    {
        grpc.ready().await.unwrap();
        // Field 1 with wire type 7, which protobuf does not have.
        let garbage = vec![0x0f, 0xff, 0xff, 0xff, 0xff];
        let path = http::uri::PathAndQuery::from_static(method);
        let e = grpc.unary(tonic::Request::new(garbage), path, RawCodec).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{method}: {e:?}");
        assert!(e.message().contains("not a valid message"), "{}", e.message());
    }
    server.shutdown().await;
}
