//! Decides at build time whether the PostgreSQL variants of the end-to-end tests run: with
//! `ASSURANCE_TEST_POSTGRES_URL` set (and non-empty) the `assurance_postgres` cfg is on;
//! without it those tests are compiled as `#[ignore]`d, so `cargo test` reports them as
//! ignored instead of passing without doing anything.

const POSTGRES_ENV: &str = "ASSURANCE_TEST_POSTGRES_URL";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed={POSTGRES_ENV}");
    println!("cargo::rustc-check-cfg=cfg(assurance_postgres)");
    if std::env::var_os(POSTGRES_ENV).is_some_and(|url| !url.is_empty()) {
        println!("cargo:rustc-cfg=assurance_postgres");
    }
}
