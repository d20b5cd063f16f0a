//! Configurations of Quiver's schedulers and executors: Ballista's processes with Quiver's
//! codec, Quiver's object stores and bounded, validated settings.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use ballista_core::config::TaskSchedulingPolicy;
use ballista_core::extension::SessionConfigExt;
use ballista_core::{ConfigProducer, RuntimeProducer};
use ballista_executor::executor_process::ExecutorProcessConfig;
use ballista_scheduler::SessionBuilder;
use ballista_scheduler::config::SchedulerConfig;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::SessionConfig;

use crate::addr::SchedulerAddr;
use crate::codec::{logical_codec, physical_codec};
use crate::error::{Error, Result};
use crate::stores::ObjectStores;

/// Most tasks one executor runs at once.
pub const MAX_CONCURRENT_TASKS: usize = 1024;
/// Longest liveness interval or timeout accepted, in seconds (a day).
const MAX_SECONDS: u64 = 86_400;

/// What every session on a Quiver cluster starts from: Ballista's defaults (no round-robin
/// repartitions, no dynamic filters); the client's settings are applied on top.
pub fn config_producer() -> ConfigProducer {
    Arc::new(SessionConfig::new_with_ballista)
}

/// Executors' runtimes: spill files in `work_dir`, and Quiver's object stores (opened on
/// first use from the executor's own settings, shared by all sessions).
pub fn runtime_producer(stores: ObjectStores, work_dir: PathBuf) -> RuntimeProducer {
    Arc::new(move |_config: &SessionConfig| {
        RuntimeEnvBuilder::new()
            .with_temp_file_path(&work_dir)
            .with_object_store_registry(stores.registry())
            .build_arc()
    })
}

/// The scheduler's sessions: Ballista's default session, with Quiver's object stores.
pub fn session_builder(stores: ObjectStores) -> SessionBuilder {
    Arc::new(move |config: SessionConfig| {
        let state = ballista_core::utils::default_session_builder(config)?;
        let runtime = RuntimeEnvBuilder::new().with_object_store_registry(stores.registry()).build_arc()?;
        Ok(SessionStateBuilder::new_from_existing(state).with_runtime_env(runtime).build())
    })
}

/// How executors learn about work: they poll the scheduler for tasks (Quiver's default), or
/// the scheduler pushes tasks to them (Ballista's default). Scheduler and executors must
/// agree.
///
/// Quiver defaults to polling because Ballista 55's push scheduler cannot recover from an
/// executor lost in the middle of a stage: it rolls the stage back and cancels the tasks the
/// surviving executors were running for it, but the refund of those tasks' slots is looked
/// up in the rolled-back stage, finds nothing, and is lost; with every slot of the survivors
/// spent, the re-run stage is never offered to anyone and the job waits forever. Polling
/// executors count their own free slots, so the job is retried or fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    Push,
    Pull,
}

impl Policy {
    fn ballista(self) -> TaskSchedulingPolicy {
        match self {
            Policy::Push => TaskSchedulingPolicy::PushStaged,
            Policy::Pull => TaskSchedulingPolicy::PullStaged,
        }
    }
}

/// Liveness: how often executors report, and when the scheduler gives one up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Liveness {
    /// Seconds between an executor's heartbeats (push mode).
    pub heartbeat_seconds: u64,
    /// An executor silent this long is removed and its tasks run elsewhere.
    pub executor_timeout_seconds: u64,
    /// How often the scheduler looks for silent executors.
    pub expire_interval_seconds: u64,
}

impl Default for Liveness {
    /// Ballista's defaults: a lost executor is noticed within about three minutes.
    fn default() -> Self {
        Liveness { heartbeat_seconds: 60, executor_timeout_seconds: 180, expire_interval_seconds: 15 }
    }
}

impl Liveness {
    /// Quick detection, for tests and small clusters: a lost executor is noticed in 5–6 s.
    pub fn quick() -> Self {
        Liveness { heartbeat_seconds: 1, executor_timeout_seconds: 5, expire_interval_seconds: 1 }
    }

    fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("heartbeat interval", self.heartbeat_seconds),
            ("executor timeout", self.executor_timeout_seconds),
            ("expiry check interval", self.expire_interval_seconds),
        ] {
            if v == 0 || v > MAX_SECONDS {
                return Err(Error::InvalidInput(format!("{name} of {v} s: expected 1 to {MAX_SECONDS} s")));
            }
        }
        if self.executor_timeout_seconds <= self.heartbeat_seconds {
            return Err(Error::InvalidInput(format!(
                "executor timeout ({} s) must be longer than the heartbeat interval ({} s)",
                self.executor_timeout_seconds, self.heartbeat_seconds
            )));
        }
        Ok(())
    }
}

