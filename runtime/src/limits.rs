//! Resource limits of a gRPC server (issue #16): what one caller, one connection or the whole
//! process may take, so that no client holds the server's resources for nothing.
//!
//! - **Unary calls:** a timeout honouring `grpc-timeout` up to a cap (tonic's, set in
//!   [`crate::serve`]), at most `max_in_flight` at once in the process — beyond that a call is
//!   shed at once with `RESOURCE_EXHAUSTED` — and a per-principal rate limit (a token bucket;
//!   `RESOURCE_EXHAUSTED` with `google.rpc.RetryInfo`). The `system` principal is exempt from
//!   the rate limit.
//! - **Server streams** (`WatchIncident`, `WatchPosture`, `ExportReport`: every server-streaming
//!   method of the contract) are exempt from the unary timeout and concurrency limit, and have
//!   their own caps: streams per principal and per process, and a lifetime (the stream then
//!   ends with `UNAVAILABLE`; clients resume, e.g. with `after_sequence`). The caller's
//!   credential is checked again before every message and at least every `stream_recheck`
//!   while idle: revoked, expired or stripped of its role, the stream ends with
//!   `UNAUTHENTICATED` or `PERMISSION_DENIED` and nothing more reaches it.
//! - **Connections** ([`IdleTimeout`]): one that moves no byte for `idle_timeout` is closed
//!   (a connection that never sends a request, a slow-loris); HTTP/1 request heads must arrive
//!   within `header_timeout`, and an HTTP request (its body included) within the request
//!   timeout.

use std::{
    collections::{HashMap, HashSet},
    future::Future,
    pin::Pin,
    sync::{
        Arc, LazyLock, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use bytes::Bytes;
use http::HeaderMap;
use http_body::Frame;
use prost::Message;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};
use tower::{Layer, Service};

use crate::{
    auth::{Caller, Role, layer::AuthLayer},
    observe::LimitRefusal,
};

/// The limits of one server, as configured.
#[derive(Debug, Clone)]
pub struct LimitSettings {
    /// The longest a unary call may run; a shorter `grpc-timeout` wins.
    pub request_timeout: Duration,
    /// Unary calls in flight at once in the process.
    pub max_in_flight: usize,
    /// HTTP/2 streams (calls) open at once on one connection.
    pub max_streams_per_connection: u32,
    /// Calls a second one principal may make (0: no rate limit); bursts up to `rate_burst`.
    pub rate_per_second: f64,
    pub rate_burst: f64,
    /// Server streams one principal, and the whole process, may hold open.
    pub streams_per_principal: usize,
    pub streams_per_process: usize,
    /// The longest a server stream stays open.
    pub stream_lifetime: Duration,
    /// How often an idle stream checks its caller's credential again.
    pub stream_recheck: Duration,
    /// A connection that moves no byte for this long is closed.
    pub idle_timeout: Duration,
    /// HTTP/1: the longest a request head may take to arrive.
    pub header_timeout: Duration,
    /// The largest request message a server decodes (`--max-message-bytes`).
    pub max_message_bytes: usize,
    /// Off only in the benchmark's baseline (`assurance-bench limits`, which measures what the
    /// limits cost): no flag turns the limits off.
    pub enabled: bool,
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            request_timeout: Duration::from_secs(30),
            max_in_flight: 1024,
            max_streams_per_connection: 100,
            rate_per_second: 500.0,
            rate_burst: 1000.0,
            streams_per_principal: 50,
            streams_per_process: 10_000,
            stream_lifetime: Duration::from_secs(3600),
            stream_recheck: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(120),
            header_timeout: Duration::from_secs(10),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            enabled: true,
        }
    }
}

/// The largest request message decoded by default: 4 MiB.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 4 << 20;

