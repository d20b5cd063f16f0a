//! The HTTP endpoint of `quiver serve --http-addr`: a JSON API for clients outside gRPC, a
//! server-rendered web catalog, `/healthz` and (unless metrics have their own address)
//! `/metrics`. It runs in the same process as the gRPC server and reads the same [`App`]:
//! the same registry version, stores, tokens and limits.
//!
//! Layout:
//! - this file — the accept loop, routing, the checks every request passes (token, per
//!   connection and server-wide concurrency, deadline, body size) and the security headers
//!   every answer carries;
//! - [`reply`] — answers and the one table from error codes to HTTP statuses;
//! - [`json`] — `POST /v1/online`, `GET /v1/views`, `/v1/views/NAME`, `/v1/services`;
//! - [`openapi`] — `/v1/openapi.json`;
//! - [`html`], [`catalog`], [`lineage`], [`history`], [`svg`] — the catalog pages;
//! - `assets/` — the stylesheet, the search box's script and the icon, served under `/static/`.
//!
//! Connections come through [`crate::conn::accept`], so the HTTP listener has the same
//! connection cap, idle timeout and per-connection call limit as the gRPC one. Requests are
//! plain HTTP/1.1 or HTTP/2 without TLS: beyond loopback, put a TLS-terminating proxy in
//! front (tokens travel in the `authorization` header).

mod catalog;
mod history;
mod html;
mod json;
mod lineage;
mod openapi;
mod reply;
mod svg;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderValue, Method as HttpMethod, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tonic::transport::server::Connected;

use crate::app::App;
use crate::auth::{Access, Method};
use crate::conn::ConnInfo;
use crate::domain::Error;
use crate::server::Limits;

pub use reply::http_status;
use reply::{Failure, Reply};

/// Largest request body, bytes: an online read of the most entity rows a request may hold
/// ([`crate::domain::online::MAX_ENTITY_ROWS`]) with long string keys fits many times over.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// Longest a client may take to send a request's headers (HTTP/1): a client trickling
/// them cannot hold a connection for the whole idle timeout.
const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Largest request line and headers, bytes (HTTP/1).
const MAX_HEAD_BYTES: usize = 64 << 10;

/// The stylesheet and the search box's script (a file, so the Content-Security-Policy needs
/// no inline script).
const CATALOG_CSS: &str = include_str!("assets/catalog.css");
const CATALOG_JS: &str = include_str!("assets/catalog.js");
/// The catalog's icon (browsers ask for one on every page).
const FAVICON: &str = include_str!("assets/favicon.svg");

/// Where a request goes.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Health,
    Metrics,
    Online,
    Views,
    View(String),
    Services,
    OpenApi,
    Static(&'static str, &'static str),
    Index,
    ViewPage(String),
    ServicePage(String),
    Lineage,
    History,
    Version(u64),
    Runs,
}

impl Route {
    /// The route of a method and path, or the failure to answer (unknown path, wrong
    /// method). `metrics`: whether `/metrics` is served here.
    fn find(method: &HttpMethod, path: &str, metrics: bool) -> Result<Route, Failure> {
        // Only a name a definition can have reaches the registry (and so its "not in
        // registry version" answer): anything else is an unknown page, and is not repeated.
        let name = |rest: &str| -> Result<String, Failure> {
            if !quiver_core::repo::is_valid_name(rest) {
                return Err(Failure::not_found(path));
            }
            Ok(rest.to_string())
        };
        let route = match path {
            "/healthz" => Route::Health,
            "/metrics" if metrics => Route::Metrics,
            "/v1/online" => Route::Online,
            "/v1/views" => Route::Views,
            "/v1/services" => Route::Services,
            "/v1/openapi.json" => Route::OpenApi,
            "/static/catalog.css" => Route::Static(CATALOG_CSS, "text/css; charset=utf-8"),
            "/static/catalog.js" => Route::Static(CATALOG_JS, "text/javascript; charset=utf-8"),
            "/static/favicon.svg" | "/favicon.ico" => Route::Static(FAVICON, "image/svg+xml"),
            "/" => Route::Index,
            "/lineage" => Route::Lineage,
            "/history" => Route::History,
            "/runs" => Route::Runs,
            p => {
                if let Some(rest) = p.strip_prefix("/v1/views/") {
                    Route::View(name(rest)?)
                } else if let Some(rest) = p.strip_prefix("/views/") {
                    Route::ViewPage(name(rest)?)
                } else if let Some(rest) = p.strip_prefix("/services/") {
                    Route::ServicePage(name(rest)?)
                } else if let Some(rest) = p.strip_prefix("/history/") {
                    Route::Version(rest.parse().map_err(|_| Failure::not_found(path))?)
                } else {
                    return Err(Failure::not_found(path));
                }
            }
        };
        let wanted = if route == Route::Online { HttpMethod::POST } else { HttpMethod::GET };
        if *method != wanted && !(wanted == HttpMethod::GET && *method == HttpMethod::HEAD) {
            return Err(Failure::method_not_allowed(&wanted, route.is_api()));
        }
        Ok(route)
    }

