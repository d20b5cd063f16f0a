//! The Python client package (`clients/python`, `quiver_client`) installed the way a user
//! installs it, into a fresh virtual environment, and its pytest suite run against real
//! `quiver serve` processes (this build's binary) and Redis servers it starts itself.
//! `clients/python/run_tests.sh` does the work; this test makes `cargo test` run it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::path::Path;
use std::process::Command;

#[test]
fn the_python_client_package_passes_its_suite_against_this_build() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let binary = Path::new(env!("CARGO_BIN_EXE_quiver"));
    // The venv sits next to the build (target/debug/python-client-venv), made afresh each run.
    let venv = binary.parent().unwrap().join("python-client-venv");
    let output = Command::new("bash")
        .arg(root.join("clients/python/run_tests.sh"))
        .arg(&venv)
        .arg("-q")
        .env("QUIVER_BIN", binary)
        .env_remove("QUIVER_CONFIG")
        .output()
        .expect("bash runs");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert!(
        output.status.success(),
        "clients/python/run_tests.sh failed ({:?}):\n{}\n{}",
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    );
    assert!(text(&output.stdout).contains(" passed"), "{}", text(&output.stdout));
}
