//! gRPC handlers of `assurance.risk.v1`: request validation, mapping to and from the
//! protos, and calls into the store. Errors become `Status` in one place
//! (`assurance_runtime::error`).

pub mod controls;
mod convert;
pub mod exceptions;
mod governance;
mod org;
mod reviews;
mod risk;

use prost::Message;
use sha2::{Digest, Sha256};

pub use org::OrgApi;
pub use reviews::ReviewApi;
pub use risk::RiskApi;

/// Digest of a request with its request id cleared, to tell a retry from a reused id.
fn fingerprint<M: Message + Clone>(request: &M, clear_request_id: impl FnOnce(&mut M)) -> String {
    let mut copy = request.clone();
    clear_request_id(&mut copy);
    let digest = Sha256::digest(copy.encode_to_vec());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}
