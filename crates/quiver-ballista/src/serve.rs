//! Running a scheduler or an executor in this process, until it fails or is stopped.

use std::sync::Arc;
use std::time::Duration;

use ballista_executor::executor_process::start_executor_process;
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::scheduler_process::{create_scheduler, start_grpc_service_with_listener};
use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};
use tokio::net::TcpListener;

use crate::client::wait_reachable;
use crate::config::{ExecutorOptions, SchedulerOptions, executor_config, scheduler_config};
use crate::error::{Error, Result};
use crate::stores::ObjectStores;

/// Binds `options.bind` and serves a scheduler there (see [`serve_scheduler_on`]).
pub async fn serve_scheduler(options: SchedulerOptions, stores: ObjectStores) -> Result<()> {
    let listener = TcpListener::bind(options.bind)
        .await
        .map_err(|e| Error::Cluster(format!("the scheduler cannot listen on {}: {e}", options.bind)))?;
    serve_scheduler_on(listener, options, stores).await
}

/// Serves a scheduler with Quiver's codec and object stores on `listener` (whose address
/// replaces `options.bind`, so port 0 works). Returns only when serving fails.
pub async fn serve_scheduler_on(
    listener: TcpListener,
    options: SchedulerOptions,
    stores: ObjectStores,
) -> Result<()> {
    let bound =
        listener.local_addr().map_err(|e| Error::Cluster(format!("the scheduler's listener: {e}")))?;
    let options = SchedulerOptions { bind: bound, ..options };
    let config = scheduler_config(&options, stores)?;
    config.validate().map_err(|e| Error::Cluster(format!("scheduler configuration: {e}")))?;
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .map_err(|e| Error::Cluster(format!("starting the scheduler's cluster state: {e}")))?;
    let server = create_scheduler::<LogicalPlanNode, PhysicalPlanNode>(cluster, Arc::new(config))
        .await
        .map_err(|e| Error::Cluster(format!("starting the scheduler: {e}")))?;
    tracing::info!("Ballista scheduler listening on {bound}");
    start_grpc_service_with_listener(listener, server)
        .await
        .map_err(|e| Error::Cluster(format!("the scheduler on {bound} stopped: {e}")))
}

/// Serves an executor with Quiver's codec and object stores: waits up to `scheduler_wait`
/// for the scheduler to accept connections, registers, and runs tasks until the scheduler
/// stops it, the process gets SIGINT or SIGTERM (Ballista installs those handlers), or a
/// service fails.
pub async fn serve_executor(
    options: ExecutorOptions,
    stores: ObjectStores,
    scheduler_wait: Duration,
) -> Result<()> {
    let config = executor_config(&options, stores)?;
    let deadline = tokio::time::Instant::now() + scheduler_wait;
    loop {
        match wait_reachable(&options.scheduler, Duration::from_secs(2)).await {
            Ok(()) => break,
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(Error::Cluster(format!("the executor gave up after {scheduler_wait:?}: {e}")));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
    start_executor_process(Arc::new(config))
        .await
        .map_err(|e| Error::Cluster(format!("executor (scheduler {}): {e}", options.scheduler)))
}
