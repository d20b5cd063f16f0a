//! Where a training set's plan runs: in this process ([`LocalEngine`]), or on a cluster
//! whose machines read the plan's inputs from shared storage (Quiver's Ballista engine, in
//! the `quiver-ballista` crate).
//!
//! The plan is the same either way: [`crate::historical::plan_historical`] builds it, and
//! the engine only decides where its operators run. A plan's output has one partition, in
//! spine order, on every engine.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use datafusion::prelude::SessionContext;

use crate::error::Result;

/// Runs physical plans.
#[async_trait]
pub trait Engine: Debug + Send + Sync {
    /// The engine as logs and errors name it: `local`, or `ballista df://HOST:PORT`.
    fn describe(&self) -> String;

    /// Whether the plan runs on other machines: then every file it reads must be in the
    /// offline store (or another object store the cluster reaches), never a path on this
    /// machine's disk. A training set's spine is copied there first.
    fn runs_elsewhere(&self) -> bool;

    /// How many partitions a training set's joins are split into
    /// ([`crate::historical::HistoricalRequest::partitions`]): 1 in one process, where
    /// merging each view's sorted files is fastest; more on a cluster, to spread the joins.
    fn join_partitions(&self) -> usize;

    /// Runs `plan`, built under `ctx`'s configuration, and returns its output.
    async fn execute(
        &self,
        ctx: &SessionContext,
        plan: Arc<dyn ExecutionPlan>,
    ) -> Result<SendableRecordBatchStream>;
}

/// This process, on DataFusion's own runtime: what runs unless a cluster is configured.
#[derive(Clone, Copy, Debug, Default)]
pub struct LocalEngine;

#[async_trait]
impl Engine for LocalEngine {
    fn describe(&self) -> String {
        "local".into()
    }

    fn runs_elsewhere(&self) -> bool {
        false
    }

    fn join_partitions(&self) -> usize {
        1
    }

    async fn execute(
        &self,
        ctx: &SessionContext,
        plan: Arc<dyn ExecutionPlan>,
    ) -> Result<SendableRecordBatchStream> {
        Ok(execute_stream(plan, ctx.task_ctx())?)
    }
}
