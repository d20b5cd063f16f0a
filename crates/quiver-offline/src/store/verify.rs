//! The check every process makes before it uses an offline store: that its location can be
//! reached with the configured settings, and that it holds a Quiver offline store (or
//! nothing yet), so a typo in `offline_store:` never writes Delta tables among someone
//! else's files.
//!
//! A store is marked by `.quiver/offline-store.json`, created (only if absent) the first time
//! a process finds the location empty. A location without the marker is accepted when every
//! top-level folder it holds is a Delta table or Quiver's own `.quiver/` (a store made before
//! the marker existed), and then marked; anything else is refused, naming the location.
//!
//! It also asks the store to prove that a create-only write is refused when the object
//! exists: two create-only writes of one probe object under `.quiver/probes/`, of which the
//! second must fail. Delta commits and leases rest on that; a store that ignores
//! `If-None-Match` (some S3-compatible servers and proxies) would let two writers commit the
//! same table version, so it is refused at startup with the setting to change.

use std::time::Duration;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use url::Url;

use crate::error::{Error, Result};
use crate::layout::PUSHED_DIR;

/// How long the first request may take before the location is called unreachable (the
/// client itself retries for minutes).
const PROBE_TIMEOUT: Duration = Duration::from_secs(15);

/// The error for an object store error at `url`, with what to check.
fn hint(url: &Url, e: &object_store::Error) -> String {
    format!("offline_store {url}: {} ({e})", quiver_core::storage::what_to_check(url.as_str(), e))
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

/// Writes one probe object create-only twice: the second write must be refused. Refuses the
/// store, naming what to change, when it is not; the probe is deleted either way.
async fn check_conditional_writes(store: &dyn ObjectStore, prefix: &ObjectPath, url: &Url) -> Result<()> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| Error::Internal(format!("no random numbers: {e}")))?;
    let name: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let probe = prefix.clone().join(".quiver").join("probes").join(format!("{name}.json"));
    let create = || PutOptions { mode: PutMode::Create, ..PutOptions::default() };
    let body = || PutPayload::from_static(b"{\"probe\": \"create-only writes\"}");
    store.put_opts(&probe, body(), create()).await.map_err(|e| Error::Store(hint(url, &e)))?;
    let second = store.put_opts(&probe, body(), create()).await;
    if let Err(e) = store.delete(&probe).await {
        tracing::warn!(store = %url, error = %e, "cannot delete the create-only write probe");
    }
    // A local folder keeps the probes' folder when its last file goes (object stores have no
    // folders). Removed only when empty: another process's probe in it keeps it.
    if url.scheme() == "file"
        && let Ok(root) = url.to_file_path()
    {
        let _ = std::fs::remove_dir(root.join(".quiver").join("probes"));
    }
    match second {
        Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => Ok(()),
        Ok(_) => Err(Error::Store(format!(
            "offline_store {url}: the store accepted a create-only write (If-None-Match: *) of an \
             object that already existed, so two writers could both commit the same Delta table \
             version and one commit would be lost. Use a store that honours conditional writes \
             (Amazon S3, MinIO, Cloudflare R2, Google Cloud Storage, Azure Blob Storage), or for \
             an S3-compatible store that supports them through ETags set AWS_CONDITIONAL_PUT=etag; \
             nothing was written"
        ))),
        Err(e) => Err(Error::Store(hint(url, &e))),
    }
}

