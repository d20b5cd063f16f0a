//! Online reads through the `quiver` binary, on the embedded store and on a real Redis the
//! test starts: what a model gets online equals what the training set says for the same
//! moment, backfills never move values backwards, and removing a view removes its rows.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[path = "../../quiver-online/tests/common/mod.rs"]
mod common;

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use support::{example_project, live_files, ok, quiver, quiver_with_env, text};

use datafusion::arrow::array::{Array, AsArray};
use datafusion::prelude::{ParquetReadOptions, SessionContext};

fn project(online_store: &str) -> (tempfile::TempDir, PathBuf) {
    example_project(online_store, &["--rows", "3000", "--drivers", "40", "--customers", "60"])
}

const FEATURES: &str = "driver_stats,customer_profile,driver_city_stats:trips_in_city,customer_embeddings:embedding,driver_trip_features:fare_per_km";

/// For every driver (and a customer and city each), the online answer at T equals the
/// training set's row at T, feature by feature, value and null alike.
async fn online_matches_training(dir: &Path, at: &str) {
    let at_time = chrono::DateTime::parse_from_rfc3339(at).unwrap().with_timezone(&chrono::Utc);
    let mut spine = String::from("driver_id,customer_id,city,event_timestamp\n");
    let mut entity_args = Vec::new();
    let cities = ["amsterdam", "berlin", "lisbon", "madrid", "paris", "rome"];
    for d in 0..40 {
        let (driver, customer, city) = (1001 + d, 2001 + d, cities[d as usize % cities.len()]);
        spine.push_str(&format!("{driver},{customer},{city},{}\n", at_time.to_rfc3339()));
        entity_args.push(format!("driver_id={driver},customer_id={customer},city={city}"));
    }
    std::fs::write(dir.join("spine.csv"), spine).unwrap();
    ok(
        dir,
        &[
            "historical",
            "--entities",
            "spine.csv",
            "--features",
            FEATURES,
            "--out",
            "t.parquet",
            "--overwrite",
            "--full-feature-names",
        ],
    );
    let ctx = SessionContext::new();
    let batches = ctx
        .read_parquet(dir.join("t.parquet").to_str().unwrap(), ParquetReadOptions::default())
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let t = datafusion::arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();

    let mut args = vec!["online", "--features", FEATURES, "--at", at];
    for e in &entity_args {
        args.push("--entity");
        args.push(e);
    }
    let body: serde_json::Value = serde_json::from_str(&ok(dir, &args)).unwrap();
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 40);
    let mut present = 0;
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r["entity"]["driver_id"], 1001 + i as i64);
        for (name, f) in r["features"].as_object().unwrap() {
            let column = t.column_by_name(&name.replace(':', "__")).unwrap();
            let status = f["status"].as_str().unwrap();
            if column.is_null(i) {
                assert!(
                    matches!(status, "NOT_FOUND" | "OUTSIDE_MAX_AGE" | "NULL_VALUE"),
                    "{name} row {i}: {f}"
                );
                assert!(f["value"].is_null(), "{name} row {i}: {f}");
            } else {
                assert_eq!(status, "PRESENT", "{name} row {i}: training has a value, online {f}");
                present += 1;
                let expected = match column.data_type() {
                    datafusion::arrow::datatypes::DataType::List(_) => {
                        let list = column.as_list::<i32>().value(i);
                        let floats = list.as_primitive::<datafusion::arrow::datatypes::Float32Type>();
                        serde_json::json!(
                            floats
                                .values()
                                .iter()
                                .map(|v| v.to_string().parse::<f64>().unwrap())
                                .collect::<Vec<_>>()
                        )
                    }
                    _ => {
                        let text =
                            datafusion::arrow::util::display::array_value_to_string(column, i).unwrap();
                        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
                    }
                };
                assert_eq!(f["value"], expected, "{name} row {i}");
                assert!(f["event_timestamp"].as_str().unwrap().ends_with('Z'));
            }
        }
    }
    assert!(present > 40, "too few values to compare: {present}");
}