    /// The route's label in the request metrics: its path pattern.
    fn label(&self) -> &'static str {
        match self {
            Route::Health => "/healthz",
            Route::Metrics => "/metrics",
            Route::Online => "/v1/online",
            Route::Views => "/v1/views",
            Route::View(_) => "/v1/views/{name}",
            Route::Services => "/v1/services",
            Route::OpenApi => "/v1/openapi.json",
            Route::Static(..) => "/static",
            Route::Index => "/",
            Route::ViewPage(_) => "/views/{name}",
            Route::ServicePage(_) => "/services/{name}",
            Route::Lineage => "/lineage",
            Route::History => "/history",
            Route::Version(_) => "/history/{version}",
            Route::Runs => "/runs",
        }
    }

    /// Whether failures are answered as JSON (the API) rather than as a page.
    fn is_api(&self) -> bool {
        matches!(
            self,
            Route::Online | Route::Views | Route::View(_) | Route::Services | Route::OpenApi | Route::Health
        )
    }

    /// What the route needs of a caller, named as in logs and refusals.
    fn method(&self) -> Method {
        let (label, access) = match self {
            Route::Health => ("HTTP /healthz", Access::Open),
            Route::Metrics => ("HTTP /metrics", Access::Open),
            Route::OpenApi => ("HTTP /v1/openapi.json", Access::Open),
            Route::Static(..) => ("HTTP /static", Access::Open),
            Route::Online => ("HTTP POST /v1/online", Access::Read),
            Route::Views | Route::View(_) => ("HTTP GET /v1/views", Access::Read),
            Route::Services => ("HTTP GET /v1/services", Access::Read),
            Route::Index
            | Route::ViewPage(_)
            | Route::ServicePage(_)
            | Route::Lineage
            | Route::History
            | Route::Version(_)
            | Route::Runs => ("the web catalog", Access::Read),
        };
        Method { label, access }
    }
}

/// The shared state of the HTTP endpoint.
struct Http {
    app: Arc<App>,
    limits: Limits,
    metrics: bool,
    /// Online reads served at once, and everything else: shares of their own, as in gRPC.
    online_slots: Semaphore,
    other_slots: Semaphore,
}

/// Serves the HTTP endpoint on `listener` until `shutdown` resolves; then stops accepting,
/// lets requests in flight finish and closes idle connections. `metrics`: also serve
/// `/metrics` (when metrics have no address of their own).
pub async fn serve_http(
    app: Arc<App>,
    listener: TcpListener,
    limits: Limits,
    metrics: bool,
    shutdown: impl Future<Output = ()> + Send,
) {
    let http = Arc::new(Http {
        online_slots: Semaphore::new(limits.max_concurrent_online),
        other_slots: Semaphore::new(limits.max_concurrent_calls),
        app: app.clone(),
        limits: limits.clone(),
        metrics,
    });
    let incoming = crate::conn::accept(
        listener,
        limits.max_connections,
        limits.idle_timeout,
        app.metrics().rejected.clone(),
    );
    tokio::pin!(incoming);
    tokio::pin!(shutdown);
    let (stop, stopping) = watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => break,
            next = incoming.next() => match next {
                Some(Ok(stream)) => stream,
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "HTTP connection not accepted");
                    continue;
                }
                None => break,
            },
        };
        // Reap finished connection tasks so the set does not grow with every connection.
        while connections.try_join_next().is_some() {}
        let info = stream.connect_info();
        let http = http.clone();
        let mut stopping = stopping.clone();
        connections.spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let http = http.clone();
                let info = info.clone();
                async move { Ok::<_, Infallible>(http.answer(request, &info).await) }
            });
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_HEAD_BYTES);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            let stop_asked = async move {
                // The watch guard is dropped here, before the connection is awaited again.
                let _ = stopping.wait_for(|s| *s).await;
            };
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                _ = stop_asked => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = ended {
                tracing::debug!(error = %e, "HTTP connection ended");
            }
        });
    }
    let _ = stop.send(true);
    while connections.join_next().await.is_some() {}
}

