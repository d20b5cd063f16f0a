//! Feature values and their compact binary encoding in the online store.
//!
//! One stored row (a view's latest values for one entity) is:
//!
//! ```text
//! byte 0        format version (1)
//! bytes 1..5    view fingerprint (u32 LE): hash of the view's feature names and dtypes
//! bytes 5..13   event time, ns since the epoch, big-endian with the sign bit flipped
//! bytes 13..21  created time, same encoding; i64::MIN when absent
//! bytes 21..23  number of values (u16 LE)
//! then per value: a tag byte and its payload (little-endian numbers, u32-length-prefixed
//! strings and bytes, lists as an element count followed by tagged elements)
//! ```
//!
//! The two timestamps are encoded so that comparing the 16 bytes lexicographically
//! compares (event, created) numerically: the Redis newer-wins script and the embedded
//! store compare rows without decoding them. The fingerprint makes values written under
//! an older definition of the view read as absent instead of being misread.

use serde_json::Value as Json;

use crate::error::{Error, Result};

/// Current layout version.
pub const FORMAT_VERSION: u8 = 1;
/// Offset and length of the (event, created) ordering bytes.
pub const ORDER_BYTES: std::ops::Range<usize> = 5..21;
const HEADER: usize = 23;

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

    /// JSON for people and machines: numbers as numbers (float32 printed by its shortest
    /// decimal form), timestamps as RFC 3339, bytes as base-16.
    pub fn to_json(&self) -> Json {
        match self {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Int32(v) => Json::from(*v),
            Value::Int64(v) => Json::from(*v),
            Value::Float32(v) => v
                .to_string()
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map_or(Json::Null, Json::Number),
            Value::Float64(v) => serde_json::Number::from_f64(*v).map_or(Json::Null, Json::Number),
            Value::String(s) => Json::String(s.clone()),
            Value::Bytes(b) => Json::String(b.iter().map(|x| format!("{x:02x}")).collect()),
            Value::Timestamp(ns) => Json::String(format_ns(*ns)),
            Value::List(items) => Json::Array(items.iter().map(Value::to_json).collect()),
        }
    }
}

/// RFC 3339 with `Z`, seconds precision when whole, else as many digits as needed.
pub fn format_ns(ns: i64) -> String {
    let t = chrono::DateTime::<chrono::Utc>::from_timestamp_nanos(ns);
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
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

/// Encodes a row for a view with the given fingerprint.
pub fn encode(row: &StoredRow, fingerprint: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + row.values.len() * 9);
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&fingerprint.to_le_bytes());
    out.extend_from_slice(&order_key(row.event_ns));
    out.extend_from_slice(&order_key(row.created_ns.unwrap_or(i64::MIN)));
    out.extend_from_slice(&(row.values.len() as u16).to_le_bytes());
    for v in &row.values {
        encode_value(v, &mut out);
    }
    out
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
    let corrupt = |m: &str| Error::Corrupt { key: key.to_string(), message: m.to_string() };
    if bytes.len() < HEADER {
        return Err(corrupt("shorter than the header"));
    }
    if bytes[0] != FORMAT_VERSION {
        return Err(corrupt(&format!("format version {} is unknown to this Quiver", bytes[0])));
    }
    let eight =
        |r: std::ops::Range<usize>| -> Result<[u8; 8]> { bytes[r].try_into().map_err(|_| corrupt("header")) };
    let event_ns = from_order_key(eight(5..13)?);
    let created = from_order_key(eight(13..21)?);
    let n = u16::from_le_bytes([bytes[21], bytes[22]]) as usize;
    let mut pos = HEADER;
    let mut values = Vec::with_capacity(n);
    for _ in 0..n {
        values.push(decode_value(bytes, &mut pos).ok_or_else(|| corrupt("truncated value"))?);
    }
    if pos != bytes.len() {
        return Err(corrupt("trailing bytes"));
    }
    Ok(StoredRow { event_ns, created_ns: (created != i64::MIN).then_some(created), values })
}

fn take<'a>(bytes: &'a [u8], pos: &mut usize, n: usize) -> Option<&'a [u8]> {
    let s = bytes.get(*pos..pos.checked_add(n)?)?;
    *pos += n;
    Some(s)
}

fn decode_value(bytes: &[u8], pos: &mut usize) -> Option<Value> {
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
        9 => {
            let len = u32::from_le_bytes(take(bytes, pos, 4)?.try_into().ok()?) as usize;
            let mut items = Vec::with_capacity(len.min(4096));
            for _ in 0..len {
                items.push(decode_value(bytes, pos)?);
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
        let bytes = encode(&row, 42);
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
                encode(&StoredRow { event_ns: *e, created_ns: *c, values: vec![] }, 0)[ORDER_BYTES].to_vec()
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
        );
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut], "k").is_err(), "cut at {cut}");
        }
        let mut v2 = bytes.clone();
        v2[0] = 2;
        assert!(decode(&v2, "k").unwrap_err().to_string().contains("format version 2"));
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
