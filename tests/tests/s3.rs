//! Quiver on S3, against a real S3-compatible server: lake sources (parquet, csv, json,
//! globs, hive partition folders, missing prefixes), the registry (versions, history,
//! unchanged applies, compare-and-swap between racing writers) and the offline store (Delta
//! tables, materialization, training sets, racing commits) on `s3://` URLs.
//!
//! Each test starts its own [`S3Server`] (an HTTP server on a free loopback port, in this
//! process) with an empty bucket, then runs its body in a child process whose `AWS_*`
//! variables point at that server ([`on_s3`]). Quiver reads S3 settings from the environment
//! (`AmazonS3Builder::from_env()`), and this process cannot set its own: `set_var` is
//! `unsafe` in edition 2024 and the workspace forbids unsafe code; a child gets its
//! environment safely, before it starts (see `quiver_testkit::child`). Nothing needs to be
//! running on the machine beforehand, and every server and child ends with its test.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{Int64Array, RecordBatch, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::assert_batches_sorted_eq;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::prelude::ParquetReadOptions;
use datafusion::prelude::{col, lit};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use quiver_core::Error;
use quiver_core::definitions::Definitions;
use quiver_core::registry::{ApplyOutcome, Registry, Snapshot};
use quiver_core::repo::{LoadedDefinitions, load_dir, parse_documents};
use quiver_offline::check::check_against_lake;
use quiver_offline::historical::{HistoricalRequest, plan_historical, spine_session};
use quiver_offline::lake::Lake;
use quiver_offline::materialize::{Materializer, NoProgress, Span};
use quiver_offline::store::OfflineStore;
use quiver_sample::{SampleSpec, Table, generate_lake};
use quiver_testkit::{S3Server, S3Settings, child};
use url::Url;

/// The bucket every test's server starts with.
const BUCKET: &str = "bucket";

/// Runs `body` where Quiver's `AWS_*` environment points at a fresh S3 server holding an
/// empty [`BUCKET`]; `body` gets the same settings for uploading its data.
///
/// Called from the `#[test]` named `test_name`. In the test process it starts the server and
/// re-runs that test in a child process with the server's variables; in the child it runs
/// `body` on a multi-threaded runtime (so racing writers really run in parallel).
fn on_s3<F, Fut>(test_name: &str, body: F)
where
    F: FnOnce(S3Settings) -> Fut,
    Fut: Future<Output = ()>,
{
    on_s3_with(test_name, &[], body)
}

/// [`on_s3`] with `extra` variables set in the child as well.
fn on_s3_with<F, Fut>(test_name: &str, extra: &[(&str, &str)], body: F)
where
    F: FnOnce(S3Settings) -> Fut,
    Fut: Future<Output = ()>,
{
    if child::is_child() {
        let settings = S3Settings::from_env().unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        runtime.block_on(body(settings));
        return;
    }
    let server = S3Server::start().unwrap();
    server.create_bucket(BUCKET).unwrap();
    let mut env = server.env();
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    if let Err(e) = child::run_test_with_env(test_name, &env) {
        panic!("{e}");
    }
}

fn s3_url(path: &str) -> Url {
    Url::parse(&format!("s3://{BUCKET}/{path}")).unwrap()
}

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../feature_defs/rides")
}

fn example() -> LoadedDefinitions {
    let loaded = load_dir(&example_dir(), None).unwrap();
    assert!(loaded.problems.is_empty(), "{}", loaded.problems);
    loaded
}

/// The sample table a source path of the example reads (`driver_stats/*.parquet` ...).
fn table_of(source_path: &str) -> Table {
    Table::ALL
        .into_iter()
        .find(|t| source_path.starts_with(&format!("{}/", t.dir_name())))
        .unwrap_or_else(|| panic!("no sample table behind '{source_path}'"))
}

/// Definitions holding only sources, from YAML as a user writes it.
fn sources(yaml: &str) -> LoadedDefinitions {
    let loaded = parse_documents(&[("sources.yaml".to_string(), yaml.to_string())]);
    assert!(loaded.problems.is_empty(), "{}", loaded.problems);
    loaded
}

