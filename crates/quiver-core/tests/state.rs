//! Materialization state: kept in the offline store, and read from beside the registry for
//! a view that has none there yet, which its next save moves.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use quiver_core::registry::Registry;
use quiver_core::state::{RunRecord, StateStore, ViewState};

fn at(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, day, 0, 0, 0).unwrap()
}

fn run(id: &str, start: u32, end: u32) -> RunRecord {
    serde_json::from_value(serde_json::json!({
        "run_id": id,
        "started_at": at(20),
        "finished_at": at(20),
        "window_start": at(start),
        "window_end": at(end),
        "status": "succeeded",
        "rows": 10,
        "offline_version": 1,
        "registry_version": 1,
    }))
    .unwrap()
}

async fn read(store: &dyn ObjectStore, path: &str) -> Option<ViewState> {
    match store.get(&ObjectPath::from(path)).await {
        Ok(got) => Some(serde_json::from_slice(&got.bytes().await.unwrap()).unwrap()),
        Err(object_store::Error::NotFound { .. }) => None,
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn state_beside_the_registry_is_read_then_saved_in_the_offline_store() {
    let registry_store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let offline: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let registry = Registry::with_store(
        registry_store.clone(),
        ObjectPath::from("registry"),
        url::Url::parse("memory:///registry/").unwrap(),
        "rides",
    );
    let old_path = "registry/state/views/driver_stats.json";
    let new_path = "offline/.quiver/state/views/driver_stats.json";

    // A view materialized when state was kept beside the registry.
    let mut old = ViewState { view: "driver_stats".into(), ..Default::default() };
    old.record(run("first", 1, 4));
    registry_store
        .put(&ObjectPath::from(old_path), PutPayload::from(serde_json::to_vec(&old).unwrap()))
        .await
        .unwrap();

    let states = StateStore::at(offline.clone(), ObjectPath::from("offline/.quiver/state"))
        .reading_registry(&registry);
    let mut state = states.view("driver_stats").await.unwrap();
    assert_eq!(state, old, "read from beside the registry");
    assert_eq!(state.watermark, Some(at(4)));
    assert!(read(offline.as_ref(), new_path).await.is_none(), "reading writes nothing");

    // The next run continues from that watermark and saves in the offline store.
    state.record(run("second", 4, 6));
    states.save(&state).await.unwrap();
    let moved = read(offline.as_ref(), new_path).await.unwrap();
    assert_eq!(moved, state);
    assert_eq!(moved.runs.len(), 2);
    assert_eq!(read(registry_store.as_ref(), old_path).await.unwrap(), old, "the old copy is left as it was");

    // From then on the offline store's copy is the one read.
    assert_eq!(states.view("driver_stats").await.unwrap().watermark, Some(at(6)));
    // A view with state nowhere has none; without the registry only the offline store counts.
    let fresh = states.view("customer_profile").await.unwrap();
    assert_eq!((fresh.view.as_str(), fresh.watermark, fresh.runs.len()), ("customer_profile", None, 0));
    let offline_only = StateStore::at(Arc::new(InMemory::new()), ObjectPath::from("offline/.quiver/state"));
    assert_eq!(offline_only.view("driver_stats").await.unwrap().watermark, None);
}
