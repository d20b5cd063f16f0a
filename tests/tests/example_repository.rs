//! The example feature repository (`feature_defs/rides/`) against the sample lake, across
//! crates: it must hold what users copy from it (every kind of key, list features, a SQL
//! transform, services), and it must validate against generated data at other scales and
//! seeds too, not only the quickstart's.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::path::Path;

use quiver_core::dtype::DType;
use quiver_core::repo::load_dir;
use quiver_core::validate::validate_references;
use quiver_offline::check::check_against_lake;
use quiver_offline::lake::Lake;
use quiver_sample::{SampleSpec, generate_lake};
use url::Url;

fn example_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../feature_defs/rides")
}

#[test]
fn the_example_holds_every_kind_of_declaration() {
    let loaded = load_dir(&example_dir(), None).unwrap();
    assert!(loaded.problems.is_empty(), "{}", loaded.problems);
    assert!(validate_references(&loaded).is_empty());
    let d = &loaded.definitions;

    let int_keyed =
        d.entities.iter().filter(|e| e.join_keys.len() == 1 && e.join_keys[0].dtype == DType::Int64);
    assert!(int_keyed.count() >= 2, "a driver and a customer entity keyed by int64");
    assert!(
        d.entities.iter().any(|e| e.join_keys.len() == 1 && e.join_keys[0].dtype == DType::String),
        "a string-keyed entity"
    );
    assert!(
        d.feature_views.iter().any(|v| {
            let keys = d.join_keys(v);
            keys.len() >= 2 && keys.iter().any(|k| k.dtype == DType::String)
        }),
        "a view with a compound key including a string"
    );
    let embedding = DType::List(Box::new(DType::Float32));
    assert!(
        d.feature_views.iter().flat_map(|v| &v.features).any(|f| f.dtype == embedding),
        "a list<float32> feature"
    );
    assert!(d.feature_views.iter().any(|v| v.transform.is_some()), "a view computed by a SQL transform");
    assert!(d.feature_services.len() >= 2, "two feature services");
    for s in &d.feature_services {
        assert!(!d.resolve_service(&s.name).unwrap().is_empty());
    }
    let formats: std::collections::BTreeSet<String> =
        d.sources.iter().map(|s| s.format.to_string()).collect();
    assert_eq!(formats.into_iter().collect::<Vec<_>>(), ["csv", "json", "parquet"]);
}

#[tokio::test]
async fn the_example_validates_against_sample_lakes_of_other_scales_and_seeds() {
    let loaded = load_dir(&example_dir(), None).unwrap();
    for (rows, seed, days) in [(1_000, 1, 1), (30_000, 99, 30)] {
        let tmp = tempfile::tempdir().unwrap();
        let spec = SampleSpec { rows, seed, days, drivers: 50, customers: 200, ..Default::default() };
        generate_lake(tmp.path(), &spec).unwrap();
        let lake = Lake::new(Url::from_directory_path(tmp.path()).unwrap());
        let problems = check_against_lake(&loaded, &lake).await;
        assert!(problems.is_empty(), "rows {rows}, seed {seed}: {problems}");

        // Every view, the SQL transform included, reads rows back through DataFusion.
        for view in &loaded.definitions.feature_views {
            let frame = lake.view_frame(&loaded.definitions, view).await.unwrap();
            let n = frame.count().await.unwrap();
            assert!(n > 0, "{} is empty", view.name);
        }
    }
}
