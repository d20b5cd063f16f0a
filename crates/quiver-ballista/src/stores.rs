//! Object stores on executors and on the scheduler: opened on first use from the process's
//! own settings, never from the job.
//!
//! A plan names the files it reads by URL (`s3://bucket/offline/view/part-….parquet`); the
//! process that runs it needs a store for `s3://bucket`. The registry here opens one the
//! first time a bucket is asked for, with the opener it was given (by default
//! [`quiver_core::storage::open_location`], what the lake, the registry and the offline store
//! use: the `AWS_*`, `GOOGLE_*` and `AZURE_*` variables of the executor's own environment),
//! and keeps it for every later session. So credentials stay where the executor runs: they are
//! not session settings, which Ballista sends with every job and logs.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::object_store::ObjectStoreRegistry;
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use url::Url;

/// Opens the store for a bucket URL (`s3://bucket/`); the error says what to check.
pub type StoreOpener = Arc<dyn Fn(&Url) -> Result<Arc<dyn ObjectStore>, String> + Send + Sync>;

/// Schemes opened on demand: the object stores Quiver's locations may name.
const REMOTE_SCHEMES: &[&str] = &["s3", "s3a", "gs", "az", "abfs", "abfss", "azure", "adl"];

/// The object stores a process reaches, shared by all its sessions.
#[derive(Clone)]
pub struct ObjectStores {
    registry: Arc<LazyRegistry>,
}

impl fmt::Debug for ObjectStores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.registry.fmt(f)
    }
}

impl ObjectStores {
    /// Stores opened as the rest of Quiver opens them, from this process's environment.
    pub fn from_env() -> Self {
        Self::with_opener(Arc::new(|url: &Url| {
            quiver_core::storage::open_location(url).map(|l| l.store).map_err(|e| e.to_string())
        }))
    }

    /// Stores opened by `opener` (for embedders that hold their settings elsewhere).
    pub fn with_opener(opener: StoreOpener) -> Self {
        let mut stores: HashMap<String, Arc<dyn ObjectStore>> = HashMap::new();
        stores.insert("file://".into(), Arc::new(LocalFileSystem::new()));
        ObjectStores { registry: Arc::new(LazyRegistry { stores: Mutex::new(stores), opener }) }
    }

    /// The registry to install in a `RuntimeEnv`.
    pub fn registry(&self) -> Arc<dyn ObjectStoreRegistry> {
        self.registry.clone()
    }
}

struct LazyRegistry {
    stores: Mutex<HashMap<String, Arc<dyn ObjectStore>>>,
    opener: StoreOpener,
}

impl fmt::Debug for LazyRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<String> = match self.stores.lock() {
            Ok(stores) => stores.keys().cloned().collect(),
            Err(_) => vec![],
        };
        f.debug_struct("ObjectStores").field("open", &keys).finish()
    }
}

/// `scheme://host[:port]`, without credentials or path: what a store is registered under
/// (the same key DataFusion's own registry uses).
fn key(url: &Url) -> String {
    format!("{}://{}", url.scheme(), &url[url::Position::BeforeHost..url::Position::AfterPort])
}

impl LazyRegistry {
    fn lock(&self) -> DfResult<std::sync::MutexGuard<'_, HashMap<String, Arc<dyn ObjectStore>>>> {
        self.stores.lock().map_err(|_| DataFusionError::Internal("object store registry poisoned".into()))
    }
}

impl ObjectStoreRegistry for LazyRegistry {
    fn register_store(&self, url: &Url, store: Arc<dyn ObjectStore>) -> Option<Arc<dyn ObjectStore>> {
        self.stores.lock().ok()?.insert(key(url), store)
    }

    fn deregister_store(&self, url: &Url) -> DfResult<Arc<dyn ObjectStore>> {
        self.lock()?
            .remove(&key(url))
            .ok_or_else(|| DataFusionError::Execution(format!("no object store registered for {}", key(url))))
    }

    fn get_store(&self, url: &Url) -> DfResult<Arc<dyn ObjectStore>> {
        let key = key(url);
        if let Some(store) = self.lock()?.get(&key) {
            return Ok(store.clone());
        }
        let scheme = url.scheme();
        if scheme == "memory" {
            return Err(DataFusionError::Execution(format!(
                "{key}: a memory:// store lives inside one process; a Ballista executor cannot read it"
            )));
        }
        if !REMOTE_SCHEMES.contains(&scheme) {
            return Err(DataFusionError::Execution(format!(
                "{key}: no object store for scheme '{scheme}' (known: file, {})",
                REMOTE_SCHEMES.join(", ")
            )));
        }
        let bucket = Url::parse(&format!("{key}/"))
            .map_err(|e| DataFusionError::Execution(format!("{key}: not a bucket URL: {e}")))?;
        // Opened outside the lock (building a client may take a moment); if two tasks race,
        // the first one registered wins and both use it.
        let store = (self.opener)(&bucket)
            .map_err(|e| DataFusionError::Execution(format!("opening the object store {key}: {e}")))?;
        Ok(self.lock()?.entry(key).or_insert(store).clone())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn opens_each_bucket_once_and_refuses_what_it_cannot_reach() {
        let opened = Arc::new(AtomicUsize::new(0));
        let counter = opened.clone();
        let stores = ObjectStores::with_opener(Arc::new(move |url: &Url| {
            assert_eq!(url.as_str(), "s3://bucket/");
            counter.fetch_add(1, Ordering::SeqCst);
            Ok(Arc::new(object_store::memory::InMemory::new()) as Arc<dyn ObjectStore>)
        }));
        let registry = stores.registry();
        let a = registry.get_store(&Url::parse("s3://bucket/offline/v/part-0.parquet").unwrap()).unwrap();
        let b = registry.get_store(&Url::parse("s3://bucket/").unwrap()).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(opened.load(Ordering::SeqCst), 1);
        registry.get_store(&Url::parse("file:///tmp/x").unwrap()).unwrap();
        let e = registry.get_store(&Url::parse("memory://m/").unwrap()).unwrap_err().to_string();
        assert!(e.contains("memory://"), "{e}");
        let e = registry.get_store(&Url::parse("ftp://h/").unwrap()).unwrap_err().to_string();
        assert!(e.contains("ftp"), "{e}");
    }

    #[test]
    fn an_opener_error_names_the_bucket() {
        let stores = ObjectStores::with_opener(Arc::new(|_: &Url| Err("no credentials".to_string())));
        let e = stores.registry().get_store(&Url::parse("gs://b/x").unwrap()).unwrap_err().to_string();
        assert!(e.contains("gs://b") && e.contains("no credentials"), "{e}");
    }
}
