//! `MaterializeService`: background materialization jobs ([`crate::domain::jobs`]).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use quiver_offline::materialize::Span;
use tonic::{Request, Response, Status};

use crate::app::App;
use crate::domain::jobs::{JobState, JobView, ViewRunState};
use crate::domain::{Error, time_from_ns};
use crate::error::to_status;
use crate::pb;
use crate::pb::materialize_service_server::MaterializeService;
use crate::pb::start_materialization_request::Span as WireSpan;

pub struct MaterializeApi(pub Arc<App>);

#[tonic::async_trait]
impl MaterializeService for MaterializeApi {
    async fn start(
        &self,
        request: Request<pb::StartMaterializationRequest>,
    ) -> Result<Response<pb::MaterializationJob>, Status> {
        let req = request.into_inner();
        let span = match req.span {
            Some(WireSpan::Window(w)) => Span::Window {
                start: time_from_ns(w.start_ns, "window.start_ns").map_err(to_status)?,
                end: time_from_ns(w.end_ns, "window.end_ns").map_err(to_status)?,
            },
            Some(WireSpan::Incremental(i)) => {
                Span::Incremental { end: time_from_ns(i.end_ns, "incremental.end_ns").map_err(to_status)? }
            }
            None => {
                return Err(to_status(Error::Invalid(
                    "say what to materialize: a window or incremental".into(),
                )));
            }
        };
        let job = self.0.project().start_materialization(span, &req.views).await.map_err(to_status)?;
        Ok(Response::new(to_pb(&job)))
    }

    async fn get(
        &self,
        request: Request<pb::GetMaterializationRequest>,
    ) -> Result<Response<pb::MaterializationJob>, Status> {
        let id = request.into_inner().id;
        let job = self.0.project().jobs().get(&id).await.map_err(to_status)?.ok_or_else(|| {
            to_status(Error::NotFound(format!(
                "materialization job '{id}' is not known (to this server or in the offline store)"
            )))
        })?;
        Ok(Response::new(to_pb(&job)))
    }

    async fn list(
        &self,
        _: Request<pb::ListMaterializationsRequest>,
    ) -> Result<Response<pb::ListMaterializationsResponse>, Status> {
        Ok(Response::new(pb::ListMaterializationsResponse {
            jobs: self.0.project().jobs().list().await.map_err(to_status)?.iter().map(to_pb).collect(),
        }))
    }
}

/// A job on the wire.
fn to_pb(job: &JobView) -> pb::MaterializationJob {
    let ns = |t: DateTime<Utc>| t.timestamp_nanos_opt().unwrap_or(0);
    pb::MaterializationJob {
        id: job.id.clone(),
        state: match job.state {
            JobState::Pending => pb::JobState::Pending,
            JobState::Running => pb::JobState::Running,
            JobState::Succeeded => pb::JobState::Succeeded,
            JobState::Failed => pb::JobState::Failed,
        } as i32,
        created_at_ns: ns(job.created_at),
        finished_at_ns: job.finished_at.map_or(0, ns),
        views: job
            .views
            .iter()
            .map(|v| {
                let report = v.report.as_ref();
                pb::ViewProgress {
                    view: v.view.clone(),
                    state: match v.state {
                        ViewRunState::Pending => pb::ViewRunState::Pending,
                        ViewRunState::Running => pb::ViewRunState::Running,
                        ViewRunState::Succeeded => pb::ViewRunState::Succeeded,
                        ViewRunState::Failed => pb::ViewRunState::Failed,
                        ViewRunState::Skipped => pb::ViewRunState::Skipped,
                    } as i32,
                    rows_done: v.rows_done,
                    rows_expected: v.rows_expected,
                    window_start_ns: report.and_then(|r| r.window_start).map_or(0, ns),
                    window_end_ns: report.and_then(|r| r.window_end).map_or(0, ns),
                    offline_version: report.and_then(|r| r.offline_version),
                    online_rows: report.and_then(|r| r.online_rows).unwrap_or(0),
                    seconds: report.map_or(0.0, |r| r.seconds),
                    dropped_null_keys: report.map_or(0, |r| r.dropped_null_keys),
                    dropped_null_event_times: report.map_or(0, |r| r.dropped_null_event_times),
                    message: report
                        .and_then(|r| r.error.clone().or_else(|| r.skipped.clone()))
                        .unwrap_or_default(),
                }
            })
            .collect(),
        error: job.error.clone().unwrap_or_default(),
    }
}
