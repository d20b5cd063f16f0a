//! The point-in-time join against a brute-force reference written here: for each spine row
//! and view, scan every materialized row, keep those with the same keys and
//! `t - ttl <= event_ts <= t`, take the greatest by (event ts, created ts, feature values).
//! Randomized data over many seeds: ties, nulls, ttl 0, rows before any data, unknown and
//! null keys, duplicate spine rows, nanosecond boundaries, string and compound keys, several
//! views in one request. Zero differences allowed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, Float64Array, Int32Array, RecordBatch};
use datafusion::arrow::datatypes::DataType;
use datafusion::physical_plan::{collect, displayable};
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use quiver_core::definitions::FeatureRef;
use quiver_core::registry::Registry;
use quiver_core::repo::parse_documents;
use quiver_core::storage::resolve_location;
use quiver_offline::historical::{HistoricalRequest, plan_historical, spine_session};
use quiver_offline::lake::Lake;
use quiver_offline::layout::sort_columns;
use quiver_offline::materialize::{Materializer, NoProgress, Span};
use quiver_offline::pit::QuiverCodec;
use quiver_offline::store::OfflineStore;
use url::Url;

mod pit_data;
use pit_data::*;

/// Reads a Parquet file and checks its rows ascend (nulls first) by `order`.
fn assert_file_sorted(url: &str, order: &[String]) {
    use datafusion::arrow::row::{RowConverter, SortField};
    let path = Url::parse(url).unwrap().to_file_path().unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(&path).unwrap(),
    )
    .unwrap()
    .build()
    .unwrap();
    let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
    let Some(first) = batches.first() else { return };
    let schema = first.schema();
    let all = datafusion::arrow::compute::concat_batches(&schema, &batches).unwrap();
    let columns: Vec<ArrayRef> = order.iter().map(|name| all.column_by_name(name).unwrap().clone()).collect();
    let converter =
        RowConverter::new(columns.iter().map(|c| SortField::new(c.data_type().clone())).collect()).unwrap();
    let rows = converter.convert_columns(&columns).unwrap();
    for i in 1..rows.num_rows() {
        assert!(rows.row(i - 1) <= rows.row(i), "{}: row {i} sorts before row {}", path.display(), i - 1);
    }
}