/// A scheduler of a Quiver cluster.
#[derive(Clone, Debug)]
pub struct SchedulerOptions {
    /// Where it listens (gRPC, `/healthz` and `/readyz` share the port).
    pub bind: SocketAddr,
    /// The host name executors and clients reach it by.
    pub external_host: String,
    pub policy: Policy,
    pub liveness: Liveness,
    /// Executors needed before `/readyz` answers 200.
    pub min_ready_executors: usize,
}

impl SchedulerOptions {
    pub fn new(bind: SocketAddr) -> Self {
        let external_host =
            if bind.ip().is_unspecified() { "localhost".into() } else { bind.ip().to_string() };
        SchedulerOptions {
            bind,
            external_host,
            policy: Policy::Pull,
            liveness: Liveness::default(),
            min_ready_executors: 1,
        }
    }
}

/// Ballista's scheduler configuration for `options`, with Quiver's codecs, session builder and
/// object stores.
pub fn scheduler_config(options: &SchedulerOptions, stores: ObjectStores) -> Result<SchedulerConfig> {
    options.liveness.validate()?;
    check_host("scheduler external host", &options.external_host)?;
    if options.min_ready_executors > 10_000 {
        return Err(Error::InvalidInput(format!(
            "{} executors before ready: expected at most 10000",
            options.min_ready_executors
        )));
    }
    let mut config = SchedulerConfig {
        bind_host: options.bind.ip().to_string(),
        bind_port: options.bind.port(),
        external_host: options.external_host.clone(),
        scheduling_policy: options.policy.ballista(),
        executor_timeout_seconds: options.liveness.executor_timeout_seconds,
        expire_dead_executor_interval_seconds: options.liveness.expire_interval_seconds,
        no_executors_grace_period_seconds: options.liveness.executor_timeout_seconds,
        min_ready_executors: options.min_ready_executors,
        ..SchedulerConfig::default()
    };
    config.override_physical_codec = Some(physical_codec());
    config.override_logical_codec = Some(logical_codec());
    config.override_session_builder = Some(session_builder(stores));
    config.override_config_producer = Some(config_producer());
    Ok(config)
}

/// An executor of a Quiver cluster.
#[derive(Clone, Debug)]
pub struct ExecutorOptions {
    pub scheduler: SchedulerAddr,
    /// The address its services listen on.
    pub bind_host: std::net::IpAddr,
    /// The host name the scheduler, other executors and clients reach it by.
    pub external_host: String,
    /// Arrow Flight: shuffle and result fetches. Never 0: the number is advertised.
    pub flight_port: u16,
    /// gRPC for tasks pushed by the scheduler (push mode). Never 0.
    pub grpc_port: u16,
    /// Shuffle files and spills.
    pub work_dir: PathBuf,
    /// Tasks run at once.
    pub concurrent_tasks: usize,
    pub policy: Policy,
    pub liveness: Liveness,
    /// The executor's memory pool in bytes, shared by its tasks; the host's memory when absent.
    pub memory_pool_bytes: Option<u64>,
}

