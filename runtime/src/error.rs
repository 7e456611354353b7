//! The one error type of the Assurance services and its single mapping to `tonic::Status`
//! with `google.rpc` details (`BadRequest` field violations, `ErrorInfo`).

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

/// The `ErrorInfo.domain` of every error Assurance returns.
pub const ERROR_DOMAIN: &str = "assurance";

pub type ApiResult<T> = Result<T, ApiError>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// One or more request fields are wrong.
    #[error("invalid argument: {}", describe(.0))]
    InvalidArgument(Vec<Violation>),
    /// The named resource does not exist.
    #[error("{resource} not found")]
    NotFound { resource: String },
    /// The resource to create exists already.
    #[error("{resource} already exists")]
    AlreadyExists { resource: String },
    /// The request is well-formed but the resource's state refuses it.
    #[error("{message}")]
    FailedPrecondition {
        reason: Reason,
        message: String,
        metadata: Vec<(String, String)>,
    },
    /// Optimistic concurrency: the etag sent is not the current one.
    #[error("{resource} was changed by someone else (etag {sent} is not current {current})")]
    StaleEtag {
        resource: String,
        sent: String,
        current: String,
    },
    /// A concurrent write won the race for the same resource; retrying may succeed.
    #[error("{resource} was changed concurrently; retry")]
    Conflict { resource: String },
    /// A delete refused while open resources still reference `resource`: FAILED_PRECONDITION
    /// with a `PreconditionFailure` naming each of them (type `REFERENCED`).
    #[error("{resource} is still referenced by {} open resource(s): {}", by.len(), by.join(", "))]
    Referenced { resource: String, by: Vec<String> },
    /// A request id was reused for a different request.
    #[error("request_id {request_id} was already used for a different request")]
    RequestIdReused { request_id: String },
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    ResourceExhausted(String),
    /// A dependency (database, upstream) is unavailable; the client may retry.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an unexpected storage failure. The detail is logged, never returned.
    #[error("internal error")]
    Internal(String),
}

/// Why a well-formed request was refused by the state of what it names: the closed set of
/// `ErrorInfo.reason` values a client can switch on for `FAILED_PRECONDITION`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// A state machine refused the move; `allowed` in the metadata lists the moves it permits.
    IllegalTransition,
    /// An incident's phase machine refused the move (kept apart from `IllegalTransition`
    /// because clients already switch on it).
    IllegalPhaseMove,
    /// The risk is closed and can no longer change.
    RiskClosed,
    /// The incident is closed and can no longer change.
    IncidentClosed,
    /// The review cycle is closed.
    CycleClosed,
    /// The response was decided already.
    NotPending,
    /// Only something approved can be done this way (e.g. sending a notification).
    NotApproved,
    /// Only a draft can be changed this way.
    NotADraft,
    /// The post-incident review is recorded already.
    ReviewExists,
    /// The post-incident review is recorded only in POST_INCIDENT.
    ReviewNotAllowed,
    /// Follow-ups are added only in POST_INCIDENT or after closure.
    FollowUpNotAllowed,
    /// Approving one's own proposal, request or draft.
    SelfApproval,
    /// The thing to approve has expired already.
    Expired,
    /// Only a dead letter (an outbox event in DEAD) can be replayed.
    OutboxEventNotDead,
    /// The gateway runs without a tracker sync (no `--trackers-file`).
    TrackerSyncDisabled,
}

impl Reason {
    /// The wire value of `ErrorInfo.reason`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::IllegalTransition => "ILLEGAL_TRANSITION",
            Reason::IllegalPhaseMove => "ILLEGAL_PHASE_MOVE",
            Reason::RiskClosed => "RISK_CLOSED",
            Reason::IncidentClosed => "INCIDENT_CLOSED",
            Reason::CycleClosed => "CYCLE_CLOSED",
            Reason::NotPending => "NOT_PENDING",
            Reason::NotApproved => "NOT_APPROVED",
            Reason::NotADraft => "NOT_A_DRAFT",
            Reason::ReviewExists => "REVIEW_EXISTS",
            Reason::ReviewNotAllowed => "REVIEW_NOT_ALLOWED",
            Reason::FollowUpNotAllowed => "FOLLOW_UP_NOT_ALLOWED",
            Reason::SelfApproval => "SELF_APPROVAL",
            Reason::Expired => "EXPIRED",
            Reason::OutboxEventNotDead => "OUTBOX_EVENT_NOT_DEAD",
            Reason::TrackerSyncDisabled => "TRACKER_SYNC_DISABLED",
        }
    }
}

/// A field violation: the request field path (e.g. `risk.service`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub field: String,
    pub description: String,
}

