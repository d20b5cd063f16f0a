//! The catalog's object pages: `/` (every entity, source, view and service, with a search
//! box), `/views/NAME` (a view's definition, freshness, runs and data quality) and
//! `/services/NAME` (a service's resolved features). They read the registry version being
//! served, the materialization state ([`quiver_core::state::ViewState`]: runs, statistics,
//! broken expectations) and the latest declared drift round, as the gRPC services do.

use chrono::Utc;
use quiver_core::definitions::{Definitions, FeatureView};
use quiver_core::registry::Snapshot;
use quiver_core::state::{RunRecord, RunStatus, ViewState};

use super::html::{Nav, age, elapsed, esc, num, page, seg, table, tags, time};
use super::svg;
use crate::app::App;
use crate::domain::{Error, Result, project};

/// Runs a view page lists.
const RUNS_SHOWN: usize = 10;

/// The lowercase text the search box matches a row against.
fn search_text<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    esc(&parts.into_iter().collect::<Vec<_>>().join(" ").to_lowercase())
}

/// `/`.
pub fn index(app: &App) -> Result<String> {
    let Some(s) = app.project().current() else {
        return Ok(page(
            "Catalog",
            Nav::Catalog,
            "<h1>Catalog</h1><p>Nothing is applied yet: run <code>quiver apply</code> to register definitions.</p>",
        ));
    };
    let d = &s.definitions;
    let mut body = format!(
        "<h1>Catalog</h1><p class=\"muted\">Project {} · registry version {} · applied {} by {}</p>\
         <label for=\"search\">Search by name, feature, tag, owner or description</label><br>\
         <input id=\"search\" type=\"search\" placeholder=\"e.g. conv_rate, pricing, gold\" autocomplete=\"off\">\
         <span id=\"search-count\" class=\"count\"></span>",
        esc(&s.project),
        s.version,
        esc(&time(s.applied_at)),
        esc(&s.applied_by)
    );
    body.push_str(&views_table(d));
    body.push_str(&services_table(d));
    body.push_str(&entities_table(d));
    body.push_str(&sources_table(d));
    Ok(page("Catalog", Nav::Catalog, &body))
}

fn views_table(d: &Definitions) -> String {
    let mut out =
        format!("<h2 id=\"views\">Feature views <span class=\"count\">{}</span></h2>", d.feature_views.len());
    out.push_str("<div class=\"scroll\"><table><thead><tr><th>View</th><th>Entities</th><th>Features</th><th>Owner</th><th>Tags</th><th>Description</th></tr></thead><tbody>");
    for v in &d.feature_views {
        let features: Vec<&str> = v.features.iter().map(|f| f.name.as_str()).collect();
        let mut words: Vec<&str> = vec![v.name.as_str(), v.source.as_str()];
        words.extend(&features);
        words.extend(v.features.iter().filter_map(|f| f.description.as_deref()));
        words.extend(v.tags.iter().flat_map(|(k, t)| [k.as_str(), t.as_str()]));
        words.extend(v.owner.as_deref());
        words.extend(v.description.as_deref());
        words.extend(v.entities.iter().map(String::as_str));
        out.push_str(&format!(
            "<tr data-search=\"{}\"><td><a href=\"/views/{}\">{}</a>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            search_text(words),
            seg(&v.name),
            esc(&v.name),
            if v.online { "" } else { " <span class=\"muted\">(offline only)</span>" },
            esc(&v.entities.join(", ")),
            esc(&features.join(", ")),
            esc(v.owner.as_deref().unwrap_or("")),
            tags(&v.tags),
            esc(v.description.as_deref().unwrap_or("")),
        ));
    }
    out.push_str("</tbody></table></div>");
    out
}

fn services_table(d: &Definitions) -> String {
    let mut out = format!(
        "<h2 id=\"services\">Feature services <span class=\"count\">{}</span></h2>",
        d.feature_services.len()
    );
    out.push_str("<div class=\"scroll\"><table><thead><tr><th>Service</th><th>Features</th><th>Owner</th><th>Tags</th><th>Description</th></tr></thead><tbody>");
    for f in &d.feature_services {
        let mut words: Vec<&str> = vec![f.name.as_str()];
        words.extend(f.features.iter().map(String::as_str));
        words.extend(f.tags.iter().flat_map(|(k, t)| [k.as_str(), t.as_str()]));
        words.extend(f.owner.as_deref());
        words.extend(f.description.as_deref());
        out.push_str(&format!(
            "<tr data-search=\"{}\"><td><a href=\"/services/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            search_text(words),
            seg(&f.name),
            esc(&f.name),
            esc(&f.features.join(", ")),
            esc(f.owner.as_deref().unwrap_or("")),
            tags(&f.tags),
            esc(f.description.as_deref().unwrap_or("")),
        ));
    }
    out.push_str("</tbody></table></div>");
    out
}

