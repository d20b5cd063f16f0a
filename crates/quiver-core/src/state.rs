//! Operational state kept beside the registry, apart from definition versions: per feature
//! view, the materialization watermark and the recent runs.
//!
//! One small JSON document per view (`state/views/<view>.json`), overwritten on each run:
//! the watermark is one value, not a growing list, and only the last
//! [`RUNS_KEPT`] runs are kept. The document is written only after the offline commit it
//! describes, so a run that fails or is killed leaves the watermark where it was.

use chrono::{DateTime, Utc};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::registry::Registry;

/// How many runs each view's document remembers.
pub const RUNS_KEPT: usize = 20;

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Succeeded,
    Failed,
}

/// One materialization of one view.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub status: RunStatus,
    /// Rows written to the offline store.
    pub rows: u64,
    /// Rows of the window left out because a join key was missing (they name no entity).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped_null_keys: u64,
    /// Offline table version the run committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline_version: Option<u64>,
    /// Rows written to the online store (when the view is online).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub online_rows: Option<u64>,
    /// Registry version whose definitions the run used.
    pub registry_version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A view's operational state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewState {
    pub view: String,
    /// Event time up to which (exclusive) the view has been materialized; incremental runs
    /// continue from here.
    pub watermark: Option<DateTime<Utc>>,
    /// Newest event time materialized (for freshness).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest_event: Option<DateTime<Utc>>,
    /// The most recent runs, newest last.
    pub runs: Vec<RunRecord>,
}

impl ViewState {
    /// Records a run; a successful one moves the watermark forward (never back), to its
    /// window's end but never past the moment the run started: rows stamped later than that
    /// could not have been read yet, so the next incremental run starts there.
    pub fn record(&mut self, run: RunRecord) {
        if run.status == RunStatus::Succeeded {
            let reach = run.window_end.min(run.started_at);
            self.watermark = Some(self.watermark.map_or(reach, |w| w.max(reach)));
        }
        self.runs.push(run);
        if self.runs.len() > RUNS_KEPT {
            let extra = self.runs.len() - RUNS_KEPT;
            self.runs.drain(..extra);
        }
    }
}

/// Reads and writes view states under a registry's `state/` prefix.
#[derive(Clone, Debug)]
pub struct StateStore {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
}

impl StateStore {
    pub fn new(registry: &Registry) -> Self {
        let (store, prefix) = registry.state_location();
        StateStore { store, prefix }
    }

    fn path(&self, view: &str) -> ObjectPath {
        self.prefix.clone().join("views").join(format!("{view}.json"))
    }

    /// The view's state; a view never materialized has the default (no watermark).
    pub async fn view(&self, view: &str) -> Result<ViewState> {
        let path = self.path(view);
        match self.store.get(&path).await {
            Ok(r) => {
                let bytes = r.bytes().await.map_err(|e| Error::storage(&path, e))?;
                serde_json::from_slice(&bytes).map_err(|e| Error::CorruptRegistry {
                    location: path.to_string(),
                    reason: format!("materialization state is not readable ({e})"),
                })
            }
            Err(object_store::Error::NotFound { .. }) => {
                Ok(ViewState { view: view.to_string(), ..Default::default() })
            }
            Err(e) => Err(Error::storage(&path, e)),
        }
    }

    /// Replaces the view's state (one atomic put).
    pub async fn save(&self, state: &ViewState) -> Result<()> {
        let path = self.path(&state.view);
        let body =
            serde_json::to_vec_pretty(state).map_err(|e| Error::Internal(format!("encoding state: {e}")))?;
        self.store.put(&path, PutPayload::from(body)).await.map_err(|e| Error::storage(&path, e))?;
        Ok(())
    }
}
