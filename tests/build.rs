//! Decides at build time which end-to-end tests need a peer that is present:
//! - with `ASSURANCE_TEST_POSTGRES_URL` set (and non-empty) the `assurance_postgres` cfg is on;
//!   without it the PostgreSQL variants are compiled as `#[ignore]`d;
//! - when `python3` can import `grpc`, `grpc_reflection` and `google.protobuf` (CI installs
//!   them), the `assurance_python` cfg is on; without them the reflection-only Python client
//!   test is `#[ignore]`d;
//! - with `ASSURANCE_TEST_REDMINE_URL` set (and non-empty; `.ci/redmine.sh` prints it) the
//!   `assurance_redmine` cfg is on; without it the tests against a real Redmine are `#[ignore]`d.
//!
//! So `cargo test` reports a test whose peer is absent as ignored instead of passing without
//! doing anything.

use std::process::Command;

const POSTGRES_ENV: &str = "ASSURANCE_TEST_POSTGRES_URL";
const REDMINE_ENV: &str = "ASSURANCE_TEST_REDMINE_URL";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed={POSTGRES_ENV}");
    println!("cargo:rerun-if-env-changed={REDMINE_ENV}");
    println!("cargo:rerun-if-env-changed=ASSURANCE_PYTHON");
    println!("cargo::rustc-check-cfg=cfg(assurance_postgres)");
    println!("cargo::rustc-check-cfg=cfg(assurance_python)");
    println!("cargo::rustc-check-cfg=cfg(assurance_redmine)");
    if std::env::var_os(POSTGRES_ENV).is_some_and(|url| !url.is_empty()) {
        println!("cargo:rustc-cfg=assurance_postgres");
    }
    if std::env::var_os(REDMINE_ENV).is_some_and(|url| !url.is_empty()) {
        println!("cargo:rustc-cfg=assurance_redmine");
    }
    let python = std::env::var("ASSURANCE_PYTHON").unwrap_or_else(|_| "python3".into());
    let has_grpc = Command::new(python)
        .args(["-c", "import grpc, grpc_reflection, google.protobuf"])
        .output()
        .is_ok_and(|out| out.status.success());
    if has_grpc {
        println!("cargo:rustc-cfg=assurance_python");
    }
}
