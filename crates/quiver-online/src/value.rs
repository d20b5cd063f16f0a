//! Feature values and their compact binary encoding in the online store.
//!
//! One stored row (a view's latest values for one entity) is:
//!
//! ```text
//! byte 0        format version (2)
//! bytes 1..5    view fingerprint (u32 LE): hash of the view's feature names and dtypes
//! bytes 5..13   event time, ns since the epoch, big-endian with the sign bit flipped
//! bytes 13..21  created time, same encoding; i64::MIN when absent
//! bytes 21..25  length n of the tie key (u32 BE)
//! bytes 25..25+n  the tie key: the row's non-list feature values, order-preserving
//! then 2 bytes  number of values (u16 LE)
//! then per value: a tag byte and its payload (little-endian numbers, u32-length-prefixed
//! strings and bytes, lists as an element count followed by tagged elements)
//! ```
//!
//! The order bytes (event, created, then the tie key) compare, byte by byte, exactly as the
//! offline latest-row order compares the same row ([`crate::rows`] and the offline
//! `layout`): event time, created time (absent first), then each non-list feature
//! ascending with nulls first. So when two rows of one entity carry the same event and
//! created time (a pushed row and a materialized one, say), the online store keeps the one
//! a training set picks. The Redis newer-wins script and the embedded store compare rows
//! without decoding them. The fingerprint makes values written under an older definition
//! of the view read as absent instead of being misread. Rows of format 1 (no tie key)
//! still read, and compare as having an empty tie key.

use serde_json::Value as Json;

use crate::error::{Error, Result};

/// Current layout version.
pub const FORMAT_VERSION: u8 = 2;
/// Offset and length of the (event, created) ordering bytes.
pub const ORDER_BYTES: std::ops::Range<usize> = 5..21;
/// The header of format 1: version, fingerprint, order bytes, value count.
const HEADER_V1: usize = 23;
/// The fixed part of format 2's header: version, fingerprint, order bytes, tie key length.
const HEADER_V2: usize = 25;

/// A feature value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int32(i32),
    Int64(i64),
    Float32(f32),
    Float64(f64),
    String(String),
    Bytes(Vec<u8>),
    /// Nanoseconds since the epoch, UTC.
    Timestamp(i64),
    List(Vec<Value>),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// JSON for people and machines, as [`Value`]'s `Serialize` writes it.
    pub fn to_json(&self) -> Json {
        serde_json::to_value(self).unwrap_or(Json::Null)
    }
}

/// JSON for people and machines: numbers as numbers (float32 by its shortest decimal form,
/// non-finite floats as null), timestamps as RFC 3339, bytes as base-16. Written straight
/// to the output: `serde_json::to_vec` of an answer builds no intermediate tree.
impl serde::Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int32(v) => s.serialize_i32(*v),
            Value::Int64(v) => s.serialize_i64(*v),
            Value::Float32(v) => match shortest_f64(*v) {
                Some(x) => s.serialize_f64(x),
                None => s.serialize_unit(),
            },
            Value::Float64(v) if v.is_finite() => s.serialize_f64(*v),
            Value::Float64(_) => s.serialize_unit(),
            Value::String(text) => s.serialize_str(text),
            Value::Bytes(b) => s.collect_str(&Hex(b)),
            Value::Timestamp(ns) => s.serialize_str(&Rfc3339::new(*ns)),
            Value::List(items) => s.collect_seq(items),
        }
    }
}

/// The float32 as the float64 its shortest decimal form reads as (0.5329f32 is 0.5329, not
/// 0.5329000020027161), or `None` when it is not finite.
fn shortest_f64(v: f32) -> Option<f64> {
    if !v.is_finite() {
        return None;
    }
    if may_tie(v) {
        // The definition: Rust's `{:e}`, which breaks a tie between two shortest forms
        // upward in magnitude (3460691.25 is 3460691.3).
        let mut text = StackText::<32>::default();
        // At most about 15 characters: the buffer never fills.
        std::fmt::Write::write_fmt(&mut text, format_args!("{v:e}")).ok()?;
        return text.as_str().parse::<f64>().ok();
    }
    // zmij writes the same shortest digits several times faster (a large online answer is
    // mostly float values); only its tie-break (to even) differs, and there is no tie here.
    zmij::Buffer::new().format_finite(v).parse::<f64>().ok()
}

