//! Materialization jobs run by the server in the background.
//!
//! A job is a task of its own, not tied to the call that started it: a client that
//! disconnects leaves it running. While a job runs, its views are claimed in this server
//! (a second job asking for any of them is refused, naming the job that holds it), and each
//! view's lease is taken as it runs, so no other process materializes it meanwhile.
//!
//! Every job's record is also kept in the offline store, `.quiver/jobs/<id>.json`, rewritten
//! as its views start and finish and at least every [`HEARTBEAT`] while it runs; any server
//! sharing the store answers `Get` and `List` from there. A record still running but not
//! rewritten for [`STALE_AFTER`] belongs to a server that stopped: it is reported as failed
//! (its views' leases expire on their own).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use quiver_offline::materialize::{Materializer, Progress, Span, ViewReport, ViewRows};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use super::project::{Project, view};
use super::{Error, Result};

/// Where a job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Pending,
    Running,
    Succeeded,
    /// The job, or one of its views, failed (or the server running it stopped).
    Failed,
}

/// Where one view of a job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViewRunState {
    Pending,
    Running,
    Succeeded,
    Failed,
    /// Nothing to do (already up to date, no data).
    Skipped,
}

/// Jobs kept in memory for `List` / `Get` after they end.
const FINISHED_KEPT: usize = 200;

/// How long starting a job, and the job taking each view's lease, wait for a lease held by
/// someone else before refusing: longer than a push's commit, far shorter than another
/// process's materialization.
const START_LEASE_WAIT: Duration = Duration::from_secs(2);

/// Job records kept in the offline store (older ones are deleted by the sweep).
pub const RECORDS_KEPT: usize = 1000;
/// A running job's record is rewritten at least this often.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// A running job whose record is older than this was left by a server that stopped.
pub const STALE_AFTER: Duration = Duration::from_secs(30);

/// One view's progress within a job (live).
#[derive(Clone, Debug)]
pub struct ViewRun {
    pub state: ViewRunState,
    pub rows: Option<ViewRows>,
    pub report: Option<ViewReport>,
}

/// A job's live state in the server running it.
#[derive(Clone, Debug)]
pub struct JobRecord {
    pub id: String,
    pub state: JobState,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub views: BTreeMap<String, ViewRun>,
    /// View names in run order.
    pub order: Vec<String>,
    pub error: Option<String>,
}

/// One view of a job as reported (and stored).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ViewProgress {
    pub view: String,
    pub state: ViewRunState,
    pub rows_done: u64,
    /// 0 until known.
    pub rows_expected: u64,
    pub report: Option<ViewReport>,
}

/// A job as reported to clients and kept in the offline store.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobView {
    pub id: String,
    pub state: JobState,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// In run order.
    pub views: Vec<ViewProgress>,
    pub error: Option<String>,
    /// The server process running it.
    pub server: String,
}

impl JobRecord {
    fn view(&self, server: &str) -> JobView {
        use std::sync::atomic::Ordering;
        let views = self
            .order
            .iter()
            .filter_map(|name| self.views.get(name).map(|v| (name, v)))
            .map(|(name, v)| {
                let (rows_done, rows_expected) = match (&v.report, &v.rows) {
                    (Some(r), _) => (r.rows, r.rows),
                    (None, Some(rows)) => {
                        (rows.written.load(Ordering::Relaxed), rows.expected().unwrap_or(0))
                    }
                    (None, None) => (0, 0),
                };
                ViewProgress {
                    view: name.clone(),
                    state: v.state,
                    rows_done,
                    rows_expected,
                    report: v.report.clone(),
                }
            })
            .collect();
        JobView {
            id: self.id.clone(),
            state: self.state,
            created_at: self.created_at,
            finished_at: self.finished_at,
            views,
            error: self.error.clone(),
            server: server.to_string(),
        }
    }
}

#[derive(Default)]
struct Inner {
    jobs: Vec<Arc<Mutex<JobRecord>>>,
    /// View -> id of the job materializing it.
    busy: HashMap<String, String>,
}

/// Every job of this server, and the records of every server's jobs in the offline store.
pub struct Jobs {
    inner: Mutex<Inner>,
    /// This server process, as named in its records.
    server: String,
    /// The offline store and `<root>/.quiver/jobs` in it.
    shared: Option<(Arc<dyn ObjectStore>, ObjectPath)>,
}

