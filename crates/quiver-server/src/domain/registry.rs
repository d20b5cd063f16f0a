//! Plan and apply: definitions sent as YAML documents, checked against the lake, compared
//! with the registry head, and applied as a new version (compare-and-swap).

use std::collections::HashMap;
use std::sync::Arc;

use quiver_core::definitions::Definitions;
use quiver_core::diff::{ObjectChange, diff, views_leaving_online};
use quiver_core::registry::ApplyOutcome;
use quiver_core::repo::{LoadedDefinitions, parse_documents};

use super::project::Project;
use super::{Error, Result};

/// What applying documents would change.
#[derive(Debug)]
pub struct Plan {
    /// The registry version compared against (0 when nothing is applied).
    pub registry_version: u64,
    pub changes: Vec<ObjectChange>,
}

/// What an apply did.
#[derive(Debug)]
pub struct Applied {
    /// False when the definitions equal the head's (no version made).
    pub applied: bool,
    pub version: u64,
    pub changes: Vec<ObjectChange>,
    /// Online rows deleted per view that left the online store.
    pub deleted_online_rows: HashMap<String, u64>,
}

impl Project {
    /// Parses and checks documents (structure, references, lake data); each is
    /// `(name, YAML text)`.
    async fn load(&self, documents: Vec<(String, String)>) -> Result<LoadedDefinitions> {
        if documents.is_empty() {
            return Err(Error::Invalid(
                "no definitions sent: pass the YAML documents of the project's feature_defs/ folder".into(),
            ));
        }
        let loaded = parse_documents(&documents);
        quiver_offline::check::check_all(&loaded, self.lake(), self.check_limits()).await?;
        Ok(loaded)
    }

    /// The changes applying `documents` would make to the registry head.
    pub async fn plan(&self, documents: Vec<(String, String)>) -> Result<Plan> {
        let loaded = self.load(documents).await?;
        let head = self.registry().head().await?;
        let empty = Definitions::default();
        let changes = diff(head.as_ref().map_or(&empty, |h| &h.definitions), &loaded.definitions);
        Ok(Plan { registry_version: head.map_or(0, |h| h.version), changes })
    }

    /// Applies `documents` as a new registry version if the head is still
    /// `expected_version` (0: whatever it is), recorded as applied by `applied_by`; serves
    /// the new version at once and deletes the online rows of views that left the online
    /// store.
    pub async fn apply(
        &self,
        documents: Vec<(String, String)>,
        expected_version: u64,
        applied_by: &str,
    ) -> Result<Applied> {
        let loaded = self.load(documents).await?;
        let head = self.registry().head().await?;
        let empty = Definitions::default();
        let changes = diff(head.as_ref().map_or(&empty, |h| &h.definitions), &loaded.definitions);
        let outcome = self.registry().apply(&loaded.definitions, expected_version, applied_by).await?;
        let snapshot = match outcome {
            ApplyOutcome::Unchanged { version } => {
                return Ok(Applied {
                    applied: false,
                    version,
                    changes: Vec::new(),
                    deleted_online_rows: HashMap::new(),
                });
            }
            ApplyOutcome::Applied(snapshot) => snapshot,
        };
        let version = snapshot.version;
        self.install(Arc::new(*snapshot));
        tracing::info!(version, by = %applied_by, "registry version applied");
        let mut deleted = HashMap::new();
        for view in views_leaving_online(&changes, &loaded.definitions) {
            let n = self.online().delete_view(&view).await.map_err(|e| {
                super::store_down(
                    format_args!(
                        "registry version {version} is applied, but deleting the online rows of '{view}' \
                         failed; apply again or delete them when the store is back"
                    ),
                    e,
                )
            })?;
            deleted.insert(view, n);
        }
        Ok(Applied { applied: true, version, changes, deleted_online_rows: deleted })
    }
}
