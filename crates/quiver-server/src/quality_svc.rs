//! `QualityService`: a run's statistics, drift between two periods, train/serve skew. The
//! same computations as `quiver stats`, `quiver drift` and `quiver skew`, over the server's
//! stores and the registry version it serves.

use std::sync::Arc;

use quiver_core::state::{FeatureStatistics, Histogram, NoRun, RunStatus};
use quiver_offline::drift::DriftReport;
use quiver_offline::layout::Window;
use tonic::{Request, Response, Status};

use crate::app::App;
use crate::convert::ns;
use crate::domain::{Error, project};
use crate::error::to_status;
use crate::pb;
use crate::pb::quality_service_server::QualityService;

pub struct QualityApi(pub Arc<App>);

/// Longest view name, run id or feature reference a request may carry.
const MAX_NAME: usize = 256;
/// Most feature references one skew check takes.
const MAX_REFERENCES: usize = 1_000;
/// Entities a skew check samples when the request does not say.
pub const DEFAULT_SKEW_SAMPLE: usize = 100;

fn bounded<'a>(text: &'a str, what: &str) -> Result<&'a str, Status> {
    if text.len() > MAX_NAME {
        return Err(to_status(Error::Invalid(format!("{what} is longer than {MAX_NAME} bytes"))));
    }
    Ok(text)
}

fn period(p: Option<&pb::Period>, what: &str) -> Result<Option<Window>, Status> {
    let Some(p) = p else { return Ok(None) };
    let time = |ns: i64, part: &str| crate::domain::time_from_ns(ns, &format!("{what}.{part}"));
    let start = time(p.start_ns, "start_ns").map_err(to_status)?;
    let end = time(p.end_ns, "end_ns").map_err(to_status)?;
    Window::new(start, end).map(Some).map_err(|e| to_status(Error::Invalid(format!("{what}: {e}"))))
}

pub fn statistics(s: &FeatureStatistics) -> pb::FeatureStatistics {
    let histogram = s.histogram.as_ref().map(|h| match h {
        Histogram::Bins { edges, counts } => {
            pb::feature_statistics::Histogram::Bins(pb::Bins { edges: edges.clone(), counts: counts.clone() })
        }
        Histogram::Top { values, other } => pb::feature_statistics::Histogram::Top(pb::TopValues {
            values: values
                .iter()
                .map(|(value, count)| pb::ValueCount { value: value.clone(), count: *count })
                .collect(),
            other: *other,
        }),
    });
    pb::FeatureStatistics {
        count: s.count,
        nulls: s.nulls,
        distinct: s.distinct,
        non_finite: s.non_finite,
        min: s.min,
        max: s.max,
        mean: s.mean,
        stddev: s.stddev,
        quantiles: s.quantiles.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        histogram,
    }
}

pub fn drift_response(report: &DriftReport) -> pb::GetDriftResponse {
    let period =
        |p: &quiver_core::definitions::Period| pb::Period { start_ns: ns(p.start), end_ns: ns(p.end) };
    pb::GetDriftResponse {
        feature_view: report.view.clone(),
        table_version: report.table_version,
        reference: Some(period(&report.reference)),
        current: Some(period(&report.current)),
        thresholds: Some(pb::DriftThresholds {
            psi: report.thresholds.psi.0,
            ks: report.thresholds.ks.0,
            js: report.thresholds.js.0,
        }),
        features: report
            .features
            .iter()
            .map(|(name, f)| {
                (
                    name.clone(),
                    pb::FeatureDrift {
                        reference_values: f.reference_values,
                        current_values: f.current_values,
                        psi: f.psi,
                        ks: f.ks,
                        js: f.js,
                        drifted: f.drifted,
                    },
                )
            })
            .collect(),
        drifted: report.drifted().into_iter().map(str::to_string).collect(),
    }
}

