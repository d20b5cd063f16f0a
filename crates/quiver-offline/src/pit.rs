//! The point-in-time join operator: for each spine row, the latest feature row of the same
//! entity whose event time is not after the spine row's time (and not older than the ttl).
//!
//! `AsofJoinExec` is a streaming sort-merge. Both inputs arrive sorted:
//! - the spine by (join keys, timestamp);
//! - the feature rows by (join keys, event time, created time, feature values).
//!
//! A cursor walks the feature rows once. For each spine row it advances past every feature
//! row that sorts at or before (spine keys, spine time), remembering the last one with the
//! same keys: that row is the candidate, because among equal event times the sort puts the
//! latest created time (and, on a full tie, the greatest feature values) last. The candidate
//! is used when it is within the ttl; otherwise the features are null. The row is taken as a
//! whole, so a null feature in it stays null.
//!
//! Memory is a few batches whatever the input sizes: the current spine batch, the current
//! feature batch and the batch holding the candidate. The sorts in front of the operator are
//! DataFusion's, which spill to disk under the session's memory limit.
//!
//! Keys are compared as Arrow row-format bytes ([`RowConverter`]), so compound and string
//! keys need no special cases; both inputs must be sorted ascending with nulls first, which
//! is the row format's order. The operator checks the order as it goes and fails loudly if
//! an input is not sorted, rather than return wrong answers.
//!
//! The operator is serializable through [`QuiverCodec`] (a DataFusion
//! `PhysicalExtensionCodec`), so plans containing it can be shipped to other executors.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, new_null_array};
use datafusion::arrow::compute::{cast, interleave};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit, TimestampNanosecondType};
use datafusion::arrow::row::{OwnedRow, RowConverter, Rows, SortField};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{EquivalenceProperties, Partitioning, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, Distribution, ExecutionPlan, ExecutionPlanProperties, PlanProperties,
    SendableRecordBatchStream,
};
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

/// What the operator joins on and what it outputs. Column indices refer to the inputs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AsofParams {
    /// Join key columns of the spine, in key order.
    pub spine_keys: Vec<usize>,
    /// The spine's timestamp column.
    pub spine_ts: usize,
    /// Join key columns of the feature input, in the same key order and types.
    pub feature_keys: Vec<usize>,
    /// The feature input's event time column.
    pub feature_ts: usize,
    /// Feature input columns appended to each spine row.
    pub feature_values: Vec<usize>,
    /// Output names of those columns.
    pub output_names: Vec<String>,
    /// Maximum age of a feature row in nanoseconds; 0 means no limit.
    pub ttl_ns: i64,
}

/// Point-in-time join of a sorted spine with sorted feature rows (see the module docs).
#[derive(Debug, Clone)]
pub struct AsofJoinExec {
    spine: Arc<dyn ExecutionPlan>,
    features: Arc<dyn ExecutionPlan>,
    params: AsofParams,
    schema: SchemaRef,
    cache: Arc<PlanProperties>,
}

impl AsofJoinExec {
    pub fn try_new(
        spine: Arc<dyn ExecutionPlan>,
        features: Arc<dyn ExecutionPlan>,
        params: AsofParams,
    ) -> DfResult<Self> {
        let left = spine.schema();
        let right = features.schema();
        let bad = |m: String| DataFusionError::Plan(format!("point-in-time join: {m}"));
        if params.spine_keys.len() != params.feature_keys.len() || params.spine_keys.is_empty() {
            return Err(bad("spine and feature keys differ in number".into()));
        }
        if params.feature_values.len() != params.output_names.len() {
            return Err(bad("one output name per feature column is needed".into()));
        }
        for (l, r) in params.spine_keys.iter().zip(&params.feature_keys) {
            let (lt, rt) = (left.field(*l).data_type(), right.field(*r).data_type());
            if lt != rt {
                return Err(bad(format!("key types differ: spine {lt} vs features {rt}")));
            }
        }
        for (side, schema, idx) in [("spine", &left, params.spine_ts), ("feature", &right, params.feature_ts)]
        {
            if !matches!(schema.field(idx).data_type(), DataType::Timestamp(_, _)) {
                return Err(bad(format!("the {side} time column is not a timestamp")));
            }
        }
        let mut fields: Vec<Arc<Field>> = left.fields().iter().cloned().collect();
        for (i, name) in params.feature_values.iter().zip(&params.output_names) {
            fields.push(Arc::new(Field::new(name, right.field(*i).data_type().clone(), true)));
        }
        let schema = Arc::new(Schema::new(fields));
        // One input partition each, or the same number on both sides: partition i of the
        // spine is joined with partition i of the features, so both must be split by the
        // same hash of the same key values.
        let partitions = spine.output_partitioning().partition_count();
        let feature_partitions = features.output_partitioning().partition_count();
        if partitions != feature_partitions {
            return Err(bad(format!(
                "the spine has {partitions} partitions and the features {feature_partitions}: they must \
                 be split alike"
            )));
        }
        let cache = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            match spine.output_partitioning() {
                // The spine's columns keep their positions, so its hash partitioning holds.
                p @ Partitioning::Hash(_, _) => p.clone(),
                _ => Partitioning::UnknownPartitioning(partitions),
            },
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Ok(AsofJoinExec { spine, features, params, schema, cache })
    }
}

