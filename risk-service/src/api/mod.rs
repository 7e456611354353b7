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

use assurance_runtime::ApiError;
use prost::Message;
use sha2::{Digest, Sha256};

pub use org::OrgApi;
pub use reviews::ReviewApi;
pub use risk::RiskApi;

/// The store answers `NOT_FOUND` for every resource it cannot find. For one the request only
/// refers to (a risk's service, a cycle's scope) that is the request's fault: a violation of
/// the field naming it, picked by `field_of` from the resource name (`None` keeps the
/// `NOT_FOUND`, for the resource the request addresses).
fn reference_error(e: ApiError, field_of: impl FnOnce(&str) -> Option<String>) -> ApiError {
    match e {
        ApiError::NotFound { resource } => match field_of(&resource) {
            Some(field) => ApiError::invalid(field, format!("{resource} does not exist")),
            None => ApiError::NotFound { resource },
        },
        other => other,
    }
}

/// [`reference_error`] for references to any of `collections` named by `field`.
fn referenced(field: &str, collections: &[&str]) -> impl FnOnce(ApiError) -> ApiError {
    move |e| {
        reference_error(e, |resource| {
            collections
                .iter()
                .any(|c| resource.starts_with(&format!("{c}/")))
                .then(|| field.to_string())
        })
    }
}

/// Digest of a request with its request id cleared, to tell a retry from a reused id.
fn fingerprint<M: Message + Clone>(request: &M, clear_request_id: impl FnOnce(&mut M)) -> String {
    let mut copy = request.clone();
    clear_request_id(&mut copy);
    let digest = Sha256::digest(copy.encode_to_vec());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}
