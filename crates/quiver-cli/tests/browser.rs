//! The web catalog in a real headless Chromium and Firefox and the HTTP API under
//! Schemathesis, through `crates/quiver-server/tests/browser/run.sh` with this build's
//! `quiver` binary. Needs `chromium` and `firefox-esr` on the PATH (Debian: `apt-get install
//! chromium firefox-esr`; `.ci/run` installs them) and PyPI for Playwright, websockets and
//! Schemathesis (installed once into a virtual environment in the cargo target folder).
//! Screenshots of every page are kept in `<target>/browser-screenshots/` as the run's
//! artifacts.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::path::PathBuf;
use std::process::Command;

/// The cargo target folder: this test binary is `<target>/debug/deps/browser-<hash>`.
fn target_dir() -> PathBuf {
    std::env::current_exe().unwrap().ancestors().nth(3).unwrap().to_path_buf()
}

#[test]
fn the_catalog_works_in_headless_chromium_and_firefox_and_the_http_api_meets_its_openapi_document() {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../quiver-server/tests/browser/run.sh");
    let artifacts = target_dir().join("browser-screenshots");
    let output = Command::new("bash")
        .arg(&script)
        .env("QUIVER_BIN", env!("CARGO_BIN_EXE_quiver"))
        .env("QUIVER_BROWSER_VENV", target_dir().join("browser-venv"))
        .env("ARTIFACTS", &artifacts)
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{}\n{stdout}\n{stderr}", script.display());
    assert!(stdout.contains("catalog browser test: ok"), "{stdout}");
    assert!(stdout.contains("API schema test: ok"), "{stdout}");
    for page in ["catalog", "view", "service", "lineage", "history", "runs"] {
        for shot in [page.to_string(), format!("{page}-phone")] {
            assert!(artifacts.join(format!("{shot}.png")).exists(), "no Chromium screenshot {shot}");
            assert!(artifacts.join(format!("firefox-{shot}.png")).exists(), "no Firefox screenshot {shot}");
        }
    }
}