/// Checks the store at `url` (the prefix `prefix` in `store`) as the module says; marks an
/// empty or older store.
pub(super) async fn verify(store: &dyn ObjectStore, prefix: &ObjectPath, url: &Url) -> Result<()> {
    let marker = prefix.clone().join(".quiver").join("offline-store.json");
    let first = tokio::time::timeout(PROBE_TIMEOUT, store.head(&marker)).await.map_err(|_| {
        Error::Store(format!(
            "offline_store {url}: no answer within {}s: {}",
            PROBE_TIMEOUT.as_secs(),
            quiver_core::storage::UNREACHABLE
        ))
    })?;
    match first {
        Ok(_) => return check_conditional_writes(store, prefix, url).await,
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
    check_conditional_writes(store, prefix, url).await?;
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
    async fn a_local_store_is_marked_and_keeps_no_folder_of_probes() {
        let dir = tempfile::tempdir().unwrap();
        let url = Url::from_directory_path(dir.path()).unwrap();
        let location = quiver_core::storage::open_location(&url).unwrap();
        verify(location.store.as_ref(), &location.prefix, &url).await.unwrap();
        verify(location.store.as_ref(), &location.prefix, &url).await.unwrap();
        assert!(dir.path().join(".quiver/offline-store.json").is_file());
        assert!(!dir.path().join(".quiver/probes").exists(), "the probes' folder is left behind");
        // A probe of another process in flight keeps the folder (and its file).
        std::fs::create_dir_all(dir.path().join(".quiver/probes")).unwrap();
        std::fs::write(dir.path().join(".quiver/probes/other.json"), b"{}").unwrap();
        verify(location.store.as_ref(), &location.prefix, &url).await.unwrap();
        assert!(dir.path().join(".quiver/probes/other.json").is_file());
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

    /// An in-memory store that ignores create-only writes: every put overwrites, as a store
    /// that drops `If-None-Match` does.
    #[derive(Debug, Default)]
    struct IgnoresConditions {
        inner: InMemory,
    }

    impl std::fmt::Display for IgnoresConditions {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "IgnoresConditions({})", self.inner)
        }
    }

    #[async_trait::async_trait]
    #[deny(clippy::missing_trait_methods)]
    impl ObjectStore for IgnoresConditions {
        async fn put_opts(
            &self,
            location: &ObjectPath,
            payload: PutPayload,
            _: PutOptions,
        ) -> object_store::Result<object_store::PutResult> {
            self.inner.put_opts(location, payload, PutOptions::default()).await
        }

        async fn put_multipart_opts(
            &self,
            location: &ObjectPath,
            opts: object_store::PutMultipartOptions,
        ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
            self.inner.put_multipart_opts(location, opts).await
        }

        async fn get_opts(
            &self,
            location: &ObjectPath,
            options: object_store::GetOptions,
        ) -> object_store::Result<object_store::GetResult> {
            self.inner.get_opts(location, options).await
        }

        async fn get_ranges(
            &self,
            location: &ObjectPath,
            ranges: &[std::ops::Range<u64>],
        ) -> object_store::Result<Vec<bytes::Bytes>> {
            self.inner.get_ranges(location, ranges).await
        }

        fn delete_stream(
            &self,
            locations: futures::stream::BoxStream<'static, object_store::Result<ObjectPath>>,
        ) -> futures::stream::BoxStream<'static, object_store::Result<ObjectPath>> {
            self.inner.delete_stream(locations)
        }

        fn list(
            &self,
            prefix: Option<&ObjectPath>,
        ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>> {
            self.inner.list(prefix)
        }

        fn list_with_offset(
            &self,
            prefix: Option<&ObjectPath>,
            offset: &ObjectPath,
        ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>> {
            self.inner.list_with_offset(prefix, offset)
        }

        async fn list_with_delimiter(
            &self,
            prefix: Option<&ObjectPath>,
        ) -> object_store::Result<object_store::ListResult> {
            self.inner.list_with_delimiter(prefix).await
        }

        async fn copy_opts(
            &self,
            from: &ObjectPath,
            to: &ObjectPath,
            options: object_store::CopyOptions,
        ) -> object_store::Result<()> {
            self.inner.copy_opts(from, to, options).await
        }

        async fn rename_opts(
            &self,
            from: &ObjectPath,
            to: &ObjectPath,
            options: object_store::RenameOptions,
        ) -> object_store::Result<()> {
            self.inner.rename_opts(from, to, options).await
        }
    }

    #[tokio::test]
    async fn a_store_that_ignores_create_only_writes_is_refused_and_left_empty() {
        use futures::TryStreamExt;
        let prefix = ObjectPath::from("offline");
        let store = IgnoresConditions::default();
        let refused = verify(&store, &prefix, &url()).await.unwrap_err().to_string();
        assert!(refused.contains("memory:///offline/"), "{refused}");
        assert!(refused.contains("accepted a create-only write"), "{refused}");
        assert!(refused.contains("AWS_CONDITIONAL_PUT=etag"), "{refused}");
        let left: Vec<_> = store.list(None).try_collect().await.unwrap();
        assert!(left.is_empty(), "nothing written: {left:?}");
        // An existing (marked) store behind such a proxy is refused too.
        store
            .inner
            .put(&prefix.clone().join(".quiver").join("offline-store.json"), PutPayload::from_static(b"{}"))
            .await
            .unwrap();
        assert!(verify(&store, &prefix, &url()).await.is_err());
        // A store that honours them passes, and keeps no probe.
        let honest = InMemory::new();
        verify(&honest, &prefix, &url()).await.unwrap();
        let kept: Vec<_> = honest.list(None).try_collect().await.unwrap();
        let names: Vec<String> = kept.iter().map(|m| m.location.to_string()).collect();
        assert_eq!(names, ["offline/.quiver/offline-store.json"]);
    }
}