impl Default for Jobs {
    fn default() -> Self {
        Jobs {
            inner: Mutex::default(),
            server: quiver_offline::lease::process_holder("quiver serve"),
            shared: None,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep serving it.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Whether `id` has the shape of a job id (`mat-`, then letters, digits and `-`), so a
/// client's id never names another object.
fn is_job_id(id: &str) -> bool {
    id.len() <= 64
        && id.strip_prefix("mat-").is_some_and(|rest| {
            !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn new_job_id(now: DateTime<Utc>) -> Result<String> {
    let mut bits = [0u8; 8];
    getrandom::fill(&mut bits)
        .map_err(|e| Error::Internal(format!("no random numbers for a job id: {e}")))?;
    Ok(format!("mat-{}-{}", now.format("%Y%m%dT%H%M%S"), hex::encode(bits)))
}

impl Jobs {
    /// Jobs whose records are kept under `root` (the offline store's root) in `store`.
    pub fn shared(store: Arc<dyn ObjectStore>, root: &ObjectPath) -> Self {
        Jobs { shared: Some((store, root.clone().join(".quiver").join("jobs"))), ..Jobs::default() }
    }

    /// Registers a job for `views`, claiming them; refused (naming the view and the job
    /// holding it) when a view is already claimed.
    pub fn start(&self, views: &[String]) -> Result<Arc<Mutex<JobRecord>>> {
        let mut inner = lock(&self.inner);
        if let Some(v) = views.iter().find(|v| inner.busy.contains_key(*v)) {
            return Err(Error::NotReady(format!(
                "feature view '{v}' is being materialized by job {}; wait for it (MaterializeService.Get) and start again",
                inner.busy[v]
            )));
        }
        let now = Utc::now();
        let id = new_job_id(now)?;
        for v in views {
            inner.busy.insert(v.clone(), id.clone());
        }
        let record = JobRecord {
            id,
            state: JobState::Pending,
            created_at: now,
            finished_at: None,
            views: views
                .iter()
                .map(|v| (v.clone(), ViewRun { state: ViewRunState::Pending, rows: None, report: None }))
                .collect(),
            order: views.to_vec(),
            error: None,
        };
        let job = Arc::new(Mutex::new(record));
        inner.jobs.push(job.clone());
        let finished = inner.jobs.iter().filter(|j| lock(j).finished_at.is_some()).count();
        if finished > FINISHED_KEPT {
            let mut extra = finished - FINISHED_KEPT;
            inner.jobs.retain(|j| {
                if extra > 0 && lock(j).finished_at.is_some() {
                    extra -= 1;
                    false
                } else {
                    true
                }
            });
        }
        Ok(job)
    }

    /// Ends a job: releases its views.
    pub fn finish(&self, job: &Arc<Mutex<JobRecord>>, error: Option<String>) {
        let (id, views) = {
            let mut record = lock(job);
            record.finished_at = Some(Utc::now());
            let failed = error.is_some() || record.views.values().any(|v| v.state == ViewRunState::Failed);
            record.state = if failed { JobState::Failed } else { JobState::Succeeded };
            record.error = error;
            (record.id.clone(), record.order.clone())
        };
        let mut inner = lock(&self.inner);
        for v in views {
            if inner.busy.get(&v) == Some(&id) {
                inner.busy.remove(&v);
            }
        }
    }

    fn local(&self, id: &str) -> Option<JobView> {
        lock(&self.inner)
            .jobs
            .iter()
            .map(|j| lock(j).clone())
            .find(|j| j.id == id)
            .map(|j| j.view(&self.server))
    }

    fn record_path(&self, id: &str) -> Option<(&Arc<dyn ObjectStore>, ObjectPath)> {
        self.shared.as_ref().map(|(store, prefix)| (store, prefix.clone().join(format!("{id}.json"))))
    }

    /// Writes a job's record to the offline store (no-op without one).
    async fn save(&self, job: &JobView) -> Result<()> {
        let Some((store, path)) = self.record_path(&job.id) else { return Ok(()) };
        let body =
            serde_json::to_vec(job).map_err(|e| Error::Internal(format!("encoding a job record: {e}")))?;
        store.put(&path, PutPayload::from(body)).await.map_err(|e| {
            super::store_down(format_args!("storing job {} in the offline store failed", job.id), e)
        })?;
        Ok(())
    }

    /// A job's record from the offline store, marked failed when its server stopped
    /// rewriting it.
    async fn stored(&self, id: &str) -> Result<Option<JobView>> {
        let Some((store, path)) = self.record_path(id) else { return Ok(None) };
        let got = match store.get(&path).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => {
                return Err(super::store_down(
                    format_args!("reading job {id} from the offline store failed"),
                    e,
                ));
            }
        };
        let modified = got.meta.last_modified;
        let bytes = got.bytes().await.map_err(|e| {
            super::store_down(format_args!("reading job {id} from the offline store failed"), e)
        })?;
        // Written by a server only; anything else there is not a job of ours.
        let Ok(mut job) = serde_json::from_slice::<JobView>(&bytes) else { return Ok(None) };
        if job.id != id {
            return Ok(None);
        }
        let stale = chrono::Duration::from_std(STALE_AFTER).unwrap_or(chrono::Duration::MAX);
        if matches!(job.state, JobState::Pending | JobState::Running) && modified + stale < Utc::now() {
            job.state = JobState::Failed;
            // Its last word is the latest moment it is known to have run: clients that wait
            // for a finish time stop waiting.
            job.finished_at = Some(modified);
            job.error = Some(format!(
                "the server running this job ({}) stopped before it finished: no word from it since {}; \
                 what it committed stays, and its views can be materialized again once their leases expire",
                job.server,
                modified.format("%Y-%m-%dT%H:%M:%SZ")
            ));
            for v in &mut job.views {
                if matches!(v.state, ViewRunState::Pending | ViewRunState::Running) {
                    v.state = ViewRunState::Failed;
                }
            }
        }
        Ok(Some(job))
    }

    /// A job by id: this server's own, or any server's from the offline store (`None` when
    /// unknown).
    pub async fn get(&self, id: &str) -> Result<Option<JobView>> {
        if !is_job_id(id) {
            return Ok(None);
        }
        if let Some(job) = self.local(id) {
            return Ok(Some(job));
        }
        self.stored(id).await
    }

    /// Ids of the job records in the offline store, oldest first.
    async fn stored_ids(&self) -> Result<Vec<String>> {
        let Some((store, prefix)) = &self.shared else { return Ok(Vec::new()) };
        let listed: Vec<object_store::ObjectMeta> = store
            .list(Some(prefix))
            .try_collect()
            .await
            .map_err(|e| super::store_down("listing jobs in the offline store failed", e))?;
        let mut ids: Vec<String> = listed
            .iter()
            .filter_map(|m| m.location.filename()?.strip_suffix(".json").map(str::to_string))
            .filter(|id| is_job_id(id))
            .collect();
        // Ids start with their creation time (to the second).
        ids.sort();
        Ok(ids)
    }

    /// Every server's jobs, newest first: this server's own, and the newest records in the
    /// offline store (up to [`FINISHED_KEPT`] of them).
    pub async fn list(&self) -> Result<Vec<JobView>> {
        let mut all: Vec<JobView> =
            lock(&self.inner).jobs.iter().map(|j| lock(j).view(&self.server)).collect();
        let ids = self.stored_ids().await?;
        for id in ids.iter().rev().take(FINISHED_KEPT) {
            if all.iter().any(|j| &j.id == id) {
                continue;
            }
            if let Some(job) = self.stored(id).await? {
                all.push(job);
            }
        }
        all.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| b.id.cmp(&a.id)));
        Ok(all)
    }

    /// Deletes the oldest job records beyond [`RECORDS_KEPT`]; returns how many.
    pub async fn prune(&self) -> Result<usize> {
        let Some((store, prefix)) = &self.shared else { return Ok(0) };
        let ids = self.stored_ids().await?;
        let extra = ids.len().saturating_sub(RECORDS_KEPT);
        for id in &ids[..extra] {
            match store.delete(&prefix.clone().join(format!("{id}.json"))).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(super::store_down("deleting an old job record failed", e)),
            }
        }
        Ok(extra)
    }

    /// Keeps a running job's record in the offline store up to date: on every `changed`
    /// signal and every [`HEARTBEAT`], until the job has finished and that was written.
    async fn publish(&self, job: &Arc<Mutex<JobRecord>>, changed: &Notify) {
        loop {
            let _ = tokio::time::timeout(HEARTBEAT, changed.notified()).await;
            let view = lock(job).view(&self.server);
            let done = view.finished_at.is_some();
            if let Err(e) = self.save(&view).await {
                tracing::warn!(job = %view.id, error = %e, "cannot store the job's record");
            }
            if done {
                return;
            }
        }
    }
}

/// Feeds a job's record from the materializer's progress calls.
struct JobProgress {
    job: Arc<Mutex<JobRecord>>,
    changed: Arc<Notify>,
}

impl Progress for JobProgress {
    fn start_view(&self, view: &str, rows: ViewRows) {
        let mut record = lock(&self.job);
        record.state = JobState::Running;
        if let Some(v) = record.views.get_mut(view) {
            v.state = ViewRunState::Running;
            v.rows = Some(rows);
        }
        self.changed.notify_one();
    }

    fn finish_view(&self, report: &ViewReport) {
        let mut record = lock(&self.job);
        if let Some(v) = record.views.get_mut(&report.view) {
            v.state = match (&report.error, &report.skipped) {
                (Some(_), _) => ViewRunState::Failed,
                (None, Some(_)) => ViewRunState::Skipped,
                _ => ViewRunState::Succeeded,
            };
            v.report = Some(report.clone());
        }
        self.changed.notify_one();
    }
}

impl Project {
    /// Starts materializing `span` for the named views (all when empty) as a background
    /// job, and returns the job as it starts. Refused when a named view is unknown, another
    /// job of this server holds one of the views, or another process holds its lease.
    pub async fn start_materialization(self: &Arc<Self>, span: Span, views: &[String]) -> Result<JobView> {
        if let Span::Window { start, end } = span
            && start >= end
        {
            return Err(Error::Invalid(format!(
                "the window is empty: start {start} is not before end {end}"
            )));
        }
        let snapshot = self.require_current()?;
        let defs = &snapshot.definitions;
        let views: Vec<String> = if views.is_empty() {
            defs.feature_views.iter().map(|v| v.name.clone()).collect()
        } else {
            for name in views {
                view(&snapshot, name)?;
            }
            views.to_vec()
        };
        // Views another process (a CLI, another replica) is materializing are refused here,
        // before the job starts; the job itself takes each view's lease as it runs. A push to
        // offline holds the lease for one commit, so a lease freed within a moment is waited
        // for rather than refused.
        let leases = self.offline().leases()?;
        for v in &views {
            leases.check_free(v, START_LEASE_WAIT).await?;
        }
        let jobs = self.jobs();
        let job = jobs.start(&views)?;
        let first = lock(&job).view(&jobs.server);
        if let Err(e) = jobs.save(&first).await {
            jobs.finish(&job, Some(e.to_string()));
            return Err(e);
        }
        tracing::info!(job = %first.id, views = ?views, "materialization job started");
        // Each view's lease is taken when the job reaches it, for later views long after the
        // check above: a push committing to one then holds it for a moment, waited for too.
        let lease = quiver_offline::lease::LeaseSettings {
            wait: START_LEASE_WAIT,
            ..self.lease(&format!("job {}", first.id))
        };
        // The job runs on its own task: the caller may go away.
        let project = self.clone();
        tokio::spawn(async move {
            let materializer = Materializer {
                lake: project.lake().clone(),
                store: project.offline().clone(),
                registry: project.registry().clone(),
                state: project.state().clone(),
                online: Some(project.online().clone()),
                online_expiry: project.online_expiry(),
                rows_per_writer: project.rows_per_writer(),
                lease,
                allow_future: false,
                // A rebuild replaces whole tables: an operator's step, run from the CLI.
                rebuild: false,
                engine: project.engine_arc(),
            };
            let changed = Arc::new(Notify::new());
            let progress = JobProgress { job: job.clone(), changed: changed.clone() };
            let publishing = {
                let project = project.clone();
                let job = job.clone();
                let changed = changed.clone();
                tokio::spawn(async move { project.jobs().publish(&job, &changed).await })
            };
            let result = materializer.run(span, &views, &progress).await;
            let error = result.err().map(|e| e.to_string());
            project.jobs().finish(&job, error);
            changed.notify_one();
            let _ = publishing.await;
            let done = lock(&job).clone();
            tracing::info!(job = %done.id, state = ?done.state, "materialization job finished");
        });
        Ok(first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_view_is_claimed_by_one_job_at_a_time() {
        let jobs = Jobs::default();
        let first = jobs.start(&["a".into(), "b".into()]).unwrap();
        let id = lock(&first).id.clone();
        let refused = jobs.start(&["c".into(), "b".into()]).unwrap_err().to_string();
        assert!(refused.contains("'b'") && refused.contains(&id), "{refused}");
        // Other views are free.
        let other = jobs.start(&["c".into()]).unwrap();
        jobs.finish(&first, None);
        assert_eq!(jobs.get(&id).await.unwrap().unwrap().state, JobState::Succeeded);
        // Released when the first job ends.
        assert!(jobs.start(&["b".into()]).is_ok());
        jobs.finish(&other, Some("boom".into()));
        assert_eq!(jobs.list().await.unwrap().len(), 3);
        let other_id = lock(&other).id.clone();
        assert_eq!(jobs.get(&other_id).await.unwrap().unwrap().state, JobState::Failed);
    }
}
