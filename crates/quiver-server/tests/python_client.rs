//! A real Python client: `tests/python/run.sh` installs grpcio, grpcio-tools and pyarrow in
//! a virtual environment, generates stubs from `proto/`, and calls the server this test
//! starts — GetOnlineFeatures over gRPC and a training set over Arrow Flight. Its answers
//! must equal those of the Rust client.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{Float32Type, Int64Type};
use quiver_server::pb;

/// The virtual environment lives in the cargo target folder, so it is made once per
/// checkout and reused.
fn venv() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/debug/deps/python_client-<hash>
    exe.ancestors().nth(3).unwrap().join("python-venv")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_grpc_and_flight_clients_get_what_the_rust_client_gets() {
    let mut server = TestServer::start().await;
    let channel = server.channel().await;
    apply_example(channel.clone()).await;
    let job = materialize_all(channel.clone()).await;
    assert_eq!(job.state(), pb::JobState::Succeeded);

    let refs = ["driver_stats:conv_rate", "driver_stats:avg_daily_trips", "driver_profile:vehicle_type"];
    let drivers = [1001i64, 1005, 424_242];
    let at = ns("2026-01-02T23:30:00Z");
    let spine =
        [(1002i64, "2026-01-02T10:00:00Z"), (1001, "2026-01-01T12:00:00Z"), (7, "2026-01-02T00:00:00Z")];
    let spine_json: Vec<(i64, i64)> = spine.iter().map(|(d, t)| (*d, ns(t))).collect();

    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/run.sh");
    let output = Command::new("bash")
        .arg(&script)
        .arg(venv())
        .args(["--addr", &server.addr.to_string(), "--at-ns", &at.to_string(), "--refs", &refs.join(",")])
        .args(["--drivers", &drivers.map(|d| d.to_string()).join(",")])
        .args(["--spine", &serde_json::to_string(&spine_json).unwrap()])
        .output()
        .expect("bash runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the Python client failed:\n{stderr}");
    let python: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();

    // Online: same names, values, statuses and times as the tonic client.
    let rust = online(channel.clone(), &refs, &drivers, at).await.unwrap();
    let py = &python["online"];
    assert_eq!(py["feature_names"], serde_json::json!(refs));
    assert_eq!(py["registry_version"], 1);
    for (f, column) in rust.results.iter().enumerate() {
        let got = &py["results"][f];
        for (i, v) in column.values.iter().enumerate() {
            let expected = quiver_server::convert::value_from_pb(v).to_json();
            let actual = &got["values"][i];
            match (expected.as_f64(), actual.as_f64()) {
                (Some(e), Some(a)) => assert!((e - a).abs() < 1e-6, "{e} vs {a}"),
                _ => assert_eq!(&expected, actual),
            }
            let status = pb::FeatureStatus::try_from(column.statuses[i]).unwrap().as_str_name();
            assert_eq!(got["statuses"][i], status);
            assert_eq!(got["event_timestamps_ns"][i], column.event_timestamps_ns[i]);
        }
    }
    assert_eq!(py["results"][0]["statuses"][2], "NOT_FOUND");
    assert_eq!(py["results"][2]["statuses"][0], "PRESENT");
    assert_eq!(py["unknown_feature"]["code"], "NOT_FOUND");
    assert!(py["unknown_feature"]["message"].as_str().unwrap().contains("no_such_feature"));

    // Flight: the training set equals the one the gRPC stream gives.
    let ts = &python["training_set"];
    assert_eq!(ts["rows"], 3);
    assert_eq!(ts["total_records"], 3);
    assert_eq!(
        ts["columns"],
        serde_json::json!([
            "driver_id",
            "event_timestamp",
            "label",
            "conv_rate",
            "avg_daily_trips",
            "vehicle_type"
        ])
    );
    assert_eq!(ts["table"]["driver_id"], serde_json::json!([1002, 1001, 7]));
    assert_eq!(ts["table"]["label"], serde_json::json!(["row0", "row1", "row2"]));
    let mut offline = pb::offline_service_client::OfflineServiceClient::new(channel.clone());
    let mut stream = offline
        .get_historical_features(pb::GetHistoricalFeaturesRequest {
            kind: Some(pb::get_historical_features_request::Kind::Features(pb::FeatureList {
                refs: refs.iter().map(|s| s.to_string()).collect(),
            })),
            spine_arrow_ipc: ipc(&[driver_spine(&spine)]),
            full_feature_names: false,
            timestamp_column: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut bytes = Vec::new();
    while let Some(part) = stream.message().await.unwrap() {
        if let Some(pb::get_historical_features_response::Part::ArrowIpc(b)) = part.part {
            bytes.extend(b);
        }
    }
    let reader =
        datafusion::arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None).unwrap();
    let batches: Vec<_> = reader.collect::<Result<_, _>>().unwrap();
    let table = datafusion::arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
    let conv = table.column(3).as_primitive::<Float32Type>();
    let trips = table.column(4).as_primitive::<Int64Type>();
    for i in 0..3 {
        let py_conv = &ts["table"]["conv_rate"][i];
        if conv.is_null(i) {
            assert!(py_conv.is_null());
        } else {
            assert!((py_conv.as_f64().unwrap() - f64::from(conv.value(i))).abs() < 1e-6);
        }
        let py_trips = &ts["table"]["avg_daily_trips"][i];
        assert_eq!(py_trips.as_i64(), (!trips.is_null(i)).then(|| trips.value(i)));
    }
    assert!(ts["table"]["conv_rate"][2].is_null(), "an unknown driver gets nulls");
    assert!(!ts["table"]["conv_rate"][0].is_null(), "a known driver within the ttl has a value");

    // The README's DoPut with a command the server refuses: no reply, and the server's own
    // message reaches the writer as an error (pyarrow's ArrowKeyError for NOT_FOUND).
    let refused = &python["refused_upload"];
    assert_eq!(refused["reply_is_none"], true, "{refused}");
    let message = refused["error"]["message"].as_str().unwrap_or_else(|| panic!("no error: {refused}"));
    assert!(message.contains("feature service 'no_such_service' not found"), "{refused}");
    assert_eq!(refused["error"]["type"], "ArrowKeyError", "{refused}");
    server.shutdown().await;
}
