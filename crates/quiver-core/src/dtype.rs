//! Feature and join key value types as users declare them (`int64`, `list<float32>`, ...).
//!
//! The textual form is the contract: it is what users write in YAML, what the registry
//! stores and what `describe` prints, so `parse` and `Display` round-trip exactly.

use std::fmt;
use std::str::FromStr;

/// A declared value type.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    Bool,
    Int32,
    Int64,
    Float32,
    Float64,
    String,
    Bytes,
    /// An instant in UTC, nanosecond precision.
    Timestamp,
    /// A variable-length list of a numeric type or string, e.g. an embedding `list<float32>`.
    List(Box<DType>),
}

/// Every spelling accepted by [`DType::from_str`], for hints.
pub const DTYPE_NAMES: &str = "bool, int32, int64, float32, float64, string, bytes, timestamp, \
                               list<int32|int64|float32|float64|string>";

impl DType {
    /// Whether this type may be the element of a `list<...>`.
    pub fn is_list_element(&self) -> bool {
        matches!(self, DType::Int32 | DType::Int64 | DType::Float32 | DType::Float64 | DType::String)
    }

    /// Whether this type may be a join key: exact, hashable values only.
    pub fn is_join_key(&self) -> bool {
        matches!(self, DType::Int32 | DType::Int64 | DType::String | DType::Bytes)
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DType::Bool => f.write_str("bool"),
            DType::Int32 => f.write_str("int32"),
            DType::Int64 => f.write_str("int64"),
            DType::Float32 => f.write_str("float32"),
            DType::Float64 => f.write_str("float64"),
            DType::String => f.write_str("string"),
            DType::Bytes => f.write_str("bytes"),
            DType::Timestamp => f.write_str("timestamp"),
            DType::List(inner) => write!(f, "list<{inner}>"),
        }
    }
}

/// Why a dtype string was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DTypeParseError(pub String);

impl fmt::Display for DTypeParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for DType {
    type Err = DTypeParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let scalar = match t {
            "bool" => Some(DType::Bool),
            "int32" => Some(DType::Int32),
            "int64" => Some(DType::Int64),
            "float32" => Some(DType::Float32),
            "float64" => Some(DType::Float64),
            "string" => Some(DType::String),
            "bytes" => Some(DType::Bytes),
            "timestamp" => Some(DType::Timestamp),
            _ => None,
        };
        if let Some(d) = scalar {
            return Ok(d);
        }
        if let Some(rest) = t.strip_prefix("list<").and_then(|r| r.strip_suffix('>')) {
            let inner: DType = rest.parse()?;
            if !inner.is_list_element() {
                return Err(DTypeParseError(format!(
                    "list<{inner}> is not supported: list elements must be int32, int64, float32, float64 or string"
                )));
            }
            return Ok(DType::List(Box::new(inner)));
        }
        Err(DTypeParseError(format!("unknown dtype '{t}'")))
    }
}

serde_as_text!(DType);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dtype_round_trips() {
        for s in [
            "bool",
            "int32",
            "int64",
            "float32",
            "float64",
            "string",
            "bytes",
            "timestamp",
            "list<int32>",
            "list<int64>",
            "list<float32>",
            "list<float64>",
            "list<string>",
        ] {
            let d: DType = s.parse().unwrap();
            assert_eq!(d.to_string(), s);
        }
    }

    #[test]
    fn bad_dtypes_are_rejected_with_the_reason() {
        assert_eq!("int".parse::<DType>().unwrap_err().0, "unknown dtype 'int'");
        assert!("list<bool>".parse::<DType>().unwrap_err().0.contains("list elements"));
        assert!("list<list<int64>>".parse::<DType>().is_err());
        assert!("list<int64".parse::<DType>().is_err());
    }
}
