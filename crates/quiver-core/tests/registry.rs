//! The registry: versions only grow, unchanged applies write nothing, history is kept,
//! concurrent applies are compare-and-swap with no lost update, and damage is reported,
//! never papered over.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::sync::Arc;

use quiver_core::Error;
use quiver_core::definitions::{Definitions, Entity, Field};
use quiver_core::dtype::DType;
use quiver_core::registry::{APPLIED_BY_MAX_CHARS, ApplyOutcome, Registry};
use quiver_core::storage::resolve_location;

fn entity(name: &str) -> Entity {
    Entity {
        name: name.into(),
        join_keys: vec![Field { name: format!("{name}_id"), dtype: DType::Int64, description: None }],
        description: None,
    }
}

fn defs(names: &[&str]) -> Definitions {
    let mut d = Definitions { entities: names.iter().map(|n| entity(n)).collect(), ..Default::default() };
    d.sort();
    d
}

fn file_registry(dir: &std::path::Path) -> Registry {
    let url = resolve_location(&format!("{}/", dir.join("registry").display()), dir).unwrap();
    Registry::open(&url, "rides").unwrap()
}

fn version_file(dir: &std::path::Path, v: u64) -> std::path::PathBuf {
    dir.join("registry/versions").join(format!("v{v:020}.json"))
}

#[tokio::test]
async fn versions_grow_unchanged_applies_write_nothing_and_history_is_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = file_registry(tmp.path());
    assert!(reg.head().await.unwrap().is_none());
    assert!(reg.history().await.unwrap().is_empty());

    let ApplyOutcome::Applied(v1) = reg.apply(&defs(&["driver"]), 0, "alice").await.unwrap() else {
        panic!("expected a write")
    };
    assert_eq!(v1.version, 1);
    assert_eq!(v1.summary.added, vec!["entities/driver"]);

    assert_eq!(
        reg.apply(&defs(&["driver"]), 1, "alice").await.unwrap(),
        ApplyOutcome::Unchanged { version: 1 }
    );
    assert_eq!(reg.versions().await.unwrap(), vec![1]);

    let mut changed = defs(&["driver", "customer"]);
    changed.entities[1].description = Some("now described".into()); // driver
    let ApplyOutcome::Applied(v2) = reg.apply(&changed, 1, "bob").await.unwrap() else {
        panic!("expected a write")
    };
    assert_eq!(v2.version, 2);
    assert_eq!(v2.summary.added, vec!["entities/customer"]);
    assert_eq!(v2.summary.changed, vec!["entities/driver"]);
    let ApplyOutcome::Applied(v3) = reg.apply(&defs(&["customer"]), 2, "bob").await.unwrap() else {
        panic!()
    };
    assert_eq!(v3.summary.removed, vec!["entities/driver"]);

    let history = reg.history().await.unwrap();
    assert_eq!(history.iter().map(|s| s.version).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(history[0].definitions, defs(&["driver"]));
    assert_eq!(history[1].applied_by, "bob");
    // Equal definitions hash equally, whatever the version.
    assert_eq!(history[0].hashes["entities/driver"], v1.hashes["entities/driver"]);
    assert_ne!(history[1].hashes["entities/driver"], v1.hashes["entities/driver"]);

    // A registry reopened from disk reads the same.
    let again = file_registry(tmp.path());
    assert_eq!(again.head().await.unwrap().unwrap(), *v3);
}

#[tokio::test]
async fn applied_by_is_recorded_without_control_characters_and_bounded_in_length() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = file_registry(tmp.path());
    let name = format!("mallory\n\x1b[31m{}", "x".repeat(500));
    let ApplyOutcome::Applied(v1) = reg.apply(&defs(&["driver"]), 0, &name).await.unwrap() else {
        panic!("expected a write")
    };
    assert!(v1.applied_by.starts_with("mallory[31mxxx"), "{}", v1.applied_by);
    assert_eq!(v1.applied_by.chars().count(), APPLIED_BY_MAX_CHARS);
    assert_eq!(reg.history().await.unwrap()[0].applied_by, v1.applied_by);
}

#[tokio::test]
async fn a_stale_writer_gets_a_conflict_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = file_registry(tmp.path());
    reg.apply(&defs(&["a"]), 0, "x").await.unwrap();
    reg.apply(&defs(&["a", "b"]), 1, "x").await.unwrap();
    let err = reg.apply(&defs(&["a", "c"]), 1, "y").await.unwrap_err();
    assert!(matches!(err, Error::Conflict { expected: 1, found: 2 }), "{err}");
    assert!(err.to_string().contains("quiver plan"), "{err}");
    assert_eq!(reg.versions().await.unwrap(), vec![1, 2]);
    assert_eq!(reg.head().await.unwrap().unwrap().definitions, defs(&["a", "b"]));
}