/// A small Parquet file: `id` and `event_timestamp` (one second apart, UTC).
fn parquet_file(ids: &[i64]) -> Vec<u8> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("event_timestamp", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
    ]));
    let times: Vec<i64> = ids.iter().map(|id| 1_767_225_600_000_000 + id * 1_000_000).collect();
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(ids.to_vec())),
            Arc::new(TimestampMicrosecondArray::from(times).with_timezone("UTC")),
        ],
    )
    .unwrap();
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    out
}

/// `definitions` with the first view's description changed, so it hashes differently.
fn variant(definitions: &Definitions, description: String) -> Definitions {
    let mut changed = definitions.clone();
    changed.feature_views[0].description = Some(description);
    changed
}

/// A snapshot in a line (the whole of one is pages long).
fn line(snapshot: &Snapshot) -> String {
    format!("version {} by {} ({})", snapshot.version, snapshot.applied_by, snapshot.definitions_hash)
}

/// An apply's outcome in a line.
fn brief(outcome: &quiver_core::Result<ApplyOutcome>) -> String {
    match outcome {
        Ok(ApplyOutcome::Applied(snapshot)) => format!("applied {}", line(snapshot)),
        Ok(ApplyOutcome::Unchanged { version }) => format!("unchanged at version {version}"),
        Err(e) => format!("error: {e}"),
    }
}

fn applied(outcome: quiver_core::Result<ApplyOutcome>) -> Snapshot {
    match outcome {
        Ok(ApplyOutcome::Applied(snapshot)) => *snapshot,
        other => panic!("expected a new version, got {}", brief(&other)),
    }
}

/// The example repository checks clean against the sample lake read from S3 (parquet, csv
/// and JSON sources, all through globs), and every view reads back exactly the rows the
/// generator wrote for its table.
#[test]
fn the_example_checks_against_the_sample_lake_on_s3() {
    on_s3("the_example_checks_against_the_sample_lake_on_s3", |s3| async move {
        let local = tempfile::tempdir().unwrap();
        let spec = SampleSpec { rows: 3_000, ..Default::default() };
        let summary = generate_lake(local.path(), &spec).unwrap();
        let uploaded = s3.upload_dir(BUCKET, "lake", local.path()).await.unwrap();
        let mut written: Vec<String> = summary.files.iter().map(|(path, _)| format!("lake/{path}")).collect();
        written.sort();
        assert_eq!(uploaded, written, "every file the generator wrote, and nothing else, is on S3");
        // From here on only the S3 copy exists.
        drop(local);

        let loaded = example();
        let lake = Lake::new(s3_url("lake/"));
        let problems = check_against_lake(&loaded, &lake).await;
        assert!(problems.is_empty(), "{problems}");

        let definitions = &loaded.definitions;
        let mut formats = std::collections::BTreeSet::new();
        for view in &definitions.feature_views {
            let source = definitions.source(&view.source).unwrap();
            formats.insert(source.format.to_string());
            let frame = lake.view_frame(definitions, view).await.unwrap();
            let rows = frame.count().await.unwrap() as u64;
            let table = table_of(&source.path);
            assert_eq!(rows, summary.rows(table), "view '{}' over {}", view.name, source.path);
        }
        assert_eq!(formats.into_iter().collect::<Vec<_>>(), ["csv", "json", "parquet"]);
    });
}