/// Ballista's executor configuration for `options`, with Quiver's codecs, runtime (object
/// stores, spill folder) and session defaults.
pub fn executor_config(options: &ExecutorOptions, stores: ObjectStores) -> Result<ExecutorProcessConfig> {
    options.liveness.validate()?;
    check_host("executor external host", &options.external_host)?;
    if options.flight_port == 0 || options.grpc_port == 0 {
        return Err(Error::InvalidInput(
            "executor ports cannot be 0: the scheduler and clients are told these numbers".into(),
        ));
    }
    if options.flight_port == options.grpc_port {
        return Err(Error::InvalidInput(format!(
            "the executor's Flight and gRPC ports are both {}",
            options.flight_port
        )));
    }
    if options.concurrent_tasks == 0 || options.concurrent_tasks > MAX_CONCURRENT_TASKS {
        return Err(Error::InvalidInput(format!(
            "{} concurrent tasks: expected 1 to {MAX_CONCURRENT_TASKS}",
            options.concurrent_tasks
        )));
    }
    if options.memory_pool_bytes == Some(0) {
        return Err(Error::InvalidInput("a memory pool of 0 bytes".into()));
    }
    let work_dir = options.work_dir.to_str().ok_or_else(|| {
        Error::InvalidInput(format!("work dir {} is not valid UTF-8", options.work_dir.display()))
    })?;
    if !options.work_dir.is_dir() {
        return Err(Error::InvalidInput(format!("work dir {} is not a folder", options.work_dir.display())));
    }
    let mut config = ExecutorProcessConfig {
        bind_host: options.bind_host.to_string(),
        external_host: Some(options.external_host.clone()),
        port: options.flight_port,
        grpc_port: options.grpc_port,
        scheduler_host: options.scheduler.host.clone(),
        scheduler_port: options.scheduler.port,
        // One attempt: Ballista 55's retry loop (a value > 0) never ends, as it measures
        // the elapsed time from a fresh Instant. Callers wait for the scheduler themselves.
        scheduler_connect_timeout_seconds: 0,
        vcores: options.concurrent_tasks,
        task_scheduling_policy: options.policy.ballista(),
        work_dir: Some(work_dir.to_string()),
        executor_heartbeat_interval_seconds: options.liveness.heartbeat_seconds,
        memory_pool_size: options.memory_pool_bytes,
        print_thread_info: false,
        ..ExecutorProcessConfig::default()
    };
    config.override_physical_codec = Some(physical_codec());
    config.override_logical_codec = Some(logical_codec());
    config.override_runtime_producer = Some(runtime_producer(stores, options.work_dir.clone()));
    config.override_config_producer = Some(config_producer());
    Ok(config)
}

/// A host name or IP address: non-empty, at most 253 characters, no spaces, slashes or
/// colons outside IPv6 brackets.
fn check_host(what: &str, host: &str) -> Result<()> {
    let ok = !host.is_empty()
        && host.len() <= 253
        && (host.parse::<std::net::IpAddr>().is_ok()
            || host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!("{what} '{host}' is not a host name or IP address")))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn executor(dir: &std::path::Path) -> ExecutorOptions {
        ExecutorOptions {
            scheduler: SchedulerAddr::parse("df://127.0.0.1:50050").unwrap(),
            bind_host: "127.0.0.1".parse().unwrap(),
            external_host: "127.0.0.1".into(),
            flight_port: 50051,
            grpc_port: 50052,
            work_dir: dir.to_path_buf(),
            concurrent_tasks: 2,
            policy: Policy::Push,
            liveness: Liveness::quick(),
            memory_pool_bytes: None,
        }
    }

    #[test]
    fn configs_carry_quiver_codec_and_stores() {
        let dir = tempfile::tempdir().unwrap();
        let c = executor_config(&executor(dir.path()), ObjectStores::from_env()).unwrap();
        assert!(c.override_physical_codec.is_some() && c.override_runtime_producer.is_some());
        assert_eq!((c.port, c.grpc_port, c.vcores), (50051, 50052, 2));
        let s = scheduler_config(
            &SchedulerOptions::new("127.0.0.1:50050".parse().unwrap()),
            ObjectStores::from_env(),
        )
        .unwrap();
        assert!(s.override_physical_codec.is_some() && s.override_session_builder.is_some());
        assert!(matches!(s.scheduling_policy, TaskSchedulingPolicy::PullStaged));
    }

    #[test]
    fn bad_executor_settings_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let stores = ObjectStores::from_env();
        type Change = fn(&mut ExecutorOptions);
        let cases: [(Change, &str); 8] = [
            (|o| o.flight_port = 0, "cannot be 0"),
            (|o| o.grpc_port = o.flight_port, "both"),
            (|o| o.concurrent_tasks = 0, "concurrent tasks"),
            (|o| o.concurrent_tasks = MAX_CONCURRENT_TASKS + 1, "concurrent tasks"),
            (|o| o.work_dir = "/nonexistent/quiver".into(), "not a folder"),
            (|o| o.external_host = "a b".into(), "external host"),
            (|o| o.liveness.executor_timeout_seconds = 1, "longer than"),
            (|o| o.memory_pool_bytes = Some(0), "0 bytes"),
        ];
        for (change, expected) in cases {
            let mut o = executor(dir.path());
            change(&mut o);
            let e = match executor_config(&o, stores.clone()) {
                Ok(_) => panic!("accepted, expected {expected}"),
                Err(e) => e.to_string(),
            };
            assert!(e.contains(expected), "{e}");
        }
    }
}
