//! The codecs every role of a Quiver cluster uses: Ballista's own first, Quiver's second.
//!
//! `ComposedPhysicalExtensionCodec` writes the position of the codec that encoded a node
//! next to the node, so the order must be the same in the client, the scheduler and the
//! executors; every role gets its codec from here.

use std::sync::Arc;

use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::{ComposedPhysicalExtensionCodec, PhysicalExtensionCodec};
use quiver_offline::pit::QuiverCodec;

/// Ballista's nodes (shuffle writers and readers, ...) and then Quiver's (`AsofJoinExec`,
/// `SortRowsExec`), in that order.
pub fn physical_codec() -> Arc<dyn PhysicalExtensionCodec> {
    Arc::new(ComposedPhysicalExtensionCodec::new(vec![
        Arc::new(BallistaPhysicalExtensionCodec::default()),
        Arc::new(QuiverCodec),
    ]))
}

/// Ballista's logical codec (Quiver sends physical plans and has no logical nodes).
pub fn logical_codec() -> Arc<dyn LogicalExtensionCodec> {
    Arc::new(BallistaLogicalExtensionCodec::default())
}
