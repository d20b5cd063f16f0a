//! End-to-end tests across Quiver's crates live in `tests/` next to this file; this
//! library is empty on purpose (cargo needs a target to hang them on).
