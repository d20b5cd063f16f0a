//! Materialization leases: at most one process at a time writes a feature view's offline
//! table, across every CLI, server replica and scheduled job sharing the offline store.
//!
//! A lease is a sequence of small JSON objects in the offline store,
//! `.quiver/leases/<view>/<generation>.json`, each created with a create-only put (S3's
//! `If-None-Match: *`, a hard link on a local disk). The object with the highest generation
//! says who holds the view and until when:
//! - a process takes the lease by creating generation `g + 1` when the top object `g` is
//!   released or expired (or there is none). Of two processes racing for the same number,
//!   the store lets one create it; the other sees it and is refused (or waits);
//! - the holder renews by creating the next generation itself, every third of the lease's
//!   lifetime, and after a renewal that failed (store unreachable) every second. When that
//!   creation fails because the number exists and holds another acquisition's record
//!   (each carries a random token), someone took the lease over (the holder was too slow,
//!   paused or cut off): the holder learns it, and its [`Lease::check`] fails from then on.
//!   A record with the creator's own token (a retried request whose first attempt was
//!   stored) counts as created, for the first generation as for a renewal;
//! - writers call [`Lease::check`] right before each Delta commit: it fails when the lease
//!   was taken over, or when the last successful renewal is so old that less than a third
//!   of the lifetime is left (renewals failing, say the store unreachable). So a holder never
//!   commits on a lease it may have lost; a lease is never lost silently while it writes;
//! - release creates one more generation marked released; a holder killed with SIGKILL
//!   releases nothing, and its lease expires at most one lifetime after its last renewal.
//!
//! Expiry compares the holder's wall clock (written in the object) with the reader's, so
//! machines sharing a store need clocks within a fraction of the lifetime of each other
//! (NTP gives milliseconds; the default lifetime is 30 s, and a holder stops committing
//! with 10 s left).
//!
//! Old generations are deleted by the holder (all but the last [`KEPT`]); a generation
//! created next to a higher one (by a process whose listing was stale) does not count:
//! after creating, the taker lists again and backs off unless it is the top.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use crate::error::{Error, Result};

/// Lifetime of a lease unless the caller sets another.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30);
/// Shortest and longest lifetime accepted.
pub const MIN_TTL: Duration = Duration::from_secs(1);
pub const MAX_TTL: Duration = Duration::from_secs(3600);
/// Generations kept per view (older ones are deleted by the holder).
const KEPT: u64 = 8;
/// The folder of the offline store where leases live (not a valid view name, so never a
/// table's folder).
pub const LEASE_FOLDER: &str = ".quiver/leases";
/// How often a waiting process looks again.
const WAIT_STEP: Duration = Duration::from_millis(500);
/// How soon a holder tries again after a renewal failed (never later than a third of the
/// lifetime, the usual renewal period).
const RENEW_RETRY: Duration = Duration::from_secs(1);

/// How a process takes leases.
#[derive(Clone, Debug)]
pub struct LeaseSettings {
    /// Who holds it, as others will read it in their error: host, process, command.
    pub holder: String,
    /// How long a lease lives without renewal.
    pub ttl: Duration,
    /// How long to wait for a lease held by someone else before giving up (zero: fail at once).
    pub wait: Duration,
}

impl LeaseSettings {
    /// Settings naming this process (`what` on host, pid), with the default lifetime and no wait.
    pub fn for_process(what: &str) -> Self {
        LeaseSettings { holder: process_holder(what), ttl: DEFAULT_TTL, wait: Duration::ZERO }
    }
}

/// `what (pid N on HOST)`.
pub fn process_holder(what: &str) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown host".into());
    format!("{what} (pid {} on {host})", std::process::id())
}

/// One generation of a view's lease, as stored.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct Record {
    view: String,
    holder: String,
    /// Random, per acquisition: tells this holder's generations from another's of the same name.
    token: String,
    generation: u64,
    acquired_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    released: bool,
}

impl Record {
    fn live(&self, now: DateTime<Utc>) -> bool {
        !self.released && self.expires_at > now
    }
}

/// Who holds a view, as reported by [`Leases::list`].
#[derive(Clone, Debug, Serialize)]
pub struct LeaseInfo {
    pub view: String,
    pub holder: String,
    pub acquired_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Released or expired: nobody holds the view.
    pub free: bool,
}

