//! Train/serve skew: for a sample of entities, the values the online store serves now against
//! the values a training set built for the same entities at the same moment gets from the
//! offline store. The two must agree (the online store holds, per entity, the row the
//! point-in-time join picks); any difference is a value one side has and the other not.
//!
//! Entities are drawn from the views' offline tables (their distinct join keys, a seeded
//! uniform sample of `sample` per view, paired row by row when the features span several
//! entities). A feature the online store answers `NOT_FOUND` or `OUTSIDE_MAX_AGE` agrees with
//! a null offline value.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{ArrayRef, RecordBatch, TimestampNanosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::common::ScalarValue;
use datafusion::physical_plan::collect;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use futures::StreamExt;
use quiver_core::definitions::{Definitions, FeatureRef};
use quiver_online::OnlineStore;
use quiver_online::read::{Status, get_online_features};
use quiver_online::rows::value_at;
use quiver_online::value::Value;
use quiver_sample::rng::SplitMix64;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::historical::{HistoricalRequest, output_name, plan_historical, spine_session};
use crate::layout::{EVENT_TIMESTAMP, column};
use crate::store::OfflineStore;
use crate::types::arrow_type;

/// Most entities one check samples.
pub const MAX_SAMPLE: usize = 100_000;
/// Example rows kept per feature.
const EXAMPLES: usize = 5;
/// Distinct keys of one view read to sample from.
const MAX_KEYS_READ: usize = 10_000_000;

/// One entity whose values differ.
#[derive(Clone, Debug, Serialize)]
pub struct SkewExample {
    pub entity: BTreeMap<String, serde_json::Value>,
    pub online: serde_json::Value,
    pub online_status: &'static str,
    pub offline: serde_json::Value,
}

/// One feature's comparison.
#[derive(Clone, Debug, Serialize)]
pub struct FeatureSkew {
    /// Entities whose values differ.
    pub differ: u64,
    pub examples: Vec<SkewExample>,
}

/// The comparison of every requested feature.
#[derive(Clone, Debug, Serialize)]
pub struct SkewReport {
    /// The moment both sides were read at.
    pub at: DateTime<Utc>,
    /// Entities compared.
    pub entities: usize,
    /// Keyed `view:feature`.
    pub features: BTreeMap<String, FeatureSkew>,
}

impl SkewReport {
    pub fn differing(&self) -> u64 {
        self.features.values().map(|f| f.differ).sum()
    }
}

/// Up to `n` distinct key tuples of `view`'s table (a seeded uniform sample), as values of
/// the key columns `keys`.
async fn sample_keys(
    ctx: &SessionContext,
    store: &OfflineStore,
    view: &str,
    keys: &[String],
    n: usize,
    rng: &mut SplitMix64,
) -> Result<Vec<Vec<Value>>> {
    let Some(snapshot) = store.snapshot(view, None).await? else { return Ok(Vec::new()) };
    let urls: Vec<String> = snapshot.files.iter().map(|f| f.url.clone()).collect();
    if urls.is_empty() {
        return Ok(Vec::new());
    }
    let frame = ctx
        .read_parquet(urls, ParquetReadOptions::default().schema(&snapshot.schema))
        .await?
        .select(keys.iter().map(|k| column(k)).collect::<Vec<_>>())?
        .distinct()?;
    let mut stream = frame.execute_stream().await?;
    // Algorithm R over the distinct tuples, in stream order.
    let mut sample: Vec<Vec<Value>> = Vec::new();
    let mut seen = 0usize;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        for row in 0..batch.num_rows() {
            seen += 1;
            if seen > MAX_KEYS_READ {
                return Err(Error::InvalidInput(format!(
                    "feature view '{view}' has more than {MAX_KEYS_READ} entities to sample from; check a feature of a smaller view"
                )));
            }
            let slot =
                if sample.len() < n { Some(sample.len()) } else { Some(rng.below(seen as u64) as usize) };
            if let Some(slot) = slot.filter(|s| *s < n) {
                let tuple = batch
                    .columns()
                    .iter()
                    .map(|c| value_at(c, row))
                    .collect::<std::result::Result<_, _>>()?;
                if slot == sample.len() {
                    sample.push(tuple);
                } else {
                    sample[slot] = tuple;
                }
            }
        }
    }
    Ok(sample)
}

