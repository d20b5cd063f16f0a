//! `RegistryService`: plan and apply definitions, read what is applied.

use std::sync::Arc;

use quiver_core::definitions::Definitions;
use quiver_core::diff::{diff, views_leaving_online};
use quiver_core::registry::ApplyOutcome;
use quiver_core::repo::{LoadedDefinitions, parse_documents};
use tonic::{Request, Response, Status};

use crate::app::App;
use crate::auth::Principal;
use crate::convert;
use crate::error::to_status;
use crate::pb;
use crate::pb::registry_service_server::RegistryService;

pub struct RegistryApi(pub Arc<App>);

/// A free-text `applied_by` as recorded: at most 64 characters, no control characters.
fn bounded_name(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(64).collect()
}

impl RegistryApi {
    /// Parses and checks documents (structure, references, lake data).
    async fn load(&self, documents: Vec<pb::YamlDocument>) -> Result<LoadedDefinitions, Status> {
        if documents.is_empty() {
            return Err(Status::invalid_argument(
                "no definitions sent: pass the YAML documents of the project's feature_defs/ folder",
            ));
        }
        let docs: Vec<(String, String)> = documents
            .into_iter()
            .enumerate()
            .map(|(i, d)| (if d.name.is_empty() { format!("document {}", i + 1) } else { d.name }, d.content))
            .collect();
        let loaded = parse_documents(&docs);
        quiver_offline::check::check_all(&loaded, &self.0.lake, self.0.check_limits)
            .await
            .map_err(to_status)?;
        Ok(loaded)
    }
}

#[tonic::async_trait]
impl RegistryService for RegistryApi {
    async fn plan(&self, request: Request<pb::PlanRequest>) -> Result<Response<pb::PlanResponse>, Status> {
        let loaded = self.load(request.into_inner().documents).await?;
        let head = self.0.registry.head().await.map_err(to_status)?;
        let empty = Definitions::default();
        let changes = diff(head.as_ref().map_or(&empty, |h| &h.definitions), &loaded.definitions);
        Ok(Response::new(pb::PlanResponse {
            registry_version: head.map_or(0, |h| h.version),
            changes: convert::changes(&changes),
        }))
    }

    async fn apply(&self, request: Request<pb::ApplyRequest>) -> Result<Response<pb::ApplyResponse>, Status> {
        // With auth on, the record names the token that applied, not what the request says.
        let principal = request.extensions().get::<Principal>().cloned();
        let req = request.into_inner();
        let loaded = self.load(req.documents).await?;
        let head = self.0.registry.head().await.map_err(to_status)?;
        let empty = Definitions::default();
        let changes = diff(head.as_ref().map_or(&empty, |h| &h.definitions), &loaded.definitions);
        let applied_by = match principal {
            Some(p) => p.name,
            None if req.applied_by.is_empty() => "grpc".to_string(),
            None => bounded_name(&req.applied_by),
        };
        let outcome = self
            .0
            .registry
            .apply(&loaded.definitions, req.expected_version, &applied_by)
            .await
            .map_err(to_status)?;
        match outcome {
            ApplyOutcome::Unchanged { version } => Ok(Response::new(pb::ApplyResponse {
                applied: false,
                version,
                changes: Vec::new(),
                deleted_online_rows: Default::default(),
            })),
            ApplyOutcome::Applied(snapshot) => {
                let version = snapshot.version;
                self.0.install(Arc::new(*snapshot));
                tracing::info!(version, by = %applied_by, "registry version applied");
                let mut deleted = std::collections::HashMap::new();
                for view in views_leaving_online(&changes, &loaded.definitions) {
                    let n = self.0.online.delete_view(&view).await.map_err(|e| {
                        Status::unavailable(format!(
                            "registry version {version} is applied, but deleting the online rows of '{view}' \
                             failed: {e}; apply again or delete them when the store is back"
                        ))
                    })?;
                    deleted.insert(view, n);
                }
                Ok(Response::new(pb::ApplyResponse {
                    applied: true,
                    version,
                    changes: convert::changes(&changes),
                    deleted_online_rows: deleted,
                }))
            }
        }
    }

    async fn list_entities(
        &self,
        request: Request<pb::ListRequest>,
    ) -> Result<Response<pb::ListEntitiesResponse>, Status> {
        let s = self.0.version(request.into_inner().registry_version).await?;
        Ok(Response::new(pb::ListEntitiesResponse {
            registry_version: s.version,
            entities: convert::entities(&s.definitions),
        }))
    }

    async fn list_sources(
        &self,
        request: Request<pb::ListRequest>,
    ) -> Result<Response<pb::ListSourcesResponse>, Status> {
        let s = self.0.version(request.into_inner().registry_version).await?;
        Ok(Response::new(pb::ListSourcesResponse {
            registry_version: s.version,
            sources: convert::sources(&s.definitions),
        }))
    }

    async fn list_feature_views(
        &self,
        request: Request<pb::ListRequest>,
    ) -> Result<Response<pb::ListFeatureViewsResponse>, Status> {
        let s = self.0.version(request.into_inner().registry_version).await?;
        Ok(Response::new(pb::ListFeatureViewsResponse {
            registry_version: s.version,
            feature_views: s.definitions.feature_views.iter().map(|v| convert::feature_view(&s, v)).collect(),
        }))
    }

    async fn list_feature_services(
        &self,
        request: Request<pb::ListRequest>,
    ) -> Result<Response<pb::ListFeatureServicesResponse>, Status> {
        let s = self.0.version(request.into_inner().registry_version).await?;
        Ok(Response::new(pb::ListFeatureServicesResponse {
            registry_version: s.version,
            feature_services: convert::feature_services(&s.definitions),
        }))
    }

    async fn get_feature_view(
        &self,
        request: Request<pb::GetFeatureViewRequest>,
    ) -> Result<Response<pb::GetFeatureViewResponse>, Status> {
        let req = request.into_inner();
        let s = self.0.version(req.registry_version).await?;
        let view =
            s.definitions.feature_view(&req.name).ok_or_else(|| crate::app::view_not_found(&s, &req.name))?;
        Ok(Response::new(pb::GetFeatureViewResponse {
            registry_version: s.version,
            feature_view: Some(convert::feature_view(&s, view)),
        }))
    }

    async fn history(&self, _: Request<pb::HistoryRequest>) -> Result<Response<pb::HistoryResponse>, Status> {
        let versions = self.0.registry.history().await.map_err(to_status)?;
        Ok(Response::new(pb::HistoryResponse {
            versions: versions.iter().map(convert::registry_version).collect(),
        }))
    }
}
