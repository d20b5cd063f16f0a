//! A whole cluster inside this process, on loopback: one scheduler and N executors, each on
//! an OS thread of its own with its own tokio runtime. Stopping an executor shuts its runtime
//! down (its sockets close at once and it never says goodbye), which is what a crashed
//! executor looks like to the scheduler. For tests, and for trying Quiver on Ballista on one
//! machine.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::oneshot;

use crate::addr::SchedulerAddr;
use crate::config::{ExecutorOptions, Liveness, Policy, SchedulerOptions};
use crate::error::{Error, Result};
use crate::health::wait_for_executors;
use crate::serve::{serve_executor, serve_scheduler_on};
use crate::stores::ObjectStores;

/// Most executors a local cluster starts.
pub const MAX_LOCAL_EXECUTORS: usize = 16;

/// How a local cluster is made.
#[derive(Clone, Debug)]
pub struct LocalClusterOptions {
    pub executors: usize,
    /// Tasks each executor runs at once.
    pub concurrent_tasks: usize,
    pub policy: Policy,
    pub liveness: Liveness,
    /// Each executor's memory pool.
    pub memory_pool_bytes: u64,
    /// How long to wait for every executor to register.
    pub ready_timeout: Duration,
}

impl Default for LocalClusterOptions {
    fn default() -> Self {
        LocalClusterOptions {
            executors: 2,
            concurrent_tasks: 2,
            policy: Policy::Pull,
            liveness: Liveness::quick(),
            memory_pool_bytes: 256 << 20,
            ready_timeout: Duration::from_secs(30),
        }
    }
}

/// A scheduler and its executors, all on loopback. Dropping it stops them all.
pub struct LocalCluster {
    scheduler: SchedulerAddr,
    scheduler_thread: RoleThread,
    executors: Vec<RoleThread>,
    work: tempfile::TempDir,
}

impl LocalCluster {
    /// Starts the scheduler on a free loopback port, then the executors (free ports too),
    /// and returns once all of them are registered.
    pub async fn start(options: LocalClusterOptions, stores: ObjectStores) -> Result<Self> {
        if options.executors == 0 || options.executors > MAX_LOCAL_EXECUTORS {
            return Err(Error::InvalidInput(format!(
                "{} executors: a local cluster has 1 to {MAX_LOCAL_EXECUTORS}",
                options.executors
            )));
        }
        let work = tempfile::tempdir().map_err(|e| Error::Cluster(format!("a work folder: {e}")))?;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| Error::Cluster(format!("a loopback port for the scheduler: {e}")))?;
        let bound = listener.local_addr().map_err(|e| Error::Cluster(e.to_string()))?;
        let scheduler = SchedulerAddr { host: "127.0.0.1".into(), port: bound.port() };
        let mut scheduler_options = SchedulerOptions::new(bound);
        scheduler_options.policy = options.policy;
        scheduler_options.liveness = options.liveness;
        let scheduler_stores = stores.clone();
        let scheduler_thread = RoleThread::spawn("quiver-ballista-scheduler".into(), move || async move {
            let listener = tokio::net::TcpListener::from_std(listener)
                .map_err(|e| Error::Cluster(format!("the scheduler's listener: {e}")))?;
            serve_scheduler_on(listener, scheduler_options, scheduler_stores).await
        })?;

        let mut cluster =
            LocalCluster { scheduler: scheduler.clone(), scheduler_thread, executors: Vec::new(), work };
        for i in 0..options.executors {
            let work_dir: PathBuf = cluster.work.path().join(format!("executor-{i}"));
            std::fs::create_dir_all(&work_dir)
                .map_err(|e| Error::Cluster(format!("{}: {e}", work_dir.display())))?;
            let executor = ExecutorOptions {
                scheduler: scheduler.clone(),
                bind_host: std::net::Ipv4Addr::LOCALHOST.into(),
                external_host: "127.0.0.1".into(),
                flight_port: free_port()?,
                grpc_port: free_port()?,
                work_dir,
                concurrent_tasks: options.concurrent_tasks,
                policy: options.policy,
                liveness: options.liveness,
                memory_pool_bytes: Some(options.memory_pool_bytes),
            };
            let stores = stores.clone();
            let thread = RoleThread::spawn(format!("quiver-ballista-executor-{i}"), move || async move {
                serve_executor(executor, stores, Duration::from_secs(10)).await
            })?;
            cluster.executors.push(thread);
        }
        cluster.wait_for_executors(options.executors, options.ready_timeout).await?;
        Ok(cluster)
    }

    /// The scheduler's address, `df://127.0.0.1:PORT`.
    pub fn scheduler_url(&self) -> String {
        self.scheduler.to_string()
    }

    pub fn scheduler(&self) -> &SchedulerAddr {
        &self.scheduler
    }

    /// Waits until `count` executors are registered, failing early if any role exited.
    pub async fn wait_for_executors(&self, count: usize, timeout: Duration) -> Result<()> {
        wait_for_executors(&self.scheduler, count, timeout, || {
            if let Some(e) = self.scheduler_thread.exited() {
                return Err(Error::Cluster(format!("the scheduler exited: {e}")));
            }
            for (i, t) in self.executors.iter().enumerate() {
                if let Some(e) = t.exited() {
                    return Err(Error::Cluster(format!("executor {i} exited: {e}")));
                }
            }
            Ok(())
        })
        .await
    }

    /// Kills executor `i`: its runtime is shut down, so its tasks, its Flight service and its
    /// heartbeats stop at once, without telling the scheduler.
    pub fn kill_executor(&mut self, i: usize) -> Result<()> {
        let thread =
            self.executors.get_mut(i).ok_or_else(|| Error::InvalidInput(format!("no executor {i}")))?;
        thread.stop();
        Ok(())
    }

    /// Stops the executors, then the scheduler.
    pub fn stop(mut self) {
        self.stop_all();
    }

    fn stop_all(&mut self) {
        for t in &mut self.executors {
            t.stop();
        }
        self.scheduler_thread.stop();
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// A free loopback port: bound, read and released. Another process could take it in
/// between; the executor then fails to start and [`LocalCluster::start`] says so.
fn free_port() -> Result<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| Error::Cluster(format!("a free loopback port: {e}")))
}

/// A role running on a thread of its own, in a runtime of its own.
struct RoleThread {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    /// Why the role ended by itself, if it did.
    exit: Arc<Mutex<Option<String>>>,
}

impl RoleThread {
    fn spawn<F, Fut>(name: String, role: F) -> Result<Self>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<()>>,
    {
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let exit = Arc::new(Mutex::new(None));
        let exit_slot = exit.clone();
        let thread = std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || {
                let record = |why: String| {
                    if let Ok(mut slot) = exit_slot.lock() {
                        *slot = Some(why);
                    }
                };
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name(name)
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => return record(format!("no runtime: {e}")),
                };
                runtime.block_on(async move {
                    tokio::select! {
                        result = role() => record(match result {
                            Ok(()) => "stopped".into(),
                            Err(e) => e.to_string(),
                        }),
                        _ = stop_rx => {}
                    }
                });
                // Whatever the role spawned dies with the runtime, without a goodbye.
                runtime.shutdown_background();
            })
            .map_err(|e| Error::Cluster(format!("a thread: {e}")))?;
        Ok(RoleThread { stop: Some(stop_tx), thread: Some(thread), exit })
    }

    fn exited(&self) -> Option<String> {
        self.exit.lock().ok().and_then(|s| s.clone())
    }

    fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
