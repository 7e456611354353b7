//! A request that is not a valid protobuf message (bad wire format, invalid UTF-8 in a string
//! field, a truncated frame) is the client's fault: `INVALID_ARGUMENT`, with the usual
//! `ErrorInfo`. tonic answers such a decode failure with `INTERNAL`; this layer rewrites that
//! answer, on every RPC of a server, before it leaves.
//!
//! tonic reports a request it cannot decode as a trailers-only response (the status in the
//! response headers), so the rewrite only reads and replaces headers; bodies pass untouched.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use tonic::{Code, Status};
use tower::{Layer, Service};

use crate::error::ApiError;

/// The beginnings of the `INTERNAL` messages tonic (and prost) give a request they cannot
/// decode.
const DECODE_FAILURES: &[&str] = &[
    "failed to decode Protobuf message",
    "Unexpected EOF decoding stream",
    "protocol error: received message with invalid compression flag",
    "Missing request message",
];

/// Wraps a gRPC server's services so that decode failures answer `INVALID_ARGUMENT`.
#[derive(Debug, Clone, Copy, Default)]
pub struct DecodeErrorLayer;

impl<S> Layer<S> for DecodeErrorLayer {
    type Service = DecodeErrors<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DecodeErrors { inner }
    }
}

/// The service of [`DecodeErrorLayer`].
#[derive(Debug, Clone)]
pub struct DecodeErrors<S> {
    inner: S,
}

impl<S, B, R> Service<http::Request<B>> for DecodeErrors<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<R>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let answer = self.inner.call(request);
        Box::pin(async move {
            let mut response = answer.await?;
            rewrite(response.headers_mut());
            Ok(response)
        })
    }
}

/// Replaces a decode failure's `INTERNAL` status in `headers` by `INVALID_ARGUMENT`.
fn rewrite(headers: &mut http::HeaderMap) {
    let Some(status) = Status::from_header_map(headers) else {
        return;
    };
    if status.code() != Code::Internal
        || !DECODE_FAILURES
            .iter()
            .any(|m| status.message().starts_with(m))
    {
        return;
    }
    let refused: Status = ApiError::invalid(
        "request",
        format!("is not a valid protobuf message: {}", status.message()),
    )
    .into();
    for name in [
        Status::GRPC_STATUS,
        Status::GRPC_MESSAGE,
        Status::GRPC_STATUS_DETAILS,
    ] {
        headers.remove(name);
    }
    if refused.add_header(headers).is_err() {
        // Cannot happen (the message is percent-encoded); still never leave INTERNAL.
        headers.insert(Status::GRPC_STATUS, http::HeaderValue::from_static("3"));
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use tonic_types::StatusExt;
    use tower::{ServiceExt, service_fn};

    use super::*;

    async fn answer(status: Status) -> http::Response<()> {
        let inner = service_fn(move |_: http::Request<()>| {
            let status = status.clone();
            async move { Ok::<_, Infallible>(status.into_http::<()>()) }
        });
        DecodeErrorLayer
            .layer(inner)
            .oneshot(http::Request::new(()))
            .await
            .expect("infallible")
    }

    #[tokio::test]
    async fn a_decode_failure_becomes_invalid_argument_with_error_info() {
        let response = answer(Status::internal(
            "failed to decode Protobuf message: Risk.title: invalid string value: data is not UTF-8 encoded",
        ))
        .await;
        let status = Status::from_header_map(response.headers()).expect("status");
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(
            status.message().contains("not UTF-8"),
            "{}",
            status.message()
        );
        let details = status.get_error_details();
        let info = details.error_info().expect("error info");
        assert_eq!(info.reason, "INVALID_ARGUMENT");
        assert_eq!(
            details.bad_request().expect("violation").field_violations[0].field,
            "request"
        );
    }

    #[tokio::test]
    async fn a_truncated_frame_becomes_invalid_argument() {
        let response = answer(Status::internal("Unexpected EOF decoding stream.")).await;
        let status = Status::from_header_map(response.headers()).expect("status");
        assert_eq!(status.code(), Code::InvalidArgument);
    }

    #[tokio::test]
    async fn other_answers_pass_untouched() {
        for status in [
            Status::internal("internal error"),
            Status::not_found("risks/x not found"),
            Status::ok(""),
        ] {
            let response = answer(status.clone()).await;
            let got = Status::from_header_map(response.headers()).expect("status");
            assert_eq!(got.code(), status.code());
            assert_eq!(got.message(), status.message());
        }
        // A normal answer carries no status in its headers.
        let inner = service_fn(|_: http::Request<()>| async {
            Ok::<_, Infallible>(http::Response::new(()))
        });
        let response = DecodeErrorLayer
            .layer(inner)
            .oneshot(http::Request::new(()))
            .await
            .expect("infallible");
        assert!(response.headers().is_empty());
    }
}