fn online_value(dir: &Path, feature: &str, entity: &str, at: &str) -> serde_json::Value {
    let body: serde_json::Value =
        serde_json::from_str(&ok(dir, &["online", "--features", feature, "--entity", entity, "--at", at]))
            .unwrap();
    body["results"][0]["features"][feature].clone()
}

#[tokio::test]
async fn embedded_store_serves_what_training_saw() {
    let (_tmp, dir) = project("");
    ok(&dir, &["materialize", "--start", "2026-01-01", "--end", "2026-01-08"]);
    assert!(dir.join(".quiver/online/online.redb").is_file());
    online_matches_training(&dir, "2026-01-07T23:59:59.999999999Z").await;
    // Long after the data, views with a ttl are past their max age; ttl 0 never expires.
    let late = online_value(&dir, "driver_stats:conv_rate", "driver_id=1001", "2026-06-01T00:00:00Z");
    assert_eq!(late["status"], "OUTSIDE_MAX_AGE");
    assert!(late["value"].is_null() && late["event_timestamp"].is_string());
    let emb = online_value(&dir, "customer_embeddings:embedding", "customer_id=2001", "2030-01-01");
    assert_eq!(emb["status"], "PRESENT");
    assert_eq!(emb["value"].as_array().unwrap().len(), 8);
    let missing = online_value(&dir, "driver_stats:conv_rate", "driver_id=99999", "2026-01-07");
    assert_eq!(missing, serde_json::json!({"value": null, "status": "NOT_FOUND", "event_timestamp": null}));
}

/// As on a machine with more cores: each window is read in four partitions, each sorted and
/// written by its own writer, and a window materialized again rewrites the files that
/// straddle its edges. Every file stays sorted (the point-in-time join checks the order as
/// it reads), and what a model gets online still equals what the training set says.
#[tokio::test]
async fn several_writers_per_window_serve_what_training_saw() {
    let (_tmp, dir) = project("");
    let env = [
        ("DATAFUSION_EXECUTION_TARGET_PARTITIONS", "4"),
        ("DATAFUSION_EXECUTION_BATCH_SIZE", "100"),
        ("QUIVER_MIN_ROWS_PER_WRITER", "1"),
    ];
    let table = dir.join(".quiver/offline/driver_stats");
    let mut files_after = Vec::new();
    for (start, end) in [("2026-01-01", "2026-01-08"), ("2026-01-03", "2026-01-05T12:00:00Z")] {
        let o = quiver_with_env(&dir, &["materialize", "--start", start, "--end", end], &env);
        assert!(o.status.success(), "{:?}", text(&o));
        files_after.push(live_files(&table));
    }
    assert_eq!(files_after[0].len(), 4, "one file per writer: {:?}", files_after[0]);
    // The first run's files all straddle the second window: each is replaced by its rows
    // outside the window, next to the second run's four files.
    assert_eq!(files_after[1].len(), 8, "{:?}", files_after[1]);
    assert!(files_after[0].is_disjoint(&files_after[1]));
    let sidecar: serde_json::Value =
        serde_json::from_slice(&std::fs::read(table.join("_quiver/sorted_files.json")).unwrap()).unwrap();
    let listed: BTreeSet<String> =
        sidecar["files"].as_array().unwrap().iter().map(|f| f.as_str().unwrap().to_string()).collect();
    assert_eq!(listed, files_after[1], "every file written is listed as sorted");
    online_matches_training(&dir, "2026-01-07T23:59:59.999999999Z").await;

    let o = quiver_with_env(
        &dir,
        &["materialize", "--start", "2026-01-01", "--end", "2026-01-02"],
        &[("QUIVER_MIN_ROWS_PER_WRITER", "none")],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("QUIVER_MIN_ROWS_PER_WRITER=\"none\""), "{:?}", text(&o));
    assert_eq!(live_files(&table), files_after[1], "nothing written");
}