/// Appends `value`'s JSON to `out`: the same bytes as `serde_json::to_writer(out, value)`.
/// A float32 (most of a large online answer) is written from its shortest digits directly
/// when they read the same as float64 text, skipping the parse to float64 and the second
/// formatting that [`Value`]'s `Serialize` does.
pub fn write_json_value(value: &Value, out: &mut Vec<u8>) -> serde_json::Result<()> {
    if let Value::Float32(v) = value
        && v.is_finite()
        && !may_tie(*v)
    {
        let mut buffer = zmij::Buffer::new();
        let text = buffer.format_finite(*v);
        if same_as_float64_text(text) {
            out.extend_from_slice(text.as_bytes());
            return Ok(());
        }
    }
    serde_json::to_writer(out, value)
}

/// Whether a float32's shortest text (zmij's) is also the text of the float64 it reads as.
/// The digits are the same (at most 9 significant digits, which float64 keeps), so only
/// the notation can differ: zmij writes a float32 in fixed notation for decimal exponents
/// -6..=12 and a float64 for -5..=15. Fixed text without four zeros after the point has an
/// exponent of -4 or more, inside both ranges; anything else takes the float64 path.
fn same_as_float64_text(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.contains(['e', 'E']) && !digits.starts_with("0.0000")
}

/// Whether `v` (finite) could lie exactly halfway between two shortest decimal forms. A
/// float32's shortest form has at most 9 significant digits, and a tie needs the exact
/// value to have one digit more, ending in 5: so only a value whose exact decimal
/// expansion has at most 10 significant digits can tie. Whole numbers below 2^24 never
/// do (the shortest form of each is its exact value); larger ones are not examined.
fn may_tie(v: f32) -> bool {
    let bits = v.to_bits() & 0x7fff_ffff;
    if bits == 0 {
        return false;
    }
    let (mut m, mut e) = if bits >> 23 == 0 {
        (bits, -149i32)
    } else {
        ((bits & 0x7f_ffff) | 0x80_0000, (bits >> 23) as i32 - 150)
    };
    let zeros = m.trailing_zeros();
    m >>= zeros;
    e += zeros as i32;
    if e >= 0 {
        // v = m * 2^e, a whole number.
        return e + (32 - m.leading_zeros() as i32) > 24;
    }
    // v = m / 2^-e = m * 5^-e / 10^-e, and m is odd: its significant digits are those of
    // m * 5^-e, at least 11 of them once -e > 14 (5^15 has 11 digits).
    if -e > 14 {
        return false;
    }
    u64::from(m) * 5u64.pow(e.unsigned_abs()) < 10_000_000_000
}

/// Bytes as lower-case base-16, formatted without a buffer of their own.
struct Hex<'a>(&'a [u8]);

impl std::fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|x| write!(f, "{x:02x}"))
    }
}

/// A short text on the stack: what `shortest_f64` and `Rfc3339` format into.
struct StackText<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> Default for StackText<N> {
    fn default() -> Self {
        StackText { bytes: [0; N], len: 0 }
    }
}

