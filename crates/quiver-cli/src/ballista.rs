//! `quiver ballista scheduler|executor`: the roles of an Apache Ballista cluster that runs
//! Quiver's offline plans, with Quiver's operators (the codec) and object stores (opened from
//! this process's `AWS_*`, `GOOGLE_*` and `AZURE_*` variables) installed. Client, scheduler
//! and executors come from one `quiver` binary, so their Ballista version and codec order
//! always agree.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use quiver_ballista::SchedulerAddr;
use quiver_ballista::config::{ExecutorOptions, Liveness, MAX_CONCURRENT_TASKS, Policy, SchedulerOptions};
use quiver_ballista::stores::ObjectStores;

use crate::failure::Failure;

#[derive(clap::Subcommand)]
pub enum BallistaCommand {
    /// Run a Ballista scheduler that accepts Quiver's plans
    Scheduler(SchedulerArgs),
    /// Run a Ballista executor that runs Quiver's operators and reads Quiver's object stores
    Executor(ExecutorArgs),
}

/// How executors get their tasks; scheduler and executors must agree.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum PolicyArg {
    /// The scheduler sends tasks to executors (Ballista's default; a job can wait forever
    /// after an executor is lost mid-stage)
    Push,
    /// Executors poll the scheduler for tasks (the default)
    Pull,
}

impl From<PolicyArg> for Policy {
    fn from(p: PolicyArg) -> Self {
        match p {
            PolicyArg::Push => Policy::Push,
            PolicyArg::Pull => Policy::Pull,
        }
    }
}

#[derive(clap::Args)]
pub struct SchedulerArgs {
    /// Address to listen on: gRPC, /healthz and /readyz (port 0: any free port, printed)
    #[arg(long, default_value = "127.0.0.1:50050", value_name = "ADDR")]
    bind: SocketAddr,
    /// Host name executors and clients reach the scheduler by [default: the bind address;
    /// localhost when binding all addresses]
    #[arg(long, value_name = "HOST")]
    external_host: Option<String>,
    #[arg(long, value_enum, default_value = "pull")]
    policy: PolicyArg,
    /// An executor silent this long is given up and its tasks run elsewhere (5s to 1d; more
    /// than the executors' --heartbeat)
    #[arg(long, default_value = "180s", value_name = "DURATION")]
    executor_timeout: String,
}

#[derive(clap::Args)]
pub struct ExecutorArgs {
    /// The scheduler, df://HOST:PORT
    #[arg(long, value_name = "df://HOST:PORT")]
    scheduler: String,
    /// Address of the executor's Arrow Flight service (shuffle and result fetches)
    #[arg(long, default_value = "127.0.0.1:50051", value_name = "ADDR")]
    bind: SocketAddr,
    /// Port of the gRPC service the scheduler pushes tasks to [default: the --bind port + 1]
    #[arg(long, value_name = "PORT")]
    grpc_port: Option<u16>,
    /// Host name the scheduler, other executors and clients reach this executor by
    /// [default: the bind address; required when binding all addresses]
    #[arg(long, value_name = "HOST")]
    external_host: Option<String>,
    /// Folder for shuffle files and spills [default: a temporary folder, removed at exit]
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
    /// Tasks run at once [default: the number of CPUs]
    #[arg(long, value_name = "N")]
    concurrent_tasks: Option<usize>,
    #[arg(long, value_enum, default_value = "pull")]
    policy: PolicyArg,
    /// How long to wait for the scheduler to accept connections at start (30s, 2m)
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    scheduler_wait: String,
    /// How often the executor tells the scheduler it is alive (1s to 1d; less than the
    /// scheduler's --executor-timeout)
    #[arg(long, default_value = "60s", value_name = "DURATION")]
    heartbeat: String,
}

/// Whole seconds of a duration flag, 1 s to a day.
fn seconds(flag: &str, text: &str) -> Result<u64, Failure> {
    let d = crate::serve::duration(flag, text)?;
    let s = d.as_secs();
    if d.subsec_nanos() != 0 || !(1..=86_400).contains(&s) {
        return Err(usage(format!("--{flag} {text}: expected whole seconds from 1s to 1d")));
    }
    Ok(s)
}

fn usage(message: String) -> Failure {
    Failure { code: 2, ..Failure::new(message) }
}

fn failure(e: quiver_ballista::Error) -> Failure {
    match e {
        quiver_ballista::Error::InvalidInput(m) => usage(m),
        other => Failure::new(other.to_string()),
    }
}

pub async fn run(command: BallistaCommand, memory_limit: usize) -> Result<(), Failure> {
    quiver_online::ensure_crypto_provider();
    match command {
        BallistaCommand::Scheduler(args) => scheduler(args).await,
        BallistaCommand::Executor(args) => executor(args, memory_limit).await,
    }
}

