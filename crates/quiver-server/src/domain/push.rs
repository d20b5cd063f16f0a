//! Rows from outside written to a view's stores.

use datafusion::arrow::array::RecordBatch;
use std::time::Duration;

use quiver_offline::lease::LeaseSettings;
use quiver_offline::push::{PushOutcome, PushTargets, push};

use super::Result;
use super::project::{Project, view};

/// How long a push to offline waits for the view's lease.
const PUSH_LEASE_WAIT: Duration = Duration::from_secs(10);

/// Where pushed rows go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushTo {
    Online,
    Offline,
    Both,
}

impl Project {
    /// Writes `batches` (the view's join keys, event time, optional created time and
    /// features) to the view's stores.
    pub async fn push(&self, view_name: &str, batches: Vec<RecordBatch>, to: PushTo) -> Result<PushOutcome> {
        let snapshot = self.require_current()?;
        let view = view(&snapshot, view_name)?;
        let targets = PushTargets {
            online: matches!(to, PushTo::Online | PushTo::Both),
            offline: matches!(to, PushTo::Offline | PushTo::Both),
            online_expiry: self.online_expiry(),
            max_future: Some(self.push_max_future()),
        };
        let online = Some(self.online().as_ref());
        let outcome = push(
            self.lake().session(),
            &snapshot.definitions,
            view,
            self.offline(),
            online,
            batches,
            targets,
            // Pushes to one view take turns (each holds the lease for one commit); a push
            // that meets a materialization of the view waits a little, then is refused.
            &LeaseSettings { wait: PUSH_LEASE_WAIT, ..self.lease("push") },
        )
        .await?;
        tracing::info!(
            view = view_name,
            rows = outcome.rows,
            online_rows = outcome.online_rows_written,
            offline_version = ?outcome.offline_version,
            "rows pushed"
        );
        Ok(outcome)
    }
}
