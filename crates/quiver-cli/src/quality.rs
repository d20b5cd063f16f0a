//! `quiver stats`: the statistics a materialization run kept for each feature of a view;
//! `quiver drift`: how far a view's feature distributions moved between two periods.

use quiver_core::config::Config;
use quiver_core::registry::Registry;
use quiver_core::state::{FeatureStatistics, Histogram, NoRun, ViewState};
use quiver_offline::store::OfflineStore;
use serde_json::json;

use crate::commands::{applied, open_registry};
use crate::failure::Failure;
use crate::output::{Output, table};

fn number(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.6}").trim_end_matches('0').trim_end_matches('.').to_string())
}

/// A view's materialization state, from the project's offline store.
async fn view_state(config: &Config, registry: &Registry, view: &str) -> Result<ViewState, Failure> {
    let store = OfflineStore::open(config.offline_store.clone())?;
    Ok(store.state(registry)?.view(view).await?)
}

/// `quiver stats VIEW [--run N]`.
pub async fn stats(config: &Config, view: &str, run: Option<&str>, out: &Output) -> Result<(), Failure> {
    let registry = open_registry(config)?;
    let head = applied(&registry).await?;
    if head.definitions.feature_view(view).is_none() {
        return Err(Failure::new(format!(
            "unknown feature view '{view}'{}",
            quiver_core::definitions::suggest(
                view,
                head.definitions.feature_views.iter().map(|v| v.name.as_str())
            )
        )));
    }
    let state = view_state(config, &registry, view).await?;
    let record = state.pick_run(run).map_err(|e| match e {
        NoRun::CountsFromOne => Failure::new("--run counts from 1 (the newest run)"),
        other => Failure::new(other.message(view)),
    })?;
    if out.json {
        out.json(&json!({
            "view": view,
            "run": record.run_id,
            "status": record.status,
            "window": {"start": record.window_start, "end": record.window_end},
            "rows": record.rows,
            "features": record.statistics,
        }));
        return Ok(());
    }
    out.line(format!(
        "feature view {view}, run {} ({:?}): window {} to {}, {} rows",
        record.run_id,
        record.status,
        record.window_start.format("%Y-%m-%d %H:%M:%S"),
        record.window_end.format("%Y-%m-%d %H:%M:%S"),
        record.rows
    ));
    let rows: Vec<Vec<String>> = record
        .statistics
        .iter()
        .map(|(name, s): (&String, &FeatureStatistics)| {
            let q = |k: &str| number(s.quantiles.get(k).copied());
            vec![
                name.clone(),
                s.count.to_string(),
                s.nulls.to_string(),
                s.distinct.map_or("-".into(), |d| format!("~{d}")),
                number(s.min),
                q("0.25"),
                q("0.5"),
                q("0.75"),
                number(s.max),
                number(s.mean),
                number(s.stddev),
            ]
        })
        .collect();
    out.line(table(
        &["FEATURE", "COUNT", "NULLS", "DISTINCT", "MIN", "P25", "P50", "P75", "MAX", "MEAN", "STDDEV"],
        &rows,
    ));
    for (name, s) in &record.statistics {
        if let Some(Histogram::Top { values, other }) = &s.histogram {
            let shown: Vec<String> = values.iter().map(|(v, n)| format!("{v} {n}")).collect();
            out.line(format!(
                "{name}: {}{}",
                shown.join(", "),
                if *other > 0 { format!(", other {other}") } else { String::new() }
            ));
        }
    }
    Ok(())
}

/// Exit code of `quiver drift` and `quiver skew` when they found something (a feature that
/// drifted, values that differ), so a scheduler can act on it.
pub const EXIT_FOUND: u8 = 4;

/// `START..END` of event time.
fn period(text: &str, what: &str) -> Result<quiver_offline::layout::Window, Failure> {
    let (start, end) = text.split_once("..").ok_or_else(|| {
        Failure::new(format!("{what}: write the period as START..END, e.g. 2026-01-01..2026-01-08"))
    })?;
    let start = crate::offline::parse_time(start.trim())?;
    let end = crate::offline::parse_time(end.trim())?;
    quiver_offline::layout::Window::new(start, end).map_err(|e| Failure::new(format!("{what}: {e}")))
}

