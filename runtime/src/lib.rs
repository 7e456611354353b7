//! Shared runtime of the Assurance servers. It stays small on purpose: the pieces every
//! server needs identically (error mapping, validation helpers, page tokens, AIP-160 filter
//! parsing, database set-up, serving, telemetry), so that typed errors look the same from
//! every service and through the gateway.

pub mod audit;
pub mod auth;
pub mod db;
pub mod decode_errors;
pub mod error;
pub mod etag;
pub mod filter;
pub mod idempotency;
pub mod limits;
pub mod list;
pub mod migrate;
pub mod observe;
pub mod outbox;
pub mod page;
pub mod pg_relay;
pub mod security;
pub mod serve;
pub mod telemetry;
pub mod text;
pub mod time;
pub mod tls;
pub mod trace_context;
pub mod validate;

pub use error::{ApiError, ApiResult, Reason};
