//! Arrow Flight for training sets, on the same port as the gRPC API.
//!
//! A training job needs nothing but an Arrow Flight client (e.g. `pyarrow.flight`):
//!
//! 1. `DoPut` with a command descriptor whose command is JSON naming the features —
//!    `{"features": ["driver_stats:conv_rate", ...]}` or `{"feature_service": "name"}`,
//!    optionally `"full_feature_names": true` and `"timestamp_column": "ts"` — and the
//!    spine's record batches as the stream. The server builds the training set and answers
//!    with one `PutResult` whose `app_metadata` is JSON:
//!    `{"ticket": "...", "rows": N, "manifest": {...}}`.
//! 2. `DoGet` with that ticket streams the training set: the spine's columns in input order,
//!    then the features. `GetFlightInfo` on the path `["training_sets", ticket]` gives its
//!    schema and row count. Sets are kept until [`crate::training::KEPT`] newer ones exist
//!    or their ticket lifetime ends; with tokens on, only the uploader's token can fetch one.
//!
//! An upload that sends nothing for the upload idle timeout is ended, and a spine may hold at
//! most `max_spine_rows` rows ([`crate::server::Limits`]).

use std::pin::Pin;
use std::sync::Arc;

use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_descriptor::DescriptorType;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightEndpoint, FlightInfo,
    HandshakeRequest, HandshakeResponse, PollInfo, PutResult, SchemaResult, Ticket,
};
use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use tonic::{Request, Response, Status, Streaming};

use crate::app::App;
use crate::auth::Principal;
use crate::server::Limits;
use crate::training::{SpineFile, TrainingSpec, file_info, read_batches};

pub struct FlightApi {
    pub app: Arc<App>,
    pub limits: Limits,
}

