//! The relay of one service's outbox: it claims the deliverable events, hands each to the
//! service's [`Receiver`] and settles the outcome.
//!
//! - **At least once:** an event is marked delivered only after its receiver acknowledged it;
//!   a relay that dies mid-delivery leaves a lease that expires, and the event is delivered
//!   again. Receivers are idempotent by event id.
//! - **In order per aggregate:** only the oldest event of an aggregate not yet delivered to
//!   this receiver is deliverable, so a retrying or parked (DEAD) event holds back the later
//!   ones (events of types another consumer takes do not).
//! - **Replicas:** the claim is one statement that leases the events it picks (the event row
//!   is the lease row); on PostgreSQL it picks with `FOR UPDATE SKIP LOCKED`, so relays on
//!   several replicas never claim one event together, and SQLite runs one writer at a time.
//!   A lease outlives the delivery timeout, so a claimed event is never delivered twice at once.
//! - **Retries:** exponential backoff with jitter, or the receiver's `Retry-After`
//!   (`google.rpc.RetryInfo`); after `max_attempts` the event is parked as a dead letter, and at
//!   once when the receiver refused it for good.

use std::{
    collections::hash_map::RandomState,
    hash::{BuildHasher, Hasher},
    sync::Arc,
    time::Duration,
};

use sea_orm::{
    ColumnTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter, Statement, Value,
    sea_query::{Expr, ExprTrait},
};
use tokio::{sync::Notify, task::JoinSet};
use tonic::{Code, Status};
use tonic_types::StatusExt;

use super::{State, outbox_event, outbox_event::Column as C};
use crate::{serve::Shutdown, time::now_micros};

/// How a relay paces itself.
#[derive(Debug, Clone)]
pub struct RelaySettings {
    /// How often an idle relay looks for events (it is also woken after local commits).
    pub poll: Duration,
    /// Events claimed (and delivered concurrently) at a time.
    pub batch: u32,
    /// Attempts before an event is parked as a dead letter.
    pub max_attempts: i32,
    /// The first retry's delay; each further one doubles, up to `max_backoff`.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// How long one delivery may take before it counts as failed.
    pub timeout: Duration,
}

impl Default for RelaySettings {
    fn default() -> Self {
        RelaySettings {
            poll: Duration::from_millis(200),
            batch: 64,
            max_attempts: 10,
            base_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(600),
            timeout: Duration::from_secs(5),
        }
    }
}

impl RelaySettings {
    /// The lease a claim takes: twice the delivery timeout, so a claimed event is never
    /// delivered twice at once; the events a dead relay held are retried when it ends.
    fn lease(&self) -> Duration {
        self.timeout * 2
    }

    /// The delay before attempt `attempts + 1`, with jitter: between half and all of the
    /// exponential step.
    fn backoff(&self, attempts: i32) -> Duration {
        let exp = Ord::min(u32::try_from(attempts.saturating_sub(1)).unwrap_or(0), 30);
        let step = self.base_backoff.saturating_mul(1 << exp);
        let step = Ord::min(step, self.max_backoff);
        let half = step / 2;
        let jitter = RandomState::new().build_hasher().finish() % (half.as_millis() as u64 + 1);
        half + Duration::from_millis(jitter)
    }
}

/// The relay's flags, for a server's `Config` (`$prefix` is its environment prefix).
#[macro_export]
macro_rules! relay_args {
    ($name:ident, $prefix:literal) => {
        /// Outbox relay.
        #[derive(Debug, Clone, clap::Args)]
        pub struct $name {
            /// Delivery attempts of an outbox event before it is parked as a dead letter.
            #[arg(long, env = concat!($prefix, "RELAY_MAX_ATTEMPTS"), default_value_t = 10, value_parser = clap::value_parser!(i32).range(1..))]
            pub relay_max_attempts: i32,
            /// Milliseconds before the first retry; each further retry doubles it (with
            /// jitter), up to `--relay-max-backoff-ms`.
            #[arg(long, env = concat!($prefix, "RELAY_BACKOFF_MS"), default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
            pub relay_backoff_ms: u64,
            #[arg(long, env = concat!($prefix, "RELAY_MAX_BACKOFF_MS"), default_value_t = 600_000, value_parser = clap::value_parser!(u64).range(1..))]
            pub relay_max_backoff_ms: u64,
            /// Milliseconds an idle relay waits before looking for events again (it is also
            /// woken by this process's own writes).
            #[arg(long, env = concat!($prefix, "RELAY_POLL_MS"), default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..))]
            pub relay_poll_ms: u64,
        }

        impl $name {
            pub fn relay_settings(&self) -> $crate::outbox::relay::RelaySettings {
                let ms = std::time::Duration::from_millis;
                $crate::outbox::relay::RelaySettings {
                    poll: ms(self.relay_poll_ms),
                    max_attempts: self.relay_max_attempts,
                    base_backoff: ms(self.relay_backoff_ms),
                    max_backoff: ms(self.relay_max_backoff_ms.max(self.relay_backoff_ms)),
                    ..Default::default()
                }
            }
        }
    };
}

