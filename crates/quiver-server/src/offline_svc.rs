//! `OfflineService.GetHistoricalFeatures`: a spine in (Arrow IPC), the training set out as
//! a stream of Arrow IPC chunks followed by its manifest.

use std::pin::Pin;
use std::sync::Arc;

use datafusion::arrow::ipc::writer::StreamWriter;
use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::app::App;
use crate::convert::decode_ipc;
use crate::domain::Error;
use crate::domain::training::{SpineItem, TrainingSpec, UploadLimits, file_info, read_batches};
use crate::error::to_status;
use crate::pb;
use crate::pb::get_historical_features_request::Kind;
use crate::pb::get_historical_features_response::Part;
use crate::pb::offline_service_server::OfflineService;

pub struct OfflineApi {
    pub app: Arc<App>,
    pub limits: UploadLimits,
}

type ResponseStream = Pin<Box<dyn Stream<Item = Result<pb::GetHistoricalFeaturesResponse, Status>> + Send>>;

fn chunk(bytes: Vec<u8>) -> pb::GetHistoricalFeaturesResponse {
    pb::GetHistoricalFeaturesResponse { part: Some(Part::ArrowIpc(bytes)) }
}

fn encoding(e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("encoding the training set: {e}"))
}

#[tonic::async_trait]
impl OfflineService for OfflineApi {
    type GetHistoricalFeaturesStream = ResponseStream;

    async fn get_historical_features(
        &self,
        request: Request<pb::GetHistoricalFeaturesRequest>,
    ) -> Result<Response<Self::GetHistoricalFeaturesStream>, Status> {
        let owner = crate::flight_svc::caller(&request);
        let req = request.into_inner();
        let (feature_service, features) = match req.kind {
            Some(Kind::Features(list)) => (None, list.refs),
            Some(Kind::FeatureService(s)) => (Some(s), Vec::new()),
            None => (None, Vec::new()),
        };
        let spec = TrainingSpec {
            features,
            feature_service,
            full_feature_names: req.full_feature_names,
            timestamp_column: Some(req.timestamp_column.clone()),
        };
        let (schema, batches) = decode_ipc(&req.spine_arrow_ipc, "spine_arrow_ipc").map_err(to_status)?;
        let spine = futures::stream::iter(
            std::iter::once(SpineItem::Schema(schema))
                .chain(batches.into_iter().map(SpineItem::Batch))
                .map(Ok),
        );
        let project = self.app.project().clone();
        let built =
            project.build_training_set(owner, &spec, spine, self.limits, false).await.map_err(to_status)?;
        // Stream the file back, then the manifest; the set's folder goes when done.
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            let result: Result<(), Error> = async {
                let mut batches = read_batches(built.output.clone());
                let (schema, _) = file_info(&built.output)?;
                let mut writer = StreamWriter::try_new(Vec::new(), &schema).map_err(encoding)?;
                let header = std::mem::take(writer.get_mut());
                if tx.send(Ok(chunk(header))).await.is_err() {
                    return Ok(());
                }
                while let Some(batch) = batches.recv().await {
                    writer.write(&batch?).map_err(encoding)?;
                    let bytes = std::mem::take(writer.get_mut());
                    if tx.send(Ok(chunk(bytes))).await.is_err() {
                        return Ok(());
                    }
                }
                writer.finish().map_err(encoding)?;
                let tail = std::mem::take(writer.get_mut());
                let _ = tx.send(Ok(chunk(tail))).await;
                let manifest = &built.manifest;
                let message = pb::TrainingSetManifest {
                    rows: manifest.output_rows,
                    registry_version: manifest.registry_version,
                    table_versions: manifest
                        .views
                        .iter()
                        .filter_map(|v| v.table_version.map(|t| (v.name.clone(), t)))
                        .collect(),
                    manifest_json: serde_json::to_string(manifest).unwrap_or_default(),
                };
                let _ = tx
                    .send(Ok(pb::GetHistoricalFeaturesResponse { part: Some(Part::Manifest(message)) }))
                    .await;
                Ok(())
            }
            .await;
            if let Err(e) = result {
                let _ = tx.send(Err(to_status(e))).await;
            }
            project.training().remove(&built.id);
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
