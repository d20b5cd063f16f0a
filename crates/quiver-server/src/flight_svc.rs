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
//!    schema and row count. Sets are kept in the offline store until their ticket lifetime
//!    ends, and any server sharing that store serves them; with tokens on, only the
//!    uploader's token can fetch one.
//!
//! An upload that sends nothing for the upload idle timeout is ended, and a spine may hold at
//! most `max_spine_rows` rows ([`crate::server::Limits`]).

use std::pin::Pin;
use std::sync::Arc;

use arrow_flight::decode::{DecodedPayload, FlightDataDecoder};
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
use crate::domain::Error;
use crate::domain::training::{SpineItem, TrainingSpec, UploadLimits};
use crate::error::to_status;

pub struct FlightApi {
    pub app: Arc<App>,
    pub limits: UploadLimits,
}

/// The token name of a call, when the server checks tokens.
pub fn caller<T>(request: &Request<T>) -> Option<String> {
    request.extensions().get::<Principal>().map(|p| p.name.clone())
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// A status the client's own stream produced passes through; any other Flight failure is a
/// spine that is not valid Flight data.
fn flight_status(e: FlightError) -> Status {
    match e {
        FlightError::Tonic(s) => *s,
        other => {
            to_status(Error::Invalid(format!("the spine stream is not valid Arrow Flight data: {other}")))
        }
    }
}

fn unimplemented<T>(what: &str) -> Result<T, Status> {
    Err(to_status(Error::Unsupported(format!(
        "{what} is not offered: DoPut a spine with a JSON command, then DoGet the ticket it returns"
    ))))
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
                return Err(to_status(Error::Invalid(
                    "describe a training set with the path [\"training_sets\", ticket]".into(),
                )));
            }
        };
        let training = self.app.project().training();
        let set = training.fetch(id.as_bytes(), caller.as_deref()).await.map_err(to_status)?;
        let (schema, _) = training.open_stream(&set).await.map_err(to_status)?;
        let rows = i64::try_from(set.rows).unwrap_or(i64::MAX);
        let info = FlightInfo::new()
            .try_with_schema(&schema)
            .map_err(|e| to_status(Error::Internal(e.to_string())))?
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
        let training = self.app.project().training();
        let set = training.fetch(&request.into_inner().ticket, caller.as_deref()).await.map_err(to_status)?;
        let (schema, batches) = training.open_stream(&set).await.map_err(to_status)?;
        let batches = batches.map_err(|e| FlightError::Tonic(Box::new(to_status(e))));
        let stream =
            FlightDataEncoderBuilder::new().with_schema(schema).build(batches).map_err(flight_status);
        Ok(Response::new(Box::pin(stream)))
    }

    async fn do_put(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        let owner = caller(&request);
        let idle = self.limits.idle;
        let stalled = move || {
            to_status(Error::Timeout(format!(
                "the upload sent nothing for {idle:?} (the upload idle timeout); send the spine without pauses"
            )))
        };
        let invalid = |text: &str| to_status(Error::Invalid(text.into()));
        let mut incoming = request.into_inner();
        let first = tokio::time::timeout(idle, incoming.message())
            .await
            .map_err(|_| stalled())??
            .ok_or_else(|| invalid("DoPut sent no data: send the spine's schema and batches"))?;
        let descriptor = first
            .flight_descriptor
            .clone()
            .ok_or_else(|| invalid("DoPut needs a command descriptor naming the features (JSON)"))?;
        if descriptor.r#type() != DescriptorType::Cmd {
            return Err(invalid(
                "DoPut needs a command descriptor (FlightDescriptor.for_command) whose command is JSON naming the features",
            ));
        }
        let spec: TrainingSpec = serde_json::from_slice(&descriptor.cmd).map_err(|e| {
            to_status(Error::Invalid(format!(
                "the DoPut command is not a training set request: {e}; send JSON like \
                 {{\"features\": [\"view:feature\"]}} or {{\"feature_service\": \"name\"}}"
            )))
        })?;
        let data = futures::stream::once(async move { Ok(first) })
            .chain(incoming.map_err(|s| FlightError::Tonic(Box::new(s))))
            .boxed();
        // The decoded stream as spine items: its schema, then its batches. A status of the
        // client's own stream (a message over the size limit, a cancelled call) is kept aside
        // and answered as it is, not reworded as bad spine data.
        let transport: Arc<std::sync::Mutex<Option<Status>>> = Arc::default();
        let seen = transport.clone();
        // Arrow's IPC reader panics on a batch whose buffers lie past its body (as
        // `convert::decode_ipc` found under fuzzing): such a stream ends as invalid data.
        let decoded = std::panic::AssertUnwindSafe(FlightDataDecoder::new(data)).catch_unwind();
        let spine = decoded.filter_map(move |decoded| {
            let seen = seen.clone();
            async move {
                let Ok(decoded) = decoded else {
                    return Some(Err(Error::Invalid(
                        "the spine stream is malformed Arrow data (a buffer lies outside its message)".into(),
                    )));
                };
                match decoded {
                    Ok(d) => match d.payload {
                        DecodedPayload::Schema(schema) => Some(Ok(SpineItem::Schema(schema))),
                        DecodedPayload::RecordBatch(batch) => Some(Ok(SpineItem::Batch(batch))),
                        DecodedPayload::None => None,
                    },
                    Err(FlightError::Tonic(status)) => {
                        let error = Error::Invalid(status.message().to_string());
                        *seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(*status);
                        Some(Err(error))
                    }
                    Err(other) => Some(Err(Error::Invalid(format!(
                        "the spine stream is not valid Arrow Flight data: {other}"
                    )))),
                }
            }
        });
        let built = self.app.project().build_training_set(owner, &spec, spine, self.limits, true).await;
        let built = match built {
            Ok(b) => b,
            Err(e) => {
                let held = transport.lock().unwrap_or_else(|p| p.into_inner()).take();
                return Err(held.unwrap_or_else(|| to_status(e)));
            }
        };
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
