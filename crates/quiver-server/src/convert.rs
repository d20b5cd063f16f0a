//! Conversions between the wire types and the domain: values, Arrow IPC, definitions.

use crate::domain::{Error, Result};
use crate::pb;
use crate::pb::value::Kind;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::buffer::Buffer;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::ipc::reader::StreamDecoder;
use quiver_core::definitions::{Definitions, FeatureView, Field};
use quiver_core::diff::{Action, ObjectChange};
use quiver_core::registry::Snapshot;
use quiver_online::value::Value;

/// A wire value as a domain value.
pub fn value_from_pb(v: &pb::Value) -> Value {
    match &v.kind {
        None => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(*b),
        Some(Kind::Int32Value(x)) => Value::Int32(*x),
        Some(Kind::Int64Value(x)) => Value::Int64(*x),
        Some(Kind::FloatValue(x)) => Value::Float32(*x),
        Some(Kind::DoubleValue(x)) => Value::Float64(*x),
        Some(Kind::StringValue(s)) => Value::String(s.clone()),
        Some(Kind::BytesValue(b)) => Value::Bytes(b.clone()),
        Some(Kind::TimestampNsValue(ns)) => Value::Timestamp(*ns),
        Some(Kind::ListValue(l)) => Value::List(l.values.iter().map(value_from_pb).collect()),
    }
}

/// A domain value on the wire.
pub fn value_to_pb(v: Value) -> pb::Value {
    let kind = match v {
        Value::Null => None,
        Value::Bool(b) => Some(Kind::BoolValue(b)),
        Value::Int32(x) => Some(Kind::Int32Value(x)),
        Value::Int64(x) => Some(Kind::Int64Value(x)),
        Value::Float32(x) => Some(Kind::FloatValue(x)),
        Value::Float64(x) => Some(Kind::DoubleValue(x)),
        Value::String(s) => Some(Kind::StringValue(s)),
        Value::Bytes(b) => Some(Kind::BytesValue(b)),
        Value::Timestamp(ns) => Some(Kind::TimestampNsValue(ns)),
        Value::List(items) => {
            Some(Kind::ListValue(pb::ValueList { values: items.into_iter().map(value_to_pb).collect() }))
        }
    };
    pb::Value { kind }
}

/// Decodes an Arrow IPC stream; `what` names it in errors.
///
/// The bytes come from a client, so nothing they declare may size an allocation. Arrow's
/// `StreamReader` zero-fills a buffer of whatever body length a message header states before
/// reading it: a 100-byte push declaring a 128 GiB body aborted the server (found by the
/// `requests` fuzz target). `StreamDecoder` instead takes each message and body as slices of
/// the bytes already received, so memory stays within the body's own size; a header that
/// promises more than the stream holds ends as "the stream ends inside a message".
pub fn decode_ipc(bytes: &[u8], what: &str) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    if bytes.is_empty() {
        return Err(Error::Invalid(format!("{what} is empty: send an Arrow IPC stream")));
    }
    // Arrow's decoder trusts the buffer offsets a message declares and panics on one past the
    // end of its body (found by the `push_ipc` fuzz target): the bytes come from a client,
    // so a panic while reading them is a malformed stream, not a bug of ours. The decoder's
    // state is local to this call, so nothing is left half-changed by the unwind.
    let read = quiver_core::untrusted::guarded(|| {
        let bad = |e: ArrowError| Error::Invalid(format!("{what} is not a readable Arrow IPC stream: {e}"));
        let mut decoder = StreamDecoder::new();
        let mut rest = Buffer::from(bytes.to_vec());
        let mut batches = Vec::new();
        while !rest.is_empty() {
            if let Some(batch) = decoder.decode(&mut rest).map_err(bad)? {
                batches.push(batch);
            }
        }
        let schema = decoder.schema().ok_or_else(|| {
            Error::Invalid(format!("{what} is not an Arrow IPC stream: it holds no schema message"))
        })?;
        decoder.finish().map_err(|_| {
            Error::Invalid(format!(
                "{what}: the Arrow IPC stream ends inside a message (a header declares more bytes than were sent)"
            ))
        })?;
        Ok((schema, batches))
    });
    read.unwrap_or_else(|_| {
        Err(Error::Invalid(format!(
            "{what}: the Arrow IPC stream is malformed (a buffer lies outside its message)"
        )))
    })
}

