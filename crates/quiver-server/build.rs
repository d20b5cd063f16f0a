//! Compiles the API contract in `proto/quiver/v1/` into Rust (messages, tonic clients and
//! servers) and a file descriptor set for gRPC server reflection, and Arrow Flight's
//! description in `proto/arrow/flight/protocol/` into a descriptor set only (the Flight code
//! comes from `arrow-flight`). protoc comes from the `protoc-bin-vendored` crate (or
//! `PROTOC` when set), so nothing needs to be installed.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = match std::env::var_os("PROTOC") {
        Some(p) => PathBuf::from(p),
        None => protoc_bin_vendored::protoc_bin_path()?,
    };
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files: Vec<PathBuf> = ["types", "registry", "online", "offline", "materialize", "push", "quality"]
        .iter()
        .map(|f| root.join(format!("quiver/v1/{f}.proto")))
        .collect();
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    flight_descriptor_set(&protoc, &root, &out.join("arrow_flight_descriptor.bin"))?;
    let descriptor = out.join("quiver_v1_descriptor.bin");
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc);
    tonic_prost_build::configure().file_descriptor_set_path(&descriptor).compile_with_config(
        config,
        &files,
        &[root],
    )?;
    Ok(())
}

/// Writes the descriptor set of Arrow Flight's service to `out`, with its imports (the
/// well-known `Timestamp`), for server reflection; no Rust is generated from it.
fn flight_descriptor_set(protoc: &Path, root: &Path, out: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let proto = root.join("arrow/flight/protocol/flight.proto");
    println!("cargo:rerun-if-changed={}", proto.display());
    let status = Command::new(protoc)
        .arg("-I")
        .arg(root)
        .arg("-I")
        .arg(protoc_bin_vendored::include_path()?)
        .arg("--include_imports")
        .arg(format!("--descriptor_set_out={}", out.display()))
        .arg(&proto)
        .status()?;
    if !status.success() {
        return Err(format!("protoc failed on {} ({status})", proto.display()).into());
    }
    Ok(())
}