/// `key=value` folders on S3 become a string column, whether the source names the folder
/// or globs its files; a folder reads only files with the format's extension.
///
/// The glob is `parted/*.parquet`: DataFusion matches a glob against the file path with its
/// `key=value` segments left out, so partition folders are transparent to it (and
/// `parted/region=*/*.parquet` matches nothing, on S3 and on a local disk alike).
#[test]
fn hive_partition_folders_on_s3_become_columns() {
    on_s3("hive_partition_folders_on_s3_become_columns", |s3| async move {
        s3.put_object(BUCKET, "parted/region=eu/a.parquet", parquet_file(&[1, 2])).await.unwrap();
        s3.put_object(BUCKET, "parted/region=us/b.parquet", parquet_file(&[3, 4, 5])).await.unwrap();
        // A marker file as Spark leaves one: not Parquet, so a folder read must skip it.
        s3.put_object(BUCKET, "parted/region=us/_SUCCESS", PutPayload::new()).await.unwrap();

        let loaded = sources(
            "sources:\n\
             - {name: folder, path: parted/, format: parquet, timestamp_field: event_timestamp}\n\
             - {name: globbed, path: 'parted/*.parquet', format: parquet, timestamp_field: event_timestamp}\n",
        );
        let lake = Lake::new(s3_url(""));
        let problems = check_against_lake(&loaded, &lake).await;
        assert!(problems.is_empty(), "{problems}");
        for source in &loaded.definitions.sources {
            let frame = lake.source_frame(source).await.unwrap();
            let batches = frame.clone().select_columns(&["region", "id"]).unwrap().collect().await.unwrap();
            assert_batches_sorted_eq!(
                [
                    "+--------+----+",
                    "| region | id |",
                    "+--------+----+",
                    "| eu     | 1  |",
                    "| eu     | 2  |",
                    "| us     | 3  |",
                    "| us     | 4  |",
                    "| us     | 5  |",
                    "+--------+----+",
                ],
                &batches
            );
            let eu = frame.filter(col("region").eq(lit("eu"))).unwrap().count().await.unwrap();
            assert_eq!(eu, 2, "source '{}' filtered on its partition column", source.name);
        }
    });
}

/// A prefix with nothing under it on S3 is reported as a problem of the source's path, with
/// the message a local lake gives, not as an error of the run.
#[test]
fn a_missing_prefix_on_s3_is_a_source_problem() {
    on_s3("a_missing_prefix_on_s3_is_a_source_problem", |s3| async move {
        // Something else in the bucket, so the listings below are not of an empty bucket.
        s3.put_object(BUCKET, "lake/present/a.parquet", parquet_file(&[1])).await.unwrap();
        let loaded = sources(
            "sources:\n\
             - {name: globbed, path: 'nowhere/*.parquet', format: parquet, timestamp_field: event_timestamp}\n\
             - {name: folder, path: nowhere/, format: parquet, timestamp_field: event_timestamp}\n\
             - {name: file, path: nowhere/x.parquet, format: parquet, timestamp_field: event_timestamp}\n\
             - {name: other_bucket, path: 's3://no-such-bucket/x/*.parquet', format: parquet, timestamp_field: event_timestamp}\n",
        );
        // Another bucket is readable only as a lake root.
        let lake =
            Lake::new(s3_url("lake/")).with_roots(vec![url::Url::parse("s3://no-such-bucket/").unwrap()]);
        let problems = check_against_lake(&loaded, &lake).await;
        let mut found: Vec<(String, String)> =
            problems.iter().map(|p| (p.object.clone().unwrap_or_default(), p.message.clone())).collect();
        found.sort();
        assert_eq!(problems.len(), 4, "{problems}");
        assert!(problems.iter().all(|p| p.field.as_deref() == Some("path")), "{problems}");
        let message = |name: &str| &found.iter().find(|(object, _)| object == name).unwrap().1;
        assert_eq!(message("globbed"), "no file under s3://bucket/lake/nowhere/ matches '*.parquet'");
        assert_eq!(message("folder"), "no .parquet file under s3://bucket/lake/nowhere/");
        assert_eq!(message("file"), "s3://bucket/lake/nowhere/x.parquet does not exist");
        assert!(message("other_bucket").starts_with("cannot list s3://no-such-bucket/x/"), "{problems}");
    });
}

