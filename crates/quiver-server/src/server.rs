//! Assembles the services behind the guard and serves them until shutdown: over TLS when
//! the config has `server.tls` (mutual TLS with `client_ca`), with connections counted and
//! closed when idle ([`crate::conn`]), and every call through the guard ([`crate::guard`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use arrow_flight::flight_service_server::FlightServiceServer;
use tokio::net::TcpListener;
use tonic::transport::server::ServerTlsConfig;
use tonic::transport::{Certificate, Identity, Server};

use crate::app::App;
use crate::domain::training::UploadLimits;
use crate::flight_svc::FlightApi;
use crate::guard::GuardLayer;
use crate::materialize_svc::MaterializeApi;
use crate::offline_svc::OfflineApi;
use crate::online_svc::OnlineApi;
use crate::pb;
use crate::pb::materialize_service_server::MaterializeServiceServer;
use crate::pb::offline_service_server::OfflineServiceServer;
use crate::pb::online_service_server::OnlineServiceServer;
use crate::pb::push_service_server::PushServiceServer;
use crate::pb::quality_service_server::QualityServiceServer;
use crate::pb::registry_service_server::RegistryServiceServer;
use crate::push_svc::PushApi;
use crate::quality_svc::QualityApi;
use crate::registry_svc::RegistryApi;

/// Limits of a server. Every one is checked before work starts; over a limit a call gets
/// `RESOURCE_EXHAUSTED` (or `DEADLINE_EXCEEDED` for time) naming it.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest request or response message, bytes.
    pub max_message_bytes: usize,
    /// Calls other than online reads and uploads served at once.
    pub max_concurrent_calls: usize,
    /// Online reads served at once: a share of their own, so nothing else can starve them.
    pub max_concurrent_online: usize,
    /// Training-set uploads (`GetHistoricalFeatures`, Flight `DoPut`) served at once.
    pub max_concurrent_uploads: usize,
    /// Calls one connection may have in flight (also its HTTP/2 stream limit).
    pub max_calls_per_connection: usize,
    /// Uploads one connection may have in flight.
    pub max_uploads_per_connection: usize,
    /// Connections held open at once; one more is closed when accepted.
    pub max_connections: usize,
    /// A connection with no call in flight for this long is closed.
    pub idle_timeout: Duration,
    /// An upload that sends nothing for this long is ended.
    pub upload_idle_timeout: Duration,
    /// Longest a call may take (a client's shorter `grpc-timeout` wins).
    pub deadline: Duration,
    /// Most values (features × entity rows) one online read may ask for.
    pub max_online_values: usize,
    /// Most rows a training-set spine may hold.
    pub max_spine_rows: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 64 << 20,
            max_concurrent_calls: 64,
            max_concurrent_online: 256,
            max_concurrent_uploads: 8,
            max_calls_per_connection: 128,
            max_uploads_per_connection: 2,
            max_connections: 1024,
            idle_timeout: Duration::from_secs(300),
            upload_idle_timeout: Duration::from_secs(30),
            deadline: Duration::from_secs(300),
            max_online_values: 250_000,
            max_spine_rows: 100_000_000,
        }
    }
}

impl Limits {
    /// The bounds on one training-set upload.
    pub fn upload(&self) -> UploadLimits {
        UploadLimits { max_rows: self.max_spine_rows, idle: self.upload_idle_timeout }
    }
}

/// The TLS settings of the gRPC server from its config files, read and checked.
fn tls_config(tls: &quiver_core::config::TlsConfig) -> Result<ServerTlsConfig, String> {
    let read = |what: &str, path: &std::path::Path| {
        std::fs::read(path).map_err(|e| format!("TLS {what} {}: {e}", path.display()))
    };
    let cert = read("certificate", &tls.cert)?;
    let key = read("key", &tls.key)?;
    let mut config = ServerTlsConfig::new().identity(Identity::from_pem(cert, key));
    if let Some(ca) = &tls.client_ca {
        config =
            config.client_ca_root(Certificate::from_pem(read("client CA", ca)?)).client_auth_optional(false);
    }
    Ok(config)
}

/// Why a server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The TLS files cannot be read or used.
    #[error("{0}")]
    Tls(String),
    /// The transport failed while serving.
    #[error("{0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Serves every service on `listener` until `shutdown` resolves, then stops taking calls and