fn describe(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ")
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        ApiError::InvalidArgument(vec![Violation {
            field: field.into(),
            description: description.into(),
        }])
    }

    pub fn not_found(resource: impl Into<String>) -> Self {
        ApiError::NotFound {
            resource: resource.into(),
        }
    }

    pub fn precondition(reason: Reason, message: impl Into<String>) -> Self {
        ApiError::FailedPrecondition {
            reason,
            message: message.into(),
            metadata: Vec::new(),
        }
    }

    /// The one refusal of a state machine: `what` (e.g. `risks/1 is MONITORING: cannot
    /// propose a response`) with the moves `allowed` from `state`, in the message and in the
    /// `ErrorInfo` metadata (`status`, `allowed`).
    pub fn illegal_move(
        reason: Reason,
        what: impl std::fmt::Display,
        state: &str,
        allowed: &[&str],
    ) -> Self {
        let listed = if allowed.is_empty() {
            "nothing (terminal)".to_string()
        } else {
            allowed.join(", ")
        };
        ApiError::FailedPrecondition {
            reason,
            message: format!("{what}; allowed: {listed}"),
            metadata: vec![
                ("status".into(), state.to_string()),
                ("allowed".into(), allowed.join(",")),
            ],
        }
    }

    pub fn code(&self) -> Code {
        match self {
            ApiError::InvalidArgument(_) | ApiError::RequestIdReused { .. } => {
                Code::InvalidArgument
            }
            ApiError::NotFound { .. } => Code::NotFound,
            ApiError::AlreadyExists { .. } => Code::AlreadyExists,
            ApiError::FailedPrecondition { .. } | ApiError::Referenced { .. } => {
                Code::FailedPrecondition
            }
            ApiError::StaleEtag { .. } | ApiError::Conflict { .. } => Code::Aborted,
            ApiError::PermissionDenied(_) => Code::PermissionDenied,
            ApiError::Unauthenticated(_) => Code::Unauthenticated,
            ApiError::ResourceExhausted(_) => Code::ResourceExhausted,
            ApiError::Unavailable(_) => Code::Unavailable,
            ApiError::Internal(_) => Code::Internal,
        }
    }

    /// The stable `ErrorInfo.reason` clients can switch on.
    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::InvalidArgument(_) => "INVALID_ARGUMENT",
            ApiError::NotFound { .. } => "NOT_FOUND",
            ApiError::AlreadyExists { .. } => "ALREADY_EXISTS",
            ApiError::FailedPrecondition { reason, .. } => reason.as_str(),
            ApiError::StaleEtag { .. } => "STALE_ETAG",
            ApiError::Referenced { .. } => "REFERENCED",
            ApiError::Conflict { .. } => "CONCURRENT_MODIFICATION",
            ApiError::RequestIdReused { .. } => "REQUEST_ID_REUSED",
            ApiError::PermissionDenied(_) => "PERMISSION_DENIED",
            ApiError::Unauthenticated(_) => "UNAUTHENTICATED",
            ApiError::ResourceExhausted(_) => "RESOURCE_EXHAUSTED",
            ApiError::Unavailable(_) => "UNAVAILABLE",
            ApiError::Internal(_) => "INTERNAL",
        }
    }

    fn metadata(&self) -> HashMap<String, String> {
        let mut md = HashMap::new();
        match self {
            ApiError::NotFound { resource }
            | ApiError::AlreadyExists { resource }
            | ApiError::Conflict { resource }
            | ApiError::Referenced { resource, .. } => {
                md.insert("resource".into(), resource.clone());
            }
            ApiError::FailedPrecondition { metadata, .. } => {
                md.extend(metadata.iter().cloned());
            }
            ApiError::StaleEtag {
                resource, current, ..
            } => {
                md.insert("resource".into(), resource.clone());
                md.insert("current_etag".into(), current.clone());
            }
            ApiError::RequestIdReused { request_id } => {
                md.insert("request_id".into(), request_id.clone());
            }
            _ => {}
        }
        md
    }
}

/// The most characters of one piece of an error (a field path, a violation's description, an
/// `ErrorInfo` metadata value) sent back: input echoed in an error is clipped to this.
pub const MAX_ECHO_CHARS: usize = 256;
/// The most characters of an error's message (`grpc-message`).
pub const MAX_MESSAGE_CHARS: usize = 1024;
/// The most field violations an error carries; the rest are counted in the message.
pub const MAX_VIOLATIONS: usize = 50;

/// `text` cut to `max` characters, saying how much was left out.
pub fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((end, _)) => {
            let rest = text[end..].chars().count();
            format!("{}… ({rest} more characters)", &text[..end])
        }
    }
}

