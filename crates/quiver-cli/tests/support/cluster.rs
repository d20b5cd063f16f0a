//! A Ballista cluster of `quiver ballista` processes on loopback ports: one scheduler and
//! executors, each killed when the cluster is dropped. Their standard error (WARN and worse,
//! or what `QUIVER_LOG` asks for) is kept in `scheduler.log` and `executor-N.log` in the
//! work folder.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use quiver_ballista::SchedulerAddr;

const QUIVER: &str = env!("CARGO_BIN_EXE_quiver");

/// A child process killed when dropped.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The scheduler, then its executors.
pub struct Cluster {
    /// `df://127.0.0.1:PORT`.
    pub url: String,
    pub scheduler: Process,
    pub executors: Vec<Process>,
}

/// `quiver ARGS` with `env` added, no input and no output but its standard error when
/// `stderr` is piped.
fn quiver(args: &[&str], env: &[(String, String)], stderr: Stdio) -> Command {
    let mut command = Command::new(QUIVER);
    command
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    command
}

impl Cluster {
    /// A scheduler on a free port and `executors` executors registered with it, each with
    /// `env` added to its environment (the `AWS_*` of an object store, say) and its work
    /// folder under `work`.
    pub async fn start(executors: usize, env: &[(String, String)], work: &Path) -> Cluster {
        Self::start_with(executors, env, work, None).await
    }

    /// [`Cluster::start`], with `liveness` (the executors' heartbeat and the scheduler's
    /// executor timeout, as flags take them) instead of the defaults.
    pub async fn start_with(
        executors: usize,
        env: &[(String, String)],
        work: &Path,
        liveness: Option<(&str, &str)>,
    ) -> Cluster {
        let mut args = vec!["ballista", "scheduler", "--bind", "127.0.0.1:0"];
        if let Some((_, timeout)) = liveness {
            args.extend(["--executor-timeout", timeout]);
        }
        let mut scheduler = Process(quiver(&args, env, Stdio::piped()).spawn().unwrap());
        // It prints the address it listens on.
        let stderr = scheduler.0.stderr.take().unwrap();
        let (lines_tx, lines_rx) = mpsc::channel::<String>();
        std::fs::create_dir_all(work).unwrap();
        let mut log = std::fs::File::create(work.join("scheduler.log")).unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = writeln!(log, "{line}");
                let _ = lines_tx.send(line);
            }
        });
        let listening = loop {
            let line =
                lines_rx.recv_timeout(Duration::from_secs(20)).expect("the scheduler said where it listens");
            if let Some(addr) = line.strip_prefix("quiver ballista scheduler listening on ") {
                break addr.to_string();
            }
        };
        let url = format!("df://{listening}");
        let mut started = Vec::new();
        for i in 0..executors {
            let (bind, grpc) = (format!("127.0.0.1:{}", free_port()), free_port().to_string());
            let work = work.join(format!("executor-{i}"));
            let mut args = vec!["--memory-limit", "256MiB", "ballista", "executor", "--scheduler", &url];
            args.extend(["--bind", &bind, "--grpc-port", &grpc, "--concurrent-tasks", "2"]);
            args.extend(["--work-dir", work.to_str().unwrap()]);
            if let Some((heartbeat, _)) = liveness {
                args.extend(["--heartbeat", heartbeat]);
            }
            let log = std::fs::File::create(work.with_extension("log")).unwrap();
            started.push(Process(quiver(&args, env, Stdio::from(log)).spawn().unwrap()));
        }
        let mut cluster = Cluster { url, scheduler, executors: started };
        let addr = SchedulerAddr::parse(&cluster.url).unwrap();
        let executors_ref = &mut cluster.executors;
        quiver_ballista::health::wait_for_executors(&addr, executors, Duration::from_secs(30), || {
            for e in executors_ref.iter_mut() {
                if let Ok(Some(status)) = e.0.try_wait() {
                    return Err(quiver_ballista::Error::Cluster(format!("an executor exited: {status}")));
                }
            }
            Ok(())
        })
        .await
        .unwrap();
        cluster
    }
}