impl DisplayAs for AsofJoinExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "AsofJoinExec: keys={:?}={:?}, time={}<={}, ttl_ns={}, features={:?}",
            self.params.spine_keys,
            self.params.feature_keys,
            self.params.feature_ts,
            self.params.spine_ts,
            self.params.ttl_ns,
            self.params.output_names
        )
    }
}

impl ExecutionPlan for AsofJoinExec {
    fn name(&self) -> &'static str {
        "AsofJoinExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.cache
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.spine, &self.features]
    }

    fn required_input_distribution(&self) -> Vec<Distribution> {
        if self.cache.partitioning.partition_count() <= 1 {
            return vec![Distribution::SinglePartition, Distribution::SinglePartition];
        }
        let columns = |plan: &Arc<dyn ExecutionPlan>, keys: &[usize]| -> Vec<Arc<dyn PhysicalExpr>> {
            let schema = plan.schema();
            keys.iter()
                .map(|i| Arc::new(Column::new(schema.field(*i).name(), *i)) as Arc<dyn PhysicalExpr>)
                .collect()
        };
        vec![
            Distribution::KeyPartitioned(columns(&self.spine, &self.params.spine_keys)),
            Distribution::KeyPartitioned(columns(&self.features, &self.params.feature_keys)),
        ]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true, false]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        crate::exec::visit([], f)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let [spine, features] = crate::exec::exactly("AsofJoinExec", children)?;
        Ok(Arc::new(AsofJoinExec::try_new(spine, features, self.params.clone())?))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> DfResult<SendableRecordBatchStream> {
        let partitions = self.cache.partitioning.partition_count();
        if partition >= partitions {
            return Err(DataFusionError::Internal(format!(
                "AsofJoinExec has {partitions} partitions, asked for partition {partition}"
            )));
        }
        let spine = self.spine.execute(partition, context.clone())?;
        let features = self.features.execute(partition, context)?;
        let key_fields: Vec<SortField> = self
            .params
            .spine_keys
            .iter()
            .map(|i| SortField::new(self.spine.schema().field(*i).data_type().clone()))
            .collect();
        let converter = RowConverter::new(key_fields)?;
        let value_fields: Vec<Arc<Field>> =
            self.schema.fields().iter().skip(self.spine.schema().fields().len()).cloned().collect();
        let state = JoinState {
            spine,
            features,
            params: self.params.clone(),
            schema: self.schema.clone(),
            converter,
            null_row: null_batch(&value_fields)?,
            cursor: None,
            batches_seen: 0,
            features_done: false,
            candidate: None,
            last_spine: None,
            last_feature: None,
        };
        let stream = futures::stream::try_unfold(state, |mut s| async move {
            let out = s.next_output().await?;
            Ok(out.map(|b| (b, s)))
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), stream)))
    }
}