async fn scheduler(args: SchedulerArgs) -> Result<(), Failure> {
    let mut options = SchedulerOptions::new(args.bind);
    if let Some(host) = args.external_host {
        options.external_host = host;
    }
    options.policy = args.policy.into();
    let executor_timeout_seconds = seconds("executor-timeout", &args.executor_timeout)?;
    if executor_timeout_seconds < 5 {
        return Err(usage(format!("--executor-timeout {}: at least 5s", args.executor_timeout)));
    }
    // The scheduler looks for silent executors a few times per timeout; the heartbeat is
    // the executors' own setting (this value only satisfies the check that it is shorter).
    options.liveness = Liveness {
        executor_timeout_seconds,
        expire_interval_seconds: (executor_timeout_seconds / 5).clamp(1, 15),
        heartbeat_seconds: Liveness::default().heartbeat_seconds.min(executor_timeout_seconds - 1),
    };
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .map_err(|e| Failure::new(format!("the scheduler cannot listen on {}: {e}", args.bind)))?;
    let bound = listener.local_addr().map_err(|e| Failure::new(format!("the scheduler's listener: {e}")))?;
    eprintln!("quiver ballista scheduler listening on {bound}");
    let serve = quiver_ballista::serve::serve_scheduler_on(listener, options, ObjectStores::from_env());
    tokio::select! {
        result = serve => result.map_err(failure),
        () = shutdown_signal() => {
            eprintln!("quiver ballista scheduler on {bound}: stopping");
            Ok(())
        }
    }
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

async fn executor(args: ExecutorArgs, memory_limit: usize) -> Result<(), Failure> {
    let scheduler = SchedulerAddr::parse(&args.scheduler).map_err(failure)?;
    let scheduler_wait = crate::serve::duration("scheduler-wait", &args.scheduler_wait)?;
    if scheduler_wait > Duration::from_secs(3600) {
        return Err(usage(format!("--scheduler-wait {}: at most 1h", args.scheduler_wait)));
    }
    let flight_port = args.bind.port();
    if flight_port == 0 {
        return Err(usage(
            "--bind: the executor's port cannot be 0 (the scheduler and clients are told it)".into(),
        ));
    }
    let grpc_port = match args.grpc_port {
        Some(p) => p,
        None => flight_port.checked_add(1).ok_or_else(|| {
            usage(format!("--bind port {flight_port}: give --grpc-port, {flight_port} + 1 is no port"))
        })?,
    };
    let external_host = match args.external_host {
        Some(h) => h,
        None if args.bind.ip().is_unspecified() => {
            return Err(usage(format!(
                "--bind {} listens on every address: say with --external-host which one the scheduler and \
                 clients reach this executor by",
                args.bind
            )));
        }
        None => args.bind.ip().to_string(),
    };
    let heartbeat_seconds = seconds("heartbeat", &args.heartbeat)?;
    if heartbeat_seconds >= Liveness::default().executor_timeout_seconds {
        return Err(usage(format!(
            "--heartbeat {}: shorter than the scheduler's executor timeout, at most {}s",
            args.heartbeat,
            Liveness::default().executor_timeout_seconds - 1
        )));
    }
    let concurrent_tasks = match args.concurrent_tasks {
        Some(n) if n == 0 || n > MAX_CONCURRENT_TASKS => {
            return Err(usage(format!("--concurrent-tasks {n}: expected 1 to {MAX_CONCURRENT_TASKS}")));
        }
        Some(n) => n,
        None => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    };
    // A temporary folder lives until this function returns.
    let (work_dir, _temporary) = match args.work_dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .map_err(|e| Failure::new(format!("--work-dir {}: {e}", dir.display())))?;
            (dir, None)
        }
        None => {
            let tmp = tempfile::Builder::new()
                .prefix("quiver-executor-")
                .tempdir()
                .map_err(|e| Failure::new(format!("a temporary work folder: {e}")))?;
            (tmp.path().to_path_buf(), Some(tmp))
        }
    };
    let options = ExecutorOptions {
        scheduler: scheduler.clone(),
        bind_host: args.bind.ip(),
        external_host,
        flight_port,
        grpc_port,
        work_dir,
        concurrent_tasks,
        policy: args.policy.into(),
        liveness: Liveness { heartbeat_seconds, ..Liveness::default() },
        memory_pool_bytes: Some(memory_limit as u64),
    };
    eprintln!(
        "quiver ballista executor: Flight on {}, gRPC on port {grpc_port}, scheduler {scheduler}, {concurrent_tasks} tasks at once",
        args.bind
    );
    quiver_ballista::serve::serve_executor(options, ObjectStores::from_env(), scheduler_wait)
        .await
        .map_err(failure)
}
