//! The offline commands: materialize, materialize-incremental, historical.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use quiver_ballista::{BallistaEngine, RunOptions};
use quiver_core::config::{Config, OfflineEngineConfig};
use quiver_offline::engine::{Engine, LocalEngine};
use quiver_offline::lake::Lake;
use quiver_offline::lease::LeaseSettings;
use quiver_offline::materialize::{
    MIN_ROWS_PER_WRITER_VAR, Materializer, Progress, Span, ViewReport, ViewRows, rows_per_writer_setting,
};
use quiver_offline::session::{SessionOverrides, offline_session};
use quiver_offline::store::OfflineStore;
use quiver_offline::training::{self, TrainingSetRequest};
use serde_json::json;

use crate::commands::{applied, open_registry};
use crate::failure::Failure;
use crate::output::{Output, table};

/// The lake and offline store of a project, in a session limited to `memory_limit` bytes;
/// the store is checked ([`OfflineStore::verify`]) before it is returned.
pub async fn offline_parts(config: &Config, memory_limit: usize) -> Result<(Lake, OfflineStore), Failure> {
    let ctx = offline_session(memory_limit, &SessionOverrides::from_vars(std::env::vars()))?;
    let store = OfflineStore::open(config.offline_store.clone())?;
    store.verify().await?;
    store.register(&ctx)?;
    let lake = Lake::with_session(config.lake.clone(), ctx).with_roots(config.lake_roots.clone());
    Ok((lake, store))
}

/// Parses a point in time: RFC 3339, `YYYY-MM-DD` (midnight UTC), `YYYY-MM-DDTHH:MM:SS`
/// (UTC) or `now`.
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, Failure> {
    let t = text.trim();
    if t == "now" {
        return Ok(Utc::now());
    }
    if let Some(x) = quiver_core::definitions::parse_instant(t) {
        return Ok(x);
    }
    Err(Failure::new(format!(
        "'{text}' is not a time: use RFC 3339 (2026-01-01T12:00:00Z), a date (2026-01-01, midnight UTC) or `now`"
    )))
}

/// Progress bars on stderr (hidden when stderr is not a terminal), and one line per view.
struct BarProgress {
    current: Mutex<Option<(ProgressBar, tokio::task::JoinHandle<()>)>>,
    quiet: bool,
}