/// Many writers each add their own entity with read-modify-write, retrying on conflict.
/// Compare-and-swap means every addition survives and every version is written once.
async fn no_update_is_lost(reg: Registry, writers: usize) {
    let reg = Arc::new(reg);
    let mut tasks = Vec::new();
    for w in 0..writers {
        let reg = reg.clone();
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0;
            loop {
                let head = reg.head().await.unwrap();
                let version = head.as_ref().map_or(0, |h| h.version);
                let mut d = head.map(|h| h.definitions).unwrap_or_default();
                d.entities.push(entity(&format!("writer_{w}")));
                match reg.apply(&d, version, &format!("writer_{w}")).await {
                    Ok(ApplyOutcome::Applied(_)) => return conflicts,
                    Ok(ApplyOutcome::Unchanged { .. }) => panic!("an addition cannot be unchanged"),
                    Err(Error::Conflict { .. }) => {
                        conflicts += 1;
                        tokio::task::yield_now().await;
                    }
                    Err(e) => panic!("{e}"),
                }
            }
        }));
    }
    let mut conflicts = 0;
    for t in tasks {
        conflicts += t.await.unwrap();
    }
    let head = reg.head().await.unwrap().unwrap();
    assert_eq!(head.version, writers as u64);
    let mut names: Vec<String> = head.definitions.entities.iter().map(|e| e.name.clone()).collect();
    names.sort();
    let mut expected: Vec<String> = (0..writers).map(|w| format!("writer_{w}")).collect();
    expected.sort();
    assert_eq!(names, expected);
    assert_eq!(reg.versions().await.unwrap(), (1..=writers as u64).collect::<Vec<_>>());
    // Each version adds exactly one writer's entity to the one before.
    for s in reg.history().await.unwrap() {
        assert_eq!(s.summary.added.len(), 1, "version {}: {:?}", s.version, s.summary);
        assert!(s.summary.removed.is_empty());
    }
    eprintln!("{writers} writers, {conflicts} conflicts retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_on_a_local_folder_lose_no_update() {
    let tmp = tempfile::tempdir().unwrap();
    no_update_is_lost(file_registry(tmp.path()), 8).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_in_memory_lose_no_update() {
    let store = Arc::new(object_store::memory::InMemory::new());
    let url = url::Url::parse("memory://registry").unwrap();
    no_update_is_lost(Registry::with_store(store, "registry".into(), url, "rides"), 8).await;
}

#[tokio::test]
async fn two_writers_racing_from_the_same_version_one_wins() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = file_registry(tmp.path());
    reg.apply(&defs(&["base"]), 0, "x").await.unwrap();
    for round in 1..=20u64 {
        let head = reg.head().await.unwrap().unwrap().definitions;
        let (mut a, mut b) = (head.clone(), head);
        a.entities.push(entity(&format!("a{round}")));
        b.entities.push(entity(&format!("b{round}")));
        let (ra, rb) = tokio::join!(reg.apply(&a, round, "a"), reg.apply(&b, round, "b"));
        let wins = [&ra, &rb].iter().filter(|r| matches!(r, Ok(ApplyOutcome::Applied(_)))).count();
        let conflicts = [&ra, &rb].iter().filter(|r| matches!(r, Err(Error::Conflict { .. }))).count();
        assert_eq!((wins, conflicts), (1, 1), "round {round}: {ra:?} {rb:?}");
        assert_eq!(reg.head_version().await.unwrap(), round + 1);
        // What a watcher holding the version before learns from one HEAD.
        assert!(reg.has_version(round + 1).await.unwrap());
        assert!(!reg.has_version(round + 2).await.unwrap());
    }
}

#[tokio::test]
async fn a_corrupt_version_is_an_error_and_is_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = file_registry(tmp.path());
    reg.apply(&defs(&["a"]), 0, "x").await.unwrap();
    reg.apply(&defs(&["a", "b"]), 1, "x").await.unwrap();
    let path = version_file(tmp.path(), 2);
    let good = std::fs::read(&path).unwrap();

    // Truncated file.
    std::fs::write(&path, &good[..good.len() / 2]).unwrap();
    let err = reg.head().await.unwrap_err();
    assert!(matches!(err, Error::CorruptRegistry { .. }), "{err}");
    assert!(err.to_string().contains("v00000000000000000002.json"), "{err}");
    let err = reg.apply(&defs(&["a", "b", "c"]), 2, "x").await.unwrap_err();
    assert!(matches!(err, Error::CorruptRegistry { .. }), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), &good[..good.len() / 2], "the damaged file is not replaced");
    assert_eq!(reg.versions().await.unwrap(), vec![1, 2], "no new version after a corrupt head");

    // Edited by hand: valid JSON, but the content no longer matches its hashes.
    let edited = String::from_utf8(good.clone()).unwrap().replace("\"b_id\"", "\"b_key\"");
    std::fs::write(&path, edited).unwrap();
    let err = reg.get(2).await.unwrap_err();
    assert!(err.to_string().contains("does not match its hashes"), "{err}");

    // Restored: everything reads again, and version 1 was readable all along.
    std::fs::write(&path, &good).unwrap();
    assert_eq!(reg.head().await.unwrap().unwrap().version, 2);
}

#[tokio::test]
async fn a_registry_of_another_project_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    file_registry(tmp.path()).apply(&defs(&["a"]), 0, "x").await.unwrap();
    let url = resolve_location(&format!("{}/", tmp.path().join("registry").display()), tmp.path()).unwrap();
    let other = Registry::open(&url, "payments").unwrap();
    let err = other.head().await.unwrap_err();
    assert!(matches!(err, Error::ProjectMismatch { .. }), "{err}");
}