/// What a receiver made of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Try again later: after `after` when the receiver said so, else after the backoff.
    Retry {
        error: String,
        after: Option<Duration>,
    },
    /// Retrying cannot help: park it as a dead letter now.
    Park {
        error: String,
    },
}

impl Outcome {
    /// The outcome of a gRPC receiver's answer: OK is delivered; a refusal no retry can change
    /// (INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION, PERMISSION_DENIED, UNIMPLEMENTED,
    /// OUT_OF_RANGE) parks the event; anything else retries, after the `RetryInfo` delay
    /// when the status carries one.
    pub fn of_status(status: &Status) -> Outcome {
        let error = format!("{:?}: {}", status.code(), status.message());
        match status.code() {
            Code::Ok => Outcome::Delivered,
            Code::InvalidArgument
            | Code::NotFound
            | Code::FailedPrecondition
            | Code::PermissionDenied
            | Code::Unimplemented
            | Code::OutOfRange => Outcome::Park { error },
            _ => Outcome::Retry {
                error,
                after: status
                    .get_details_retry_info()
                    .and_then(|r| r.retry_delay)
                    .or_else(|| retry_after_header(status)),
            },
        }
    }
}

/// A `retry-after` metadata entry in seconds.
fn retry_after_header(status: &Status) -> Option<Duration> {
    let value = status.metadata().get("retry-after")?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Where a service's events go: the event types it delivers, and one delivery.
pub trait Receiver: Send + Sync + 'static {
    /// The event types this receiver takes; others stay queued.
    fn kinds(&self) -> &'static [&'static str];

    /// Delivers one event (idempotently: the event may come again).
    fn deliver(&self, event: &outbox_event::Model) -> impl Future<Output = Outcome> + Send;
}

/// One service's relay.
pub struct Relay<R> {
    db: DatabaseConnection,
    service: &'static str,
    owner: String,
    receiver: Arc<R>,
    settings: RelaySettings,
    wake: Arc<Notify>,
}

impl<R: Receiver> Relay<R> {
    /// A relay of `service`'s events in `db`, woken early by `wake` (notify it after a commit
    /// that queued events).
    pub fn new(
        db: DatabaseConnection,
        service: &'static str,
        receiver: R,
        settings: RelaySettings,
        wake: Arc<Notify>,
    ) -> Self {
        Relay {
            db,
            service,
            owner: uuid::Uuid::now_v7().simple().to_string(),
            receiver: Arc::new(receiver),
            settings,
            wake,
        }
    }

