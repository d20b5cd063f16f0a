//! `quiver ballista scheduler` and `quiver ballista executor` as processes: a training set
//! plan (random data, `AsofJoinExec` and Quiver's sorts; the offline store and the spine on
//! quiver-testkit's S3 server, which the executor reaches with the `AWS_*` variables of its
//! own environment) submitted to them gives the rows a local run gives and the brute-force
//! reference's values; bad arguments are usage errors.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[path = "../../quiver-ballista/tests/common/mod.rs"]
mod common;

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use quiver_testkit::{S3Server, S3Settings, child};
use support::cluster::{Cluster, free_port};
use url::Url;

const QUIVER: &str = env!("CARGO_BIN_EXE_quiver");

const BUCKET: &str = "bucket";

#[test]
fn a_training_set_runs_on_quiver_ballista_processes() {
    // The test itself runs in a child process whose AWS_* point at a fresh S3 server (this
    // process cannot set its own environment: see quiver_testkit::child); the quiver
    // processes it starts inherit them.
    if !child::is_child() {
        let server = S3Server::start().unwrap();
        server.create_bucket(BUCKET).unwrap();
        child::run_test_with_env("a_training_set_runs_on_quiver_ballista_processes", &server.env())
            .unwrap_or_else(|e| panic!("{e}"));
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(training_set_on_processes(S3Settings::from_env().unwrap()));
}

async fn training_set_on_processes(s3: S3Settings) {
    let tmp = tempfile::tempdir().unwrap();
    // The executor inherits this process's AWS_* variables.
    let work = tmp.path().join("work");
    let cluster = Cluster::start(1, &[], &work).await;
    let url = cluster.url.clone();
    let offline = Url::parse(&format!("s3://{BUCKET}/offline/")).unwrap();
    let case = common::training_case(5, 4, tmp.path(), offline, |bytes| async move {
        s3.put_object(BUCKET, "spine.parquet", bytes).await.unwrap();
        format!("s3://{BUCKET}/spine.parquet")
    })
    .await;
    let cells = common::check_on_cluster(&case, &url).await;
    assert!(cells > 50, "only {cells} cells compared");
    assert!(work.join("executor-0").is_dir(), "the executor's work folder");
}

#[test]
fn bad_ballista_arguments_are_usage_errors() {
    for (args, expected) in [
        (vec!["ballista", "executor", "--scheduler", "https://h:1"], "TLS"),
        (
            vec!["ballista", "executor", "--scheduler", "df://h:1", "--concurrent-tasks", "0"],
            "--concurrent-tasks 0",
        ),
        (vec!["ballista", "executor", "--scheduler", "df://h:1", "--bind", "127.0.0.1:0"], "cannot be 0"),
        (
            vec!["ballista", "executor", "--scheduler", "df://h:1", "--bind", "0.0.0.0:7000"],
            "--external-host",
        ),
        (vec!["ballista", "executor", "--scheduler", "df://h:0"], "port 0"),
        (vec!["ballista", "scheduler", "--bind", "nowhere"], "invalid value"),
    ] {
        let output = Command::new(QUIVER).args(&args).stdin(Stdio::null()).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[test]
fn an_executor_gives_up_on_an_unreachable_scheduler() {
    let port = free_port();
    let started = std::time::Instant::now();
    let output = Command::new(QUIVER)
        .args([
            "ballista",
            "executor",
            "--scheduler",
            &format!("df://127.0.0.1:{port}"),
            "--scheduler-wait",
            "1s",
        ])
        .arg("--bind")
        .arg(format!("127.0.0.1:{}", free_port()))
        .arg("--grpc-port")
        .arg(free_port().to_string())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("df://127.0.0.1:{port}")) && stderr.contains("unreachable"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
}