/// The registry on S3: a first apply, history read back by another client, an unchanged
/// apply that writes nothing, a change, a stale writer refused, a foreign project refused,
/// and a damaged version reported as corrupt rather than used.
#[test]
fn the_registry_on_s3_keeps_versions_and_history() {
    on_s3("the_registry_on_s3_keeps_versions_and_history", |s3| async move {
        let url = s3_url("registry/");
        let registry = Registry::open(&url, "rides").unwrap();
        assert_eq!(registry.head_version().await.unwrap(), 0);
        assert!(registry.head().await.unwrap().is_none());

        let definitions = example().definitions;
        let first = applied(registry.apply(&definitions, 0, "alice").await);
        assert_eq!(first.version, 1);
        assert_eq!(first.summary.added.len(), definitions.hashes().len());
        assert!(first.summary.changed.is_empty() && first.summary.removed.is_empty());

        let unchanged = registry.apply(&definitions, 1, "bob").await.unwrap();
        assert_eq!(unchanged, ApplyOutcome::Unchanged { version: 1 });

        let view = definitions.feature_views[0].name.clone();
        let second = applied(registry.apply(&variant(&definitions, "on S3".into()), 1, "bob").await);
        assert_eq!(second.version, 2);
        assert_eq!(second.summary.changed, [format!("feature_views/{view}")]);
        assert!(second.summary.added.is_empty() && second.summary.removed.is_empty());

        match registry.apply(&variant(&definitions, "stale".into()), 1, "carol").await {
            Err(Error::Conflict { expected: 1, found: 2 }) => {}
            other => panic!("a writer planning against version 1 must conflict, got {other:?}"),
        }

        // Another client (as another process would be) sees the same history.
        let reader = Registry::open(&url, "rides").unwrap();
        assert_eq!(reader.versions().await.unwrap(), [1, 2]);
        let history = reader.history().await.unwrap();
        assert!(
            history == [first.clone(), second.clone()],
            "{:?}",
            history.iter().map(line).collect::<Vec<_>>()
        );
        assert!(reader.get(1).await.unwrap() == first, "version 1 reads back as applied");
        assert!(matches!(reader.get(3).await, Err(Error::NotFound { .. })));
        assert!(matches!(
            Registry::open(&url, "another_project").unwrap().head().await,
            Err(Error::ProjectMismatch { .. })
        ));

        // Damage version 2 behind the registry's back: it is reported, never used or replaced.
        let store = s3.store(BUCKET).unwrap();
        let v2 = ObjectPath::from("registry/versions/v00000000000000000002.json");
        let bytes = store.get(&v2).await.unwrap().bytes().await.unwrap();
        store.put(&v2, bytes.slice(..bytes.len() / 2).into()).await.unwrap();
        assert!(matches!(reader.get(2).await, Err(Error::CorruptRegistry { .. })));
        assert!(matches!(
            reader.apply(&variant(&definitions, "after damage".into()), 2, "dave").await,
            Err(Error::CorruptRegistry { .. })
        ));
        assert!(reader.get(1).await.unwrap() == first, "version 1 is untouched");
    });
}