/// Join key values as an Arrow column of `dtype`.
fn key_array(values: &[Value], dtype: &DataType) -> Result<ArrayRef> {
    let scalars = values
        .iter()
        .map(|v| {
            let plain = match v {
                Value::Int32(x) => ScalarValue::Int32(Some(*x)),
                Value::Int64(x) => ScalarValue::Int64(Some(*x)),
                Value::String(x) => ScalarValue::Utf8(Some(x.clone())),
                Value::Bytes(x) => ScalarValue::Binary(Some(x.clone())),
                _ => ScalarValue::try_from(dtype)?,
            };
            plain.cast_to(dtype)
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(ScalarValue::iter_to_array(scalars)?)
}

/// Compares online and offline values of `features` for up to `sample` entities, now.
pub async fn skew(
    ctx: &SessionContext,
    defs: &Definitions,
    store: &OfflineStore,
    online: &dyn OnlineStore,
    features: &[FeatureRef],
    sample: usize,
    seed: u64,
) -> Result<SkewReport> {
    if sample == 0 || sample > MAX_SAMPLE {
        return Err(Error::InvalidInput(format!(
            "--sample must be between 1 and {MAX_SAMPLE}, not {sample}"
        )));
    }
    store.register(ctx)?;
    let mut rng = SplitMix64::new(seed);
    // The spine's key columns, each filled from the first view that has it.
    let mut key_columns: Vec<(String, quiver_core::dtype::DType)> = Vec::new();
    let mut key_values: Vec<Vec<Value>> = Vec::new();
    let mut views: Vec<&str> = features.iter().map(|f| f.view.as_str()).collect();
    views.dedup();
    for name in views {
        let view = defs
            .feature_view(name)
            .ok_or_else(|| Error::InvalidInput(format!("unknown feature view '{name}'")))?;
        let keys = defs.join_keys(view);
        let new: Vec<usize> =
            (0..keys.len()).filter(|i| !key_columns.iter().any(|(k, _)| *k == keys[*i].name)).collect();
        if new.is_empty() {
            continue;
        }
        let names: Vec<String> = keys.iter().map(|k| k.name.clone()).collect();
        let tuples = sample_keys(ctx, store, name, &names, sample, &mut rng).await?;
        for i in new {
            key_columns.push((keys[i].name.clone(), keys[i].dtype.clone()));
            key_values.push(tuples.iter().map(|t| t[i].clone()).collect());
        }
    }
    let entities = key_values.iter().map(Vec::len).max().unwrap_or(0);
    if entities == 0 {
        return Err(Error::InvalidInput(
            "the features' views have no rows in the offline store: materialize them first".into(),
        ));
    }
    // Pair the views' samples row by row (a shorter sample repeats).
    let rows: Vec<BTreeMap<String, Value>> = (0..entities)
        .map(|r| {
            key_columns
                .iter()
                .zip(&key_values)
                .filter(|(_, values)| !values.is_empty())
                .map(|((name, _), values)| (name.clone(), values[r % values.len()].clone()))
                .collect()
        })
        .collect();
    let at = Utc::now();
    let at_ns =
        at.timestamp_nanos_opt().ok_or_else(|| Error::Internal("now is outside nanoseconds".into()))?;

    let served = get_online_features(online, defs, features, &rows[..], at_ns).await?;

    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (name, dtype) in &key_columns {
        let values: Vec<Value> = rows.iter().map(|r| r.get(name).cloned().unwrap_or(Value::Null)).collect();
        fields.push(Field::new(name, arrow_type(dtype), true));
        columns.push(key_array(&values, &arrow_type(dtype))?);
    }
    fields.push(Field::new(
        EVENT_TIMESTAMP,
        DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
        false,
    ));
    columns.push(Arc::new(TimestampNanosecondArray::from(vec![at_ns; entities]).with_timezone("UTC")));
    let spine = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
    let spine = spine_session(ctx).read_batch(spine)?;
    let request = HistoricalRequest {
        features: features.to_vec(),
        full_feature_names: true,
        timestamp_column: EVENT_TIMESTAMP.into(),
        table_versions: BTreeMap::new(),
        partitions: 1,
    };
    let planned = plan_historical(ctx, defs, store, spine, &request).await?;
    let batches = collect(planned.plan.clone(), ctx.task_ctx()).await?;
    let trained = datafusion::arrow::compute::concat_batches(&planned.schema, &batches)?;
    if trained.num_rows() != entities {
        return Err(Error::Internal(format!(
            "the training set has {} rows for {entities} entities",
            trained.num_rows()
        )));
    }

    let mut out = BTreeMap::new();
    for (j, feature) in features.iter().enumerate() {
        let offline = trained
            .column_by_name(&output_name(feature, true))
            .ok_or_else(|| Error::Internal(format!("the training set lacks {feature}")))?;
        let mut result = FeatureSkew { differ: 0, examples: Vec::new() };
        for (r, row) in served.rows.iter().enumerate() {
            let cell = &row[j];
            let online_value = if cell.status == Status::Present { cell.value.clone() } else { Value::Null };
            let offline_value = value_at(offline, r)?;
            if online_value != offline_value {
                result.differ += 1;
                if result.examples.len() < EXAMPLES {
                    result.examples.push(SkewExample {
                        entity: rows[r].iter().map(|(k, v)| (k.clone(), v.to_json())).collect(),
                        online: online_value.to_json(),
                        online_status: cell.status.name(),
                        offline: offline_value.to_json(),
                    });
                }
            }
        }
        out.insert(feature.to_string(), result);
    }
    Ok(SkewReport { at, entities, features: out })
}
