//! The tower layer that checks every gRPC call at a server's edge: a bearer token
//! (`UNAUTHENTICATED` when missing, unknown, expired or tampered), then the role matrix
//! (`PERMISSION_DENIED`). Health and reflection are public. The [`Caller`] it attaches is what
//! handlers — in this process, whatever service they belong to — act on.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use http::HeaderMap;
use tower::{Layer, Service};

use super::{
    Caller, Principal, Role,
    authenticator::{Authenticator, refusal_reason},
    matrix,
};
use crate::{
    ApiError,
    observe::{AuthFailure, PrincipalSlot},
};

/// Metadata a `system` principal sets to name the user it acts for.
pub const ON_BEHALF_OF: &str = "x-on-behalf-of";
/// Metadata carrying the client's request id into logs and the audit trail.
pub const REQUEST_ID: &str = "x-request-id";

#[derive(Clone)]
enum Mode {
    Verify(Arc<Authenticator>),
    InsecureDev(Arc<Principal>),
}

/// Authentication and role checks for every call.
#[derive(Clone)]
pub struct AuthLayer {
    mode: Mode,
}

impl AuthLayer {
    pub fn verify(authenticator: Arc<Authenticator>) -> AuthLayer {
        AuthLayer {
            mode: Mode::Verify(authenticator),
        }
    }

    /// Every caller is an administrator. For a developer's laptop only.
    pub fn insecure_dev() -> AuthLayer {
        AuthLayer {
            mode: Mode::InsecureDev(Arc::new(Principal::insecure_dev())),
        }
    }

    /// The caller of a call to `path` with `headers`, or why it is refused.
    pub fn authorize(&self, path: &str, headers: &HeaderMap) -> Result<Caller, ApiError> {
        self.check(path, headers).map_err(|(_, e)| e)
    }

    /// [`AuthLayer::authorize`], with the refusal's reason for the metrics.
    pub fn check(
        &self,
        path: &str,
        headers: &HeaderMap,
    ) -> Result<Caller, (AuthFailure, ApiError)> {
        let principal = match &self.mode {
            Mode::InsecureDev(p) => p.clone(),
            Mode::Verify(authn) => {
                let token = bearer(headers)?;
                authn
                    .authenticate(token, crate::time::now_micros() / 1_000_000)
                    .map_err(|e| (refusal_reason(&e), ApiError::Unauthenticated(e)))?
            }
        };
        let allowed = matrix::allowed(path);
        let method = path.rsplit('/').next().unwrap_or(path);
        if !principal.roles.intersects(allowed) {
            return Err((
                AuthFailure::PermissionDenied,
                ApiError::PermissionDenied(if allowed.is_empty() {
                    format!("{method} is not a known method")
                } else {
                    format!(
                        "{} (roles: {}) may not call {method}; it needs one of: {allowed}",
                        principal.subject,
                        if principal.roles.is_empty() {
                            "none".to_string()
                        } else {
                            principal.roles.to_string()
                        }
                    )
                }),
            ));
        }
        let on_behalf_of = match headers.get(ON_BEHALF_OF) {
            None => None,
            Some(value) => {
                if !principal.roles.contains(Role::System)
                    && !matches!(self.mode, Mode::InsecureDev(_))
                {
                    return Err((
                        AuthFailure::OnBehalfOf,
                        ApiError::PermissionDenied(format!(
                            "only a principal with the system role may act on behalf of another ({ON_BEHALF_OF})"
                        )),
                    ));
                }
                let user = value
                    .to_str()
                    .ok()
                    .map(str::trim)
                    .filter(|u| !u.is_empty() && u.len() <= 256 && !u.chars().any(char::is_control))
                    .ok_or_else(|| {
                        (
                            AuthFailure::OnBehalfOf,
                            ApiError::Unauthenticated(format!(
                                "{ON_BEHALF_OF} must be 1 to 256 printable characters"
                            )),
                        )
                    })?;
                Some(super::normalize_principal(user))
            }
        };
        let request_id = headers
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(128).collect())
            .unwrap_or_default();
        Ok(Caller {
            principal,
            on_behalf_of,
            rpc: path.into(),
            request_id,
        })
    }
}

