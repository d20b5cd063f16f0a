//! Running one test of the current test binary again, in a child process with extra
//! environment variables.
//!
//! Why: Quiver reads S3 settings from `AWS_*` environment variables
//! (`AmazonS3Builder::from_env()`), so a test of that path needs them set. Setting them in the
//! test process is not an option: `std::env::set_var` is `unsafe` in edition 2024 (another
//! thread reading the environment at the same time, through libc, is undefined behaviour),
//! and the workspace forbids unsafe code with `forbid`, which no `#[allow]` can lift. A child
//! process gets its environment from [`Command::env`] before it starts: safe, race-free, and
//! each test can have its own server.
//!
//! The pattern, in a test binary:
//!
//! ```no_run
//! use quiver_testkit::{S3Server, S3Settings, child};
//!
//! // #[test]
//! fn reads_from_s3() {
//!     if child::is_child() {
//!         // Here AWS_* point at the parent's server.
//!         let settings = S3Settings::from_env().unwrap();
//!         // ... the test itself ...
//!         return;
//!     }
//!     let server = S3Server::start().unwrap();
//!     server.create_bucket("bucket").unwrap();
//!     child::run_test_with_env("reads_from_s3", &server.env()).unwrap();
//! }
//! ```
//!
//! The parent keeps the server running while the child runs; the child talks to it over
//! loopback TCP.

use std::process::{Command, Stdio};

use crate::error::{Error, Result};

/// Set (to `1`) in the environment of a child started by [`run_test_with_env`].
pub const CHILD_VAR: &str = "QUIVER_TESTKIT_CHILD";

/// Whether this process is a child started by [`run_test_with_env`].
pub fn is_child() -> bool {
    std::env::var_os(CHILD_VAR).is_some()
}

/// Runs the test named `test_name` (its full libtest name, e.g. `module::test` inside a
/// module) of the running test binary in a child process and waits for it.
///
/// The child's environment is this process's, minus every inherited `AWS_*` variable (so a
/// developer's own AWS profile or endpoint cannot leak in), plus `env` and [`CHILD_VAR`].
/// The child runs only that test, on one thread; its output becomes this test's output.
///
/// # Errors
/// [`Error::Child`], with the child's output, when the child cannot start, fails, or did not
/// run a test of that name.
pub fn run_test_with_env(test_name: &str, env: &[(String, String)]) -> Result<()> {
    let fail = |reason: String, stdout: &[u8], stderr: &[u8]| Error::Child {
        test: test_name.to_string(),
        reason,
        stdout: String::from_utf8_lossy(stdout).into_owned(),
        stderr: String::from_utf8_lossy(stderr).into_owned(),
    };
    let exe =
        std::env::current_exe().map_err(|e| fail(format!("cannot start: no current exe ({e})"), &[], &[]))?;
    let mut command = Command::new(&exe);
    command
        .args([test_name, "--exact", "--nocapture", "--test-threads=1", "--format=pretty", "--color=never"])
        .stdin(Stdio::null());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("AWS_") {
            command.env_remove(key);
        }
    }
    command.envs(env.iter().map(|(k, v)| (k, v))).env(CHILD_VAR, "1");
    // `output` reads stdout and stderr together, so a chatty child cannot fill one pipe and
    // stall.
    let output =
        command.output().map_err(|e| fail(format!("cannot start {}: {e}", exe.display()), &[], &[]))?;
    if !output.status.success() {
        return Err(fail(format!("failed ({})", output.status), &output.stdout, &output.stderr));
    }
    // libtest exits successfully when the filter matches no test: make sure this one ran.
    let ran = format!("test {test_name} ... ok");
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !stdout.lines().any(|line| line.trim_end() == ran) {
        return Err(fail("ran no test of that name".to_string(), &output.stdout, &output.stderr));
    }
    // Pass the child's output on as this test's own: libtest shows it with `--nocapture`
    // and hides it otherwise, as for any test.
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    Ok(())
}
