//! End-to-end: `quiver serve` in-process on a free port, its own Redis, and the tonic
//! clients generated from `proto/` calling every RPC over TCP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use arrow_flight::{FlightClient, FlightDescriptor};
use common::*;
use datafusion::arrow::array::{
    Array, AsArray, Float32Array, Int64Array, RecordBatch, TimestampNanosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, TimeUnit};
use futures::TryStreamExt;
use quiver_server::pb;
use quiver_server::pb::materialize_service_client::MaterializeServiceClient;
use quiver_server::pb::offline_service_client::OfflineServiceClient;
use quiver_server::pb::push_service_client::PushServiceClient;
use quiver_server::pb::registry_service_client::RegistryServiceClient;
use std::sync::Arc;
use tonic::Code;

fn int(v: &pb::Value) -> Option<i64> {
    match v.kind {
        Some(pb::value::Kind::Int64Value(x)) => Some(x),
        _ => None,
    }
}

/// Reads a training set streamed by GetHistoricalFeatures: the batches and the manifest.
async fn historical(
    client: &mut OfflineServiceClient<tonic::transport::Channel>,
    spine: &RecordBatch,
    refs: &[&str],
) -> Result<(Vec<RecordBatch>, pb::TrainingSetManifest), tonic::Status> {
    let mut stream = client
        .get_historical_features(pb::GetHistoricalFeaturesRequest {
            kind: Some(pb::get_historical_features_request::Kind::Features(pb::FeatureList {
                refs: refs.iter().map(|s| s.to_string()).collect(),
            })),
            spine_arrow_ipc: ipc(std::slice::from_ref(spine)),
            full_feature_names: false,
            timestamp_column: String::new(),
        })
        .await?
        .into_inner();
    let mut bytes = Vec::new();
    let mut manifest = None;
    while let Some(part) = stream.message().await? {
        match part.part {
            Some(pb::get_historical_features_response::Part::ArrowIpc(b)) => bytes.extend(b),
            Some(pb::get_historical_features_response::Part::Manifest(m)) => manifest = Some(m),
            None => panic!("empty part"),
        }
    }
    let reader =
        datafusion::arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None).unwrap();
    let batches = reader.collect::<Result<Vec<_>, _>>().unwrap();
    Ok((batches, manifest.expect("the manifest comes last")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_over_the_network() {
    let mut server = TestServer::start().await;
    let channel = server.channel().await;
    let mut registry = RegistryServiceClient::new(channel.clone());

    // Plan against an empty registry: everything is added.
    let plan = registry.plan(pb::PlanRequest { documents: example_documents() }).await.unwrap().into_inner();
    assert_eq!(plan.registry_version, 0);
    assert!(plan.changes.iter().any(|c| c.name == "driver_stats" && c.action() == pb::ChangeAction::Added));
    // Invalid definitions: INVALID_ARGUMENT naming the file and problem.
    let bad = registry
        .plan(pb::PlanRequest {
            documents: vec![pb::YamlDocument {
                name: "broken.yaml".into(),
                content: "feature_views:\n  - name: v\n    entities: [nobody]\n".into(),
            }],
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().contains("broken.yaml"), "{}", bad.message());

    assert_eq!(apply_example(channel.clone()).await, 1);
    // A stale compare-and-swap: ABORTED, nothing written.
    let stale = registry
        .apply(pb::ApplyRequest {
            documents: example_documents(),
            expected_version: 0,
            applied_by: "t".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted, "{}", stale.message());
    // Same definitions again at the right version: nothing to apply.
    let same = registry
        .apply(pb::ApplyRequest {
            documents: example_documents(),
            expected_version: 1,
            applied_by: "t".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!same.applied);
    assert_eq!(same.version, 1);

    let entities = registry.list_entities(pb::ListRequest::default()).await.unwrap().into_inner();
    assert!(entities.entities.iter().any(|e| e.name == "driver_city" && e.join_keys.len() == 2));
    let sources = registry.list_sources(pb::ListRequest::default()).await.unwrap().into_inner();
    assert!(sources.sources.iter().any(|s| s.format == "csv"));
    let views =
        registry.list_feature_views(pb::ListRequest { registry_version: 1 }).await.unwrap().into_inner();
    assert_eq!(views.registry_version, 1);
    assert!(views.feature_views.len() >= 5);
    let services = registry.list_feature_services(pb::ListRequest::default()).await.unwrap().into_inner();
    assert!(services.feature_services.iter().all(|s| !s.resolved_features.is_empty()));
    let view = registry
        .get_feature_view(pb::GetFeatureViewRequest { name: "driver_stats".into(), registry_version: 0 })
        .await
        .unwrap()
        .into_inner()
        .feature_view
        .unwrap();
    assert_eq!(view.ttl_seconds, 7200);
    assert_eq!(view.join_keys[0].name, "driver_id");
    assert_eq!(
        view.features.iter().map(|f| f.dtype.as_str()).collect::<Vec<_>>(),
        ["float32", "float32", "int64"]
    );
    assert!(!view.hash.is_empty());
    let missing = registry
        .get_feature_view(pb::GetFeatureViewRequest { name: "driver_stat".into(), registry_version: 0 })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    assert!(missing.message().contains("driver_stats"), "suggests the close name: {}", missing.message());
    let history = registry.history(pb::HistoryRequest {}).await.unwrap().into_inner();
    assert_eq!(history.versions.len(), 1);
    assert_eq!(history.versions[0].applied_by, "test");

    // Materialize in the background; a second job for a view the first holds is refused
    // while the first runs.
    let mut jobs = MaterializeServiceClient::new(channel.clone());
    let window = pb::start_materialization_request::Span::Window(pb::Window {
        start_ns: ns(DATA_START),
        end_ns: ns("2026-01-04T00:00:00Z"),
    });
    let first = jobs
        .start(pb::StartMaterializationRequest { span: Some(window), views: vec![] })
        .await
        .unwrap()
        .into_inner();
    let second = jobs
        .start(pb::StartMaterializationRequest { span: Some(window), views: vec!["driver_stats".into()] })
        .await;
    match second {
        Err(e) => {
            assert_eq!(e.code(), Code::FailedPrecondition);
            assert!(e.message().contains(&first.id), "{}", e.message());
        }
        Ok(_) => {
            let f =
                jobs.get(pb::GetMaterializationRequest { id: first.id.clone() }).await.unwrap().into_inner();
            assert_ne!(f.finished_at_ns, 0, "a second job ran while the first still held the view");
        }
    }
    let done = wait_for_job(&mut jobs, &first.id).await;
    assert_eq!(done.state(), pb::JobState::Succeeded, "{done:?}");
    let stats = done.views.iter().find(|v| v.view == "driver_stats").unwrap();
    assert_eq!(stats.state(), pb::ViewRunState::Succeeded);
    assert_eq!(stats.rows_done, 2_000);
    assert!(stats.offline_version.is_some() && stats.online_rows == 20, "{stats:?}");
    let listed = jobs.list(pb::ListMaterializationsRequest {}).await.unwrap().into_inner();
    assert!(listed.jobs.iter().any(|j| j.id == first.id));
    let unknown = jobs.get(pb::GetMaterializationRequest { id: "nope".into() }).await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let bad_view = jobs
        .start(pb::StartMaterializationRequest { span: Some(window), views: vec!["nope".into()] })
        .await
        .unwrap_err();
    assert_eq!(bad_view.code(), Code::NotFound);

    // Online: the gRPC answer equals the domain read on the same store.
    let refs = ["driver_stats:conv_rate", "driver_stats:avg_daily_trips", "driver_profile:vehicle_type"];
    let at = ns("2026-01-02T23:00:00Z");
    let answer = online(channel.clone(), &refs, &[1001, 1002, 999_999], at).await.unwrap();
    assert_eq!(answer.feature_names, refs);
    assert_eq!(answer.registry_version, 1);
    let snapshot = server.app.project().current().unwrap();
    let feature_refs: Vec<_> =
        refs.iter().map(|r| quiver_core::definitions::FeatureRef::parse(r).unwrap()).collect();
    let rows: Vec<_> = [1001i64, 1002, 999_999]
        .iter()
        .map(|d| std::iter::once(("driver_id".to_string(), quiver_online::value::Value::Int64(*d))).collect())
        .collect();
    let direct = quiver_online::read::get_online_features(
        server.app.project().online().as_ref(),
        &snapshot.definitions,
        &feature_refs,
        &rows[..],
        at,
    )
    .await
    .unwrap();
    for (i, row) in direct.rows.iter().enumerate() {
        for (f, fv) in row.iter().enumerate() {
            let column = &answer.results[f];
            assert_eq!(quiver_server::convert::value_from_pb(&column.values[i]), fv.value);
            assert_eq!(column.event_timestamps_ns[i], fv.event_ns.unwrap_or(0));
        }
    }
    assert_eq!(answer.results[0].statuses[2], pb::FeatureStatus::NotFound as i32);
    assert!(answer.results[2].statuses[..2].iter().all(|s| *s == pb::FeatureStatus::Present as i32));
    // The Arrow answer holds the same values, statuses and event times, column by column.
    let columnar = online_as(channel.clone(), &refs, &[1001, 1002, 999_999], at, true).await.unwrap();
    assert!(columnar.results.is_empty());
    assert_eq!(columnar.feature_names, refs);
    let mut reader = datafusion::arrow::ipc::reader::StreamReader::try_new(
        std::io::Cursor::new(&columnar.arrow_ipc),
        None,
    )
    .unwrap();
    let batch = reader.next().unwrap().unwrap();
    assert!(reader.next().is_none(), "one record batch");
    assert_eq!(batch.num_rows(), 3);
    assert_eq!(batch.num_columns(), refs.len() * 3);
    for (f, name) in refs.iter().enumerate() {
        let values = batch.column_by_name(name).unwrap();
        let statuses = datafusion::arrow::compute::cast(
            batch.column_by_name(&format!("{name}:status")).unwrap(),
            &datafusion::arrow::datatypes::DataType::Utf8,
        )
        .unwrap();
        let statuses = statuses.as_any().downcast_ref::<datafusion::arrow::array::StringArray>().unwrap();
        let times = batch
            .column_by_name(&format!("{name}:event_timestamp"))
            .unwrap()
            .as_any()
            .downcast_ref::<datafusion::arrow::array::TimestampNanosecondArray>()
            .unwrap();
        for (i, row) in direct.rows.iter().enumerate() {
            let fv = &row[f];
            let status = pb::FeatureStatus::try_from(answer.results[f].statuses[i]).unwrap();
            assert_eq!(statuses.value(i), status.as_str_name(), "{name} row {i}");
            assert_eq!(times.is_null(i), fv.event_ns.is_none(), "{name} row {i}");
            assert_eq!(if times.is_null(i) { 0 } else { times.value(i) }, fv.event_ns.unwrap_or(0));
            let cell = datafusion::common::ScalarValue::try_from_array(values, i).unwrap();
            let expected = match &fv.value {
                quiver_online::value::Value::Null => "NULL".to_string(),
                quiver_online::value::Value::String(s) => s.clone(),
                other => other.to_json().to_string(),
            };
            assert_eq!(
                if cell.is_null() { "NULL".to_string() } else { cell.to_string() },
                expected,
                "{name} row {i}"
            );
        }
    }
    // A day later driver_stats (ttl 2h) is too old; driver_profile (no ttl) is not.
    let later = online(channel.clone(), &refs, &[1001], ns("2026-01-05T00:00:00Z")).await.unwrap();
    assert_eq!(later.results[0].statuses[0], pb::FeatureStatus::OutsideMaxAge as i32);
    assert_eq!(later.results[0].values[0].kind, None);
    assert_eq!(later.results[2].statuses[0], pb::FeatureStatus::Present as i32);
    // Unknown feature: NOT_FOUND naming it; wrong key type: INVALID_ARGUMENT.
    let e = online(channel.clone(), &["driver_stats:nope"], &[1001], 0).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(e.message().contains("nope"), "{}", e.message());
    let mut client = pb::online_service_client::OnlineServiceClient::new(channel.clone());
    let mut entities = HashMap::new();
    entities.insert(
        "driver_id".to_string(),
        pb::RepeatedValue {
            values: vec![pb::Value { kind: Some(pb::value::Kind::StringValue("x".into())) }],
        },
    );
    let e = client
        .get_online_features(pb::GetOnlineFeaturesRequest {
            kind: Some(pb::get_online_features_request::Kind::Features(pb::FeatureList {
                refs: vec!["driver_stats".into()],
            })),
            entities,
            at_ns: 0,
            arrow: false,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("driver_id"), "{}", e.message());

    // Historical over gRPC: same rows, same order, spine columns first, then features.
    let mut offline = OfflineServiceClient::new(channel.clone());
    let spine = driver_spine(&[
        (1003, "2026-01-02T12:00:00Z"),
        (1001, "2026-01-01T06:00:00Z"),
        (1001, "2025-12-01T00:00:00Z"),
        (424_242, "2026-01-02T00:00:00Z"),
    ]);
    let (batches, manifest) =
        historical(&mut offline, &spine, &["driver_stats:conv_rate", "driver_stats:avg_daily_trips"])
            .await
            .unwrap();
    let table = datafusion::arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
    assert_eq!(table.num_rows(), 4);
    let names: Vec<_> = table.schema().fields().iter().map(|f| f.name().clone()).collect();
    assert_eq!(names, ["driver_id", "event_timestamp", "label", "conv_rate", "avg_daily_trips"]);
    assert_eq!(table.column(0).as_primitive::<Int64Type>().values(), &[1003, 1001, 1001, 424_242]);
    let conv = table.column(3).as_any().downcast_ref::<Float32Array>().unwrap();
    assert!(conv.is_valid(0) && conv.is_valid(1), "known drivers inside the ttl have values");
    assert!(conv.is_null(2) && conv.is_null(3), "before any data and unknown keys are null");
    assert_eq!(manifest.rows, 4);
    assert_eq!(manifest.registry_version, 1);
    assert!(manifest.table_versions.contains_key("driver_stats"));
    let json: serde_json::Value = serde_json::from_str(&manifest.manifest_json).unwrap();
    assert_eq!(json["spine_rows"], 4);
    // Spine without the join key: INVALID_ARGUMENT naming it, before any data.
    let no_key = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new(
            "event_timestamp",
            DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            false,
        )])),
        vec![Arc::new(TimestampNanosecondArray::from(vec![ns(DATA_START)]).with_timezone("UTC"))],
    )
    .unwrap();
    let e = historical(&mut offline, &no_key, &["driver_stats:conv_rate"]).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("driver_id"), "{}", e.message());

    // Arrow Flight: DoPut the spine, DoGet the training set, same as gRPC.
    let mut flight = FlightClient::new(channel.clone());
    let command = serde_json::json!({"features": ["driver_stats:conv_rate", "driver_stats:avg_daily_trips"]});
    let descriptor = FlightDescriptor::new_cmd(command.to_string());
    let data = arrow_flight::encode::FlightDataEncoderBuilder::new()
        .with_flight_descriptor(Some(descriptor))
        .build(futures::stream::iter([Ok(spine.clone())]));
    let results: Vec<_> = flight.do_put(data).await.unwrap().try_collect().await.unwrap();
    let meta: serde_json::Value = serde_json::from_slice(&results[0].app_metadata).unwrap();
    assert_eq!(meta["rows"], 4);
    let ticket = meta["ticket"].as_str().unwrap().to_string();
    let fetched: Vec<RecordBatch> =
        flight.do_get(arrow_flight::Ticket::new(ticket.clone())).await.unwrap().try_collect().await.unwrap();
    let fetched = datafusion::arrow::compute::concat_batches(&fetched[0].schema(), &fetched).unwrap();
    assert_eq!(fetched.columns()[3..], table.columns()[3..], "Flight and gRPC give the same features");
    let info = flight
        .get_flight_info(FlightDescriptor::new_path(vec!["training_sets".into(), ticket]))
        .await
        .unwrap();
    assert_eq!(info.total_records, 4);
    let gone = flight.do_get(arrow_flight::Ticket::new("ts-nope")).await.err().unwrap();
    assert!(gone.to_string().contains("no training set with this ticket"), "{gone}");

    // Push: a newer row replaces the online value; an older one does not; bad schema is
    // refused naming the column.
    let mut push = PushServiceClient::new(channel.clone());
    let pushed_us = |event_us: i64, trips: i64| {
        DriverStats { event: event_us, unit: TimeUnit::Microsecond, trips, ..DriverStats::at(1001, 0) }
            .batch()
    };
    let pushed = |event: &str, trips: i64| pushed_us(ns(event) / 1000, trips);
    // Event times a value could never be replaced after (beyond 2262, or days ahead) are
    // refused with the row's position; nothing is written.
    let day_us = 86_400_000_000i64;
    let now_us = chrono::Utc::now().timestamp_micros();
    for (event_us, says) in [
        (253_402_214_400_000_000i64, "outside the range Quiver keeps"), // 9999-12-31
        (9_300_000_000_000_000, "outside the range Quiver keeps"),      // 2264
        (now_us + day_us, "in the future"),
    ] {
        let refused = push
            .push(pb::PushRequest {
                feature_view: "driver_stats".into(),
                arrow_ipc: ipc(&[pushed("2026-01-03T09:00:00Z", 1), pushed_us(event_us, 2)]),
                to: pb::PushTarget::OnlineAndOffline as i32,
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument);
        assert!(
            refused.message().contains("pushed row 1 ") && refused.message().contains(says),
            "{}",
            refused.message()
        );
    }
    let newer = push
        .push(pb::PushRequest {
            feature_view: "driver_stats".into(),
            arrow_ipc: ipc(&[pushed("2026-01-03T10:00:00Z", 777)]),
            to: pb::PushTarget::OnlineAndOffline as i32,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((newer.rows, newer.online_rows_written), (1, 1));
    assert!(newer.offline_version > stats.offline_version);
    let read =
        online(channel.clone(), &["driver_stats:avg_daily_trips"], &[1001], ns("2026-01-03T11:00:00Z"))
            .await
            .unwrap();
    assert_eq!(int(&read.results[0].values[0]), Some(777));
    let older = push
        .push(pb::PushRequest {
            feature_view: "driver_stats".into(),
            arrow_ipc: ipc(&[pushed("2026-01-01T00:30:00Z", 1)]),
            to: pb::PushTarget::Online as i32,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(older.online_rows_written, 0, "an older row never replaces a newer one");
    let read =
        online(channel.clone(), &["driver_stats:avg_daily_trips"], &[1001], ns("2026-01-03T11:00:00Z"))
            .await
            .unwrap();
    assert_eq!(int(&read.results[0].values[0]), Some(777));
    // The offline push is visible to training at its time.
    let (after, _) = historical(
        &mut offline,
        &driver_spine(&[(1001, "2026-01-03T10:30:00Z")]),
        &["driver_stats:avg_daily_trips"],
    )
    .await
    .unwrap();
    assert_eq!(after[0].column(3).as_primitive::<Int64Type>().value(0), 777);
    let short = push
        .push(pb::PushRequest {
            feature_view: "driver_stats".into(),
            arrow_ipc: ipc(&[pushed("2026-01-03T10:00:00Z", 1).project(&[0, 1, 2]).unwrap()]),
            to: pb::PushTarget::Online as i32,
        })
        .await
        .unwrap_err();
    assert_eq!(short.code(), Code::InvalidArgument);
    assert!(short.message().contains("acc_rate"), "{}", short.message());
    let nowhere = push
        .push(pb::PushRequest { feature_view: "driver_stats".into(), arrow_ipc: vec![], to: 0 })
        .await
        .unwrap_err();
    assert_eq!(nowhere.code(), Code::InvalidArgument);

    // Health and reflection.
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let status = health
        .check(tonic_health::pb::HealthCheckRequest { service: "quiver.v1.OnlineService".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.status(), tonic_health::pb::health_check_response::ServingStatus::Serving);

    // Metrics: calls per method and code, and per-view freshness after materialization.
    let text = metrics_text(&server.app).await;
    assert!(
        text.contains(r#"quiver_grpc_calls_total{code="Ok",method="OnlineService/GetOnlineFeatures"}"#),
        "{text}"
    );
    assert!(text.contains(
        r#"quiver_grpc_calls_total{code="InvalidArgument",method="OnlineService/GetOnlineFeatures"} 1"#
    ));
    assert!(
        text.contains(
            r#"quiver_grpc_calls_total{code="NotFound",method="OnlineService/GetOnlineFeatures"} 1"#
        )
    );
    assert!(text.contains(r#"quiver_view_freshness_seconds{view="driver_stats"}"#), "{text}");
    assert!(text.contains(r#"quiver_view_last_materialization_rows{view="driver_stats"} 2000"#), "{text}");
    // The example's rates are between 0 and 1: nothing broke. The sample lake leaves some
    // values null, which the run's statistics count.
    assert!(
        text.contains(r#"quiver_view_last_materialization_expectations_broken{view="driver_stats"} 0"#),
        "{text}"
    );
    let nulls = text
        .lines()
        .find(|l| l.starts_with(r#"quiver_feature_null_fraction{feature="conv_rate",view="driver_stats"}"#))
        .unwrap_or_else(|| panic!("no null fraction of conv_rate:\n{text}"));
    let fraction: f64 = nulls.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(fraction > 0.0 && fraction < 0.5, "{nulls}");
    assert!(text.contains("quiver_grpc_call_seconds_bucket"));
    // The training sets above read Parquet footers into the session's bounded cache.
    let gauge = |name: &str| -> f64 {
        let line = text.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no {name}:\n{text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let held = gauge(r#"quiver_offline_cache_bytes{cache="file_metadata"}"#);
    let limit = gauge(r#"quiver_offline_cache_limit_bytes{cache="file_metadata"}"#);
    assert!(held > 0.0 && held <= limit, "{held} of {limit}");

    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writing_calls_need_the_token_and_reads_do_not() {
    let mut server = TestServer::start_with(quiver_server::Limits::default(), Some("s3cret")).await;
    let channel = server.channel().await;
    let mut registry = RegistryServiceClient::new(channel.clone());
    let request =
        || pb::ApplyRequest { documents: example_documents(), expected_version: 0, applied_by: "t".into() };
    let e = registry.apply(request()).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    assert!(e.message().contains("Bearer"), "{}", e.message());
    let mut wrong = tonic::Request::new(request());
    wrong.metadata_mut().insert("authorization", "Bearer nope".parse().unwrap());
    assert_eq!(registry.apply(wrong).await.unwrap_err().code(), Code::Unauthenticated);
    let mut jobs = MaterializeServiceClient::new(channel.clone());
    let e = jobs
        .start(pb::StartMaterializationRequest {
            span: Some(pb::start_materialization_request::Span::Incremental(pb::Incremental { end_ns: 1 })),
            views: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    let mut push = PushServiceClient::new(channel.clone());
    let e = push
        .push(pb::PushRequest { feature_view: "driver_stats".into(), arrow_ipc: vec![], to: 1 })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    // Nothing was applied by the refused calls.
    assert!(server.app.project().registry().head().await.unwrap().is_none());
    let mut right = tonic::Request::new(request());
    right.metadata_mut().insert("authorization", "Bearer s3cret".parse().unwrap());
    assert!(registry.apply(right).await.unwrap().into_inner().applied);
    // Reads need no token.
    let views = registry.list_feature_views(pb::ListRequest::default()).await.unwrap().into_inner();
    assert!(!views.feature_views.is_empty());
    let read = online(channel.clone(), &["driver_stats:conv_rate"], &[1001], 0).await.unwrap();
    assert_eq!(read.results[0].statuses[0], pb::FeatureStatus::NotFound as i32);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_size_and_concurrency_limits_answer_with_status_codes() {
    // The server's deadline (1 ms) is shorter than any apply (it scans the lake).
    let limits = quiver_server::Limits { deadline: Duration::from_millis(1), ..Default::default() };
    let mut server = TestServer::start_with(limits, None).await;
    let mut registry = RegistryServiceClient::new(server.channel().await);
    let e = registry
        .apply(pb::ApplyRequest {
            documents: example_documents(),
            expected_version: 0,
            applied_by: "t".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::DeadlineExceeded, "{e:?}");
    assert!(e.message().contains("deadline of 1ms"), "{}", e.message());
    assert!(server.app.project().registry().head().await.unwrap().is_none(), "the cut apply wrote nothing");
    server.shutdown().await;

    let limits = quiver_server::Limits {
        max_message_bytes: 64 << 10,
        max_concurrent_calls: 1,
        deadline: Duration::from_secs(60),
        ..Default::default()
    };
    let mut server = TestServer::start_with(limits, None).await;
    let channel = server.channel().await;
    let mut registry = RegistryServiceClient::new(channel.clone());
    // Oversize request: RESOURCE_EXHAUSTED naming the limit; the server keeps serving.
    let big = pb::PlanRequest {
        documents: vec![pb::YamlDocument { name: "big.yaml".into(), content: "#".repeat(100 << 10) }],
    };
    let e = registry.plan(big).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(e.message().contains("65536 bytes"), "{}", e.message());
    assert!(registry.history(pb::HistoryRequest {}).await.is_ok());

    // Concurrency: one call at a time; a second one while the first runs is refused.
    let slow = {
        let channel = channel.clone();
        tokio::spawn(async move {
            let mut registry = RegistryServiceClient::new(channel);
            registry.plan(pb::PlanRequest { documents: example_documents() }).await
        })
    };
    // Wait until the plan (it reads the lake) is being served, then call again.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while server.app.metrics().in_flight.get() == 0 {
        assert!(std::time::Instant::now() < deadline, "the first call never started");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let second = registry.history(pb::HistoryRequest {}).await;
    let first = slow.await.unwrap();
    assert!(first.is_ok(), "{first:?}");
    match second {
        Err(e) => {
            assert_eq!(e.code(), Code::ResourceExhausted);
            assert!(e.message().contains("limit of 1 concurrent calls"), "{}", e.message());
        }
        Ok(_) => panic!("a second call was served while the first held the only slot"),
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopping_gives_unavailable_and_the_server_recovers_without_restart() {
    let mut server = TestServer::start().await;
    let channel = server.channel().await;
    apply_example(channel.clone()).await;
    let refs = ["driver_stats:conv_rate"];
    assert!(online(channel.clone(), &refs, &[1001], 0).await.is_ok());
    server.redis.stop();
    let e = tokio::time::timeout(Duration::from_secs(30), online(channel.clone(), &refs, &[1001], 0))
        .await
        .expect("a read with Redis down answers instead of hanging")
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    server.redis.restart();
    // The same server reconnects: reads succeed again (the new Redis is empty).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let answer = loop {
        match online(channel.clone(), &refs, &[1001], 0).await {
            Ok(a) => break a,
            Err(e) => {
                assert_eq!(e.code(), Code::Unavailable, "{e:?}");
                assert!(std::time::Instant::now() < deadline, "the server did not reconnect to Redis");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert_eq!(answer.results[0].statuses[0], pb::FeatureStatus::NotFound as i32);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_redis_answers_within_the_callers_deadline_and_never_reports_a_stored_row_missing() {
    let mut server = TestServer::start().await;
    let channel = server.channel().await;
    apply_example(channel.clone()).await;
    materialize_window(channel.clone(), &["driver_stats"], DATA_START, "2026-01-03T00:00:00Z").await;
    let refs = ["driver_stats:conv_rate"];
    let newest = online(channel.clone(), &refs, &[1001], 0).await.unwrap();
    let at = newest.results[0].event_timestamps_ns[0];
    let stored = online(channel.clone(), &refs, &[1001], at).await.unwrap();
    assert_eq!(stored.results[0].statuses[0], pb::FeatureStatus::Present as i32, "{stored:?}");
    let read = |timeout: Duration| {
        let channel = channel.clone();
        async move {
            let mut entities = HashMap::new();
            entities.insert(
                "driver_id".to_string(),
                pb::RepeatedValue {
                    values: vec![pb::Value { kind: Some(pb::value::Kind::Int64Value(1001)) }],
                },
            );
            let mut request = tonic::Request::new(pb::GetOnlineFeaturesRequest {
                kind: Some(pb::get_online_features_request::Kind::Features(pb::FeatureList {
                    refs: vec![refs[0].to_string()],
                })),
                entities,
                at_ns: at,
                arrow: false,
            });
            request.set_timeout(timeout);
            let started = std::time::Instant::now();
            let answer = pb::online_service_client::OnlineServiceClient::new(channel)
                .get_online_features(request)
                .await
                .map(|r| r.into_inner());
            (answer, started.elapsed())
        }
    };
    // Paused as during a failover: every read made meanwhile ends at its own deadline, long
    // before Redis goes on, and none answers (a NOT_FOUND would be a wrong answer).
    server.redis.cli(&["client", "pause", "4000", "all"]);
    let during = futures::future::join_all((0..4).map(|_| read(Duration::from_millis(500)))).await;
    for (answer, took) in during {
        let status = answer.expect_err("a read answered while Redis was paused");
        assert!(
            matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled | Code::Unavailable),
            "{status:?}"
        );
        assert!(took < Duration::from_millis(3_000), "the read outlived its deadline: {took:?}");
    }
    // Then reads (each waiting for Redis or failing as unavailable at the store's own
    // timeout, never answering a wrong NOT_FOUND) get the stored row once Redis goes on.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let answer = loop {
        match read(Duration::from_secs(10)).await.0 {
            Ok(answer) => break answer,
            Err(status) => {
                assert!(matches!(status.code(), Code::Unavailable | Code::DeadlineExceeded), "{status:?}");
                assert!(std::time::Instant::now() < deadline, "reads never recovered: {status:?}");
            }
        }
    };
    assert_eq!(answer.results[0].statuses[0], pb::FeatureStatus::Present as i32, "{answer:?}");
    assert_eq!(answer.results[0].values[0], stored.results[0].values[0]);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applies_during_reads_never_fail_a_read_and_are_seen_at_once() {
    let mut server = TestServer::start().await;
    let channel = server.channel().await;
    apply_example(channel.clone()).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..4 {
        let channel = channel.clone();
        let stop = stop.clone();
        readers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                online(channel.clone(), &["driver_stats:conv_rate"], &[1001, 1002], 0).await.unwrap();
                n += 1;
            }
            n
        }));
    }
    // Apply version 2 through the API: a new feature service, usable at once.
    let mut documents = example_documents();
    documents.push(pb::YamlDocument {
        name: "extra.yaml".into(),
        content: "feature_services:\n  - name: conv_only\n    features: [\"driver_stats:conv_rate\"]\n"
            .into(),
    });
    let mut registry = RegistryServiceClient::new(channel.clone());
    let applied = registry
        .apply(pb::ApplyRequest { documents: documents.clone(), expected_version: 1, applied_by: "t".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(applied.version, 2);
    let mut client = pb::online_service_client::OnlineServiceClient::new(channel.clone());
    let by_service = |name: &str| {
        let mut entities = HashMap::new();
        entities.insert(
            "driver_id".to_string(),
            pb::RepeatedValue { values: vec![pb::Value { kind: Some(pb::value::Kind::Int64Value(1001)) }] },
        );
        pb::GetOnlineFeaturesRequest {
            kind: Some(pb::get_online_features_request::Kind::FeatureService(name.into())),
            entities,
            at_ns: 0,
            arrow: false,
        }
    };
    let answer = client.get_online_features(by_service("conv_only")).await.unwrap().into_inner();
    assert_eq!(answer.registry_version, 2);
    // Version 3 from "another process" (the registry directly, as the CLI does) is noticed
    // by the watcher without any call to this server's Apply (polled, bounded at 30 s).
    documents.push(pb::YamlDocument {
        name: "more.yaml".into(),
        content:
            "feature_services:\n  - name: trips_only\n    features: [\"driver_stats:avg_daily_trips\"]\n"
                .into(),
    });
    let docs: Vec<(String, String)> = documents.iter().map(|d| (d.name.clone(), d.content.clone())).collect();
    let loaded = quiver_core::repo::parse_documents(&docs);
    server.app.project().registry().apply(&loaded.definitions, 2, "cli").await.unwrap();
    let seen = std::time::Instant::now();
    loop {
        match client.get_online_features(by_service("trips_only")).await {
            Ok(a) => {
                assert_eq!(a.into_inner().registry_version, 3);
                break;
            }
            Err(e) => {
                assert!(seen.elapsed() < Duration::from_secs(30), "version 3 never seen: {e:?}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        assert!(r.await.unwrap() > 0, "every reader completed reads, none failed");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_a_call_in_flight_finish() {
    let mut server = TestServer::start().await;
    let channel = server.channel().await;
    let call = {
        let channel = channel.clone();
        tokio::spawn(async move {
            RegistryServiceClient::new(channel).plan(pb::PlanRequest { documents: example_documents() }).await
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while server.app.metrics().in_flight.get() == 0 {
        assert!(std::time::Instant::now() < deadline, "the call never started");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    server.shutdown().await;
    let answer = call.await.unwrap();
    assert!(answer.is_ok(), "the call in flight was cut: {answer:?}");
    // Afterwards nothing listens.
    assert!(tokio::net::TcpStream::connect(server.addr).await.is_err());
}

/// Writes a copy of a driver_stats lake file's first row as driver `driver` into a new lake
/// file (written aside, then renamed, as a lake writer would).
fn add_lake_row(lake: &std::path::Path, driver: i64) {
    use datafusion::parquet::arrow::ArrowWriter;
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let folder = lake.join("driver_stats");
    let mut files: Vec<_> = std::fs::read_dir(&folder).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let file = std::fs::File::open(&files[0]).unwrap();
    let batch =
        ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap().next().unwrap().unwrap();
    let row = batch.slice(0, 1);
    let key = row.schema().index_of("driver_id").unwrap();
    let mut columns = row.columns().to_vec();
    columns[key] = Arc::new(Int64Array::from(vec![driver]));
    let row = RecordBatch::try_new(row.schema(), columns).unwrap();
    let aside = folder.join("late.parquet.writing");
    let mut writer =
        ArrowWriter::try_new(std::fs::File::create(&aside).unwrap(), row.schema(), None).unwrap();
    writer.write(&row).unwrap();
    writer.close().unwrap();
    std::fs::rename(&aside, folder.join("late.parquet")).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lake_file_added_while_the_server_runs_is_read_by_its_next_materialization() {
    // A server lives for weeks while the lake gains files: each run lists the lake afresh
    // (DataFusion's listing cache would keep the first listing for the process's life).
    let mut server = TestServer::start().await;
    let channel = server.channel().await;
    apply_example(channel.clone()).await;
    let first = materialize_all(channel.clone()).await;
    assert_eq!(first.state(), pb::JobState::Succeeded, "{first:?}");
    let refs = ["driver_stats:conv_rate"];
    let before = online(channel.clone(), &refs, &[9999], 0).await.unwrap();
    assert_eq!(before.results[0].statuses[0], pb::FeatureStatus::NotFound as i32);

    add_lake_row(&server.dir.path().join("lake"), 9999);
    let second = materialize_all(channel.clone()).await;
    assert_eq!(second.state(), pb::JobState::Succeeded, "{second:?}");
    let stats = second.views.iter().find(|v| v.view == "driver_stats").unwrap();
    let first_rows = first.views.iter().find(|v| v.view == "driver_stats").unwrap().rows_done;
    assert_eq!(stats.rows_done, first_rows + 1, "the new file's row is read: {stats:?}");
    // Online now (the sample's rows are older than the view's ttl, so the value reads as
    // expired, but the row is there), and present as of its own event time.
    let after = online(channel.clone(), &refs, &[9999], 0).await.unwrap();
    assert_eq!(after.results[0].statuses[0], pb::FeatureStatus::OutsideMaxAge as i32, "{after:?}");
    let event = after.results[0].event_timestamps_ns[0];
    let then = online(channel.clone(), &refs, &[9999], event).await.unwrap();
    assert_eq!(then.results[0].statuses[0], pb::FeatureStatus::Present as i32, "{then:?}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_started_during_a_short_lease_waits_for_it_and_a_long_one_is_refused_naming_it() {
    use quiver_offline::lease::LeaseSettings;
    let mut server = TestServer::start().await;
    let channel = server.channel().await;
    apply_example(channel.clone()).await;
    let config = quiver_core::config::Config::load(&server.dir.path().join("quiver.yaml")).unwrap();
    let leases = quiver_offline::store::OfflineStore::new(config.offline_store.clone()).leases().unwrap();
    let held_by = |holder: &str| LeaseSettings {
        holder: holder.into(),
        ttl: Duration::from_secs(30),
        wait: Duration::ZERO,
    };
    let window = pb::start_materialization_request::Span::Window(pb::Window {
        start_ns: ns(DATA_START),
        end_ns: ns("2026-01-04T00:00:00Z"),
    });
    let request =
        || pb::StartMaterializationRequest { span: Some(window), views: vec!["driver_stats".into()] };
    let mut jobs = MaterializeServiceClient::new(channel.clone());

    // As a push to offline holds it: for one commit.
    let lease = leases.acquire("driver_stats", &held_by("a push (pid 1 on elsewhere)")).await.unwrap();
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        lease.release().await;
    });
    let job = jobs.start(request()).await.expect("the start waits out a short lease").into_inner();
    release.await.unwrap();
    assert_eq!(wait_for_job(&mut jobs, &job.id).await.state(), pb::JobState::Succeeded);

    // As another process's materialization holds it: longer than the start waits.
    let lease = leases.acquire("driver_stats", &held_by("a long run (pid 2 on elsewhere)")).await.unwrap();
    let refused = jobs.start(request()).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("a long run (pid 2 on elsewhere)"), "{}", refused.message());
    lease.release().await;

    // A job over two views takes the second one's lease only when it gets there: a push
    // committing to that view at that moment holds it briefly, and the job waits for it.
    // Taken right after the start, the lease is ours while the job still works on
    // driver_stats; when the job was quicker, there was nothing to wait for: try again.
    let two = || pb::StartMaterializationRequest {
        span: Some(window),
        views: vec!["driver_stats".into(), "customer_profile".into()],
    };
    let mut caught = false;
    for _ in 0..5 {
        let job = jobs.start(two()).await.unwrap().into_inner();
        let Ok(lease) = leases.acquire("customer_profile", &held_by("a push (pid 3 on elsewhere)")).await
        else {
            assert_eq!(wait_for_job(&mut jobs, &job.id).await.state(), pb::JobState::Succeeded);
            continue;
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        lease.release().await;
        let done = wait_for_job(&mut jobs, &job.id).await;
        assert_eq!(done.state(), pb::JobState::Succeeded, "the job waited for the push's lease: {done:?}");
        assert!(done.views.iter().all(|v| v.state() == pb::ViewRunState::Succeeded), "{done:?}");
        caught = true;
        break;
    }
    assert!(caught, "every job reached customer_profile before the test could take its lease");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quality_service_answers_statistics_drift_and_skew_and_the_drift_checker_exports_scores() {
    use quiver_server::pb::quality_service_client::QualityServiceClient;
    let mut server = TestServer::start_custom(quiver_server::Limits::default(), None, "", |o| {
        o.drift_check_every = Some(Duration::from_millis(500));
    })
    .await;
    let channel = server.channel().await;
    let mut quality = QualityServiceClient::new(channel.clone());
    let stats_of =
        |view: &str, run: &str| pb::GetStatisticsRequest { feature_view: view.into(), run: run.into() };

    // Nothing applied, then nothing materialized.
    assert_eq!(
        quality.get_statistics(stats_of("driver_stats", "")).await.unwrap_err().code(),
        Code::FailedPrecondition
    );
    apply_example(channel.clone()).await;
    let none = quality.get_statistics(stats_of("driver_stats", "")).await.unwrap_err();
    assert_eq!(none.code(), Code::FailedPrecondition, "{none:?}");
    assert!(none.message().contains("materialize it first"), "{}", none.message());

    // Two days, one window each: the declared check compares the second with the first.
    let (day1, day2, day3) = (DATA_START, "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z");
    materialize_window(channel.clone(), &["driver_stats"], day1, day2).await;
    materialize_window(channel.clone(), &["driver_stats"], day2, day3).await;

    // Statistics: what the newest run recorded, feature by feature.
    let state = server.app.project().state().view("driver_stats").await.unwrap();
    let newest = state.runs.last().unwrap();
    let answer = quality.get_statistics(stats_of("driver_stats", "")).await.unwrap().into_inner();
    assert_eq!(answer.run_id, newest.run_id);
    assert_eq!((answer.status.as_str(), answer.rows), ("succeeded", newest.rows));
    assert_eq!((answer.window_start_ns, answer.window_end_ns), (ns(day2), ns(day3)));
    assert_eq!(answer.features.len(), 3);
    for (name, s) in &newest.statistics {
        assert_eq!(answer.features[name], quiver_server::quality_svc::statistics(s), "{name}");
    }
    let conv = &answer.features["conv_rate"];
    assert_eq!(conv.count, newest.rows);
    assert_eq!(conv.quantiles.len(), 7);
    match conv.histogram.as_ref().unwrap() {
        pb::feature_statistics::Histogram::Bins(b) => {
            assert_eq!(b.edges.len(), b.counts.len() + 1);
            // Under 16 384 values the histogram is exact: every finite value is in a bin.
            assert_eq!(b.counts.iter().sum::<u64>(), conv.count - conv.nulls - conv.non_finite);
        }
        other => panic!("conv_rate is a number: {other:?}"),
    }
    let older = quality.get_statistics(stats_of("driver_stats", "2")).await.unwrap().into_inner();
    assert_eq!((older.window_start_ns, older.window_end_ns), (ns(day1), ns(day2)));
    assert_eq!(
        quality.get_statistics(stats_of("driver_stats", "0")).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    assert_eq!(
        quality.get_statistics(stats_of("driver_stats", "99")).await.unwrap_err().code(),
        Code::NotFound
    );
    assert_eq!(quality.get_statistics(stats_of("nope", "")).await.unwrap_err().code(), Code::NotFound);
    let long = quality.get_statistics(stats_of(&"x".repeat(10_000), "")).await.unwrap_err();
    assert_eq!(long.code(), Code::InvalidArgument);
    assert!(long.message().len() < 200, "the name is not echoed: {}", long.message());

    // Drift: the declared check is day 2 against day 1, the same as asking for those periods,
    // and the same as the offline crate computes for them.
    let period = |a: &str, b: &str| Some(pb::Period { start_ns: ns(a), end_ns: ns(b) });
    let declared = quality
        .get_drift(pb::GetDriftRequest {
            feature_view: "driver_stats".into(),
            reference: None,
            current: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((declared.reference, declared.current), (period(day1, day2), period(day2, day3)));
    let explicit = quality
        .get_drift(pb::GetDriftRequest {
            feature_view: "driver_stats".into(),
            reference: period(day1, day2),
            current: period(day2, day3),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(declared, explicit);
    let project = server.app.project();
    let snapshot = project.require_current().unwrap();
    let window = |a: &str, b: &str| {
        quiver_offline::layout::Window::new(
            chrono::DateTime::parse_from_rfc3339(a).unwrap().to_utc(),
            chrono::DateTime::parse_from_rfc3339(b).unwrap().to_utc(),
        )
        .unwrap()
    };
    let direct = quiver_offline::drift::drift(
        project.lake().session(),
        snapshot.definitions.feature_view("driver_stats").unwrap(),
        project.offline(),
        &window(day1, day2),
        &window(day2, day3),
    )
    .await
    .unwrap();
    assert_eq!(declared, quiver_server::quality_svc::drift_response(&direct));
    assert_eq!(declared.features.len(), 3);
    assert!(declared.features["conv_rate"].ks.is_some() && declared.features["conv_rate"].current_values > 0);
    assert_eq!(declared.thresholds.unwrap().psi, 0.2);
    let half = quality
        .get_drift(pb::GetDriftRequest {
            feature_view: "driver_stats".into(),
            reference: period(day1, day2),
            current: None,
        })
        .await
        .unwrap_err();
    assert_eq!(half.code(), Code::InvalidArgument);
    let backwards = quality
        .get_drift(pb::GetDriftRequest {
            feature_view: "driver_stats".into(),
            reference: period(day2, day1),
            current: period(day2, day3),
        })
        .await
        .unwrap_err();
    assert_eq!(backwards.code(), Code::InvalidArgument, "{backwards:?}");

    // The checker (every 500 ms) exports the declared check's scores.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let psi_line = r#"quiver_feature_drift{feature="conv_rate",score="psi",view="driver_stats"}"#;
    let text = loop {
        let text = metrics_text(&server.app).await;
        if text.contains(psi_line) {
            break text;
        }
        assert!(std::time::Instant::now() < deadline, "no drift scores in the metrics:\n{text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let value = |prefix: &str| -> f64 {
        let line =
            text.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix}:\n{text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let conv = &declared.features["conv_rate"];
    assert!((value(psi_line) - conv.psi).abs() < 1e-9, "{text}");
    assert!(
        (value(r#"quiver_feature_drift{feature="conv_rate",score="ks",view="driver_stats"}"#)
            - conv.ks.unwrap())
        .abs()
            < 1e-9
    );
    let flag = value(r#"quiver_feature_drifted{feature="conv_rate",view="driver_stats"}"#);
    assert_eq!(flag, if conv.drifted { 1.0 } else { 0.0 });
    let outcome = if declared.drifted.is_empty() { "ok" } else { "drifted" };
    assert!(
        value(&format!(r#"quiver_drift_checks_total{{outcome="{outcome}",view="driver_stats"}}"#)) >= 1.0,
        "{text}"
    );
    assert!(text.contains(r#"quiver_view_drift_checked_timestamp_seconds{view="driver_stats"}"#));

    // Skew: after materializing, online and training agree (the sample's values are past
    // the view's 2 h ttl on both sides); a push to online only of a fresh value for driver
    // 1001, which training does not see, is counted with its example.
    let skew_of = |sample: u32| pb::GetSkewRequest {
        features: vec!["driver_stats:conv_rate".into()],
        feature_service: String::new(),
        sample,
    };
    let skew = quality.get_skew(skew_of(10)).await.unwrap().into_inner();
    assert_eq!(skew.entities, 10, "{skew:?}");
    assert_eq!(skew.differing, 0, "{skew:?}");
    let minute_ago = chrono::Utc::now().timestamp_nanos_opt().unwrap() - 60_000_000_000;
    let row = DriverStats::at(1001, minute_ago).batch();
    PushServiceClient::new(channel.clone())
        .push(pb::PushRequest {
            feature_view: "driver_stats".into(),
            arrow_ipc: ipc(&[row]),
            to: pb::PushTarget::Online as i32,
        })
        .await
        .unwrap();
    // The sample (100) is larger than the 20 drivers: every one is compared.
    let skew = quality.get_skew(skew_of(100)).await.unwrap().into_inner();
    assert_eq!((skew.entities, skew.differing), (20, 1), "{skew:?}");
    let found = &skew.features["driver_stats:conv_rate"];
    assert_eq!(found.differ, 1);
    assert_eq!(found.examples[0].entity, r#"{"driver_id":1001}"#);
    assert_eq!((found.examples[0].online.as_str(), found.examples[0].offline.as_str()), ("0.5", "null"));
    let too_many = quality
        .get_skew(pb::GetSkewRequest {
            features: vec![],
            feature_service: "ride_ranking_v1".into(),
            sample: 1_000_000,
        })
        .await
        .unwrap_err();
    assert_eq!(too_many.code(), Code::InvalidArgument);
    let neither = quality
        .get_skew(pb::GetSkewRequest { features: vec![], feature_service: String::new(), sample: 5 })
        .await
        .unwrap_err();
    assert_eq!(neither.code(), Code::InvalidArgument, "{neither:?}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_feature_references_give_the_same_columns_online_and_in_a_training_set() {
    let mut server = TestServer::start().await;
    let channel = server.channel().await;
    apply_example(channel.clone()).await;
    materialize_window(channel.clone(), &["driver_stats"], DATA_START, "2026-01-03T00:00:00Z").await;
    // A feature named twice, once alone and once through its whole view.
    let refs = ["driver_stats:conv_rate", "driver_stats", "driver_stats:conv_rate"];
    let read = online(channel.clone(), &refs, &[1001], 0).await.unwrap();
    let names: Vec<&str> = read.feature_names.iter().map(String::as_str).collect();
    assert_eq!(names, ["driver_stats:conv_rate", "driver_stats:acc_rate", "driver_stats:avg_daily_trips"]);
    assert_eq!(read.results.len(), 3);
    let mut offline = OfflineServiceClient::new(channel.clone());
    let (batches, _) =
        historical(&mut offline, &driver_spine(&[(1001, "2026-01-02T12:00:00Z")]), &refs).await.unwrap();
    let schema = batches[0].schema();
    let features: Vec<&str> = schema.fields().iter().skip(3).map(|f| f.name().as_str()).collect();
    assert_eq!(
        features,
        ["conv_rate", "acc_rate", "avg_daily_trips"],
        "the spine's 3 columns, then the features"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_store_in_memory_holds_tables_state_pushes_and_training_sets_for_the_process() {
    let mut server = TestServer::start_custom(
        quiver_server::Limits::default(),
        None,
        "offline_store: memory://offline\n",
        |_| {},
    )
    .await;
    let channel = server.channel().await;
    apply_example(channel.clone()).await;
    materialize_window(channel.clone(), &["driver_stats"], DATA_START, "2026-01-02T00:00:00Z").await;

    // The watermark is kept with the tables: an incremental run continues from it.
    let mut jobs = MaterializeServiceClient::new(channel.clone());
    let job = jobs
        .start(pb::StartMaterializationRequest {
            span: Some(pb::start_materialization_request::Span::Incremental(pb::Incremental {
                end_ns: ns("2026-01-03T00:00:00Z"),
            })),
            views: vec!["driver_stats".into()],
        })
        .await
        .unwrap()
        .into_inner();
    let done = wait_for_job(&mut jobs, &job.id).await;
    assert_eq!(done.state(), pb::JobState::Succeeded, "{done:?}");
    assert_eq!(done.views[0].window_start_ns, ns("2026-01-02T00:00:00Z"), "{done:?}");
    assert!(done.views[0].rows_done > 0, "{done:?}");

    // A row pushed offline is in the table a training set reads.
    let row = DriverStats {
        event: ns("2026-01-02T23:59:00Z") / 1000,
        unit: TimeUnit::Microsecond,
        trips: 4242,
        ..DriverStats::at(1001, 0)
    }
    .batch();
    let pushed = PushServiceClient::new(channel.clone())
        .push(pb::PushRequest {
            feature_view: "driver_stats".into(),
            arrow_ipc: ipc(&[row]),
            to: pb::PushTarget::Offline as i32,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(pushed.offline_version.is_some(), "{pushed:?}");
    let mut offline = OfflineServiceClient::new(channel.clone());
    let spine = driver_spine(&[(1001, "2026-01-02T23:59:30Z"), (1002, "2026-01-01T12:00:00Z")]);
    let (batches, manifest) =
        historical(&mut offline, &spine, &["driver_stats:avg_daily_trips"]).await.unwrap();
    let trips = batches[0].column(3).as_primitive::<Int64Type>();
    assert_eq!(trips.value(0), 4242);
    assert!(trips.is_valid(1), "the materialized window is read: {batches:?}");
    let manifest: serde_json::Value = serde_json::from_str(&manifest.manifest_json).unwrap();
    // Two windows and the push: the table's third version.
    assert_eq!(manifest["views"][0]["table_version"], 2, "{manifest}");
    // Nothing went to the local disk.
    assert!(!server.dir.path().join("offline").exists());
    server.shutdown().await;
}
