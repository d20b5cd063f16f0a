//! Human durations for `ttl` ("2h", "90m", "1d12h", "0").
//!
//! A ttl is stored as whole seconds and printed in the shortest exact form, so the registry,
//! `plan` diffs and `describe` all show the same spelling whatever the user wrote.

use std::fmt;
use std::str::FromStr;

/// The longest duration accepted: nanoseconds of it still fit an `i64`.
pub const MAX_SECONDS: u64 = (i64::MAX / 1_000_000_000) as u64;

/// A feature view's time to live. Zero means values never expire (no lower bound in
/// point-in-time reads, no max age online).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ttl {
    seconds: u64,
}

impl Ttl {
    pub const NEVER_EXPIRES: Ttl = Ttl { seconds: 0 };

    pub fn from_seconds(seconds: u64) -> Self {
        Ttl { seconds }
    }

    pub fn seconds(&self) -> u64 {
        self.seconds
    }

    /// True when values never expire.
    pub fn is_unbounded(&self) -> bool {
        self.seconds == 0
    }
}

/// Why a duration string was rejected; the message names the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationParseError(pub String);

impl fmt::Display for DurationParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Ttl {
    type Err = DurationParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        let bad = |why: &str| DurationParseError(format!("cannot read '{text}' as a duration: {why}"));
        if text.is_empty() {
            return Err(bad("it is empty"));
        }
        if text.chars().any(char::is_whitespace) {
            return Err(bad("write it without spaces, e.g. 2h or 1h30m"));
        }
        if text == "0" {
            return Ok(Ttl::NEVER_EXPIRES);
        }
        let mut total: u64 = 0;
        let mut digits = String::new();
        let mut parts = 0;
        for c in text.chars() {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            let unit: u64 = match c {
                's' => 1,
                'm' => 60,
                'h' => 3_600,
                'd' => 86_400,
                other => return Err(bad(&format!("unknown unit '{other}'"))),
            };
            if digits.is_empty() {
                return Err(bad(&format!("unit '{c}' has no number before it")));
            }
            let n: u64 = digits.parse().map_err(|_| bad("number too large"))?;
            total = n
                .checked_mul(unit)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(|| bad("duration too large"))?;
            digits.clear();
            parts += 1;
        }
        if !digits.is_empty() {
            return Err(bad("a number needs a unit (s, m, h or d)"));
        }
        if parts == 0 {
            return Err(bad("no duration found"));
        }
        if total > MAX_SECONDS {
            // Point-in-time joins compute with nanoseconds: a longer ttl would overflow there.
            return Err(bad("longer than 106 751 days (about 292 years), the longest Quiver computes with"));
        }
        Ok(Ttl { seconds: total })
    }
}

impl fmt::Display for Ttl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.seconds;
        if s == 0 {
            f.write_str("0")
        } else if s.is_multiple_of(86_400) {
            write!(f, "{}d", s / 86_400)
        } else if s.is_multiple_of(3_600) {
            write!(f, "{}h", s / 3_600)
        } else if s.is_multiple_of(60) {
            write!(f, "{}m", s / 60)
        } else {
            write!(f, "{s}s")
        }
    }
}

serde_as_text!(Ttl);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_compounds() {
        let cases = [
            ("0", 0),
            ("30s", 30),
            ("90m", 5_400),
            ("2h", 7_200),
            ("2d", 172_800),
            ("1h30m", 5_400),
            ("1d12h", 129_600),
        ];
        for (text, secs) in cases {
            assert_eq!(text.parse::<Ttl>().unwrap().seconds(), secs, "{text}");
        }
    }

    #[test]
    fn prints_the_shortest_exact_form() {
        assert_eq!(Ttl::from_seconds(5_400).to_string(), "90m");
        assert_eq!(Ttl::from_seconds(172_800).to_string(), "2d");
        assert_eq!(Ttl::from_seconds(61).to_string(), "61s");
        assert_eq!(Ttl::from_seconds(0).to_string(), "0");
    }

    #[test]
    fn rejects_garbage_with_a_reason() {
        for (text, why) in [
            ("2x", "unknown unit 'x'"),
            ("15", "needs a unit"),
            ("h", "no number"),
            ("", "empty"),
            ("-1h", "unknown unit '-'"),
            ("2 hours", "without spaces"),
            ("99999999999999999999d", "too large"),
            ("106752d", "longest Quiver computes with"),
        ] {
            let err = text.parse::<Ttl>().unwrap_err().0;
            assert!(err.contains(why), "{text}: {err}");
        }
    }
}