impl<const N: usize> StackText<N> {
    fn as_str(&self) -> &str {
        // Only whole `str`s are ever written in.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }

    fn push(&mut self, byte: u8) {
        if self.len < N {
            self.bytes[self.len] = byte;
            self.len += 1;
        }
    }

    /// `value` as exactly `width` decimal digits (`value` < 10^width).
    fn digits(&mut self, value: u32, width: u32) {
        for i in (0..width).rev() {
            self.push(b'0' + (value / 10u32.pow(i) % 10) as u8);
        }
    }
}

impl<const N: usize> std::fmt::Write for StackText<N> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len.checked_add(s.len()).filter(|&e| e <= N).ok_or(std::fmt::Error)?;
        self.bytes[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// A time as RFC 3339 with `Z`: whole seconds when whole, else 3, 6 or 9 fraction digits,
/// the fewest that hold it (what chrono's `SecondsFormat::AutoSi` prints; the tests compare
/// the two). Every `i64` of nanoseconds is within the years 1677-2262, so the year always
/// has four digits.
pub struct Rfc3339(StackText<32>);

impl Rfc3339 {
    pub fn new(ns: i64) -> Rfc3339 {
        let seconds = ns.div_euclid(1_000_000_000);
        let nanos = ns.rem_euclid(1_000_000_000) as u32;
        let days = seconds.div_euclid(86_400);
        let of_day = seconds.rem_euclid(86_400) as u32;
        // Days since 1970-01-01 to a civil date (proleptic Gregorian), by eras of 400 years.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let day_of_era = z.rem_euclid(146_097);
        let year_of_era =
            (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let mp = (5 * day_of_year + 2) / 153;
        let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = (year_of_era + era * 400 + i64::from(month <= 2)) as u32;
        let mut t = StackText::default();
        t.digits(year, 4);
        t.push(b'-');
        t.digits(month, 2);
        t.push(b'-');
        t.digits(day, 2);
        t.push(b'T');
        t.digits(of_day / 3_600, 2);
        t.push(b':');
        t.digits(of_day / 60 % 60, 2);
        t.push(b':');
        t.digits(of_day % 60, 2);
        if nanos != 0 {
            t.push(b'.');
            if nanos.is_multiple_of(1_000_000) {
                t.digits(nanos / 1_000_000, 3);
            } else if nanos.is_multiple_of(1_000) {
                t.digits(nanos / 1_000, 6);
            } else {
                t.digits(nanos, 9);
            }
        }
        t.push(b'Z');
        Rfc3339(t)
    }
}

impl std::ops::Deref for Rfc3339 {
    type Target = str;
    fn deref(&self) -> &str {
        self.0.as_str()
    }
}

impl std::fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self)
    }
}

/// RFC 3339 with `Z`, seconds precision when whole, else as many digits as needed.
pub fn format_ns(ns: i64) -> String {
    Rfc3339::new(ns).to_string()
}

/// One entity's latest row of one view.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredRow {
    pub event_ns: i64,
    pub created_ns: Option<i64>,
    /// In the view's feature order.
    pub values: Vec<Value>,
}

fn order_key(v: i64) -> [u8; 8] {
    ((v as u64) ^ (1 << 63)).to_be_bytes()
}

fn from_order_key(b: [u8; 8]) -> i64 {
    (u64::from_be_bytes(b) ^ (1 << 63)) as i64
}

/// Encodes a row for a view with the given fingerprint. `sortable[i]` says whether feature
/// `i` takes part in the latest-row order (every feature that is not a list): those values
/// make the row's tie key.
pub fn encode(row: &StoredRow, fingerprint: u32, sortable: &[bool]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_V2 + 2 + row.values.len() * 18);
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&fingerprint.to_le_bytes());
    out.extend_from_slice(&order_key(row.event_ns));
    out.extend_from_slice(&order_key(row.created_ns.unwrap_or(i64::MIN)));
    out.extend_from_slice(&[0; 4]);
    let tie_start = out.len();
    for (value, _) in row.values.iter().zip(sortable).filter(|(_, s)| **s) {
        tie_value(value, &mut out);
    }
    let tie_len = u32::try_from(out.len() - tie_start).unwrap_or(u32::MAX);
    out[tie_start - 4..tie_start].copy_from_slice(&tie_len.to_be_bytes());
    out.extend_from_slice(&(row.values.len() as u16).to_le_bytes());
    for v in &row.values {
        encode_value(v, &mut out);
    }
    out
}

