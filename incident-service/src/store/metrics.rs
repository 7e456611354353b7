//! Incident metrics computed by the database: counts with `GROUP BY`, and for each duration
//! its count, integer sum (mean = sum / count) and 90th percentile by the nearest-rank rule
//! ([`nearest_rank`]; one step of `ORDER BY … LIMIT 1 OFFSET` on an expression index, from its
//! nearer end) — integer arithmetic only, so SQLite and PostgreSQL give identical answers.

use assurance_runtime::ApiResult;
use std::collections::BTreeMap;

use sea_orm::{
    ColumnTrait, Condition, EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QuerySelect,
    sea_query::Expr,
};

use super::{Store, entities::incident, migration::DURATIONS, query::affecting_service};
use crate::domain::{metrics::nearest_rank, priority::Severity};

/// Count, mean and nearest-rank p90 of a duration, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub count: i64,
    pub mean: i64,
    pub p90: i64,
}

/// Which incidents the metrics cover: all, or those affecting a service, of a severity, or
/// declared in `[declared_from, declared_before)`.
#[derive(Debug, Default, Clone)]
pub struct MetricsScope {
    /// A service id (not its resource name).
    pub service: Option<String>,
    pub severity: Option<Severity>,
    pub declared_from: Option<i64>,
    pub declared_before: Option<i64>,
}

impl MetricsScope {
    fn condition(&self) -> Condition {
        let mut scope = Condition::all();
        if let Some(service) = &self.service {
            scope = scope.add(affecting_service(service));
        }
        if let Some(severity) = self.severity {
            scope = scope.add(incident::Column::Severity.eq(severity as i32));
        }
        if let Some(t) = self.declared_from {
            scope = scope.add(incident::Column::DeclareTime.gte(t));
        }
        if let Some(t) = self.declared_before {
            scope = scope.add(incident::Column::DeclareTime.lt(t));
        }
        scope
    }
}

#[derive(Debug, Default)]
pub struct Metrics {
    pub total: i64,
    pub open: i64,
    pub by_phase: Vec<(i32, i64)>,
    pub by_severity: Vec<(i32, i64)>,
    pub to_detect: Stats,
    pub to_declare: Stats,
    pub to_contain: Stats,
    pub to_recover: Stats,
    pub total_time: Stats,
}

/// One (phase, severity) group of the aggregate pass: its count, and each duration's count
/// (`c`) and sum in the order of `DURATIONS`. A sum comes in two parts that cannot overflow,
/// whole seconds (`s`) and the microseconds left over (`u`): sum = s × 10⁶ + u.
#[derive(FromQueryResult)]
struct Group {
    phase: i32,
    severity: i32,
    n: i64,
    c0: i64,
    s0: i64,
    u0: i64,
    c1: i64,
    s1: i64,
    u1: i64,
    c2: i64,
    s2: i64,
    u2: i64,
    c3: i64,
    s3: i64,
    u3: i64,
    c4: i64,
    s4: i64,
    u4: i64,
}

/// The duration `end - start` as SQL, or NULL when it is not one that two times within
/// 0001-01-01..9999-12-31 can make: a row stored with an impossible time (before the
/// timestamp bounds existed) is left out of the aggregates instead of overflowing them. The
/// test is on the indexed expression itself, so the p90 walk still reads only the index.
fn duration_sql(end: &str, start: &str) -> String {
    let span = assurance_runtime::time::MAX_SPAN_MICROS;
    format!("(CASE WHEN ({end} - {start}) BETWEEN -{span} AND {span} THEN ({end} - {start}) END)")
}

/// The sum of `sum` whole seconds and `micros` microseconds, as a mean over `count`, in
/// microseconds (saturating: a mean cannot exceed the widest span anyway).
pub(super) fn mean_of(seconds: i64, micros: i64, count: i64) -> i64 {
    if count == 0 {
        return 0;
    }
    let total = i128::from(seconds) * 1_000_000 + i128::from(micros);
    i64::try_from(total / i128::from(count)).unwrap_or(if total < 0 { i64::MIN } else { i64::MAX })
}