impl Http {
    /// The answer to one request, with the headers every answer carries.
    async fn answer(&self, request: Request<Incoming>, conn: &ConnInfo) -> Response<Full<Bytes>> {
        let (parts, body) = request.into_parts();
        let head = parts.method == HttpMethod::HEAD;
        let mut body = Some(body);
        let started = std::time::Instant::now();
        let mut label = "unknown";
        let mut response = match self.route(&parts, &mut body, conn, &mut label).await {
            Ok(reply) => reply.into_response(),
            Err(failure) => {
                if let Some(unread) = body.take() {
                    drain(&parts, unread).await;
                }
                failure.into_response()
            }
        };
        let metrics = self.app.metrics();
        metrics.http_latency.with_label_values(&[label]).observe(started.elapsed().as_secs_f64());
        metrics.http_requests.with_label_values(&[label, response.status().as_str()]).inc();
        if head {
            *response.body_mut() = Full::new(Bytes::new());
        }
        reply::secure(&mut response);
        response
    }

    /// The answer to a request; `body` is taken when read, `label` set to the route's
    /// metrics label once the route is known.
    async fn route(
        &self,
        parts: &http::request::Parts,
        body: &mut Option<Incoming>,
        conn: &ConnInfo,
        label: &mut &'static str,
    ) -> Result<Reply, Failure> {
        let path = parts.uri.path();
        let route = Route::find(&parts.method, path, self.metrics)?;
        *label = route.label();
        let api = route.is_api();
        let method = route.method();
        let authorization = parts.headers.get(header::AUTHORIZATION).map(HeaderValue::as_bytes);
        let principal = self
            .app
            .auth()
            .authorize(Some(method), authorization)
            .map_err(|e| Failure::from_error(e, api))?;
        if let Some(p) = &principal {
            tracing::debug!(caller = %p.name, path = %path, "HTTP request");
        }
        let busy = |what: &str| {
            Failure::from_error(
                Error::Limit(format!("the server is serving its limit of {what} at once: retry shortly")),
                api,
            )
        };
        let _call = conn
            .state
            .start_call(false, self.limits.max_calls_per_connection, self.limits.max_uploads_per_connection)
            .map_err(|_| busy("requests on one connection"))?;
        let slots = if route == Route::Online { &self.online_slots } else { &self.other_slots };
        let _slot = slots.try_acquire().map_err(|_| busy("requests"))?;
        let unread = if route == Route::Online { body.take() } else { None };
        // The deadline covers reading the body too: a client trickling it holds a pool slot
        // for no longer than any other request.
        let work = async move {
            let body = match unread {
                Some(b) => Some(read_json_body(parts, b).await?),
                None => None,
            };
            self.serve(route, body).await
        };
        let deadline = self.limits.deadline;
        match tokio::time::timeout(deadline, work).await {
            Ok(answer) => answer,
            Err(_) => Err(Failure::from_error(
                Error::Timeout(format!("the request took longer than the server's deadline of {deadline:?}")),
                api,
            )),
        }
    }

