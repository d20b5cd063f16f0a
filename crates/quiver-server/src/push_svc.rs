//! `PushService.Push`: rows from outside written to a view's stores.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::app::App;
use crate::convert::decode_ipc;
use crate::domain::Error;
use crate::domain::push::PushTo;
use crate::error::to_status;
use crate::pb;
use crate::pb::push_service_server::PushService;

pub struct PushApi(pub Arc<App>);

#[tonic::async_trait]
impl PushService for PushApi {
    async fn push(&self, request: Request<pb::PushRequest>) -> Result<Response<pb::PushResponse>, Status> {
        let req = request.into_inner();
        let to = match req.to() {
            pb::PushTarget::Online => PushTo::Online,
            pb::PushTarget::Offline => PushTo::Offline,
            pb::PushTarget::OnlineAndOffline => PushTo::Both,
            pb::PushTarget::Unspecified => {
                return Err(to_status(Error::Invalid(
                    "say where to push: `to` is PUSH_TARGET_ONLINE, PUSH_TARGET_OFFLINE or PUSH_TARGET_ONLINE_AND_OFFLINE"
                        .into(),
                )));
            }
        };
        let (_, batches) = decode_ipc(&req.arrow_ipc, "arrow_ipc").map_err(to_status)?;
        let outcome = self.0.project().push(&req.feature_view, batches, to).await.map_err(to_status)?;
        Ok(Response::new(pb::PushResponse {
            rows: outcome.rows,
            online_rows_written: outcome.online_rows_written,
            offline_version: outcome.offline_version,
            expectation_warnings: outcome.expectations.iter().map(ToString::to_string).collect(),
        }))
    }
}
