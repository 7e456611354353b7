//! The outermost layer of a gRPC server: a request id on every call, the per-method metrics
//! and one access-log line per call.
//!
//! - **Request id:** the caller's `x-request-id` when usable (1 to 128 visible ASCII
//!   characters), else a new UUIDv7; handlers see it in the request's metadata, and it is
//!   returned in the response's metadata on every call, errors included.
//! - **Code:** a trailers-only answer (an error) carries its `grpc-status` in the headers;
//!   otherwise it is read from the trailers at the end of the body (a stream's when it ends).
//!   A call dropped before its status (the caller went away, tonic's timeout) is `CANCELLED`.
//! - **Principal:** a [`PrincipalSlot`] in the request's extensions, filled by the auth layer
//!   inside; a call refused there is logged with principal `-`.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, OnceLock},
    task::{Context, Poll},
    time::Instant,
};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use http_body::Frame;
use tower::{Layer, Service};

use super::Method;
use crate::auth::{Principal, layer::REQUEST_ID};

/// The longest request id kept from a caller.
pub const MAX_REQUEST_ID: usize = 128;

/// The principal of a call, once the auth layer knows it.
#[derive(Clone, Default)]
pub struct PrincipalSlot(Arc<OnceLock<Arc<Principal>>>);

impl PrincipalSlot {
    /// Records the authenticated principal (the first one recorded stays).
    pub fn fill(&self, principal: &Arc<Principal>) {
        let _ = self.0.set(principal.clone());
    }

    fn subject(&self) -> &str {
        self.0.get().map_or("-", |p| p.subject.as_str())
    }
}

/// Whether a caller's request id can be kept: 1 to 128 visible ASCII characters.
pub fn usable_request_id(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty() && bytes.len() <= MAX_REQUEST_ID && bytes.iter().all(|b| b.is_ascii_graphic())
}

fn new_request_id() -> HeaderValue {
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let text = uuid::Uuid::now_v7().hyphenated().encode_lower(&mut buf);
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

/// The layer; place it outermost, outside authentication.
#[derive(Debug, Clone, Copy, Default)]
pub struct ObserveLayer;

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Observe<S> {
        Observe { inner }
    }
}

/// The service of [`ObserveLayer`].
#[derive(Debug, Clone)]
pub struct Observe<S> {
    inner: S,
}

impl<S, B, R> Service<http::Request<B>> for Observe<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Unpin,
    R: http_body::Body<Data = Bytes> + Unpin,
{
    type Response = http::Response<ObservedBody<R>>;
    type Error = S::Error;
    type Future = ObservedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let start = Instant::now();
        let method = super::method(request.uri().path());
        let request_id = match request.headers().get(REQUEST_ID) {
            Some(id) if usable_request_id(id) => id.clone(),
            _ => {
                let id = new_request_id();
                request.headers_mut().insert(REQUEST_ID, id.clone());
                id
            }
        };
        let slot = PrincipalSlot::default();
        request.extensions_mut().insert(slot.clone());
        method.started();
        let call = Call {
            method,
            start,
            request_id,
            slot,
            done: false,
        };
        ObservedFuture {
            inner: self.inner.call(request),
            call: Some(call),
        }
    }
}

/// One call being observed: finished exactly once (by its status, or when dropped).
struct Call {
    method: &'static Method,
    start: Instant,
    request_id: HeaderValue,
    slot: PrincipalSlot,
    done: bool,
}

impl Call {
    fn finish(&mut self, code: usize) {
        if self.done {
            return;
        }
        self.done = true;
        let elapsed = self.start.elapsed();
        self.method.finished(code, elapsed);
        tracing::info!(
            target: "access",
            method = %self.method.name,
            code = super::CODES[code.min(super::CODES.len() - 1)],
            // Microsecond precision, printed without float noise (0.412).
            duration_ms = elapsed.as_micros() as f64 / 1000.0,
            principal = self.slot.subject(),
            request_id = self.request_id.to_str().unwrap_or("-"),
            "access"
        );
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        // Dropped before its status: the caller went away, or tonic's timeout cut it.
        self.finish(tonic::Code::Cancelled as usize);
    }
}

/// The `grpc-status` in `headers`, if any, as a code number (an unknown number is UNKNOWN).
fn status_code(headers: &HeaderMap) -> Option<usize> {
    let value = headers.get("grpc-status")?;
    Some(
        std::str::from_utf8(value.as_bytes())
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .filter(|c| *c < super::CODES.len())
            .unwrap_or(tonic::Code::Unknown as usize),
    )
}

/// The response future of [`Observe`].
pub struct ObservedFuture<F> {
    inner: F,
    call: Option<Call>,
}

