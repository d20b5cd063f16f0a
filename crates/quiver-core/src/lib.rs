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

/// Serializes a type as its `Display` text and deserializes it with its `FromStr`, so a
/// definition reads and writes the same text a user types (`ttl: 2h`, `dtype: list<int64>`).
macro_rules! serde_as_text {
    ($t:ty) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <String as serde::Deserialize>::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

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
pub mod untrusted;
pub mod validate;

pub use error::{Error, Result};
