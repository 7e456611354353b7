//! Compiles `assurance/**/*.proto` with protox (pure Rust, no system protoc) and keeps the
//! descriptor set for gRPC server reflection.
use std::{env, path::PathBuf};

const PROTOS: &[&str] = &[
    "assurance/type/v1/types.proto",
    "assurance/audit/v1/audit.proto",
    "assurance/outbox/v1/outbox.proto",
    "assurance/risk/v1/org.proto",
    "assurance/risk/v1/risk.proto",
    "assurance/risk/v1/controls.proto",
    "assurance/risk/v1/exceptions.proto",
    "assurance/risk/v1/reviews.proto",
    "assurance/risk/v1/summary.proto",
    "assurance/incident/v1/incident.proto",
    "assurance/incident/v1/summary.proto",
    "assurance/gateway/v1/posture.proto",
    "assurance/gateway/v1/reports.proto",
    "assurance/gateway/v1/work_items.proto",
    "assurance/gateway/v1/tracker_sync.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let mut compiler = protox::Compiler::new(["."])?;
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(PROTOS)?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    // Kept for reflection; compile_fds does not write it itself. Encoded by protox, not
    // re-encoded through prost_types (which would drop the google.api options: extensions
    // are unknown fields to it), so reflection clients and the contract tests see them.
    std::fs::write(
        out.join("assurance_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;
    let fds = compiler.file_descriptor_set();
    tonic_prost_build::configure()
        // Deterministic encoding of maps, so request fingerprints are stable.
        .btree_map(".")
        .compile_fds(fds)?;
    Ok(())
}