impl Progress for BarProgress {
    fn start_view(&self, view: &str, rows: ViewRows) {
        if self.quiet {
            return;
        }
        // Reading (and sorting) first, with no total yet; then writing, against the total.
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("{prefix:>22} reading: {human_pos} rows, {per_sec}") {
            bar.set_style(style);
        }
        bar.set_prefix(view.to_string());
        let ticking = bar.clone();
        let handle = tokio::spawn(async move {
            let mut writing = false;
            loop {
                match rows.expected() {
                    None => ticking.set_position(rows.read.load(Ordering::Relaxed)),
                    Some(total) => {
                        if !writing {
                            writing = true;
                            ticking.set_length(total);
                            ticking.set_position(0);
                            ticking.reset_eta();
                            if let Ok(style) = ProgressStyle::with_template(
                                "{prefix:>22} [{bar:30}] {human_pos}/{human_len} rows written, {per_sec}, ETA {eta}",
                            ) {
                                ticking.set_style(style.progress_chars("=> "));
                            }
                        }
                        ticking.set_position(rows.written.load(Ordering::Relaxed));
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        if let Ok(mut slot) = self.current.lock() {
            *slot = Some((bar, handle));
        }
    }

    fn finish_view(&self, report: &ViewReport) {
        if let Ok(mut slot) = self.current.lock()
            && let Some((bar, handle)) = slot.take()
        {
            handle.abort();
            bar.finish_and_clear();
        }
        if self.quiet {
            return;
        }
        let what = match (&report.error, &report.skipped) {
            (Some(e), _) => format!("FAILED: {e}"),
            (None, Some(s)) => format!("skipped: {s}"),
            (None, None) => format!(
                "{} rows in {:.1}s ({:.0} rows/s), offline table version {}{}{}{}{}",
                report.rows,
                report.seconds,
                report.rows as f64 / report.seconds.max(1e-9),
                report.offline_version.map_or("-".to_string(), |v| v.to_string()),
                report.online_rows.map_or(String::new(), |n| format!(", {n} entities online")),
                match report.dropped_null_keys {
                    0 => String::new(),
                    n => format!("; {n} rows without a join key left out"),
                },
                match report.dropped_null_event_times {
                    0 => String::new(),
                    n => format!(
                        "; {n} rows of the source without an event time left out (they belong to no window)"
                    ),
                },
                match &report.rebuilt {
                    None => String::new(),
                    Some(r) => format!(
                        "; the table was rebuilt under the view's columns (the old rows stay at version {}{})",
                        r.previous_version.map_or("-".to_string(), |v| v.to_string()),
                        match r.pushed_rows_left_behind {
                            0 => String::new(),
                            n => format!(", with {n} pushed rows the new table does not hold"),
                        }
                    ),
                }
            ),
        };
        eprintln!("{}: {what}", report.view);
    }
}

/// How `materialize` runs: the leases it takes, and whether its window may end in the future.
pub struct RunSettings {
    pub lease: LeaseSettings,
    pub allow_future: bool,
    /// Rebuild the named views' tables under their current columns.
    pub rebuild: bool,
}

pub async fn materialize(
    config: &Config,
    span: Span,
    views: &[String],
    run: RunSettings,
    memory_limit: usize,
    out: &Output,
) -> Result<(), Failure> {
    let engine = open_engine(config, "quiver materialize")?;
    let (lake, store) = offline_parts(config, memory_limit).await?;
    let registry = open_registry(config)?;
    let online = quiver_online::open(&config.online_store, &config.project)
        .await
        .map_err(|e| Failure::new(format!("opening the online store: {e}")))?;
    let materializer = Materializer {
        online: Some(online),
        online_expiry: config.online_store.expires_keys(),
        rows_per_writer: rows_per_writer_setting(std::env::var(MIN_ROWS_PER_WRITER_VAR).ok().as_deref())?,
        lease: run.lease,
        allow_future: run.allow_future,
        rebuild: run.rebuild,
        engine,
        ..Materializer::new(lake, store, registry)?
    };
    let progress = BarProgress { current: Mutex::new(None), quiet: out.quiet };
    let reports = materializer.run(span, views, &progress).await?;
    let failed = reports.iter().filter(|r| r.error.is_some()).count();
    if out.json {
        out.json(&json!({"ok": failed == 0, "views": reports}));
    } else {
        let fmt = |t: Option<DateTime<Utc>>| {
            t.map_or("-".to_string(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        };
        let rows: Vec<Vec<String>> = reports
            .iter()
            .map(|r| {
                vec![
                    r.view.clone(),
                    fmt(r.window_start),
                    fmt(r.window_end),
                    r.rows.to_string(),
                    r.offline_version.map_or("-".into(), |v| v.to_string()),
                    r.online_rows.map_or("-".into(), |v| v.to_string()),
                    match (&r.error, &r.skipped) {
                        (Some(_), _) => "failed".into(),
                        (None, Some(s)) => format!("skipped ({s})"),
                        _ if !r.expectations.is_empty() => {
                            format!("ok, {} expectation(s) broken (warn)", r.expectations.len())
                        }
                        _ => "ok".into(),
                    },
                ]
            })
            .collect();
        out.line(table(
            &["VIEW", "FROM", "TO (EXCLUSIVE)", "ROWS", "TABLE VERSION", "ONLINE", "STATUS"],
            &rows,
        ));
        for r in &reports {
            for failure in &r.expectations {
                out.line(format!("{}: expectation {failure}", r.view));
                for example in &failure.examples {
                    let cells: Vec<String> = example.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    out.line(format!("    e.g. {}", cells.join(", ")));
                }
            }
        }
    }
    if failed > 0 {
        let first = reports.iter().find_map(|r| r.error.as_ref().map(|e| format!("{}: {e}", r.view)));
        return Err(Failure::new(format!(
            "{failed} view(s) failed to materialize; their data and watermarks are unchanged ({})",
            first.unwrap_or_default()
        )));
    }
    Ok(())
}

/// `quiver leases`: every view's lease, held or free.
pub async fn leases(config: &Config, memory_limit: usize, out: &Output) -> Result<(), Failure> {
    let (_, store) = offline_parts(config, memory_limit).await?;
    let leases = store.leases()?.list().await?;
    if out.json {
        out.json(&json!({ "leases": leases }));
        return Ok(());
    }
    let fmt = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%S").to_string();
    let rows: Vec<Vec<String>> = leases
        .iter()
        .map(|l| {
            vec![
                l.view.clone(),
                if l.free { "free".into() } else { "held".into() },
                l.holder.clone(),
                fmt(l.acquired_at),
                fmt(l.expires_at),
            ]
        })
        .collect();
    out.line(table(&["VIEW", "STATE", "HOLDER (LAST)", "SINCE", "EXPIRES"], &rows));
    Ok(())
}

/// What `quiver historical` was asked.
pub struct HistoricalArgs {
    pub entities: Option<PathBuf>,
    pub features: Vec<String>,
    pub service: Option<String>,
    pub out: PathBuf,
    pub overwrite: bool,
    pub full_feature_names: bool,
    pub timestamp_column: String,
    pub from_manifest: Option<PathBuf>,
}

/// The engine offline plans (materializations, training sets) run on, as `config` names it.
pub fn open_engine(config: &Config, job_name: &str) -> Result<Arc<dyn Engine>, Failure> {
    match &config.offline_engine {
        OfflineEngineConfig::Local => Ok(Arc::new(LocalEngine)),
        OfflineEngineConfig::Ballista { scheduler, partitions } => {
            let options = RunOptions { job_name: job_name.into(), ..RunOptions::default() };
            let engine = BallistaEngine::new(scheduler, *partitions, options)
                .map_err(|e| Failure { code: 2, ..Failure::new(format!("offline engine: {e}")) })?;
            Ok(Arc::new(engine))
        }
    }
}

pub async fn historical(
    config: &Config,
    args: HistoricalArgs,
    memory_limit: usize,
    out: &Output,
) -> Result<(), Failure> {
    let engine = open_engine(config, "quiver historical")?;
    let (lake, store) = offline_parts(config, memory_limit).await?;
    let registry = open_registry(config)?;
    let (snapshot, request) = match &args.from_manifest {
        Some(path) => {
            let manifest = training::read_manifest(path)?;
            if manifest.project != config.project {
                return Err(Failure::new(format!(
                    "the manifest is from project '{}', this config is project '{}'",
                    manifest.project, config.project
                )));
            }
            let snapshot = registry.get(manifest.registry_version).await?;
            if snapshot.definitions_hash != manifest.definitions_hash {
                return Err(Failure::new(format!(
                    "registry version {} does not hold the definitions the manifest names (hash differs)",
                    manifest.registry_version
                )));
            }
            (snapshot, training::rebuild_request(&manifest, args.out.clone(), args.overwrite)?)
        }
        None => {
            let snapshot = applied(&registry).await?;
            let defs = &snapshot.definitions;
            let features = defs.resolve_features(args.service.as_deref(), &args.features)?;
            let request = TrainingSetRequest {
                spine: args.entities.clone().ok_or_else(|| Failure::new("--entities FILE is required"))?,
                out: args.out.clone(),
                overwrite: args.overwrite,
                features,
                feature_service: args.service.clone(),
                full_feature_names: args.full_feature_names,
                timestamp_column: args.timestamp_column.clone(),
                table_versions: Default::default(),
            };
            (snapshot, request)
        }
    };
    let manifest = training::build_on(engine.as_ref(), lake.session(), &snapshot, &store, &request).await?;
    let kept = training::keep_manifest(&store, &manifest).await.map_err(|e| {
        Failure::new(format!(
            "the training set and its manifest were written to {} and {}, but {e}",
            request.out.display(),
            training::manifest_path(&request.out).display()
        ))
    })?;
    if out.json {
        out.json(&json!({
            "ok": true,
            "manifest_path": training::manifest_path(&request.out),
            "manifest_kept_at": kept,
            "manifest": manifest,
        }));
    } else {
        out.line(format!(
            "Wrote {} rows with {} features to {} in {}s (registry version {}; manifest {}, a copy \
             at {kept}).",
            manifest.output_rows,
            manifest.features.len(),
            request.out.display(),
            manifest.seconds,
            manifest.registry_version,
            training::manifest_path(&request.out).display()
        ));
    }
    Ok(())
}
