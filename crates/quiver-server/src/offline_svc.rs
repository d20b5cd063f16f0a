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
use crate::pb;
use crate::pb::get_historical_features_request::Kind;
use crate::pb::get_historical_features_response::Part;
use crate::pb::offline_service_server::OfflineService;
use crate::training::{SpineFile, TrainingSpec, read_batches};

pub struct OfflineApi {
    pub app: Arc<App>,
    pub max_spine_rows: u64,
}

type ResponseStream = Pin<Box<dyn Stream<Item = Result<pb::GetHistoricalFeaturesResponse, Status>> + Send>>;

fn chunk(bytes: Vec<u8>) -> pb::GetHistoricalFeaturesResponse {
    pb::GetHistoricalFeaturesResponse { part: Some(Part::ArrowIpc(bytes)) }
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
        let spec = TrainingSpec {
            features: match &req.kind {
                Some(Kind::Features(list)) => list.refs.clone(),
                _ => Vec::new(),
            },
            feature_service: match &req.kind {
                Some(Kind::FeatureService(s)) => Some(s.clone()),
                _ => None,
            },
            full_feature_names: req.full_feature_names,
            timestamp_column: Some(req.timestamp_column.clone()),
        };
        let (schema, batches) = decode_ipc(&req.spine_arrow_ipc, "spine_arrow_ipc")?;
        let sets = &self.app.training;
        let (id, dir) = sets.allocate(owner)?;
        let built = async {
            let mut spine = SpineFile::create(dir.join("spine.parquet"), schema, self.max_spine_rows)?;
            for b in &batches {
                spine.write(b)?;
            }
            let (path, _) = spine.finish()?;
            sets.build(&self.app, id.clone(), &dir, path, &spec).await
        }
        .await;
        let built = match built {
            Ok(b) => b,
            Err(e) => {
                sets.remove(&id);
                return Err(e);
            }
        };
        // Stream the file back, then the manifest; the set's folder goes when done.
        let app = self.app.clone();
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            let result: Result<(), Status> = async {
                let mut batches = read_batches(built.output.clone());
                let (schema, _) = crate::training::file_info(&built.output)?;
                let mut writer = StreamWriter::try_new(Vec::new(), &schema)
                    .map_err(|e| Status::internal(format!("encoding the training set: {e}")))?;
                let header = std::mem::take(writer.get_mut());
                if tx.send(Ok(chunk(header))).await.is_err() {
                    return Ok(());
                }
                while let Some(batch) = batches.recv().await {
                    writer
                        .write(&batch?)
                        .map_err(|e| Status::internal(format!("encoding the training set: {e}")))?;
                    let bytes = std::mem::take(writer.get_mut());
                    if tx.send(Ok(chunk(bytes))).await.is_err() {
                        return Ok(());
                    }
                }
                writer.finish().map_err(|e| Status::internal(format!("encoding the training set: {e}")))?;
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
                let _ = tx.send(Err(e)).await;
            }
            app.training.remove(&built.id);
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