/// Nanoseconds since the epoch of a time.
pub fn ns(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(i64::MAX)
}

fn field(f: &Field) -> pb::Field {
    pb::Field {
        name: f.name.clone(),
        dtype: f.dtype.to_string(),
        description: f.description.clone().unwrap_or_default(),
    }
}

pub fn changes(changes: &[ObjectChange]) -> Vec<pb::ObjectChange> {
    changes
        .iter()
        .map(|c| pb::ObjectChange {
            kind: c.kind.to_string(),
            name: c.name.clone(),
            action: match c.action {
                Action::Added => pb::ChangeAction::Added,
                Action::Changed => pb::ChangeAction::Changed,
                Action::Removed => pb::ChangeAction::Removed,
            } as i32,
            fields: c.fields.iter().map(|f| f.to_string()).collect(),
        })
        .collect()
}

pub fn entities(defs: &Definitions) -> Vec<pb::Entity> {
    defs.entities
        .iter()
        .map(|e| pb::Entity {
            name: e.name.clone(),
            join_keys: e.join_keys.iter().map(field).collect(),
            description: e.description.clone().unwrap_or_default(),
        })
        .collect()
}

pub fn sources(defs: &Definitions) -> Vec<pb::Source> {
    defs.sources
        .iter()
        .map(|s| pb::Source {
            name: s.name.clone(),
            path: s.path.clone(),
            format: s.format.to_string(),
            timestamp_field: s.timestamp_field.clone(),
            created_timestamp_field: s.created_timestamp_field.clone().unwrap_or_default(),
            description: s.description.clone().unwrap_or_default(),
        })
        .collect()
}

pub fn feature_view(snapshot: &Snapshot, v: &FeatureView) -> pb::FeatureView {
    let defs = &snapshot.definitions;
    pb::FeatureView {
        name: v.name.clone(),
        entities: v.entities.clone(),
        source: v.source.clone(),
        ttl_seconds: v.ttl.seconds(),
        online: v.online,
        features: v.features.iter().map(field).collect(),
        join_keys: defs.join_keys(v).iter().map(field).collect(),
        transform: v.transform.clone().unwrap_or_default(),
        tags: v.tags.clone().into_iter().collect(),
        owner: v.owner.clone().unwrap_or_default(),
        description: v.description.clone().unwrap_or_default(),
        hash: snapshot.hashes.get(&format!("feature_views/{}", v.name)).cloned().unwrap_or_default(),
        expectations: v.expectations.iter().map(ToString::to_string).collect(),
        on_failure: if v.on_failure.is_fail() { "fail".into() } else { "warn".into() },
    }
}

pub fn feature_services(defs: &Definitions) -> Vec<pb::FeatureService> {
    defs.feature_services
        .iter()
        .map(|s| pb::FeatureService {
            name: s.name.clone(),
            features: s.features.clone(),
            resolved_features: defs
                .resolve_service(&s.name)
                .map(|r| r.iter().map(|f| f.to_string()).collect())
                .unwrap_or_default(),
            tags: s.tags.clone().into_iter().collect(),
            owner: s.owner.clone().unwrap_or_default(),
            description: s.description.clone().unwrap_or_default(),
        })
        .collect()
}

