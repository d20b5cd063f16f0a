//! Printing results: aligned text tables for people, JSON for machines.

use serde::Serialize;

/// Where a command's result goes.
pub struct Output {
    pub json: bool,
    /// Print nothing (a command run as a step of another, e.g. by quickstart with --json).
    pub quiet: bool,
}

impl Output {
    pub fn new(json: bool) -> Self {
        Output { json, quiet: false }
    }

    /// Prints `value` as pretty JSON (only in JSON mode).
    pub fn json<T: Serialize>(&self, value: &T) {
        if self.quiet {
            return;
        }
        match serde_json::to_string_pretty(value) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("error: cannot encode the result as JSON: {e}"),
        }
    }

    /// Prints a line of text (only in text mode).
    pub fn line(&self, text: impl AsRef<str>) {
        if !self.json && !self.quiet {
            println!("{}", text.as_ref());
        }
    }
}

/// Renders rows under a header with columns padded to the widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let render = |cells: Vec<&str>| -> String {
        let mut line = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        line.trim_end().to_string()
    };
    let mut out = render(header.to_vec());
    for row in rows {
        out.push('\n');
        out.push_str(&render(row.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_aligned() {
        let t = table(
            &["NAME", "TTL"],
            &[vec!["driver_stats".into(), "2h".into()], vec!["x".into(), "0".into()]],
        );
        assert_eq!(t, "NAME          TTL\ndriver_stats  2h\nx             0");
    }
}
