//! `quiver online`: the latest feature values of some entities, as JSON.

use std::collections::BTreeMap;

use quiver_core::config::Config;
use quiver_core::definitions::{Definitions, FeatureRef};
use quiver_core::dtype::DType;
use quiver_online::read::get_online_features;
use quiver_online::value::Value;
use serde_json::json;

use crate::commands::{applied, open_registry};
use crate::failure::Failure;
use crate::output::Output;

/// Declared type of each join key the requested views use.
fn key_types(defs: &Definitions, features: &[FeatureRef]) -> BTreeMap<String, DType> {
    let mut out = BTreeMap::new();
    for r in features {
        if let Some(view) = defs.feature_view(&r.view) {
            for k in defs.join_keys(view) {
                out.insert(k.name, k.dtype);
            }
        }
    }
    out
}

/// Parses `k=v[,k2=v2]` with the declared key types.
fn parse_entity(text: &str, types: &BTreeMap<String, DType>) -> Result<BTreeMap<String, Value>, Failure> {
    let mut row = BTreeMap::new();
    for part in text.split(',') {
        let (k, v) = part.split_once('=').ok_or_else(|| {
            Failure::new(format!("--entity '{text}': write join keys as name=value, e.g. driver_id=1001"))
        })?;
        let (k, v) = (k.trim(), v.trim());
        let value = match types.get(k) {
            None => {
                return Err(Failure::new(format!(
                    "--entity '{text}': '{k}' is not a join key of the requested views (they use: {})",
                    types.keys().cloned().collect::<Vec<_>>().join(", ")
                )));
            }
            Some(DType::Int64) => Value::Int64(v.parse().map_err(|_| {
                Failure::new(format!("--entity '{text}': join key '{k}' is int64; '{v}' is not an integer"))
            })?),
            Some(DType::Int32) => Value::Int32(v.parse().map_err(|_| {
                Failure::new(format!("--entity '{text}': join key '{k}' is int32; '{v}' is not an integer"))
            })?),
            Some(DType::String) => Value::String(v.to_string()),
            Some(DType::Bytes) => Value::Bytes(v.as_bytes().to_vec()),
            Some(other) => {
                return Err(Failure::new(format!("join key '{k}' has type {other}, which cannot be a key")));
            }
        };
        if row.insert(k.to_string(), value).is_some() {
            return Err(Failure::new(format!(
                "--entity '{text}': join key '{k}' is given twice; give each entity its own --entity"
            )));
        }
    }
    Ok(row)
}

pub async fn online(
    config: &Config,
    features: &[String],
    service: Option<&str>,
    entities: &[String],
    at: Option<chrono::DateTime<chrono::Utc>>,
    out: &Output,
) -> Result<(), Failure> {
    let snapshot = applied(&open_registry(config)?).await?;
    let defs = &snapshot.definitions;
    let refs = defs.resolve_features(service, features)?;
    if entities.is_empty() {
        return Err(Failure::new("give at least one --entity name=value"));
    }
    let types = key_types(defs, &refs);
    let rows: Vec<BTreeMap<String, Value>> =
        entities.iter().map(|e| parse_entity(e, &types)).collect::<Result<_, _>>()?;
    let store = quiver_online::open(&config.online_store, &config.project)
        .await
        .map_err(|e| Failure::new(format!("opening the online store: {e}")))?;
    let now = at.unwrap_or_else(chrono::Utc::now);
    let now_ns = now.timestamp_nanos_opt().ok_or_else(|| Failure::new("--at is out of range"))?;
    let response = get_online_features(store.as_ref(), defs, &refs, &rows[..], now_ns)
        .await
        .map_err(|e| Failure::new(e.to_string()))?;
    // The output is JSON whether or not --json is given: this command is for machines first.
    let body = response.to_json(&rows);
    if !out.quiet {
        println!("{}", serde_json::to_string_pretty(&body).unwrap_or_default());
    }
    Ok(())
}

/// `quiver online rebuild`: every selected online view's latest rows, from its offline table
/// into the online store (newer-wins), one view after the other.
pub async fn rebuild(
    config: &Config,
    views: &[String],
    memory_limit: usize,
    out: &Output,
) -> Result<(), Failure> {
    let snapshot = applied(&open_registry(config)?).await?;
    let defs = &snapshot.definitions;
    let selected: Vec<&quiver_core::definitions::FeatureView> = if views.is_empty() {
        defs.feature_views.iter().filter(|v| v.online).collect()
    } else {
        views
            .iter()
            .map(|name| {
                defs.feature_view(name).ok_or_else(|| {
                    Failure::new(format!(
                        "unknown feature view '{name}'{}",
                        quiver_core::definitions::suggest(
                            name,
                            defs.feature_views.iter().map(|v| v.name.as_str())
                        )
                    ))
                })
            })
            .collect::<Result<_, _>>()?
    };
    let (lake, store) = crate::offline::offline_parts(config, memory_limit).await?;
    let online = quiver_online::open(&config.online_store, &config.project)
        .await
        .map_err(|e| Failure::new(format!("opening the online store: {e}")))?;
    let mut reports = Vec::new();
    for view in selected {
        let report = quiver_offline::materialize::rebuild_online(
            lake.session(),
            defs,
            view,
            &store,
            online.as_ref(),
            config.online_store.expires_keys(),
        )
        .await?;
        if !out.json && !out.quiet {
            eprintln!(
                "{}: {} rows read, {} entities, {} online rows written in {:.1}s",
                report.view, report.rows_read, report.entities, report.written, report.seconds
            );
        }
        reports.push(report);
    }
    if out.json {
        out.json(&json!({"ok": true, "online_store": online.describe(), "views": reports}));
    } else {
        let rows: Vec<Vec<String>> = reports
            .iter()
            .map(|r| {
                vec![
                    r.view.clone(),
                    r.table_version.map_or("-".into(), |v| v.to_string()),
                    r.entities.to_string(),
                    r.written.to_string(),
                ]
            })
            .collect();
        out.line(crate::output::table(&["VIEW", "TABLE VERSION", "ENTITIES", "WRITTEN"], &rows));
    }
    Ok(())
}
