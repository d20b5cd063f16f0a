//! Prometheus metrics, served over plain HTTP at `/metrics` on their own address.
//!
//! - `quiver_grpc_calls_total{method, code}` — finished calls by status code;
//! - `quiver_grpc_call_seconds{method}` — latency histogram (time to the response headers);
//! - `quiver_grpc_in_flight` — calls being served;
//! - `quiver_grpc_rejected_total{reason}` — calls refused before reaching a handler
//!   (`concurrency`);
//! - `quiver_http_requests_total{route, status}` / `quiver_http_request_seconds{route}` —
//!   requests to the HTTP endpoint (`--http-addr`) by route (the path pattern, e.g.
//!   `/views/{name}`, or `unknown`) and HTTP status, and their latency;
//! - `quiver_view_freshness_seconds{view}` — now minus the newest event time materialized;
//! - `quiver_view_last_materialization_rows{view}` / `..._seconds{view}` — the last run;
//! - `quiver_view_last_materialization_succeeded{view}` — 1 or 0;
//! - `quiver_view_last_materialization_dropped_rows{view}` — rows of the last run's window
//!   left out because a join key was missing;
//! - `quiver_view_last_materialization_rows_without_event_time{view}` — rows of the source
//!   the last run left out because they have no event time (they belong to no window);
//! - `quiver_view_last_materialization_expectations_broken{view}` — expectations the last
//!   run's window broke (committed anyway under `on_failure: warn`, not at all under `fail`);
//! - `quiver_feature_null_fraction{view, feature}` — nulls among the rows of the newest run
//!   with statistics;
//! - `quiver_feature_drift{view, feature, score}` — the latest declared drift check's score
//!   (`psi`, `ks` or `js`) per feature, and `quiver_feature_drifted{view, feature}` 1 when
//!   over the view's threshold (with `quiver serve --check-drift-every`);
//! - `quiver_drift_checks_total{view, outcome}` — declared drift checks run, by outcome
//!   (`ok`, `drifted`, `error`), and `quiver_view_drift_checked_timestamp_seconds{view}` —
//!   when the view was last checked;
//! - `quiver_registry_version` — the version being served;
//! - `quiver_offline_cache_bytes{cache}` / `quiver_offline_cache_limit_bytes{cache}` — what
//!   the offline session's file caches (`file_metadata`: Parquet footers; `file_statistics`)
//!   hold, and their bounds: the part of the server's memory that grows as it reads new files.
//!
//! The view metrics are read from the materialization state at scrape time, so they also
//! cover runs made by the CLI or another server.

use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

use quiver_core::registry::Snapshot;
use quiver_core::state::StateStore;
use quiver_offline::drift::DriftReport;

use crate::app::App;

