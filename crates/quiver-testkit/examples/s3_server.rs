//! The testkit's S3-compatible server as a process of its own, for trying Quiver against
//! object storage by hand and for `bench/s3.sh`: creates the buckets named on the command
//! line, prints the `AWS_*` variables that point Quiver at it (as `export` lines), then
//! serves until it is killed. Objects live in a temporary folder under `$TMPDIR`.
//!
//! ```sh
//! cargo run -p quiver-testkit --example s3_server -- quiver > s3.env && . ./s3.env
//! ```

use std::io::Write;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let buckets: Vec<String> = std::env::args().skip(1).collect();
    if buckets.is_empty() {
        return Err("name at least one bucket to create, e.g. `s3_server quiver`".into());
    }
    let server = quiver_testkit::S3Server::start()?;
    for bucket in &buckets {
        server.create_bucket(bucket)?;
    }
    let mut out = std::io::stdout().lock();
    for (key, value) in server.env() {
        writeln!(out, "export {key}={value}")?;
    }
    out.flush()?;
    drop(out);
    loop {
        std::thread::park();
    }
}
