//! One tower layer in front of every service: who may call, how many calls run at once,
//! the per-call deadline, the message-size status, and the call metrics.
//!
//! - **Auth**: the method's access (the table in [`crate::auth`]) against the bearer token;
//!   the caller's [`Principal`] goes into the request's extensions for the handler (who
//!   applied, who owns a training set). Calls that change something are written to the
//!   audit log (`quiver::audit`) with the token's name, never the token.
//! - **Concurrency, in shares**: online reads, uploads (training-set spines) and everything
//!   else each have their own pool, so a flood of one kind cannot take the others' slots; a
//!   connection may also hold only so many calls and uploads at once. Over a limit the call
//!   gets `RESOURCE_EXHAUSTED` at once (it is not queued), naming the limit. A call holds
//!   its pool permit until its response starts (an upload's handler reads the whole upload
//!   first, so an upload holds it throughout) and its connection slot until the response body
//!   ends, so a long stream (`Health/Watch`, a big `DoGet`) weighs on its own connection only.
//! - **Deadline**: a call ends with `DEADLINE_EXCEEDED` after the shorter of the client's
//!   `grpc-timeout` and the server's own limit. For a streaming response the deadline covers
//!   the time to its first message (the stream then runs to its end).
//! - **Size**: a request message over the server's cap is refused by tonic with
//!   `OUT_OF_RANGE`; it is reported as `RESOURCE_EXHAUSTED`, the code gRPC uses for that.
//! - **Metrics**: calls by method and code, latency, calls in flight. Methods are labelled
//!   from the fixed table of methods the server offers; any other path counts as `unknown`,
//!   so random paths cannot grow the metrics. A call's code is read from the response headers
//!   (where every error returned by a handler travels); a stream that fails after it started
//!   counts as OK here.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{HeaderValue, Request, Response};
use tokio::sync::Semaphore;
use tonic::Status;
use tonic::transport::server::TlsConnectInfo;
use tower::{Layer, Service};

use crate::auth::{Access, Method, Principal};
use crate::conn::{CallSlot, ConnInfo};
use crate::domain::Error;
use crate::error::to_status;
use crate::metrics::Metrics;
use crate::server::Limits;

/// The label of the online read method, which has a pool of its own.
const ONLINE: &str = "OnlineService/GetOnlineFeatures";

/// The three pools calls are served from.
struct Pools {
    online: Arc<Semaphore>,
    uploads: Arc<Semaphore>,
    other: Arc<Semaphore>,
}

/// Settings of the guard.
#[derive(Clone)]
pub struct GuardLayer {
    limits: Arc<Limits>,
    pools: Arc<Pools>,
    /// Where the call metrics and the tokens are.
    app: Arc<crate::app::App>,
}

impl GuardLayer {
    pub fn new(app: Arc<crate::app::App>, limits: &Limits) -> Self {
        let pools = Pools {
            online: Arc::new(Semaphore::new(limits.max_concurrent_online)),
            uploads: Arc::new(Semaphore::new(limits.max_concurrent_uploads)),
            other: Arc::new(Semaphore::new(limits.max_concurrent_calls)),
        };
        GuardLayer { limits: Arc::new(limits.clone()), pools: Arc::new(pools), app }
    }
}

impl<S> Layer<S> for GuardLayer {
    type Service = Guard<S>;

    fn layer(&self, inner: S) -> Guard<S> {
        Guard { inner, settings: self.clone() }
    }
}

#[derive(Clone)]
pub struct Guard<S> {
    inner: S,
    settings: GuardLayer,
}

/// When the guard gives up on a call that `limit` bounds. A client's deadline is also timed
/// by tonic's own layer outside this one, which answers `CANCELLED` ("Timeout expired")
/// when it fires first; stopping a little earlier (2 %, 1 to 50 ms) makes the answer
/// `DEADLINE_EXCEEDED`, as gRPC specifies, and lets it reach the client in time.
fn answer_by(limit: Duration, client: Option<Duration>) -> Duration {
    match client {
        Some(c) if c <= limit => {
            let margin = (c / 50).clamp(Duration::from_millis(1), Duration::from_millis(50)).min(c / 2);
            c - margin
        }
        _ => limit,
    }
}

