//! A training set over random data, built the way Quiver builds one, and its check on a
//! Ballista cluster: the same rows as a local run, and the brute-force reference's values.
//! Shared by this crate's `cluster.rs` and quiver-cli's `ballista.rs` (included by path).

#![allow(dead_code)] // each including test uses a part

#[path = "../../../quiver-offline/tests/pit_data/mod.rs"]
pub mod pit_data;

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties, collect};
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use futures::TryStreamExt;
use pit_data::*;
use quiver_ballista::{RunOptions, run_physical};
use quiver_core::definitions::FeatureRef;
use quiver_core::registry::Registry;
use quiver_core::repo::parse_documents;
use quiver_core::storage::resolve_location;
use quiver_offline::historical::{HistoricalRequest, plan_historical, spine_session};
use quiver_offline::lake::Lake;
use quiver_offline::materialize::{Materializer, NoProgress, Span};
use quiver_offline::store::OfflineStore;
use url::Url;

/// A planned training set and what it must contain.
pub struct Case {
    pub seed: u64,
    /// Partitions of each view's join.
    pub partitions: usize,
    pub ctx: SessionContext,
    pub plan: Arc<dyn ExecutionPlan>,
    pub schema: SchemaRef,
    pub spine_rows: Vec<SpineRow>,
    pub views: Vec<ViewData>,
    pub features: Vec<FeatureRef>,
}

/// Seed `seed`'s random views (lake in `tmp`) materialized into the offline store at
/// `offline` (a local folder or an object store the environment reaches), and the training
/// set plan for a random spine written where `put_spine` puts it (it gets the Parquet bytes
/// and returns the spine's URL or path), each view's join in `partitions` partitions.
pub async fn training_case<F, Fut>(
    seed: u64,
    partitions: usize,
    tmp: &Path,
    offline: Url,
    put_spine: F,
) -> Case
where
    F: FnOnce(Vec<u8>) -> Fut,
    Fut: std::future::Future<Output = String>,
{
    let mut rng = Rng::new(seed);
    let lake_dir = tmp.join("lake");
    let views = generate_views(&mut rng);
    for v in &views {
        write_source(&lake_dir, v);
    }
    let loaded = parse_documents(&[("defs.yaml".into(), definitions_yaml(&views))]);
    assert!(loaded.problems.is_empty(), "{}", loaded.problems);
    let registry = Registry::open(&resolve_location("registry/", tmp).unwrap(), "pit").unwrap();
    registry.apply(&loaded.definitions, 0, "test").await.unwrap();
    // As in point_in_time.rs: some seeds write many small sorted files per view, some write
    // several windows and a straddling re-run (files rewritten, merged on read).
    let many_writers = (seed / 4) % 2 == 1;
    let lake_url = Url::from_directory_path(&lake_dir).unwrap();
    let lake = if many_writers {
        let config = quiver_offline::lake::lake_config().with_batch_size(7).with_target_partitions(3);
        Lake::with_session(lake_url, SessionContext::new_with_config(config))
    } else {
        Lake::new(lake_url)
    };
    let store = OfflineStore::open(offline).unwrap();
    // As the CLI and the server do: the lake's session reaches the store's files (a
    // re-run reads the files it rewrites).
    store.register(lake.session()).unwrap();
    let mut materializer = Materializer::new(lake.clone(), store.clone(), registry.clone()).unwrap();
    if many_writers {
        materializer.rows_per_writer = 1;
    }
    let day = chrono::Duration::days(1);
    let minute = chrono::Duration::minutes(1);
    let base: DateTime<Utc> = DateTime::from_timestamp_micros(BASE_US).unwrap();
    let windows = match seed % 3 {
        0 => vec![(base - day, base + day)],
        1 => vec![(base - day, base + minute * 3), (base + minute * 3, base + day)],
        _ => vec![
            (base - day, base + minute * 3),
            (base + minute * 3, base + minute * 6),
            (base + minute * 6, base + day),
            (base + minute * 2, base + minute * 4),
        ],
    };
    for (start, end) in windows {
        let reports = materializer.run(Span::Window { start, end }, &[], &NoProgress).await.unwrap();
        for r in &reports {
            assert!(r.error.is_none(), "{r:?}");
        }
    }

    let spine_rows = generate_spine(&mut rng, &views);
    let spine_file = tmp.join("spine.parquet");
    write_parquet(&spine_file, &spine_batch(&spine_rows));
    let spine_at = put_spine(std::fs::read(&spine_file).unwrap()).await;

    let features = rotated_features(&mut rng, &views);
    let request = HistoricalRequest {
        features: features.clone(),
        full_feature_names: true,
        timestamp_column: "event_timestamp".into(),
        table_versions: Default::default(),
        partitions,
    };
    // Two partitions (so the plan deals batches round-robin to parallel sorts, which Ballista
    // drops); odd seeds run in batches of a few rows, so the join's candidates and order
    // checks cross batch boundaries, on the executors too (the batch size travels with the
    // job).
    let session = lake.session();
    let config = session.copied_config().with_target_partitions(2);
    let config = if seed % 2 == 1 { config.with_batch_size(3) } else { config };
    let ctx = SessionContext::new_with_config_rt(config, session.runtime_env());
    store.register(&ctx).unwrap();
    let spine = spine_session(&ctx).read_parquet(spine_at, ParquetReadOptions::default()).await.unwrap();
    let planned = plan_historical(&ctx, &loaded.definitions, &store, spine, &request).await.unwrap();
    let plan: Arc<dyn ExecutionPlan> = planned.plan.clone();
    Case { seed, partitions, ctx, plan, schema: planned.schema, spine_rows, views, features }
}

/// Runs the case locally and on the cluster at `scheduler_url`: the same rows in the same
/// order (the plan ends in one partition), and the reference's values. Returns the cells
/// compared.
pub async fn check_on_cluster(case: &Case, scheduler_url: &str) -> usize {
    let seed = case.seed;
    let plan = case.plan.clone();
    assert_eq!(plan.output_partitioning().partition_count(), 1, "the plan ends in one partition");
    let text = datafusion::physical_plan::displayable(plan.as_ref()).indent(false).to_string();
    assert_eq!(text.matches("AsofJoinExec").count(), case.views.len(), "{text}");
    // Split joins: each view's spine and feature rows are split by the join keys.
    let splits = if case.partitions > 1 { 2 * case.views.len() } else { 0 };
    assert_eq!(text.matches("partitioning=Hash(").count(), splits, "{text}");
    assert!(text.contains("SortRowsExec"), "{text}");

    let local = collect(plan.clone(), case.ctx.task_ctx()).await.unwrap();
    let local = concat_batches(&case.schema, &local).unwrap();

    let stream = run_physical(scheduler_url, plan, case.ctx.copied_config(), &RunOptions::default())
        .await
        .unwrap_or_else(|e| panic!("seed {seed}: {e}\n{text}"));
    let remote: Vec<_> = stream.try_collect().await.unwrap();
    let remote = concat_batches(&case.schema, &remote).unwrap();
    assert_eq!(remote, local, "seed {seed}: Ballista's rows differ from the local run's");
    check_training_set(seed, &remote, &case.spine_rows, &case.views, &case.features)
}
