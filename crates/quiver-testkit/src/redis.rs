//! Real Redis servers for tests: each test starts its own `redis-server` (or a 3-node
//! cluster) on free loopback ports, in a temporary folder, and stops it when dropped.
//! `redis-server` and `redis-cli` must be installed (a prerequisite of the tests).

#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free port whose cluster bus port (+10000) is free too.
pub fn free_port() -> u16 {
    loop {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

fn ping(port: u16, password: Option<&str>) -> bool {
    cli(port, password)
        .arg("ping")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("PONG"))
        .unwrap_or(false)
}

/// The value of `--requirepass` among a server's arguments.
fn required_password<S: AsRef<str>>(args: &[S]) -> Option<&str> {
    let at = args.iter().position(|a| a.as_ref() == "--requirepass")?;
    args.get(at + 1).map(AsRef::as_ref)
}

/// `redis-cli` for the server on `port`, authenticating when it has a password.
fn cli(port: u16, password: Option<&str>) -> Command {
    let mut command = Command::new("redis-cli");
    command.args(["-p", &port.to_string()]);
    if let Some(password) = password {
        command.args(["-a", password, "--no-auth-warning"]);
    }
    command
}

pub fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One `redis-server` process.
pub struct RedisServer {
    pub port: u16,
    /// The TLS port, when started with [`RedisServer::start_tls`].
    pub tls_port: Option<u16>,
    child: Child,
    _dir: tempfile::TempDir,
    extra: Vec<String>,
}

impl RedisServer {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> Self {
        Self::start_on(free_port(), extra)
    }

    pub fn start_on(port: u16, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (a prerequisite of the tests)");
        wait_until(&format!("redis-server on {port}"), || ping(port, required_password(extra)));
        RedisServer {
            port,
            tls_port: None,
            child,
            _dir: dir,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// A server that also listens with TLS (the server certificate of `certs`; clients need
    /// no certificate). The plaintext port stays for readiness checks.
    pub fn start_tls(certs: &crate::tls::TestCerts) -> Self {
        Self::start_tls_with(certs, &[])
    }

    /// [`RedisServer::start_tls`] with more arguments.
    pub fn start_tls_with(certs: &crate::tls::TestCerts, more: &[&str]) -> Self {
        let tls_port = free_port();
        let (cert, key, ca) = (certs.server_cert(), certs.server_key(), certs.ca());
        let extra = [
            "--tls-port".to_string(),
            tls_port.to_string(),
            "--tls-cert-file".into(),
            cert.display().to_string(),
            "--tls-key-file".into(),
            key.display().to_string(),
            "--tls-ca-cert-file".into(),
            ca.display().to_string(),
            "--tls-auth-clients".into(),
            "no".into(),
        ];
        let extra: Vec<&str> = extra.iter().map(String::as_str).chain(more.iter().copied()).collect();
        let mut server = Self::start_with(&extra);
        server.tls_port = Some(tls_port);
        server
    }

    /// The `rediss://` url of the TLS port.
    pub fn tls_url(&self) -> String {
        format!("rediss://localhost:{}/0", self.tls_port.expect("started with start_tls"))
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Stops the server (the port stays reserved for a restart).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same port, empty.
    pub fn restart(&mut self) {
        self.stop();
        let extra: Vec<&str> = self.extra.iter().map(String::as_str).collect();
        let mut again = RedisServer::start_on(self.port, &extra);
        again.tls_port = self.tls_port;
        *self = again;
    }

    /// The password clients give (`--requirepass` among the server's arguments), if any.
    pub fn password(&self) -> Option<&str> {
        required_password(&self.extra)
    }

    pub fn cli(&self, args: &[&str]) -> String {
        let o = cli(self.port, self.password()).args(args).output().unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A 3-primary Redis Cluster.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

const CLUSTER_ARGS: [&str; 4] = ["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"];

impl RedisCluster {
    pub fn start() -> Self {
        Self::create((0..3).map(|_| RedisServer::start_with(&CLUSTER_ARGS)).collect())
    }

    /// A cluster whose nodes ask clients (and each other) for `password`.
    pub fn start_with_password(password: &str) -> Self {
        let args: Vec<&str> = CLUSTER_ARGS
            .iter()
            .copied()
            .chain(["--requirepass", password, "--masterauth", password])
            .collect();
        Self::create((0..3).map(|_| RedisServer::start_with(&args)).collect())
    }

    /// A cluster whose nodes also listen with TLS, and talk to each other over TLS; a client
    /// on a TLS port is told the other nodes' TLS ports.
    pub fn start_tls(certs: &crate::tls::TestCerts) -> Self {
        let args: Vec<&str> = CLUSTER_ARGS
            .iter()
            .copied()
            .chain(["--tls-cluster", "yes", "--tls-replication", "yes"])
            .collect();
        Self::create((0..3).map(|_| RedisServer::start_tls_with(certs, &args)).collect())
    }

    fn create(nodes: Vec<RedisServer>) -> Self {
        let addrs: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        let out = cli(nodes[0].port, nodes[0].password())
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .unwrap();
        assert!(out.status.success(), "cluster create: {}", String::from_utf8_lossy(&out.stdout));
        for n in &nodes {
            wait_until("cluster_state:ok", || n.cli(&["cluster", "info"]).contains("cluster_state:ok"));
        }
        RedisCluster { nodes }
    }

    pub fn url(&self) -> String {
        let hosts: Vec<String> = self.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        format!("redis+cluster://{}", hosts.join(","))
    }

    /// The `rediss+cluster://` url of the TLS ports (started with [`RedisCluster::start_tls`]).
    pub fn tls_url(&self) -> String {
        let hosts: Vec<String> =
            self.nodes.iter().map(|n| format!("127.0.0.1:{}", n.tls_port.expect("a TLS cluster"))).collect();
        format!("rediss+cluster://{}", hosts.join(","))
    }
}