/// Parses a `grpc-timeout` header value: digits and a unit (H, M, S, m, u, n).
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The metrics label of a path: the method's, or `unknown` for a path no service offers.
fn method_label(method: Option<Method>) -> &'static str {
    method.map_or("unknown", |m| m.label)
}

fn is_oversize(response: &Response<tonic::body::Body>) -> bool {
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok());
    header("grpc-status") == Some("11")
        && header("grpc-message").is_some_and(|m| m.contains("too%20large") || m.contains("too large"))
}

/// A request body tonic could not decode as the method's message: tonic answers INTERNAL,
/// but the fault is the caller's.
fn is_undecodable(response: &Response<tonic::body::Body>) -> bool {
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok());
    header("grpc-status") == Some("13")
        && header("grpc-message").is_some_and(|m| {
            m.contains("failed%20to%20decode%20Protobuf%20message")
                || m.contains("failed to decode Protobuf message")
        })
}

/// The connection a request came on (plain or TLS).
fn connection<B>(req: &Request<B>) -> Option<&ConnInfo> {
    req.extensions()
        .get::<ConnInfo>()
        .or_else(|| req.extensions().get::<TlsConnectInfo<ConnInfo>>().map(TlsConnectInfo::get_ref))
}

/// A response body that keeps the call's connection slot until it is finished or dropped.
struct HeldBody {
    inner: tonic::body::Body,
    _slot: Option<CallSlot>,
}

impl http_body::Body for HeldBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Status>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Refuses a call before it reaches its handler: the status, counted under `reason`.
fn refuse(metrics: &Metrics, label: &str, reason: &str, status: Status) -> Response<tonic::body::Body> {
    metrics.rejected.with_label_values(&[reason]).inc();
    metrics.calls.with_label_values(&[label, &format!("{:?}", status.code())]).inc();
    status.into_http()
}

