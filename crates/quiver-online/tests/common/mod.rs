//! Real Redis servers for tests (from `quiver-testkit`).

#![allow(dead_code, unused_imports)]

pub use quiver_testkit::redis::*;
