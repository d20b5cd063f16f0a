//! Materialization leases on a local offline store: one holder per view, a clear refusal
//! naming the holder, release, expiry and takeover of a dead holder's lease, waiting, and a
//! holder that learns it lost its lease before it commits.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::time::{Duration, Instant};

use quiver_offline::Error;
use quiver_offline::lease::{LEASE_FOLDER, LeaseSettings, Leases};
use quiver_offline::store::OfflineStore;
use url::Url;

fn store(dir: &std::path::Path) -> OfflineStore {
    OfflineStore::new(Url::from_directory_path(dir).unwrap())
}

fn leases(dir: &std::path::Path) -> Leases {
    store(dir).leases().unwrap()
}

fn settings(holder: &str, ttl_ms: u64, wait_ms: u64) -> LeaseSettings {
    LeaseSettings {
        holder: holder.into(),
        ttl: Duration::from_millis(ttl_ms),
        wait: Duration::from_millis(wait_ms),
    }
}

/// Lease generations stored for `view`.
fn generations(dir: &std::path::Path, view: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join(LEASE_FOLDER).join(view))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_view_has_one_holder_and_the_refusal_names_it() {
    let tmp = tempfile::tempdir().unwrap();
    let leases = leases(tmp.path());
    let held = leases.acquire("driver_stats", &settings("job A", 30_000, 0)).await.unwrap();
    held.check().unwrap();

    let refused = leases.acquire("driver_stats", &settings("job B", 30_000, 0)).await.err().unwrap();
    assert!(matches!(refused, Error::Busy(_)), "{refused:?}");
    let message = refused.to_string();
    assert!(message.contains("feature view 'driver_stats' is being materialized by job A"), "{message}");
    assert!(message.contains("lease expires at"), "{message}");
    // Other views are free.
    let other = leases.acquire("trips", &settings("job B", 30_000, 0)).await.unwrap();

    let listed = leases.list().await.unwrap();
    let names: Vec<(&str, &str, bool)> =
        listed.iter().map(|l| (l.view.as_str(), l.holder.as_str(), l.free)).collect();
    assert_eq!(names, [("driver_stats", "job A", false), ("trips", "job B", false)]);

    held.release().await;
    other.release().await;
    assert!(leases.list().await.unwrap().iter().all(|l| l.free));
    let next = leases.acquire("driver_stats", &settings("job B", 30_000, 0)).await.unwrap();
    next.check().unwrap();
    next.release().await;
}

#[tokio::test]
async fn a_dead_holders_lease_expires_and_is_taken_over() {
    let tmp = tempfile::tempdir().unwrap();
    let leases = leases(tmp.path());
    // Dropped without release, as a killed process leaves it: no renewal, no release.
    let dead = leases.acquire("v", &settings("dead job", 1_000, 0)).await.unwrap();
    drop(dead);
    let refused = leases.acquire("v", &settings("next job", 1_000, 0)).await.err().unwrap();
    assert!(refused.to_string().contains("dead job"), "{refused}");

    // Waiting longer than the lifetime gets it.
    let started = Instant::now();
    let taken = leases.acquire("v", &settings("next job", 1_000, 10_000)).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(500), "taken before the dead lease expired");
    taken.check().unwrap();
    let listed = leases.list().await.unwrap();
    assert_eq!((listed[0].holder.as_str(), listed[0].free), ("next job", false));
    taken.release().await;
}

#[tokio::test]
async fn a_waiting_process_gets_the_view_when_the_holder_releases_it() {
    let tmp = tempfile::tempdir().unwrap();
    let leases = leases(tmp.path());
    let held = leases.acquire("v", &settings("first", 60_000, 0)).await.unwrap();
    let waiter = {
        let leases = leases.clone();
        tokio::spawn(async move { leases.acquire("v", &settings("second", 60_000, 20_000)).await })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(!waiter.is_finished(), "the waiter got a held lease");
    held.release().await;
    let second = waiter.await.unwrap().unwrap();
    second.check().unwrap();
    // A short wait that ends first is a refusal that says it waited.
    let refused = leases.acquire("v", &settings("third", 60_000, 600)).await.err().unwrap();
    assert!(refused.to_string().contains("(waited"), "{refused}");
    second.release().await;
}

#[tokio::test]
async fn a_holder_is_renewed_while_it_works_and_learns_when_its_lease_was_taken() {
    let tmp = tempfile::tempdir().unwrap();
    let leases = leases(tmp.path());
    let held = leases.acquire("v", &settings("slow job", 1_200, 0)).await.unwrap();
    // Renewed every 400 ms: still held well past its first lifetime.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    held.check().unwrap();
    let refused = leases.acquire("v", &settings("other", 1_200, 0)).await.err().unwrap();
    assert!(refused.to_string().contains("slow job"), "{refused}");

    // Someone takes the next generation (as a process that wrongly judged it expired
    // would): the holder finds out at its next renewal and refuses to commit from then on.
    let names = generations(tmp.path(), "v");
    let top: u64 = names.last().unwrap().trim_end_matches(".json").parse().unwrap();
    // Created only if absent, as the store does: the holder may renew meanwhile.
    for g in top + 1..top + 4 {
        let now = chrono::Utc::now();
        let record = serde_json::json!({
            "view": "v", "holder": "intruder", "token": "00", "generation": g,
            "acquired_at": now, "expires_at": now + chrono::Duration::seconds(60), "released": false,
        });
        let path = tmp.path().join(LEASE_FOLDER).join("v").join(format!("{g:020}.json"));
        let staged = tmp.path().join("staged.json");
        std::fs::write(&staged, serde_json::to_vec(&record).unwrap()).unwrap();
        if std::fs::hard_link(&staged, &path).is_ok() {
            break;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let lost = loop {
        if let Err(e) = held.check() {
            break e.to_string();
        }
        assert!(Instant::now() < deadline, "the holder never noticed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(lost.contains("was taken over by intruder"), "{lost}");
    // Releasing a lost lease leaves the new holder's lease alone.
    held.release().await;
    let refused = leases.acquire("v", &settings("other", 1_200, 0)).await.err().unwrap();
    assert!(refused.to_string().contains("intruder"), "{refused}");
}

#[tokio::test]
async fn old_generations_are_pruned_and_a_damaged_lease_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let leases = leases(tmp.path());
    for _ in 0..20 {
        leases.acquire("v", &settings("job", 30_000, 0)).await.unwrap().release().await;
    }
    let kept = generations(tmp.path(), "v");
    assert!(kept.len() <= 10, "{kept:?}");
    assert_eq!(kept.last().unwrap(), &format!("{:020}.json", 40));

    let top = tmp.path().join(LEASE_FOLDER).join("v").join(format!("{:020}.json", 41));
    std::fs::write(&top, b"not json").unwrap();
    let e = leases.acquire("v", &settings("job", 30_000, 0)).await.err().unwrap().to_string();
    assert!(e.contains("is not a Quiver lease") && e.contains("delete that object"), "{e}");
}