impl<S, B> Service<Request<B>> for Guard<S>
where
    S: Service<Request<B>, Response = Response<tonic::body::Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        // The ready service answers this call; a fresh clone waits for the next one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let settings = self.settings.clone();
        // Deadlines count from here, where tonic's own timer (the layer outside) starts too.
        let arrived = tokio::time::Instant::now();
        Box::pin(async move {
            let method = crate::auth::method(req.uri().path());
            let label = method_label(method);
            let metrics: &Metrics = settings.app.metrics();
            let limits = &settings.limits;
            let authorization = req.headers().get(http::header::AUTHORIZATION).map(HeaderValue::as_bytes);
            let principal = match settings.app.auth().authorize(method, authorization) {
                Ok(p) => p,
                Err(error) => {
                    let status = to_status(error);
                    tracing::info!(target: "quiver::audit", method = label, code = ?status.code(), "call refused");
                    return Ok(refuse(metrics, label, "auth", status));
                }
            };
            let access = method.map_or(Access::Open, |m| m.access);
            let upload = access == Access::Upload;
            let slot = match connection(&req) {
                Some(conn) => {
                    match conn.state.start_call(
                        upload,
                        limits.max_calls_per_connection,
                        limits.max_uploads_per_connection,
                    ) {
                        Ok(slot) => Some(slot),
                        Err(what) => {
                            let limit = if what == "uploads" {
                                limits.max_uploads_per_connection
                            } else {
                                limits.max_calls_per_connection
                            };
                            let status = to_status(Error::Limit(format!(
                                "this connection already has {limit} {what} in flight, the limit per connection; \
                                 wait for them to finish or retry with backoff"
                            )));
                            return Ok(refuse(metrics, label, "connection", status));
                        }
                    }
                }
                None => None,
            };
            let (pool, size, kind) = if upload {
                (&settings.pools.uploads, limits.max_concurrent_uploads, "uploads")
            } else if label == ONLINE {
                (&settings.pools.online, limits.max_concurrent_online, "online reads")
            } else {
                (&settings.pools.other, limits.max_concurrent_calls, "calls")
            };
            let Ok(permit) = pool.clone().try_acquire_owned() else {
                let status = to_status(Error::Limit(format!(
                    "the server is serving its limit of {size} concurrent {kind}; retry with backoff"
                )));
                return Ok(refuse(metrics, label, "concurrency", status));
            };
            let audited = matches!(access, Access::Upload | Access::Write | Access::Admin);
            // Only calls that change something are audited; reads allocate nothing for it.
            let by =
                audited.then(|| principal.as_ref().map_or_else(|| "anonymous".into(), |p| p.name.clone()));
            if let Some(p) = principal {
                req.extensions_mut().insert::<Principal>(p);
            }
            let client =
                req.headers().get("grpc-timeout").and_then(|v| v.to_str().ok()).and_then(parse_grpc_timeout);
            let limit = client.map_or(limits.deadline, |c| c.min(limits.deadline));
            let started = Instant::now();
            metrics.in_flight.inc();
            let outcome = tokio::time::timeout_at(arrived + answer_by(limit, client), inner.call(req)).await;
            metrics.in_flight.dec();
            drop(permit);
            let mut response = match outcome {
                Ok(result) => result?,
                Err(_) => to_status(Error::Timeout(format!(
                    "the call did not finish within its deadline of {limit:?}{}",
                    if client.is_some_and(|c| c <= limits.deadline) {
                        " (set by the client)"
                    } else {
                        " (the server's limit)"
                    }
                )))
                .into_http(),
            };
            if is_oversize(&response) {
                let status = to_status(Error::Limit(format!(
                    "the request message is larger than the server's limit of {} bytes; send smaller \
                     requests (for large spines use Arrow Flight DoPut, which streams)",
                    limits.max_message_bytes
                )));
                response = status.into_http();
            }
            if is_undecodable(&response) {
                let status = to_status(Error::Invalid(format!(
                    "the request is not a valid message for {label}: it does not decode as the \
                     protobuf message this method takes (check the client's generated code \
                     against proto/quiver/v1)"
                )));
                response = status.into_http();
            }
            let code = response
                .headers()
                .get("grpc-status")
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .and_then(|v| v.parse::<i32>().ok())
                .map_or(tonic::Code::Ok, tonic::Code::from_i32);
            metrics.calls.with_label_values(&[label, &format!("{code:?}")]).inc();
            metrics.latency.with_label_values(&[label]).observe(started.elapsed().as_secs_f64());
            if let Some(by) = by {
                tracing::info!(target: "quiver::audit", method = label, by = %by, code = ?code, "call");
            }
            Ok(response.map(|inner| tonic::body::Body::new(HeldBody { inner, _slot: slot })))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clients_deadline_is_answered_a_little_before_it_passes() {
        let s = Duration::from_secs(1);
        assert_eq!(answer_by(s, Some(s)), Duration::from_millis(980));
        assert_eq!(answer_by(Duration::from_secs(300), Some(s)), Duration::from_millis(980));
        assert_eq!(answer_by(s * 60, Some(s * 60)), s * 60 - Duration::from_millis(50));
        assert_eq!(
            answer_by(Duration::from_millis(10), Some(Duration::from_millis(10))),
            Duration::from_millis(9)
        );
        assert_eq!(
            answer_by(Duration::from_micros(10), Some(Duration::from_micros(10))),
            Duration::from_micros(5)
        );
        // The server's own limit is kept as it is: no outer timer races it.
        assert_eq!(answer_by(s, None), s);
        assert_eq!(answer_by(s, Some(s * 2)), s);
    }

    #[test]
    fn grpc_timeouts_parse_in_every_unit() {
        assert_eq!(parse_grpc_timeout("100m"), Some(Duration::from_millis(100)));
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse_grpc_timeout("5u"), Some(Duration::from_micros(5)));
        assert_eq!(parse_grpc_timeout("7n"), Some(Duration::from_nanos(7)));
        assert_eq!(parse_grpc_timeout("123456789S"), None);
        assert_eq!(parse_grpc_timeout("S"), None);
        assert_eq!(parse_grpc_timeout("10x"), None);
    }

    #[test]
    fn methods_are_labelled_by_service_and_name_and_unknown_paths_share_one_label() {
        let label = |path: &str| method_label(crate::auth::method(path));
        assert_eq!(label("/quiver.v1.OnlineService/GetOnlineFeatures"), ONLINE);
        assert_eq!(label("/arrow.flight.protocol.FlightService/DoGet"), "FlightService/DoGet");
        assert_eq!(label("/"), "unknown");
        assert_eq!(label("/x.Svc17/M17"), "unknown");
        assert_eq!(label("/quiver.v1.OnlineService/Nope"), "unknown");
    }
}
