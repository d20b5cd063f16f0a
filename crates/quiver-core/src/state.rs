//! Operational state, apart from definition versions: per feature view, the materialization
//! watermark and the recent runs. It lives in the offline store (`.quiver/state/` there),
//! next to the tables it describes.
//!
//! One small JSON document per view (`views/<view>.json`), overwritten on each run:
//! the watermark is one value, not a growing list, and only the last
//! [`RUNS_KEPT`] runs are kept. The document is written only after the offline commit it
//! describes, so a run that fails or is killed leaves the watermark where it was.

use std::collections::BTreeMap;

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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
    /// Rows of the source without an event time: they belong to no window, so every run
    /// leaves them out and counts them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped_null_event_times: u64,
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
    /// The view's expectations the window broke (committed anyway under `on_failure: warn`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expectations: Vec<ExpectationFailure>,
    /// Per feature, the statistics of the rows the run wrote (or would have written, for a
    /// window its expectations stopped).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub statistics: BTreeMap<String, FeatureStatistics>,
}

/// The quantiles every number feature's statistics give.
pub const QUANTILES: [f64; 7] = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99];

/// The statistics of one feature over one run's rows. `min` to `histogram` are for number
/// features (over their finite values); `top` for strings and booleans.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureStatistics {
    /// Rows.
    pub count: u64,
    /// Rows without a value.
    pub nulls: u64,
    /// Distinct values, approximately (HyperLogLog, 4 096 registers: about 1.6 % standard
    /// error); `None` for list features.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distinct: Option<u64>,
    /// NaN and infinite values of a float feature (left out of the number statistics).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub non_finite: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    /// Population standard deviation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stddev: Option<f64>,
    /// [`QUANTILES`] by their text ("0.5"): exact up to 16 384 values per writer, else from a
    /// uniform sample of that many per writer.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub quantiles: BTreeMap<String, f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histogram: Option<Histogram>,
}

/// How a feature's values spread.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Histogram {
    /// Numbers: equal-width bins from `min` to `max` (`edges` has one more entry than
    /// `counts`; the last bin includes `max`). Counts are exact under the same condition as
    /// the quantiles, else scaled from the sample.
    Bins { edges: Vec<f64>, counts: Vec<u64> },
    /// Strings and booleans: the most frequent values, most frequent first, and the rows
    /// holding any other value. Exact when a writer saw at most 256 distinct values, else
    /// lower bounds (Misra-Gries).
    Top { values: Vec<(String, u64)>, other: u64 },
}

/// Most example rows kept per broken expectation.
pub const EXAMPLES_KEPT: usize = 5;

/// One expectation a window (or a push) broke.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpectationFailure {
    /// The expectation as `describe` shows it, e.g. `conv_rate between 0 and 1`.
    pub expectation: String,
    /// Rows that break it, for row checks (`None` for `rows` and `freshness`, which judge
    /// the window as a whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_rows: Option<u64>,
    /// Rows checked.
    pub rows: u64,
    /// What was seen, for window checks (e.g. the newest event time and its age).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<String>,
    /// Up to [`EXAMPLES_KEPT`] breaking rows: their join keys, event time and the checked
    /// columns, as text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<std::collections::BTreeMap<String, String>>,
}

impl std::fmt::Display for ExpectationFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.failing_rows, &self.observed) {
            (Some(n), _) => write!(f, "{}: {n} of {} rows break it", self.expectation, self.rows),
            (None, Some(seen)) => write!(f, "{}: {seen}", self.expectation),
            (None, None) => write!(f, "{}: broken", self.expectation),
        }
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A view's operational state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
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

/// Why [`ViewState::pick_run`] found no run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoRun {
    /// No run asked for, and none kept has statistics.
    NoStatistics,
    /// `0` was given: runs count from 1, the newest.
    CountsFromOne,
    /// No run at that place or with that id; `kept` runs are kept.
    Unknown { kept: usize },
}