/// The leases of one offline store.
#[derive(Clone)]
pub struct Leases {
    store: Arc<dyn ObjectStore>,
    /// `<store root>/.quiver/leases`.
    prefix: ObjectPath,
    /// The store's URL, for messages.
    root: String,
}

impl fmt::Debug for Leases {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Leases").field("prefix", &self.prefix).finish()
    }
}

fn store_error(what: &str, e: object_store::Error) -> Error {
    Error::Store(format!("{what}: {e}"))
}

impl Leases {
    /// Leases under `root` (the offline store's prefix) in `store`.
    pub fn new(store: Arc<dyn ObjectStore>, root: &ObjectPath, root_url: &str) -> Self {
        let mut prefix = root.clone();
        for part in LEASE_FOLDER.split('/') {
            prefix = prefix.clone().join(part);
        }
        Leases { store, prefix, root: root_url.to_string() }
    }

    fn view_prefix(&self, view: &str) -> ObjectPath {
        self.prefix.clone().join(view)
    }

    fn object(&self, view: &str, generation: u64) -> ObjectPath {
        self.view_prefix(view).join(format!("{generation:020}.json"))
    }

    /// The generations of a view's lease, ascending.
    async fn generations(&self, view: &str) -> Result<Vec<u64>> {
        let prefix = self.view_prefix(view);
        let listed: Vec<_> =
            self.store.list(Some(&prefix)).try_collect().await.map_err(|e| {
                store_error(&format!("listing the leases of view '{view}' in {}", self.root), e)
            })?;
        let mut out: Vec<u64> = listed
            .iter()
            .filter_map(|m| m.location.filename())
            .filter_map(|name| name.strip_suffix(".json"))
            .filter_map(|n| n.parse().ok())
            .collect();
        out.sort_unstable();
        Ok(out)
    }

    async fn read(&self, view: &str, generation: u64) -> Result<Record> {
        let path = self.object(view, generation);
        let bytes = self
            .store
            .get(&path)
            .await
            .map_err(|e| store_error(&format!("reading lease {path}"), e))?
            .bytes()
            .await
            .map_err(|e| store_error(&format!("reading lease {path}"), e))?;
        let record: Record = serde_json::from_slice(&bytes).map_err(|e| {
            Error::Store(format!(
                "lease {path} in {} is not a Quiver lease ({e}); if nothing is materializing view \
                 '{view}', delete that object",
                self.root
            ))
        })?;
        if record.view != view || record.generation != generation {
            return Err(Error::Store(format!(
                "lease {path} in {} names view '{}' generation {}; if nothing is materializing \
                 view '{view}', delete that object",
                self.root, record.view, record.generation
            )));
        }
        Ok(record)
    }

    /// The top generation's record, if any.
    async fn top(&self, view: &str) -> Result<Option<Record>> {
        match self.generations(view).await?.last() {
            None => Ok(None),
            Some(&g) => self.read(view, g).await.map(Some),
        }
    }

