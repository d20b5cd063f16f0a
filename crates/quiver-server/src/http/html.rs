//! The catalog's HTML: escaping, the page frame (navigation, stylesheet, script), and the
//! small pieces every page uses. Every value that comes from definitions, state or a
//! request goes through [`esc`]; markup is only ever this module's own text.

use chrono::{DateTime, Utc};
use http::StatusCode;

/// `text` safe inside HTML text and inside a double- or single-quoted attribute.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A path segment for an href: names in definitions are letters, digits and `_`, but
/// anything else is percent-encoded rather than trusted.
pub fn seg(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Which part of the catalog a page belongs to (highlighted in the navigation).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Catalog,
    Lineage,
    History,
    Runs,
    None,
}

/// A whole page: title, navigation, and `body` (already markup).
pub fn page(title: &str, nav: Nav, body: &str) -> String {
    let link = |href: &str, text: &str, this: Nav| {
        let current = if nav == this { " aria-current=\"page\"" } else { "" };
        format!("<a href=\"{href}\"{current}>{text}</a>")
    };
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · Quiver</title>\
         <link rel=\"icon\" href=\"/static/favicon.svg\" type=\"image/svg+xml\">\
         <link rel=\"stylesheet\" href=\"/static/catalog.css\">\
         <script src=\"/static/catalog.js\" defer></script></head>\n\
         <body><header><nav><span class=\"brand\">Quiver</span>{}{}{}{}</nav></header>\n<main>\n{body}\n</main></body></html>\n",
        link("/", "Catalog", Nav::Catalog),
        link("/lineage", "Lineage", Nav::Lineage),
        link("/history", "History", Nav::History),
        link("/runs", "Runs", Nav::Runs),
        title = esc(title),
    )
}

/// The page a failure shows.
pub fn error_page(status: StatusCode, message: &str) -> String {
    let title = status.canonical_reason().unwrap_or("Error");
    page(title, Nav::None, &format!("<h1>{}</h1><p class=\"error\">{}</p>", esc(title), esc(message)))
}

/// A time as the catalog shows it: UTC, to the second.
pub fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%SZ").to_string()
}

/// How long ago `t` was, roughly ("3 h 12 min ago", "in 5 min" for the future).
pub fn age(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (now - t).num_seconds();
    let text = span(seconds.unsigned_abs());
    if seconds < 0 { format!("in {text}") } else { format!("{text} ago") }
}

/// A duration in seconds, in its two largest units.
pub fn span(seconds: u64) -> String {
    let (d, h, m, s) = (seconds / 86_400, seconds % 86_400 / 3_600, seconds % 3_600 / 60, seconds % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, _) => format!("{m} min {s} s"),
        (0, _, _) => format!("{h} h {m} min"),
        _ => format!("{d} d {h} h"),
    }
}

/// How long a run took: milliseconds under a second, tenths of a second under a minute
/// (materialization windows often take less than a second), else as [`span`].
pub fn elapsed(took: chrono::TimeDelta) -> String {
    let ms = took.num_milliseconds().max(0).unsigned_abs();
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => span(ms / 1000),
    }
}

/// Tags as small labels.
pub fn tags<'a>(tags: impl IntoIterator<Item = (&'a String, &'a String)>) -> String {
    tags.into_iter().map(|(k, v)| format!("<span class=\"tag\">{}={}</span>", esc(k), esc(v))).collect()
}

/// A table: header cells (text) and rows of cells (markup).
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::from("<div class=\"scroll\"><table><thead><tr>");
    for h in headers {
        out.push_str(&format!("<th>{}</th>", esc(h)));
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            out.push_str(&format!("<td>{cell}</td>"));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>");
    out
}

/// A number for people: integers as is, others to four significant places.
pub fn num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else if x != 0.0 && (x.abs() >= 1e6 || x.abs() < 1e-3) {
        format!("{x:.3e}")
    } else {
        let digits = (3 - x.abs().log10().floor() as i32).clamp(0, 6) as usize;
        format!("{x:.digits$}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_values_is_escaped_and_names_in_paths_are_encoded() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(seg("driver_stats"), "driver_stats");
        assert_eq!(seg("a/b c\"d"), "a%2Fb%20c%22d");
        let p = page("<b>", Nav::Catalog, "");
        assert!(p.contains("<title>&lt;b&gt; · Quiver</title>"));
        assert!(error_page(StatusCode::NOT_FOUND, "view '<x>'").contains("view &#39;&lt;x&gt;&#39;"));
    }

    #[test]
    fn times_spans_and_numbers_read_well() {
        assert_eq!(span(42), "42 s");
        assert_eq!(span(3 * 3600 + 12 * 60), "3 h 12 min");
        assert_eq!(span(2 * 86_400 + 3600), "2 d 1 h");
        assert_eq!(elapsed(chrono::TimeDelta::milliseconds(312)), "312 ms");
        assert_eq!(elapsed(chrono::TimeDelta::milliseconds(4_260)), "4.3 s");
        assert_eq!(elapsed(chrono::TimeDelta::milliseconds(61_900)), "1 min 1 s");
        assert_eq!(elapsed(chrono::TimeDelta::milliseconds(-5)), "0 ms");
        let t = DateTime::<Utc>::from_timestamp(1_000_000, 0).unwrap();
        assert_eq!(age(t, t + chrono::Duration::seconds(90)), "1 min 30 s ago");
        assert_eq!(age(t + chrono::Duration::seconds(60), t), "in 1 min 0 s");
        assert_eq!(num(3.0), "3");
        assert_eq!(num(0.123456), "0.1235");
        assert_eq!(num(12.5), "12.50");
    }
}
