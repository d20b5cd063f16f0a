//! Fault points for tests: places where a test can make a debug build of Quiver die as if
//! killed (`SIGKILL`-like: no cleanup, no unwinding), or hold still while the test changes
//! the world under it, to prove what a fault at that exact moment leaves behind. Release
//! builds compile every point to nothing and never read the variables.
//!
//! - `QUIVER_FAULT=<point>` dies at the point (`abort`);
//! - `QUIVER_FAULT=<point>@pause` with `QUIVER_FAULT_GATE=<file>` creates `<file>.reached`
//!   at the point, then waits (at most two minutes) until `<file>` exists.
//!
//! Points:
//! - `materialize.after_plan` — a view's window is planned (the lake files it reads are
//!   listed), nothing is read yet;
//! - `materialize.after_commit` — a view's window is committed to its Delta table, the run
//!   is not yet recorded (watermark, run history) and nothing is written online.

/// Acts at `point` when `QUIVER_FAULT` names it (debug builds only).
#[inline]
pub(crate) fn point(point: &str) {
    #[cfg(debug_assertions)]
    if let Ok(fault) = std::env::var("QUIVER_FAULT") {
        if fault == point {
            eprintln!("QUIVER_FAULT: dying at {point}");
            std::process::abort();
        }
        if fault.strip_suffix("@pause") == Some(point) {
            pause(point);
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = point;
}

#[cfg(debug_assertions)]
fn pause(point: &str) {
    let Some(gate) = std::env::var_os("QUIVER_FAULT_GATE").map(std::path::PathBuf::from) else {
        eprintln!("QUIVER_FAULT: {point}@pause needs QUIVER_FAULT_GATE");
        std::process::abort();
    };
    let mut reached = gate.clone().into_os_string();
    reached.push(".reached");
    if std::fs::write(&reached, point).is_err() {
        std::process::abort();
    }
    eprintln!("QUIVER_FAULT: paused at {point}");
    let until = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !gate.exists() && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
