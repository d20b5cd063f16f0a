//! Compiles the API contract in `proto/quiver/v1/` into Rust (messages, tonic clients and
//! servers) and a file descriptor set for gRPC server reflection. protoc comes from the
//! `protoc-bin-vendored` crate (or `PROTOC` when set), so nothing needs to be installed.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = match std::env::var_os("PROTOC") {
        Some(p) => PathBuf::from(p),
        None => protoc_bin_vendored::protoc_bin_path()?,
    };
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files: Vec<PathBuf> = ["types", "registry", "online", "offline", "materialize", "push"]
        .iter()
        .map(|f| root.join(format!("quiver/v1/{f}.proto")))
        .collect();
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let descriptor = PathBuf::from(std::env::var("OUT_DIR")?).join("quiver_v1_descriptor.bin");
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc);
    tonic_prost_build::configure().file_descriptor_set_path(&descriptor).compile_with_config(
        config,
        &files,
        &[root],
    )?;
    Ok(())
}