impl ApiError {
    /// The same error with every piece that may echo input clipped to [`MAX_ECHO_CHARS`] and
    /// at most [`MAX_VIOLATIONS`] violations (the count of the others in a last one).
    fn clipped(self) -> ApiError {
        let c = |s: String| {
            if s.chars().count() > MAX_ECHO_CHARS {
                clip(&s, MAX_ECHO_CHARS)
            } else {
                s
            }
        };
        match self {
            ApiError::InvalidArgument(list) => {
                let total = list.len();
                let mut kept: Vec<Violation> = list
                    .into_iter()
                    .take(MAX_VIOLATIONS)
                    .map(|v| Violation {
                        field: c(v.field),
                        description: c(v.description),
                    })
                    .collect();
                if total > MAX_VIOLATIONS {
                    kept.push(Violation {
                        field: "(more)".into(),
                        description: format!(
                            "{} more violations are not listed",
                            total - MAX_VIOLATIONS
                        ),
                    });
                }
                ApiError::InvalidArgument(kept)
            }
            ApiError::NotFound { resource } => ApiError::NotFound {
                resource: c(resource),
            },
            ApiError::AlreadyExists { resource } => ApiError::AlreadyExists {
                resource: c(resource),
            },
            ApiError::FailedPrecondition {
                reason,
                message,
                metadata,
            } => ApiError::FailedPrecondition {
                reason,
                message: clip(&message, MAX_MESSAGE_CHARS),
                metadata: metadata.into_iter().map(|(k, v)| (c(k), c(v))).collect(),
            },
            ApiError::StaleEtag {
                resource,
                sent,
                current,
            } => ApiError::StaleEtag {
                resource: c(resource),
                sent: c(sent),
                current: c(current),
            },
            ApiError::Conflict { resource } => ApiError::Conflict {
                resource: c(resource),
            },
            ApiError::Referenced { resource, by } => {
                let total = by.len();
                let mut by: Vec<String> = by.into_iter().take(MAX_VIOLATIONS).map(c).collect();
                if total > MAX_VIOLATIONS {
                    by.push(format!("{} more", total - MAX_VIOLATIONS));
                }
                ApiError::Referenced {
                    resource: c(resource),
                    by,
                }
            }
            ApiError::RequestIdReused { request_id } => ApiError::RequestIdReused {
                request_id: c(request_id),
            },
            ApiError::PermissionDenied(m) => ApiError::PermissionDenied(c(m)),
            ApiError::Unauthenticated(m) => ApiError::Unauthenticated(c(m)),
            ApiError::ResourceExhausted(m) => ApiError::ResourceExhausted(c(m)),
            ApiError::Unavailable(m) => ApiError::Unavailable(c(m)),
            internal @ ApiError::Internal(_) => internal,
        }
    }
}