/// Declares the limit flags of a binary: `limit_args!(Limits, "RISK_")`.
#[macro_export]
macro_rules! limit_args {
    ($name:ident, $prefix:literal) => {
        /// Resource limits (docs/security.md#limits).
        #[derive(Debug, Clone, clap::Args)]
        pub struct $name {
            /// Seconds a unary call may run at most (a shorter grpc-timeout wins).
            #[arg(long, env = concat!($prefix, "REQUEST_TIMEOUT_SECS"), default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
            pub request_timeout_secs: u64,
            /// Unary calls in flight at once; more are refused with RESOURCE_EXHAUSTED.
            #[arg(long, env = concat!($prefix, "MAX_IN_FLIGHT"), default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
            pub max_in_flight: u64,
            /// HTTP/2 streams (calls) at once on one connection.
            #[arg(long, env = concat!($prefix, "MAX_STREAMS_PER_CONNECTION"), default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
            pub max_streams_per_connection: u32,
            /// Calls a second per principal (0: no limit; the system principal is exempt).
            #[arg(long, env = concat!($prefix, "RATE_LIMIT"), default_value_t = 500.0)]
            pub rate_limit: f64,
            /// Calls one principal may burst above the rate.
            #[arg(long, env = concat!($prefix, "RATE_BURST"), default_value_t = 1000.0)]
            pub rate_burst: f64,
            /// Server streams (watches, exports) one principal may hold open.
            #[arg(long, env = concat!($prefix, "STREAMS_PER_PRINCIPAL"), default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..))]
            pub streams_per_principal: u64,
            /// Server streams the process may hold open.
            #[arg(long, env = concat!($prefix, "STREAMS_PER_PROCESS"), default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
            pub streams_per_process: u64,
            /// Seconds a server stream stays open at most (clients resume).
            #[arg(long, env = concat!($prefix, "STREAM_LIFETIME_SECS"), default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..))]
            pub stream_lifetime_secs: u64,
            /// Seconds a connection may move no byte before it is closed (keep it above the
            /// 30 s HTTP/2 keepalive, which keeps a live gRPC client's connection moving).
            #[arg(long, env = concat!($prefix, "IDLE_TIMEOUT_SECS"), default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..))]
            pub idle_timeout_secs: u64,
            /// The largest request message decoded, in bytes (1 KiB to 64 MiB); a larger one
            /// is refused with OUT_OF_RANGE naming the limit.
            #[arg(long, env = concat!($prefix, "MAX_MESSAGE_BYTES"), default_value_t = 4 << 20, value_parser = clap::value_parser!(u64).range(1024..=(64 << 20)))]
            pub max_message_bytes: u64,
            /// Set only by the benchmark's baseline server (never from the command line).
            #[arg(skip)]
            pub baseline_without_limits: bool,
        }

        impl $name {
            pub fn limit_settings(&self) -> $crate::limits::LimitSettings {
                let secs = std::time::Duration::from_secs;
                $crate::limits::LimitSettings {
                    request_timeout: secs(self.request_timeout_secs),
                    max_in_flight: usize::try_from(self.max_in_flight).unwrap_or(usize::MAX),
                    max_streams_per_connection: self.max_streams_per_connection,
                    rate_per_second: self.rate_limit.max(0.0),
                    rate_burst: self.rate_burst.max(1.0),
                    streams_per_principal: usize::try_from(self.streams_per_principal)
                        .unwrap_or(usize::MAX),
                    streams_per_process: usize::try_from(self.streams_per_process)
                        .unwrap_or(usize::MAX),
                    stream_lifetime: secs(self.stream_lifetime_secs),
                    idle_timeout: secs(self.idle_timeout_secs),
                    max_message_bytes: usize::try_from(self.max_message_bytes)
                        .unwrap_or($crate::limits::DEFAULT_MAX_MESSAGE_BYTES),
                    enabled: !self.baseline_without_limits,
                    ..$crate::limits::LimitSettings::default()
                }
            }
        }
    };
}

/// The server-streaming methods of the contract (`/pkg.Service/Method`).
static STREAMING: LazyLock<HashSet<String>> = LazyLock::new(|| {
    let mut paths = HashSet::new();
    if let Ok(set) = prost_types::FileDescriptorSet::decode(assurance_proto::FILE_DESCRIPTOR_SET) {
        for file in set.file {
            for service in &file.service {
                for method in &service.method {
                    if method.server_streaming() {
                        paths.insert(format!(
                            "/{}.{}/{}",
                            file.package(),
                            service.name(),
                            method.name()
                        ));
                    }
                }
            }
        }
    }
    paths
});

/// Whether `path` is a server-streaming method.
pub fn is_streaming(path: &str) -> bool {
    STREAMING.contains(path)
}

