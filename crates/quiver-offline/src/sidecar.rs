//! Which Parquet files of an offline table hold their rows in the latest-row order
//! ([`crate::layout`]), recorded in a small sidecar next to the Delta log.
//!
//! Quiver writes every window sorted, each of its partitions through its own writer, and
//! every push through a one-partition writer, so each file it writes is sorted. When a window
//! is materialized again, files that straddle the window's edges are rewritten with their
//! rows outside the window, in their own order, so a rewrite of a sorted file is sorted too.
//! Files written by anyone else (another Delta writer, a tool rewriting the table) carry no
//! such promise, so sortedness is recorded per file by the writer that knows it:
//!
//! ```text
//! <table>/_quiver/sorted_files.json
//! {"format": 1, "order": ["driver_id", "event_timestamp", "created_timestamp", "conv_rate"],
//!  "files": ["part-00000-….parquet", …]}
//! ```
//!
//! Paths are as the Delta log names them (relative to the table). Files are immutable, so a
//! name listed once stays true; the list is pruned to the files live at the newest version
//! on each write. The sidecar is written after the Delta commit: when that fails (or a
//! crash falls in between), the new files are simply not listed and readers sort them —
//! slower, never wrong. The leading underscore keeps Delta's vacuum away from the folder.

use std::collections::BTreeSet;

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The sidecar's location inside a table.
pub const SIDECAR: &str = "_quiver/sorted_files.json";

#[derive(Serialize, Deserialize)]
struct Sidecar {
    format: u32,
    order: Vec<String>,
    files: BTreeSet<String>,
}

/// The files the sidecar lists as sorted in `order`; empty when there is no sidecar, it is
/// unreadable, or it was written for another order (the view's columns changed).
pub async fn load(store: &dyn ObjectStore, order: &[String]) -> BTreeSet<String> {
    let Ok(found) = store.get(&Path::from(SIDECAR)).await else { return BTreeSet::new() };
    let Ok(bytes) = found.bytes().await else { return BTreeSet::new() };
    match serde_json::from_slice::<Sidecar>(&bytes) {
        Ok(s) if s.format == 1 && s.order == order => s.files,
        _ => BTreeSet::new(),
    }
}

/// Records `files` as the sorted files among `live` (the table's files at its newest
/// version), keeping earlier entries that are still live.
pub async fn record(
    store: &dyn ObjectStore,
    order: &[String],
    live: &BTreeSet<String>,
    files: impl IntoIterator<Item = String>,
) -> Result<()> {
    let mut listed: BTreeSet<String> = load(store, order).await.intersection(live).cloned().collect();
    listed.extend(files.into_iter().filter(|f| live.contains(f)));
    let sidecar = Sidecar { format: 1, order: order.to_vec(), files: listed };
    let bytes = serde_json::to_vec(&sidecar).map_err(|e| Error::Internal(format!("sidecar: {e}")))?;
    store
        .put(&Path::from(SIDECAR), bytes.into())
        .await
        .map_err(|e| Error::Store(format!("writing {SIDECAR}: {e}")))?;
    Ok(())
}
