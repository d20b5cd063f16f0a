//! `quiver serve`: the gRPC API (with Arrow Flight), Prometheus metrics, and with
//! `--http-addr` the HTTP endpoint (JSON API and web catalog).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use quiver_core::config::{Config, TlsConfig};
use quiver_offline::check::CheckLimits;
use quiver_offline::materialize::{MIN_ROWS_PER_WRITER_VAR, rows_per_writer_setting};
use quiver_offline::session::SessionOverrides;
use quiver_server::domain::ProjectOptions;
use quiver_server::{App, Limits};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::failure::Failure;

/// What `quiver serve` takes.
#[derive(clap::Args, Debug)]
pub struct ServeOpts {
    /// Address for gRPC and Arrow Flight. Beyond loopback it needs tokens (or --insecure)
    #[arg(long, default_value = "127.0.0.1:6566")]
    pub addr: SocketAddr,
    /// Address for Prometheus metrics over HTTP (/metrics); none when absent
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Address for the HTTP endpoint: JSON API (/v1/…), web catalog (/), /healthz, and
    /// /metrics unless --metrics-addr is given; off when absent [config: server.http_addr].
    /// Beyond loopback it needs tokens (or --insecure)
    #[arg(long, value_name = "ADDR")]
    pub http_addr: Option<SocketAddr>,
    /// One admin token (clients send `authorization: Bearer <token>`), besides the config's
    /// server.tokens; overrides the config's server.auth_token
    #[arg(long, env = "QUIVER_AUTH_TOKEN", hide_env_values = true)]
    pub auth_token: Option<String>,
    /// Serve beyond loopback without any token (anyone who reaches the port can apply)
    #[arg(long)]
    pub insecure: bool,
    /// TLS certificate chain (PEM); with --tls-key the server speaks only TLS [config: server.tls.cert]
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) [config: server.tls.key]
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// CA certificates (PEM) clients' certificates must be signed by (mutual TLS)
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// Largest request or response message
    #[arg(long, default_value = "64MiB", value_name = "SIZE")]
    pub max_message_size: String,
    /// Calls other than online reads and uploads served at once; more get RESOURCE_EXHAUSTED
    #[arg(long, default_value_t = Limits::default().max_concurrent_calls)]
    pub max_concurrent_calls: usize,
    /// Online reads served at once (a share no other call can take)
    #[arg(long, default_value_t = Limits::default().max_concurrent_online)]
    pub max_concurrent_online: usize,
    /// Training-set uploads served at once
    #[arg(long, default_value_t = Limits::default().max_concurrent_uploads)]
    pub max_concurrent_uploads: usize,
    /// Calls one connection may have in flight
    #[arg(long, default_value_t = Limits::default().max_calls_per_connection)]
    pub max_calls_per_connection: usize,
    /// Uploads one connection may have in flight
    #[arg(long, default_value_t = Limits::default().max_uploads_per_connection)]
    pub max_uploads_per_connection: usize,
    /// Connections held at once
    #[arg(long, default_value_t = Limits::default().max_connections)]
    pub max_connections: usize,
    /// Close a connection with no call in flight for this long
    #[arg(long, default_value = "5m")]
    pub idle_timeout: String,
    /// End an upload that sends nothing for this long
    #[arg(long, default_value = "30s")]
    pub upload_idle_timeout: String,
    /// Longest a call may run (clients may ask for less), e.g. 30s, 5m
    #[arg(long, default_value = "5m")]
    pub deadline: String,
    /// Most values (features × entity rows) one online read may ask for
    #[arg(long, default_value_t = Limits::default().max_online_values)]
    pub max_online_values: usize,
    /// Most rows a training-set spine may hold
    #[arg(long, default_value_t = Limits::default().max_spine_rows)]
    pub max_spine_rows: u64,
    /// How long a training set can be fetched with its ticket after it was built
    #[arg(long, default_value = "1h")]
    pub ticket_ttl: String,
    /// Time limit for checking definitions sent to Plan and Apply against the lake
    #[arg(long, default_value = "60s")]
    pub plan_time_limit: String,
    /// Memory limit for checking definitions sent to Plan and Apply
    #[arg(long, default_value = "256MiB", value_name = "SIZE")]
    pub plan_memory_limit: String,
    /// Refuse pushed rows whose event time is further than this in the future
    #[arg(long, default_value = "5m", value_name = "DURATION")]
    pub push_max_future: String,
    /// Lifetime of the materialization leases this server takes (renewed every third of it)
    #[arg(long, env = "QUIVER_LEASE_TTL", default_value = "30s")]
    pub lease_ttl: String,
    /// Run the declared drift checks (each view with `drift:`: its newest successful window
    /// against `drift.reference`, or the window before it) this often and export their
    /// scores as metrics, e.g. 1h (never when not given)
    #[arg(long, value_name = "DURATION")]
    pub check_drift_every: Option<String>,
    /// Folder for training sets built for clients (locked by this server) [default: <project>/.quiver/server]
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
}

