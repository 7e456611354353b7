//! The client side: a channel wrapper that sends a bearer token (and, for a `system`
//! principal acting for a user, `x-on-behalf-of`) with every call, and the current span as
//! its `traceparent` when traces are exported.

use std::task::{Context, Poll};

use http::HeaderValue;
use tower::Service;

use super::layer::ON_BEHALF_OF;

/// `inner` with `authorization: Bearer <token>` on every request.
#[derive(Clone, Debug)]
pub struct Bearer<S> {
    inner: S,
    authorization: HeaderValue,
    on_behalf_of: Option<HeaderValue>,
}

impl<S> Bearer<S> {
    pub fn new(inner: S, token: &str) -> Result<Bearer<S>, String> {
        let mut authorization = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| "the token holds characters not allowed in metadata".to_string())?;
        authorization.set_sensitive(true);
        Ok(Bearer {
            inner,
            authorization,
            on_behalf_of: None,
        })
    }

    /// Names the user a `system` principal acts for.
    pub fn on_behalf_of(mut self, user: &str) -> Result<Bearer<S>, String> {
        self.on_behalf_of =
            Some(HeaderValue::from_str(user).map_err(|_| {
                "on_behalf_of holds characters not allowed in metadata".to_string()
            })?);
        Ok(self)
    }
}

impl<S, B> Service<http::Request<B>> for Bearer<S>
where
    S: Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> S::Future {
        let headers = request.headers_mut();
        headers.insert(http::header::AUTHORIZATION, self.authorization.clone());
        if let Some(user) = &self.on_behalf_of {
            headers.insert(ON_BEHALF_OF, user.clone());
        }
        // The caller's span (an RPC, an outbox delivery) is the parent of the callee's.
        crate::trace_context::inject(headers);
        self.inner.call(request)
    }
}

/// The token in `path` (`--service-token-file`), trimmed; an unreadable or empty file is an
/// error naming it.
pub fn read_token_file(path: &std::path::Path) -> Result<String, String> {
    let token = std::fs::read_to_string(path)
        .map_err(|e| format!("--service-token-file {}: {e}", path.display()))?;
    let token = token.trim();
    if token.is_empty() {
        return Err(format!("--service-token-file {} is empty", path.display()));
    }
    Ok(token.to_string())
}
