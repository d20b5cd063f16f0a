//! `/history` (registry versions, each with the field-by-field diff `quiver plan` shows
//! against the version before it), `/history/N` (one version's definitions) and `/runs`
//! (materialization runs of every view and the jobs of every server, newest first).
//! Diffs come from [`quiver_core::diff`], runs from the materialization state and jobs
//! from [`crate::domain::jobs::Jobs::list`]: the same sources the CLI and gRPC read.

use quiver_core::definitions::Definitions;
use quiver_core::diff::{Action, ObjectChange, diff};
use quiver_core::registry::Snapshot;

use super::catalog::{RUN_HEADERS, run_cells};
use super::html::{Nav, esc, page, seg, table, time};
use crate::app::App;
use crate::domain::Result;

/// Versions the history page shows (the newest ones).
const VERSIONS_SHOWN: usize = 50;
/// Runs the runs page shows.
const RUNS_SHOWN: usize = 200;
/// Jobs the runs page shows.
const JOBS_SHOWN: usize = 100;

/// The changes from `before` to `after`, as `quiver plan` lists them.
fn changes_html(changes: &[ObjectChange]) -> String {
    if changes.is_empty() {
        return "<p class=\"muted\">No changes.</p>".into();
    }
    let mut out = String::from("<div class=\"diff\">");
    for c in changes {
        let (sign, class) = match c.action {
            Action::Added => ("+", "ok"),
            Action::Changed => ("~", ""),
            Action::Removed => ("-", "bad"),
        };
        out.push_str(&format!(
            "<div><span class=\"{class}\">{sign}</span> {} <strong>{}</strong></div>",
            esc(&c.kind.to_string()),
            esc(&c.name)
        ));
        for f in &c.fields {
            out.push_str(&format!("<div class=\"field\">{}</div>", esc(&f.to_string())));
        }
    }
    out.push_str("</div>");
    out
}

fn heading(s: &Snapshot) -> String {
    format!(
        "<h2 id=\"v{v}\">Version {v}</h2><p class=\"muted\">Applied {} by {} · hash <code>{}</code> · \
         <a href=\"/history/{v}\">definitions</a></p>",
        esc(&time(s.applied_at)),
        esc(&s.applied_by),
        esc(&s.definitions_hash[..s.definitions_hash.len().min(12)]),
        v = s.version
    )
}

/// `/history`.
pub async fn versions(app: &App) -> Result<String> {
    let registry = app.project().registry();
    let all = registry.versions().await?;
    if all.is_empty() {
        return Ok(page("History", Nav::History, "<h1>History</h1><p>Nothing is applied yet.</p>"));
    }
    let first_shown = all.len().saturating_sub(VERSIONS_SHOWN);
    // One version before the first shown, to diff it against.
    let mut snapshots = Vec::new();
    for v in &all[first_shown.saturating_sub(1)..] {
        snapshots.push(registry.get(*v).await?);
    }
    let empty = Definitions::default();
    let mut sections = Vec::new();
    for (i, s) in snapshots.iter().enumerate() {
        if i == 0 && first_shown > 0 {
            continue;
        }
        let before = if i == 0 { &empty } else { &snapshots[i - 1].definitions };
        sections.push(format!("{}{}", heading(s), changes_html(&diff(before, &s.definitions))));
    }
    sections.reverse();
    let note = if first_shown > 0 {
        format!("<p class=\"muted\">The newest {VERSIONS_SHOWN} of {} versions.</p>", all.len())
    } else {
        String::new()
    };
    let body = format!(
        "<h1>History</h1><p class=\"muted\">Every registry version, newest first, with what it changed against the \
         version before it (as <code>quiver plan</code> shows it).</p>{note}{}",
        sections.concat()
    );
    Ok(page("History", Nav::History, &body))
}

/// `/history/N`: one version, its changes and its definitions.
pub async fn version(app: &App, version: u64) -> Result<String> {
    let registry = app.project().registry();
    let s = registry.get(version).await?;
    let before = if version > 1 { registry.get(version - 1).await.ok() } else { None };
    let empty = Definitions::default();
    let changes = diff(before.as_ref().map_or(&empty, |b| &b.definitions), &s.definitions);
    let definitions = serde_json::to_string_pretty(&s.definitions).unwrap_or_default();
    let body = format!(
        "<h1>Registry version {}</h1>{}<h2>Changes</h2>{}<h2>Definitions</h2><pre><code>{}</code></pre>\
         <p><a href=\"/history\">All versions</a></p>",
        s.version,
        heading(&s),
        changes_html(&changes),
        esc(&definitions)
    );
    Ok(page(&format!("Version {}", s.version), Nav::History, &body))
}

/// `/runs`.
pub async fn runs(app: &App) -> Result<String> {
    let project = app.project();
    let mut runs = Vec::new();
    if let Some(s) = project.current() {
        for v in &s.definitions.feature_views {
            let state = project.state().view(&v.name).await?;
            runs.extend(state.runs.into_iter().map(|r| (v.name.clone(), r)));
        }
    }
    runs.sort_by_key(|(_, run)| std::cmp::Reverse(run.started_at));
    let run_rows: Vec<Vec<String>> = runs
        .iter()
        .take(RUNS_SHOWN)
        .map(|(view, run)| {
            let mut cells = vec![format!("<a href=\"/views/{}\">{}</a>", seg(view), esc(view))];
            cells.extend(run_cells(run));
            cells
        })
        .collect();
    let mut headers = vec!["View"];
    headers.extend(RUN_HEADERS);
    let jobs = project.jobs().list().await?;
    let job_rows: Vec<Vec<String>> = jobs
        .iter()
        .take(JOBS_SHOWN)
        .map(|j| {
            let views: Vec<String> = j
                .views
                .iter()
                .map(|v| {
                    let state = serde_json::to_value(v.state).ok();
                    let state = state.as_ref().and_then(|s| s.as_str()).unwrap_or("");
                    format!("{} {} ({} rows)", v.view, state, v.rows_done)
                })
                .collect();
            let state = serde_json::to_value(j.state).ok();
            vec![
                format!("<code>{}</code>", esc(&j.id)),
                esc(state.as_ref().and_then(|s| s.as_str()).unwrap_or("")),
                esc(&time(j.created_at)),
                j.finished_at.map_or("—".into(), |t| esc(&time(t))),
                esc(&views.join("; ")),
                esc(&j.server),
                esc(j.error.as_deref().unwrap_or("")),
            ]
        })
        .collect();
    let runs_html = if run_rows.is_empty() {
        "<p class=\"muted\">No materialization runs yet.</p>".to_string()
    } else {
        table(&headers, &run_rows)
    };
    let jobs_html = if job_rows.is_empty() {
        "<p class=\"muted\">No jobs yet.</p>".to_string()
    } else {
        table(&["Job", "State", "Created", "Finished", "Views", "Server", "Error"], &job_rows)
    };
    let body = format!(
        "<h1>Runs</h1><h2>Materialization runs</h2><p class=\"muted\">Every view's recent runs (by the CLI or any \
         server), newest first.</p>{runs_html}<h2>Jobs</h2><p class=\"muted\">Materialization jobs started through the \
         API, newest first.</p>{jobs_html}"
    );
    Ok(page("Runs", Nav::Runs, &body))
}
