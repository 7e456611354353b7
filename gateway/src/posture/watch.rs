//! WatchPosture: a scope's posture now, then whenever its figures change, at most one
//! message per `--watch-interval`. Before every computation the caller's credential is
//! authenticated and authorized again, so a revoked or expired token ends the stream.
//! Each stream computes on its own; the cap on concurrent streams is issue 16's.

use assurance_proto::gateway::v1::{Posture, WatchPostureRequest};
use assurance_runtime::{ApiError, ApiResult, validate::Violations};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Status};

use super::{
    DAY_MICROS, DEFAULT_PERIOD_DAYS, MAX_TOP_N, PostureApi, authorize_scope, on_behalf,
    posture_scope, upstream::OnBehalf,
};

/// The stream WatchPosture answers with.
pub type WatchStream = ReceiverStream<Result<Posture, Status>>;

/// `posture` without what changes on every computation (the time, the rolling period).
fn figures(posture: &Posture) -> Posture {
    Posture {
        compute_time: None,
        period_start: None,
        period_end: None,
        ..posture.clone()
    }
}

impl PostureApi {
    pub(super) async fn watch(
        &self,
        request: Request<WatchPostureRequest>,
    ) -> ApiResult<WatchStream> {
        let first = on_behalf(&request)?;
        let headers = request.metadata().clone().into_headers();
        let req = request.into_inner();
        let mut v = Violations::new();
        let scope = posture_scope(&mut v, "scope", &req.scope);
        if !(0..=MAX_TOP_N).contains(&req.top_n) {
            v.add("top_n", format!("must be 0 (the default) to {MAX_TOP_N}"));
        }
        v.finish()?;
        let Some(scope) = scope else {
            return Err(ApiError::Internal("scope validated but absent".into()));
        };
        authorize_scope(&first.caller, &scope)?;
        let auth = self.auth.clone().ok_or_else(|| {
            ApiError::Unavailable("WatchPosture needs the server's authenticator".into())
        })?;
        let top_n = self.top_n(req.top_n);
        let interval = self.settings.watch_interval;
        let rpc = first.caller.rpc.to_string();
        let (tx, rx) = mpsc::channel(1);
        let api = self.clone();
        tokio::spawn(async move {
            let mut last: Option<Posture> = None;
            loop {
                // The credential again: revoked, expired or stripped of its role ends the stream.
                let caller = match auth
                    .authorize(&rpc, &headers)
                    .and_then(|caller| authorize_scope(&caller, &scope).map(|()| caller))
                {
                    Ok(caller) => caller,
                    Err(e) => {
                        tracing::info!(error = %e, "WatchPosture ended: the caller is refused now");
                        let _ = tx.send(Err(e.into())).await;
                        return;
                    }
                };
                let on = OnBehalf {
                    caller,
                    authorization: first.authorization.clone(),
                };
                let now = api.clock.now_micros();
                let period = (now.saturating_sub(DEFAULT_PERIOD_DAYS * DAY_MICROS), now);
                match api.compute(&on, &scope, period, top_n, now).await {
                    Ok(posture) => {
                        let seen = figures(&posture);
                        if last.as_ref() != Some(&seen) {
                            if tx.send(Ok(posture)).await.is_err() {
                                return;
                            }
                            last = Some(seen);
                        }
                    }
                    Err(e @ ApiError::NotFound { .. }) => {
                        let _ = tx.send(Err(e.into())).await;
                        return;
                    }
                    // A service down: the watcher keeps its last figures and tries again.
                    Err(e) => {
                        tracing::warn!(error = %e, scope = %scope.name(), "WatchPosture: posture not computed; retrying")
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = tx.closed() => return,
                }
            }
        });
        Ok(ReceiverStream::new(rx))
    }
}
