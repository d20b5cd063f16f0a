//! [`BallistaEngine`]: Quiver's offline plans run on a Ballista cluster, for the commands
//! and services configured with `offline_engine: {type: ballista, scheduler: df://…}`.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use quiver_offline::engine::Engine;

use crate::addr::SchedulerAddr;
use crate::client::{RunOptions, run_physical};
use crate::error::Error;

/// A Ballista scheduler that offline plans are submitted to.
#[derive(Clone, Debug)]
pub struct BallistaEngine {
    scheduler: SchedulerAddr,
    options: RunOptions,
    partitions: usize,
}

impl BallistaEngine {
    /// The engine for the scheduler at `scheduler` (`df://HOST:PORT`), checked now, with
    /// each view's join split into `partitions` tasks; the scheduler itself is first reached
    /// when a plan runs.
    pub fn new(scheduler: &str, partitions: usize, options: RunOptions) -> crate::Result<Self> {
        if partitions == 0 {
            return Err(Error::InvalidInput("a cluster splits joins into at least 1 partition".into()));
        }
        Ok(BallistaEngine { scheduler: SchedulerAddr::parse(scheduler)?, options, partitions })
    }

    pub fn scheduler(&self) -> &SchedulerAddr {
        &self.scheduler
    }
}

#[async_trait]
impl Engine for BallistaEngine {
    fn describe(&self) -> String {
        format!("ballista {}", self.scheduler)
    }

    fn runs_elsewhere(&self) -> bool {
        true
    }

    fn join_partitions(&self) -> usize {
        self.partitions
    }

    async fn execute(
        &self,
        ctx: &SessionContext,
        plan: Arc<dyn ExecutionPlan>,
    ) -> quiver_offline::Result<SendableRecordBatchStream> {
        run_physical(&self.scheduler.to_string(), plan, ctx.copied_config(), &self.options).await.map_err(
            |e| match e {
                Error::InvalidInput(message) => quiver_offline::Error::InvalidInput(message),
                other => quiver_offline::Error::Engine(other.to_string()),
            },
        )
    }
}