/// The server's metric families.
pub struct Metrics {
    registry: Registry,
    pub calls: IntCounterVec,
    pub latency: HistogramVec,
    pub in_flight: IntGauge,
    pub rejected: IntCounterVec,
    pub http_requests: IntCounterVec,
    pub http_latency: HistogramVec,
    freshness: GaugeVec,
    last_rows: GaugeVec,
    last_seconds: GaugeVec,
    last_ok: GaugeVec,
    last_dropped: GaugeVec,
    last_no_time: GaugeVec,
    last_broken: GaugeVec,
    null_fraction: GaugeVec,
    drift: GaugeVec,
    drifted: GaugeVec,
    drift_checks: IntCounterVec,
    drift_checked: GaugeVec,
    registry_version: IntGauge,
    cache_bytes: GaugeVec,
    cache_limit: GaugeVec,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

// Metric definitions are constants: a failure to build one is a bug caught by the tests.
#[allow(clippy::expect_used)]
impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let calls = IntCounterVec::new(
            Opts::new("quiver_grpc_calls_total", "gRPC calls finished, by method and status code"),
            &["method", "code"],
        )
        .expect("metric");
        let buckets = vec![
            0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            10.0, 30.0, 60.0,
        ];
        let latency = HistogramVec::new(
            HistogramOpts::new("quiver_grpc_call_seconds", "gRPC call latency until the response starts")
                .buckets(buckets.clone()),
            &["method"],
        )
        .expect("metric");
        let http_requests = IntCounterVec::new(
            Opts::new("quiver_http_requests_total", "HTTP requests answered, by route and status"),
            &["route", "status"],
        )
        .expect("metric");
        let http_latency = HistogramVec::new(
            HistogramOpts::new(
                "quiver_http_request_seconds",
                "HTTP request latency until the answer is ready",
            )
            .buckets(buckets),
            &["route"],
        )
        .expect("metric");
        let in_flight = IntGauge::new("quiver_grpc_in_flight", "gRPC calls being served").expect("metric");
        let rejected = IntCounterVec::new(
            Opts::new("quiver_grpc_rejected_total", "gRPC calls refused before a handler ran"),
            &["reason"],
        )
        .expect("metric");
        let view_gauge =
            |name: &str, help: &str| GaugeVec::new(Opts::new(name, help), &["view"]).expect("metric");
        let freshness = view_gauge(
            "quiver_view_freshness_seconds",
            "Seconds between now and the newest event time materialized for the view",
        );
        let last_rows = view_gauge(
            "quiver_view_last_materialization_rows",
            "Rows written by the view's last materialization",
        );
        let last_seconds = view_gauge(
            "quiver_view_last_materialization_seconds",
            "Duration of the view's last materialization",
        );
        let last_ok = view_gauge(
            "quiver_view_last_materialization_succeeded",
            "1 when the view's last materialization succeeded, else 0",
        );
        let last_dropped = view_gauge(
            "quiver_view_last_materialization_dropped_rows",
            "Rows of the view's last materialized window left out because a join key was missing",
        );
        let last_no_time = view_gauge(
            "quiver_view_last_materialization_rows_without_event_time",
            "Rows of the view's source its last materialization left out because they have no event time",
        );
        let last_broken = view_gauge(
            "quiver_view_last_materialization_expectations_broken",
            "Expectations the view's last materialized window broke",
        );
        let null_fraction = GaugeVec::new(
            Opts::new(
                "quiver_feature_null_fraction",
                "Nulls among the rows of the view's newest materialization with statistics",
            ),
            &["view", "feature"],
        )
        .expect("metric");
        let drift = GaugeVec::new(
            Opts::new("quiver_feature_drift", "The latest declared drift check's score of the feature"),
            &["view", "feature", "score"],
        )
        .expect("metric");
        let drifted = GaugeVec::new(
            Opts::new(
                "quiver_feature_drifted",
                "1 when the latest declared drift check found the feature over the view's threshold, else 0",
            ),
            &["view", "feature"],
        )
        .expect("metric");
        let drift_checks = IntCounterVec::new(
            Opts::new(
                "quiver_drift_checks_total",
                "Declared drift checks run, by outcome (ok, drifted, error)",
            ),
            &["view", "outcome"],
        )
        .expect("metric");
        let drift_checked = view_gauge(
            "quiver_view_drift_checked_timestamp_seconds",
            "When the view's declared drift check last ran (seconds since the epoch)",
        );
        let registry_version =
            IntGauge::new("quiver_registry_version", "Registry version being served").expect("metric");
        let cache_gauge =
            |name: &str, help: &str| GaugeVec::new(Opts::new(name, help), &["cache"]).expect("metric");
        let cache_bytes =
            cache_gauge("quiver_offline_cache_bytes", "Bytes held by the offline session's file cache");
        let cache_limit = cache_gauge(
            "quiver_offline_cache_limit_bytes",
            "Most bytes the offline session's file cache holds before dropping entries",
        );
        for c in [
            Box::new(calls.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(in_flight.clone()),
            Box::new(rejected.clone()),
            Box::new(http_requests.clone()),
            Box::new(http_latency.clone()),
            Box::new(freshness.clone()),
            Box::new(last_rows.clone()),
            Box::new(last_seconds.clone()),
            Box::new(last_ok.clone()),
            Box::new(last_dropped.clone()),
            Box::new(last_no_time.clone()),
            Box::new(last_broken.clone()),
            Box::new(null_fraction.clone()),
            Box::new(drift.clone()),
            Box::new(drifted.clone()),
            Box::new(drift_checks.clone()),
            Box::new(drift_checked.clone()),
            Box::new(registry_version.clone()),
            Box::new(cache_bytes.clone()),
            Box::new(cache_limit.clone()),
        ] {
            registry.register(c).expect("metric names are unique");
        }
        Metrics {
            registry,
            calls,
            latency,
            in_flight,
            rejected,
            http_requests,
            http_latency,
            freshness,
            last_rows,
            last_seconds,
            last_ok,
            last_dropped,
            last_no_time,
            last_broken,
            null_fraction,
            drift,
            drifted,
            drift_checks,
            drift_checked,
            registry_version,
            cache_bytes,
            cache_limit,
        }
    }