fn bearer(headers: &HeaderMap) -> Result<&str, (AuthFailure, ApiError)> {
    let value = headers.get(http::header::AUTHORIZATION).ok_or_else(|| {
        (
            AuthFailure::MissingCredentials,
            ApiError::Unauthenticated(
                "missing credentials: send the metadata `authorization: Bearer <token>`".into(),
            ),
        )
    })?;
    let malformed = |message: &str| {
        (
            AuthFailure::MalformedCredentials,
            ApiError::Unauthenticated(message.into()),
        )
    };
    let value = value
        .to_str()
        .map_err(|_| malformed("the authorization metadata is malformed"))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(malformed(
            "the authorization metadata must be `Bearer <token>`",
        )),
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> AuthService<S> {
        AuthService {
            layer: self.clone(),
            inner,
        }
    }
}

#[derive(Clone)]
pub struct AuthService<S> {
    layer: AuthLayer,
    inner: S,
}

impl<S, B, R> Service<http::Request<B>> for AuthService<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let path = request.uri().path();
        if !matrix::is_public(path) {
            match self.layer.check(path, request.headers()) {
                Ok(caller) => {
                    if let Some(slot) = request.extensions().get::<PrincipalSlot>() {
                        slot.fill(&caller.principal);
                    }
                    request.extensions_mut().insert(caller);
                }
                Err((reason, e)) => {
                    reason.count();
                    tracing::info!(path, error = %e, "call refused");
                    let status: tonic::Status = e.into();
                    return Box::pin(async move { Ok(status.into_http()) });
                }
            }
        }
        // The clone is ready only if polled; swap in the one that was polled.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(inner.call(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::tokens::sha256_hex;

    fn layer() -> AuthLayer {
        let dir = std::env::temp_dir().join(format!("assurance-layer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("tokens.toml");
        std::fs::write(
            &path,
            format!(
                "[[tokens]]\nsha256 = \"{}\"\nprincipal = \"viewer\"\nroles = [\"viewer\"]\n\n[[tokens]]\nsha256 = \"{}\"\nprincipal = \"relay\"\nroles = [\"system\"]\n",
                sha256_hex("asr_v"),
                sha256_hex("asr_s")
            ),
        )
        .expect("write");
        AuthLayer::verify(Authenticator::new(Some(path), None).expect("authenticator"))
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().expect("header value"));
        }
        h
    }

    const GET: &str = "/assurance.risk.v1.RiskService/GetRisk";
    const CREATE: &str = "/assurance.risk.v1.RiskService/CreateRisk";

    #[test]
    fn credentials_roles_and_on_behalf_of() {
        let l = layer();
        let code = |r: Result<Caller, ApiError>| r.map(|_| ()).map_err(|e| e.code());
        use tonic::Code::{PermissionDenied, Unauthenticated};
        assert_eq!(code(l.authorize(GET, &headers(&[]))), Err(Unauthenticated));
        assert_eq!(
            code(l.authorize(GET, &headers(&[("authorization", "Basic abc")]))),
            Err(Unauthenticated)
        );
        assert_eq!(
            code(l.authorize(GET, &headers(&[("authorization", "Bearer asr_x")]))),
            Err(Unauthenticated)
        );
        assert_eq!(
            code(l.authorize(GET, &headers(&[("authorization", "bearer asr_v")]))),
            Ok(())
        );
        assert_eq!(
            code(l.authorize(CREATE, &headers(&[("authorization", "Bearer asr_v")]))),
            Err(PermissionDenied)
        );
        assert_eq!(
            code(l.authorize(
                GET,
                &headers(&[("authorization", "Bearer asr_v"), (ON_BEHALF_OF, "alice")])
            )),
            Err(PermissionDenied)
        );
        let caller = l
            .authorize(
                CREATE,
                &headers(&[
                    ("authorization", "Bearer asr_s"),
                    (ON_BEHALF_OF, "alice"),
                    (REQUEST_ID, "r-1"),
                ]),
            )
            .expect("system may act for alice");
        assert_eq!(caller.actor(), "relay (on behalf of alice)");
        assert_eq!(caller.request_id, "r-1");
        assert_eq!(&*caller.rpc, CREATE);
    }
}
