//! gRPC handlers of `assurance.risk.v1`: request validation, mapping to and from the
//! protos, and calls into the store. Errors become `Status` in one place
//! (`assurance_runtime::error`).

pub mod controls;
mod convert;
mod effectiveness;
pub mod exceptions;
mod governance;
mod org;
mod report_rows;
mod reviews;
mod risk;
pub mod summary;

use assurance_runtime::ApiError;

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