impl<F, R, E> Future for ObservedFuture<F>
where
    F: Future<Output = Result<http::Response<R>, E>> + Unpin,
{
    type Output = Result<http::Response<ObservedBody<R>>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let result = match Pin::new(&mut this.inner).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(result) => result,
        };
        let Some(mut call) = this.call.take() else {
            // Polled after completion: pass the inner future's answer on, unobserved.
            return Poll::Ready(result.map(|r| r.map(ObservedBody::done)));
        };
        match result {
            Ok(mut response) => {
                response
                    .headers_mut()
                    .insert(REQUEST_ID, call.request_id.clone());
                if let Some(code) = status_code(response.headers()) {
                    // Trailers-only: the status is known now.
                    call.finish(code);
                    return Poll::Ready(Ok(response.map(ObservedBody::done)));
                }
                Poll::Ready(Ok(response.map(|inner| ObservedBody {
                    inner,
                    call: Some(call),
                })))
            }
            Err(e) => {
                call.finish(tonic::Code::Unknown as usize);
                Poll::Ready(Err(e))
            }
        }
    }
}

/// A response body whose trailers end its call's observation.
pub struct ObservedBody<B> {
    inner: B,
    call: Option<Call>,
}

impl<B> ObservedBody<B> {
    fn done(inner: B) -> Self {
        ObservedBody { inner, call: None }
    }
}

impl<B> http_body::Body for ObservedBody<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Some(call) = &mut this.call {
            match &polled {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Some(code) = frame.trailers_ref().and_then(status_code) {
                        call.finish(code);
                        this.call = None;
                    }
                }
                Poll::Ready(Some(Err(_))) => {
                    call.finish(tonic::Code::Internal as usize);
                    this.call = None;
                }
                Poll::Ready(None) => {
                    // Ended without a status: not a gRPC answer.
                    call.finish(tonic::Code::Unknown as usize);
                    this.call = None;
                }
                Poll::Pending => {}
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::{convert::Infallible, sync::Mutex};

    use tower::{ServiceExt, service_fn};

    use super::*;

    #[test]
    fn request_ids_are_capped_and_visible_ascii() {
        let ok = |s: &str| usable_request_id(&HeaderValue::from_str(s).expect("value"));
        assert!(ok("req-1"));
        assert!(ok(&"a".repeat(128)));
        assert!(!ok(&"a".repeat(129)));
        assert!(!ok(""));
        assert!(!ok("has space"));
        assert!(!usable_request_id(
            &HeaderValue::from_bytes(b"caf\xc3\xa9").expect("value")
        ));
        let fresh = new_request_id();
        assert!(usable_request_id(&fresh));
        assert_eq!(fresh.len(), 36);
    }

    /// Captures the access log of one test (its thread's subscriber).
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn every_call_gets_a_request_id_and_one_access_line() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let inner = {
            let seen = seen.clone();
            service_fn(move |r: http::Request<()>| {
                seen.lock()
                    .expect("lock")
                    .push(r.headers().get(REQUEST_ID).cloned());
                if let Some(slot) = r.extensions().get::<PrincipalSlot>() {
                    slot.fill(&Arc::new(Principal::insecure_dev()));
                }
                std::future::ready(Ok::<_, Infallible>(
                    tonic::Status::not_found("nope").into_http::<String>(),
                ))
            })
        };
        let layered = ObserveLayer.layer(inner);
        let request = |id: Option<&str>| {
            let mut r = http::Request::builder().uri("/assurance.risk.v1.RiskService/GetRisk");
            if let Some(id) = id {
                r = r.header(REQUEST_ID, id);
            }
            r.body(()).expect("request")
        };
        let mine = layered
            .clone()
            .oneshot(request(Some("r-42")))
            .await
            .expect("answer");
        assert_eq!(mine.headers()[REQUEST_ID], "r-42");
        let fresh = layered
            .clone()
            .oneshot(request(Some("not usable")))
            .await
            .expect("answer");
        let id = fresh.headers()[REQUEST_ID]
            .to_str()
            .expect("ascii")
            .to_string();
        assert_eq!(id.len(), 36, "{id}");
        let seen = seen.lock().expect("lock").clone();
        assert_eq!(seen[0].as_ref().expect("kept"), "r-42");
        assert_eq!(
            seen[1].as_ref().expect("replaced").to_str().expect("ascii"),
            id,
            "the handler sees the id the caller gets back"
        );
        let log = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
        let lines: Vec<&str> = log.lines().filter(|l| l.contains("access")).collect();
        assert_eq!(lines.len(), 2, "{log}");
        for needle in [
            "method=assurance.risk.v1.RiskService/GetRisk",
            "code=\"NOT_FOUND\"",
            "principal=\"insecure-dev\"",
            "request_id=\"r-42\"",
            "duration_ms=",
        ] {
            assert!(lines[0].contains(needle), "{needle} in {}", lines[0]);
        }
    }
}
