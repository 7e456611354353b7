//! Pure rules of incident response; nothing here knows about gRPC or SQL.

pub mod indicator;
pub mod metrics;
pub mod notification;
pub mod phase;
pub mod preparation;
pub mod priority;
pub mod role;
pub mod task;
pub mod timeline;