    /// Creates `record` if its generation does not exist yet: `Ok(false)` when it does and
    /// holds someone else's record.
    ///
    /// A create whose first request was stored but whose answer was lost can be retried by
    /// the client and answered "already exists" by the store: the object found then carries
    /// this acquisition's own token, and counts as created.
    async fn create(&self, record: &Record) -> Result<bool> {
        let path = self.object(&record.view, record.generation);
        let body = serde_json::to_vec_pretty(record)
            .map_err(|e| Error::Internal(format!("encoding a lease: {e}")))?;
        let options = PutOptions { mode: PutMode::Create, ..PutOptions::default() };
        match self.store.put_opts(&path, PutPayload::from(body), options).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => {
                let found = self.read(&record.view, record.generation).await?;
                Ok(found.token == record.token && found.released == record.released)
            }
            Err(e) => Err(store_error(&format!("writing lease {path} in {}", self.root), e)),
        }
    }

    /// Whether `view` is free, waiting up to `wait` while someone else holds it: `Ok` once
    /// it is free, else `Err(Busy)` naming the holder. A look, not a claim: only
    /// [`Leases::acquire`] takes the view.
    pub async fn check_free(&self, view: &str, wait: Duration) -> Result<()> {
        self.top_once_free(view, Instant::now() + wait, wait).await.map(|_| ())
    }

    /// The newest record of `view` once no live holder has it (`None`: never leased),
    /// looking again every [`WAIT_STEP`] until `deadline`; then `Err(Busy)` naming the holder
    /// (`wait` is the whole wait, for the message).
    async fn top_once_free(&self, view: &str, deadline: Instant, wait: Duration) -> Result<Option<Record>> {
        loop {
            match self.top(view).await? {
                Some(r) if r.live(Utc::now()) => {
                    if Instant::now() >= deadline {
                        return Err(Error::Busy(busy_message(view, &r, wait)));
                    }
                    tokio::time::sleep(WAIT_STEP.min(deadline - Instant::now())).await;
                }
                top => return Ok(top),
            }
        }
    }

    /// Who holds (or last held) each view's lease, by view name.
    pub async fn list(&self) -> Result<Vec<LeaseInfo>> {
        let listed: Vec<_> = self
            .store
            .list(Some(&self.prefix))
            .try_collect()
            .await
            .map_err(|e| store_error(&format!("listing the leases in {}", self.root), e))?;
        let mut views: Vec<String> = listed
            .iter()
            .filter_map(|m| m.location.prefix_match(&self.prefix)?.next().map(|p| p.as_ref().to_string()))
            .collect();
        views.sort();
        views.dedup();
        let now = Utc::now();
        let mut out = Vec::new();
        for view in views {
            if let Some(r) = self.top(&view).await? {
                out.push(LeaseInfo {
                    free: !r.live(now),
                    view,
                    holder: r.holder,
                    acquired_at: r.acquired_at,
                    expires_at: r.expires_at,
                });
            }
        }
        Ok(out)
    }

    /// Takes the lease on `view`, waiting up to `settings.wait` while someone else holds it,
    /// and keeps renewing it until [`Lease::release`] (or until the lease is dropped).
    pub async fn acquire(&self, view: &str, settings: &LeaseSettings) -> Result<Lease> {
        let ttl = settings.ttl.clamp(MIN_TTL, MAX_TTL);
        let deadline = Instant::now() + settings.wait;
        let token = random_token()?;
        loop {
            let top = self.top_once_free(view, deadline, settings.wait).await?;
            let now = Utc::now();
            let next = top.as_ref().map_or(1, |r| r.generation + 1);
            let taken_over = top.as_ref().filter(|r| !r.released).map(|r| r.holder.clone());
            let record = Record {
                view: view.to_string(),
                holder: settings.holder.clone(),
                token: token.clone(),
                generation: next,
                acquired_at: now,
                expires_at: now + chrono_duration(ttl),
                released: false,
            };
            let sent = Instant::now();
            if !self.create(&record).await? {
                continue; // another process took this number first: look again
            }
            // A taker whose listing was stale may have created a number below the top.
            if self.generations(view).await?.last() != Some(&next) {
                continue;
            }
            if let Some(previous) = taken_over {
                tracing::warn!(view, previous = %previous, "took over an expired materialization lease");
            }
            self.prune(view, next).await;
            return Ok(Lease::start(self.clone(), record, ttl, sent));
        }
    }

    /// Deletes generations older than the last [`KEPT`] below `top`; best effort.
    async fn prune(&self, view: &str, top: u64) {
        let Ok(generations) = self.generations(view).await else { return };
        for g in generations.into_iter().filter(|g| g + KEPT < top) {
            if let Err(e) = self.store.delete(&self.object(view, g)).await {
                tracing::debug!(view, generation = g, error = %e, "could not delete an old lease generation");
            }
        }
    }
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

fn busy_message(view: &str, r: &Record, waited: Duration) -> String {
    let waited = if waited.is_zero() { String::new() } else { format!(" (waited {}s)", waited.as_secs()) };
    format!(
        "feature view '{view}' is being materialized by {} since {}; its lease expires at {} \
         unless renewed{waited}. Try again when it is done (`quiver materialize --wait-for-lease` \
         waits)",
        r.holder,
        r.acquired_at.format("%Y-%m-%dT%H:%M:%SZ"),
        r.expires_at.format("%Y-%m-%dT%H:%M:%SZ"),
    )
}

fn random_token() -> Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| Error::Internal(format!("no random numbers: {e}")))?;
    Ok(hex::encode(bytes))
}