fn entities_table(d: &Definitions) -> String {
    let mut out =
        format!("<h2 id=\"entities\">Entities <span class=\"count\">{}</span></h2>", d.entities.len());
    out.push_str("<div class=\"scroll\"><table><thead><tr><th>Entity</th><th>Join keys</th><th>Description</th></tr></thead><tbody>");
    for e in &d.entities {
        let keys: Vec<String> = e.join_keys.iter().map(|k| format!("{} ({})", k.name, k.dtype)).collect();
        let mut words: Vec<&str> = vec![e.name.as_str()];
        words.extend(e.join_keys.iter().map(|k| k.name.as_str()));
        words.extend(e.description.as_deref());
        out.push_str(&format!(
            "<tr id=\"entity-{}\" data-search=\"{}\"><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&e.name),
            search_text(words),
            esc(&e.name),
            esc(&keys.join(", ")),
            esc(e.description.as_deref().unwrap_or("")),
        ));
    }
    out.push_str("</tbody></table></div>");
    out
}

fn sources_table(d: &Definitions) -> String {
    let mut out = format!("<h2 id=\"sources\">Sources <span class=\"count\">{}</span></h2>", d.sources.len());
    out.push_str("<div class=\"scroll\"><table><thead><tr><th>Source</th><th>Format</th><th>Path</th><th>Event time</th><th>Description</th></tr></thead><tbody>");
    for src in &d.sources {
        let format = src.format.extension().trim_start_matches('.');
        let words = [src.name.as_str(), src.path.as_str(), format, src.description.as_deref().unwrap_or("")];
        out.push_str(&format!(
            "<tr id=\"source-{}\" data-search=\"{}\"><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            esc(&src.name),
            search_text(words),
            esc(&src.name),
            esc(format),
            esc(&src.path),
            esc(&src.timestamp_field),
            esc(src.description.as_deref().unwrap_or("")),
        ));
    }
    out.push_str("</tbody></table></div>");
    out
}

/// `/views/NAME`.
pub async fn view(app: &App, name: &str) -> Result<String> {
    let s = app.project().require_current()?;
    let view = project::view(&s, name)?;
    let state = app.project().state().view(&view.name).await?;
    let mut body =
        format!("<h1>{}</h1><p>{}</p>", esc(&view.name), esc(view.description.as_deref().unwrap_or("")));
    body.push_str(&facts(&s, view, &state));
    if let Some(sql) = &view.transform {
        body.push_str(&format!("<h2>Transform</h2><pre><code>{}</code></pre>", esc(sql)));
    }
    body.push_str(&features(view, &state));
    body.push_str(&quality(app, view, &state));
    body.push_str(&runs(&state));
    Ok(page(&view.name, Nav::Catalog, &body))
}

fn facts(s: &Snapshot, view: &FeatureView, state: &ViewState) -> String {
    let now = Utc::now();
    let entities: Vec<String> = view
        .entities
        .iter()
        .map(|e| {
            let keys = s.definitions.entity(e).map_or_else(Vec::new, |e| {
                e.join_keys.iter().map(|k| format!("{} {}", k.name, k.dtype)).collect()
            });
            format!("<a href=\"/#entity-{}\">{}</a> ({})", seg(e), esc(e), esc(&keys.join(", ")))
        })
        .collect();
    let source = match s.definitions.source(&view.source) {
        Some(src) => format!(
            "<a href=\"/#source-{}\">{}</a>: <code>{}</code> ({}, event time <code>{}</code>)",
            seg(&src.name),
            esc(&src.name),
            esc(&src.path),
            esc(src.format.extension().trim_start_matches('.')),
            esc(&src.timestamp_field)
        ),
        None => esc(&view.source),
    };
    let freshness = match state.newest_event {
        Some(t) => format!("newest event {} ({})", esc(&time(t)), esc(&age(t, now))),
        None => "not materialized yet".into(),
    };
    let rows = [
        ("Entities", entities.join("; ")),
        ("Source", source),
        ("Online", if view.online { "yes".into() } else { "no (offline only)".into() }),
        (
            "TTL",
            if view.ttl.seconds() == 0 {
                "none (values never expire)".into()
            } else {
                esc(&view.ttl.to_string())
            },
        ),
        ("Owner", esc(view.owner.as_deref().unwrap_or("—"))),
        ("Tags", tags(&view.tags)),
        ("Freshness", freshness),
        ("Watermark", state.watermark.map_or("—".into(), |w| esc(&time(w)))),
        ("Registry version", s.version.to_string()),
    ];
    let mut out = String::from("<dl class=\"facts\">");
    for (k, v) in rows {
        out.push_str(&format!("<dt>{k}</dt><dd>{v}</dd>"));
    }
    out.push_str("</dl><p><a href=\"/lineage\">Lineage</a> · <a href=\"/runs\">All runs</a></p>");
    out
}

