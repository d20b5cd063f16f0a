//! What Quiver's own physical operators ([`crate::pit::AsofJoinExec`],
//! [`crate::rowsort::SortRowsExec`], the materialization's row counter) share.

use std::sync::{Arc, Mutex, MutexGuard};

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::ExecutionPlan;

/// The `N` new children of `operator` (`ExecutionPlan::with_new_children`), or an error
/// saying how many it takes.
pub(crate) fn exactly<const N: usize>(
    operator: &str,
    children: Vec<Arc<dyn ExecutionPlan>>,
) -> Result<[Arc<dyn ExecutionPlan>; N]> {
    let given = children.len();
    children
        .try_into()
        .map_err(|_| DataFusionError::Internal(format!("{operator} takes {N} input(s), not {given}")))
}

/// Visits `expressions` in order (`ExecutionPlan::apply_expressions`), stopping when `f` says so.
pub(crate) fn visit<'a>(
    expressions: impl IntoIterator<Item = &'a Arc<dyn PhysicalExpr>>,
    f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
) -> Result<TreeNodeRecursion> {
    for expr in expressions {
        if f(expr)? == TreeNodeRecursion::Stop {
            return Ok(TreeNodeRecursion::Stop);
        }
    }
    Ok(TreeNodeRecursion::Continue)
}

/// `m`'s guard; a lock poisoned by a panicking writer is taken as it is (the panic already
/// fails the job, and the tallies behind these locks stay consistent row by row).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