    async fn serve(&self, route: Route, body: Option<Bytes>) -> Result<Reply, Failure> {
        let app = &self.app;
        let page = |r: Result<String, Error>| r.map(Reply::html).map_err(|e| Failure::from_error(e, false));
        let api = |r: Result<serde_json::Value, Error>| {
            r.map(Reply::json).map_err(|e| Failure::from_error(e, true))
        };
        match route {
            Route::Health => Ok(Reply::json(serde_json::json!({"status": "serving"}))),
            Route::Metrics => Ok(Reply::text(app.render_metrics().await, "text/plain; version=0.0.4")),
            Route::OpenApi => Ok(Reply::json(openapi::document())),
            Route::Static(text, content_type) => Ok(Reply::asset(text, content_type)),
            Route::Online => json::online(app, body.unwrap_or_default(), self.limits.max_online_values)
                .await
                .map(Reply::json_text)
                .map_err(|e| Failure::from_error(e, true)),
            Route::Views => api(json::views(app)),
            Route::View(name) => api(json::view(app, &name)),
            Route::Services => api(json::services(app)),
            Route::Index => page(catalog::index(app)),
            Route::ViewPage(name) => page(catalog::view(app, &name).await),
            Route::ServicePage(name) => page(catalog::service(app, &name)),
            Route::Lineage => page(lineage::page(app)),
            Route::History => page(history::versions(app).await),
            Route::Version(v) => page(history::version(app, v).await),
            Route::Runs => page(history::runs(app).await),
        }
    }
}

/// How long a refused request's body is read (and dropped) before the answer is sent.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(2);

/// Reads and drops the body of a request refused before it was read, when it is within
/// the size limit: closing a connection with unread bytes makes the kernel reset it, and
/// the client would then lose the answer saying why it was refused.
async fn drain(parts: &http::request::Parts, body: Incoming) {
    if declared_length(parts).is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return;
    }
    let _ = tokio::time::timeout(DRAIN_TIME, Limited::new(body, MAX_BODY_BYTES).collect()).await;
}

fn declared_length(parts: &http::request::Parts) -> Option<u64> {
    parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok())
}

/// The body of a JSON request: `application/json`, at most [`MAX_BODY_BYTES`].
async fn read_json_body(parts: &http::request::Parts, body: Incoming) -> Result<Bytes, Failure> {
    let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let is_json = content_type
        .and_then(|t| t.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        drain(parts, body).await;
        return Err(Failure::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            tonic::Code::InvalidArgument,
            "send the body as JSON with `content-type: application/json`".into(),
            true,
        ));
    }
    let too_large = || {
        Failure::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            tonic::Code::ResourceExhausted,
            format!(
                "the body is larger than the server's limit of {MAX_BODY_BYTES} bytes: split the request"
            ),
            true,
        )
    };
    if declared_length(parts).is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(e) => Err(Failure::new(
            StatusCode::BAD_REQUEST,
            tonic::Code::InvalidArgument,
            format!("the body could not be read: {e}"),
            true,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_methods_find_their_routes() {
        let get = HttpMethod::GET;
        assert_eq!(
            Route::find(&get, "/views/driver_stats", false).unwrap(),
            Route::ViewPage("driver_stats".into())
        );
        assert_eq!(Route::find(&get, "/history/3", false).unwrap(), Route::Version(3));
        assert_eq!(Route::find(&HttpMethod::POST, "/v1/online", false).unwrap(), Route::Online);
        assert_eq!(Route::find(&HttpMethod::HEAD, "/", false).unwrap(), Route::Index);
        for bad in ["/views/", "/views/a/b", "/views/a%3Cb", "/views/a.b", "/history/x", "/nope", "/metrics"]
        {
            assert_eq!(Route::find(&get, bad, false).unwrap_err().status(), StatusCode::NOT_FOUND, "{bad}");
        }
        assert_eq!(Route::find(&get, "/metrics", true).unwrap(), Route::Metrics);
        let long = format!("/views/{}", "a".repeat(129));
        assert_eq!(Route::find(&get, &long, false).unwrap_err().status(), StatusCode::NOT_FOUND);
        assert_eq!(
            Route::find(&get, "/v1/online", false).unwrap_err().status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(
            Route::find(&HttpMethod::POST, "/", false).unwrap_err().status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
    }
}