/// What the holder knows of its lease, shared with the renewal task.
struct HeldState {
    record: Record,
    /// When the last successful write was sent, plus the lifetime: until then nobody else
    /// can have taken the lease (clocks permitting).
    confirmed_until: Instant,
    /// Set when the lease was taken over or released.
    lost: Option<String>,
    released: bool,
}

/// A held lease on one view, renewed in the background until released.
pub struct Lease {
    leases: Leases,
    ttl: Duration,
    state: Arc<Mutex<HeldState>>,
    /// Serializes renewals with the release.
    writing: Arc<tokio::sync::Mutex<()>>,
    renewer: Option<JoinHandle<()>>,
}

fn lock(m: &Mutex<HeldState>) -> std::sync::MutexGuard<'_, HeldState> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Lease {
    fn start(leases: Leases, record: Record, ttl: Duration, sent: Instant) -> Self {
        let state = Arc::new(Mutex::new(HeldState {
            record,
            confirmed_until: sent + ttl,
            lost: None,
            released: false,
        }));
        let writing = Arc::new(tokio::sync::Mutex::new(()));
        let renewer = tokio::spawn(renew(leases.clone(), ttl, state.clone(), writing.clone()));
        Lease { leases, ttl, state, writing, renewer: Some(renewer) }
    }

    /// The view this lease is on.
    pub fn view(&self) -> String {
        lock(&self.state).record.view.clone()
    }

    /// Whether it is safe to commit now: `Err` when the lease was taken over, or when its last
    /// renewal is so old that less than a third of its lifetime is surely left.
    pub fn check(&self) -> Result<()> {
        let state = lock(&self.state);
        if let Some(why) = &state.lost {
            return Err(Error::Busy(why.clone()));
        }
        let left = state.confirmed_until.saturating_duration_since(Instant::now());
        if left < self.ttl / 3 {
            return Err(Error::Busy(format!(
                "the lease on feature view '{}' could not be renewed in time (the offline store \
                 did not answer); nothing was committed",
                state.record.view
            )));
        }
        Ok(())
    }

    /// Stops renewing and marks the lease released, so the next process need not wait for
    /// it to expire. Errors are logged: the lease then expires on its own.
    pub async fn release(mut self) {
        let _writing = self.writing.lock().await;
        if let Some(task) = self.renewer.take() {
            task.abort();
        }
        let next = {
            let mut state = lock(&self.state);
            if state.lost.is_some() || state.released {
                return;
            }
            state.released = true;
            let mut next = state.record.clone();
            next.generation += 1;
            next.released = true;
            next.expires_at = Utc::now();
            next
        };
        match self.leases.create(&next).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(view = %next.view, "the lease was taken over before it was released"),
            Err(e) => {
                tracing::warn!(view = %next.view, error = %e, "could not release a lease; it expires on its own")
            }
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(task) = self.renewer.take() {
            task.abort();
        }
    }
}