/// Appends `v` in an order-preserving form: comparing two such encodings byte by byte (a
/// shorter one first when it is a prefix) compares the values as the offline sort does,
/// ascending with nulls first. Every form is prefix-free, so a sequence of values compares
/// value by value.
fn tie_value(v: &Value, out: &mut Vec<u8>) {
    let escaped = |raw: &[u8], out: &mut Vec<u8>| {
        // 0x00 inside is written 0x00 0x01 and the end 0x00 0x00: byte order is kept and a
        // shorter string that is a prefix of a longer one sorts first.
        for b in raw {
            out.push(*b);
            if *b == 0 {
                out.push(1);
            }
        }
        out.extend_from_slice(&[0, 0]);
    };
    match v {
        Value::Null => out.push(0),
        Value::Bool(b) => out.extend_from_slice(&[1, u8::from(*b)]),
        Value::Int32(x) => {
            out.push(1);
            out.extend_from_slice(&((*x as u32) ^ (1 << 31)).to_be_bytes());
        }
        Value::Int64(x) | Value::Timestamp(x) => {
            out.push(1);
            out.extend_from_slice(&order_key(*x));
        }
        // IEEE total order, as the offline sort compares floats: negative numbers have every
        // bit flipped, positive ones the sign bit.
        Value::Float32(x) => {
            let bits = x.to_bits();
            let key = if bits >> 31 == 1 { !bits } else { bits ^ (1 << 31) };
            out.push(1);
            out.extend_from_slice(&key.to_be_bytes());
        }
        Value::Float64(x) => {
            let bits = x.to_bits();
            let key = if bits >> 63 == 1 { !bits } else { bits ^ (1 << 63) };
            out.push(1);
            out.extend_from_slice(&key.to_be_bytes());
        }
        Value::String(s) => {
            out.push(1);
            escaped(s.as_bytes(), out);
        }
        Value::Bytes(b) => {
            out.push(1);
            escaped(b, out);
        }
        // Lists are not part of the order; a caller never marks them sortable.
        Value::List(_) => out.push(1),
    }
}

/// The bytes a row is ordered by under the newer-wins rule: its (event, created) bytes and
/// its tie key (empty for format 1). `None` when the row is too short to have them.
pub fn order_parts(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let times = bytes.get(ORDER_BYTES)?;
    if bytes.first() == Some(&1) {
        return Some((times, &[]));
    }
    let n = u32::from_be_bytes(bytes.get(21..HEADER_V2)?.try_into().ok()?) as usize;
    Some((times, bytes.get(HEADER_V2..HEADER_V2.checked_add(n)?)?))
}

fn encode_value(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null => out.push(0),
        Value::Bool(b) => {
            out.push(1);
            out.push(u8::from(*b));
        }
        Value::Int32(x) => {
            out.push(2);
            out.extend_from_slice(&x.to_le_bytes());
        }
        Value::Int64(x) => {
            out.push(3);
            out.extend_from_slice(&x.to_le_bytes());
        }
        Value::Float32(x) => {
            out.push(4);
            out.extend_from_slice(&x.to_le_bytes());
        }
        Value::Float64(x) => {
            out.push(5);
            out.extend_from_slice(&x.to_le_bytes());
        }
        Value::String(s) => {
            out.push(6);
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        Value::Bytes(b) => {
            out.push(7);
            out.extend_from_slice(&(b.len() as u32).to_le_bytes());
            out.extend_from_slice(b);
        }
        Value::Timestamp(x) => {
            out.push(8);
            out.extend_from_slice(&x.to_le_bytes());
        }
        Value::List(items) => {
            out.push(9);
            out.extend_from_slice(&(items.len() as u32).to_le_bytes());
            for i in items {
                encode_value(i, out);
            }
        }
    }
}

/// The fingerprint stored in an encoded row, if it has a header.
pub fn stored_fingerprint(bytes: &[u8]) -> Option<u32> {
    let b: [u8; 4] = bytes.get(1..5)?.try_into().ok()?;
    Some(u32::from_le_bytes(b))
}

/// Decodes a row. `key` names it in errors.
pub fn decode(bytes: &[u8], key: &str) -> Result<StoredRow> {
    let mut values = Vec::new();
    let (event_ns, created_ns) = decode_into(bytes, key, &mut values)?;
    Ok(StoredRow { event_ns, created_ns, values })
}

