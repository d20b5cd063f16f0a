//! A view's Delta table as Quiver uses it: its live files, one commit of add and remove
//! actions (creating the table on its first), the sidecar update after a commit, and the
//! check that the table's columns are still the view's.

use std::collections::BTreeSet;

use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use deltalake::DeltaTable;
use deltalake::kernel::Action;
use deltalake::protocol::SaveMode;
use url::Url;

use crate::error::{Error, Result};
use crate::layout::sort_columns;
use crate::sidecar;

/// A live file of a loaded table, with its Delta statistics.
pub(super) struct LiveFile {
    pub(super) path: String,
    pub(super) url: String,
    pub(super) size: u64,
    pub(super) stats: Option<String>,
    /// The action that removes it.
    pub(super) remove: deltalake::kernel::Remove,
}

pub(super) fn live_files(view: &str, table: &DeltaTable) -> Result<Vec<LiveFile>> {
    let state = table.snapshot().map_err(|e| Error::Store(format!("listing files of view '{view}': {e}")))?;
    Ok(state_files(state, table.log_store().as_ref()))
}

fn state_files(
    state: &deltalake::table::state::DeltaTableState,
    log_store: &dyn deltalake::logstore::LogStore,
) -> Vec<LiveFile> {
    state
        .log_data()
        .into_iter()
        .map(|f| {
            let path = f.object_store_path();
            // Local tables give plain paths; every file is named by a URL here.
            let uri = log_store.to_uri(&path);
            let url = match Url::parse(&uri) {
                Ok(_) => uri,
                Err(_) => Url::from_file_path(&uri).map(String::from).unwrap_or(uri),
            };
            LiveFile {
                url,
                path: path.to_string(),
                size: u64::try_from(f.size()).unwrap_or(0),
                stats: f.stats(),
                remove: f.remove_action(true),
            }
        })
        .collect()
}

/// An added file's path as the Delta log names it once read back (decoded).
pub(super) fn add_path(add: &deltalake::kernel::Add) -> String {
    object_store::path::Path::from_url_path(&add.path)
        .map(|p| p.to_string())
        .unwrap_or_else(|_| add.path.clone())
}

/// Records in the table's sidecar ([`crate::sidecar`]) that `sorted_paths` (files this write
/// added) are sorted, pruning the list to the files live at the committed version. Failing
/// to record costs readers a sort, not a wrong answer, so it is logged, not returned.
pub(super) async fn record_sorted_files(
    view: &str,
    table: &DeltaTable,
    committed: &deltalake::table::state::DeltaTableState,
    schema: &Schema,
    sorted_paths: Vec<String>,
) {
    let live: BTreeSet<String> =
        state_files(committed, table.log_store().as_ref()).into_iter().map(|f| f.path).collect();
    let result =
        sidecar::record(table.object_store().as_ref(), &sort_columns(schema), &live, sorted_paths).await;
    if let Err(e) = result {
        tracing::warn!(view, error = %e, "could not record which offline files are sorted; reads will sort them");
    }
}

/// Commits `actions` to a view's table as one Delta write (`mode`, with the replaced
/// window's `predicate` for an overwrite); a table with no commit yet is created by the
/// same commit, as version 0.
pub(super) async fn commit(
    view: &str,
    table: &DeltaTable,
    target: &super::writer::FileTarget,
    actions: Vec<Action>,
    mode: SaveMode,
    predicate: Option<String>,
) -> Result<deltalake::table::state::DeltaTableState> {
    let fail = |e: deltalake::DeltaTableError| Error::Store(format!("writing view '{view}': {e}"));
    if table.version().is_none() {
        let columns = target.delta_schema.fields().cloned().collect::<Vec<_>>();
        let created = deltalake::operations::create::CreateBuilder::new()
            .with_log_store(table.log_store())
            .with_columns(columns)
            .with_table_name(view)
            .with_actions(actions)
            .await
            .map_err(fail)?;
        return Ok(created.snapshot().map_err(fail)?.clone());
    }
    let operation = deltalake::protocol::DeltaOperation::Write { mode, partition_by: None, predicate };
    let snapshot = table.snapshot().map_err(fail)?;
    let committed = deltalake::kernel::transaction::CommitBuilder::from(
        deltalake::kernel::transaction::CommitProperties::default(),
    )
    .with_actions(actions)
    .build(
        Some(snapshot as &dyn deltalake::kernel::transaction::TableReference),
        table.log_store(),
        operation,
    )
    .await
    .map_err(fail)?;
    Ok(committed.snapshot)
}

/// The Arrow schema of a loaded Delta table.
pub(super) fn table_schema(view: &str, table: &DeltaTable) -> Result<Schema> {
    use deltalake::kernel::engine::arrow_conversion::TryIntoArrow;
    let snapshot = table.snapshot().map_err(|e| Error::Store(format!("view '{view}': {e}")))?;
    snapshot
        .schema()
        .as_ref()
        .try_into_arrow()
        .map_err(|e| Error::Store(format!("view '{view}': reading the table schema: {e}")))
}

/// Same types, ignoring the names of list element fields (Delta calls them `element`,
/// Arrow writers often `item`).
fn same_type(a: &DataType, b: &DataType) -> bool {
    match (a, b) {
        (DataType::List(x), DataType::List(y)) | (DataType::LargeList(x), DataType::LargeList(y)) => {
            same_type(x.data_type(), y.data_type())
        }
        _ => a == b,
    }
}

pub(super) fn check_schema(view: &str, table: &DeltaTable, expected: &SchemaRef) -> Result<()> {
    let actual = table_schema(view, table)?;
    let describe = |s: &Schema| {
        s.fields().iter().map(|f| format!("{} {}", f.name(), f.data_type())).collect::<Vec<_>>().join(", ")
    };
    let same = actual.fields().len() == expected.fields().len()
        && actual
            .fields()
            .iter()
            .zip(expected.fields())
            .all(|(a, b)| a.name() == b.name() && same_type(a.data_type(), b.data_type()));
    if !same {
        return Err(Error::Schema(format!(
            "the offline table of view '{view}' has columns [{}] but the view now declares [{}]; \
             the view's keys or features changed since it was materialized. Rebuild its table under \
             the new columns with `quiver materialize --rebuild --views {view} --start … --end …` \
             (the table's earlier versions keep the old rows)",
            describe(&actual),
            describe(expected)
        )));
    }
    Ok(())
}
