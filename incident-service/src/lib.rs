//! Assurance incident-service: the NIST SP 800-61 incident lifecycle with the federated
//! response model (`assurance.incident.v1`).
//!
//! This crate holds its place in the workspace; the service itself is the next milestone
//! (see the README's roadmap). Nothing here is served yet.