impl Store {
    pub async fn metrics(&self, scope: &MetricsScope) -> ApiResult<Metrics> {
        let scope = scope.condition();
        let db = self.connection();
        // One pass: per (phase, severity) group its count and every duration's count and sum;
        // sums add up across groups.
        let mut select = incident::Entity::find()
            .select_only()
            .column(incident::Column::Phase)
            .column(incident::Column::Severity)
            .column_as(Expr::cust("CAST(COUNT(*) AS BIGINT)"), "n")
            .filter(scope.clone())
            .group_by(incident::Column::Phase)
            .group_by(incident::Column::Severity);
        for (n, (end, start)) in DURATIONS.iter().enumerate() {
            let d = duration_sql(end, start);
            select = select
                .column_as(
                    Expr::cust(format!("CAST(COUNT({d}) AS BIGINT)")),
                    format!("c{n}"),
                )
                .column_as(
                    Expr::cust(format!("CAST(COALESCE(SUM({d} / 1000000), 0) AS BIGINT)")),
                    format!("s{n}"),
                )
                .column_as(
                    Expr::cust(format!("CAST(COALESCE(SUM({d} % 1000000), 0) AS BIGINT)")),
                    format!("u{n}"),
                );
        }
        let rows: Vec<Group> = select.into_model().all(db).await?;
        let mut by_phase: BTreeMap<i32, i64> = BTreeMap::new();
        let mut by_severity: BTreeMap<i32, i64> = BTreeMap::new();
        let mut sums = [(0i64, 0i64, 0i64); 5];
        let mut total = 0;
        for g in rows {
            *by_phase.entry(g.phase).or_default() += g.n;
            *by_severity.entry(g.severity).or_default() += g.n;
            total += g.n;
            let group = [
                (g.c0, g.s0, g.u0),
                (g.c1, g.s1, g.u1),
                (g.c2, g.s2, g.u2),
                (g.c3, g.s3, g.u3),
                (g.c4, g.s4, g.u4),
            ];
            for (sum, (c, s, u)) in sums.iter_mut().zip(group) {
                sum.0 += c;
                sum.1 = sum.1.saturating_add(s);
                sum.2 = sum.2.saturating_add(u);
            }
        }
        let closed = by_phase
            .get(&(crate::domain::phase::Phase::Closed as i32))
            .copied()
            .unwrap_or(0);
        let mut stats = [Stats::default(); 5];
        for (n, (end, start)) in DURATIONS.iter().enumerate() {
            stats[n] = self.stats(&scope, end, start, sums[n]).await?;
        }
        Ok(Metrics {
            total,
            open: total - closed,
            by_phase: by_phase.into_iter().collect(),
            by_severity: by_severity.into_iter().collect(),
            to_detect: stats[0],
            to_declare: stats[1],
            to_contain: stats[2],
            to_recover: stats[3],
            total_time: stats[4],
        })
    }

    /// Stats of `end - start` given its count and sum. The p90 walks the duration's expression
    /// index from whichever end is nearer its rank (for p90, from the top: a tenth of the
    /// entries); the range term (which also drops NULLs) is on the indexed expression itself so that the walk
    /// skips missing durations without reading their rows.
    async fn stats(
        &self,
        scope: &Condition,
        end: &str,
        start: &str,
        (count, seconds, micros): (i64, i64, i64),
    ) -> ApiResult<Stats> {
        if count == 0 {
            return Ok(Stats::default());
        }
        let duration = || Expr::cust(format!("({end} - {start})"));
        let span = assurance_runtime::time::MAX_SPAN_MICROS;
        let present = Condition::all().add(scope.clone()).add(Expr::cust(format!(
            "({end} - {start}) BETWEEN -{span} AND {span}"
        )));
        let rank = nearest_rank(90, count);
        let (order, offset) = if rank * 2 > count {
            (sea_orm::Order::Desc, count - rank)
        } else {
            (sea_orm::Order::Asc, rank - 1)
        };
        let p90: Option<i64> = incident::Entity::find()
            .select_only()
            .column_as(duration(), "d")
            .filter(present)
            .order_by(duration(), order)
            .offset(u64::try_from(offset).unwrap_or(0))
            .limit(1)
            .into_tuple()
            .one(self.connection())
            .await?;
        Ok(Stats {
            count,
            mean: mean_of(seconds, micros, count),
            p90: p90.unwrap_or(0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::mean_of;

    #[test]
    fn means_from_seconds_and_microseconds_do_not_overflow() {
        assert_eq!(mean_of(0, 0, 0), 0);
        assert_eq!(mean_of(3, 500_000, 2), 1_750_000);
        assert_eq!(mean_of(-3, -500_000, 2), -1_750_000);
        // A thousand durations of the widest span sum far beyond i64 in microseconds.
        let span = assurance_runtime::time::MAX_SPAN_MICROS;
        let n = 1000;
        assert_eq!(
            mean_of((span / 1_000_000) * n, (span % 1_000_000) * n, n),
            span
        );
    }
}
