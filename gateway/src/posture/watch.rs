//! WatchPosture: a scope's posture now, then whenever its figures change, at most one
//! message per `--watch-interval`.
//!
//! Watchers who would get the same answer — same scope, top list length and incident
//! visibility (and, when the gateway presents each caller's own credential upstream, the same
//! credential) — share one feed: one computation per interval, whatever their number. The feed
//! ends when its last watcher leaves. Each watcher's credential is authenticated and
//! authorized again before every message it is sent, so a revoked or expired token ends its
//! stream. The cap on concurrent streams is issue 16's.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use assurance_proto::gateway::v1::{Posture, WatchPostureRequest};
use assurance_runtime::{ApiError, ApiResult, validate::Violations};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Status};

use super::{
    DAY_MICROS, DEFAULT_PERIOD_DAYS, MAX_TOP_N, PostureApi, Scope, authorize_scope, on_behalf,
    posture_scope, reads_incidents, upstream::OnBehalf,
};

/// The stream WatchPosture answers with.
pub type WatchStream = ReceiverStream<Result<Posture, Status>>;

/// What makes two watchers' answers the same.
#[derive(Clone, PartialEq, Eq, Hash)]
struct FeedKey {
    scope: String,
    top_n: i32,
    incidents: bool,
    /// The credential presented upstream, when the gateway has none of its own.
    credential: Option<String>,
}

/// The latest news of a feed.
#[derive(Clone)]
enum News {
    Posture(Arc<Posture>),
    /// The feed ended (the scope is gone).
    Ended(Status),
}

/// The live feeds, by key.
#[derive(Clone, Default)]
pub struct Feeds(Arc<Mutex<HashMap<FeedKey, watch::Sender<Option<News>>>>>);

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
        let key = FeedKey {
            scope: scope.name(),
            top_n: self.top_n(req.top_n),
            incidents: reads_incidents(&first.caller),
            credential: if self.upstreams.has_own_credential() {
                None
            } else {
                first.authorization.clone()
            },
        };
        let rpc = first.caller.rpc.to_string();
        let mut news = self.subscribe(key, scope.clone(), first);
        let interval = self.settings.watch_interval;
        let (tx, rx) = mpsc::channel(1);
        tokio::spawn(async move {
            // The feed's news not yet sent to this watcher: at first, whatever it has.
            news.mark_changed();
            loop {
                let changed = tokio::select! {
                    changed = news.changed() => match changed {
                        Ok(()) => true,
                        Err(_) => return,
                    },
                    // Wake up anyway to check the credential while nothing changes.
                    _ = tokio::time::sleep(interval) => false,
                    _ = tx.closed() => return,
                };
                // The credential again: revoked, expired or stripped of its role ends the stream.
                if let Err(e) = auth
                    .authorize(&rpc, &headers)
                    .and_then(|caller| authorize_scope(&caller, &scope))
                {
                    tracing::info!(error = %e, "WatchPosture ended: the caller is refused now");
                    let _ = tx.send(Err(e.into())).await;
                    return;
                }
                let latest = if changed {
                    news.borrow_and_update().clone()
                } else {
                    None
                };
                let sent = match latest {
                    None => Ok(()),
                    Some(News::Posture(posture)) => tx.send(Ok((*posture).clone())).await,
                    Some(News::Ended(status)) => {
                        let _ = tx.send(Err(status)).await;
                        return;
                    }
                };
                if sent.is_err() {
                    return;
                }
            }
        });
        Ok(ReceiverStream::new(rx))
    }

    /// A receiver of the feed of `key`, started (computing on behalf of `on`) when none runs.
    fn subscribe(&self, key: FeedKey, scope: Scope, on: OnBehalf) -> watch::Receiver<Option<News>> {
        let Ok(mut feeds) = self.feeds.0.lock() else {
            // A poisoned map: a feed of this watcher's own.
            return self.start_feed(None, key, scope, on);
        };
        if let Some(feed) = feeds.get(&key) {
            return feed.subscribe();
        }
        self.start_feed(Some(&mut feeds), key, scope, on)
    }

    /// Starts the feed of `key`, listed in `feeds` when given: every interval it computes the
    /// posture and publishes it when the figures changed; it stops when no watcher is left.
    fn start_feed(
        &self,
        feeds: Option<&mut HashMap<FeedKey, watch::Sender<Option<News>>>>,
        key: FeedKey,
        scope: Scope,
        on: OnBehalf,
    ) -> watch::Receiver<Option<News>> {
        let (sender, receiver) = watch::channel(None);
        let listed = feeds.is_some();
        if let Some(feeds) = feeds {
            feeds.insert(key.clone(), sender.clone());
        }
        let api = self.clone();
        tokio::spawn(async move {
            let mut last: Option<Posture> = None;
            loop {
                let now = api.clock.now_micros();
                let period = (now.saturating_sub(DEFAULT_PERIOD_DAYS * DAY_MICROS), now);
                match api.compute(&on, &scope, period, key.top_n, now).await {
                    Ok(posture) => {
                        let seen = figures(&posture);
                        if last.as_ref() != Some(&seen) {
                            sender.send_replace(Some(News::Posture(Arc::new(posture))));
                            last = Some(seen);
                        }
                    }
                    Err(e @ ApiError::NotFound { .. }) => {
                        sender.send_replace(Some(News::Ended(e.into())));
                    }
                    // A service down: the watchers keep the last figures; try again.
                    Err(e) => {
                        tracing::warn!(error = %e, scope = %scope.name(), "WatchPosture: posture not computed; retrying")
                    }
                }
                tokio::time::sleep(api.settings.watch_interval).await;
                if sender.receiver_count() == 0 && api.end_feed(&key, &sender, listed) {
                    return;
                }
            }
        });
        receiver
    }

    /// Removes the feed of `key` when it still has no watcher (under the lock new watchers
    /// subscribe under); true when it ended.
    fn end_feed(&self, key: &FeedKey, sender: &watch::Sender<Option<News>>, listed: bool) -> bool {
        if !listed {
            return true;
        }
        let Ok(mut feeds) = self.feeds.0.lock() else {
            return true;
        };
        if sender.receiver_count() > 0 {
            return false;
        }
        feeds.remove(key);
        true
    }
}