impl From<ApiError> for Status {
    fn from(err: ApiError) -> Status {
        if let ApiError::Internal(detail) = &err {
            tracing::error!(detail = %detail, "internal error");
        }
        // Errors echo input (a bad label key, a title): clip every piece of it, so that one huge
        // field cannot make an answer no client can read.
        let err = err.clipped();
        let mut details = ErrorDetails::new();
        match &err {
            ApiError::InvalidArgument(violations) => {
                details.set_bad_request(
                    violations
                        .iter()
                        .map(|v| FieldViolation::new(v.field.clone(), v.description.clone()))
                        .collect::<Vec<_>>(),
                );
            }
            ApiError::RequestIdReused { .. } => {
                details.set_bad_request(vec![FieldViolation::new(
                    "request_id",
                    "already used for a different request",
                )]);
            }
            ApiError::Referenced { resource, by } => {
                details.set_precondition_failure(
                    by.iter()
                        .map(|r| {
                            tonic_types::PreconditionViolation::new(
                                "REFERENCED",
                                r.clone(),
                                format!("{r} still references {resource}; close, delete or unlink it first"),
                            )
                        })
                        .collect::<Vec<_>>(),
                );
            }
            _ => {}
        }
        details.set_error_info(err.reason(), ERROR_DOMAIN, err.metadata());
        let message = clip(&err.to_string(), MAX_MESSAGE_CHARS);
        Status::with_error_details(err.code(), message, details)
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(err: sea_orm::DbErr) -> ApiError {
        use sea_orm::DbErr;
        match &err {
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => {
                tracing::warn!(error = %err, "database unavailable");
                ApiError::Unavailable("the database is unavailable; retry later".into())
            }
            _ if is_busy(&err) => {
                tracing::warn!(error = %err, "database busy");
                ApiError::Unavailable("the database is busy; retry later".into())
            }
            _ => ApiError::Internal(err.to_string()),
        }
    }
}

/// SQLite's "database is locked" after the busy timeout: transient, worth a retry.
fn is_busy(err: &sea_orm::DbErr) -> bool {
    let text = err.to_string();
    text.contains("database is locked") || text.contains("(code: 5)")
}

/// True when a database error is a unique-constraint violation.
pub fn is_unique_violation(err: &sea_orm::DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_carries_field_violations_and_error_info() {
        let status: Status = ApiError::invalid("risk.title", "must not be empty").into();
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let bad = details.bad_request().expect("bad request detail");
        assert_eq!(bad.field_violations[0].field, "risk.title");
        let info = details.error_info().expect("error info");
        assert_eq!(info.domain, ERROR_DOMAIN);
        assert_eq!(info.reason, "INVALID_ARGUMENT");
    }

    #[test]
    fn an_illegal_move_names_the_allowed_ones() {
        let err = ApiError::illegal_move(
            Reason::IllegalTransition,
            "risks/1 is MONITORING: cannot propose a response",
            "MONITORING",
            &["ASSESSED", "CLOSED"],
        );
        assert_eq!(
            err.to_string(),
            "risks/1 is MONITORING: cannot propose a response; allowed: ASSESSED, CLOSED"
        );
        let status: Status = err.into();
        assert_eq!(status.code(), Code::FailedPrecondition);
        let info = status
            .get_error_details()
            .error_info()
            .cloned()
            .expect("info");
        assert_eq!(info.reason, "ILLEGAL_TRANSITION");
        assert_eq!(
            info.metadata.get("allowed").map(String::as_str),
            Some("ASSESSED,CLOSED")
        );
        assert_eq!(
            info.metadata.get("status").map(String::as_str),
            Some("MONITORING")
        );
        let terminal = ApiError::illegal_move(Reason::IllegalPhaseMove, "closed", "CLOSED", &[]);
        assert_eq!(terminal.to_string(), "closed; allowed: nothing (terminal)");
    }

    #[test]
    fn huge_input_is_clipped_in_the_message_and_every_detail() {
        let key = "k".repeat(1 << 20);
        let mut list = vec![Violation {
            field: format!("risk.labels[{key}]"),
            description: format!("key {key} is not a slug"),
        }];
        for n in 0..200 {
            list.push(Violation {
                field: format!("risk.labels[{n}]"),
                description: key.clone(),
            });
        }
        let status: Status = ApiError::InvalidArgument(list).into();
        assert!(
            status.message().len() <= MAX_MESSAGE_CHARS + 64,
            "{}",
            status.message().len()
        );
        assert!(
            status.details().len() < 64 * 1024,
            "{}",
            status.details().len()
        );
        let details = status.get_error_details();
        let bad = details.bad_request().expect("bad request");
        assert_eq!(bad.field_violations.len(), MAX_VIOLATIONS + 1);
        for v in &bad.field_violations {
            assert!(v.field.chars().count() <= MAX_ECHO_CHARS + 40);
            assert!(v.description.chars().count() <= MAX_ECHO_CHARS + 40);
        }
        assert!(bad.field_violations[0].field.starts_with("risk.labels[kkk"));
        assert!(bad.field_violations[0].field.contains("more characters"));

        let status: Status = ApiError::FailedPrecondition {
            reason: Reason::IllegalTransition,
            message: key.clone(),
            metadata: vec![("status".into(), key.clone())],
        }
        .into();
        assert!(status.message().len() <= MAX_MESSAGE_CHARS + 64);
        let info = status
            .get_error_details()
            .error_info()
            .cloned()
            .expect("info");
        assert!(info.metadata["status"].len() <= MAX_ECHO_CHARS + 40);
        let status: Status = ApiError::not_found(key).into();
        assert!(status.message().len() <= MAX_MESSAGE_CHARS + 64);
    }

    #[test]
    fn clipping_respects_characters() {
        assert_eq!(clip("héllo", 10), "héllo");
        assert_eq!(clip("héllo", 2), "hé… (3 more characters)");
        assert_eq!(clip("", 0), "");
    }

    #[test]
    fn internal_errors_do_not_leak_their_detail() {
        let status: Status = ApiError::Internal("SELECT secret FROM x".into()).into();
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("SELECT"));
    }

    #[test]
    fn stale_etag_is_aborted_with_current_etag() {
        let status: Status = ApiError::StaleEtag {
            resource: "risks/1".into(),
            sent: "\"1\"".into(),
            current: "\"2\"".into(),
        }
        .into();
        assert_eq!(status.code(), Code::Aborted);
        let info = status.get_error_details().error_info().cloned();
        assert_eq!(
            info.and_then(|i| i.metadata.get("current_etag").cloned()),
            Some("\"2\"".to_string())
        );
    }
}