/// A one-row batch of nulls: what a spine row without a match gets.
fn null_batch(fields: &[Arc<Field>]) -> DfResult<RecordBatch> {
    let schema = Arc::new(Schema::new(fields.to_vec()));
    let columns: Vec<ArrayRef> = fields.iter().map(|f| new_null_array(f.data_type(), 1)).collect();
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// Timestamps of any unit as nanoseconds since the epoch.
fn nanos(array: &ArrayRef) -> DfResult<ArrayRef> {
    let tz = match array.data_type() {
        DataType::Timestamp(_, tz) => tz.clone(),
        other => return Err(DataFusionError::Internal(format!("expected a timestamp column, got {other}"))),
    };
    Ok(cast(array, &DataType::Timestamp(TimeUnit::Nanosecond, tz))?)
}

/// The feature batch being walked.
struct Cursor {
    /// Sequence number of the batch in the feature stream.
    id: u64,
    /// Feature value columns only (what is copied into the output).
    values: RecordBatch,
    keys: Rows,
    /// Key columns, to know which rows have a null key.
    key_valid: Vec<bool>,
    ts: ArrayRef,
    pos: usize,
    /// The last row of this batch whose order was checked.
    checked: Option<usize>,
}

/// The remembered candidate row: a row of the cursor's batch, or of an earlier batch that
/// is then held (values and key) until a newer candidate replaces it.
struct Candidate {
    id: u64,
    row: usize,
    ts: i64,
    held: Option<(RecordBatch, OwnedRow)>,
}

struct JoinState {
    spine: SendableRecordBatchStream,
    features: SendableRecordBatchStream,
    params: AsofParams,
    schema: SchemaRef,
    converter: RowConverter,
    null_row: RecordBatch,
    cursor: Option<Cursor>,
    batches_seen: u64,
    features_done: bool,
    candidate: Option<Candidate>,
    /// Last spine (key, time) of the previous spine batch, to check the input order.
    last_spine: Option<(OwnedRow, i64)>,
    /// Last checked feature (key, time) of the previous feature batch.
    last_feature: Option<(OwnedRow, i64)>,
}

fn valid_keys(columns: &[ArrayRef], len: usize) -> Vec<bool> {
    (0..len).map(|i| columns.iter().all(|c| c.is_valid(i))).collect()
}

fn unsorted(side: &str) -> DataFusionError {
    DataFusionError::Internal(format!(
        "point-in-time join: the {side} rows are not sorted by (keys, time); this is a bug in Quiver"
    ))
}

impl JoinState {
    /// Makes sure the cursor points at a feature row; false when the features are exhausted.
    async fn feature_row(&mut self) -> DfResult<bool> {
        loop {
            if let Some(c) = &self.cursor
                && c.pos < c.values.num_rows()
            {
                return Ok(true);
            }
            if self.features_done {
                return Ok(false);
            }
            let next = self.features.next().await;
            // The batch is done: hold on to what outlives it (the candidate, the order check).
            if let Some(c) = self.cursor.take() {
                if let Some(cand) = self.candidate.as_mut()
                    && cand.held.is_none()
                {
                    cand.held = Some((c.values.clone(), c.keys.row(cand.row).owned()));
                }
                if let Some(i) = c.checked {
                    let ts = c.ts.as_primitive::<TimestampNanosecondType>();
                    self.last_feature = Some((c.keys.row(i).owned(), ts.value(i)));
                }
            }
            match next {
                None => {
                    self.features_done = true;
                    return Ok(false);
                }
                Some(batch) => {
                    let batch = batch?;
                    if batch.num_rows() == 0 {
                        continue;
                    }
                    let key_cols: Vec<ArrayRef> =
                        self.params.feature_keys.iter().map(|i| batch.column(*i).clone()).collect();
                    let keys = self.converter.convert_columns(&key_cols)?;
                    let key_valid = valid_keys(&key_cols, batch.num_rows());
                    let ts = nanos(batch.column(self.params.feature_ts))?;
                    let values = batch.project(&self.params.feature_values)?;
                    let values = RecordBatch::try_new(self.null_row.schema(), values.columns().to_vec())?;
                    self.batches_seen += 1;
                    self.cursor = Some(Cursor {
                        id: self.batches_seen,
                        values,
                        keys,
                        key_valid,
                        ts,
                        pos: 0,
                        checked: None,
                    });
                }
            }
        }
    }

    async fn next_output(&mut self) -> DfResult<Option<RecordBatch>> {
        let batch = loop {
            match self.spine.next().await {
                None => return Ok(None),
                Some(b) => {
                    let b = b?;
                    if b.num_rows() > 0 {
                        break b;
                    }
                }
            }
        };
        let n = batch.num_rows();
        let key_cols: Vec<ArrayRef> =
            self.params.spine_keys.iter().map(|i| batch.column(*i).clone()).collect();
        let keys = self.converter.convert_columns(&key_cols)?;
        let key_valid = valid_keys(&key_cols, n);
        let ts_array = nanos(batch.column(self.params.spine_ts))?;
        let ts = ts_array.as_primitive::<TimestampNanosecondType>();

        // Output rows take their feature values from these batches; 0 is the null row.
        let mut sources: Vec<RecordBatch> = vec![self.null_row.clone()];
        // The feature batch id of each source after the null row.
        let mut source_ids: Vec<u64> = vec![0];
        let mut indices: Vec<(usize, usize)> = Vec::with_capacity(n);
        let mut previous: Option<usize> = None;

        for (i, valid) in key_valid.iter().enumerate() {
            if !valid || ts.is_null(i) {
                indices.push((0, 0));
                continue;
            }
            let lk = keys.row(i);
            let lt = ts.value(i);
            let out_of_order = match previous {
                Some(p) => (keys.row(p), ts.value(p)) > (lk, lt),
                None => self.last_spine.as_ref().is_some_and(|(pk, pt)| (pk.row(), *pt) > (lk, lt)),
            };
            if out_of_order {
                return Err(unsorted("spine"));
            }
            previous = Some(i);

            // Advance past every feature row at or before (lk, lt).
            while self.feature_row().await? {
                let Some(c) = self.cursor.as_mut() else { break };
                let rt_array = c.ts.as_primitive::<TimestampNanosecondType>();
                if rt_array.is_null(c.pos) {
                    c.pos += 1; // a feature row without event time can never be chosen
                    continue;
                }
                let rk = c.keys.row(c.pos);
                let rt = rt_array.value(c.pos);
                if (rk, rt) > (lk, lt) {
                    break;
                }
                let out_of_order = match c.checked {
                    Some(p) => (c.keys.row(p), rt_array.value(p)) > (rk, rt),
                    None => self.last_feature.as_ref().is_some_and(|(pk, pt)| (pk.row(), *pt) > (rk, rt)),
                };
                if out_of_order {
                    return Err(unsorted("feature"));
                }
                c.checked = Some(c.pos);
                if rk == lk && c.key_valid[c.pos] {
                    self.candidate = Some(Candidate { id: c.id, row: c.pos, ts: rt, held: None });
                }
                c.pos += 1;
            }

            let ttl = self.params.ttl_ns;
            let chosen = self.candidate.as_ref().and_then(|cand| {
                let (values, key) = match &cand.held {
                    Some((values, key)) => (values, key.row()),
                    None => {
                        let c = self.cursor.as_ref().filter(|c| c.id == cand.id)?;
                        (&c.values, c.keys.row(cand.row))
                    }
                };
                (key == lk && (ttl == 0 || cand.ts >= lt.saturating_sub(ttl))).then_some((cand, values))
            });
            match chosen {
                Some((cand, values)) => {
                    let src = match source_ids.iter().rposition(|id| *id == cand.id) {
                        Some(s) => s,
                        None => {
                            sources.push(values.clone());
                            source_ids.push(cand.id);
                            sources.len() - 1
                        }
                    };
                    indices.push((src, cand.row));
                }
                None => indices.push((0, 0)),
            }
        }
        if let Some(p) = previous {
            self.last_spine = Some((keys.row(p).owned(), ts.value(p)));
        }

        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        for j in 0..self.null_row.num_columns() {
            let arrays: Vec<&dyn Array> = sources.iter().map(|b| b.column(j).as_ref()).collect();
            columns.push(interleave(&arrays, &indices)?);
        }
        Ok(Some(RecordBatch::try_new(self.schema.clone(), columns)?))
    }
}

/// Serializes Quiver's custom operators inside DataFusion physical plans.
#[derive(Debug, Default)]
pub struct QuiverCodec;

#[derive(Serialize, Deserialize)]
enum Node {
    AsofJoin(AsofParams),
    /// `SortRowsExec` over columns of its input.
    SortRows(Vec<SortColumn>),
    /// A materialization's row counter over an input led by this many join-key columns.
    CountRows {
        keys: usize,
    },
    /// A materialization's writer.
    WriteFiles(Box<crate::materialize::WriteSpec>),
}

/// One column of a sort order, as the codec carries it.
#[derive(Serialize, Deserialize)]
struct SortColumn {
    name: String,
    index: usize,
    descending: bool,
    nulls_first: bool,
}

impl PhysicalExtensionCodec for QuiverCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        _ctx: &TaskContext,
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let node: Node = serde_json::from_slice(buf)
            .map_err(|e| DataFusionError::Internal(format!("decoding a Quiver plan node: {e}")))?;
        match node {
            Node::AsofJoin(params) => {
                let [spine, features] = inputs else {
                    return Err(DataFusionError::Internal("AsofJoinExec needs two inputs".into()));
                };
                Ok(Arc::new(AsofJoinExec::try_new(spine.clone(), features.clone(), params)?))
            }
            Node::SortRows(columns) => {
                let [input] = inputs else {
                    return Err(DataFusionError::Internal("SortRowsExec needs one input".into()));
                };
                let order = columns.into_iter().map(|c| {
                    let options = datafusion::arrow::compute::SortOptions {
                        descending: c.descending,
                        nulls_first: c.nulls_first,
                    };
                    let column: Arc<dyn PhysicalExpr> =
                        Arc::new(datafusion::physical_expr::expressions::Column::new(&c.name, c.index));
                    datafusion::physical_expr::PhysicalSortExpr::new(column, options)
                });
                let ordering = datafusion::physical_expr::LexOrdering::new(order)
                    .ok_or_else(|| DataFusionError::Internal("SortRowsExec with no sort column".into()))?;
                Ok(Arc::new(crate::rowsort::SortRowsExec::new(ordering, input.clone())))
            }
            Node::CountRows { keys } => {
                let [input] = inputs else {
                    return Err(DataFusionError::Internal("CountRowsExec needs one input".into()));
                };
                Ok(Arc::new(crate::materialize::CountRowsExec::detached(input.clone(), keys)))
            }
            Node::WriteFiles(spec) => {
                let [input] = inputs else {
                    return Err(DataFusionError::Internal("WriteFilesExec needs one input".into()));
                };
                Ok(Arc::new(crate::materialize::WriteFilesExec::new(input.clone(), *spec)))
            }
        }
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> DfResult<()> {
        let any: &dyn std::any::Any = node.as_ref();
        let encoded = if let Some(join) = any.downcast_ref::<AsofJoinExec>() {
            Node::AsofJoin(join.params.clone())
        } else if let Some(sort) = any.downcast_ref::<crate::rowsort::SortRowsExec>() {
            let columns = sort
                .ordering()
                .iter()
                .map(|e| {
                    let any: &dyn std::any::Any = e.expr.as_ref();
                    let column = any
                        .downcast_ref::<datafusion::physical_expr::expressions::Column>()
                        .ok_or_else(|| {
                            DataFusionError::NotImplemented(format!(
                                "Quiver cannot encode a sort on {}",
                                e.expr
                            ))
                        })?;
                    Ok(SortColumn {
                        name: column.name().to_string(),
                        index: column.index(),
                        descending: e.options.descending,
                        nulls_first: e.options.nulls_first,
                    })
                })
                .collect::<DfResult<Vec<_>>>()?;
            Node::SortRows(columns)
        } else if let Some(count) = any.downcast_ref::<crate::materialize::CountRowsExec>() {
            Node::CountRows { keys: count.keys() }
        } else if let Some(write) = any.downcast_ref::<crate::materialize::WriteFilesExec>() {
            Node::WriteFiles(Box::new(write.spec().clone()))
        } else {
            return Err(DataFusionError::NotImplemented(format!("Quiver cannot encode {}", node.name())));
        };
        let bytes = serde_json::to_vec(&encoded)
            .map_err(|e| DataFusionError::Internal(format!("encoding {}: {e}", node.name())))?;
        buf.extend_from_slice(&bytes);
        Ok(())
    }
}
