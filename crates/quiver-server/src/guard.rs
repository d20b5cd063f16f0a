//! One tower layer in front of every service: the concurrency cap, the per-call deadline,
//! the message-size status, and the call metrics.
//!
//! - **Concurrency**: at most `max_concurrent` calls are served at once; one more gets
//!   `RESOURCE_EXHAUSTED` at once (it is not queued), so overload sheds instead of piling up.
//! - **Deadline**: a call ends with `DEADLINE_EXCEEDED` after the shorter of the client's
//!   `grpc-timeout` and the server's own limit. For a streaming response the deadline covers
//!   the time to its first message (the stream then runs to its end).
//! - **Size**: a request message over the server's cap is refused by tonic with
//!   `OUT_OF_RANGE`; it is reported as `RESOURCE_EXHAUSTED`, the code gRPC uses for that.
//! - **Metrics**: calls by method and code, latency, calls in flight. A call's code is read
//!   from the response headers (where every error returned by a handler travels); a stream
//!   that fails after it started counts as OK here.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use http::{HeaderValue, Request, Response};
use tokio::sync::Semaphore;
use tonic::Status;
use tower::{Layer, Service};

use crate::metrics::Metrics;

/// Settings of the guard.
#[derive(Clone)]
pub struct GuardLayer {
    pub permits: Arc<Semaphore>,
    pub max_concurrent: usize,
    pub deadline: Duration,
    pub max_message_bytes: usize,
    /// Where the call metrics go.
    pub app: Arc<crate::app::App>,
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

/// The short method name for metrics: `OnlineService/GetOnlineFeatures`.
fn method_label(path: &str) -> String {
    let trimmed = path.trim_start_matches('/');
    match trimmed.split_once('/') {
        Some((service, method)) => {
            let service = service.rsplit('.').next().unwrap_or(service);
            format!("{service}/{method}")
        }
        None => "unknown".to_string(),
    }
}

fn is_oversize(response: &Response<tonic::body::Body>) -> bool {
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok());
    header("grpc-status") == Some("11")
        && header("grpc-message").is_some_and(|m| m.contains("too%20large") || m.contains("too large"))
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

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // The ready service answers this call; a fresh clone waits for the next one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let settings = self.settings.clone();
        Box::pin(async move {
            let method = method_label(req.uri().path());
            let metrics: &Metrics = &settings.app.metrics;
            let Ok(permit) = settings.permits.clone().try_acquire_owned() else {
                metrics.rejected.with_label_values(&["concurrency"]).inc();
                metrics.calls.with_label_values(&[method.as_str(), "ResourceExhausted"]).inc();
                let status = Status::resource_exhausted(format!(
                    "the server is serving its limit of {} concurrent calls; retry with backoff",
                    settings.max_concurrent
                ));
                return Ok(status.into_http());
            };
            let client =
                req.headers().get("grpc-timeout").and_then(|v| v.to_str().ok()).and_then(parse_grpc_timeout);
            let limit = client.map_or(settings.deadline, |c| c.min(settings.deadline));
            let started = Instant::now();
            metrics.in_flight.inc();
            let outcome = tokio::time::timeout(limit, inner.call(req)).await;
            metrics.in_flight.dec();
            drop(permit);
            let mut response = match outcome {
                Ok(result) => result?,
                Err(_) => Status::deadline_exceeded(format!(
                    "the call did not finish within its deadline of {limit:?}{}",
                    if client.is_some_and(|c| c <= settings.deadline) {
                        " (set by the client)"
                    } else {
                        " (the server's limit)"
                    }
                ))
                .into_http(),
            };
            if is_oversize(&response) {
                let status = Status::resource_exhausted(format!(
                    "the request message is larger than the server's limit of {} bytes; send smaller \
                     requests (for large spines use Arrow Flight DoPut, which streams)",
                    settings.max_message_bytes
                ));
                response = status.into_http();
            }
            let code = response
                .headers()
                .get("grpc-status")
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .and_then(|v| v.parse::<i32>().ok())
                .map_or(tonic::Code::Ok, tonic::Code::from_i32);
            metrics.calls.with_label_values(&[method.as_str(), &format!("{code:?}")]).inc();
            metrics.latency.with_label_values(&[method.as_str()]).observe(started.elapsed().as_secs_f64());
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn methods_are_labelled_by_service_and_name() {
        assert_eq!(
            method_label("/quiver.v1.OnlineService/GetOnlineFeatures"),
            "OnlineService/GetOnlineFeatures"
        );
        assert_eq!(method_label("/arrow.flight.protocol.FlightService/DoGet"), "FlightService/DoGet");
        assert_eq!(method_label("/"), "unknown");
    }
}
