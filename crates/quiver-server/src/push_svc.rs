//! `PushService.Push`: rows from outside written to a view's stores.

use std::sync::Arc;

use quiver_offline::push::{PushTargets, push};
use tonic::{Request, Response, Status};

use crate::app::App;
use crate::convert::decode_ipc;
use crate::error::to_status;
use crate::pb;
use crate::pb::push_service_server::PushService;

pub struct PushApi(pub Arc<App>);

#[tonic::async_trait]
impl PushService for PushApi {
    async fn push(&self, request: Request<pb::PushRequest>) -> Result<Response<pb::PushResponse>, Status> {
        let req = request.into_inner();
        let online_expiry = self.0.online_expiry();
        let targets = match req.to() {
            pb::PushTarget::Online => PushTargets { online: true, offline: false, online_expiry },
            pb::PushTarget::Offline => PushTargets { online: false, offline: true, online_expiry },
            pb::PushTarget::OnlineAndOffline => PushTargets { online: true, offline: true, online_expiry },
            pb::PushTarget::Unspecified => {
                return Err(Status::invalid_argument(
                    "say where to push: `to` is PUSH_TARGET_ONLINE, PUSH_TARGET_OFFLINE or PUSH_TARGET_ONLINE_AND_OFFLINE",
                ));
            }
        };
        let snapshot = self.0.require_current()?;
        let defs = &snapshot.definitions;
        let view = defs
            .feature_view(&req.feature_view)
            .ok_or_else(|| crate::app::view_not_found(&snapshot, &req.feature_view))?;
        let (_, batches) = decode_ipc(&req.arrow_ipc, "arrow_ipc")?;
        let outcome = push(
            self.0.lake.session(),
            defs,
            view,
            &self.0.offline,
            Some(self.0.online.as_ref()),
            batches,
            targets,
        )
        .await
        .map_err(to_status)?;
        Ok(Response::new(pb::PushResponse {
            rows: outcome.rows,
            online_rows_written: outcome.online_rows_written,
            offline_version: outcome.offline_version,
        }))
    }
}
