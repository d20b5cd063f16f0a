//! `MaterializeService`: background materialization jobs.

use std::sync::Arc;

use quiver_offline::materialize::{Materializer, Span};
use tonic::{Request, Response, Status};

use crate::app::App;
use crate::convert::time_from_ns;
use crate::jobs::{JobProgress, to_pb};
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
            Some(WireSpan::Window(w)) => {
                let start = time_from_ns(w.start_ns, "window.start_ns")?;
                let end = time_from_ns(w.end_ns, "window.end_ns")?;
                if start >= end {
                    return Err(Status::invalid_argument(format!(
                        "the window is empty: start {start} is not before end {end}"
                    )));
                }
                Span::Window { start, end }
            }
            Some(WireSpan::Incremental(i)) => {
                Span::Incremental { end: time_from_ns(i.end_ns, "incremental.end_ns")? }
            }
            None => return Err(Status::invalid_argument("say what to materialize: a window or incremental")),
        };
        let snapshot = self.0.require_current()?;
        let defs = &snapshot.definitions;
        let views: Vec<String> = if req.views.is_empty() {
            defs.feature_views.iter().map(|v| v.name.clone()).collect()
        } else {
            for name in &req.views {
                if defs.feature_view(name).is_none() {
                    return Err(crate::app::view_not_found(&snapshot, name));
                }
            }
            req.views.clone()
        };
        let job = self.0.jobs.start(&views).map_err(|(view, holder)| {
            Status::failed_precondition(format!(
                "feature view '{view}' is being materialized by job {holder}; wait for it (MaterializeService.Get) and start again"
            ))
        })?;
        let first = to_pb(&job.lock().unwrap_or_else(|p| p.into_inner()));
        tracing::info!(job = %first.id, views = ?views, "materialization job started");
        // The job runs on its own task: the caller may go away.
        let app = self.0.clone();
        tokio::spawn(async move {
            let materializer = Materializer {
                lake: app.lake.clone(),
                store: app.offline.clone(),
                registry: app.registry.clone(),
                state: app.state.clone(),
                online: Some(app.online.clone()),
                online_expiry: app.online_expiry(),
                rows_per_writer: None,
            };
            let progress = JobProgress(job.clone());
            let result = materializer.run(span, &views, &progress).await;
            let error = result.err().map(|e| e.to_string());
            app.jobs.finish(&job, error);
            let done = to_pb(&job.lock().unwrap_or_else(|p| p.into_inner()));
            tracing::info!(job = %done.id, state = ?done.state(), "materialization job finished");
        });
        Ok(Response::new(first))
    }

    async fn get(
        &self,
        request: Request<pb::GetMaterializationRequest>,
    ) -> Result<Response<pb::MaterializationJob>, Status> {
        let id = request.into_inner().id;
        let job = self.0.jobs.get(&id).ok_or_else(|| {
            Status::not_found(format!("materialization job '{id}' is not known to this server"))
        })?;
        Ok(Response::new(to_pb(&job)))
    }

    async fn list(
        &self,
        _: Request<pb::ListMaterializationsRequest>,
    ) -> Result<Response<pb::ListMaterializationsResponse>, Status> {
        Ok(Response::new(pb::ListMaterializationsResponse {
            jobs: self.0.jobs.list().iter().map(to_pb).collect(),
        }))
    }
}
