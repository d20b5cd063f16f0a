//! `quiver serve` as a process: it starts on the given addresses, serves metrics, and stops
//! cleanly on SIGTERM after draining.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::example_project;

fn free_addr() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

fn get(addr: &str, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// `quiver serve ARGS` in `dir`, with no token; stderr piped.
fn serve(dir: &std::path::Path, args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_quiver"))
        .arg("serve")
        .args(args)
        .current_dir(dir)
        .env_remove("QUIVER_CONFIG")
        .env("QUIVER_AUTH_TOKEN", "")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The answer to `GET path` on `addr` once the server there answers (within 60 s), or a
/// failure saying `what` did not start.
/// Sends SIGTERM, asserts the server exits cleanly, and returns what it wrote to stderr.
fn stop(mut child: std::process::Child) -> String {
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(status.success(), "exit {status:?}: {stderr}");
    stderr
}

fn get_when_up(addr: &str, path: &str, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(b) = get(addr, path) {
            return b;
        }
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn serve_runs_until_sigterm_and_exposes_metrics() {
    let (_tmp, dir) = example_project("", &["--rows", "500", "--days", "1"]);
    let (addr, metrics) = (free_addr(), free_addr());
    let child = serve(&dir, &["--addr", &addr, "--metrics-addr", &metrics]);
    let body = get_when_up(&metrics, "/metrics", "the server did not start");
    assert!(body.contains("quiver_registry_version 1"), "{body}");
    assert!(TcpStream::connect(&addr).is_ok(), "gRPC port listens");
    assert!(get(&metrics, "/nope").unwrap().starts_with("HTTP/1.1 404"));
    let stderr = stop(child);
    assert!(stderr.contains("serving project 'rides'"), "{stderr}");
    assert!(!stderr.contains("bearer token"), "an empty QUIVER_AUTH_TOKEN means no token: {stderr}");
    assert!(stderr.contains("stopped"), "{stderr}");
    // The log lines (tracing's INFO lines, here the shutdown's) are plain text on a pipe.
    assert!(stderr.contains(" INFO "), "{stderr}");
    assert!(!stderr.contains('\x1b'), "terminal colour codes in a piped log: {stderr:?}");
}

#[test]
fn serve_refuses_bad_limits_and_busy_ports() {
    let (_tmp, dir) = example_project("", &["--rows", "200", "--days", "1"]);
    let o = support::quiver(&dir, &["serve", "--deadline", "0"]);
    assert_eq!(o.status.code(), Some(2), "{}", support::text(&o).1);
    let o = support::quiver(&dir, &["serve", "--max-message-size", "lots"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(support::text(&o).1.contains("--max-message-size"));
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let err = support::fails(&dir, &["serve", "--addr", &addr]);
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
}

#[test]
fn serve_refuses_to_listen_beyond_loopback_without_a_token() {
    let (_tmp, dir) = example_project("", &["--rows", "200", "--days", "1"]);
    // Refused before anything is opened or bound: no traffic leaves the machine.
    let o = support::quiver_with_env(&dir, &["serve", "--addr", "0.0.0.0:0"], &[("QUIVER_AUTH_TOKEN", "")]);
    assert_eq!(o.status.code(), Some(2), "{}", support::text(&o).1);
    let err = support::text(&o).1;
    assert!(err.contains("refusing to serve on 0.0.0.0:0 without authentication"), "{err}");
    assert!(err.contains("--insecure"), "{err}");
    let o = support::quiver_with_env(&dir, &["serve", "--addr", "[::]:0"], &[("QUIVER_AUTH_TOKEN", "")]);
    assert_eq!(o.status.code(), Some(2), "{}", support::text(&o).1);
}

#[test]
fn serve_with_an_http_address_serves_the_catalog_json_and_metrics_on_it() {
    let http = free_addr();
    let (_tmp, dir) =
        example_project(&format!("server:\n  http_addr: {http}\n"), &["--rows", "300", "--days", "1"]);
    let addr = free_addr();
    let child = serve(&dir, &["--addr", &addr]);
    let health = get_when_up(&http, "/healthz", "the HTTP port (server.http_addr) did not answer");
    assert!(health.starts_with("HTTP/1.1 200") && health.contains("serving"), "{health}");
    let catalog = get(&http, "/").unwrap();
    assert!(catalog.starts_with("HTTP/1.1 200") && catalog.contains("/views/driver_stats"), "{catalog}");
    let views = get(&http, "/v1/views").unwrap();
    assert!(views.contains("\"registry_version\":1"), "{views}");
    let metrics = get(&http, "/metrics").unwrap();
    assert!(
        metrics.contains("quiver_registry_version 1"),
        "metrics share the HTTP port without --metrics-addr"
    );
    let stderr = stop(child);
    assert!(stderr.contains(&format!("catalog and JSON API on http://{http}/")), "{stderr}");
}

#[test]
fn serve_refuses_http_beyond_loopback_without_a_token() {
    let (_tmp, dir) = example_project("", &["--rows", "200", "--days", "1"]);
    let o =
        support::quiver_with_env(&dir, &["serve", "--http-addr", "0.0.0.0:0"], &[("QUIVER_AUTH_TOKEN", "")]);
    assert_eq!(o.status.code(), Some(2), "{}", support::text(&o).1);
    let err = support::text(&o).1;
    assert!(err.contains("refusing to serve HTTP on 0.0.0.0:0 without authentication"), "{err}");
}
