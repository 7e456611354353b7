//! Support shared by the end-to-end tests and the `assurance-bench` tool: starting real server
//! processes, and the crash check.

pub mod auth;
pub mod crash;
pub mod fuzz;
pub mod github_mock;
pub mod jwt;
pub mod otlp;
pub mod pki;
pub mod raw;
pub mod server;