    /// Records one round of declared drift checks: the scores of each view checked replace
    /// the previous round's (a view whose check failed, or that is no longer checked, shows
    /// no scores until its next good check).
    pub fn record_drift_round(&self, checked: &[(String, std::result::Result<DriftReport, String>)]) {
        self.drift.reset();
        self.drifted.reset();
        let now = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
        for (view, outcome) in checked {
            self.drift_checked.with_label_values(&[view.as_str()]).set(now);
            let report = match outcome {
                Ok(r) => r,
                Err(_) => {
                    self.drift_checks.with_label_values(&[view.as_str(), "error"]).inc();
                    continue;
                }
            };
            let label = if report.drifted().is_empty() { "ok" } else { "drifted" };
            self.drift_checks.with_label_values(&[view.as_str(), label]).inc();
            for (feature, f) in &report.features {
                let labels = |score: &'static str| [view.as_str(), feature.as_str(), score];
                self.drift.with_label_values(&labels("psi")).set(f.psi);
                if let Some(ks) = f.ks {
                    self.drift.with_label_values(&labels("ks")).set(ks);
                }
                if let Some(js) = f.js {
                    self.drift.with_label_values(&labels("js")).set(js);
                }
                self.drifted.with_label_values(&[view.as_str(), feature.as_str()]).set(if f.drifted {
                    1.0
                } else {
                    0.0
                });
            }
        }
    }

    /// Refreshes the per-view gauges of `snapshot`'s views from the materialization state.
    async fn refresh_views(&self, snapshot: Option<&Snapshot>, state: &StateStore) {
        let Some(snapshot) = snapshot else { return };
        self.registry_version.set(snapshot.version as i64);
        for g in [
            &self.freshness,
            &self.last_rows,
            &self.last_seconds,
            &self.last_ok,
            &self.last_dropped,
            &self.last_no_time,
            &self.last_broken,
            &self.null_fraction,
        ] {
            g.reset();
        }
        let now = chrono::Utc::now();
        for view in &snapshot.definitions.feature_views {
            let state = match state.view(&view.name).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(view = %view.name, error = %e, "cannot read materialization state");
                    continue;
                }
            };
            if let Some(newest) = state.newest_event {
                let age = (now - newest).num_milliseconds() as f64 / 1000.0;
                self.freshness.with_label_values(&[view.name.as_str()]).set(age);
            }
            if let Some(run) = state.runs.last() {
                let seconds = (run.finished_at - run.started_at).num_milliseconds() as f64 / 1000.0;
                let label = [view.name.as_str()];
                self.last_rows.with_label_values(&label).set(run.rows as f64);
                self.last_dropped.with_label_values(&label).set(run.dropped_null_keys as f64);
                self.last_no_time.with_label_values(&label).set(run.dropped_null_event_times as f64);
                self.last_broken.with_label_values(&label).set(run.expectations.len() as f64);
                self.last_seconds.with_label_values(&label).set(seconds);
                let ok = run.status == quiver_core::state::RunStatus::Succeeded;
                self.last_ok.with_label_values(&label).set(if ok { 1.0 } else { 0.0 });
            }
            if let Some(run) = state.runs.iter().rev().find(|r| !r.statistics.is_empty()) {
                for (feature, stats) in &run.statistics {
                    if stats.count > 0 {
                        let fraction = stats.nulls as f64 / stats.count as f64;
                        self.null_fraction
                            .with_label_values(&[view.name.as_str(), feature.as_str()])
                            .set(fraction);
                    }
                }
            }
        }
    }

    /// The text exposition of every metric; the view gauges are read now, for the views of
    /// `snapshot` (the registry version served), from `state`.
    /// `caches` is what the offline session's caches hold now.
    pub async fn render(
        &self,
        snapshot: Option<&Snapshot>,
        state: &StateStore,
        caches: &[quiver_offline::session::CacheUsage],
    ) -> String {
        self.refresh_views(snapshot, state).await;
        for usage in caches {
            self.cache_bytes.with_label_values(&[usage.cache]).set(usage.bytes as f64);
            self.cache_limit.with_label_values(&[usage.cache]).set(usage.limit as f64);
        }
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "cannot encode metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Serves `/metrics` on `listener` until `shutdown` resolves.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    app: Arc<App>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) {
    tokio::pin!(shutdown);
    loop {
        let (stream, _peer): (_, SocketAddr) = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics listener accept failed");
                    continue;
                }
            },
        };
        let app = app.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                let app = app.clone();
                async move {
                    if req.uri().path() == "/metrics" {
                        let body = app.render_metrics().await;
                        Response::builder()
                            .header("content-type", "text/plain; version=0.0.4")
                            .body(Full::new(Bytes::from(body)))
                    } else {
                        Response::builder()
                            .status(StatusCode::NOT_FOUND)
                            .body(Full::new(Bytes::from_static(b"metrics are at /metrics\n")))
                    }
                }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            if let Err(e) = builder.serve_connection(TokioIo::new(stream), service).await {
                tracing::debug!(error = %e, "metrics connection ended");
            }
        });
    }
}
