//! Assembles the services behind the guard and serves them until shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use arrow_flight::flight_service_server::FlightServiceServer;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

use crate::app::App;
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
use crate::pb::registry_service_server::RegistryServiceServer;
use crate::push_svc::PushApi;
use crate::registry_svc::RegistryApi;

/// Limits of a server.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest request or response message, bytes.
    pub max_message_bytes: usize,
    /// Calls served at once; one more gets RESOURCE_EXHAUSTED.
    pub max_concurrent_calls: usize,
    /// Longest a call may take (a client's shorter `grpc-timeout` wins).
    pub deadline: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_message_bytes: 64 << 20, max_concurrent_calls: 256, deadline: Duration::from_secs(300) }
    }
}

/// Serves every service on `listener` until `shutdown` resolves, then stops taking calls and
/// lets the ones in flight finish.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let n = limits.max_message_bytes;
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<RegistryServiceServer<RegistryApi>>().await;
    health.set_serving::<OnlineServiceServer<OnlineApi>>().await;
    health.set_serving::<OfflineServiceServer<OfflineApi>>().await;
    health.set_serving::<MaterializeServiceServer<MaterializeApi>>().await;
    health.set_serving::<PushServiceServer<PushApi>>().await;
    health.set_serving::<FlightServiceServer<FlightApi>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1();
    let reflection = match reflection {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::warn!(error = %e, "server reflection is off: the descriptor set did not load");
            None
        }
    };
    let guard = GuardLayer {
        permits: Arc::new(Semaphore::new(limits.max_concurrent_calls)),
        max_concurrent: limits.max_concurrent_calls,
        deadline: limits.deadline,
        max_message_bytes: n,
        app: app.clone(),
    };
    let watcher = crate::app::spawn_registry_watcher(&app);
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let router = Server::builder()
        .layer(guard)
        .add_service(health_service)
        .add_optional_service(reflection)
        .add_service(
            RegistryServiceServer::new(RegistryApi(app.clone()))
                .max_decoding_message_size(n)
                .max_encoding_message_size(n),
        )
        .add_service(
            OnlineServiceServer::new(OnlineApi(app.clone()))
                .max_decoding_message_size(n)
                .max_encoding_message_size(n),
        )
        .add_service(
            OfflineServiceServer::new(OfflineApi(app.clone()))
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
            FlightServiceServer::new(FlightApi(app.clone()))
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
    result
}
