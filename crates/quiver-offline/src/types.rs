//! Declared dtypes against Arrow types.
//!
//! A source column is *compatible* with a declared dtype when every value converts without
//! loss (an `int32` column may back an `int64` feature, a `float64` column may not back a
//! `float32` one). Dictionary-encoded columns (hive partition values, some parquet files)
//! are judged by their value type.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field as ArrowField, TimeUnit};
use quiver_core::dtype::DType;

/// The timezone every timestamp is normalized to.
pub const UTC: &str = "UTC";

/// The Arrow type a declared dtype is stored as.
pub fn arrow_type(dtype: &DType) -> DataType {
    match dtype {
        DType::Bool => DataType::Boolean,
        DType::Int32 => DataType::Int32,
        DType::Int64 => DataType::Int64,
        DType::Float32 => DataType::Float32,
        DType::Float64 => DataType::Float64,
        DType::String => DataType::Utf8,
        DType::Bytes => DataType::Binary,
        DType::Timestamp => timestamp_type(),
        DType::List(inner) => DataType::List(Arc::new(ArrowField::new("item", arrow_type(inner), true))),
    }
}

/// Timestamps are compared and stored as nanoseconds since the epoch, UTC.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some(UTC.into()))
}

/// Whether a column of type `actual` can back a declared `dtype` without loss.
pub fn is_compatible(dtype: &DType, actual: &DataType) -> bool {
    use DataType as A;
    if let A::Dictionary(_, value) = actual {
        return is_compatible(dtype, value);
    }
    match dtype {
        DType::Bool => matches!(actual, A::Boolean),
        DType::Int32 => matches!(actual, A::Int8 | A::Int16 | A::Int32 | A::UInt8 | A::UInt16),
        DType::Int64 => {
            matches!(actual, A::Int8 | A::Int16 | A::Int32 | A::Int64 | A::UInt8 | A::UInt16 | A::UInt32)
        }
        DType::Float32 => {
            matches!(actual, A::Float16 | A::Float32 | A::Int8 | A::Int16 | A::UInt8 | A::UInt16)
        }
        DType::Float64 => matches!(
            actual,
            A::Float16
                | A::Float32
                | A::Float64
                | A::Int8
                | A::Int16
                | A::Int32
                | A::UInt8
                | A::UInt16
                | A::UInt32
        ),
        DType::String => matches!(actual, A::Utf8 | A::LargeUtf8 | A::Utf8View),
        DType::Bytes => matches!(actual, A::Binary | A::LargeBinary | A::BinaryView | A::FixedSizeBinary(_)),
        DType::Timestamp => is_timestamp_like(actual),
        DType::List(inner) => match actual {
            A::List(f) | A::LargeList(f) | A::FixedSizeList(f, _) | A::ListView(f) | A::LargeListView(f) => {
                is_compatible(inner, f.data_type())
            }
            _ => false,
        },
    }
}

/// Types Quiver reads as an instant: timestamps of any unit and zone, and dates.
pub fn is_timestamp_like(actual: &DataType) -> bool {
    matches!(actual, DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64)
}

/// Text columns, which csv and json sources use for timestamps; parsed as UTC when no
/// offset is written.
pub fn is_text(actual: &DataType) -> bool {
    matches!(actual, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// The dtype a user should declare for an Arrow type, for hints.
pub fn suggested_dtype(actual: &DataType) -> Option<DType> {
    use DataType as A;
    Some(match actual {
        A::Dictionary(_, v) => return suggested_dtype(v),
        A::Boolean => DType::Bool,
        A::Int8 | A::Int16 | A::Int32 | A::UInt8 | A::UInt16 => DType::Int32,
        A::Int64 | A::UInt32 => DType::Int64,
        A::Float16 | A::Float32 => DType::Float32,
        A::Float64 => DType::Float64,
        A::Utf8 | A::LargeUtf8 | A::Utf8View => DType::String,
        A::Binary | A::LargeBinary | A::BinaryView | A::FixedSizeBinary(_) => DType::Bytes,
        A::Timestamp(_, _) | A::Date32 | A::Date64 => DType::Timestamp,
        A::List(f) | A::LargeList(f) | A::FixedSizeList(f, _) => {
            let inner = suggested_dtype(f.data_type())?;
            if !inner.is_list_element() {
                return None;
            }
            DType::List(Box::new(inner))
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widening_is_compatible_and_narrowing_is_not() {
        assert!(is_compatible(&DType::Int64, &DataType::Int32));
        assert!(!is_compatible(&DType::Int32, &DataType::Int64));
        assert!(is_compatible(&DType::Float64, &DataType::Float32));
        assert!(!is_compatible(&DType::Float32, &DataType::Float64));
        assert!(!is_compatible(&DType::Int64, &DataType::UInt64));
        assert!(!is_compatible(&DType::String, &DataType::Int64));
        assert!(is_compatible(
            &DType::String,
            &DataType::Dictionary(Box::new(DataType::UInt16), Box::new(DataType::Utf8))
        ));
        assert!(is_compatible(&DType::Timestamp, &DataType::Timestamp(TimeUnit::Second, None)));
        let emb: DType = "list<float32>".parse().unwrap();
        assert!(is_compatible(&emb, &DataType::new_list(DataType::Float32, true)));
        assert!(is_compatible(&emb, &DataType::new_fixed_size_list(DataType::Float32, 8, true)));
        assert!(!is_compatible(&emb, &DataType::new_list(DataType::Float64, true)));
    }

    #[test]
    fn suggestions_round_trip_with_compatibility() {
        for t in
            [DataType::Int64, DataType::Float32, DataType::Utf8, DataType::new_list(DataType::Int32, true)]
        {
            let d = suggested_dtype(&t).unwrap();
            assert!(is_compatible(&d, &t), "{t}");
        }
    }
}