/// A token bucket.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The limits' state in one server.
pub struct Limits {
    settings: LimitSettings,
    in_flight: AtomicUsize,
    buckets: Mutex<HashMap<Arc<str>, Bucket>>,
    streams: Mutex<HashMap<Arc<str>, usize>>,
    open_streams: AtomicUsize,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// `RESOURCE_EXHAUSTED` with a reason, and `RetryInfo` when a wait is known.
fn exhausted(reason: &str, message: String, retry_after: Option<Duration>) -> Status {
    let mut details = ErrorDetails::new();
    if let Some(wait) = retry_after {
        details.set_retry_info(Some(wait));
    }
    details.set_error_info(reason, crate::error::ERROR_DOMAIN, HashMap::new());
    Status::with_error_details(Code::ResourceExhausted, message, details)
}

/// An open server stream, counted until dropped.
pub struct StreamPermit {
    limits: Arc<Limits>,
    subject: Arc<str>,
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        self.limits.open_streams.fetch_sub(1, Ordering::Relaxed);
        let mut streams = self
            .limits
            .streams
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = streams.get_mut(&self.subject) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                streams.remove(&self.subject);
            }
        }
    }
}

impl Limits {
    pub fn new(settings: LimitSettings) -> Arc<Limits> {
        Arc::new(Limits {
            settings,
            in_flight: AtomicUsize::new(0),
            buckets: Mutex::new(HashMap::new()),
            streams: Mutex::new(HashMap::new()),
            open_streams: AtomicUsize::new(0),
        })
    }

    pub fn settings(&self) -> &LimitSettings {
        &self.settings
    }

    /// Takes one call of `subject`'s rate, or says how long to wait.
    fn take_rate(&self, subject: &str) -> Result<(), Duration> {
        let rate = self.settings.rate_per_second;
        if rate <= 0.0 {
            return Ok(());
        }
        let burst = self.settings.rate_burst.max(1.0);
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > 100_000 {
            // A flood of principals (an attack, or a very large estate): forget the full ones.
            buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
        }
        let bucket = match buckets.get_mut(subject) {
            Some(b) => b,
            None => buckets.entry(Arc::from(subject)).or_insert(Bucket {
                tokens: burst,
                at: now,
            }),
        };
        bucket.tokens =
            (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * rate).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
        }
    }

    /// Opens a server stream for `subject`, within the per-principal and per-process caps.
    fn open_stream(self: &Arc<Self>, subject: &str) -> Result<StreamPermit, Status> {
        let process = self.open_streams.fetch_add(1, Ordering::Relaxed);
        let permit = StreamPermit {
            limits: self.clone(),
            subject: Arc::from(subject),
        };
        {
            let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
            let mine = streams.entry(permit.subject.clone()).or_insert(0);
            *mine += 1;
            if *mine > self.settings.streams_per_principal {
                LimitRefusal::StreamsPerPrincipal.count();
                return Err(exhausted(
                    "STREAMS_PER_PRINCIPAL",
                    format!(
                        "{subject} holds {} open streams already, the most a principal may; end one first",
                        self.settings.streams_per_principal
                    ),
                    None,
                ));
            }
        }
        if process >= self.settings.streams_per_process {
            LimitRefusal::StreamsPerProcess.count();
            return Err(exhausted(
                "STREAMS_PER_PROCESS",
                "this server holds as many open streams as it may; retry later".into(),
                Some(Duration::from_secs(5)),
            ));
        }
        Ok(permit)
    }
}

/// The tower layer of the limits; placed inside the auth layer, whose [`Caller`] it reads and
/// whose checks it repeats on open streams.
#[derive(Clone)]
pub struct LimitLayer {
    limits: Arc<Limits>,
    auth: AuthLayer,
}

impl LimitLayer {
    pub fn new(limits: Arc<Limits>, auth: AuthLayer) -> Self {
        LimitLayer { limits, auth }
    }
}

impl<S> Layer<S> for LimitLayer {
    type Service = LimitService<S>;

    fn layer(&self, inner: S) -> LimitService<S> {
        LimitService {
            layer: self.clone(),
            inner,
        }
    }
}