/// A window far larger than the memory limit: each partition's sort spills sorted runs and
/// merges them from disk. The same rows land (the point-in-time join checks each file's
/// order as it reads), and what a model gets online still equals what the training set says.
#[tokio::test]
async fn a_window_larger_than_the_memory_limit_is_sorted_through_spill_files() {
    let (_tmp, dir) = project("");
    let args = ["materialize", "--start", "2026-01-01", "--end", "2026-01-08", "--json"];
    let env = [
        ("DATAFUSION_EXECUTION_TARGET_PARTITIONS", "2"),
        ("DATAFUSION_EXECUTION_BATCH_SIZE", "100"),
        ("QUIVER_MIN_ROWS_PER_WRITER", "1"),
        ("QUIVER_MEMORY_LIMIT", "256KiB"),
        ("QUIVER_LOG", "quiver_offline::rowsort=debug"),
    ];
    let o = quiver_with_env(&dir, &args, &env);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(err.contains("merging its sorted runs from spill files"), "the sorts did not spill:\n{err}");
    let rows = |report: &str| -> Vec<(String, u64)> {
        let report: serde_json::Value = serde_json::from_str(report).unwrap();
        let views = report["views"].as_array().unwrap();
        views.iter().map(|v| (v["view"].as_str().unwrap().to_string(), v["rows"].as_u64().unwrap())).collect()
    };
    let spilled = rows(&out);
    online_matches_training(&dir, "2026-01-07T23:59:59.999999999Z").await;
    // The same window again on the default pool, sorted in memory: the same rows per view.
    assert_eq!(rows(&ok(&dir, &args)), spilled);
    online_matches_training(&dir, "2026-01-07T23:59:59.999999999Z").await;
}

#[tokio::test]
async fn a_backfill_of_an_older_window_never_moves_online_values_back() {
    let (_tmp, dir) = project("");
    ok(&dir, &["materialize", "--start", "2026-01-04", "--end", "2026-01-08", "--views", "customer_profile"]);
    let before = online_value(&dir, "customer_profile:current_balance", "customer_id=2001", "2026-01-08");
    assert_eq!(before["status"], "PRESENT");
    ok(&dir, &["materialize", "--start", "2026-01-01", "--end", "2026-01-04", "--views", "customer_profile"]);
    assert_eq!(
        online_value(&dir, "customer_profile:current_balance", "customer_id=2001", "2026-01-08"),
        before
    );
}

#[tokio::test]
async fn bad_online_requests_name_what_is_wrong() {
    let (_tmp, dir) = project("");
    ok(&dir, &["materialize", "--start", "2026-01-01", "--end", "2026-01-08", "--views", "driver_stats"]);
    for (args, expected) in [
        (vec!["--features", "driver_stats:conv_rat", "--entity", "driver_id=1"], "did you mean 'conv_rate'"),
        (
            vec!["--features", "driver_stat:conv_rate", "--entity", "driver_id=1"],
            "feature view 'driver_stat' not found",
        ),
        (
            vec!["--features", "driver_stats:conv_rate", "--entity", "driver_id=abc"],
            "join key 'driver_id' is int64; 'abc' is not an integer",
        ),
        (
            vec!["--features", "driver_stats:conv_rate", "--entity", "customer_id=1"],
            "'customer_id' is not a join key of the requested views",
        ),
        (
            vec!["--features", "driver_stats:conv_rate", "--entity", "driver_id=1,driver_id=2"],
            "join key 'driver_id' is given twice",
        ),
        (
            vec![
                "--features",
                "driver_stats:conv_rate,customer_profile:current_balance",
                "--entity",
                "driver_id=1",
            ],
            "entity row 0 has no value for join key 'customer_id' of feature view 'customer_profile'",
        ),
        (
            vec!["--features", "driver_stats:conv_rate", "--entity", "driver_id"],
            "write join keys as name=value",
        ),
    ] {
        let mut all = vec!["online"];
        all.extend(args.iter().copied());
        let o = quiver(&dir, &all);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(expected), "{args:?}: expected {expected:?} in {err}");
    }
}

