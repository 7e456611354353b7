//! Forwarding of whole gRPC services to an upstream server: requests pass through
//! unchanged (metadata, deadlines, status details), so typed errors survive the hop; only
//! `traceparent` names the gateway's span when traces are exported.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use tonic::{Status, body::Body, transport::Channel};
use tower::{Service, ServiceExt};

/// A tower service that sends every request to one upstream channel.
#[derive(Clone)]
pub struct Upstream {
    name: &'static str,
    channel: Channel,
}

impl Upstream {
    pub fn new(name: &'static str, channel: Channel) -> Self {
        Upstream { name, channel }
    }
}

impl Service<http::Request<axum::body::Body>> for Upstream {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<axum::body::Body>) -> Self::Future {
        let channel = self.channel.clone();
        let name = self.name;
        Box::pin(async move {
            let mut request = request.map(Body::new);
            // The service's span is the child of this gateway call's, not of the caller's.
            assurance_runtime::trace_context::inject(request.headers_mut());
            match channel.oneshot(request).await {
                Ok(response) => Ok(response.map(Body::new)),
                Err(e) => {
                    tracing::warn!(upstream = name, error = %e, "upstream unreachable");
                    Ok(
                        Status::unavailable(format!("{name} is unreachable; retry later"))
                            .into_http(),
                    )
                }
            }
        })
    }
}

/// Routes for `services`, all forwarded to `upstream`.
pub fn routes(services: &[&str], upstream: Upstream) -> axum::Router {
    services.iter().fold(axum::Router::new(), |router, name| {
        router.route_service(&format!("/{name}/{{*rest}}"), upstream.clone())
    })
}