#[tonic::async_trait]
impl QualityService for QualityApi {
    async fn get_statistics(
        &self,
        request: Request<pb::GetStatisticsRequest>,
    ) -> Result<Response<pb::GetStatisticsResponse>, Status> {
        let req = request.into_inner();
        let name = bounded(&req.feature_view, "feature_view")?;
        let run = bounded(&req.run, "run")?;
        let snapshot = self.0.project().require_current().map_err(to_status)?;
        project::view(&snapshot, name).map_err(to_status)?;
        let state = self.0.project().state().view(name).await.map_err(to_status)?;
        let record = state.pick_run(Some(run).filter(|r| !r.is_empty())).map_err(|e| {
            to_status(match e {
                NoRun::NoStatistics => Error::NotReady(e.message(name)),
                NoRun::CountsFromOne => Error::Invalid(e.message(name)),
                NoRun::Unknown { .. } => Error::NotFound(e.message(name)),
            })
        })?;
        Ok(Response::new(pb::GetStatisticsResponse {
            feature_view: name.to_string(),
            run_id: record.run_id.clone(),
            status: match record.status {
                RunStatus::Succeeded => "succeeded",
                RunStatus::Failed => "failed",
            }
            .into(),
            window_start_ns: ns(record.window_start),
            window_end_ns: ns(record.window_end),
            rows: record.rows,
            features: record.statistics.iter().map(|(k, s)| (k.clone(), statistics(s))).collect(),
            broken_expectations: record.expectations.iter().map(ToString::to_string).collect(),
        }))
    }

    async fn get_drift(
        &self,
        request: Request<pb::GetDriftRequest>,
    ) -> Result<Response<pb::GetDriftResponse>, Status> {
        let req = request.into_inner();
        let name = bounded(&req.feature_view, "feature_view")?;
        let reference = period(req.reference.as_ref(), "reference")?;
        let current = period(req.current.as_ref(), "current")?;
        let periods = match (reference, current) {
            (Some(r), Some(c)) => Some((r, c)),
            (None, None) => None,
            _ => {
                return Err(to_status(Error::Invalid(
                    "give both periods, reference and current, or neither (the view's declared check)".into(),
                )));
            }
        };
        let report = self.0.project().drift(name, periods).await.map_err(to_status)?;
        Ok(Response::new(drift_response(&report)))
    }

    async fn get_skew(
        &self,
        request: Request<pb::GetSkewRequest>,
    ) -> Result<Response<pb::GetSkewResponse>, Status> {
        let req = request.into_inner();
        if req.features.len() > MAX_REFERENCES {
            return Err(to_status(Error::Invalid(format!(
                "{} feature references; one skew check takes at most {MAX_REFERENCES}",
                req.features.len()
            ))));
        }
        for f in &req.features {
            bounded(f, "a feature reference")?;
        }
        let service = bounded(&req.feature_service, "feature_service")?;
        let sample = match req.sample {
            0 => DEFAULT_SKEW_SAMPLE,
            n => n as usize,
        };
        if sample > quiver_offline::skew::MAX_SAMPLE {
            return Err(to_status(Error::Invalid(format!(
                "sample is {sample}; one skew check samples at most {} entities",
                quiver_offline::skew::MAX_SAMPLE
            ))));
        }
        let project = self.0.project();
        let snapshot = project.require_current().map_err(to_status)?;
        let refs = snapshot
            .definitions
            .resolve_features(Some(service).filter(|s| !s.is_empty()), &req.features)
            .map_err(to_status)?;
        let seed = chrono::Utc::now().timestamp_micros() as u64;
        let report = quiver_offline::skew::skew(
            project.lake().session(),
            &snapshot.definitions,
            project.offline(),
            project.online().as_ref(),
            &refs,
            sample,
            seed,
        )
        .await
        .map_err(to_status)?;
        let differing = report.differing();
        Ok(Response::new(pb::GetSkewResponse {
            at_ns: ns(report.at),
            entities: report.entities as u64,
            differing,
            features: report
                .features
                .into_iter()
                .map(|(name, f)| {
                    let examples = f
                        .examples
                        .into_iter()
                        .map(|e| pb::SkewExample {
                            entity: serde_json::Value::Object(e.entity.into_iter().collect()).to_string(),
                            online: e.online.to_string(),
                            online_status: e.online_status.to_string(),
                            offline: e.offline.to_string(),
                        })
                        .collect();
                    (name, pb::FeatureSkew { differ: f.differ, examples })
                })
                .collect(),
        }))
    }
}
