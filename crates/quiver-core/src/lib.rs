//! Quiver's core: what users declare and where it is kept.
//!
//! - [`definitions`] — entities, sources, feature views and feature services;
//! - [`repo`] — reading them from a folder of YAML files, with the place of every field;
//! - [`validate`] — checks across objects (references, collisions);
//! - [`diff`] — what `apply` would change, field by field;
//! - [`registry`] — the versioned, compare-and-swap store of applied definitions;
//! - [`config`] — `quiver.yaml`;
//! - [`storage`] — paths and object store URLs.
//!
//! Nothing here runs queries: checks against the data itself live in `quiver-offline`.

pub mod config;
pub mod definitions;
pub mod diff;
pub mod dtype;
pub mod duration;
pub mod error;
pub mod problem;
pub mod registry;
pub mod repo;
pub mod state;
pub mod storage;
pub mod validate;

pub use error::{Error, Result};
