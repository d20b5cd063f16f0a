//! `quiver quickstart`: a whole project in one command, for a first look.
//!
//! It writes the example config and definitions into a new folder, generates a small
//! deterministic sample lake, and runs the flow a data engineer and a training job would:
//! plan, apply, list, materialize the whole sample window, and build a training set from a
//! sample spine with a feature service.

use std::path::Path;

use quiver_core::config::Config;
use serde_json::json;

use crate::Kind;
use crate::commands;
use crate::example;
use crate::failure::Failure;
use crate::offline;
use crate::output::Output;

pub async fn run(dir: &Path, rows: u64, memory_limit: usize, out: &Output) -> Result<(), Failure> {
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
    spec.validate()?;
    let summary = quiver_sample::generate_lake(&dir.join("lake"), &spec)?;
    let total: u64 = summary.files.iter().map(|(_, n)| n).sum();
    step.line(format!("  sample lake: {} files, {total} rows in lake/", summary.files.len()));

    let config = Config::load(&dir.join("quiver.yaml"))?;
    // The reviewed path: the plan file pins the registry version and the definitions that
    // were reviewed, and apply refuses (exit 3) if either moved.
    let plan_file = dir.join("plan.json");
    step.line("\n$ quiver plan --out plan.json");
    commands::plan(&config, Some(&plan_file), &step).await?;
    step.line("\n$ quiver apply plan.json");
    commands::apply(&config, commands::Expect::Plan(plan_file), &step).await?;
    step.line("\n$ quiver list views");
    commands::list(&config, Kind::Views, &step).await?;
    step.line("\n$ quiver list services");
    commands::list(&config, Kind::Services, &step).await?;

    let (_, end) = spec.window()?;
    let end_text = end.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    step.line(format!("\n$ quiver materialize-incremental --end {end_text}"));
    let span = quiver_offline::materialize::Span::Incremental { end };
    offline::materialize(
        &config,
        span,
        &[],
        offline::RunSettings {
            lease: quiver_offline::lease::LeaseSettings::for_process("quiver quickstart"),
            allow_future: false,
            rebuild: false,
        },
        memory_limit,
        &step,
    )
    .await?;
    step.line("\n$ quiver stats driver_stats");
    crate::quality::stats(&config, "driver_stats", None, &step).await?;

    let spine = dir.join("spine.parquet");
    let spine_rows = quiver_sample::write_spine(&spine, &spec, 1_000, 7)?;
    step.line(format!(
        "\nWrote a sample spine: {spine_rows} rows of driver_id, customer_id, event_timestamp, trip_completed (spine.parquet)"
    ));
    step.line(
        "\n$ quiver historical --entities spine.parquet --service ride_ranking_v1 --out training.parquet",
    );
    let args = offline::HistoricalArgs {
        entities: Some(spine),
        features: vec![],
        service: Some("ride_ranking_v1".into()),
        out: dir.join("training.parquet"),
        overwrite: false,
        full_feature_names: false,
        timestamp_column: "event_timestamp".into(),
        from_manifest: None,
    };
    offline::historical(&config, args, memory_limit, &step).await?;
    if !out.json {
        let preview = preview(&dir.join("training.parquet"), 5).await?;
        step.line(format!("First rows of training.parquet:\n{preview}"));
    }
    // Latest values online, judged as of the end of the sample window (the sample data is
    // dated, so "now" would put every value with a ttl past its max age).
    step.line(format!(
        "\n$ quiver online --service ride_ranking_v1 --entity driver_id=1001,customer_id=2001 --entity driver_id=1002,customer_id=2002 --at {end_text}"
    ));
    crate::online::online(
        &config,
        &[],
        Some("ride_ranking_v1"),
        &["driver_id=1001,customer_id=2001".into(), "driver_id=1002,customer_id=2002".into()],
        Some(end),
        &step,
    )
    .await?;
    step.line(format!(
        "\nDone. Try, from {}:\n  quiver describe view driver_stats\n  quiver registry history\n  \
         quiver historical --from-manifest training.parquet.manifest.json --out rebuilt.parquet",
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

/// The first `rows` rows of a Parquet file, as a text table.
async fn preview(path: &Path, rows: usize) -> Result<String, Failure> {
    let ctx = datafusion::prelude::SessionContext::new();
    let text = path.to_string_lossy().into_owned();
    let df = ctx
        .read_parquet(text, datafusion::prelude::ParquetReadOptions::default())
        .await
        .map_err(|e| Failure::new(e.to_string()))?;
    let batches = df
        .limit(0, Some(rows))
        .map_err(|e| Failure::new(e.to_string()))?
        .collect()
        .await
        .map_err(|e| Failure::new(e.to_string()))?;
    datafusion::arrow::util::pretty::pretty_format_batches(&batches)
        .map(|t| t.to_string())
        .map_err(|e| Failure::new(e.to_string()))
}
