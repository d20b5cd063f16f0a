//! Inline SVG charts of a feature's statistics: a bar per histogram bin for numbers, a bar
//! per frequent value for strings and booleans. Colours come from the stylesheet's classes
//! (no inline style, so the content policy needs nothing for them); text is escaped.

use quiver_core::state::Histogram;

use super::html::{esc, num};

const WIDTH: f64 = 320.0;
const HEIGHT: f64 = 120.0;
/// Room below the bars for the axis labels.
const AXIS: f64 = 18.0;

/// The chart of a histogram, or `None` when it has nothing to draw.
pub fn histogram(h: &Histogram, label: &str) -> Option<String> {
    match h {
        Histogram::Bins { edges, counts } => bins(edges, counts, label),
        Histogram::Top { values, other } => top(values, *other, label),
    }
}

fn bins(edges: &[f64], counts: &[u64], label: &str) -> Option<String> {
    let most = *counts.iter().max()?;
    if most == 0 || edges.len() != counts.len() + 1 {
        return None;
    }
    let step = WIDTH / counts.len() as f64;
    let mut out = format!(
        "<svg viewBox=\"0 0 {WIDTH} {}\" width=\"{WIDTH}\" height=\"{}\" role=\"img\" aria-label=\"{}\">",
        HEIGHT + AXIS,
        HEIGHT + AXIS,
        esc(label)
    );
    for (i, count) in counts.iter().enumerate() {
        let h = HEIGHT * *count as f64 / most as f64;
        out.push_str(&format!(
            "<rect class=\"bar\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\"><title>{} to {}: {count}</title></rect>",
            i as f64 * step + 0.5,
            HEIGHT - h,
            (step - 1.0).max(0.5),
            esc(&num(edges[i])),
            esc(&num(edges[i + 1])),
        ));
    }
    let (first, last) = (edges[0], edges[edges.len() - 1]);
    out.push_str(&format!(
        "<text x=\"0\" y=\"{y}\">{}</text><text x=\"{WIDTH}\" y=\"{y}\" text-anchor=\"end\">{}</text></svg>",
        esc(&num(first)),
        esc(&num(last)),
        y = HEIGHT + AXIS - 4.0,
    ));
    Some(out)
}

fn top(values: &[(String, u64)], other: u64, label: &str) -> Option<String> {
    let mut rows: Vec<(String, u64)> = values.iter().take(10).cloned().collect();
    if other > 0 {
        rows.push(("(other)".into(), other));
    }
    let most = rows.iter().map(|r| r.1).max()?;
    if most == 0 {
        return None;
    }
    let line = 18.0;
    let height = line * rows.len() as f64;
    let bar_start = 110.0;
    let mut out = format!(
        "<svg viewBox=\"0 0 {WIDTH} {height}\" width=\"{WIDTH}\" height=\"{height}\" role=\"img\" aria-label=\"{}\">",
        esc(label)
    );
    for (i, (value, count)) in rows.iter().enumerate() {
        let y = i as f64 * line;
        let shown: String = value.chars().take(16).collect();
        let w = (WIDTH - bar_start - 50.0) * *count as f64 / most as f64;
        out.push_str(&format!(
            "<text x=\"0\" y=\"{:.1}\">{}</text><rect class=\"bar\" x=\"{bar_start}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{:.1}\"><title>{}: {count}</title></rect><text x=\"{:.1}\" y=\"{:.1}\">{count}</text>",
            y + 13.0,
            esc(&shown),
            y + 3.0,
            line - 6.0,
            esc(value),
            bar_start + w + 4.0,
            y + 13.0,
        ));
    }
    out.push_str("</svg>");
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_and_top_values_draw_bars_with_escaped_text() {
        let h = Histogram::Bins { edges: vec![0.0, 0.5, 1.0], counts: vec![3, 1] };
        let svg = histogram(&h, "conv_rate").unwrap();
        assert_eq!(svg.matches("<rect").count(), 2);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        let t = Histogram::Top { values: vec![("<b>".into(), 4)], other: 2 };
        let svg = histogram(&t, "city").unwrap();
        assert!(svg.contains("&lt;b&gt;") && !svg.contains("<b>"));
        assert!(svg.contains("(other)"));
        assert!(histogram(&Histogram::Bins { edges: vec![], counts: vec![] }, "x").is_none());
    }
}