pub fn registry_version(s: &Snapshot) -> pb::RegistryVersion {
    pb::RegistryVersion {
        version: s.version,
        applied_at_ns: ns(s.applied_at),
        applied_by: s.applied_by.clone(),
        definitions_hash: s.definitions_hash.clone(),
        added: s.summary.added.clone(),
        changed: s.summary.changed.clone(),
        removed: s.summary.removed.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_survive_the_wire_both_ways() {
        let values = vec![
            Value::Null,
            Value::Bool(true),
            Value::Int32(-3),
            Value::Int64(1 << 40),
            Value::Float32(0.25),
            Value::Float64(-1.5),
            Value::String("berlin".into()),
            Value::Bytes(vec![0, 255]),
            Value::Timestamp(1_767_225_600_000_000_000),
            Value::List(vec![Value::Int64(1), Value::Null, Value::Int64(3)]),
        ];
        for v in values {
            assert_eq!(value_from_pb(&value_to_pb(v.clone())), v);
        }
    }

    #[test]
    fn a_spine_that_is_not_arrow_is_refused_with_a_reason() {
        let e = decode_ipc(b"not arrow", "the spine").unwrap_err();
        assert!(matches!(&e, Error::Invalid(m) if m.contains("the spine is not an Arrow IPC stream")), "{e}");
        let e = decode_ipc(b"", "the spine").unwrap_err();
        assert!(e.to_string().contains("empty"));
    }

    /// An Arrow IPC stream of one batch of `n` Int64 rows.
    fn stream_of(n: i64) -> Vec<u8> {
        use datafusion::arrow::array::Int64Array;
        use datafusion::arrow::datatypes::{DataType, Field, Schema};
        use datafusion::arrow::ipc::writer::StreamWriter;
        use std::sync::Arc;
        let schema = Arc::new(Schema::new(vec![Field::new("driver_id", DataType::Int64, true)]));
        // Every seventh value null, so the body (validity and values) is longer than any one
        // of its buffers and its length occurs once in the message.
        let values = Int64Array::from_iter((0..n).map(|i| (i % 7 != 0).then_some(i)));
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(values)]).unwrap();
        let mut w = StreamWriter::try_new(Vec::new(), &schema).unwrap();
        w.write(&batch).unwrap();
        w.finish().unwrap();
        w.into_inner().unwrap()
    }

    #[test]
    fn a_stream_round_trips_and_a_cut_one_is_refused() {
        let bytes = stream_of(100);
        let (schema, batches) = decode_ipc(&bytes, "arrow_ipc").unwrap();
        assert_eq!(schema.field(0).name(), "driver_id");
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 100);
        // Cut inside the batch's body: no end-of-stream marker, the body incomplete.
        let e = decode_ipc(&bytes[..bytes.len() - 100], "arrow_ipc").unwrap_err();
        assert!(e.to_string().contains("ends inside a message"), "{e}");
    }

    #[test]
    fn a_body_length_larger_than_the_stream_allocates_nothing_and_is_refused() {
        // The record batch message of a real stream, its declared body length raised to
        // 128 GiB. Arrow's StreamReader zero-fills a buffer of that size before reading (the
        // process aborts); the decoder must refuse the stream from the bytes it has.
        let mut bytes = stream_of(1000);
        // Messages are framed as 0xFFFFFFFF, a 4-byte metadata length, the metadata, the body.
        let meta_len = |at: usize| u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        let schema_len = meta_len(0);
        let batch_at = 8 + schema_len;
        let meta = &bytes[batch_at + 8..batch_at + 8 + meta_len(batch_at)];
        let message = datafusion::arrow::ipc::root_as_message(meta).unwrap();
        assert!(message.header_as_record_batch().is_some());
        let declared = message.bodyLength();
        let needle = declared.to_le_bytes();
        let at: Vec<usize> =
            bytes.windows(8).enumerate().filter(|(_, w)| *w == needle).map(|(i, _)| i).collect();
        assert_eq!(at.len(), 1, "the body length {declared} occurs once in the stream: {at:?}");
        bytes[at[0]..at[0] + 8].copy_from_slice(&(128_i64 << 30).to_le_bytes());
        let e = decode_ipc(&bytes, "arrow_ipc").unwrap_err();
        assert!(matches!(&e, Error::Invalid(m) if m.contains("ends inside a message")), "{e}");
        // A negative length is no better.
        bytes[at[0]..at[0] + 8].copy_from_slice(&(-8_i64).to_le_bytes());
        assert!(matches!(decode_ipc(&bytes, "arrow_ipc"), Err(Error::Invalid(_))));
    }
}