/// Decodes a stored row as [`decode`] does, its values into `values` (cleared first, its
/// allocation kept): an online read decodes one row per (entity, view) and reuses one buffer
/// per view. Returns the row's event time and created time.
pub fn decode_into(bytes: &[u8], key: &str, values: &mut Vec<Value>) -> Result<(i64, Option<i64>)> {
    values.clear();
    let corrupt = |m: &str| Error::Corrupt { key: key.to_string(), message: m.to_string() };
    if bytes.len() < HEADER_V1 {
        return Err(corrupt("shorter than the header"));
    }
    let mut pos = match bytes[0] {
        1 => 21,
        2 => {
            let (_, tie) = order_parts(bytes).ok_or_else(|| corrupt("truncated tie key"))?;
            HEADER_V2 + tie.len()
        }
        other => return Err(corrupt(&format!("format version {other} is unknown to this Quiver"))),
    };
    let eight =
        |r: std::ops::Range<usize>| -> Result<[u8; 8]> { bytes[r].try_into().map_err(|_| corrupt("header")) };
    let event_ns = from_order_key(eight(5..13)?);
    let created = from_order_key(eight(13..21)?);
    let count = take(bytes, &mut pos, 2).ok_or_else(|| corrupt("shorter than the header"))?;
    let n = u16::from_le_bytes([count[0], count[1]]) as usize;
    // Each value takes at least its tag byte: a count the bytes cannot hold reserves nothing
    // beyond what is there.
    values.reserve(n.min(bytes.len() - pos));
    for _ in 0..n {
        values.push(decode_value(bytes, &mut pos).ok_or_else(|| corrupt("truncated value"))?);
    }
    if pos != bytes.len() {
        return Err(corrupt("trailing bytes"));
    }
    Ok((event_ns, (created != i64::MIN).then_some(created)))
}

fn take<'a>(bytes: &'a [u8], pos: &mut usize, n: usize) -> Option<&'a [u8]> {
    let s = bytes.get(*pos..pos.checked_add(n)?)?;
    *pos += n;
    Some(s)
}

/// Decodes one value. List elements are scalars (a feature's dtype is at most
/// `list<scalar>`): a list inside a list is damage, refused before it could nest deeply
/// enough to exhaust the stack.
fn decode_value(bytes: &[u8], pos: &mut usize) -> Option<Value> {
    decode_nested(bytes, pos, true)
}

