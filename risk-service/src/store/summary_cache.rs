//! Reuse of `SummarizeRisks` figures. A dashboard or the gateway asks the same roll-up again and
//! again while risks change far more rarely, so the figures of a set of services are kept and
//! reused while they are still exact:
//!
//! - the summary version (the sum of `risk_summary_versions.v`, raised by triggers in the same
//!   transaction as every change of a risk, response, action item, exception, realisation or
//!   observation — see `migration_summary_versions.rs` and `migration_failures.rs`) is the
//!   one read *before* they were computed, on any replica; and
//! - the clock has not reached the next instant at which a time-driven figure changes: a
//!   review or an action item falling due, an acceptance or exception entering its last 30
//!   days or expiring, a realisation or failed control test leaving the 365-day window. That
//!   instant is read with the figures, from indexes.
//!
//! Callers that miss together wait for one computation of their services (single flight).

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex, PoisonError},
};

use assurance_runtime::ApiResult;
use sea_orm::{DbBackend, FromQueryResult, Statement, Value};

use super::{
    Store,
    summary::{EXPIRING_WITHIN_MICROS, FAILURES_WITHIN_MICROS, ServiceFigures},
};
use crate::domain::{
    exceptions::ExceptionStatus,
    governance::{ActionItemStatus, ApprovalState},
    reviews::ObservationEffect,
};

/// Distinct requests (sets of services and top N) whose figures are kept.
const ENTRIES: usize = 16;

/// What a request asks: its services and top N.
type Key = (BTreeSet<String>, usize);

/// A request's kept figures; its lock is held while they are computed.
type Slot = Arc<tokio::sync::Mutex<Option<Kept>>>;

/// Kept figures, one slot a request.
#[derive(Default)]
pub struct FiguresCache {
    slots: Mutex<Vec<(Key, Slot)>>,
}

struct Kept {
    version: i64,
    /// The figures stay exact while the clock is before this instant (microseconds).
    valid_until: i64,
    figures: Arc<ServiceFigures>,
}

impl FiguresCache {
    /// The slot of `key`, created (and the oldest slot dropped) when new.
    fn slot(&self, key: &Key) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, slot)) = slots.iter().find(|(k, _)| k == key) {
            return slot.clone();
        }
        if slots.len() >= ENTRIES {
            slots.remove(0);
        }
        let slot = Arc::new(tokio::sync::Mutex::new(None));
        slots.push((key.clone(), slot.clone()));
        slot
    }
}

#[derive(FromQueryResult)]
struct Version {
    v: Option<i64>,
}

#[derive(FromQueryResult)]
struct Boundary {
    t: Option<i64>,
}

impl Store {
    /// The figures of `services` at `now`, with up to `top_n` top risks each: computed, or
    /// kept figures that are still exact (see the module's docs).
    pub async fn cached_summary_figures(
        &self,
        services: &BTreeSet<String>,
        top_n: usize,
        now: i64,
    ) -> ApiResult<Arc<ServiceFigures>> {
        let slot = self.summaries.slot(&(services.clone(), top_n));
        let mut kept = slot.lock().await;
        let version = self.summary_version().await?;
        if let Some(k) = kept.as_ref()
            && k.version == version
            && now < k.valid_until
        {
            return Ok(k.figures.clone());
        }
        let figures = Arc::new(self.summary_figures(services, top_n, now).await?);
        let valid_until = self.next_time_boundary(now).await?;
        *kept = Some(Kept {
            version,
            valid_until,
            figures: figures.clone(),
        });
        Ok(figures)
    }

    /// The sum of the services' summary versions: it moves with every committed change of the
    /// rows the summary reads.
    async fn summary_version(&self) -> ApiResult<i64> {
        let conn = self.connection();
        let sql = "SELECT CAST(SUM(v) AS BIGINT) AS v FROM risk_summary_versions";
        Ok(
            Version::find_by_statement(Statement::from_string(conn.get_database_backend(), sql))
                .one(conn)
                .await?
                .and_then(|r| r.v)
                .unwrap_or(0),
        )
    }