fn usage(message: String) -> Failure {
    Failure { code: 2, ..Failure::new(message) }
}

/// A positive duration flag ("30s", "5m", "1h").
pub fn duration(flag: &str, text: &str) -> Result<Duration, Failure> {
    let ttl: quiver_core::duration::Ttl = text.parse().map_err(|e| usage(format!("--{flag}: {e}")))?;
    if ttl.seconds() == 0 {
        return Err(usage(format!("--{flag} must be above zero")));
    }
    Ok(Duration::from_secs(ttl.seconds()))
}

/// `--check-drift-every`: at least a second (one check runs at a time, so a short period
/// only keeps the checks back to back), at most a week.
pub fn drift_check_every(text: &str) -> Result<Duration, Failure> {
    let every = duration("check-drift-every", text)?;
    if every > Duration::from_secs(7 * 24 * 3600) {
        return Err(usage("--check-drift-every must be at most 7d".into()));
    }
    Ok(every)
}

/// `--lease-ttl`: a duration within the lifetimes leases accept.
pub fn lease_ttl(text: &str) -> Result<Duration, Failure> {
    use quiver_offline::lease::{MAX_TTL, MIN_TTL};
    let ttl = duration("lease-ttl", text)?;
    if !(MIN_TTL..=MAX_TTL).contains(&ttl) {
        return Err(usage(format!(
            "--lease-ttl (QUIVER_LEASE_TTL) must be between {}s and {}s",
            MIN_TTL.as_secs(),
            MAX_TTL.as_secs()
        )));
    }
    Ok(ttl)
}

fn size(flag: &str, text: &str) -> Result<usize, Failure> {
    quiver_offline::session::parse_size(text).map_err(|e| usage(format!("--{flag}: {e}")))
}

