//! Assurance incident-service: the NIST SP 800-61 incident lifecycle with the federated
//! response model (`assurance.incident.v1`).
//!
//! Built in steps. Present: the pure domain rules (phase machine, NIST SP 800-61 Rev.2
//! prioritisation and the severity rule, indicator normalisation). The API, storage and
//! binary follow (see the README's roadmap); nothing is served yet.

pub mod domain;
