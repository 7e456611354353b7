//! Trace spans and W3C trace-context propagation (`traceparent`, `tracestate`).
//!
//! - **Server:** every gRPC call runs in a `grpc` span ([`server_span`], made by the server's
//!   `trace_fn`), the child of the caller's `traceparent`, with the OpenTelemetry RPC
//!   attributes and, at the end, the call's `rpc.grpc.status_code` ([`GrpcStatusLayer`]).
//! - **Client:** every call a server makes to another one ([`crate::auth::client::Bearer`],
//!   the gateway's forwarding) carries the current span as its `traceparent` ([`inject`]).
//! - **Outbox:** an event queued while a span is current remembers it (a `traceparent` member
//!   of its JSON payload); its delivery runs in an `outbox.deliver` span of that trace
//!   ([`delivery_span`]), so a relay's call belongs to the trace of the write that caused it.
//! - **Database:** each write transaction is a `db.transaction` span
//!   ([`crate::db::begin_write`], [`WriteTx`]).
//!
//! All of it is skipped when no traces are exported ([`crate::telemetry::enabled`]): the
//! `grpc` span is then the logging span of old and nothing else is made or parsed.

use std::{
    future::Future,
    panic::Location,
    pin::Pin,
    task::{Context, Poll},
};

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::{
    propagation::{Extractor, Injector, TextMapPropagator},
    trace::TraceContextExt,
};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, ExecResult, QueryResult, Statement,
};
use tracing::{Span, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::telemetry::enabled;

/// The W3C header carrying the parent span.
pub const TRACEPARENT: &str = "traceparent";

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// The context of a `traceparent` (and `tracestate`) in `headers`; empty when there is none
/// or it is malformed (the span then starts a trace of its own).
fn extract(headers: &HeaderMap) -> opentelemetry::Context {
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}

/// Sets `headers`' `traceparent` and `tracestate` to the current span, replacing any there.
/// No-op when traces are not exported or no span is current.
pub fn inject(headers: &mut HeaderMap) {
    if !enabled() {
        return;
    }
    let cx = Span::current().context();
    if !cx.span().span_context().is_valid() {
        return;
    }
    TraceContextPropagator::new().inject_context(&cx, &mut HeaderInjector(headers));
}

/// The `traceparent` of the current span, when traces are exported.
pub fn current_traceparent() -> Option<String> {
    if !enabled() {
        return None;
    }
    let mut headers = HeaderMap::new();
    inject(&mut headers);
    headers
        .get(TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The span of one gRPC call on a server (its `trace_fn`): `grpc`, with the method and the
/// caller's `x-request-id`; when traces are exported, also named after the method, a child of
/// the incoming `traceparent`, with `rpc.system`, `rpc.service` and `rpc.method`.
pub fn server_span<B>(req: &http::Request<B>) -> Span {
    let path = req.uri().path();
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !enabled() {
        return tracing::info_span!("grpc", method = %path, request_id);
    }
    if path.starts_with("/grpc.") {
        // Health checks and reflection: a DEBUG span, not exported (probes every few seconds
        // would bury the traces that matter).
        return tracing::debug_span!("grpc", method = %path, request_id);
    }
    let name = path.trim_start_matches('/');
    let (service, method) = name.split_once('/').unwrap_or((name, ""));
    let span = tracing::info_span!(
        "grpc",
        method = %path,
        request_id,
        otel.name = name,
        otel.kind = "server",
        otel.status_code = Empty,
        rpc.system = "grpc",
        rpc.service = service,
        rpc.method = method,
        rpc.grpc.status_code = Empty,
    );
    let parent = extract(req.headers());
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
    span
}

/// Records each call's gRPC status on its `grpc` span (the current span while the server
/// polls the call): `rpc.grpc.status_code`, and an error status for the codes that mean the
/// server failed (UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS).
/// A response without `grpc-status` in its headers is counted OK (a stream's trailers are
/// not waited for).
#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcStatusLayer;

impl<S> tower::Layer<S> for GrpcStatusLayer {
    type Service = GrpcStatus<S>;

    fn layer(&self, inner: S) -> GrpcStatus<S> {
        GrpcStatus { inner }
    }
}

/// See [`GrpcStatusLayer`].
#[derive(Debug, Clone)]
pub struct GrpcStatus<S> {
    inner: S,
}

impl<S, Req, Res> tower::Service<Req> for GrpcStatus<S>
where
    S: tower::Service<Req, Response = http::Response<Res>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = StatusFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        StatusFuture {
            inner: self.inner.call(request),
        }
    }
}

pin_project_lite::pin_project! {
    /// See [`GrpcStatusLayer`].
    pub struct StatusFuture<F> {
        #[pin]
        inner: F,
    }
}

impl<F, Res, E> Future for StatusFuture<F>
where
    F: Future<Output = Result<http::Response<Res>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let out = std::task::ready!(self.project().inner.poll(cx));
        if enabled()
            && let Ok(response) = &out
        {
            let code = response
                .headers()
                .get("grpc-status")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(0);
            let span = Span::current();
            span.record("rpc.grpc.status_code", code);
            if matches!(code, 2 | 4 | 12 | 13 | 14 | 15) {
                span.record("otel.status_code", "error");
            }
        }
        Poll::Ready(out)
    }
}

