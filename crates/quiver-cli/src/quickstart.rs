//! `quiver quickstart`: a whole project in one command, for a first look.
//!
//! It writes the example config and definitions into a new folder, generates a small
//! deterministic sample lake, and runs the flow a data engineer would: plan, apply, list.

use std::path::Path;

use quiver_core::config::Config;
use serde_json::json;

use crate::Kind;
use crate::commands;
use crate::example;
use crate::failure::Failure;
use crate::output::Output;

pub async fn run(dir: &Path, rows: u64, out: &Output) -> Result<(), Failure> {
    for existing in ["quiver.yaml", "feature_defs", "lake", ".quiver"] {
        if dir.join(existing).exists() {
            return Err(Failure::new(format!(
                "{} already holds a project ({} exists); choose another --dir or remove it",
                dir.display(),
                existing
            )));
        }
    }
    let write = |path: &Path, text: &str| -> Result<(), Failure> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Failure::new(format!("{}: {e}", parent.display())))?;
        }
        std::fs::write(path, text).map_err(|e| Failure::new(format!("{}: {e}", path.display())))
    };
    write(&dir.join("quiver.yaml"), example::CONFIG)?;
    for (name, text) in example::FILES {
        write(&dir.join(example::DEFINITIONS_DIR).join(name), text)?;
    }
    let step = Output { json: false, quiet: out.json };
    step.line(format!("Created project 'rides' in {}", dir.display()));
    step.line(format!(
        "  quiver.yaml, {} definition files in {}",
        example::FILES.len(),
        example::DEFINITIONS_DIR
    ));

    let spec = quiver_sample::SampleSpec { rows, ..Default::default() };
    let summary = quiver_sample::generate_lake(&dir.join("lake"), &spec)?;
    let total: u64 = summary.files.iter().map(|(_, n)| n).sum();
    step.line(format!("  sample lake: {} files, {total} rows in lake/", summary.files.len()));

    let config = Config::load(&dir.join("quiver.yaml"))?;
    step.line("\n$ quiver plan");
    commands::plan(&config, &step).await?;
    step.line("\n$ quiver apply");
    commands::apply(&config, &step).await?;
    step.line("\n$ quiver list views");
    commands::list(&config, Kind::Views, &step).await?;
    step.line("\n$ quiver list services");
    commands::list(&config, Kind::Services, &step).await?;
    step.line(format!(
        "\nDone. Try, from {}:\n  quiver describe view driver_stats\n  quiver registry history",
        dir.display()
    ));
    if out.json {
        let version = commands::open_registry(&config)?.head_version().await?;
        out.json(&json!({
            "ok": true,
            "dir": dir,
            "registry_version": version,
            "lake_files": summary.files.len(),
            "lake_rows": total,
        }));
    }
    Ok(())
}
