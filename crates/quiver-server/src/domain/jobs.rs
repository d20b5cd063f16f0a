//! Materialization jobs run by the server in the background.
//!
//! A job is a task of its own, not tied to the call that started it: a client that
//! disconnects leaves it running. While a job runs, its views are claimed; a second job
//! asking for any of them is refused (naming the job that holds it), so two jobs never
//! materialize the same view at once in this server.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use quiver_offline::materialize::{Materializer, Progress, Span, ViewReport, ViewRows};

use super::project::{Project, view};
use super::{Error, Result};

/// Where a job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobState {
    Pending,
    Running,
    Succeeded,
    /// The job, or one of its views, failed.
    Failed,
}

/// Where one view of a job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViewRunState {
    Pending,
    Running,
    Succeeded,
    Failed,
    /// Nothing to do (already up to date, no data).
    Skipped,
}

/// Jobs kept for `List` / `Get` after they end.
const FINISHED_KEPT: usize = 200;

/// One view's progress within a job.
#[derive(Clone, Debug)]
pub struct ViewRun {
    pub state: ViewRunState,
    pub rows: Option<ViewRows>,
    pub report: Option<ViewReport>,
}

/// A job's current state.
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

#[derive(Default)]
struct Inner {
    jobs: Vec<Arc<Mutex<JobRecord>>>,
    /// View -> id of the job materializing it.
    busy: HashMap<String, String>,
    next: u64,
}

/// Every job of this server.
#[derive(Default)]
pub struct Jobs {
    inner: Mutex<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep serving it.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Jobs {
    /// Registers a job for `views`, claiming them; `Err` names a view already claimed and
    /// the job holding it.
    pub fn start(&self, views: &[String]) -> Result<Arc<Mutex<JobRecord>>, (String, String)> {
        let mut inner = lock(&self.inner);
        if let Some(v) = views.iter().find(|v| inner.busy.contains_key(*v)) {
            return Err((v.clone(), inner.busy[v].clone()));
        }
        inner.next += 1;
        let now = Utc::now();
        let id = format!("mat-{}-{}", now.format("%Y%m%dT%H%M%S"), inner.next);
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

    /// A job by id (`None` when unknown or pushed out by newer finished jobs).
    pub fn get(&self, id: &str) -> Option<JobRecord> {
        lock(&self.inner).jobs.iter().map(|j| lock(j).clone()).find(|j| j.id == id)
    }

    /// Newest first.
    pub fn list(&self) -> Vec<JobRecord> {
        let mut all: Vec<JobRecord> = lock(&self.inner).jobs.iter().map(|j| lock(j).clone()).collect();
        all.reverse();
        all
    }
}

/// Feeds a job's record from the materializer's progress calls.
struct JobProgress(Arc<Mutex<JobRecord>>);

impl Progress for JobProgress {
    fn start_view(&self, view: &str, rows: ViewRows) {
        let mut record = lock(&self.0);
        record.state = JobState::Running;
        if let Some(v) = record.views.get_mut(view) {
            v.state = ViewRunState::Running;
            v.rows = Some(rows);
        }
    }

    fn finish_view(&self, report: &ViewReport) {
        let mut record = lock(&self.0);
        if let Some(v) = record.views.get_mut(&report.view) {
            v.state = match (&report.error, &report.skipped) {
                (Some(_), _) => ViewRunState::Failed,
                (None, Some(_)) => ViewRunState::Skipped,
                _ => ViewRunState::Succeeded,
            };
            v.report = Some(report.clone());
        }
    }
}

impl Project {
    /// Starts materializing `span` for the named views (all when empty) as a background
    /// job, and returns the job as it starts. Refused when a named view is unknown or
    /// another job of this server holds one of the views.
    pub fn start_materialization(self: &Arc<Self>, span: Span, views: &[String]) -> Result<JobRecord> {
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
        let job = self.jobs().start(&views).map_err(|(view, holder)| {
            Error::NotReady(format!(
                "feature view '{view}' is being materialized by job {holder}; wait for it (MaterializeService.Get) and start again"
            ))
        })?;
        let first = lock(&job).clone();
        tracing::info!(job = %first.id, views = ?views, "materialization job started");
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
            };
            let progress = JobProgress(job.clone());
            let result = materializer.run(span, &views, &progress).await;
            let error = result.err().map(|e| e.to_string());
            project.jobs().finish(&job, error);
            let done = lock(&job).clone();
            tracing::info!(job = %done.id, state = ?done.state, "materialization job finished");
        });
        Ok(first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_is_claimed_by_one_job_at_a_time() {
        let jobs = Jobs::default();
        let first = jobs.start(&["a".into(), "b".into()]).unwrap();
        let id = lock(&first).id.clone();
        let (view, holder) = jobs.start(&["c".into(), "b".into()]).unwrap_err();
        assert_eq!((view.as_str(), holder.as_str()), ("b", id.as_str()));
        // Other views are free.
        let other = jobs.start(&["c".into()]).unwrap();
        jobs.finish(&first, None);
        assert_eq!(jobs.get(&id).unwrap().state, JobState::Succeeded);
        // Released when the first job ends.
        assert!(jobs.start(&["b".into()]).is_ok());
        jobs.finish(&other, Some("boom".into()));
        assert_eq!(jobs.list().len(), 3);
        let other_id = lock(&other).id.clone();
        assert_eq!(jobs.get(&other_id).unwrap().state, JobState::Failed);
    }
}
