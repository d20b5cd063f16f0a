//! The check every process makes before it uses an offline store: that its location can be
//! reached with the configured settings, and that it holds a Quiver offline store (or
//! nothing yet), so a typo in `offline_store:` never writes Delta tables among someone
//! else's files.
//!
//! A store is marked by `.quiver/offline-store.json`, created (only if absent) the first time
//! a process finds the location empty. A location without the marker is accepted when every
//! top-level folder it holds is a Delta table or Quiver's own `.quiver/` (a store made before
//! the marker existed), and then marked; anything else is refused, naming the location.

use std::time::Duration;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use url::Url;

use crate::error::{Error, Result};
use crate::layout::PUSHED_DIR;

/// How long the first request may take before the location is called unreachable (the
/// client itself retries for minutes).
const PROBE_TIMEOUT: Duration = Duration::from_secs(15);

/// What to check for an object store error, by what the store answered.
fn hint(url: &Url, e: &object_store::Error) -> String {
    let text = e.to_string();
    let lower = text.to_ascii_lowercase();
    let bucket = url.host_str().unwrap_or_default();
    let what = if lower.contains("nosuchbucket") || lower.contains("bucket does not exist") {
        format!("the bucket '{bucket}' does not exist: create it, or correct the offline_store URL")
    } else if lower.contains("signaturedoesnotmatch")
        || lower.contains("invalidaccesskeyid")
        || lower.contains("accessdenied")
        || lower.contains("403")
        || lower.contains("401")
    {
        "the credentials were refused: check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and \
         AWS_SESSION_TOKEN) or the role this process runs with, and that it may read and write \
         this bucket"
            .to_string()
    } else if lower.contains("error sending request") || lower.contains("connect") || lower.contains("dns") {
        "the store cannot be reached: check AWS_ENDPOINT (or the cloud's own endpoint settings), \
         the network and any proxy"
            .to_string()
    } else {
        "check the offline_store URL and the AWS_* (GOOGLE_*, AZURE_*) settings".to_string()
    };
    format!("offline_store {url}: {what} ({text})")
}

/// Whether `folder` (a top-level folder of the store) has the shape of a view's table: a
/// view's name, holding only Parquet files, its `_delta_log/`, Quiver's `_quiver/` and the
/// folder of pushed rows ([`PUSHED_DIR`]).
async fn is_table(store: &dyn ObjectStore, folder: &ObjectPath, url: &Url) -> Result<bool> {
    if !folder.filename().is_some_and(quiver_core::repo::is_valid_name) {
        return Ok(false);
    }
    let listed = store.list_with_delimiter(Some(folder)).await.map_err(|e| Error::Store(hint(url, &e)))?;
    let files_ok =
        listed.objects.iter().all(|o| o.location.filename().is_some_and(|n| n.ends_with(".parquet")));
    let folders_ok = listed
        .common_prefixes
        .iter()
        .all(|p| matches!(p.filename(), Some("_delta_log" | "_quiver" | PUSHED_DIR)));
    Ok(files_ok && folders_ok)
}

/// Checks the store at `url` (the prefix `prefix` in `store`) as the module says; marks an
/// empty or older store.
pub(super) async fn verify(store: &dyn ObjectStore, prefix: &ObjectPath, url: &Url) -> Result<()> {
    let marker = prefix.clone().join(".quiver").join("offline-store.json");
    let first = tokio::time::timeout(PROBE_TIMEOUT, store.head(&marker)).await.map_err(|_| {
        Error::Store(format!(
            "offline_store {url}: no answer within {}s: check AWS_ENDPOINT (or the cloud's own \
             endpoint settings), the network and any proxy",
            PROBE_TIMEOUT.as_secs()
        ))
    })?;
    match first {
        Ok(_) => return Ok(()),
        Err(object_store::Error::NotFound { .. }) => {}
        Err(e) => return Err(Error::Store(hint(url, &e))),
    }
    let listed = store.list_with_delimiter(Some(prefix)).await.map_err(|e| Error::Store(hint(url, &e)))?;
    let mut foreign = listed.objects.len();
    for folder in &listed.common_prefixes {
        if folder.filename() != Some(".quiver") && !is_table(store, folder, url).await? {
            foreign += 1;
        }
    }
    if foreign > 0 {
        return Err(Error::InvalidInput(format!(
            "offline_store {url} is not a Quiver offline store: it holds {foreign} file(s) or \
             folder(s) that are not feature view tables. Point offline_store at an empty prefix \
             (or an existing Quiver offline store); nothing was written"
        )));
    }
    let body = serde_json::json!({
        "format": "quiver offline store",
        "version": 1,
        "created_at": chrono::Utc::now(),
    });
    let options = PutOptions { mode: PutMode::Create, ..PutOptions::default() };
    match store.put_opts(&marker, PutPayload::from(body.to_string().into_bytes()), options).await {
        Ok(_) | Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => {
            Ok(())
        }
        Err(e) => Err(Error::Store(hint(url, &e))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

    use object_store::memory::InMemory;

    use super::*;

    async fn put(store: &InMemory, path: &str) {
        store.put(&ObjectPath::from(path), PutPayload::from_static(b"x")).await.unwrap();
    }

    fn url() -> Url {
        Url::parse("memory:///offline/").unwrap()
    }

    /// A table of a store made before the marker existed, with rows pushed into it.
    async fn old_table(store: &InMemory) {
        put(store, "offline/driver_stats/_delta_log/00000000000000000000.json").await;
        put(store, "offline/driver_stats/part-00000.parquet").await;
        put(store, "offline/driver_stats/_quiver/sorted.json").await;
        put(store, "offline/driver_stats/pushed/part-00001.parquet").await;
    }

    #[tokio::test]
    async fn an_unmarked_store_with_pushed_rows_is_accepted_and_marked() {
        let store = InMemory::new();
        old_table(&store).await;
        let prefix = ObjectPath::from("offline");
        verify(&store, &prefix, &url()).await.unwrap();
        store.head(&ObjectPath::from("offline/.quiver/offline-store.json")).await.expect("marked");
    }

    #[tokio::test]
    async fn an_unmarked_store_holding_quivers_own_objects_is_accepted() {
        let store = InMemory::new();
        old_table(&store).await;
        for path in [
            ".quiver/state/views/driver_stats.json",
            ".quiver/leases/driver_stats/00000000000000000001.json",
            ".quiver/jobs/job-1.json",
            ".quiver/training_sets/ts-00000000000000000000000000000000/manifest.json",
        ] {
            put(&store, &format!("offline/{path}")).await;
        }
        let prefix = ObjectPath::from("offline");
        verify(&store, &prefix, &url()).await.unwrap();
        store.head(&ObjectPath::from("offline/.quiver/offline-store.json")).await.expect("marked");
    }

    #[tokio::test]
    async fn a_folder_that_is_not_a_table_is_refused_and_nothing_written() {
        let store = InMemory::new();
        old_table(&store).await;
        put(&store, "offline/driver_stats/reports/q1.csv").await;
        let prefix = ObjectPath::from("offline");
        let refused = verify(&store, &prefix, &url()).await.unwrap_err().to_string();
        assert!(refused.contains("memory:///offline/ is not a Quiver offline store"), "{refused}");
        let marker = store.head(&ObjectPath::from("offline/.quiver/offline-store.json")).await;
        assert!(matches!(marker, Err(object_store::Error::NotFound { .. })), "{marker:?}");
    }
}
