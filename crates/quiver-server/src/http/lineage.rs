//! `/lineage`: the registry version served drawn as a graph, sources → feature views →
//! feature services, as one SVG of three columns. Every node is a link (a source to its row
//! in the catalog, a view or service to its page); an edge joins a view to its source and a
//! service to each view it takes features from.

use std::collections::BTreeSet;

use quiver_core::definitions::Definitions;

use super::html::{Nav, esc, page as frame, seg};
use crate::app::App;
use crate::domain::Result;

const COLUMN: f64 = 300.0;
const NODE_W: f64 = 220.0;
const NODE_H: f64 = 30.0;
const ROW: f64 = 44.0;
const TOP: f64 = 34.0;

/// A node: its label and link.
struct Node {
    name: String,
    href: String,
}

/// `/lineage`.
pub fn page_of(defs: &Definitions) -> String {
    let sources: Vec<Node> = defs
        .sources
        .iter()
        .map(|s| Node { name: s.name.clone(), href: format!("/#source-{}", seg(&s.name)) })
        .collect();
    let views: Vec<Node> = defs
        .feature_views
        .iter()
        .map(|v| Node { name: v.name.clone(), href: format!("/views/{}", seg(&v.name)) })
        .collect();
    let services: Vec<Node> = defs
        .feature_services
        .iter()
        .map(|s| Node { name: s.name.clone(), href: format!("/services/{}", seg(&s.name)) })
        .collect();
    let rows = sources.len().max(views.len()).max(services.len()).max(1);
    let height = TOP + rows as f64 * ROW;
    let width = 2.0 * COLUMN + NODE_W + 2.0;
    let y = |i: usize| TOP + i as f64 * ROW;
    let at = |nodes: &[Node], name: &str| nodes.iter().position(|n| n.name == name);
    let mut edges = Vec::new();
    for (vi, v) in defs.feature_views.iter().enumerate() {
        if let Some(si) = at(&sources, &v.source) {
            edges.push((0.0, y(si), COLUMN, y(vi)));
        }
    }
    for (fi, f) in defs.feature_services.iter().enumerate() {
        let used: BTreeSet<String> =
            defs.resolve_service(&f.name).unwrap_or_default().into_iter().map(|r| r.view).collect();
        for view in used {
            if let Some(vi) = at(&views, &view) {
                edges.push((COLUMN, y(vi), 2.0 * COLUMN, y(fi)));
            }
        }
    }
    let mut svg = format!(
        "<svg viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"img\" \
         aria-label=\"Lineage: sources, feature views and feature services\">\
         <text x=\"1\" y=\"16\">Sources</text><text x=\"{COLUMN}\" y=\"16\">Feature views</text>\
         <text x=\"{}\" y=\"16\">Feature services</text>",
        2.0 * COLUMN
    );
    for (x1, y1, x2, y2) in edges {
        let (sx, sy, ex, ey) = (x1 + NODE_W + 1.0, y1 + NODE_H / 2.0, x2 + 1.0, y2 + NODE_H / 2.0);
        let mid = (sx + ex) / 2.0;
        svg.push_str(&format!(
            "<path class=\"edge\" d=\"M{sx:.1},{sy:.1} C{mid:.1},{sy:.1} {mid:.1},{ey:.1} {ex:.1},{ey:.1}\"/>"
        ));
    }
    for (column, nodes) in [sources, views, services].iter().enumerate() {
        for (i, n) in nodes.iter().enumerate() {
            let x = column as f64 * COLUMN + 1.0;
            let label: String = if n.name.chars().count() > 30 {
                n.name.chars().take(29).chain(std::iter::once('…')).collect()
            } else {
                n.name.clone()
            };
            svg.push_str(&format!(
                "<a class=\"node\" href=\"{}\"><title>{}</title><rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{NODE_W}\" height=\"{NODE_H}\" rx=\"4\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\">{}</text></a>",
                esc(&n.href),
                esc(&n.name),
                y(i),
                x + 8.0,
                y(i) + 19.0,
                esc(&label)
            ));
        }
    }
    svg.push_str("</svg>");
    let body = format!(
        "<h1>Lineage</h1><p class=\"muted\">Where each feature view reads from, and which views each feature service \
         takes features from. Every box is a link.</p><div class=\"scroll\">{svg}</div>"
    );
    frame("Lineage", Nav::Lineage, &body)
}

/// `/lineage` for the registry version served.
pub fn page(app: &App) -> Result<String> {
    match app.project().current() {
        Some(s) => Ok(page_of(&s.definitions)),
        None => Ok(frame("Lineage", Nav::Lineage, "<h1>Lineage</h1><p>Nothing is applied yet.</p>")),
    }
}
