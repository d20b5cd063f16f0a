//! Spines for the example lake: the entity rows a training job asks features for.
//!
//! A spine row names a driver and a customer of the lake, a moment inside the lake's window
//! (microsecond precision, so rows fall between the lake's whole-second events), and a label
//! (`trip_completed`). Like the lake, the same arguments give the same rows.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{BooleanArray, Int64Array, RecordBatch, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::SampleSpec;
use crate::error::{Error, Result};
use crate::rng::SplitMix64;

/// Stream id of spine rows in the PRNG (distinct from the tables').
const SPINE_STREAM: u64 = 0x0053_5049_4E45;
/// Rows per batch written.
const BATCH: u64 = 65_536;

/// The spine's schema: `driver_id`, `customer_id`, `event_timestamp`, `trip_completed`.
pub fn spine_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("driver_id", DataType::Int64, false),
        Field::new("customer_id", DataType::Int64, false),
        Field::new("event_timestamp", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
        Field::new("trip_completed", DataType::Boolean, false),
    ]))
}

/// Writes `rows` spine rows for the lake of `spec` to a Parquet file at `path` (written to a
/// temporary name, then renamed). Returns the number of rows written.
///
/// # Errors
/// [`Error::InvalidSpec`] for an invalid spec, [`Error::Io`] / [`Error::Parquet`] when the
/// file cannot be written.
pub fn write_spine(path: &Path, spec: &SampleSpec, rows: u64, seed: u64) -> Result<u64> {
    let (start, end) = spec.window()?;
    let start_us = start.timestamp_micros();
    let span_us = (end.timestamp_micros() - start_us).max(1) as u64;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| Error::Io { path: parent.to_path_buf(), source })?;
    }
    let tmp = path.with_extension("parquet.tmp");
    let parquet_error = |source| Error::Parquet { path: tmp.clone(), source };
    let file = File::create(&tmp).map_err(|source| Error::Io { path: tmp.clone(), source })?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_created_by(format!("quiver-sample {}", env!("CARGO_PKG_VERSION")))
        .build();
    let mut writer =
        ArrowWriter::try_new(BufWriter::new(file), spine_schema(), Some(props)).map_err(parquet_error)?;
    let mut next = 0u64;
    while next < rows {
        let n = BATCH.min(rows - next);
        let mut drivers = Vec::with_capacity(n as usize);
        let mut customers = Vec::with_capacity(n as usize);
        let mut times = Vec::with_capacity(n as usize);
        let mut labels = Vec::with_capacity(n as usize);
        for i in next..next + n {
            let mut rng = SplitMix64::for_item(seed, SPINE_STREAM, i);
            drivers.push(1001 + rng.below(spec.drivers) as i64);
            customers.push(2001 + rng.below(spec.customers) as i64);
            times.push(start_us + rng.below(span_us) as i64);
            labels.push(!rng.one_in(5));
        }
        let batch = RecordBatch::try_new(
            spine_schema(),
            vec![
                Arc::new(Int64Array::from(drivers)),
                Arc::new(Int64Array::from(customers)),
                Arc::new(TimestampMicrosecondArray::from(times).with_timezone("UTC")),
                Arc::new(BooleanArray::from(labels)),
            ],
        )
        .map_err(|e| Error::Internal(format!("building a spine batch: {e}")))?;
        writer.write(&batch).map_err(parquet_error)?;
        next += n;
    }
    writer
        .into_inner()
        .map_err(parquet_error)?
        .into_inner()
        .map_err(|e| e.into_error())
        .map_err(|source| Error::Io { path: tmp.clone(), source })?;
    std::fs::rename(&tmp, path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spines_are_deterministic_and_inside_the_lake() {
        let tmp = tempfile::tempdir().unwrap();
        let spec = SampleSpec::default();
        let (a, b) = (tmp.path().join("a.parquet"), tmp.path().join("b.parquet"));
        assert_eq!(write_spine(&a, &spec, 1000, 3).unwrap(), 1000);
        write_spine(&b, &spec, 1000, 3).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        let reader =
            parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(File::open(&a).unwrap(), 4096)
                .unwrap();
        let (start, end) = spec.window().unwrap();
        let mut n = 0;
        for batch in reader {
            let batch = batch.unwrap();
            let ts = batch.column(2).as_any().downcast_ref::<TimestampMicrosecondArray>().unwrap();
            for t in ts.values() {
                assert!(*t >= start.timestamp_micros() && *t < end.timestamp_micros());
            }
            n += batch.num_rows();
        }
        assert_eq!(n, 1000);
    }
}
