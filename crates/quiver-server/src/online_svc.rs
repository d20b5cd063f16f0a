//! `OnlineService`: the latest feature values of entities.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::ipc::writer::StreamWriter;
use quiver_online::read::Status as ValueStatus;
use tonic::{Request, Response, Status};

use crate::app::App;
use crate::convert::{value_from_pb, value_to_pb};
use crate::domain::Error;
use crate::domain::online::OnlineRequest;
use crate::error::to_status;
use crate::pb;
use crate::pb::get_online_features_request::Kind;
use crate::pb::online_service_server::OnlineService;

pub struct OnlineApi {
    pub app: Arc<App>,
    /// Most features × entity rows one request may ask for.
    pub max_cells: usize,
}

#[tonic::async_trait]
impl OnlineService for OnlineApi {
    async fn get_online_features(
        &self,
        request: Request<pb::GetOnlineFeaturesRequest>,
    ) -> Result<Response<pb::GetOnlineFeaturesResponse>, Status> {
        let req = request.into_inner();
        let arrow = req.arrow;
        let (feature_service, features) = match req.kind {
            Some(Kind::FeatureService(s)) => (Some(s), Vec::new()),
            Some(Kind::Features(list)) => (None, list.refs),
            None => (None, Vec::new()),
        };
        let request = OnlineRequest {
            feature_service,
            features,
            entities: req
                .entities
                .into_iter()
                .map(|(key, column)| (key, column.values.iter().map(value_from_pb).collect()))
                .collect(),
            at_ns: (req.at_ns != 0).then_some(req.at_ns),
        };
        let answer = self.app.project().online_features(request, self.max_cells).await.map_err(to_status)?;
        if arrow {
            let batch = answer.to_arrow().map_err(to_status)?;
            return Ok(Response::new(pb::GetOnlineFeaturesResponse {
                feature_names: answer.response.features.iter().map(|f| f.to_string()).collect(),
                results: Vec::new(),
                registry_version: answer.registry_version,
                arrow_ipc: ipc_bytes(&batch).map_err(to_status)?,
            }));
        }
        let response = answer.response;
        let n = response.rows.len();
        let mut results: Vec<pb::FeatureColumn> = (0..response.features.len())
            .map(|_| pb::FeatureColumn {
                values: Vec::with_capacity(n),
                statuses: Vec::with_capacity(n),
                event_timestamps_ns: Vec::with_capacity(n),
            })
            .collect();
        for row in response.rows {
            for (column, fv) in results.iter_mut().zip(row) {
                column.values.push(value_to_pb(fv.value));
                column.statuses.push(match fv.status {
                    ValueStatus::Present => pb::FeatureStatus::Present,
                    ValueStatus::NullValue => pb::FeatureStatus::NullValue,
                    ValueStatus::NotFound => pb::FeatureStatus::NotFound,
                    ValueStatus::OutsideMaxAge => pb::FeatureStatus::OutsideMaxAge,
                } as i32);
                column.event_timestamps_ns.push(fv.event_ns.unwrap_or(0));
            }
        }
        Ok(Response::new(pb::GetOnlineFeaturesResponse {
            feature_names: response.features.iter().map(|f| f.to_string()).collect(),
            results,
            registry_version: answer.registry_version,
            arrow_ipc: Vec::new(),
        }))
    }
}

/// A record batch as an Arrow IPC stream.
fn ipc_bytes(batch: &RecordBatch) -> Result<Vec<u8>, Error> {
    let encoding =
        |e: datafusion::arrow::error::ArrowError| Error::Internal(format!("encoding the answer: {e}"));
    let mut writer = StreamWriter::try_new(Vec::new(), &batch.schema()).map_err(encoding)?;
    writer.write(batch).map_err(encoding)?;
    writer.finish().map_err(encoding)?;
    writer.into_inner().map_err(encoding)
}
