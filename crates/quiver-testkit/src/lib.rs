//! Real services for Quiver's tests.
//!
//! [`S3Server`] is an S3-compatible server started by the test itself on a free loopback
//! port (`127.0.0.1:<port>`), inside the test process, and stopped when dropped. It is real,
//! not a mock of the client: it is an actual HTTP server speaking the S3 REST protocol
//! (`s3s`, which also checks SigV4 signatures, over `s3s-fs`, which keeps objects as files
//! in a temporary folder). Quiver's own `object_store` S3 client talks to it over TCP exactly
//! as it talks to AWS: the same request signing, path-style URLs, XML listings with
//! delimiters and continuation tokens, ranged GETs and conditional `PUT`s
//! (`If-None-Match: *`, which the registry's compare-and-swap relies on). Nothing is
//! expected to be running on the machine, and nothing is left running.
//!
//! [`child`] re-runs a test in a child process with the server's `AWS_*` variables, for the
//! code paths that read S3 settings from the environment (see there for why not `set_var`).
//!
//! [`azurite`] starts Microsoft's Azure Blob Storage emulator for the `az://` tests.
//!
//! [`redis`] starts real `redis-server` processes (one, or a 3-node cluster) on free ports,
//! optionally with a TLS port; [`tls`] makes the certificates with `openssl`.
//!
//! Layout: `s3` (the server and the client settings), `child` (re-running a test with an
//! environment), `error` (the error type).
//!
//! Limits of the server compared with S3, none of which Quiver's tests meet: a key and a
//! "folder" of the same name cannot coexist (`a` and `a/b`), since objects are files; and
//! object-changing requests are served one at a time (see the `s3` module for why).

pub mod azurite;
pub mod child;
mod error;
pub mod redis;
mod s3;
pub mod tls;

pub use crate::error::{Error, Result};
pub use crate::s3::{REGION, S3Server, S3Settings};