/// The span of one outbox delivery: `outbox.deliver`, in the trace of the write that queued
/// the event (its payload's `traceparent`), or a new trace. `Span::none()` when traces are
/// not exported.
pub fn delivery_span(service: &str, event: &crate::outbox::outbox_event::Model) -> Span {
    if !enabled() {
        return Span::none();
    }
    let span = tracing::info_span!(
        "outbox.deliver",
        otel.kind = "producer",
        outbox.service = service,
        outbox.event = %event.id,
        outbox.event_type = %event.kind,
        outbox.aggregate = %event.aggregate,
        outbox.attempt = event.attempts + 1,
    );
    #[derive(serde::Deserialize)]
    struct Carrier {
        traceparent: Option<String>,
    }
    let parent = serde_json::from_str::<Carrier>(&event.payload)
        .ok()
        .and_then(|c| c.traceparent)
        .and_then(|tp| HeaderValue::from_str(&tp).ok());
    if let Some(traceparent) = parent {
        let mut headers = HeaderMap::new();
        headers.insert(TRACEPARENT, traceparent);
        let parent = extract(&headers);
        if parent.span().span_context().is_valid() {
            let _ = span.set_parent(parent);
        }
    }
    span
}

/// `payload` with the current span as its `traceparent` member (a JSON object only), when
/// traces are exported: the event's delivery joins this trace.
pub fn with_traceparent(mut payload: serde_json::Value) -> serde_json::Value {
    if let Some(object) = payload.as_object_mut()
        && let Some(traceparent) = current_traceparent()
    {
        object.insert(TRACEPARENT.into(), traceparent.into());
    }
    payload
}

/// A write transaction ([`crate::db::begin_write`]) and its `db.transaction` span, which ends
/// when it commits or is dropped (rolled back). It derefs to the sea-orm transaction and is a
/// connection itself, so `&tx` goes wherever a `&DatabaseTransaction` or a
/// `&impl ConnectionTrait` does.
#[derive(Debug)]
pub struct WriteTx {
    tx: DatabaseTransaction,
    span: Span,
}

impl WriteTx {
    pub(crate) fn new(tx: DatabaseTransaction, span: Span) -> Self {
        WriteTx { tx, span }
    }

    /// Commits, then ends the span.
    pub async fn commit(self) -> Result<(), DbErr> {
        let WriteTx { tx, span } = self;
        let result = tx.commit().await;
        if !span.is_none() {
            span.record(
                "db.transaction.outcome",
                if result.is_ok() { "commit" } else { "failed" },
            );
            if result.is_err() {
                span.record("otel.status_code", "error");
            }
        }
        result
    }

    /// Rolls back, then ends the span.
    pub async fn rollback(self) -> Result<(), DbErr> {
        let WriteTx { tx, span } = self;
        let result = tx.rollback().await;
        span.record("db.transaction.outcome", "rollback");
        result
    }

    /// The sea-orm transaction, without its span.
    pub fn into_inner(self) -> DatabaseTransaction {
        self.tx
    }
}

impl std::ops::Deref for WriteTx {
    type Target = DatabaseTransaction;

    fn deref(&self) -> &DatabaseTransaction {
        &self.tx
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for WriteTx {
    fn get_database_backend(&self) -> DbBackend {
        self.tx.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.tx.execute_raw(stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.tx.execute_unprepared(sql).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.tx.query_one_raw(stmt).await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.tx.query_all_raw(stmt).await
    }

    fn support_returning(&self) -> bool {
        self.tx.support_returning()
    }
}

/// The `db.transaction` span of a write transaction begun at `caller` on `backend`
/// (`Span::none()` when traces are not exported). Its `db.transaction.outcome` is `commit`,
/// `rollback` or `failed` (a commit that failed); none when it was dropped (rolled back).
pub(crate) fn transaction_span(backend: DbBackend, caller: &'static Location<'static>) -> Span {
    if !enabled() {
        return Span::none();
    }
    let system = match backend {
        DbBackend::Postgres => "postgresql",
        DbBackend::Sqlite => "sqlite",
        _ => "other_sql",
    };
    tracing::info_span!(
        "db.transaction",
        otel.kind = "client",
        otel.status_code = Empty,
        db.system = system,
        db.system.name = system,
        db.operation.name = "TRANSACTION",
        code.file.path = caller.file(),
        code.line.number = caller.line(),
        db.transaction.outcome = Empty,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_header_is_the_parent_context() {
        let mut headers = HeaderMap::new();
        headers.insert(
            TRACEPARENT,
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        let cx = extract(&headers);
        let span = cx.span();
        let parent = span.span_context();
        assert!(parent.is_valid() && parent.is_remote() && parent.is_sampled());
        assert_eq!(
            parent.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(parent.span_id().to_string(), "00f067aa0ba902b7");
        // Malformed or missing: no parent, the span starts a trace of its own.
        headers.insert(TRACEPARENT, HeaderValue::from_static("00-zz-00-01"));
        assert!(!extract(&headers).span().span_context().is_valid());
        assert!(!extract(&HeaderMap::new()).span().span_context().is_valid());
    }

    #[test]
    fn nothing_is_added_or_injected_without_an_exporter() {
        assert!(!enabled());
        let payload = serde_json::json!({ "risk": "risks/1" });
        assert_eq!(with_traceparent(payload.clone()), payload);
        let mut headers = HeaderMap::new();
        headers.insert(TRACEPARENT, HeaderValue::from_static("kept"));
        inject(&mut headers);
        assert_eq!(
            headers.get(TRACEPARENT),
            Some(&HeaderValue::from_static("kept"))
        );
        assert!(transaction_span(DbBackend::Sqlite, Location::caller()).is_none());
    }
}
