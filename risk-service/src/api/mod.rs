//! gRPC handlers of `assurance.risk.v1`: request validation, mapping to and from the
//! protos, and calls into the store. Errors become `Status` in one place
//! (`assurance_runtime::error`).

mod convert;
mod org;
mod risk;

use std::collections::HashSet;

use assurance_runtime::{ApiError, ApiResult};
use prost::Message;
use sha2::{Digest, Sha256};

use crate::store::RequestKey;

pub use org::OrgApi;
pub use risk::RiskApi;

/// Digest of a request with its request id cleared, to tell a retry from a reused id.
fn fingerprint<M: Message + Clone>(request: &M, clear_request_id: impl FnOnce(&mut M)) -> String {
    let mut copy = request.clone();
    clear_request_id(&mut copy);
    let digest = Sha256::digest(copy.encode_to_vec());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// The idempotency key of a create-like request, when the caller sent a request id.
fn request_key(
    operation: &'static str,
    request_id: &str,
    fingerprint: String,
) -> Option<RequestKey> {
    RequestKey::of(operation, request_id, fingerprint)
}

/// The paths of an update: the mask's, or when it is empty every populated field
/// (AIP-134). Unknown or repeated paths are `INVALID_ARGUMENT`.
fn update_paths(
    mask: Option<&prost_types::FieldMask>,
    updatable: &[&'static str],
    populated: impl Fn(&str) -> bool,
) -> ApiResult<Vec<&'static str>> {
    let requested: Vec<String> = mask.map(|m| m.paths.clone()).unwrap_or_default();
    if requested.is_empty() {
        return Ok(updatable.iter().copied().filter(|p| populated(p)).collect());
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for path in &requested {
        let Some(known) = updatable.iter().find(|u| **u == path.as_str()) else {
            return Err(ApiError::invalid(
                "update_mask",
                format!(
                    "unknown or immutable path `{path}`; updatable: {}",
                    updatable.join(", ")
                ),
            ));
        };
        if !seen.insert(*known) {
            return Err(ApiError::invalid(
                "update_mask",
                format!("path `{path}` is repeated"),
            ));
        }
        out.push(*known);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_paths_rules() {
        let updatable = ["title", "owner"];
        let mask = prost_types::FieldMask {
            paths: vec!["owner".into()],
        };
        assert_eq!(
            update_paths(Some(&mask), &updatable, |_| false),
            Ok(vec!["owner"])
        );
        assert_eq!(
            update_paths(None, &updatable, |p| p == "title"),
            Ok(vec!["title"])
        );
        let bad = prost_types::FieldMask {
            paths: vec!["status".into()],
        };
        assert!(update_paths(Some(&bad), &updatable, |_| true).is_err());
        let twice = prost_types::FieldMask {
            paths: vec!["owner".into(), "owner".into()],
        };
        assert!(update_paths(Some(&twice), &updatable, |_| true).is_err());
    }
}