fn decode_nested(bytes: &[u8], pos: &mut usize, list_allowed: bool) -> Option<Value> {
    let tag = *take(bytes, pos, 1)?.first()?;
    Some(match tag {
        0 => Value::Null,
        1 => Value::Bool(take(bytes, pos, 1)?[0] != 0),
        2 => Value::Int32(i32::from_le_bytes(take(bytes, pos, 4)?.try_into().ok()?)),
        3 => Value::Int64(i64::from_le_bytes(take(bytes, pos, 8)?.try_into().ok()?)),
        4 => Value::Float32(f32::from_le_bytes(take(bytes, pos, 4)?.try_into().ok()?)),
        5 => Value::Float64(f64::from_le_bytes(take(bytes, pos, 8)?.try_into().ok()?)),
        6 | 7 => {
            let len = u32::from_le_bytes(take(bytes, pos, 4)?.try_into().ok()?) as usize;
            let raw = take(bytes, pos, len)?;
            if tag == 6 {
                Value::String(String::from_utf8(raw.to_vec()).ok()?)
            } else {
                Value::Bytes(raw.to_vec())
            }
        }
        8 => Value::Timestamp(i64::from_le_bytes(take(bytes, pos, 8)?.try_into().ok()?)),
        9 if list_allowed => {
            let len = u32::from_le_bytes(take(bytes, pos, 4)?.try_into().ok()?) as usize;
            let mut items = Vec::with_capacity(len.min(4096));
            for _ in 0..len {
                items.push(decode_nested(bytes, pos, false)?);
            }
            Value::List(items)
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_and_order_bytes_sort_like_times() {
        let row = StoredRow {
            event_ns: -5,
            created_ns: Some(7),
            values: vec![
                Value::Null,
                Value::Bool(true),
                Value::Int32(-3),
                Value::Int64(i64::MAX),
                Value::Float32(0.5329),
                Value::Float64(-1.25),
                Value::String("zone_017 ✓".into()),
                Value::Bytes(vec![0, 255]),
                Value::Timestamp(1_767_225_600_000_000_001),
                Value::List(vec![Value::Float32(1.0), Value::Null, Value::Float32(-2.5)]),
            ],
        };
        let sortable: Vec<bool> = row.values.iter().map(|v| !matches!(v, Value::List(_))).collect();
        let bytes = encode(&row, 42, &sortable);
        assert_eq!(decode(&bytes, "k").unwrap(), row);
        assert_eq!(stored_fingerprint(&bytes), Some(42));
        let times = [
            (i64::MIN + 1, None),
            (-1, Some(0)),
            (0, None),
            (0, Some(-1)),
            (0, Some(0)),
            (1, Some(i64::MIN + 1)),
            (i64::MAX, Some(i64::MAX)),
        ];
        let encoded: Vec<Vec<u8>> = times
            .iter()
            .map(|(e, c)| {
                encode(&StoredRow { event_ns: *e, created_ns: *c, values: vec![] }, 0, &[])[ORDER_BYTES]
                    .to_vec()
            })
            .collect();
        let mut sorted = encoded.clone();
        sorted.sort();
        assert_eq!(sorted, encoded, "byte order equals (event, created) order, absent created first");
    }

    #[test]
    fn damaged_values_are_errors_not_panics() {
        let bytes = encode(
            &StoredRow { event_ns: 1, created_ns: None, values: vec![Value::String("abc".into())] },
            1,
            &[true],
        );
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut], "k").is_err(), "cut at {cut}");
        }
        let mut v3 = bytes.clone();
        v3[0] = 3;
        assert!(decode(&v3, "k").unwrap_err().to_string().contains("format version 3"));
        // A tie key length reaching past the end is damage, not a panic.
        let mut long = bytes.clone();
        long[21..25].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(decode(&long, "k").is_err());
        assert_eq!(order_parts(&long), None);
    }

    #[test]
    fn lists_inside_lists_are_damage_however_deep() {
        let row = StoredRow { event_ns: 1, created_ns: None, values: vec![Value::Null] };
        let mut bytes = encode(&row, 1, &[false]);
        bytes.truncate(bytes.len() - 1);
        // 100 000 lists each holding the next: refused, without recursing that deep.
        for _ in 0..100_000 {
            bytes.push(9);
            bytes.extend_from_slice(&1u32.to_le_bytes());
        }
        bytes.push(0);
        let err = decode(&bytes, "k").unwrap_err().to_string();
        assert!(err.contains("truncated value"), "{err}");
    }

    #[test]
    fn rows_of_format_1_still_read_and_order_by_their_times() {
        // byte 0 = 1, fingerprint 7, event 5 ns, no created time, one Int64 value 9.
        let mut old = vec![1];
        old.extend_from_slice(&7u32.to_le_bytes());
        old.extend_from_slice(&order_key(5));
        old.extend_from_slice(&order_key(i64::MIN));
        old.extend_from_slice(&1u16.to_le_bytes());
        old.push(3);
        old.extend_from_slice(&9i64.to_le_bytes());
        let row = decode(&old, "k").unwrap();
        assert_eq!(row, StoredRow { event_ns: 5, created_ns: None, values: vec![Value::Int64(9)] });
        let (times, tie) = order_parts(&old).unwrap();
        assert_eq!((times, tie), (&old[ORDER_BYTES], &[][..]));
    }

    /// The tie keys of random rows sort exactly as Arrow's row format (the offline sort)
    /// sorts the same values, ascending with nulls first, for every sortable type.
    #[test]
    fn tie_keys_sort_like_the_offline_order() {
        use arrow::array::{
            ArrayRef, BinaryArray, BooleanArray, Float32Array, Float64Array, Int32Array, Int64Array,
            StringArray, TimestampNanosecondArray,
        };
        use arrow::compute::SortOptions;
        use arrow::row::{RowConverter, SortField};
        use std::sync::Arc;
        let mut rng = quiver_sample::rng::SplitMix64::new(11);
        let n = 400;
        let pick = |rng: &mut quiver_sample::rng::SplitMix64, choices: &[f64]| {
            choices[rng.below(choices.len() as u64) as usize]
        };
        let floats = [f64::NEG_INFINITY, -2.5, -0.0, 0.0, 1e-300, 3.25, f64::INFINITY, f64::NAN, -f64::NAN];
        let strings = ["", "a", "a\0", "a\0b", "ab", "b", "\u{ff}", "zone_017 ✓"];
        let mut rows: Vec<Vec<Value>> = Vec::new();
        for _ in 0..n {
            let null = |rng: &mut quiver_sample::rng::SplitMix64| rng.one_in(6);
            let mut row = Vec::new();
            row.push(if null(&mut rng) { Value::Null } else { Value::Bool(rng.one_in(2)) });
            row.push(if null(&mut rng) { Value::Null } else { Value::Int32(rng.below(7) as i32 - 3) });
            row.push(if null(&mut rng) {
                Value::Null
            } else {
                Value::Int64([i64::MIN, -1, 0, 1, i64::MAX][rng.below(5) as usize])
            });
            row.push(if null(&mut rng) {
                Value::Null
            } else {
                Value::Float32(pick(&mut rng, &floats) as f32)
            });
            row.push(if null(&mut rng) { Value::Null } else { Value::Float64(pick(&mut rng, &floats)) });
            let s = strings[rng.below(strings.len() as u64) as usize];
            row.push(if null(&mut rng) { Value::Null } else { Value::String(s.into()) });
            row.push(if null(&mut rng) { Value::Null } else { Value::Bytes(s.as_bytes().to_vec()) });
            row.push(if null(&mut rng) { Value::Null } else { Value::Timestamp(rng.below(3) as i64 - 1) });
            rows.push(row);
        }
        let col = |i: usize| -> Vec<&Value> { rows.iter().map(|r| &r[i]).collect() };
        macro_rules! array {
            ($i:expr, $array:ty, $variant:ident) => {
                Arc::new(<$array>::from(
                    col($i)
                        .into_iter()
                        .map(|v| match v {
                            Value::$variant(x) => Some(x.clone()),
                            _ => None,
                        })
                        .collect::<Vec<_>>(),
                )) as ArrayRef
            };
        }
        let strings_col: Vec<Option<&str>> = col(5)
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Some(s.as_str()),
                _ => None,
            })
            .collect();
        let bytes_col: Vec<Option<&[u8]>> = col(6)
            .into_iter()
            .map(|v| match v {
                Value::Bytes(b) => Some(b.as_slice()),
                _ => None,
            })
            .collect();
        let columns: Vec<ArrayRef> = vec![
            array!(0, BooleanArray, Bool),
            array!(1, Int32Array, Int32),
            array!(2, Int64Array, Int64),
            array!(3, Float32Array, Float32),
            array!(4, Float64Array, Float64),
            Arc::new(StringArray::from(strings_col)),
            Arc::new(BinaryArray::from(bytes_col)),
            array!(7, TimestampNanosecondArray, Timestamp),
        ];
        let options = SortOptions { descending: false, nulls_first: true };
        let converter = RowConverter::new(
            columns.iter().map(|c| SortField::new_with_options(c.data_type().clone(), options)).collect(),
        )
        .unwrap();
        let arrow_rows = converter.convert_columns(&columns).unwrap();
        let sortable = vec![true; 8];
        let keys: Vec<Vec<u8>> = rows
            .iter()
            .map(|values| {
                let row = StoredRow { event_ns: 0, created_ns: None, values: values.clone() };
                order_parts(&encode(&row, 0, &sortable)).unwrap().1.to_vec()
            })
            .collect();
        for i in 0..n {
            for j in 0..n {
                assert_eq!(
                    keys[i].cmp(&keys[j]),
                    arrow_rows.row(i).cmp(&arrow_rows.row(j)),
                    "rows {i} and {j}: {:?} vs {:?}",
                    rows[i],
                    rows[j]
                );
            }
        }
    }

    #[test]
    fn times_print_as_chrono_prints_rfc3339_with_the_fewest_fraction_digits() {
        let chrono_text = |ns: i64| {
            chrono::DateTime::<chrono::Utc>::from_timestamp_nanos(ns)
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        };
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut cases = vec![i64::MIN, i64::MAX, 0, -1, 1, 1_000_000, 1_000, 86_400_000_000_000 - 1];
        // Leap days, century years and the days around them.
        for day in [-106_000_i64, -25_567, 10_956, 11_016, 11_017, 47_482, 47_483, 106_000] {
            cases.push(day * 86_400 * 1_000_000_000);
            cases.push(day * 86_400 * 1_000_000_000 - 1);
        }
        for _ in 0..20_000 {
            let r = next() as i64;
            // Whole seconds, milliseconds and microseconds as often as any nanosecond.
            cases.push(match next() % 4 {
                0 => r,
                1 => r / 1_000_000_000 * 1_000_000_000,
                2 => r / 1_000_000 * 1_000_000,
                _ => r / 1_000 * 1_000,
            });
        }
        for ns in cases {
            assert_eq!(format_ns(ns), chrono_text(ns), "{ns}");
        }
    }

    #[test]
    fn float32_json_is_its_shortest_decimal_read_as_float64() {
        // The definition: the float32's shortest decimal text, read as a float64.
        let reference = |v: f32| {
            v.to_string()
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map_or(Json::Null, Json::Number)
        };
        let mut bits = 0x2545_f491_u32;
        // Ties between two shortest forms (Rust's formatting breaks them upward), values
        // with few exact digits, whole numbers around 2^24, subnormals.
        let mut samples = vec![
            f32::MIN_POSITIVE,
            f32::MAX,
            f32::MIN,
            1e-45,
            0.1,
            3.0,
            -0.0,
            1e20,
            f32::NAN,
            // 3 460 691.25 and 1 234 567.25, exact in float32, tie between .2 and .3.
            13_842_765.0 / 4.0,
            -13_842_765.0 / 4.0,
            4_938_269.0 / 4.0,
            4.5,
            0.375,
            16_777_215.0,
            16_777_216.0,
            16_777_218.0,
            33_554_436.0,
        ];
        // Every float32 with a short exact expansion: k / 2^j for small k and j.
        for j in 0..16 {
            for k in 1..2_000u32 {
                samples.push(k as f32 / (1u32 << j) as f32 * 1024.0);
                samples.push(k as f32 / (1u32 << j) as f32);
            }
        }
        // Around the edges of fixed notation (float32: exponents -6..=12, float64: -5..=15).
        for edge in [1e-7f32, 1e-6, 1e-5, 1e-4, 1e-3, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17] {
            for step in 0..=8u32 {
                for x in [f32::from_bits(edge.to_bits() + step), f32::from_bits(edge.to_bits() - step)] {
                    samples.extend([x, -x]);
                }
            }
        }
        for _ in 0..200_000 {
            bits ^= bits << 13;
            bits ^= bits >> 17;
            bits ^= bits << 5;
            samples.push(f32::from_bits(bits));
        }
        for v in samples {
            let json = Value::Float32(v).to_json();
            assert_eq!(json, reference(v), "{v:e}");
            // Written straight to bytes, the same text as printing the tree.
            assert_eq!(serde_json::to_string(&Value::Float32(v)).unwrap(), json.to_string(), "{v:e}");
            // And the same again from the direct writer, fast path or not.
            let mut direct = Vec::new();
            write_json_value(&Value::Float32(v), &mut direct).unwrap();
            assert_eq!(String::from_utf8(direct).unwrap(), json.to_string(), "{v:e}");
        }
    }

    #[test]
    fn json_prints_float32_by_its_shortest_form() {
        assert_eq!(Value::Float32(0.5329).to_json().to_string(), "0.5329");
        assert_eq!(
            Value::Timestamp(1_767_225_600_000_000_000).to_json(),
            Json::String("2026-01-01T00:00:00Z".into())
        );
    }
}