/// The token name of a call, when the server checks tokens.
pub fn caller<T>(request: &Request<T>) -> Option<String> {
    request.extensions().get::<Principal>().map(|p| p.name.clone())
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

fn flight_status(e: FlightError) -> Status {
    match e {
        FlightError::Tonic(s) => *s,
        other => {
            Status::invalid_argument(format!("the spine stream is not valid Arrow Flight data: {other}"))
        }
    }
}

fn unimplemented<T>(what: &str) -> Result<T, Status> {
    Err(Status::unimplemented(format!(
        "{what} is not offered: DoPut a spine with a JSON command, then DoGet the ticket it returns"
    )))
}

impl FlightApi {
    fn ticket_path(
        &self,
        ticket: &[u8],
        caller: Option<&str>,
    ) -> Result<(String, std::path::PathBuf), Status> {
        let not_found = || {
            Status::not_found(
                "no training set with this ticket for this caller (unknown, expired, pushed out by newer \
                 sets, or uploaded with another token)",
            )
        };
        let id = std::str::from_utf8(ticket).map_err(|_| not_found())?;
        let path = self.app.training.output(id, caller).ok_or_else(not_found)?;
        Ok((id.to_string(), path))
    }
}

#[tonic::async_trait]
impl FlightService for FlightApi {
    type HandshakeStream = BoxStream<HandshakeResponse>;
    type ListFlightsStream = BoxStream<FlightInfo>;
    type DoGetStream = BoxStream<FlightData>;
    type DoPutStream = BoxStream<PutResult>;
    type DoExchangeStream = BoxStream<FlightData>;
    type DoActionStream = BoxStream<arrow_flight::Result>;
    type ListActionsStream = BoxStream<ActionType>;

    async fn handshake(
        &self,
        _: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        unimplemented("Handshake (send a bearer token in the authorization header instead)")
    }

    async fn list_flights(&self, _: Request<Criteria>) -> Result<Response<Self::ListFlightsStream>, Status> {
        unimplemented("ListFlights")
    }

    async fn get_flight_info(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let caller = caller(&request);
        let descriptor = request.into_inner();
        let id = match descriptor.path.as_slice() {
            [kind, id] if kind == "training_sets" => id.clone(),
            _ => {
                return Err(Status::invalid_argument(
                    "describe a training set with the path [\"training_sets\", ticket]",
                ));
            }
        };
        let (_, path) = self.ticket_path(id.as_bytes(), caller.as_deref())?;
        let (schema, rows) = file_info(&path)?;
        let info = FlightInfo::new()
            .try_with_schema(&schema)
            .map_err(|e| Status::internal(e.to_string()))?
            .with_descriptor(descriptor)
            .with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(id)))
            .with_total_records(rows)
            .with_ordered(true);
        Ok(Response::new(info))
    }

    async fn poll_flight_info(&self, _: Request<FlightDescriptor>) -> Result<Response<PollInfo>, Status> {
        unimplemented("PollFlightInfo")
    }

    async fn get_schema(&self, request: Request<FlightDescriptor>) -> Result<Response<SchemaResult>, Status> {
        let info = self.get_flight_info(request).await?.into_inner();
        Ok(Response::new(SchemaResult { schema: info.schema }))
    }

    async fn do_get(&self, request: Request<Ticket>) -> Result<Response<Self::DoGetStream>, Status> {
        let caller = caller(&request);
        let (_, path) = self.ticket_path(&request.into_inner().ticket, caller.as_deref())?;
        let (schema, _) = file_info(&path)?;
        let batches = tokio_stream::wrappers::ReceiverStream::new(read_batches(path))
            .map_err(|s| FlightError::Tonic(Box::new(s)));
        let stream =
            FlightDataEncoderBuilder::new().with_schema(schema).build(batches).map_err(flight_status);
        Ok(Response::new(Box::pin(stream)))
    }

    async fn do_put(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        let owner = caller(&request);
        let idle = self.limits.upload_idle_timeout;
        let idle_status = move || {
            Status::deadline_exceeded(format!(
                "the upload sent nothing for {idle:?} (the upload idle timeout); send the spine without pauses"
            ))
        };
        let mut incoming = request.into_inner();
        let first =
            tokio::time::timeout(idle, incoming.message()).await.map_err(|_| idle_status())??.ok_or_else(
                || Status::invalid_argument("DoPut sent no data: send the spine's schema and batches"),
            )?;
        let descriptor = first.flight_descriptor.clone().ok_or_else(|| {
            Status::invalid_argument("DoPut needs a command descriptor naming the features (JSON)")
        })?;
        if descriptor.r#type() != DescriptorType::Cmd {
            return Err(Status::invalid_argument(
                "DoPut needs a command descriptor (FlightDescriptor.for_command) whose command is JSON naming the features",
            ));
        }
        let spec: TrainingSpec = serde_json::from_slice(&descriptor.cmd).map_err(|e| {
            Status::invalid_argument(format!(
                "the DoPut command is not a training set request: {e}; send JSON like \
                 {{\"features\": [\"view:feature\"]}} or {{\"feature_service\": \"name\"}}"
            ))
        })?;
        let data = futures::stream::once(async move { Ok(first) })
            .chain(incoming.map_err(|s| FlightError::Tonic(Box::new(s))))
            .boxed();
        let mut spine = FlightRecordBatchStream::new_from_flight_data(data);
        let sets = &self.app.training;
        let (id, dir) = sets.allocate(owner)?;
        let max_rows = self.limits.max_spine_rows;
        let result = async {
            let mut file: Option<SpineFile> = None;
            while let Some(batch) =
                tokio::time::timeout(idle, spine.next()).await.map_err(|_| idle_status())?
            {
                let batch = batch.map_err(flight_status)?;
                if file.is_none() {
                    file = Some(SpineFile::create(dir.join("spine.parquet"), batch.schema(), max_rows)?);
                }
                if let Some(f) = file.as_mut() {
                    f.write(&batch)?;
                }
            }
            let file = match file {
                Some(f) => f,
                None => {
                    let schema = spine
                        .schema()
                        .cloned()
                        .ok_or_else(|| Status::invalid_argument("the spine stream carried no schema"))?;
                    SpineFile::create(dir.join("spine.parquet"), schema, max_rows)?
                }
            };
            let (path, _) = file.finish()?;
            sets.build(&self.app, id.clone(), &dir, path, &spec).await
        }
        .await;
        let built = match result {
            Ok(b) => b,
            Err(e) => {
                sets.remove(&id);
                return Err(e);
            }
        };
        sets.keep(&built.id);
        let metadata = serde_json::json!({
            "ticket": built.id,
            "rows": built.manifest.output_rows,
            "manifest": built.manifest,
        });
        let put = PutResult { app_metadata: Bytes::from(metadata.to_string()) };
        Ok(Response::new(Box::pin(futures::stream::once(async move { Ok(put) }))))
    }

    async fn do_exchange(
        &self,
        _: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        unimplemented("DoExchange")
    }

    async fn do_action(&self, _: Request<Action>) -> Result<Response<Self::DoActionStream>, Status> {
        unimplemented("DoAction")
    }

    async fn list_actions(&self, _: Request<Empty>) -> Result<Response<Self::ListActionsStream>, Status> {
        Ok(Response::new(Box::pin(futures::stream::empty())))
    }
}