/// Two writers (separate clients, as two processes would be) apply different definitions
/// against the same version at the same moment, round after round: exactly one wins each
/// round and the other gets a conflict, so the history is one unbroken line of winners.
#[test]
fn racing_registry_writers_on_s3_never_both_win() {
    on_s3("racing_registry_writers_on_s3_never_both_win", |_s3| async move {
        const ROUNDS: u64 = 12;
        let url = s3_url("race/");
        let writers = [Registry::open(&url, "rides").unwrap(), Registry::open(&url, "rides").unwrap()];
        let definitions = example().definitions;
        let mut winners = Vec::new();
        for round in 0..ROUNDS {
            let version = writers[0].head_version().await.unwrap();
            assert_eq!(version, round);
            let start = Arc::new(tokio::sync::Barrier::new(writers.len()));
            let tasks: Vec<_> = writers
                .iter()
                .zip(["a", "b"])
                .map(|(registry, who)| {
                    let (registry, start) = (registry.clone(), start.clone());
                    let definitions = variant(&definitions, format!("round {round} by {who}"));
                    tokio::spawn(async move {
                        start.wait().await;
                        registry.apply(&definitions, version, who).await
                    })
                })
                .collect();
            let mut outcomes = Vec::new();
            for task in tasks {
                outcomes.push(task.await.unwrap());
            }
            let shown: Vec<String> = outcomes.iter().map(brief).collect();
            let (won, lost): (Vec<_>, Vec<_>) = outcomes.into_iter().partition(|o| o.is_ok());
            assert_eq!((won.len(), lost.len()), (1, 1), "round {round}: {shown:?}");
            match &lost[0] {
                Err(Error::Conflict { expected, found }) => {
                    assert_eq!((*expected, *found), (version, version + 1), "round {round}");
                }
                _ => panic!("round {round}: the loser must get a conflict: {shown:?}"),
            }
            let winner = applied(won.into_iter().next().unwrap());
            assert_eq!(winner.version, version + 1);
            winners.push(winner);
        }
        let history = Registry::open(&url, "rides").unwrap().history().await.unwrap();
        let lines = |snapshots: &[Snapshot]| snapshots.iter().map(line).collect::<Vec<_>>();
        assert!(
            history == winners,
            "the history must be exactly the winners, in order: {:?} vs {:?}",
            lines(&history),
            lines(&winners)
        );
    });
}

/// What the registry's compare-and-swap rests on, checked at the source: many clients
/// creating the same key at once with `PutMode::Create` (`If-None-Match: *`): exactly one
/// succeeds, every other gets `AlreadyExists`, and the object holds the winner's bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_s3_server_lets_exactly_one_conditional_create_win() {
    const CLIENTS: usize = 6;
    let server = S3Server::start().unwrap();
    server.create_bucket(BUCKET).unwrap();
    for key in 0..10 {
        let path = ObjectPath::from(format!("cas/key-{key}"));
        let start = Arc::new(tokio::sync::Barrier::new(CLIENTS));
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|client| {
                let (store, path, start) = (server.store(BUCKET).unwrap(), path.clone(), start.clone());
                tokio::spawn(async move {
                    let create = PutOptions { mode: PutMode::Create, ..Default::default() };
                    start.wait().await;
                    let body = PutPayload::from(format!("client {client}").into_bytes());
                    (client, store.put_opts(&path, body, create).await)
                })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                (client, Ok(_)) => winners.push(client),
                (_, Err(object_store::Error::AlreadyExists { .. })) => {}
                (client, Err(e)) => panic!("key {key}, client {client}: {e}"),
            }
        }
        assert_eq!(winners.len(), 1, "key {key}: winners {winners:?}");
        let store = server.store(BUCKET).unwrap();
        let stored = store.get(&path).await.unwrap().bytes().await.unwrap();
        assert_eq!(stored, format!("client {}", winners[0]).as_bytes());
    }
}

/// The rows of a training set for the example's `ride_ranking_v1` service over the lake,
/// with the offline store at `store`, after materializing every view in two windows and then
/// a third straddling both (which rewrites the files it cuts).
async fn training_set_through(
    lake: &Lake,
    store: OfflineStore,
    registry: Registry,
    spine: &Path,
) -> RecordBatch {
    store.register(lake.session()).unwrap();
    let spec = SampleSpec { rows: 3_000, ..Default::default() };
    let (start, end) = spec.window().unwrap();
    let middle = start + (end - start) / 2;
    let materializer = Materializer::new(lake.clone(), store.clone(), registry.clone()).unwrap();
    for (from, to) in [(start, middle), (middle, end), (start + (end - start) / 4, end - (end - start) / 4)] {
        let reports =
            materializer.run(Span::Window { start: from, end: to }, &[], &NoProgress).await.unwrap();
        for r in &reports {
            assert!(r.error.is_none(), "{r:?}");
        }
    }
    let head = registry.head().await.unwrap().unwrap();
    let definitions = &head.definitions;
    let features = definitions.resolve_features(Some("ride_ranking_v1"), &[]).unwrap();
    let request = HistoricalRequest {
        features,
        full_feature_names: true,
        timestamp_column: "event_timestamp".into(),
        table_versions: Default::default(),
        partitions: 1,
    };
    let ctx = lake.session();
    let spine = spine_session(ctx)
        .read_parquet(spine.to_str().unwrap(), ParquetReadOptions::default())
        .await
        .unwrap();
    let planned = plan_historical(ctx, definitions, &store, spine, &request).await.unwrap();
    let batches = datafusion::physical_plan::collect(planned.plan, ctx.task_ctx()).await.unwrap();
    datafusion::arrow::compute::concat_batches(&planned.schema, &batches).unwrap()
}

