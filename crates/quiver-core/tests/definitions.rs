//! Parsing and validating definitions: every kind of problem is reported, with its file,
//! line, object and field, and all of them at once.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use quiver_core::definitions::FeatureRef;
use quiver_core::dtype::DType;
use quiver_core::problem::{ObjectKind, Problem};
use quiver_core::repo::{LoadedDefinitions, parse_documents};
use quiver_core::validate::validate_references;

const GOOD: &str = r#"
entities:
  - name: driver
    join_keys: [{name: driver_id, dtype: int64}]
    description: a driver
  - name: driver_city
    join_keys:
      - {name: driver_id, dtype: int64}
      - {name: city, dtype: string}
sources:
  - name: driver_stats_src
    path: driver_stats/*.parquet
    format: parquet
    timestamp_field: event_timestamp
    created_timestamp_field: created
  - name: zones_src
    path: zones/
    format: csv
    timestamp_field: ts
    options: {delimiter: ";", has_header: true}
feature_views:
  - name: driver_stats
    entities: [driver]
    source: driver_stats_src
    ttl: 2h
    features:
      - {name: conv_rate, dtype: float32}
      - {name: avg_daily_trips, dtype: int64}
      - {name: embedding, dtype: "list<float32>"}
    tags: {team: pricing}
    owner: pricing@example.com
  - name: city_stats
    entities: [driver, driver_city]
    source: driver_stats_src
    ttl: 0
    online: false
    features:
      - {name: trips, dtype: int64}
    transform: |
      SELECT driver_id, city, event_timestamp, created, trips FROM source
feature_services:
  - name: model_v1
    features: [driver_stats, city_stats:trips]
"#;

fn load(docs: &[(&str, &str)]) -> LoadedDefinitions {
    parse_documents(&docs.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect::<Vec<_>>())
}

fn all_problems(loaded: &LoadedDefinitions) -> Vec<Problem> {
    let mut v = loaded.problems.0.clone();
    v.extend(validate_references(loaded).0);
    v
}

#[test]
fn the_contract_format_parses_into_definitions() {
    let loaded = load(&[("defs.yaml", GOOD)]);
    assert!(all_problems(&loaded).is_empty(), "{:?}", all_problems(&loaded));
    let d = &loaded.definitions;
    assert_eq!(d.entities.len(), 2);
    let view = d.feature_view("driver_stats").unwrap();
    assert_eq!(view.ttl.seconds(), 7200);
    assert!(view.online);
    assert_eq!(view.features[2].dtype, DType::List(Box::new(DType::Float32)));
    assert_eq!(view.tags.get("team").map(String::as_str), Some("pricing"));
    let city = d.feature_view("city_stats").unwrap();
    assert!(city.ttl.is_unbounded());
    assert!(!city.online);
    assert!(city.transform.as_deref().unwrap().contains("FROM source"));
    // Join keys are the union of the entities' keys, in order, without repeats.
    let keys: Vec<String> = d.join_keys(city).into_iter().map(|k| k.name).collect();
    assert_eq!(keys, ["driver_id", "city"]);
    let csv = d.source("zones_src").unwrap().csv.clone().unwrap();
    assert_eq!(csv.delimiter, ';');
    let refs = d.resolve_service("model_v1").unwrap();
    assert_eq!(
        refs,
        vec![
            FeatureRef { view: "driver_stats".into(), feature: "conv_rate".into() },
            FeatureRef { view: "driver_stats".into(), feature: "avg_daily_trips".into() },
            FeatureRef { view: "driver_stats".into(), feature: "embedding".into() },
            FeatureRef { view: "city_stats".into(), feature: "trips".into() },
        ]
    );
}

#[test]
fn files_are_merged_and_objects_can_reference_across_files() {
    let (entities, rest) = GOOD.split_at(GOOD.find("sources:").unwrap());
    let loaded = load(&[("a.yaml", entities), ("b.yaml", rest), ("empty.yaml", "# nothing here\n")]);
    assert!(all_problems(&loaded).is_empty(), "{:?}", all_problems(&loaded));
    assert_eq!(loaded.definitions.feature_views.len(), 2);
    assert_eq!(loaded.origins.object(ObjectKind::Entity, "driver").unwrap().file, "a.yaml");
    assert_eq!(loaded.origins.object(ObjectKind::FeatureView, "driver_stats").unwrap().file, "b.yaml");
}

/// Finds the problem about `object`/`field` containing `text`, or fails listing them all.
fn expect(problems: &[Problem], object: &str, field: Option<&str>, text: &str) -> Problem {
    problems
        .iter()
        .find(|p| {
            p.object.as_deref() == Some(object) && p.field.as_deref() == field && p.message.contains(text)
        })
        .cloned()
        .unwrap_or_else(|| panic!("no problem for {object} {field:?} containing {text:?} in:\n{problems:#?}"))
}

#[test]
fn every_structural_problem_is_reported_at_once_with_its_place() {
    let broken = GOOD
        .replace("source: driver_stats_src\n    ttl: 2h", "source: driver_stats_sr\n    ttl: 2x")
        .replace("{name: avg_daily_trips, dtype: int64}", "{name: avg_daily_trips, dtype: integer}")
        .replace("entities: [driver, driver_city]", "entities: [driver, drivr_city]")
        .replace(
            "features: [driver_stats, city_stats:trips]",
            "features: [driver_stats, city_stats:trip, nope]",
        );
    let extra = r#"
entities:
  - name: driver
    join_keys: [{name: id, dtype: string}]
  - name: rider
    join_keys: [{name: rider_id, dtype: float64}]
"#;
    let loaded = load(&[("defs.yaml", &broken), ("more.yaml", extra)]);
    let problems = all_problems(&loaded);

    // bad ttl, with line and a hint
    let ttl = expect(&problems, "driver_stats", Some("ttl"), "unknown unit 'x'");
    let origin = ttl.origin.clone().unwrap();
    assert_eq!(origin.file, "defs.yaml");
    assert_eq!(origin.line, broken.lines().position(|l| l.contains("ttl: 2x")).unwrap() as u64 + 1);
    assert!(ttl.hint.unwrap().contains("2h"));
    // wrong dtype
    expect(&problems, "driver_stats", Some("features[avg_daily_trips].dtype"), "unknown dtype 'integer'");
    // duplicate name, pointing at the first declaration
    let dup = expect(&problems, "driver", Some("name"), "duplicate name");
    assert!(dup.message.contains("defs.yaml:"), "{}", dup.message);
    assert_eq!(dup.origin.unwrap().file, "more.yaml");
    // a float join key
    expect(&problems, "rider", Some("join_keys[rider_id].dtype"), "cannot be a join key type");
    // unknown entity, with a suggestion
    let unknown =
        expect(&problems, "city_stats", Some("entities[drivr_city]"), "unknown entity 'drivr_city'");
    assert!(unknown.message.contains("did you mean 'driver_city'"));
    // bad service references
    expect(&problems, "model_v1", Some("features[city_stats:trip]"), "has no feature 'trip'");
    expect(&problems, "model_v1", Some("features[nope]"), "unknown feature view 'nope'");
    // a view with a bad ttl and a bad dtype is still checked: its unknown source is reported
    expect(&problems, "driver_stats", Some("source"), "unknown source 'driver_stats_sr'");
    // and a reference to its unreadable feature is not reported a second time
    assert!(!problems.iter().any(|p| p.message.contains("unknown feature view 'driver_stats'")));
    assert!(!problems.iter().any(|p| p.message.contains("no feature 'avg_daily_trips'")));
    assert_eq!(problems.len(), 8, "{problems:#?}");
}

#[test]
fn the_unknown_source_is_reported() {
    let broken =
        GOOD.replace("    source: driver_stats_src\n    ttl: 0", "    source: driver_stat_src\n    ttl: 0");
    let problems = all_problems(&load(&[("defs.yaml", &broken)]));
    let p = expect(&problems, "city_stats", Some("source"), "unknown source 'driver_stat_src'");
    assert!(p.message.contains("did you mean 'driver_stats_src'"));
}

#[test]
fn syntax_errors_and_misspelt_keys_name_the_file_and_line() {
    let misspelt = "feature_views:\n  - name: v\n    entities: [driver]\n    source: s\n    ttll: 2h\n    features: [{name: a, dtype: int64}]\n";
    let bad_yaml = "entities:\n  - name: [unclosed\n";
    let unknown_section = "feature_view:\n  - name: v\n";
    let loaded = load(&[("a.yaml", misspelt), ("b.yaml", bad_yaml), ("c.yaml", unknown_section)]);
    let problems = &loaded.problems.0;
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(problems[0].message.contains("ttll"), "{}", problems[0]);
    assert_eq!(problems[0].origin.as_ref().unwrap().file, "a.yaml");
    assert_eq!(problems[0].origin.as_ref().unwrap().line, 5);
    assert_eq!(problems[1].origin.as_ref().unwrap().file, "b.yaml");
    assert!(problems[2].message.contains("feature_view"), "{}", problems[2]);
}

#[test]
fn missing_fields_and_collisions_are_reported_per_field() {
    let yaml = r#"
entities:
  - name: driver
    join_keys: [{name: driver_id, dtype: int64}]
  - name: car
    join_keys: [{name: driver_id, dtype: string}]
  - join_keys: [{name: x, dtype: int64}]
sources:
  - name: s
    format: xml
    timestamp_field: ts
    created_timestamp_field: ts
  - name: ok
    path: p/
    format: parquet
    timestamp_field: event_timestamp
feature_views:
  - name: v
    entities: [driver, car]
    source: ok
    features:
      - {name: driver_id, dtype: int64}
      - {name: event_timestamp, dtype: timestamp}
      - {name: a, dtype: int64}
      - {name: a, dtype: int64}
      - {name: "bad name", dtype: int64}
  - name: "my-view"
    entities: [driver]
    source: ok
    features: [{name: a, dtype: int64}]
  - name: w
    entities: [driver, driver]
    source: ok
    features: [{name: b}]
    transform: "  "
"#;
    let problems = all_problems(&load(&[("x.yaml", yaml)]));
    expect(&problems, "s", Some("path"), "missing `path`");
    expect(&problems, "s", Some("format"), "unknown format 'xml'");
    expect(&problems, "s", Some("created_timestamp_field"), "same column as timestamp_field");
    assert!(problems.iter().any(|p| p.message.contains("entity without a `name`")), "{problems:#?}");
    expect(&problems, "v", Some("entities[car]"), "join key 'driver_id' is string in entity 'car' but int64");
    expect(&problems, "v", Some("features[driver_id]"), "a join key of this view");
    expect(&problems, "v", Some("features[event_timestamp]"), "reserved");
    expect(&problems, "v", Some("features[a]"), "listed twice");
    expect(&problems, "v", Some("features[bad name]"), "invalid name");
    expect(&problems, "my-view", Some("name"), "invalid name");
    expect(&problems, "w", Some("features[b].dtype"), "missing `dtype`");
}

#[test]
fn every_dtype_in_the_contract_is_accepted_and_lists_of_bool_are_not() {
    let mut features = String::new();
    for (i, d) in [
        "bool",
        "int32",
        "int64",
        "float32",
        "float64",
        "string",
        "bytes",
        "timestamp",
        "list<int32>",
        "list<int64>",
        "list<float32>",
        "list<float64>",
        "list<string>",
    ]
    .iter()
    .enumerate()
    {
        features.push_str(&format!("      - {{name: f{i}, dtype: \"{d}\"}}\n"));
    }
    features.push_str("      - {name: bad, dtype: \"list<bool>\"}\n");
    let yaml = format!(
        "entities:\n  - {{name: e, join_keys: [{{name: k, dtype: string}}]}}\nsources:\n  - {{name: s, path: p/, format: json, timestamp_field: ts}}\nfeature_views:\n  - name: v\n    entities: [e]\n    source: s\n    features:\n{features}"
    );
    let problems = all_problems(&load(&[("x.yaml", &yaml)]));
    assert_eq!(problems.len(), 1, "{problems:#?}");
    expect(&problems, "v", Some("features[bad].dtype"), "list<bool> is not supported");
}

#[test]
fn plain_scalars_keep_their_text() {
    // YAML 1.1 would read these as booleans or numbers; as names and durations they are text.
    let yaml = "entities:\n  - {name: n, join_keys: [{name: yes, dtype: string}]}\nsources:\n  - {name: off, path: p/, format: json, timestamp_field: on}\nfeature_views:\n  - name: v\n    entities: [n]\n    source: off\n    ttl: 0\n    features: [{name: y, dtype: int64}, {name: 'no', dtype: int64}]\n";
    let loaded = load(&[("x.yaml", yaml)]);
    assert!(all_problems(&loaded).is_empty(), "{:?}", all_problems(&loaded));
    let d = &loaded.definitions;
    assert_eq!(d.entities[0].name, "n");
    assert_eq!(d.entities[0].join_keys[0].name, "yes");
    assert_eq!(d.sources[0].name, "off");
    assert_eq!(d.sources[0].timestamp_field, "on");
    let names: Vec<&str> = d.feature_views[0].features.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["y", "no"]);
    assert!(d.feature_views[0].ttl.is_unbounded());
}

/// GOOD's driver_stats with `expectations` (and optionally `on_failure`) added.
fn with_expectations(block: &str) -> String {
    GOOD.replace("    owner: pricing@example.com\n", &format!("    owner: pricing@example.com\n{block}"))
}

#[test]
fn expectations_parse_into_one_check_each() {
    use quiver_core::definitions::{Bound, Expectation, OnFailure};
    let text = with_expectations(
        "    expectations:
      - {column: conv_rate, not_null: true, min: 0, max: 1}
      - {column: avg_daily_trips, min: 0}
      - {unique: [driver_id, event_timestamp]}
      - {rows: {min: 1000}}
      - {freshness: 2h}
    on_failure: warn
",
    );
    let loaded = load(&[("defs.yaml", &text)]);
    assert!(all_problems(&loaded).is_empty(), "{:#?}", all_problems(&loaded));
    let view = loaded.definitions.feature_view("driver_stats").unwrap();
    assert_eq!(view.on_failure, OnFailure::Warn);
    assert_eq!(
        view.expectations,
        vec![
            Expectation::NotNull { column: "conv_rate".into() },
            Expectation::Range { column: "conv_rate".into(), min: Some(Bound(0.0)), max: Some(Bound(1.0)) },
            Expectation::Range { column: "avg_daily_trips".into(), min: Some(Bound(0.0)), max: None },
            Expectation::Unique { columns: vec!["driver_id".into(), "event_timestamp".into()] },
            Expectation::Rows { min: Some(1000), max: None },
            Expectation::Freshness { max_age: "2h".parse().unwrap() },
        ]
    );
    let shown: Vec<String> = view.expectations.iter().map(ToString::to_string).collect();
    assert_eq!(shown[1], "conv_rate between 0 and 1");
    assert_eq!(shown[3], "unique [driver_id, event_timestamp]");
    // A view without expectations serializes as before (its registry hash does not move).
    let plain = load(&[("defs.yaml", GOOD)]);
    let json = serde_json::to_string(plain.definitions.feature_view("driver_stats").unwrap()).unwrap();
    assert!(!json.contains("expectations") && !json.contains("on_failure"), "{json}");
    // And one with them round-trips through the registry's JSON.
    let json = serde_json::to_string(view).unwrap();
    let back: quiver_core::definitions::FeatureView = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, view);
}

#[test]
fn every_bad_expectation_is_reported_with_its_line() {
    let text = with_expectations(
        "    expectations:
      - {column: conv_rat, not_null: true}
      - {column: conv_rate, min: 2, max: 1}
      - {column: avg_daily_trips, allowed: [1, 2]}
      - {column: embedding, min: 0}
      - {unique: [driver_id, nope]}
      - {rows: {min: 10, max: 5}}
      - {freshness: soon}
      - {column: conv_rate}
      - {column: conv_rate, unique: [driver_id]}
    on_failure: maybe
",
    );
    let loaded = load(&[("defs.yaml", &text)]);
    let problems = all_problems(&loaded);
    let line_of = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() as u64 + 1;
    let at = |field: &str, message: &str, needle: &str| {
        let p = expect(&problems, "driver_stats", Some(field), message);
        assert_eq!(p.origin.as_ref().unwrap().line, line_of(needle), "{p:?}");
        p
    };
    let unknown = at("expectations[0].column", "unknown column 'conv_rat'", "conv_rat,");
    assert!(unknown.message.contains("did you mean 'conv_rate'"), "{unknown:?}");
    at("expectations[1].min", "min 2 is above max 1", "min: 2, max: 1");
    at(
        "expectations[2].allowed",
        "allowed needs a string or bool column; 'avg_daily_trips' is int64",
        "allowed: [1, 2]",
    );
    at(
        "expectations[3].column",
        "min and max need a number column; 'embedding' is list<float32>",
        "embedding, min",
    );
    at("expectations[4].unique[nope]", "unknown column 'nope'", "nope]");
    at("expectations[5].rows", "min 10 is above max 5", "max: 5");
    at("expectations[6].freshness", "soon", "soon");
    at("expectations[7]", "names column 'conv_rate' but no check", "- {column: conv_rate}");
    at("expectations[8]", "one kind of check", "unique: [driver_id]}");
    at("on_failure", "unknown on_failure 'maybe'", "on_failure: maybe");
    assert_eq!(problems.len(), 10, "{problems:#?}");
    // A misspelt key is a problem of the file, with its line, like any other misspelt key.
    let text = with_expectations("    expectations:\n      - {column: conv_rate, between: [0, 1]}\n");
    let problems = all_problems(&load(&[("defs.yaml", &text)]));
    assert!(problems.iter().any(|p| p.message.contains("between")), "{problems:#?}");
}

#[test]
fn drift_thresholds_parse_with_defaults_and_bad_ones_are_reported() {
    use quiver_core::definitions::{Bound, DriftThresholds};
    let loaded = load(&[("defs.yaml", &with_expectations("    drift: {psi: 0.3}\n"))]);
    assert!(all_problems(&loaded).is_empty(), "{:#?}", all_problems(&loaded));
    let view = loaded.definitions.feature_view("driver_stats").unwrap();
    assert_eq!(view.drift, Some(DriftThresholds { psi: Bound(0.3), ..DriftThresholds::default() }));
    assert_eq!(loaded.definitions.feature_view("city_stats").unwrap().drift, None);

    let text = with_expectations("    drift: {psi: 0, ks: 2, js: x}\n");
    let problems = all_problems(&load(&[("defs.yaml", &text)]));
    for field in ["drift.psi", "drift.ks", "drift.js"] {
        let p = expect(&problems, "driver_stats", Some(field), "threshold");
        assert_eq!(
            p.origin.unwrap().line,
            text.lines().position(|l| l.contains("drift:")).unwrap() as u64 + 1
        );
    }
}

#[test]
fn a_drift_reference_period_parses_and_bad_ones_are_reported_with_their_line() {
    use chrono::TimeZone;
    let text = with_expectations("    drift: {psi: 0.3, reference: 2026-01-01..2026-01-08T12:00:00Z}\n");
    let loaded = load(&[("defs.yaml", &text)]);
    assert!(all_problems(&loaded).is_empty(), "{:#?}", all_problems(&loaded));
    let drift = loaded.definitions.feature_view("driver_stats").unwrap().drift.unwrap();
    let period = drift.reference.unwrap();
    assert_eq!(period.start, chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap());
    assert_eq!(period.end, chrono::Utc.with_ymd_and_hms(2026, 1, 8, 12, 0, 0).unwrap());

    for (bad, says) in [
        ("2026-01-08..2026-01-01", "empty"),
        ("2026-01-01", "START..END"),
        ("2026-01-01..9999-01-01", "end is not a time"),
        ("yesterday..2026-01-01", "start is not a time"),
    ] {
        let text = with_expectations(&format!("    drift: {{reference: '{bad}'}}\n"));
        let problems = all_problems(&load(&[("defs.yaml", &text)]));
        let p = expect(&problems, "driver_stats", Some("drift.reference"), says);
        assert_eq!(
            p.origin.unwrap().line,
            text.lines().position(|l| l.contains("drift:")).unwrap() as u64 + 1,
            "{bad}"
        );
    }
}
