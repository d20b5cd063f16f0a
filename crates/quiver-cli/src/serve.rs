//! `quiver serve`: the gRPC API (with Arrow Flight) and Prometheus metrics.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use quiver_core::config::Config;
use quiver_server::{App, Limits};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::failure::Failure;

/// What `quiver serve` was asked.
pub struct ServeArgs {
    pub addr: SocketAddr,
    pub metrics_addr: Option<SocketAddr>,
    pub auth_token: Option<String>,
    pub max_message_bytes: usize,
    pub max_concurrent_calls: usize,
    pub deadline: Duration,
    pub work_dir: Option<PathBuf>,
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

pub async fn serve(config: Config, args: ServeArgs, memory_limit: usize) -> Result<(), Failure> {
    let work_dir = args.work_dir.unwrap_or_else(|| config.root.join(".quiver/server"));
    let token = args.auth_token.filter(|t| !t.is_empty()).or_else(|| config.auth_token.clone());
    let project = config.project.clone();
    let secured = token.is_some();
    let app = App::open(config, memory_limit, token, work_dir)
        .await
        .map_err(|s| Failure::new(format!("cannot start the server: {}", s.message())))?;
    let listener = TcpListener::bind(args.addr)
        .await
        .map_err(|e| Failure::new(format!("cannot listen on {}: {e}", args.addr)))?;
    let (stop, stopped) = watch::channel(false);
    let wait = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let metrics = match args.metrics_addr {
        Some(addr) => {
            let l = TcpListener::bind(addr)
                .await
                .map_err(|e| Failure::new(format!("cannot listen on {addr} for metrics: {e}")))?;
            Some(tokio::spawn(quiver_server::metrics::serve_metrics(l, app.clone(), wait(stopped.clone()))))
        }
        None => None,
    };
    tracing::info!(
        project = %project,
        addr = %args.addr,
        metrics = ?args.metrics_addr,
        auth = secured,
        "serving gRPC and Arrow Flight"
    );
    eprintln!(
        "quiver: serving project '{project}' on {} (gRPC + Arrow Flight){}{}",
        args.addr,
        args.metrics_addr.map_or(String::new(), |m| format!(", metrics on http://{m}/metrics")),
        if secured { ", writing calls need the bearer token" } else { "" }
    );
    tokio::spawn(async move {
        termination().await;
        let _ = stop.send(true);
    });
    let limits = Limits {
        max_message_bytes: args.max_message_bytes,
        max_concurrent_calls: args.max_concurrent_calls,
        deadline: args.deadline,
    };
    quiver_server::serve(app, listener, limits, wait(stopped))
        .await
        .map_err(|e| Failure::new(format!("the server failed: {e}")))?;
    if let Some(m) = metrics {
        let _ = m.await;
    }
    eprintln!("quiver: stopped");
    Ok(())
}