/// The offline store on S3: every view materialized (three windows, the last straddling the
/// others), then a training set, give exactly the rows the same steps give with the offline
/// store on a local disk; the Delta log and the sorted-files sidecar live on S3.
#[test]
fn the_offline_store_on_s3_answers_as_a_local_one_does() {
    on_s3("the_offline_store_on_s3_answers_as_a_local_one_does", |s3| async move {
        let local = tempfile::tempdir().unwrap();
        let spec = SampleSpec { rows: 3_000, ..Default::default() };
        generate_lake(&local.path().join("lake"), &spec).unwrap();
        s3.upload_dir(BUCKET, "lake", &local.path().join("lake")).await.unwrap();
        let spine = local.path().join("spine.parquet");
        quiver_sample::write_spine(&spine, &spec, 500, 7).unwrap();
        let definitions = example().definitions;

        let on_s3_registry = Registry::open(&s3_url("registry/"), "rides").unwrap();
        applied(on_s3_registry.apply(&definitions, 0, "test").await);
        let s3_store = OfflineStore::open(s3_url("offline/")).unwrap();
        let from_s3 =
            training_set_through(&Lake::new(s3_url("lake/")), s3_store, on_s3_registry, &spine).await;

        let local_registry =
            Registry::open(&Url::from_directory_path(local.path().join("registry")).unwrap(), "rides")
                .unwrap();
        applied(local_registry.apply(&definitions, 0, "test").await);
        let local_store = OfflineStore::new(Url::from_directory_path(local.path().join("offline")).unwrap());
        let from_disk = training_set_through(
            &Lake::new(Url::from_directory_path(local.path().join("lake")).unwrap()),
            local_store,
            local_registry,
            &spine,
        )
        .await;
        assert_eq!(from_s3.num_rows(), 500);
        assert!(from_s3 == from_disk, "the training sets differ");

        let bucket = s3.store(BUCKET).unwrap();
        let log = ObjectPath::from("offline/driver_stats/_delta_log/00000000000000000002.json");
        bucket.head(&log).await.expect("three commits of driver_stats on S3");
        let sidecar = ObjectPath::from(format!("offline/driver_stats/{}", quiver_offline::sidecar::SIDECAR));
        bucket.head(&sidecar).await.expect("the sorted-files sidecar on S3");
        let snapshot = OfflineStore::open(s3_url("offline/"))
            .unwrap()
            .snapshot("driver_stats", None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(snapshot.version, 2);
        assert!(
            snapshot.files.iter().all(|f| f.sorted && f.url.starts_with("s3://bucket/offline/driver_stats/")),
            "{:?}",
            snapshot.files
        );
    });
}

/// Racing Delta commits, in [`racing_delta_commits_on_s3_never_both_win`]: how many writer
/// processes, how many appends each makes, and how many rows each append holds.
const RACE_WRITERS: usize = 2;
const RACE_ROUNDS: usize = 6;
const RACE_ROWS: usize = 3;
/// Set in a writer process of that test: its number.
const RACE_WRITER_VAR: &str = "QUIVER_TEST_RACE_WRITER";
/// Set in a writer process of that test: the local folder the writers and the test signal
/// each other through, and where each writer leaves its report.
const RACE_DIR_VAR: &str = "QUIVER_TEST_RACE_DIR";

/// The offline columns of the raced table.
fn race_schema() -> Arc<Schema> {
    let time = || DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("driver_id", DataType::Int64, true),
        Field::new("event_timestamp", time(), true),
        Field::new("created_timestamp", time(), true),
        Field::new("trips", DataType::Int64, true),
    ]))
}