/// `quiver drift VIEW [--reference START..END --current START..END]`; without the periods,
/// the view's declared check.
pub async fn drift(
    config: &Config,
    view: &str,
    periods: Option<(&str, &str)>,
    memory_limit: usize,
    out: &Output,
) -> Result<(), Failure> {
    let periods = match periods {
        Some((reference, current)) => {
            Some((period(reference, "--reference")?, period(current, "--current")?))
        }
        None => None,
    };
    let registry = open_registry(config)?;
    let head = applied(&registry).await?;
    let defs = &head.definitions;
    let v = defs.feature_view(view).ok_or_else(|| {
        Failure::new(format!(
            "unknown feature view '{view}'{}",
            quiver_core::definitions::suggest(view, defs.feature_views.iter().map(|v| v.name.as_str()))
        ))
    })?;
    let (reference, current) = match periods {
        Some(p) => p,
        None => {
            let state = view_state(config, &registry, view).await?;
            quiver_offline::drift::declared_periods(v, &state)?
        }
    };
    let (lake, store) = crate::offline::offline_parts(config, memory_limit).await?;
    let report = quiver_offline::drift::drift(lake.session(), v, &store, &reference, &current).await?;
    let drifted = report.drifted();
    if out.json {
        out.json(&json!({
            "view": report.view,
            "table_version": report.table_version,
            "reference": report.reference,
            "current": report.current,
            "thresholds": report.thresholds,
            "features": report.features,
        }));
    } else {
        let rows: Vec<Vec<String>> = report
            .features
            .iter()
            .map(|(name, f)| {
                vec![
                    name.clone(),
                    f.reference_values.to_string(),
                    f.current_values.to_string(),
                    format!("{:.4}", f.psi),
                    f.ks.map_or("-".into(), |v| format!("{v:.4}")),
                    f.js.map_or("-".into(), |v| format!("{v:.4}")),
                    if f.drifted { "DRIFTED".into() } else { "ok".into() },
                ]
            })
            .collect();
        out.line(format!(
            "feature view {view}, table version {}: {} against reference {} (thresholds: psi {}, ks {}, js {})",
            report.table_version,
            report.current,
            report.reference,
            report.thresholds.psi,
            report.thresholds.ks,
            report.thresholds.js
        ));
        out.line(table(&["FEATURE", "REFERENCE", "CURRENT", "PSI", "KS", "JS", ""], &rows));
    }
    if drifted.is_empty() {
        return Ok(());
    }
    let mut failure = Failure::new(format!("feature view '{view}': {} drifted", drifted.join(", ")));
    failure.code = EXIT_FOUND;
    Err(failure)
}

/// `quiver skew (--service S | --features REFS) [--sample N]`.
pub async fn skew(
    config: &Config,
    features: &[String],
    service: Option<&str>,
    sample: usize,
    memory_limit: usize,
    out: &Output,
) -> Result<(), Failure> {
    let snapshot = applied(&open_registry(config)?).await?;
    let defs = &snapshot.definitions;
    let refs = defs.resolve_features(service, features)?;
    let online = quiver_online::open(&config.online_store, &config.project)
        .await
        .map_err(|e| Failure::new(format!("opening the online store: {e}")))?;
    let (lake, store) = crate::offline::offline_parts(config, memory_limit).await?;
    let seed = chrono::Utc::now().timestamp_micros() as u64;
    let report =
        quiver_offline::skew::skew(lake.session(), defs, &store, online.as_ref(), &refs, sample, seed)
            .await?;
    if out.json {
        out.json(&json!({
            "at": report.at,
            "entities": report.entities,
            "features": report.features,
        }));
    } else {
        out.line(format!(
            "{} entities, online against offline at {}",
            report.entities,
            report.at.to_rfc3339()
        ));
        let rows: Vec<Vec<String>> =
            report.features.iter().map(|(name, f)| vec![name.clone(), f.differ.to_string()]).collect();
        out.line(table(&["FEATURE", "DIFFERENT VALUES"], &rows));
        for (name, f) in &report.features {
            for e in &f.examples {
                out.line(format!(
                    "{name}: {} online {} ({}), offline {}",
                    serde_json::Value::Object(e.entity.clone().into_iter().collect()),
                    e.online,
                    e.online_status,
                    e.offline
                ));
            }
        }
    }
    let differing = report.differing();
    if differing == 0 {
        return Ok(());
    }
    let mut failure = Failure::new(format!(
        "{differing} online value(s) differ from what training reads for the same entities"
    ));
    failure.code = EXIT_FOUND;
    Err(failure)
}
