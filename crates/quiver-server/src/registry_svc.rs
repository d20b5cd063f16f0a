//! `RegistryService`: plan and apply definitions, read what is applied.

use std::sync::Arc;

use quiver_core::registry::bounded_applied_by;
use tonic::{Request, Response, Status};

use crate::app::App;
use crate::auth::Principal;
use crate::convert;
use crate::error::to_status;
use crate::pb;
use crate::pb::registry_service_server::RegistryService;

pub struct RegistryApi(pub Arc<App>);

/// The documents of a request as `(name, text)`; unnamed ones are numbered.
fn documents(documents: Vec<pb::YamlDocument>) -> Vec<(String, String)> {
    documents
        .into_iter()
        .enumerate()
        .map(|(i, d)| (if d.name.is_empty() { format!("document {}", i + 1) } else { d.name }, d.content))
        .collect()
}

#[tonic::async_trait]
impl RegistryService for RegistryApi {
    async fn plan(&self, request: Request<pb::PlanRequest>) -> Result<Response<pb::PlanResponse>, Status> {
        let plan =
            self.0.project().plan(documents(request.into_inner().documents)).await.map_err(to_status)?;
        Ok(Response::new(pb::PlanResponse {
            registry_version: plan.registry_version,
            changes: convert::changes(&plan.changes),
        }))
    }

    async fn apply(&self, request: Request<pb::ApplyRequest>) -> Result<Response<pb::ApplyResponse>, Status> {
        // With auth on, the record names the token that applied, not what the request says.
        let principal = request.extensions().get::<Principal>().cloned();
        let req = request.into_inner();
        let applied_by = match principal {
            Some(p) => p.name,
            None => match bounded_applied_by(&req.applied_by) {
                name if name.trim().is_empty() => "grpc".to_string(),
                name => name,
            },
        };
        let applied = self
            .0
            .project()
            .apply(documents(req.documents), req.expected_version, &applied_by)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::ApplyResponse {
            applied: applied.applied,
            version: applied.version,
            changes: convert::changes(&applied.changes),
            deleted_online_rows: applied.deleted_online_rows,
        }))
    }

    async fn list_entities(
        &self,
        request: Request<pb::ListRequest>,
    ) -> Result<Response<pb::ListEntitiesResponse>, Status> {
        let s = self.0.project().version(request.into_inner().registry_version).await.map_err(to_status)?;
        Ok(Response::new(pb::ListEntitiesResponse {
            registry_version: s.version,
            entities: convert::entities(&s.definitions),
        }))
    }

    async fn list_sources(
        &self,
        request: Request<pb::ListRequest>,
    ) -> Result<Response<pb::ListSourcesResponse>, Status> {
        let s = self.0.project().version(request.into_inner().registry_version).await.map_err(to_status)?;
        Ok(Response::new(pb::ListSourcesResponse {
            registry_version: s.version,
            sources: convert::sources(&s.definitions),
        }))
    }

    async fn list_feature_views(
        &self,
        request: Request<pb::ListRequest>,
    ) -> Result<Response<pb::ListFeatureViewsResponse>, Status> {
        let s = self.0.project().version(request.into_inner().registry_version).await.map_err(to_status)?;
        Ok(Response::new(pb::ListFeatureViewsResponse {
            registry_version: s.version,
            feature_views: s.definitions.feature_views.iter().map(|v| convert::feature_view(&s, v)).collect(),
        }))
    }

    async fn list_feature_services(
        &self,
        request: Request<pb::ListRequest>,
    ) -> Result<Response<pb::ListFeatureServicesResponse>, Status> {
        let s = self.0.project().version(request.into_inner().registry_version).await.map_err(to_status)?;
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
        let s = self.0.project().version(req.registry_version).await.map_err(to_status)?;
        let view = crate::domain::project::view(&s, &req.name).map_err(to_status)?;
        Ok(Response::new(pb::GetFeatureViewResponse {
            registry_version: s.version,
            feature_view: Some(convert::feature_view(&s, view)),
        }))
    }

    async fn history(&self, _: Request<pb::HistoryRequest>) -> Result<Response<pb::HistoryResponse>, Status> {
        let versions = self.0.project().registry().history().await.map_err(to_status)?;
        Ok(Response::new(pb::HistoryResponse {
            versions: versions.iter().map(convert::registry_version).collect(),
        }))
    }
}