/// lets the ones in flight finish. TLS comes from the app's config (`server.tls`).
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let n = limits.max_message_bytes;
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<RegistryServiceServer<RegistryApi>>().await;
    health.set_serving::<OnlineServiceServer<OnlineApi>>().await;
    health.set_serving::<OfflineServiceServer<OfflineApi>>().await;
    health.set_serving::<MaterializeServiceServer<MaterializeApi>>().await;
    health.set_serving::<PushServiceServer<PushApi>>().await;
    health.set_serving::<QualityServiceServer<QualityApi>>().await;
    health.set_serving::<FlightServiceServer<FlightApi>>().await;
    let mut builder = Server::builder();
    if let Some(tls) = &app.project().config().server.tls {
        quiver_online::ensure_crypto_provider();
        builder = builder
            .tls_config(tls_config(tls).map_err(ServeError::Tls)?)
            .map_err(|e| ServeError::Tls(format!("the TLS certificate or key cannot be used: {e}")))?;
    }
    let (reflection_v1, reflection_v1alpha) = reflection();
    // Leftover training sets are deleted only now that this server owns its port.
    app.project().training().clear_leftovers();
    let guard = GuardLayer::new(app.clone(), &limits);
    let watcher = crate::app::spawn_registry_watcher(&app);
    let sweeper = spawn_training_sweeper(&app);
    let drift_checker = app.project().drift_check_every().map(|every| spawn_drift_checker(&app, every));
    let incoming = crate::conn::accept(
        listener,
        limits.max_connections,
        limits.idle_timeout,
        app.metrics().rejected.clone(),
    );
    let per_connection = u32::try_from(limits.max_calls_per_connection).unwrap_or(u32::MAX);
    let router = builder
        .max_concurrent_streams(per_connection)
        .http2_keepalive_interval(Some(Duration::from_secs(60)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
        .layer(guard)
        .add_service(health_service)
        .add_optional_service(reflection_v1)
        .add_optional_service(reflection_v1alpha)
        .add_service(
            RegistryServiceServer::new(RegistryApi(app.clone()))
                .max_decoding_message_size(n)
                .max_encoding_message_size(n),
        )
        .add_service(
            OnlineServiceServer::new(OnlineApi { app: app.clone(), max_cells: limits.max_online_values })
                .max_decoding_message_size(n)
                .max_encoding_message_size(n),
        )
        .add_service(
            OfflineServiceServer::new(OfflineApi { app: app.clone(), limits: limits.upload() })
                .max_decoding_message_size(n)
                .max_encoding_message_size(n),
        )
        .add_service(
            MaterializeServiceServer::new(MaterializeApi(app.clone()))
                .max_decoding_message_size(n)
                .max_encoding_message_size(n),
        )
        .add_service(
            PushServiceServer::new(PushApi(app.clone()))
                .max_decoding_message_size(n)
                .max_encoding_message_size(n),
        )
        .add_service(
            QualityServiceServer::new(QualityApi(app.clone()))
                .max_decoding_message_size(n)
                .max_encoding_message_size(n),
        )
        .add_service(
            FlightServiceServer::new(FlightApi { app: app.clone(), limits: limits.upload() })
                .max_decoding_message_size(n)
                .max_encoding_message_size(n),
        );
    let result = router
        .serve_with_incoming_shutdown(incoming, async move {
            shutdown.await;
            tracing::info!("shutting down: no new calls; waiting for calls in flight");
            health.set_not_serving::<OnlineServiceServer<OnlineApi>>().await;
        })
        .await;
    watcher.abort();
    sweeper.abort();
    if let Some(task) = drift_checker {
        task.abort();
    }
    Ok(result?)
}

type Reflection<T> = Option<T>;

/// Server reflection in both versions clients speak (`v1`; `v1alpha` for grpcurl before
/// 1.8.8, Postman and Python's `grpc_reflection`), listing every service: Quiver's, Arrow
/// Flight's and health checking.
fn reflection() -> (
    Reflection<
        tonic_reflection::server::v1::ServerReflectionServer<
            impl tonic_reflection::server::v1::ServerReflection,
        >,
    >,
    Reflection<
        tonic_reflection::server::v1alpha::ServerReflectionServer<
            impl tonic_reflection::server::v1alpha::ServerReflection,
        >,
    >,
) {
    let builder = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(pb::FLIGHT_FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let warn = |e: tonic_reflection::server::Error| {
        tracing::warn!(error = %e, "server reflection is off: the descriptor sets did not load");
    };
    let v1 = builder().build_v1().map_err(warn).ok();
    let v1alpha = builder().build_v1alpha().map_err(warn).ok();
    (v1, v1alpha)
}

/// Runs the views' declared drift checks every `every` (the first one at once) and puts
/// their scores in the metrics.
fn spawn_drift_checker(app: &Arc<App>, every: Duration) -> tokio::task::JoinHandle<()> {
    let weak = Arc::downgrade(app);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(app) = weak.upgrade() else { return };
            let checked = app.project().check_declared_drift().await;
            for (view, outcome) in &checked {
                match outcome {
                    Ok(r) if !r.drifted().is_empty() => {
                        tracing::warn!(view = %view, features = ?r.drifted(), "drift check: features drifted")
                    }
                    Ok(_) => tracing::debug!(view = %view, "drift check: no drift"),
                    Err(e) => tracing::warn!(view = %view, error = %e, "drift check failed"),
                }
            }
            app.record_drift_round(checked);
        }
    })
}

/// Deletes expired training sets and the oldest job records from the offline store, now
/// and then (every server sharing the store does; deleting twice is harmless).
fn spawn_training_sweeper(app: &Arc<App>) -> tokio::task::JoinHandle<()> {
    let weak = Arc::downgrade(app);
    let every = app.project().training().sweep_every();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(app) = weak.upgrade() else { return };
            match app.project().training().sweep().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(sets = n, "expired training sets deleted"),
                Err(e) => tracing::warn!(error = %e, "cannot sweep expired training sets"),
            }
            if let Err(e) = app.project().jobs().prune().await {
                tracing::warn!(error = %e, "cannot delete old job records");
            }
        }
    })
}
