//! The embedded online store: a single-file ACID key-value store (redb) inside the project,
//! used when no Redis is configured, so the quickstart needs nothing installed.
//!
//! One table; keys are `view NUL entity`, values the encoded rows. A write transaction
//! applies a whole batch with the newer-wins rule and commits durably, so a batch is
//! all-or-nothing. Blocking file I/O runs on tokio's blocking pool.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::error::{Error, Result};
use crate::store::{EntityKey, OnlineStore, RowWrite, newer_wins};

const ROWS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("quiver_rows");

/// The embedded store at a file path.
#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
    path: PathBuf,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EmbeddedStore({})", self.path.display())
    }
}

fn row_key(view: &str, entity: &EntityKey) -> Vec<u8> {
    let mut k = Vec::with_capacity(view.len() + 1 + entity.0.len());
    k.extend_from_slice(view.as_bytes());
    k.push(0);
    k.extend_from_slice(entity.0.as_bytes());
    k
}

impl EmbeddedStore {
    /// Opens (creating when missing) the store file `dir/online.redb`.
    pub fn open(dir: &Path) -> Result<Self> {
        let fail = |m: String| Error::Embedded { path: dir.display().to_string(), message: m };
        std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
        let path = dir.join("online.redb");
        let db = Database::create(&path).map_err(|e| fail(e.to_string()))?;
        let txn = db.begin_write().map_err(|e| fail(e.to_string()))?;
        txn.open_table(ROWS).map_err(|e| fail(e.to_string()))?;
        txn.commit().map_err(|e| fail(e.to_string()))?;
        Ok(EmbeddedStore { db: Arc::new(db), path })
    }

    fn fail(&self, e: impl std::fmt::Display) -> Error {
        Error::Embedded { path: self.path.display().to_string(), message: e.to_string() }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&EmbeddedStore) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || f(&me))
            .await
            .map_err(|e| Error::Internal(format!("embedded store task: {e}")))?
    }
}

#[async_trait]
impl OnlineStore for EmbeddedStore {
    async fn write(&self, rows: &[RowWrite]) -> Result<u64> {
        let rows = rows.to_vec();
        self.blocking(move |s| {
            let txn = s.db.begin_write().map_err(|e| s.fail(e))?;
            let mut written = 0;
            {
                let mut table = txn.open_table(ROWS).map_err(|e| s.fail(e))?;
                for r in &rows {
                    let key = row_key(&r.view, &r.entity);
                    let current =
                        table.get(key.as_slice()).map_err(|e| s.fail(e))?.map(|v| v.value().to_vec());
                    if newer_wins(current.as_deref(), &r.bytes) {
                        table.insert(key.as_slice(), r.bytes.as_slice()).map_err(|e| s.fail(e))?;
                        written += 1;
                    }
                }
            }
            txn.commit().map_err(|e| s.fail(e))?;
            Ok(written)
        })
        .await
    }

    async fn read(&self, keys: &[(&str, EntityKey)]) -> Result<Vec<Option<Vec<u8>>>> {
        let keys: Vec<Vec<u8>> = keys.iter().map(|(view, entity)| row_key(view, entity)).collect();
        self.blocking(move |s| {
            let txn = s.db.begin_read().map_err(|e| s.fail(e))?;
            let table = txn.open_table(ROWS).map_err(|e| s.fail(e))?;
            keys.iter()
                .map(|key| Ok(table.get(key.as_slice()).map_err(|e| s.fail(e))?.map(|v| v.value().to_vec())))
                .collect()
        })
        .await
    }

    async fn delete_view(&self, view: &str) -> Result<u64> {
        let mut start = view.as_bytes().to_vec();
        start.push(0);
        let mut end = view.as_bytes().to_vec();
        end.push(1);
        self.blocking(move |s| {
            let txn = s.db.begin_write().map_err(|e| s.fail(e))?;
            let mut removed = 0u64;
            {
                let mut table = txn.open_table(ROWS).map_err(|e| s.fail(e))?;
                table
                    .retain_in(start.as_slice()..end.as_slice(), |_, _| {
                        removed += 1;
                        false
                    })
                    .map_err(|e| s.fail(e))?;
            }
            txn.commit().map_err(|e| s.fail(e))?;
            Ok(removed)
        })
        .await
    }

    fn describe(&self) -> String {
        format!("embedded:{}", self.path.display())
    }
}