/// The features table, with the newest run's statistics beside each feature when kept.
fn features(view: &FeatureView, state: &ViewState) -> String {
    let stats_run = state.pick_run(None).ok();
    let rows: Vec<Vec<String>> = view
        .features
        .iter()
        .map(|f| {
            let st = stats_run.and_then(|r| r.statistics.get(&f.name));
            let opt = |x: Option<f64>| x.map_or(String::new(), num);
            vec![
                format!("<code>{}</code>", esc(&f.name)),
                esc(&f.dtype.to_string()),
                esc(f.description.as_deref().unwrap_or("")),
                st.map_or(String::new(), |s| s.count.to_string()),
                st.map_or(String::new(), |s| s.nulls.to_string()),
                st.and_then(|s| s.distinct).map_or(String::new(), |d| d.to_string()),
                opt(st.and_then(|s| s.min)),
                opt(st.and_then(|s| s.mean)),
                opt(st.and_then(|s| s.max)),
            ]
        })
        .collect();
    let mut out = format!("<h2>Features <span class=\"count\">{}</span></h2>", view.features.len());
    if let Some(run) = stats_run {
        out.push_str(&format!(
            "<p class=\"muted\">Statistics of run {} (window {} to {}).</p>",
            esc(&run.run_id),
            esc(&time(run.window_start)),
            esc(&time(run.window_end))
        ));
    }
    out.push_str(&table(
        &["Feature", "Type", "Description", "Rows", "Nulls", "Distinct", "Min", "Mean", "Max"],
        &rows,
    ));
    out
}

/// Histograms and quantiles, expectation results and drift scores.
fn quality(app: &App, view: &FeatureView, state: &ViewState) -> String {
    let mut out = String::new();
    if let Ok(run) = state.pick_run(None) {
        out.push_str("<h2>Distributions</h2><div class=\"histograms\">");
        for f in &view.features {
            let Some(st) = run.statistics.get(&f.name) else { continue };
            let chart = st.histogram.as_ref().and_then(|h| svg::histogram(h, &f.name)).unwrap_or_default();
            let quantiles: Vec<String> = st
                .quantiles
                .iter()
                .map(|(q, v)| {
                    format!("p{} {}", q.parse::<f64>().map_or(q.clone(), |q| num(q * 100.0)), num(*v))
                })
                .collect();
            out.push_str(&format!(
                "<figure>{chart}<figcaption><code>{}</code>{}</figcaption></figure>",
                esc(&f.name),
                if quantiles.is_empty() {
                    String::new()
                } else {
                    format!(" · {}", esc(&quantiles.join(", ")))
                }
            ));
        }
        out.push_str("</div>");
    }
    if !view.expectations.is_empty() {
        let last = state.runs.last();
        let rows: Vec<Vec<String>> = view
            .expectations
            .iter()
            .map(|e| {
                let text = e.to_string();
                let broken = last.and_then(|r| r.expectations.iter().find(|b| b.expectation == text));
                let result = match (last, broken) {
                    (None, _) => "<span class=\"muted\">not checked yet</span>".to_string(),
                    (Some(_), Some(b)) => {
                        format!("<span class=\"bad\">broken</span>: {}", esc(&b.to_string()))
                    }
                    (Some(_), None) => "<span class=\"ok\">held</span>".to_string(),
                };
                vec![esc(&text), result]
            })
            .collect();
        out.push_str(&format!(
            "<h2>Expectations</h2><p class=\"muted\">On failure: {}. Results of the latest run.</p>{}",
            if view.on_failure.is_fail() {
                "the window is not committed"
            } else {
                "committed, with a warning"
            },
            table(&["Expectation", "Latest run"], &rows)
        ));
    }
    out.push_str(&drift(app, view));
    out
}