/// Renews the lease every third of its lifetime until it is lost or released. After a
/// failed renewal it tries again every [`RENEW_RETRY`] (or sooner, for a short lifetime), so
/// one lost request does not leave the lease unrenewed for another third of its lifetime:
/// [`Lease::check`] fails only when renewals keep failing until a third is left.
async fn renew(
    leases: Leases,
    ttl: Duration,
    state: Arc<Mutex<HeldState>>,
    writing: Arc<tokio::sync::Mutex<()>>,
) {
    let every = ttl / 3;
    let retry = RENEW_RETRY.min(every);
    let mut pause = every;
    loop {
        tokio::time::sleep(pause).await;
        let _writing = writing.lock().await;
        let next = {
            let state = lock(&state);
            if state.released || state.lost.is_some() {
                return;
            }
            let mut next = state.record.clone();
            next.generation += 1;
            next.expires_at = Utc::now() + chrono_duration(ttl);
            next
        };
        let sent = Instant::now();
        match leases.create(&next).await {
            Ok(true) => {
                let mut state = lock(&state);
                state.record = next;
                state.confirmed_until = sent + ttl;
                pause = every;
            }
            Ok(false) => {
                let taker = leases.read(&next.view, next.generation).await.map(|r| r.holder).ok();
                let why = format!(
                    "the lease on feature view '{}' was taken over by {} while this process held \
                     it (it could not renew in time); nothing more is committed",
                    next.view,
                    taker.as_deref().unwrap_or("another process")
                );
                tracing::error!(view = %next.view, "{why}");
                lock(&state).lost = Some(why);
                return;
            }
            // Unreachable store: try again soon; `check` fails once too little is left.
            Err(e) => {
                tracing::warn!(view = %next.view, error = %e, "could not renew a lease; trying again");
                pause = retry;
            }
        }
        drop(_writing);
        let (view, top) = {
            let state = lock(&state);
            (state.record.view.clone(), state.record.generation)
        };
        leases.prune(&view, top).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

    use std::ops::Range;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    use bytes::Bytes;
    use futures::stream::BoxStream;
    use object_store::memory::InMemory;
    use object_store::{
        CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, PutMultipartOptions,
        PutResult, RenameOptions,
    };

    use super::*;
    use arrow::array::{Int64Array, RecordBatch, TimestampMicrosecondArray};
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

    /// An in-memory store whose writes a test can break: every put fails while `failing` is
    /// set, and while `echo_exists` is set the next create-only put is stored but answered
    /// "already exists", as a retried request whose first attempt was stored is answered.
    #[derive(Debug, Default)]
    struct Flaky {
        inner: InMemory,
        failing: AtomicBool,
        echo_exists: AtomicBool,
        failed: AtomicU64,
        stored: AtomicU64,
    }

    impl fmt::Display for Flaky {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "Flaky({})", self.inner)
        }
    }

    #[async_trait::async_trait]
    #[deny(clippy::missing_trait_methods)]
    impl ObjectStore for Flaky {
        async fn put_opts(
            &self,
            location: &ObjectPath,
            payload: PutPayload,
            opts: PutOptions,
        ) -> object_store::Result<PutResult> {
            if self.failing.load(Ordering::SeqCst) {
                self.failed.fetch_add(1, Ordering::SeqCst);
                return Err(object_store::Error::Generic {
                    store: "Flaky",
                    source: "the store is unreachable".into(),
                });
            }
            let create = matches!(opts.mode, PutMode::Create);
            let put = self.inner.put_opts(location, payload, opts).await?;
            self.stored.fetch_add(1, Ordering::SeqCst);
            if create && self.echo_exists.swap(false, Ordering::SeqCst) {
                return Err(object_store::Error::AlreadyExists {
                    path: location.to_string(),
                    source: "answered to a retry of a stored request".into(),
                });
            }
            Ok(put)
        }

        async fn put_multipart_opts(
            &self,
            location: &ObjectPath,
            opts: PutMultipartOptions,
        ) -> object_store::Result<Box<dyn MultipartUpload>> {
            self.inner.put_multipart_opts(location, opts).await
        }

        async fn get_opts(
            &self,
            location: &ObjectPath,
            options: GetOptions,
        ) -> object_store::Result<GetResult> {
            self.inner.get_opts(location, options).await
        }

        async fn get_ranges(
            &self,
            location: &ObjectPath,
            ranges: &[Range<u64>],
        ) -> object_store::Result<Vec<Bytes>> {
            self.inner.get_ranges(location, ranges).await
        }

        fn delete_stream(
            &self,
            locations: BoxStream<'static, object_store::Result<ObjectPath>>,
        ) -> BoxStream<'static, object_store::Result<ObjectPath>> {
            self.inner.delete_stream(locations)
        }

        fn list(&self, prefix: Option<&ObjectPath>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
            self.inner.list(prefix)
        }

        fn list_with_offset(
            &self,
            prefix: Option<&ObjectPath>,
            offset: &ObjectPath,
        ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
            self.inner.list_with_offset(prefix, offset)
        }

        async fn list_with_delimiter(&self, prefix: Option<&ObjectPath>) -> object_store::Result<ListResult> {
            self.inner.list_with_delimiter(prefix).await
        }

        async fn copy_opts(
            &self,
            from: &ObjectPath,
            to: &ObjectPath,
            options: CopyOptions,
        ) -> object_store::Result<()> {
            self.inner.copy_opts(from, to, options).await
        }

        async fn rename_opts(
            &self,
            from: &ObjectPath,
            to: &ObjectPath,
            options: RenameOptions,
        ) -> object_store::Result<()> {
            self.inner.rename_opts(from, to, options).await
        }
    }

    fn flaky() -> (Arc<Flaky>, Leases) {
        let store = Arc::new(Flaky::default());
        let leases = Leases::new(store.clone(), &ObjectPath::from("offline"), "memory:///offline/");
        (store, leases)
    }

    fn settings(holder: &str, ttl: Duration) -> LeaseSettings {
        LeaseSettings { holder: holder.into(), ttl, wait: Duration::ZERO }
    }

    /// Waits (at most `within`) until `done` holds.
    async fn eventually(within: Duration, mut done: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + within;
        while !done() {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    #[tokio::test]
    async fn a_lease_stored_but_answered_already_exists_is_taken_not_refused() {
        let (store, leases) = flaky();
        store.echo_exists.store(true, Ordering::SeqCst);
        let held = leases.acquire("v", &settings("job A", Duration::from_secs(30))).await.unwrap();
        assert!(!store.echo_exists.load(Ordering::SeqCst), "the store never answered 'already exists'");
        held.check().unwrap();
        assert_eq!(leases.generations("v").await.unwrap(), [1], "one generation, its own");
        // Others are still refused, naming the holder.
        let refused = leases.acquire("v", &settings("job B", Duration::from_secs(30))).await.err().unwrap();
        assert!(refused.to_string().contains("being materialized by job A"), "{refused}");
        // A renewal answered the same way is its own too: the lease is not reported lost.
        let (store, leases) = flaky();
        let held = leases.acquire("w", &settings("job A", Duration::from_millis(1_500))).await.unwrap();
        store.echo_exists.store(true, Ordering::SeqCst);
        assert!(eventually(Duration::from_secs(3), || !store.echo_exists.load(Ordering::SeqCst)).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
        held.check().unwrap();
        held.release().await;
        assert!(leases.list().await.unwrap().iter().all(|l| l.free));
    }

    #[tokio::test]
    async fn a_failed_renewal_is_retried_within_a_second() {
        let (store, leases) = flaky();
        // Renewed every 3 s; a failed renewal is tried again after 1 s, not 3 s.
        let held = leases.acquire("v", &settings("job", Duration::from_secs(9))).await.unwrap();
        let stored = store.stored.load(Ordering::SeqCst);
        store.failing.store(true, Ordering::SeqCst);
        assert!(eventually(Duration::from_secs(5), || store.failed.load(Ordering::SeqCst) > 0).await);
        store.failing.store(false, Ordering::SeqCst);
        let renewed =
            eventually(Duration::from_millis(1_800), || store.stored.load(Ordering::SeqCst) > stored);
        assert!(renewed.await, "no renewal within a second of the failed one");
        held.check().unwrap();
        held.release().await;
    }

    #[tokio::test]
    async fn a_holder_whose_renewals_keep_failing_commits_nothing() {
        let (store, leases) = flaky();
        let held =
            Arc::new(leases.acquire("v", &settings("job", Duration::from_millis(1_500))).await.unwrap());
        held.check().unwrap();
        store.failing.store(true, Ordering::SeqCst);
        // Renewals every 500 ms all fail: once less than a third of the lifetime is left
        // (1 s after the last renewal), the holder may have lost the lease and must not commit.
        assert!(eventually(Duration::from_secs(3), || held.check().is_err()).await, "check never failed");
        assert!(store.failed.load(Ordering::SeqCst) > 0, "no renewal was tried");
        let refused = held.check().unwrap_err();
        assert!(matches!(refused, Error::Busy(_)), "{refused:?}");
        assert!(refused.to_string().contains("could not be renewed in time"), "{refused}");

        // A commit guarded by that lease (as push and materialization guard theirs) is refused.
        let tmp = tempfile::tempdir().unwrap();
        let table = crate::store::OfflineStore::new(url::Url::from_directory_path(tmp.path()).unwrap());
        let time = || DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        let schema = Arc::new(Schema::new(vec![
            Field::new("driver_id", DataType::Int64, true),
            Field::new("event_timestamp", time(), true),
            Field::new("created_timestamp", time(), true),
        ]));
        let times = Arc::new(TimestampMicrosecondArray::from(vec![0]).with_timezone("UTC"));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from(vec![1])), times.clone(), times],
        )
        .unwrap();
        let guard: crate::store::CommitGuard = {
            let held = held.clone();
            Arc::new(move || held.check())
        };
        let refused = table.append("v", schema, vec![batch], Some(guard)).await.unwrap_err();
        assert!(refused.to_string().contains("could not be renewed in time"), "{refused}");
        assert!(table.snapshot("v", None).await.unwrap().is_none(), "a commit landed");
    }
}