impl NoRun {
    /// What to tell the user, about view `view`.
    pub fn message(&self, view: &str) -> String {
        match self {
            NoRun::NoStatistics => {
                format!("feature view '{view}' has no run with statistics yet: materialize it first")
            }
            NoRun::CountsFromOne => "runs count from 1 (the newest run)".into(),
            NoRun::Unknown { kept } => format!(
                "feature view '{view}' has no such run; it keeps its last {kept} runs (give 1 for the newest, or a run id)"
            ),
        }
    }
}

impl ViewState {
    /// A run: `None` is the newest with statistics; a whole number k the k-th newest run (1
    /// the newest); anything else a run id.
    pub fn pick_run(&self, run: Option<&str>) -> std::result::Result<&RunRecord, NoRun> {
        let found = match run {
            None => self.runs.iter().rev().find(|r| !r.statistics.is_empty()),
            Some(text) => match text.parse::<usize>() {
                Ok(0) => return Err(NoRun::CountsFromOne),
                Ok(k) => self.runs.iter().rev().nth(k - 1),
                Err(_) => self.runs.iter().find(|r| r.run_id == text),
            },
        };
        found.ok_or(match run {
            None => NoRun::NoStatistics,
            Some(_) => NoRun::Unknown { kept: self.runs.len() },
        })
    }

    /// The newest run that succeeded.
    pub fn last_success(&self) -> Option<&RunRecord> {
        self.runs.iter().rev().find(|r| r.status == RunStatus::Succeeded)
    }

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

/// Reads and writes view states: `views/<view>.json` under a prefix of an object store (the
/// offline store's `.quiver/state/`).
#[derive(Clone, Debug)]
pub struct StateStore {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    /// Where a view's state is read from when it has none under `prefix`: the registry's
    /// `state/` (see [`StateStore::reading_registry`]).
    fallback: Option<(Arc<dyn ObjectStore>, ObjectPath)>,
}

impl StateStore {
    /// View states under `prefix` in `store`.
    pub fn at(store: Arc<dyn ObjectStore>, prefix: ObjectPath) -> Self {
        StateStore { store, prefix, fallback: None }
    }

    /// The same store, reading a view's state from `registry`'s `state/` prefix when it has
    /// none of its own: deployments that kept state beside the registry keep their
    /// watermarks and runs. This is a one-time migration on first write: the next save of
    /// that view writes it here, and from then on the copy beside the registry (left as it
    /// is, never written) is no longer read.
    pub fn reading_registry(self, registry: &Registry) -> Self {
        StateStore { fallback: Some(registry.state_location()), ..self }
    }

    fn path(prefix: &ObjectPath, view: &str) -> ObjectPath {
        prefix.clone().join("views").join(format!("{view}.json"))
    }

    /// The state at `path` in `store`; `None` when there is none.
    async fn read(store: &dyn ObjectStore, path: &ObjectPath) -> Result<Option<ViewState>> {
        match store.get(path).await {
            Ok(r) => {
                let bytes = r.bytes().await.map_err(|e| Error::storage(path, e))?;
                serde_json::from_slice(&bytes).map(Some).map_err(|e| Error::CorruptRegistry {
                    location: path.to_string(),
                    reason: format!("materialization state is not readable ({e})"),
                })
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(Error::storage(path, e)),
        }
    }

    /// The view's state; a view never materialized has the default (no watermark).
    pub async fn view(&self, view: &str) -> Result<ViewState> {
        if let Some(state) = Self::read(self.store.as_ref(), &Self::path(&self.prefix, view)).await? {
            return Ok(state);
        }
        if let Some((store, prefix)) = &self.fallback
            && let Some(state) = Self::read(store.as_ref(), &Self::path(prefix, view)).await?
        {
            return Ok(state);
        }
        Ok(ViewState { view: view.to_string(), ..Default::default() })
    }

    /// Replaces the view's state (one atomic put), always under this store's own prefix.
    pub async fn save(&self, state: &ViewState) -> Result<()> {
        let path = Self::path(&self.prefix, &state.view);
        let body =
            serde_json::to_vec_pretty(state).map_err(|e| Error::Internal(format!("encoding state: {e}")))?;
        self.store.put(&path, PutPayload::from(body)).await.map_err(|e| Error::storage(&path, e))?;
        Ok(())
    }
}