fn drift(app: &App, view: &FeatureView) -> String {
    let Some(thresholds) = &view.drift else { return String::new() };
    let mut out = format!(
        "<h2>Drift</h2><p class=\"muted\">Thresholds: PSI {}, KS {}, JS {}.</p>",
        num(thresholds.psi.0),
        num(thresholds.ks.0),
        num(thresholds.js.0)
    );
    let round = app.latest_drift();
    let found =
        round.as_ref().and_then(|r| r.views.iter().find(|(v, _)| *v == view.name).map(|(_, o)| (r, o)));
    match found {
        None => out.push_str(
            "<p class=\"muted\">No declared drift check has run in this server (start it with <code>--check-drift-every</code>), \
             or the view has no successful run yet.</p>",
        ),
        Some((_, Err(e))) => out.push_str(&format!("<p class=\"error\">The latest check failed: {}</p>", esc(e))),
        Some((round, Ok(report))) => {
            out.push_str(&format!(
                "<p class=\"muted\">Checked {}: {} to {} against {} to {}.</p>",
                esc(&time(round.finished_at)),
                esc(&time(report.current.start)),
                esc(&time(report.current.end)),
                esc(&time(report.reference.start)),
                esc(&time(report.reference.end)),
            ));
            let rows: Vec<Vec<String>> = report
                .features
                .iter()
                .map(|(name, f)| {
                    vec![
                        format!("<code>{}</code>", esc(name)),
                        num(f.psi),
                        f.ks.map_or(String::new(), num),
                        f.js.map_or(String::new(), num),
                        if f.drifted { "<span class=\"bad\">drifted</span>".into() } else { "no".into() },
                    ]
                })
                .collect();
            out.push_str(&table(&["Feature", "PSI", "KS", "JS", "Drifted"], &rows));
        }
    }
    out
}

/// A run's status as the catalog shows it.
pub fn run_status(run: &RunRecord) -> String {
    match run.status {
        RunStatus::Succeeded if !run.expectations.is_empty() => {
            format!("<span class=\"ok\">succeeded</span>, {} expectations broken", run.expectations.len())
        }
        RunStatus::Succeeded => "<span class=\"ok\">succeeded</span>".into(),
        RunStatus::Failed => "<span class=\"bad\">failed</span>".into(),
    }
}

/// A run's cells: started, window, status, rows, duration, error.
pub fn run_cells(run: &RunRecord) -> Vec<String> {
    vec![
        esc(&time(run.started_at)),
        format!("{} to {}", esc(&time(run.window_start)), esc(&time(run.window_end))),
        run_status(run),
        run.rows.to_string(),
        run.online_rows.map_or("—".into(), |n| n.to_string()),
        elapsed(run.finished_at - run.started_at),
        esc(run.error.as_deref().unwrap_or("")),
    ]
}

/// The runs header matching [`run_cells`].
pub const RUN_HEADERS: [&str; 7] =
    ["Started", "Window", "Status", "Rows", "Online rows", "Duration", "Error"];

fn runs(state: &ViewState) -> String {
    let rows: Vec<Vec<String>> = state.runs.iter().rev().take(RUNS_SHOWN).map(run_cells).collect();
    if rows.is_empty() {
        return "<h2>Materialization runs</h2><p class=\"muted\">None yet.</p>".into();
    }
    format!("<h2>Materialization runs</h2>{}", table(&RUN_HEADERS, &rows))
}

/// `/services/NAME`.
pub fn service(app: &App, name: &str) -> Result<String> {
    let s = app.project().require_current()?;
    let d = &s.definitions;
    let Some(service) = d.feature_service(name) else {
        let known = d.feature_services.iter().map(|f| f.name.as_str());
        return Err(Error::NotFound(format!(
            "feature service '{name}' is not in registry version {}{}",
            s.version,
            quiver_core::definitions::suggest(name, known)
        )));
    };
    let resolved = d.resolve_service(&service.name)?;
    let rows: Vec<Vec<String>> = resolved
        .iter()
        .map(|r| {
            let field = d.feature_view(&r.view).and_then(|v| v.feature(&r.feature));
            vec![
                format!("<a href=\"/views/{}\">{}</a>", seg(&r.view), esc(&r.view)),
                format!("<code>{}</code>", esc(&r.feature)),
                field.map_or(String::new(), |f| esc(&f.dtype.to_string())),
                esc(field.and_then(|f| f.description.as_deref()).unwrap_or("")),
            ]
        })
        .collect();
    let body = format!(
        "<h1>{}</h1><p>{}</p><dl class=\"facts\"><dt>Owner</dt><dd>{}</dd><dt>Tags</dt><dd>{}</dd>\
         <dt>Declared</dt><dd>{}</dd><dt>Registry version</dt><dd>{}</dd></dl>\
         <h2>Features <span class=\"count\">{}</span></h2>{}",
        esc(&service.name),
        esc(service.description.as_deref().unwrap_or("")),
        esc(service.owner.as_deref().unwrap_or("—")),
        tags(&service.tags),
        esc(&service.features.join(", ")),
        s.version,
        resolved.len(),
        table(&["View", "Feature", "Type", "Description"], &rows),
    );
    Ok(page(&service.name, Nav::Catalog, &body))
}
