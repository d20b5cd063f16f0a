//! Writes a sample lake of any size, for benchmarks and manual exploration:
//!
//! ```text
//! cargo run --release -p quiver-sample --example generate_lake -- <dir> [rows] [drivers] [customers] [days] [seed]
//! ```
//!
//! Missing arguments take [`SampleSpec::default`]'s values. Prints one line per file.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use quiver_sample::{SampleSpec, generate_lake};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dir) = args.first().map(PathBuf::from) else {
        eprintln!("usage: generate_lake <dir> [rows] [drivers] [customers] [days] [seed]");
        return ExitCode::FAILURE;
    };
    let number = |index: usize, default: u64| -> Result<u64, String> {
        args.get(index)
            .map_or(Ok(default), |text| text.parse().map_err(|e| format!("argument {index} ({text}): {e}")))
    };
    let defaults = SampleSpec::default();
    let spec = (|| -> Result<SampleSpec, String> {
        Ok(SampleSpec {
            rows: number(1, defaults.rows)?,
            drivers: number(2, defaults.drivers)?,
            customers: number(3, defaults.customers)?,
            days: u32::try_from(number(4, u64::from(defaults.days))?).map_err(|e| e.to_string())?,
            seed: number(5, defaults.seed)?,
            start: defaults.start,
        })
    })();
    let spec = match spec {
        Ok(spec) => spec,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    };
    let began = Instant::now();
    match generate_lake(&dir, &spec) {
        Ok(summary) => {
            for (file, rows) in &summary.files {
                println!("{rows:>12}  {file}");
            }
            println!(
                "{:>12}  rows in {:.2?} ({} .. {})",
                summary.total_rows(),
                began.elapsed(),
                summary.window_start.to_rfc3339(),
                summary.window_end.to_rfc3339()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