async fn run_seed(seed: u64) -> usize {
    let mut rng = Rng::new(seed);
    let tmp = tempfile::tempdir().unwrap();
    let lake_dir = tmp.path().join("lake");
    let views = generate_views(&mut rng);
    for v in &views {
        write_source(&lake_dir, v);
    }
    let loaded = parse_documents(&[("defs.yaml".into(), definitions_yaml(&views))]);
    assert!(loaded.problems.is_empty(), "{}", loaded.problems);
    let registry = Registry::open(&resolve_location("registry/", tmp.path()).unwrap(), "pit").unwrap();
    registry.apply(&loaded.definitions, 0, "test").await.unwrap();
    // Every other run of four seeds (so with each way of windowing below) materializes as a
    // many-core machine would: windows read in three partitions of small batches, each
    // partition sorted and written by its own writer.
    let many_writers = (seed / 4) % 2 == 1;
    let lake_url = Url::from_directory_path(&lake_dir).unwrap();
    let lake = if many_writers {
        let config = quiver_offline::lake::lake_config().with_batch_size(7).with_target_partitions(3);
        Lake::with_session(lake_url, SessionContext::new_with_config(config))
    } else {
        Lake::new(lake_url)
    };
    let store = OfflineStore::new(Url::from_directory_path(tmp.path().join("offline")).unwrap());
    let mut materializer = Materializer::new(lake.clone(), store.clone(), registry.clone()).unwrap();
    if many_writers {
        materializer.rows_per_writer = 1;
    }
    // Seeds take turns: one window (one sorted file per view); three windows (three sorted
    // files, merged on read); three windows and then a window across two of them, which
    // rewrites the files it cuts with their rows outside it, in their order (sorted files
    // still, merged with the others); and the same with the sorted-files sidecar removed, as
    // for a table some other writer made (every file sorted on read, then merged).
    let day = chrono::Duration::days(1);
    let minute = chrono::Duration::minutes(1);
    let base: DateTime<Utc> = DateTime::from_timestamp_micros(BASE_US).unwrap();
    let mode = seed % 4;
    let windows = match mode {
        0 => vec![(base - day, base + day)],
        1 => vec![
            (base - day, base + minute * 3),
            (base + minute * 3, base + minute * 6),
            (base + minute * 6, base + day),
        ],
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
    // The sorts and writers gave back every byte they reserved.
    assert_eq!(
        lake.session().runtime_env().memory_pool.reserved(),
        0,
        "seed {seed}: memory held after materializing"
    );

    if mode == 3 {
        for v in &views {
            std::fs::remove_file(
                tmp.path().join("offline").join(v.name).join(quiver_offline::sidecar::SIDECAR),
            )
            .unwrap();
        }
    }
    // Every file the sidecar lists as sorted really is, and every file is listed: the
    // windows' own files and, after the straddling re-run, the rewrites of the files it cut.
    for v in &views {
        let snapshot = store.snapshot(v.name, None).await.unwrap().expect("materialized");
        let order = sort_columns(&snapshot.schema);
        for file in &snapshot.files {
            assert_eq!(file.sorted, mode < 3, "seed {seed}: {} of view {}", file.path, v.name);
            assert_file_sorted(&file.url, &order);
        }
    }

    let spine_rows = generate_spine(&mut rng, &views);
    let spine_path = tmp.path().join("spine.parquet");
    write_parquet(&spine_path, &spine_batch(&spine_rows));

    // Request a feature mix across the three views, in a shuffled order.
    let features = rotated_features(&mut rng, &views);
    let request = HistoricalRequest {
        features: features.clone(),
        full_feature_names: true,
        timestamp_column: "event_timestamp".into(),
        table_versions: Default::default(),
        partitions: 1,
    };
    // Odd seeds read in batches of a few rows, so candidates and order checks cross batch
    // boundaries on both sides of the join.
    let ctx = if seed % 2 == 1 {
        let session = lake.session();
        SessionContext::new_with_config_rt(session.copied_config().with_batch_size(3), session.runtime_env())
    } else {
        lake.session().clone()
    };
    let spine_ctx = spine_session(&ctx);
    let spine =
        spine_ctx.read_parquet(spine_path.to_str().unwrap(), ParquetReadOptions::default()).await.unwrap();
    let planned = plan_historical(&ctx, &loaded.definitions, &store, spine, &request).await.unwrap();
    // Sorted files are merged, not sorted again: the only sorts are the spine's (one per
    // view, one back to input order), unless the files are not known to be sorted.
    let plan_text = displayable(planned.plan.as_ref()).indent(false).to_string();
    let sorts = plan_text.matches("SortRowsExec").count();
    assert_eq!(plan_text.matches("SortExec").count(), 0, "every sort is Quiver's own:\n{plan_text}");
    if mode < 3 {
        assert_eq!(sorts, views.len() + 1, "seed {seed}: feature rows were sorted again:\n{plan_text}");
    } else {
        assert!(sorts > views.len() + 1, "seed {seed}: unlisted files were trusted as sorted:\n{plan_text}");
    }
    let batches = collect(planned.plan.clone(), ctx.task_ctx()).await.unwrap();
    let out = datafusion::arrow::compute::concat_batches(&planned.schema, &batches).unwrap();
    assert_eq!(ctx.runtime_env().memory_pool.reserved(), 0, "seed {seed}: memory held after the join");

    // The plan survives serialization with the Quiver codec and gives the same answer.
    let again = collect(through_codec(planned.plan.clone(), &ctx), ctx.task_ctx()).await.unwrap();
    let again = datafusion::arrow::compute::concat_batches(&planned.schema, &again).unwrap();
    assert_eq!(out, again, "seed {seed}: the deserialized plan differs");

    // The same request with each view's join split by a hash of its keys into 2 to 4
    // partitions, as a cluster runs it, through the codec: the same rows in the same order.
    let split_request = HistoricalRequest { partitions: 2 + (seed % 3) as usize, ..request.clone() };
    let spine =
        spine_ctx.read_parquet(spine_path.to_str().unwrap(), ParquetReadOptions::default()).await.unwrap();
    let split = plan_historical(&ctx, &loaded.definitions, &store, spine, &split_request).await.unwrap();
    let split_text = displayable(split.plan.as_ref()).indent(false).to_string();
    assert_eq!(
        split_text.matches("partitioning=Hash(").count(),
        2 * views.len(),
        "seed {seed}:\n{split_text}"
    );
    let split_out = collect(through_codec(split.plan, &ctx), ctx.task_ctx()).await.unwrap();
    let split_out = datafusion::arrow::compute::concat_batches(&planned.schema, &split_out).unwrap();
    assert_eq!(split_out, out, "seed {seed}: the split join gives other rows:\n{split_text}");
    assert_eq!(ctx.runtime_env().memory_pool.reserved(), 0, "seed {seed}: memory held after the split join");

    check_training_set(seed, &out, &spine_rows, &views, &features)
}

/// `plan` encoded with the Quiver codec and decoded again, as a cluster receives it.
fn through_codec(
    plan: std::sync::Arc<dyn datafusion::physical_plan::ExecutionPlan>,
    ctx: &SessionContext,
) -> std::sync::Arc<dyn datafusion::physical_plan::ExecutionPlan> {
    let bytes =
        datafusion_proto::bytes::physical_plan_to_bytes_with_extension_codec(plan, &QuiverCodec).unwrap();
    datafusion_proto::bytes::physical_plan_from_bytes_with_extension_codec(
        &bytes,
        &ctx.task_ctx(),
        &QuiverCodec,
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn point_in_time_join_matches_brute_force_over_many_seeds() {
    let mut cells = 0;
    for seed in 1..=40 {
        cells += run_seed(seed).await;
    }
    assert!(cells > 10_000, "only {cells} cells were compared");
}

#[tokio::test]
async fn an_empty_spine_gives_an_empty_result_with_the_right_schema() {
    let mut rng = Rng::new(7);
    let tmp = tempfile::tempdir().unwrap();
    let lake_dir = tmp.path().join("lake");
    let views = generate_views(&mut rng);
    for v in &views {
        write_source(&lake_dir, v);
    }
    let loaded = parse_documents(&[("defs.yaml".into(), definitions_yaml(&views))]);
    let lake = Lake::new(Url::from_directory_path(&lake_dir).unwrap());
    let store = OfflineStore::new(Url::from_directory_path(tmp.path().join("offline")).unwrap());
    let spine_path = tmp.path().join("spine.parquet");
    write_parquet(&spine_path, &spine_batch(&[]));
    let ctx = lake.session().clone();
    let spine = spine_session(&ctx)
        .read_parquet(spine_path.to_str().unwrap(), ParquetReadOptions::default())
        .await
        .unwrap();
    let request = HistoricalRequest {
        features: vec![FeatureRef { view: "by_int".into(), feature: "a_f64".into() }],
        full_feature_names: false,
        timestamp_column: "event_timestamp".into(),
        table_versions: Default::default(),
        partitions: 1,
    };
    // Nothing materialized either: the view reads as empty.
    let planned = plan_historical(&ctx, &loaded.definitions, &store, spine, &request).await.unwrap();
    let batches = collect(planned.plan.clone(), ctx.task_ctx()).await.unwrap();
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 0);
    let names: Vec<&str> = planned.schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["label", "k1", "event_timestamp", "k2", "k3", "a_f64"]);
    assert_eq!(planned.schema.field(5).data_type(), &DataType::Float64);
    let _ = (BooleanArray::from(vec![true]), Float64Array::from(vec![1.0]), Int32Array::from(vec![1]));
}

#[tokio::test]
async fn feature_names_that_clash_need_full_names() {
    let tmp = tempfile::tempdir().unwrap();
    let lake_dir = tmp.path().join("lake");
    let mut rng = Rng::new(3);
    let views = generate_views(&mut rng);
    for v in &views {
        write_source(&lake_dir, v);
    }
    // A second view over by_int's source with a feature of the same name.
    let yaml = definitions_yaml(&views)
        + "  - {name: by_int_copy, entities: [e1], source: by_int_src, features: [{name: a_i64, dtype: int64}]}\n";
    let loaded = parse_documents(&[("defs.yaml".into(), yaml)]);
    assert!(loaded.problems.is_empty(), "{}", loaded.problems);
    let lake = Lake::new(Url::from_directory_path(&lake_dir).unwrap());
    let store = OfflineStore::new(Url::from_directory_path(tmp.path().join("offline")).unwrap());
    let spine_path = tmp.path().join("spine.parquet");
    write_parquet(&spine_path, &spine_batch(&generate_spine(&mut rng, &views)));
    let ctx = lake.session().clone();
    let request = |full: bool| HistoricalRequest {
        features: vec![
            FeatureRef { view: "by_int".into(), feature: "a_i64".into() },
            FeatureRef { view: "by_int_copy".into(), feature: "a_i64".into() },
        ],
        full_feature_names: full,
        timestamp_column: "event_timestamp".into(),
        table_versions: Default::default(),
        partitions: 1,
    };
    let read = || async {
        spine_session(&ctx)
            .read_parquet(spine_path.to_str().unwrap(), ParquetReadOptions::default())
            .await
            .unwrap()
    };
    let err = plan_historical(&ctx, &loaded.definitions, &store, read().await, &request(false))
        .await
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .contains("feature name 'a_i64' is requested from both view 'by_int' and view 'by_int_copy'"),
        "{err}"
    );
    let planned =
        plan_historical(&ctx, &loaded.definitions, &store, read().await, &request(true)).await.unwrap();
    let names: Vec<&str> = planned.schema.fields().iter().map(|f| f.name().as_str()).skip(5).collect();
    assert_eq!(names, ["by_int__a_i64", "by_int_copy__a_i64"]);
}
