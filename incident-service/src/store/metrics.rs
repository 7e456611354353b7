//! Incident metrics computed by the database: counts with `GROUP BY`, and for each duration
//! its count, integer sum (mean = sum / count) and 90th percentile by the nearest-rank rule
//! (`ORDER BY … LIMIT 1 OFFSET ⌈0.9·n⌉−1`) — integer arithmetic only, so SQLite and PostgreSQL
//! give identical answers.

use assurance_runtime::ApiResult;
use std::collections::BTreeMap;

use sea_orm::{Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect, sea_query::Expr};

use super::{Store, entities::incident, migration::DURATIONS};

/// Count, mean and nearest-rank p90 of a duration, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub count: i64,
    pub mean: i64,
    pub p90: i64,
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

/// The rank of the nearest-rank percentile `p` (in %) of `n` values, from 1.
pub fn nearest_rank(p: i64, n: i64) -> i64 {
    Ord::max((p * n + 99) / 100, 1)
}

impl Store {
    pub async fn metrics(&self, scope: Condition) -> ApiResult<Metrics> {
        let db = self.connection();
        let counts = incident::Entity::find()
            .select_only()
            .column(incident::Column::Phase)
            .column(incident::Column::Severity)
            .column_as(Expr::cust("COUNT(*)"), "n")
            .filter(scope.clone())
            .group_by(incident::Column::Phase)
            .group_by(incident::Column::Severity)
            .into_tuple::<(i32, i32, i64)>()
            .all(db)
            .await?;
        let mut by_phase: BTreeMap<i32, i64> = BTreeMap::new();
        let mut by_severity: BTreeMap<i32, i64> = BTreeMap::new();
        for (phase, severity, n) in &counts {
            *by_phase.entry(*phase).or_default() += n;
            *by_severity.entry(*severity).or_default() += n;
        }
        let total = counts.iter().map(|(_, _, n)| n).sum();
        let closed = by_phase
            .get(&(crate::domain::phase::Phase::Closed as i32))
            .copied()
            .unwrap_or(0);

        // Every duration's count and sum in one pass.
        let mut select = incident::Entity::find().select_only().filter(scope.clone());
        for (n, (end, start)) in DURATIONS.iter().enumerate() {
            select = select
                .column_as(
                    Expr::cust(format!(
                        "CAST(SUM(CASE WHEN {end} IS NOT NULL AND {start} IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT)"
                    )),
                    format!("c{n}"),
                )
                .column_as(Expr::cust(format!("CAST(SUM({end} - {start}) AS BIGINT)")), format!("s{n}"));
        }
        type Sums = (
            Option<i64>,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            Option<i64>,
        );
        let sums: Option<Sums> = select.into_tuple().one(db).await?;
        let sums: [(i64, i64); 5] = match sums {
            None => [(0, 0); 5],
            Some((c0, s0, c1, s1, c2, s2, c3, s3, c4, s4)) => {
                [(c0, s0), (c1, s1), (c2, s2), (c3, s3), (c4, s4)]
                    .map(|(c, s)| (c.unwrap_or(0), s.unwrap_or(0)))
            }
        };
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

    /// Stats of `end - start` given its count and sum; the p90 walks the duration's index.
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
        let present = Condition::all()
            .add(scope.clone())
            .add(Expr::cust(format!("{end} IS NOT NULL")))
            .add(Expr::cust(format!("{start} IS NOT NULL")));
        let duration = || Expr::cust(format!("({end} - {start})"));
        let p90: Option<i64> = incident::Entity::find()
            .select_only()
            .column_as(duration(), "d")
            .filter(present)
            .order_by_asc(duration())
            .offset(u64::try_from(nearest_rank(90, count) - 1).unwrap_or(0))
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

#[cfg(test)]
mod tests {
    use super::nearest_rank;

    #[test]
    fn nearest_rank_rule() {
        assert_eq!(nearest_rank(90, 10), 9);
        assert_eq!(nearest_rank(90, 11), 10);
        assert_eq!(nearest_rank(90, 1), 1);
        assert_eq!(nearest_rank(50, 4), 2);
        assert_eq!(nearest_rank(100, 7), 7);
    }
}