    /// Runs until `shutdown`: delivers what is deliverable, then waits for the poll interval
    /// or a wake-up.
    pub fn spawn(self, shutdown: Shutdown) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let claimed = match self.run_once().await {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::warn!(service = self.service, error = %e, "outbox relay");
                        0
                    }
                };
                if claimed == self.settings.batch as usize {
                    if shutdown.is_triggered() {
                        return;
                    }
                    continue;
                }
                tokio::select! {
                    _ = tokio::time::sleep(self.settings.poll) => {}
                    _ = self.wake.notified() => {}
                    _ = shutdown.wait() => return,
                }
            }
        })
    }

    /// Claims one batch, delivers it (concurrently: the batch holds one event per aggregate)
    /// and settles each outcome. Returns how many events it claimed.
    pub async fn run_once(&self) -> Result<usize, DbErr> {
        let batch = self.claim().await?;
        let claimed = batch.len();
        let mut deliveries = JoinSet::new();
        for event in batch {
            let receiver = self.receiver.clone();
            let timeout = self.settings.timeout;
            // In the trace of the write that queued it, when traces are exported.
            let span = crate::trace_context::delivery_span(self.service, &event);
            let delivery = async move {
                let outcome = match tokio::time::timeout(timeout, receiver.deliver(&event)).await {
                    Ok(outcome) => outcome,
                    Err(_) => Outcome::Retry {
                        error: format!("no answer within {timeout:?}"),
                        after: None,
                    },
                };
                (event, outcome)
            };
            deliveries.spawn(tracing::Instrument::instrument(delivery, span));
        }
        let mut delivered = Vec::new();
        while let Some(done) = deliveries.join_next().await {
            let Ok((event, outcome)) = done else {
                // A receiver panicked: its lease expires and the event is tried again.
                continue;
            };
            match outcome {
                Outcome::Delivered => delivered.push(event.seq),
                failed => self.settle_failure(&event, failed).await?,
            }
        }
        if !delivered.is_empty() {
            outbox_event::Entity::update_many()
                .col_expr(C::State, Expr::value(State::Delivered as i32))
                .col_expr(C::DeliverTime, Expr::value(now_micros()))
                .col_expr(C::Attempts, Expr::col(C::Attempts).add(Expr::value(1)))
                .col_expr(C::LeaseOwner, Expr::value(""))
                .col_expr(C::LeaseUntil, Expr::value(0))
                .filter(C::Seq.is_in(delivered))
                .filter(C::LeaseOwner.eq(&self.owner))
                .exec(&self.db)
                .await?;
        }
        Ok(claimed)
    }

    /// Records a failed attempt: back to the queue after the delay, or parked.
    async fn settle_failure(
        &self,
        event: &outbox_event::Model,
        outcome: Outcome,
    ) -> Result<(), DbErr> {
        let attempts = event.attempts + 1;
        let now = now_micros();
        let (error, park, after) = match outcome {
            Outcome::Delivered => return Ok(()),
            Outcome::Park { error } => (error, true, None),
            Outcome::Retry { error, after } => {
                (error, attempts >= self.settings.max_attempts, after)
            }
        };
        let delay = after.unwrap_or_else(|| self.settings.backoff(attempts));
        if park {
            tracing::warn!(service = self.service, event = %event.id, kind = %event.kind, %error, "outbox event parked as a dead letter");
        } else {
            tracing::info!(service = self.service, event = %event.id, kind = %event.kind, %error, ?delay, "outbox delivery failed; retrying");
        }
        let mut update = outbox_event::Entity::update_many()
            .col_expr(C::Attempts, Expr::value(attempts))
            .col_expr(C::LastError, Expr::value(error))
            .col_expr(C::LeaseOwner, Expr::value(""))
            .col_expr(C::LeaseUntil, Expr::value(0));
        update = if park {
            update
                .col_expr(C::State, Expr::value(State::Dead as i32))
                .col_expr(C::DeadTime, Expr::value(now))
        } else {
            update.col_expr(
                C::NextAttemptTime,
                Expr::value(now.saturating_add(delay.as_micros() as i64)),
            )
        };
        update
            .filter(C::Seq.eq(event.seq))
            .filter(C::LeaseOwner.eq(&self.owner))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Leases the deliverable events: pending, due, not leased, of a type the receiver takes,
    /// and each the oldest undelivered event of its aggregate; oldest first.
    async fn claim(&self) -> Result<Vec<outbox_event::Model>, DbErr> {
        let kinds = self.receiver.kinds();
        if kinds.is_empty() {
            return Ok(Vec::new());
        }
        let backend = self.db.get_database_backend();
        let at = now_micros();
        // Numbered placeholders on both backends (`$n`, SQLite's `?n`), so one can be reused.
        let mut values: Vec<Value> = Vec::new();
        let mut p = |value: Value| {
            values.push(value);
            match backend {
                DbBackend::Postgres => format!("${}", values.len()),
                _ => format!("?{}", values.len()),
            }
        };
        let owner = p(self.owner.clone().into());
        let until = p(at
            .saturating_add(self.settings.lease().as_micros() as i64)
            .into());
        let service = p(self.service.into());
        let pending = p((State::Pending as i32).into());
        let now = p(at.into());
        let delivered = p((State::Delivered as i32).into());
        let kinds: Vec<String> = kinds.iter().map(|k| p((*k).into())).collect();
        let kinds = kinds.join(", ");
        let limit = p(i64::from(self.settings.batch).into());
        let lock = match backend {
            DbBackend::Postgres => " FOR UPDATE SKIP LOCKED",
            _ => "",
        };
        let sql = format!(
            "UPDATE outbox SET lease_owner = {owner}, lease_until = {until} \
             WHERE seq IN (SELECT o.seq FROM outbox o \
               WHERE o.service = {service} AND o.state = {pending} \
                 AND o.next_attempt_time <= {now} AND o.lease_until <= {now} \
                 AND o.kind IN ({kinds}) \
                 AND NOT EXISTS (SELECT 1 FROM outbox e \
                   WHERE e.service = o.service AND e.aggregate = o.aggregate \
                     AND e.kind IN ({kinds}) \
                     AND e.state <> {delivered} AND e.seq < o.seq) \
               ORDER BY o.seq LIMIT {limit}{lock}) \
             RETURNING *",
        );
        let mut rows = outbox_event::Entity::find()
            .from_raw_sql(Statement::from_sql_and_values(backend, sql, values))
            .all(&self.db)
            .await?;
        rows.sort_by_key(|e| e.seq);
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let s = RelaySettings {
            base_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(60),
            ..RelaySettings::default()
        };
        for attempts in 1..40 {
            let step = (Duration::from_secs(2) * 2u32.saturating_pow((attempts - 1) as u32))
                .min(Duration::from_secs(60));
            let d = s.backoff(attempts);
            assert!(
                d >= step / 2 && d <= step,
                "attempt {attempts}: {d:?} vs {step:?}"
            );
        }
    }

    #[test]
    fn statuses_map_to_outcomes() {
        assert!(matches!(
            Outcome::of_status(&Status::invalid_argument("bad")),
            Outcome::Park { .. }
        ));
        assert!(matches!(
            Outcome::of_status(&Status::unavailable("down")),
            Outcome::Retry { after: None, .. }
        ));
        let retry = Status::with_error_details(
            Code::ResourceExhausted,
            "slow down",
            tonic_types::ErrorDetails::with_retry_info(Some(Duration::from_secs(7))),
        );
        assert_eq!(
            Outcome::of_status(&retry),
            Outcome::Retry {
                error: "ResourceExhausted: slow down".into(),
                after: Some(Duration::from_secs(7))
            }
        );
    }
}