    /// The first instant at or after `now` at which a time-driven figure may change: the
    /// earliest review or unfinished action item falling due, and acceptance or active
    /// exception expiring or entering its last 30 days, and realisation or failed control test
    /// leaving the window of [`FAILURES_WITHIN_MICROS`] (each an index seek). `i64::MAX` when
    /// none is ahead.
    async fn next_time_boundary(&self, now: i64) -> ApiResult<i64> {
        let conn = self.connection();
        let backend = conn.get_database_backend();
        // Numbered, as each value is used several times.
        let p = |i: usize| match backend {
            DbBackend::Postgres => format!("${i}"),
            _ => format!("?{i}"),
        };
        let approved = ApprovalState::Approved as i32;
        let active = ExceptionStatus::Active as i32;
        let mut parts = vec![format!(
            "SELECT MIN(next_review_time) AS t FROM risks WHERE next_review_time >= {}",
            p(1)
        )];
        for status in ActionItemStatus::ALL
            .iter()
            .filter(|s| !ActionItemStatus::FINISHED.contains(s))
        {
            parts.push(format!(
                "SELECT MIN(due_time) AS t FROM action_items WHERE status = {} AND due_time >= {}",
                *status as i32,
                p(1)
            ));
        }
        // An acceptance or exception changes figures when it enters its last 30 days (its
        // expiry 30 days after the instant) and when it expires.
        for (bound, shift) in [(1, 0), (2, EXPIRING_WITHIN_MICROS)] {
            parts.push(format!(
                "SELECT MIN(acceptance_expire_time) - {shift} AS t FROM risk_responses \
                 WHERE state = {approved} AND expired = false AND acceptance_expire_time >= {}",
                p(bound)
            ));
            parts.push(format!(
                "SELECT MIN(expire_time) - {shift} AS t FROM exceptions \
                 WHERE status = {active} AND expire_time >= {}",
                p(bound)
            ));
        }
        // A realisation or failed control test at `t` counts while now <= t + window: it leaves
        // at t + window + 1. Times past `latest` never leave (and would overflow).
        let leaves = FAILURES_WITHIN_MICROS + 1;
        let latest = i64::MAX - leaves;
        let failed = ObservationEffect::ControlFailed as i32;
        parts.push(format!(
            "SELECT MIN(realize_time) + {leaves} AS t FROM risk_realizations \
             WHERE realize_time >= {} AND realize_time <= {latest}",
            p(3)
        ));
        parts.push(format!(
            "SELECT MIN(observe_time) + {leaves} AS t FROM observations \
             WHERE effect = {failed} AND observe_time >= {} AND observe_time <= {latest}",
            p(3)
        ));
        let sql = format!(
            "SELECT MIN(t) AS t FROM ({}) AS boundaries",
            parts
                .iter()
                .map(|q| format!("SELECT t FROM ({q}) AS b"))
                .collect::<Vec<_>>()
                .join(" UNION ALL ")
        );
        let values = vec![
            Value::from(now),
            Value::from(now.saturating_add(EXPIRING_WITHIN_MICROS)),
            Value::from(now.saturating_sub(FAILURES_WITHIN_MICROS)),
        ];
        let boundary =
            Boundary::find_by_statement(Statement::from_sql_and_values(backend, sql, values))
                .one(conn)
                .await?
                .and_then(|r| r.t);
        Ok(boundary.unwrap_or(i64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_shared_by_equal_requests_and_bounded() {
        let cache = FiguresCache::default();
        let key = |s: &str, n| ([s.to_string()].into_iter().collect(), n);
        let a = cache.slot(&key("a", 10));
        assert!(Arc::ptr_eq(&a, &cache.slot(&key("a", 10))));
        assert!(!Arc::ptr_eq(&a, &cache.slot(&key("a", 5))));
        for i in 0..ENTRIES {
            cache.slot(&key(&format!("s{i}"), 1));
        }
        assert!(!Arc::ptr_eq(&a, &cache.slot(&key("a", 10))));
    }
}
