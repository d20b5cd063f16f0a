//! The online store contract, shared by every implementation.

use std::fmt;

use async_trait::async_trait;

use crate::error::Result;

/// An entity's identity within a view: its join key values, canonically encoded
/// (`driver_id=1001`, `driver_id=1001,city=berlin`). Never contains `{` or `}`, so it can sit
/// inside a Redis hash tag.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntityKey(pub String);

impl fmt::Display for EntityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One row to write: the encoded latest values of one entity for one view.
#[derive(Clone, Debug)]
pub struct RowWrite {
    pub view: String,
    pub entity: EntityKey,
    /// Encoded with [`crate::value::encode`].
    pub bytes: Vec<u8>,
    /// When the store may drop the row (Unix milliseconds); `None` keeps it.
    pub expire_at_ms: Option<i64>,
}

/// Where the latest feature values live for online reads.
///
/// Contract:
/// - **newer wins**: a write replaces the stored row of (view, entity) only when it orders
///   after it by (event time, created time, then the non-list feature values: the offline
///   latest-row order), or when the stored row was written for another
///   definition of the view (another fingerprint). An equal or older row is skipped, so a
///   re-run or a backfill never moves a value backwards. The comparison and the replacement
///   are one atomic step per (view, entity), also with concurrent writers;
/// - **reads** return, for each requested (view, entity), the stored bytes or `None`, in
///   request order, in one round trip to the store for the whole request;
/// - a missing key is `None`, never an error; an unreachable store is
///   [`crate::Error::Unavailable`];
/// - **delete_view** removes every row of a view and nothing else.
#[async_trait]
pub trait OnlineStore: Send + Sync + fmt::Debug {
    /// Writes rows (any views, any entities). Returns how many replaced or created a row.
    async fn write(&self, rows: &[RowWrite]) -> Result<u64>;

    /// Reads `(view, entity)` pairs.
    async fn read(&self, keys: &[(&str, EntityKey)]) -> Result<Vec<Option<Vec<u8>>>>;

    /// Removes every row of a view; returns how many were removed.
    async fn delete_view(&self, view: &str) -> Result<u64>;

    /// What this store is, for logs and errors (`redis://127.0.0.1:6379/0`).
    fn describe(&self) -> String;
}

/// Whether `new` should replace `current` under the newer-wins rule: `current` was written
/// for another definition of the view, or `new` orders after it by (event time, created
/// time, tie key) ([`crate::value`]).
pub fn newer_wins(current: Option<&[u8]>, new: &[u8]) -> bool {
    use crate::value::order_parts;
    match current {
        None => true,
        Some(cur) => {
            let same_definition = cur.get(1..5) == new.get(1..5);
            !same_definition || order_parts(new) > order_parts(cur)
        }
    }
}