#[derive(Clone)]
pub struct LimitService<S> {
    layer: LimitLayer,
    inner: S,
}

/// Counts a unary call in flight until dropped.
struct InFlight(Arc<Limits>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<S, B> Service<http::Request<B>> for LimitService<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let Some(principal) = request
            .extensions()
            .get::<Caller>()
            .map(|caller| caller.principal.clone())
        else {
            // Health and reflection: public, unlimited here (tonic's per-connection limits hold).
            return Box::pin(inner.call(request));
        };
        let limits = self.layer.limits.clone();
        let refuse =
            |status: Status| -> Self::Future { Box::pin(async move { Ok(status.into_http()) }) };
        if !principal.roles.contains(Role::System)
            && let Err(wait) = limits.take_rate(&principal.subject)
        {
            LimitRefusal::RateLimited.count();
            return refuse(exhausted(
                "RATE_LIMITED",
                format!(
                    "{} called more than {} times a second; retry in {} ms",
                    principal.subject,
                    limits.settings.rate_per_second,
                    wait.as_millis().max(1)
                ),
                Some(wait),
            ));
        }
        if is_streaming(request.uri().path()) {
            let permit = match limits.open_stream(&principal.subject) {
                Ok(permit) => permit,
                Err(status) => return refuse(status),
            };
            let guard = StreamGuard {
                auth: self.layer.auth.clone(),
                path: request.uri().path().to_string(),
                headers: request.headers().clone(),
                lifetime: Box::pin(tokio::time::sleep(limits.settings.stream_lifetime)),
                recheck_every: limits.settings.stream_recheck,
                recheck: Box::pin(tokio::time::sleep(limits.settings.stream_recheck)),
                _permit: permit,
            };
            return Box::pin(async move {
                let response = inner.call(request).await?;
                Ok(response.map(|body| {
                    tonic::body::Body::new(GuardedBody {
                        inner: body,
                        guard,
                        ended: false,
                    })
                }))
            });
        }
        if limits.in_flight.fetch_add(1, Ordering::Relaxed) >= limits.settings.max_in_flight {
            limits.in_flight.fetch_sub(1, Ordering::Relaxed);
            LimitRefusal::Overloaded.count();
            return refuse(exhausted(
                "OVERLOADED",
                "the server is handling as many calls as it may; retry shortly".into(),
                Some(Duration::from_millis(100)),
            ));
        }
        let counted = InFlight(limits);
        Box::pin(async move {
            let response = inner.call(request).await;
            drop(counted);
            response
        })
    }
}

/// What a stream needs to end itself: its permit, its caller's credential and its clocks.
struct StreamGuard {
    auth: AuthLayer,
    path: String,
    headers: HeaderMap,
    lifetime: Pin<Box<tokio::time::Sleep>>,
    recheck_every: Duration,
    recheck: Pin<Box<tokio::time::Sleep>>,
    _permit: StreamPermit,
}

impl StreamGuard {
    /// The caller's credential checked again: why the stream must end, if it must.
    fn refused(&self) -> Option<Status> {
        self.auth
            .check(&self.path, &self.headers)
            .err()
            .map(|(reason, e)| {
                reason.count();
                Status::from(e)
            })
    }
}

/// A server stream's body, ended by its guard: the lifetime, or the credential refused.
struct GuardedBody {
    inner: tonic::body::Body,
    guard: StreamGuard,
    ended: bool,
}

/// The trailers that end a gRPC stream with `status`.
fn trailers(status: &Status) -> Frame<Bytes> {
    let mut map = HeaderMap::new();
    if status.add_header(&mut map).is_err() {
        map.insert("grpc-status", http::HeaderValue::from(status.code() as i32));
    }
    Frame::trailers(map)
}

