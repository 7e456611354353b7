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
/// (`c`) and sum (`s`) in the order of `DURATIONS`.
#[derive(FromQueryResult)]
struct Group {
    phase: i32,
    severity: i32,
    n: i64,
    c0: i64,
    s0: i64,
    c1: i64,
    s1: i64,
    c2: i64,
    s2: i64,
    c3: i64,
    s3: i64,
    c4: i64,
    s4: i64,
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
            select = select
                .column_as(
                    Expr::cust(format!("CAST(COUNT({end} - {start}) AS BIGINT)")),
                    format!("c{n}"),
                )
                .column_as(
                    Expr::cust(format!("CAST(COALESCE(SUM({end} - {start}), 0) AS BIGINT)")),
                    format!("s{n}"),
                );
        }
        let rows: Vec<Group> = select.into_model().all(db).await?;
        let mut by_phase: BTreeMap<i32, i64> = BTreeMap::new();
        let mut by_severity: BTreeMap<i32, i64> = BTreeMap::new();
        let mut sums = [(0i64, 0i64); 5];
        let mut total = 0;
        for g in rows {
            *by_phase.entry(g.phase).or_default() += g.n;
            *by_severity.entry(g.severity).or_default() += g.n;
            total += g.n;
            let group = [
                (g.c0, g.s0),
                (g.c1, g.s1),
                (g.c2, g.s2),
                (g.c3, g.s3),
                (g.c4, g.s4),
            ];
            for (sum, (c, s)) in sums.iter_mut().zip(group) {
                sum.0 += c;
                sum.1 += s;
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
    /// entries); the `IS NOT NULL` term is on the indexed expression itself so that the walk
    /// skips missing durations without reading their rows.
    async fn stats(
        &self,
        scope: &Condition,
        end: &str,
        start: &str,
        (count, sum): (i64, i64),
    ) -> ApiResult<Stats> {
        if count == 0 {
            return Ok(Stats::default());
        }
        let duration = || Expr::cust(format!("({end} - {start})"));
        let present = Condition::all()
            .add(scope.clone())
            .add(Expr::cust(format!("({end} - {start}) IS NOT NULL")));
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
            mean: sum / count,
            p90: p90.unwrap_or(0),
        })
    }
}
