//! Entity keys: join key values in a canonical text form.
//!
//! `name=value` pairs in the view's join key order, joined by `,`. Integers are written in
//! decimal; strings are percent-encoded outside `[A-Za-z0-9_.-]`; bytes as `0x` + hex. The
//! form is the same whether the values come from a materialized Arrow batch or from a
//! request, which is what makes a read find what a write stored.

use std::fmt::Write as _;

use crate::store::EntityKey;
use crate::value::Value;

fn push_escaped(out: &mut String, s: &str) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-' {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// Builds the key from (name, value) pairs in join key order. Returns `None` when a value
/// is null or not a key type (such a row has no entity).
pub fn entity_key(parts: &[(&str, &Value)]) -> Option<EntityKey> {
    let mut out = String::new();
    write_entity_key(&mut out, parts.iter().copied()).then_some(EntityKey(out))
}

/// Appends the key of (name, value) pairs to `out`, with no allocation of its own; false
/// (and `out` holding part of a key) when a value is null or not a key type.
pub fn write_entity_key<'a>(out: &mut String, parts: impl IntoIterator<Item = (&'a str, &'a Value)>) -> bool {
    for (i, (name, value)) in parts.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_escaped(out, name);
        out.push('=');
        // Writing to a String cannot fail.
        match value {
            Value::Int32(v) => {
                let _ = write!(out, "{v}");
            }
            Value::Int64(v) => {
                let _ = write!(out, "{v}");
            }
            Value::String(s) => push_escaped(out, s),
            Value::Bytes(b) => {
                out.push_str("0x");
                for x in b {
                    let _ = write!(out, "{x:02x}");
                }
            }
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_canonical_and_free_of_braces() {
        let k = entity_key(&[
            ("driver_id", &Value::Int64(1001)),
            ("city", &Value::String("São {Paulo},x=1".into())),
        ])
        .unwrap();
        assert_eq!(k.0, "driver_id=1001,city=S%C3%A3o%20%7BPaulo%7D%2Cx%3D1");
        assert!(!k.0.contains('{') && !k.0.contains('}'));
        // int32 and int64 of the same number give the same key (a spine may widen the type)
        assert_eq!(entity_key(&[("k", &Value::Int32(5))]), entity_key(&[("k", &Value::Int64(5))]));
        assert!(entity_key(&[("k", &Value::Null)]).is_none());
        assert_eq!(entity_key(&[("b", &Value::Bytes(vec![1, 171]))]).unwrap().0, "b=0x01ab");
    }
}