/// The ids of the rows writer `writer` appends in `round` (no two appends share one).
fn race_ids(writer: usize, round: usize) -> Vec<i64> {
    let first = (round * RACE_WRITERS + writer) * RACE_ROWS;
    (first..first + RACE_ROWS).map(|id| id as i64).collect()
}

/// Waits until `file` exists (another process created it), for at most two minutes.
async fn wait_for_file(file: &Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !file.exists() {
        assert!(std::time::Instant::now() < deadline, "{} never appeared", file.display());
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// One writer process of [`racing_delta_commits_on_s3_never_both_win`]: opens its own
/// client, says it is ready, waits for the start signal, then appends once per round, each
/// round starting when every writer has reached it. Writes `report-<writer>`: one line per
/// append, `ok <version> <ids...>` or `failed <ids...>` (the error goes to stderr).
async fn race_writer(writer: usize, dir: &Path) {
    let store = OfflineStore::open(s3_url("race/")).unwrap();
    std::fs::write(dir.join(format!("ready-{writer}")), "").unwrap();
    wait_for_file(&dir.join("start")).await;
    let schema = race_schema();
    let mut report = String::new();
    for round in 0..RACE_ROUNDS {
        std::fs::write(dir.join(format!("round-{round}-{writer}")), "").unwrap();
        for other in 0..RACE_WRITERS {
            wait_for_file(&dir.join(format!("round-{round}-{other}"))).await;
        }
        let ids = race_ids(writer, round);
        let times = TimestampMicrosecondArray::from(
            ids.iter().map(|id| 1_767_225_600_000_000 + id * 1_000_000).collect::<Vec<_>>(),
        )
        .with_timezone("UTC");
        let times = Arc::new(times);
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(ids.clone())),
                times.clone(),
                times,
                Arc::new(Int64Array::from(ids.clone())),
            ],
        )
        .unwrap();
        let listed: Vec<String> = ids.iter().map(i64::to_string).collect();
        match store.append("v", schema.clone(), vec![batch], None).await {
            Ok(outcome) => report.push_str(&format!("ok {} {}\n", outcome.version, listed.join(" "))),
            Err(e) => {
                eprintln!("writer {writer}, round {round}: {e}");
                report.push_str(&format!("failed {}\n", listed.join(" ")));
            }
        }
    }
    std::fs::write(dir.join(format!("report-{writer}")), report).unwrap();
}

