//! Writes the seed corpora of the fuzz targets into `fuzz/corpus/<target>/`: inputs made
//! the way Quiver's own tests and clients make them (the example definitions, encoded
//! online rows, a push body, spines, one request per method), so that the fuzzers start
//! from real shapes. Run again after the formats change:
//! `cargo run -p quiver-fuzz --example seeds`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Float32Array, Int64Array, RecordBatch, TimestampNanosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::ipc::writer::StreamWriter;
use prost::Message;
use quiver_online::value::{StoredRow, Value, encode};
use quiver_server::pb;

const T: i64 = 1_767_268_800_000_000_000; // 2026-01-01T12:00:00Z

fn write(target: &str, name: &str, data: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("seed-{name}")), data).unwrap();
}

fn ipc(batch: &RecordBatch) -> Vec<u8> {
    let mut out = Vec::new();
    let mut writer = StreamWriter::try_new(&mut out, &batch.schema()).unwrap();
    writer.write(batch).unwrap();
    writer.finish().unwrap();
    drop(writer);
    out
}

fn driver_stats_rows() -> RecordBatch {
    let ts = DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()));
    let schema = Arc::new(Schema::new(vec![
        Field::new("driver_id", DataType::Int64, false),
        Field::new("event_timestamp", ts, false),
        Field::new("conv_rate", DataType::Float32, true),
        Field::new("acc_rate", DataType::Float32, true),
        Field::new("avg_daily_trips", DataType::Int64, true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(vec![1001, 1002])),
        Arc::new(TimestampNanosecondArray::from(vec![T, T + 1]).with_timezone("UTC")),
        Arc::new(Float32Array::from(vec![Some(0.5), None])),
        Arc::new(Float32Array::from(vec![0.9, 0.8])),
        Arc::new(Int64Array::from(vec![12, 30])),
    ];
    RecordBatch::try_new(schema, columns).unwrap()
}

fn definitions() {
    let documents = quiver_fuzz::Fixture::documents();
    let mut all = String::new();
    for (name, text) in &documents {
        write("definitions", name, text.as_bytes());
        all.push_str(text);
        all.push('\u{c}');
    }
    write("definitions", "all", all.as_bytes());
    // Aliases that expand without end unless the reader bounds them.
    let laughs = "a: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c]\nentities: [*d, *d, *d, *d, *d, *d, *d, *d]\n";
    write("definitions", "aliases", laughs.as_bytes());
    write("definitions", "wrong-types", b"entities: {name: 3}\nfeature_views: [[]]\nsources: 7\n");
}

fn online_rows() {
    let rows = [
        (
            "scalars",
            vec![Value::Int64(7), Value::Float32(0.5), Value::Null, Value::String("a\0b".into())],
            Some(T),
        ),
        ("list", vec![Value::List(vec![Value::Float32(1.0), Value::Null]), Value::String("v1".into())], None),
        (
            "typed",
            vec![
                Value::Bool(true),
                Value::Int32(-3),
                Value::Bytes(vec![0, 255]),
                Value::Timestamp(-1),
                Value::Float64(f64::NAN),
            ],
            Some(-5),
        ),
    ];
    for (name, values, created) in rows {
        let sortable: Vec<bool> = values.iter().map(|v| !matches!(v, Value::List(_))).collect();
        let row = StoredRow { event_ns: T, created_ns: created, values };
        write("online_row", name, &encode(&row, 0xfeed, &sortable));
    }
    // Format 1: no tie key.
    let mut old = vec![1u8];
    old.extend_from_slice(&7u32.to_le_bytes());
    old.extend_from_slice(&[0x80, 0, 0, 0, 0, 0, 0, 5]);
    old.extend_from_slice(&[0; 8]);
    old.extend_from_slice(&1u16.to_le_bytes());
    old.push(3);
    old.extend_from_slice(&9i64.to_le_bytes());
    write("online_row", "format-1", &old);
}

fn push_bodies() {
    let mut body = b"driver_stats\0".to_vec();
    body.extend_from_slice(&ipc(&driver_stats_rows()));
    write("push_ipc", "driver-stats", &body);
    let mut wrong = b"customer_profile\0".to_vec();
    wrong.extend_from_slice(&ipc(&driver_stats_rows()));
    write("push_ipc", "wrong-view", &wrong);
}

fn spines() {
    let csv = "driver_id,customer_id,event_timestamp\n1001,2001,2026-01-01T12:00:00Z\n1002,2002,2026-01-02T08:30:00Z\n1003,,2026-01-01T00:00:00Z\n";
    write("spine", "csv", &[[0u8].as_slice(), csv.as_bytes()].concat());
    let ts = DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()));
    let schema = Arc::new(Schema::new(vec![
        Field::new("driver_id", DataType::Int64, false),
        Field::new("customer_id", DataType::Int64, false),
        Field::new("event_timestamp", ts, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(vec![1001, 1005])),
            Arc::new(Int64Array::from(vec![2001, 2010])),
            Arc::new(TimestampNanosecondArray::from(vec![T, T + 3_600_000_000_000]).with_timezone("UTC")),
        ],
    )
    .unwrap();
    let mut parquet = vec![1u8];
    let mut writer = datafusion::parquet::arrow::ArrowWriter::try_new(&mut parquet, schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    write("spine", "parquet", &parquet);
}

fn requests() {
    let request = |method: u8, message: &dyn Fn() -> Vec<u8>| [vec![method], message()].concat();
    let key = |values: Vec<pb::Value>| pb::RepeatedValue { values };
    let int = |x: i64| pb::Value { kind: Some(pb::value::Kind::Int64Value(x)) };
    let online = pb::GetOnlineFeaturesRequest {
        kind: Some(pb::get_online_features_request::Kind::FeatureService("ride_ranking_v1".into())),
        entities: [
            ("driver_id".to_string(), key(vec![int(1001), int(1002)])),
            ("customer_id".to_string(), key(vec![int(2001), int(2002)])),
        ]
        .into_iter()
        .collect(),
        ..Default::default()
    };
    write("requests", "online", &request(0, &|| online.encode_to_vec()));
    let push = pb::PushRequest {
        feature_view: "driver_stats".into(),
        arrow_ipc: ipc(&driver_stats_rows()),
        to: pb::PushTarget::Online as i32,
    };
    write("requests", "push", &request(1, &|| push.encode_to_vec()));
    let plan = pb::PlanRequest {
        documents: quiver_fuzz::Fixture::documents()
            .into_iter()
            .map(|(name, content)| pb::YamlDocument { name, content })
            .collect(),
    };
    write("requests", "plan", &request(2, &|| plan.encode_to_vec()));
    let view = pb::GetFeatureViewRequest { name: "driver_stats".into(), registry_version: 1 };
    write("requests", "feature-view", &request(3, &|| view.encode_to_vec()));
    write("requests", "list-views", &request(4, &|| pb::ListRequest { registry_version: 0 }.encode_to_vec()));
    let job = pb::GetMaterializationRequest { id: "../../etc/passwd".into() };
    write("requests", "job", &request(5, &|| job.encode_to_vec()));
    write("requests", "history", &request(6, &|| pb::HistoryRequest {}.encode_to_vec()));
}

fn main() {
    definitions();
    online_rows();
    push_bodies();
    spines();
    requests();
}