impl ServeOpts {
    fn limits(&self) -> Result<Limits, Failure> {
        let limits = Limits {
            max_message_bytes: size("max-message-size", &self.max_message_size)?,
            max_concurrent_calls: self.max_concurrent_calls,
            max_concurrent_online: self.max_concurrent_online,
            max_concurrent_uploads: self.max_concurrent_uploads,
            max_calls_per_connection: self.max_calls_per_connection,
            max_uploads_per_connection: self.max_uploads_per_connection,
            max_connections: self.max_connections,
            idle_timeout: duration("idle-timeout", &self.idle_timeout)?,
            upload_idle_timeout: duration("upload-idle-timeout", &self.upload_idle_timeout)?,
            deadline: duration("deadline", &self.deadline)?,
            max_online_values: self.max_online_values,
            max_spine_rows: self.max_spine_rows,
        };
        for (flag, value) in [
            ("max-concurrent-calls", limits.max_concurrent_calls),
            ("max-concurrent-online", limits.max_concurrent_online),
            ("max-concurrent-uploads", limits.max_concurrent_uploads),
            ("max-calls-per-connection", limits.max_calls_per_connection),
            ("max-uploads-per-connection", limits.max_uploads_per_connection),
            ("max-connections", limits.max_connections),
            ("max-online-values", limits.max_online_values),
        ] {
            if value == 0 {
                return Err(usage(format!("--{flag} must be above zero")));
            }
        }
        Ok(limits)
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn termination() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; stop with Ctrl-C");
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

pub async fn serve(mut config: Config, opts: ServeOpts, memory_limit: usize) -> Result<(), Failure> {
    let limits = opts.limits()?;
    if let (Some(cert), Some(key)) = (&opts.tls_cert, &opts.tls_key) {
        config.server.tls =
            Some(TlsConfig { cert: cert.clone(), key: key.clone(), client_ca: opts.tls_client_ca.clone() });
    }
    let work_dir = opts.work_dir.clone().unwrap_or_else(|| config.root.join(".quiver/server"));
    let options = ProjectOptions {
        ticket_ttl: duration("ticket-ttl", &opts.ticket_ttl)?,
        check_limits: CheckLimits {
            time: duration("plan-time-limit", &opts.plan_time_limit)?,
            memory: size("plan-memory-limit", &opts.plan_memory_limit)?,
        },
        rows_per_writer: rows_per_writer_setting(std::env::var(MIN_ROWS_PER_WRITER_VAR).ok().as_deref())?,
        session_overrides: SessionOverrides::from_vars(std::env::vars()),
        lease_ttl: lease_ttl(&opts.lease_ttl)?,
        push_max_future: duration("push-max-future", &opts.push_max_future)?,
        drift_check_every: opts.check_drift_every.as_deref().map(drift_check_every).transpose()?,
        engine: crate::offline::open_engine(&config, "quiver serve")?,
        ..ProjectOptions::new(memory_limit, work_dir)
    };
    let engine = options.engine.describe();
    let token =
        opts.auth_token.clone().filter(|t| !t.is_empty()).or_else(|| config.server.auth_token.clone());
    let secured = token.is_some() || !config.server.tokens.is_empty();
    let tls = config.server.tls.is_some();
    let http_addr = opts.http_addr.or(config.server.http_addr);
    // Open by default is how a feature store gets wiped: beyond loopback, tokens or --insecure.
    if !opts.addr.ip().is_loopback() && !secured && !opts.insecure {
        return Err(usage(format!(
            "refusing to serve on {} without authentication: anyone who reaches it could apply \
             definitions and delete online data. Configure server.tokens (or --auth-token / \
             QUIVER_AUTH_TOKEN), listen on 127.0.0.1, or pass --insecure",
            opts.addr
        )));
    }
    if let Some(http) = http_addr
        && !http.ip().is_loopback()
        && !secured
        && !opts.insecure
    {
        return Err(usage(format!(
            "refusing to serve HTTP on {http} without authentication: configure server.tokens (or \
             --auth-token / QUIVER_AUTH_TOKEN) and server.reads_need_token, listen on 127.0.0.1, or pass --insecure"
        )));
    }
    if !opts.addr.ip().is_loopback() && secured && !tls {
        tracing::warn!(addr = %opts.addr, "tokens travel in clear text beyond loopback: configure TLS (--tls-cert/--tls-key)");
    }
    if let Some(http) = http_addr.filter(|a| !a.ip().is_loopback() && secured) {
        tracing::warn!(addr = %http, "the HTTP endpoint is plain HTTP: beyond loopback, put a TLS-terminating proxy in front of it");
    }
    let project = config.project.clone();
    let app = App::open_with(config, token, options)
        .await
        .map_err(|e| Failure::new(format!("cannot start the server: {e}")))?;
    let listener = TcpListener::bind(opts.addr)
        .await
        .map_err(|e| Failure::new(format!("cannot listen on {}: {e}", opts.addr)))?;
    let (stop, stopped) = watch::channel(false);
    let wait = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let metrics = match opts.metrics_addr {
        Some(addr) => {
            let l = TcpListener::bind(addr)
                .await
                .map_err(|e| Failure::new(format!("cannot listen on {addr} for metrics: {e}")))?;
            Some(tokio::spawn(quiver_server::metrics::serve_metrics(l, app.clone(), wait(stopped.clone()))))
        }
        None => None,
    };
    let http = match http_addr {
        Some(addr) => {
            let l = TcpListener::bind(addr)
                .await
                .map_err(|e| Failure::new(format!("cannot listen on {addr} for HTTP: {e}")))?;
            let with_metrics = opts.metrics_addr.is_none();
            Some(tokio::spawn(quiver_server::http::serve_http(
                app.clone(),
                l,
                limits.clone(),
                with_metrics,
                wait(stopped.clone()),
            )))
        }
        None => None,
    };
    tracing::info!(
        project = %project,
        addr = %opts.addr,
        metrics = ?opts.metrics_addr,
        http = ?http_addr,
        auth = secured,
        tls,
        offline_engine = %engine,
        "serving gRPC and Arrow Flight"
    );
    eprintln!(
        "quiver: serving project '{project}' on {} (gRPC + Arrow Flight{}){}{}{}",
        opts.addr,
        if tls { ", TLS" } else { "" },
        opts.metrics_addr.map_or(String::new(), |m| format!(", metrics on http://{m}/metrics")),
        http_addr.map_or(String::new(), |h| format!(", catalog and JSON API on http://{h}/")),
        if secured { ", calls are checked against the configured tokens" } else { "" }
    );
    tokio::spawn(async move {
        termination().await;
        let _ = stop.send(true);
    });
    quiver_server::serve(app, listener, limits, wait(stopped))
        .await
        .map_err(|e| Failure::new(format!("the server failed: {e}")))?;
    if let Some(m) = metrics {
        let _ = m.await;
    }
    if let Some(h) = http {
        let _ = h.await;
    }
    eprintln!("quiver: stopped");
    Ok(())
}
