//! Running a physical plan on a Ballista cluster.

use std::sync::Arc;
use std::time::Duration;

use ballista_core::config::{BALLISTA_CLIENT_GRPC_CONNECT_TIMEOUT_SECONDS, BALLISTA_JOB_NAME};
use ballista_core::execution_plans::execute_physical_plan;
use ballista_core::extension::SessionConfigExt;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionConfig;
use datafusion_proto::protobuf::PhysicalPlanNode;

use crate::addr::SchedulerAddr;
use crate::codec::physical_codec;
use crate::error::{Error, Result};

/// Longest connect timeout accepted.
pub const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(300);

/// How a plan is submitted.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// How long to wait for the scheduler to accept a connection.
    pub connect_timeout: Duration,
    /// The job's name in the scheduler's logs and UI.
    pub job_name: String,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions { connect_timeout: Duration::from_secs(5), job_name: "quiver".into() }
    }
}

/// Submits `plan` to the scheduler at `scheduler_url` (`df://host:port`) and returns its
/// output as a stream.
///
/// `config` is the configuration the plan was built under (batch size, spill settings, ...):
/// it is sent with the job as settings and the executors run the tasks under it. It must not
/// hold secrets. Object stores are the executors' own (see [`crate::stores`]).
///
/// The scheduler is reached within `options.connect_timeout`, or the error names its URL.
/// The call returns once the job has finished on the cluster; the output is then fetched
/// from the executors over Arrow Flight as the stream is read, so this process must reach
/// the executors' advertised addresses. A plan whose root has one partition (Quiver's
/// training-set plans end in one) comes back in its order; with several partitions the order
/// across partitions is undefined.
pub async fn run_physical(
    scheduler_url: &str,
    plan: Arc<dyn ExecutionPlan>,
    config: SessionConfig,
    options: &RunOptions,
) -> Result<SendableRecordBatchStream> {
    let addr = SchedulerAddr::parse(scheduler_url)?;
    let timeout = options.connect_timeout;
    if timeout.is_zero() || timeout > MAX_CONNECT_TIMEOUT {
        return Err(Error::InvalidInput(format!(
            "connect timeout of {timeout:?}: expected more than 0 and at most {MAX_CONNECT_TIMEOUT:?}"
        )));
    }
    if options.job_name.len() > 200 || options.job_name.chars().any(char::is_control) {
        return Err(Error::InvalidInput("a job name is at most 200 printable characters".into()));
    }
    wait_reachable(&addr, timeout).await?;

    // Ballista's connect timeout is whole seconds.
    let seconds = timeout.as_secs_f64().ceil() as u64;
    let config = config
        .upgrade_for_ballista()
        .set_u64(BALLISTA_CLIENT_GRPC_CONNECT_TIMEOUT_SECONDS, seconds.max(1))
        .set_str(BALLISTA_JOB_NAME, &options.job_name);
    let codec = physical_codec();
    let session_id = session_id()?;
    let ballista_config = config.ballista_config();
    let job = execute_physical_plan::<PhysicalPlanNode>(
        addr.grpc_url(),
        &ballista_config,
        plan,
        codec.as_ref(),
        session_id,
        config,
    );
    job.await.map_err(|source| Error::Job { url: addr.to_string(), source })
}

/// Connects to the scheduler's port once, within `timeout`: an unreachable scheduler is a
/// clear error naming it, rather than a transport error after Ballista's 20 s default.
pub async fn wait_reachable(addr: &SchedulerAddr, timeout: Duration) -> Result<()> {
    let unreachable = |reason: String| Error::Unreachable { url: addr.to_string(), reason };
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr.host_port())).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(unreachable(e.to_string())),
        Err(_) => Err(unreachable(format!("no connection within {timeout:?}"))),
    }
}

/// A fresh session id: 128 random bits.
fn session_id() -> Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| Error::Cluster(format!("no random bytes for a session id: {e}")))?;
    Ok(format!("quiver-{}", hex::encode(bytes)))
}