#[tokio::test]
async fn redis_store_serves_what_training_saw_and_forgets_removed_views() {
    let server = common::RedisServer::start();
    let (_tmp, dir) = project(&format!("online_store:\n  type: redis\n  url: {}\n", server.url()));
    ok(&dir, &["materialize", "--start", "2026-01-01", "--end", "2026-01-08"]);
    let keys: u64 = server.cli(&["dbsize"]).trim().parse().unwrap();
    assert!(keys > 100, "{keys} keys");
    assert!(server.cli(&["exists", "rides:{driver_id=1001}:driver_stats"]).trim() == "1");
    online_matches_training(&dir, "2026-01-07T23:59:59.999999999Z").await;

    // Remove driver_trip_features from the definitions: apply deletes its online rows only.
    let views = dir.join("feature_defs/rides/views.yaml");
    let text = std::fs::read_to_string(&views).unwrap();
    let start = text.find("  - name: driver_trip_features").unwrap();
    let end = text[start + 1..].find("\n  - name: ").map_or(text.len(), |i| start + 1 + i + 1);
    std::fs::write(&views, format!("{}{}", &text[..start], &text[end..])).unwrap();
    let services = dir.join("feature_defs/rides/services.yaml");
    let s = std::fs::read_to_string(&services).unwrap();
    let s: String =
        s.lines().filter(|l| !l.contains("driver_trip_features")).map(|l| format!("{l}\n")).collect();
    std::fs::write(&services, s).unwrap();
    let applied = ok(&dir, &["apply"]);
    assert!(applied.contains("online rows of feature view 'driver_trip_features'"), "{applied}");
    assert_eq!(server.cli(&["keys", "rides:*:driver_trip_features"]).trim(), "");
    assert!(server.cli(&["exists", "rides:{driver_id=1001}:driver_stats"]).trim() == "1");
}

#[tokio::test]
async fn a_redis_that_lost_its_rows_is_refilled_by_online_rebuild() {
    let server = common::RedisServer::start();
    let (_tmp, dir) = project(&format!("online_store:\n  type: redis\n  url: {}\n", server.url()));
    ok(&dir, &["materialize-incremental", "--end", "2026-01-08"]);
    let at = "2026-01-07T23:59:59.999999999Z";
    online_matches_training(&dir, at).await;

    // Redis restarted without persistence: every row is gone, and the watermarks say there is
    // nothing left to materialize. The skip says how to refill the store.
    server.cli(&["flushall"]);
    assert_eq!(online_value(&dir, "driver_stats:conv_rate", "driver_id=1001", at)["status"], "NOT_FOUND");
    let skipped = ok(&dir, &["materialize-incremental", "--end", "2026-01-08"]);
    assert!(skipped.contains("quiver online rebuild"), "{skipped}");
    assert_eq!(server.cli(&["dbsize"]).trim(), "0");

    let rebuilt = ok(&dir, &["online", "rebuild"]);
    assert!(rebuilt.contains("driver_stats") && rebuilt.contains("WRITTEN"), "{rebuilt}");
    online_matches_training(&dir, at).await;

    // Again, one view: every entity is found, nothing is newer than what is stored.
    let again: serde_json::Value =
        serde_json::from_str(&ok(&dir, &["--json", "online", "rebuild", "--views", "driver_stats"])).unwrap();
    let view = &again["views"][0];
    assert_eq!(view["view"], "driver_stats");
    assert_eq!(view["entities"], 40, "{again}");
    assert_eq!(view["written"], 0, "{again}");

    let err = support::fails(&dir, &["online", "rebuild", "--views", "driver_stat"]);
    assert!(err.contains("unknown feature view 'driver_stat'"), "{err}");
}