/// Two processes, each with its own client, append to one Delta table on S3 at the same
/// moment, round after round (they start together on a signal file and meet again before
/// each round). Afterwards: no Delta version was reported committed twice, every version in
/// the log is one reported commit, and every row of every commit that reported success is
/// in the table exactly once (the loser of each race retries on top of the winner).
#[test]
fn racing_delta_commits_on_s3_never_both_win() {
    const NAME: &str = "racing_delta_commits_on_s3_never_both_win";
    on_s3(NAME, |s3| async move {
        if let Ok(writer) = std::env::var(RACE_WRITER_VAR) {
            let dir = PathBuf::from(std::env::var(RACE_DIR_VAR).unwrap());
            race_writer(writer.parse().unwrap(), &dir).await;
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let writers: Vec<_> = (0..RACE_WRITERS)
            .map(|writer| {
                let mut env = s3.env();
                env.push((RACE_WRITER_VAR.to_string(), writer.to_string()));
                env.push((RACE_DIR_VAR.to_string(), dir.path().display().to_string()));
                std::thread::spawn(move || child::run_test_with_env(NAME, &env))
            })
            .collect();
        // The start signal once every writer process is up with its client (or one ended
        // early: its failure is reported below).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while !(0..RACE_WRITERS).all(|w| dir.path().join(format!("ready-{w}")).exists())
            && !writers.iter().any(std::thread::JoinHandle::is_finished)
        {
            assert!(std::time::Instant::now() < deadline, "the writer processes never got ready");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        std::fs::write(dir.path().join("start"), "").unwrap();
        for writer in writers {
            if let Err(e) = writer.join().unwrap() {
                panic!("{e}");
            }
        }

        let mut versions = Vec::new();
        let mut committed_ids = Vec::new();
        let mut failed = Vec::new();
        for writer in 0..RACE_WRITERS {
            let report = std::fs::read_to_string(dir.path().join(format!("report-{writer}"))).unwrap();
            for line in report.lines() {
                let mut words = line.split(' ');
                match words.next() {
                    Some("ok") => {
                        versions.push(words.next().unwrap().parse::<u64>().unwrap());
                        committed_ids.extend(words.map(|id| id.parse::<i64>().unwrap()));
                    }
                    _ => failed.push(format!("writer {writer}: {line}")),
                }
            }
        }
        // Each writer's loser retries on top of the winner, so every append lands.
        assert!(failed.is_empty(), "appends that failed: {failed:?}");
        let mut unique = versions.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), versions.len(), "a version reported committed twice: {versions:?}");
        let log: Vec<u64> = s3
            .store(BUCKET)
            .unwrap()
            .list_with_delimiter(Some(&ObjectPath::from("race/v/_delta_log")))
            .await
            .unwrap()
            .objects
            .iter()
            .filter_map(|o| o.location.filename()?.strip_suffix(".json")?.parse().ok())
            .collect();
        let mut log = log;
        log.sort_unstable();
        assert_eq!(log, unique, "every version in the Delta log is one reported commit");

        let reader = OfflineStore::open(s3_url("race/")).unwrap();
        let snapshot = reader.snapshot("v", None).await.unwrap().unwrap();
        let ctx = datafusion::prelude::SessionContext::new();
        reader.register(&ctx).unwrap();
        let rows =
            quiver_offline::sorted::sorted_rows(&ctx, Some(&snapshot), snapshot.schema.clone()).unwrap();
        let batches = datafusion::physical_plan::collect(rows, ctx.task_ctx()).await.unwrap();
        let mut ids: Vec<i64> = batches
            .iter()
            .flat_map(|b| b.column(0).as_any().downcast_ref::<Int64Array>().unwrap().values().to_vec())
            .collect();
        ids.sort_unstable();
        committed_ids.sort_unstable();
        assert_eq!(ids, committed_ids, "the table holds every committed row exactly once, and no other");
        let all: Vec<i64> = (0..RACE_WRITERS * RACE_ROUNDS * RACE_ROWS).map(|id| id as i64).collect();
        assert_eq!(ids, all, "no row lost");
    });
}

/// With create-only writes turned off (`AWS_CONDITIONAL_PUT=disabled`) two writers could both
/// commit the same Delta version: the offline store refuses to open, naming the setting, and
/// writes nothing.
#[test]
fn an_offline_store_without_create_only_writes_is_refused() {
    on_s3_with(
        "an_offline_store_without_create_only_writes_is_refused",
        &[("AWS_CONDITIONAL_PUT", "disabled")],
        |s3| async move {
            let refused = OfflineStore::open(s3_url("offline/")).unwrap_err().to_string();
            assert!(refused.contains("offline_store s3://bucket/offline/"), "{refused}");
            assert!(refused.contains("AWS_CONDITIONAL_PUT=disabled"), "{refused}");
            // The registry's compare-and-swap rests on the same create-only writes.
            let refused = Registry::open(&s3_url("registry/"), "rides").err().unwrap().to_string();
            assert!(refused.contains("registry s3://bucket/registry/"), "{refused}");
            assert!(refused.contains("AWS_CONDITIONAL_PUT=disabled"), "{refused}");
            let listed = s3.store(BUCKET).unwrap().list_with_delimiter(None).await.unwrap();
            assert!(listed.objects.is_empty() && listed.common_prefixes.is_empty(), "nothing written");
        },
    );
}
