//! The `quiver` binary end to end, as a user runs it: quickstart in an empty folder, plan,
//! apply, list, describe, history, and broken definitions that fail with every problem
//! listed and the registry untouched.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{fails, json, ok, quiver, text};

/// A quickstart project in a fresh temporary folder.
fn project() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let out = ok(tmp.path(), &["quickstart", "--dir", "demo", "--rows", "2000"]);
    assert!(out.contains("Applied registry version 1"), "{out}");
    // The quickstart shows the reviewed path: a plan file, applied as it was reviewed.
    assert!(
        out.contains("$ quiver plan --out plan.json") && out.contains("$ quiver apply plan.json"),
        "{out}"
    );
    assert!(out.contains("driver_stats"), "{out}");
    assert!(out.contains("Wrote 1000 rows with 5 features"), "{out}");
    assert!(out.contains("$ quiver stats driver_stats"), "{out}");
    let dir = tmp.path().join("demo");
    assert!(dir.join("training.parquet").is_file());
    assert!(dir.join("training.parquet.manifest.json").is_file());
    (tmp, dir)
}

fn registry_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir.join(".quiver/registry/versions"))
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

#[test]
fn quickstart_runs_the_whole_flow_and_the_project_keeps_working() {
    let (_tmp, dir) = project();
    // The project's own commands, from inside the folder (./quiver.yaml is found).
    assert!(ok(&dir, &["plan"]).contains("No changes: registry version 1 already matches"));
    assert!(ok(&dir, &["apply"]).contains("No changes: registry stays at version 1"));

    let views = json(&dir, &["list", "views"]);
    let names: Vec<&str> =
        views["items"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
    for expected in [
        "driver_stats",
        "customer_profile",
        "driver_city_stats",
        "customer_embeddings",
        "zone_demand",
        "driver_profile",
        "driver_trip_features",
    ] {
        assert!(names.contains(&expected), "{expected} missing from {names:?}");
    }
    assert_eq!(json(&dir, &["list", "entities"])["items"].as_array().unwrap().len(), 4);
    assert_eq!(json(&dir, &["list", "services"])["items"].as_array().unwrap().len(), 2);
    assert!(ok(&dir, &["list", "sources"]).contains("zone_demand"));

    let described = ok(&dir, &["describe", "view", "driver_stats"]);
    assert!(described.contains("ttl: 2h"), "{described}");
    assert!(described.contains("join keys: driver_id:int64"), "{described}");
    let d = json(&dir, &["describe", "view", "customer_embeddings"]);
    let features = d["object"]["features"].as_array().unwrap();
    assert!(features.iter().any(|f| f["dtype"] == "list<float32>"), "{d}");
    assert_eq!(d["hash"].as_str().unwrap().len(), 64);

    let history = json(&dir, &["registry", "history"]);
    assert_eq!(history["versions"].as_array().unwrap().len(), 1);

    // The quickstart's materialization kept statistics; they agree with its row count and
    // with the view's expectations (rates between 0 and 1).
    let stats = json(&dir, &["stats", "driver_stats"]);
    let rows = stats["rows"].as_u64().unwrap();
    assert!(rows > 0, "{stats}");
    assert_eq!(stats["status"], "succeeded");
    let conv = &stats["features"]["conv_rate"];
    assert_eq!(conv["count"].as_u64().unwrap(), rows, "{stats}");
    let (min, max) = (conv["min"].as_f64().unwrap(), conv["max"].as_f64().unwrap());
    assert!((0.0..=1.0).contains(&min) && (min..=1.0).contains(&max), "{conv}");
    let median = conv["quantiles"]["0.5"].as_f64().unwrap();
    assert!((min..=max).contains(&median), "{conv}");
    assert_eq!(conv["histogram"]["bins"]["counts"].as_array().unwrap().len(), 20, "{conv}");
    assert!(ok(&dir, &["stats", "driver_stats", "--run", "1"]).contains("conv_rate"));
    assert!(fails(&dir, &["stats", "driver_stat"]).contains("did you mean 'driver_stats'"));

    // Skew: what the online store serves agrees with what training reads (exit 0).
    let skew = json(&dir, &["skew", "--service", "ride_ranking_v1", "--sample", "20"]);
    assert_eq!(skew["entities"], 20, "{skew}");
    let features = skew["features"].as_object().unwrap();
    assert_eq!(features.len(), 5, "{skew}");
    assert!(features.values().all(|f| f["differ"] == 0), "{skew}");

    // Drift: a period against itself has not moved (exit 0); under thresholds no real pair
    // of periods stays below, the first half of the week against the second drifts (exit 4).
    let period = ["--reference", "2026-01-01..2026-01-04", "--current", "2026-01-01..2026-01-04"];
    let same = json(&dir, &[&["drift", "driver_stats"][..], &period[..]].concat());
    assert_eq!(same["features"]["conv_rate"]["drifted"], false, "{same}");
    assert_eq!(same["features"]["conv_rate"]["psi"], 0.0, "{same}");
    let views = dir.join("feature_defs/rides/views.yaml");
    let defined = std::fs::read_to_string(&views).unwrap();
    let strict = defined.replace("drift: {psi: 0.2, ks: 0.1}", "drift: {psi: 0.000001, ks: 0.000001}");
    assert_ne!(strict, defined);
    std::fs::write(&views, strict).unwrap();
    ok(&dir, &["apply"]);
    let moved = [
        "drift",
        "driver_stats",
        "--reference",
        "2026-01-01..2026-01-04",
        "--current",
        "2026-01-04..2026-01-08",
    ];
    let o = quiver(&dir, &moved);
    assert_eq!(o.status.code(), Some(4), "{:?}", text(&o));
    assert!(
        text(&o).1.contains("feature view 'driver_stats': ") && text(&o).1.contains("drifted"),
        "{:?}",
        text(&o)
    );
    let bad = fails(
        &dir,
        &["drift", "driver_stats", "--reference", "2026-01-04", "--current", "2026-01-01..2026-01-02"],
    );
    assert!(bad.contains("START..END"), "{bad}");
    // Without periods, the declared check: the newest successful window against the
    // declared reference period.
    let declared = defined.replace(
        "drift: {psi: 0.2, ks: 0.1}",
        "drift: {psi: 0.2, ks: 0.1, reference: 2026-01-01..2026-01-04}",
    );
    std::fs::write(&views, declared).unwrap();
    ok(&dir, &["apply"]);
    let newest = json(&dir, &["stats", "driver_stats"]);
    let o = quiver(&dir, &["drift", "driver_stats", "--json"]);
    assert!(matches!(o.status.code(), Some(0 | 4)), "{:?}", text(&o));
    let checked: serde_json::Value = serde_json::from_str(&text(&o).0).unwrap();
    assert_eq!(checked["reference"]["start"], "2026-01-01T00:00:00Z", "{checked}");
    assert_eq!(checked["reference"]["end"], "2026-01-04T00:00:00Z", "{checked}");
    assert_eq!(checked["current"], newest["window"], "{checked}");
    let half = quiver(&dir, &["drift", "driver_stats", "--reference", "2026-01-01..2026-01-02"]);
    assert_eq!(half.status.code(), Some(2), "{:?}", text(&half));
    assert!(text(&half).1.contains("--current"), "{:?}", text(&half));

    // Another folder reaches the same project through --config and QUIVER_CONFIG.
    let elsewhere = dir.parent().unwrap();
    assert!(ok(elsewhere, &["--config", "demo/quiver.yaml", "plan"]).contains("No changes"));
    let o = Command::new(env!("CARGO_BIN_EXE_quiver"))
        .args(["list", "views"])
        .current_dir(elsewhere)
        .env("QUIVER_CONFIG", dir.join("quiver.yaml"))
        .output()
        .unwrap();
    assert!(o.status.success());
}

#[test]
fn a_window_breaking_an_expectation_fails_with_exit_1_and_is_not_committed() {
    let (_tmp, dir) = project();
    let views = dir.join("feature_defs/rides/views.yaml");
    let defined = std::fs::read_to_string(&views).unwrap();
    let strict =
        defined.replace("{column: conv_rate, min: 0, max: 1}", "{column: conv_rate, min: 0, max: 0.5}");
    assert_ne!(strict, defined);
    std::fs::write(&views, strict).unwrap();
    let plan = ok(&dir, &["plan"]);
    assert!(plan.contains("expectations"), "{plan}");
    ok(&dir, &["apply"]);
    let before = json(&dir, &["stats", "driver_stats"]);

    let args = ["materialize", "--start", "2000-01-01", "--end", "now", "--views", "driver_stats"];
    let err = fails(&dir, &args);
    assert!(
        err.contains("feature view 'driver_stats' broke 1 expectation: conv_rate between 0 and 0.5: "),
        "{err}"
    );
    assert!(err.contains("rows break it") && err.contains("nothing was committed"), "{err}");
    let mut with_json = args.to_vec();
    with_json.push("--json");
    let o = quiver(&dir, &with_json);
    assert_eq!(o.status.code(), Some(1));
    // The views' report, then the failure's own document.
    let stdout = text(&o).0;
    let report: serde_json::Value =
        serde_json::Deserializer::from_str(&stdout).into_iter().next().unwrap().unwrap();
    let broken = &report["views"][0]["expectations"][0];
    assert_eq!(broken["expectation"], "conv_rate between 0 and 0.5");
    let failing = broken["failing_rows"].as_u64().unwrap();
    assert!(failing > 0 && failing < broken["rows"].as_u64().unwrap(), "{broken}");
    let examples = broken["examples"].as_array().unwrap();
    assert_eq!(examples.len(), 5, "{broken}");
    assert!(
        examples.iter().all(|e| e["conv_rate"].as_str().unwrap().parse::<f64>().unwrap() > 0.5),
        "{broken}"
    );
    assert_eq!(report["views"][0]["offline_version"], serde_json::Value::Null);

    // The failed runs kept their statistics; the newest run with them is now a failed one,
    // and the committed table is still the quickstart's.
    let after = json(&dir, &["stats", "driver_stats"]);
    assert_eq!(after["status"], "failed");
    assert_ne!(after["run"], before["run"]);
    let described = json(&dir, &["describe", "view", "driver_stats"]);
    assert_eq!(described["object"]["expectations"][0]["range"]["max"], 0.5);
}

#[test]
fn a_change_is_planned_field_by_field_then_applied_as_a_new_version() {
    let (_tmp, dir) = project();
    let extra = "feature_views:\n  - name: driver_rates\n    entities: [driver]\n    source: driver_stats_src\n    ttl: 1d\n    features:\n      - {name: conv_rate, dtype: float32}\n";
    std::fs::write(dir.join("feature_defs/rides/extra.yaml"), extra).unwrap();
    let plan = ok(&dir, &["plan"]);
    assert!(plan.contains("+ feature view driver_rates"), "{plan}");
    assert!(plan.contains("1 added, 0 changed, 0 removed"), "{plan}");

    let changed = extra.replace("ttl: 1d", "ttl: 36h");
    std::fs::write(dir.join("feature_defs/rides/extra.yaml"), &changed).unwrap();
    let applied = json(&dir, &["apply"]);
    assert_eq!(applied["version"], 2);

    std::fs::write(dir.join("feature_defs/rides/extra.yaml"), changed.replace("ttl: 36h", "ttl: 2d"))
        .unwrap();
    let plan = json(&dir, &["plan"]);
    assert_eq!(plan["registry_version"], 2);
    let change = &plan["changes"][0];
    assert_eq!(change["action"], "changed");
    assert_eq!(change["fields"][0]["path"], "ttl");
    assert_eq!(change["fields"][0]["before"], "36h");
    assert_eq!(change["fields"][0]["after"], "2d");
    ok(&dir, &["apply"]);

    std::fs::remove_file(dir.join("feature_defs/rides/extra.yaml")).unwrap();
    assert!(ok(&dir, &["apply"]).contains("- feature view driver_rates"));
    let history = json(&dir, &["registry", "history"]);
    let versions = history["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 4);
    assert_eq!(versions[3]["summary"]["removed"][0], "feature_views/driver_rates");
    // Version 4 has the same definitions as version 1, so the same hash.
    assert_eq!(versions[3]["definitions_hash"], versions[0]["definitions_hash"]);
}

#[test]
fn broken_definitions_fail_with_every_problem_and_the_registry_unchanged() {
    let (_tmp, dir) = project();
    let before = registry_files(&dir);
    let broken = r#"
entities:
  - name: driver                      # duplicate name
    join_keys: [{name: driver_id, dtype: int64}]
sources:
  - name: broken_src
    path: driver_stats/*.parquet
    format: parquet
    timestamp_field: event_timestamp
feature_views:
  - name: bad_reference
    entities: [drivr]                 # unknown entity
    source: broken_src
    features: [{name: conv_rate, dtype: float32}]
  - name: bad_ttl
    entities: [driver]
    source: broken_src
    ttl: 2 hours
    features: [{name: conv_rate, dtype: float32}]
  - name: bad_dtype
    entities: [driver]
    source: broken_src
    features: [{name: conv_rate, dtype: integer}]
  - name: wrong_type
    entities: [driver]
    source: broken_src
    features: [{name: conv_rate, dtype: int64}]
  - name: missing_column
    entities: [driver]
    source: broken_src
    features: [{name: no_such_column, dtype: float32}]
  - name: bad_sql
    entities: [driver]
    source: broken_src
    features: [{name: conv_rate, dtype: float32}]
    transform: SELEC driver_id FROM source
"#;
    std::fs::write(dir.join("feature_defs/rides/broken.yaml"), broken).unwrap();
    for command in ["plan", "apply"] {
        let o = quiver(&dir, &[command]);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{command}: {out}\n{err}");
        for expected in [
            "entity 'driver', field 'name': duplicate name: an entity named 'driver' is already declared at feature_defs/rides/broken.yaml:3:5",
            "feature view 'bad_reference', field 'entities[drivr]': unknown entity 'drivr'; did you mean 'driver'?",
            "feature view 'bad_ttl', field 'ttl': cannot read '2 hours' as a duration: write it without spaces",
            "feature view 'bad_dtype', field 'features[conv_rate].dtype': unknown dtype 'integer'",
            "feature view 'wrong_type', field 'features[conv_rate]': feature 'conv_rate' is declared int64 but the column is Float32",
            "feature view 'missing_column', field 'features[no_such_column]': feature column 'no_such_column' is not in the source",
            "feature view 'bad_sql', field 'transform': the SQL does not plan",
        ] {
            assert!(err.contains(expected), "{command}: missing {expected:?} in:\n{err}");
        }
        assert!(err.contains("7 problems in the definitions; nothing was applied"), "{err}");
    }
    let o = quiver(&dir, &["plan", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let body: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(body["ok"], false);
    assert_eq!(body["problems"].as_array().unwrap().len(), 7);
    assert_eq!(body["problems"][0]["origin"]["file"], "feature_defs/rides/broken.yaml");
    assert_eq!(registry_files(&dir), before, "the registry is untouched");
}

#[test]
fn quickstart_refuses_a_folder_that_holds_a_project() {
    let (tmp, _dir) = project();
    let o = quiver(tmp.path(), &["quickstart", "--dir", "demo"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("already holds a project"), "{}", text(&o).1);
}

#[test]
fn a_missing_or_bad_config_says_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let o = quiver(tmp.path(), &["plan"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).1.contains("quiver.yaml: not found; pass --config, set QUIVER_CONFIG"),
        "{}",
        text(&o).1
    );
    std::fs::write(tmp.path().join("quiver.yaml"), "project: rides\nregistyr: x\n").unwrap();
    let o = quiver(tmp.path(), &["plan"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("registyr"), "{}", text(&o).1);
    let o = quiver(tmp.path(), &["list", "nonsense"]);
    assert_eq!(o.status.code(), Some(2), "usage errors exit 2");
}

#[test]
fn a_corrupt_registry_is_reported_not_reset() {
    let (_tmp, dir) = project();
    let file = dir.join(".quiver/registry/versions/v00000000000000000001.json");
    std::fs::write(&file, b"{ not json").unwrap();
    for command in ["plan", "apply", "list views", "registry history"] {
        let args: Vec<&str> = command.split(' ').collect();
        let o = quiver(&dir, &args);
        assert_eq!(o.status.code(), Some(1), "{command}");
        assert!(text(&o).1.contains("registry is corrupt"), "{command}: {}", text(&o).1);
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"{ not json");
}

#[test]
fn sample_lake_is_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    ok(tmp.path(), &["sample-lake", "--dir", "a", "--rows", "500", "--seed", "7"]);
    ok(tmp.path(), &["sample-lake", "--dir", "b", "--rows", "500", "--seed", "7"]);
    let listing = |d: &str| {
        let mut v: Vec<(PathBuf, Vec<u8>)> = Vec::new();
        let mut stack = vec![tmp.path().join(d)];
        while let Some(p) = stack.pop() {
            for e in std::fs::read_dir(&p).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    v.push((
                        p.strip_prefix(tmp.path().join(d)).unwrap().to_path_buf(),
                        std::fs::read(&p).unwrap(),
                    ));
                }
            }
        }
        v.sort();
        v
    };
    let a = listing("a");
    assert!(!a.is_empty());
    assert_eq!(a, listing("b"));
}

/// A second config on the same project whose definitions folder is `defs_b` (a copy of the
/// project's, plus `extra.yaml`): another person's checkout sharing the registry.
fn second_checkout(dir: &Path, extra: &str) -> PathBuf {
    let other = dir.join("defs_b");
    std::fs::create_dir_all(&other).unwrap();
    for e in std::fs::read_dir(dir.join("feature_defs/rides")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, other.join(p.file_name().unwrap())).unwrap();
    }
    std::fs::write(other.join("extra.yaml"), extra).unwrap();
    let config = std::fs::read_to_string(dir.join("quiver.yaml")).unwrap();
    let b = dir.join("b.yaml");
    std::fs::write(&b, config.replace("definitions: feature_defs/rides", "definitions: defs_b")).unwrap();
    b
}

fn view_yaml(name: &str) -> String {
    format!(
        "feature_views:\n  - name: {name}\n    entities: [driver]\n    source: driver_stats_src\n    ttl: 1d\n    features:\n      - {{name: conv_rate, dtype: float32}}\n"
    )
}

#[test]
fn an_apply_applies_what_was_reviewed_on_the_version_it_was_reviewed_against_or_nothing() {
    let (_tmp, dir) = project();
    // Alice plans adding a view; Bob (another checkout, same registry) applies first.
    std::fs::write(dir.join("feature_defs/rides/extra.yaml"), view_yaml("alice_view")).unwrap();
    let plain = ok(&dir, &["plan"]);
    assert!(plain.contains("Run `quiver apply --expected-version 1`"), "{plain}");
    let plan = ok(&dir, &["plan", "--out", "alice.plan"]);
    assert!(plan.contains("Run `quiver apply alice.plan`"), "{plan}");
    let bob = second_checkout(&dir, &view_yaml("bob_view"));
    ok(&dir, &["--config", bob.to_str().unwrap(), "apply"]);
    let before = registry_files(&dir);
    // Alice's reviewed plan no longer holds: exit 3, nothing applied, Bob's view stays.
    let refused = quiver(&dir, &["apply", "alice.plan"]);
    assert_eq!(refused.status.code(), Some(3), "{:?}", text(&refused));
    assert!(
        text(&refused).1.contains("registry conflict: expected version 1 but the registry is at version 2")
    );
    assert_eq!(registry_files(&dir), before);
    // Planned again against version 2: Alice's folder lacks Bob's view, and the plan shows
    // its removal for her to review.
    let plan = ok(&dir, &["plan", "--out", "alice.plan"]);
    assert!(plan.contains("- feature view bob_view"), "{plan}");
    // Editing the definitions after the review: refused, exit 3.
    std::fs::write(dir.join("feature_defs/rides/extra.yaml"), view_yaml("alice_view2")).unwrap();
    let edited = quiver(&dir, &["apply", "alice.plan"]);
    assert_eq!(edited.status.code(), Some(3));
    assert!(text(&edited).1.contains("changed since the plan was made"), "{:?}", text(&edited));
    assert_eq!(registry_files(&dir), before);
    std::fs::write(dir.join("feature_defs/rides/extra.yaml"), view_yaml("alice_view")).unwrap();
    let applied = json(&dir, &["apply", "alice.plan"]);
    assert_eq!(applied["version"], 3, "{applied}");
    // --expected-version: the same check without a plan file.
    let stale = quiver(&dir, &["apply", "--expected-version", "2"]);
    assert_eq!(stale.status.code(), Some(3));
    // A file that is not a plan, or a plan of another project, is a usage error.
    std::fs::write(dir.join("not.plan"), "{\"hello\": 1}").unwrap();
    let bad = quiver(&dir, &["apply", "not.plan"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad).1.contains("not a plan written by `quiver plan --out`"), "{:?}", text(&bad));
}

#[test]
fn racing_applies_of_reviewed_plans_never_both_succeed() {
    let (_tmp, dir) = project();
    let bob = second_checkout(&dir, "");
    for round in 0..5 {
        std::fs::write(dir.join("feature_defs/rides/extra.yaml"), view_yaml(&format!("a{round}"))).unwrap();
        std::fs::write(dir.join("defs_b/extra.yaml"), view_yaml(&format!("b{round}"))).unwrap();
        ok(&dir, &["plan", "--out", "a.plan"]);
        ok(&dir, &["--config", bob.to_str().unwrap(), "plan", "--out", "b.plan"]);
        let spawn = |args: &[&str]| {
            Command::new(env!("CARGO_BIN_EXE_quiver"))
                .args(args)
                .current_dir(&dir)
                .env_remove("QUIVER_CONFIG")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        };
        let a = spawn(&["apply", "a.plan"]);
        let b = spawn(&["--config", bob.to_str().unwrap(), "apply", "b.plan"]);
        let codes =
            [a.wait_with_output().unwrap().status.code(), b.wait_with_output().unwrap().status.code()];
        let mut sorted = codes;
        sorted.sort();
        assert_eq!(sorted, [Some(0), Some(3)], "round {round}: {codes:?}");
    }
}