impl http_body::Body for GuardedBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(None);
        }
        if this.guard.lifetime.as_mut().poll(cx).is_ready() {
            this.ended = true;
            let status = Status::unavailable(
                "the stream reached its lifetime; open it again (resume after the last sequence received)",
            );
            return Poll::Ready(Some(Ok(trailers(&status))));
        }
        while this.guard.recheck.as_mut().poll(cx).is_ready() {
            if let Some(status) = this.guard.refused() {
                this.ended = true;
                return Poll::Ready(Some(Ok(trailers(&status))));
            }
            let next = tokio::time::Instant::now() + this.guard.recheck_every;
            this.guard.recheck.as_mut().reset(next);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) if frame.is_data() => {
                // Nothing reaches a caller refused now, however the stream was opened.
                if let Some(status) = this.guard.refused() {
                    this.ended = true;
                    return Poll::Ready(Some(Ok(trailers(&status))));
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(None) => {
                this.ended = true;
                Poll::Ready(None)
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }
}

/// A connection's IO that fails once it has moved no byte for `idle`: a client that opens a
/// connection and sends nothing, or stops half-way, gives its socket back.
///
/// Traffic only records when it happened; the timer is re-armed when it fires early, so a busy
/// connection does not touch the timer wheel on every read and write.
pub struct IdleTimeout<T> {
    io: T,
    idle: Duration,
    last: tokio::time::Instant,
    timer: Pin<Box<tokio::time::Sleep>>,
}

impl<T> IdleTimeout<T> {
    /// `idle` of `Duration::MAX` never expires.
    pub fn new(io: T, idle: Duration) -> Self {
        IdleTimeout {
            io,
            idle,
            last: tokio::time::Instant::now(),
            timer: Box::pin(tokio::time::sleep(idle)),
        }
    }

    fn touch(&mut self) {
        self.last = tokio::time::Instant::now();
    }

    /// Whether the connection has been idle for `idle`; otherwise the timer is armed (and
    /// registered with `cx`) for the moment it would be.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        loop {
            if self.timer.as_mut().poll(cx).is_pending() {
                return false;
            }
            let Some(due) = self.last.checked_add(self.idle) else {
                return false;
            };
            if due <= tokio::time::Instant::now() {
                return true;
            }
            self.timer.as_mut().reset(due);
        }
    }
}

impl<T: tonic::transport::server::Connected> tonic::transport::server::Connected
    for IdleTimeout<T>
{
    type ConnectInfo = T::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

fn idle_error() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "the connection moved no byte for the idle timeout",
    )
}

impl<T: AsyncRead + Unpin> AsyncRead for IdleTimeout<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.touch();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(idle_error())),
            other => other,
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for IdleTimeout<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match Pin::new(&mut self.io).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.touch();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(idle_error())),
            other => other,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match Pin::new(&mut self.io).poll_write_vectored(cx, bufs) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.touch();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(idle_error())),
            other => other,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_s_server_streams_are_known() {
        for path in [
            "/assurance.incident.v1.IncidentService/WatchIncident",
            "/assurance.gateway.v1.PostureService/WatchPosture",
        ] {
            assert!(is_streaming(path), "{path}");
        }
        assert!(!is_streaming("/assurance.risk.v1.RiskService/GetRisk"));
    }

    #[test]
    fn a_principal_s_rate_refills_and_says_how_long_to_wait() {
        let limits = Limits::new(LimitSettings {
            rate_per_second: 10.0,
            rate_burst: 3.0,
            ..LimitSettings::default()
        });
        for _ in 0..3 {
            assert!(limits.take_rate("alice").is_ok());
        }
        let wait = limits.take_rate("alice").expect_err("burst spent");
        assert!(wait <= Duration::from_millis(100), "{wait:?}");
        assert!(limits.take_rate("bob").is_ok(), "one bucket per principal");
    }

    #[test]
    fn streams_are_capped_per_principal_and_released_on_drop() {
        let limits = Limits::new(LimitSettings {
            streams_per_principal: 2,
            streams_per_process: 3,
            ..LimitSettings::default()
        });
        let a = limits.open_stream("alice").expect("first");
        let b = limits.open_stream("alice").expect("second");
        let refused = limits.open_stream("alice").err().expect("third refused");
        assert_eq!(refused.code(), Code::ResourceExhausted);
        let c = limits.open_stream("bob").expect("bob's first");
        let full = limits.open_stream("carol").err().expect("process full");
        assert_eq!(full.code(), Code::ResourceExhausted);
        drop((a, b, c));
        assert_eq!(limits.open_streams.load(Ordering::Relaxed), 0);
        assert!(limits.streams.lock().expect("lock").is_empty());
        assert!(limits.open_stream("carol").is_ok());
    }
}
