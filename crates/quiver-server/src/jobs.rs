//! Materialization jobs run by the server in the background.
//!
//! A job is a task of its own, not tied to the call that started it: a client that
//! disconnects leaves it running. While a job runs, its views are claimed; a second job
//! asking for any of them is refused (naming the job that holds it), so two jobs never
//! materialize the same view at once in this server.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use quiver_offline::materialize::{Progress, ViewReport, ViewRows};

use crate::pb;

/// Jobs kept for `List` / `Get` after they end.
const FINISHED_KEPT: usize = 200;

/// One view's progress within a job.
#[derive(Clone, Debug)]
pub struct ViewRun {
    pub state: pb::ViewRunState,
    pub rows: Option<ViewRows>,
    pub report: Option<ViewReport>,
}

/// A job's current state.
#[derive(Clone, Debug)]
pub struct JobRecord {
    pub id: String,
    pub state: pb::JobState,
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
            state: pb::JobState::Pending,
            created_at: now,
            finished_at: None,
            views: views
                .iter()
                .map(|v| (v.clone(), ViewRun { state: pb::ViewRunState::Pending, rows: None, report: None }))
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
            let failed =
                error.is_some() || record.views.values().any(|v| v.state == pb::ViewRunState::Failed);
            record.state = if failed { pb::JobState::Failed } else { pb::JobState::Succeeded };
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
pub struct JobProgress(pub Arc<Mutex<JobRecord>>);

impl Progress for JobProgress {
    fn start_view(&self, view: &str, rows: ViewRows) {
        let mut record = lock(&self.0);
        record.state = pb::JobState::Running;
        if let Some(v) = record.views.get_mut(view) {
            v.state = pb::ViewRunState::Running;
            v.rows = Some(rows);
        }
    }

    fn finish_view(&self, report: &ViewReport) {
        let mut record = lock(&self.0);
        if let Some(v) = record.views.get_mut(&report.view) {
            v.state = match (&report.error, &report.skipped) {
                (Some(_), _) => pb::ViewRunState::Failed,
                (None, Some(_)) => pb::ViewRunState::Skipped,
                _ => pb::ViewRunState::Succeeded,
            };
            v.report = Some(report.clone());
        }
    }
}

/// A job on the wire.
pub fn to_pb(record: &JobRecord) -> pb::MaterializationJob {
    let ns = |t: DateTime<Utc>| t.timestamp_nanos_opt().unwrap_or(0);
    pb::MaterializationJob {
        id: record.id.clone(),
        state: record.state as i32,
        created_at_ns: ns(record.created_at),
        finished_at_ns: record.finished_at.map_or(0, ns),
        views: record
            .order
            .iter()
            .filter_map(|name| record.views.get(name).map(|v| (name, v)))
            .map(|(name, v)| {
                let report = v.report.as_ref();
                let (rows_done, rows_expected) = match (report, &v.rows) {
                    (Some(r), _) => (r.rows, r.rows),
                    (None, Some(rows)) => {
                        (rows.written.load(Ordering::Relaxed), rows.expected().unwrap_or(0))
                    }
                    (None, None) => (0, 0),
                };
                pb::ViewProgress {
                    view: name.clone(),
                    state: v.state as i32,
                    rows_done,
                    rows_expected,
                    window_start_ns: report.and_then(|r| r.window_start).map_or(0, ns),
                    window_end_ns: report.and_then(|r| r.window_end).map_or(0, ns),
                    offline_version: report.and_then(|r| r.offline_version),
                    online_rows: report.and_then(|r| r.online_rows).unwrap_or(0),
                    seconds: report.map_or(0.0, |r| r.seconds),
                    message: report
                        .and_then(|r| r.error.clone().or_else(|| r.skipped.clone()))
                        .unwrap_or_default(),
                }
            })
            .collect(),
        error: record.error.clone().unwrap_or_default(),
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
        assert_eq!(jobs.get(&id).unwrap().state, pb::JobState::Succeeded);
        // Released when the first job ends.
        assert!(jobs.start(&["b".into()]).is_ok());
        jobs.finish(&other, Some("boom".into()));
        assert_eq!(jobs.list().len(), 3);
        let other_id = lock(&other).id.clone();
        assert_eq!(jobs.get(&other_id).unwrap().state, pb::JobState::Failed);
    }
}
