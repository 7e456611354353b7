//! Incident metrics computed by the database: counts with `GROUP BY`, and for each duration
//! its count, integer sum (mean = sum / count) and 90th percentile by the nearest-rank rule
//! (`ORDER BY … LIMIT 1 OFFSET ⌈0.9·n⌉−1`) — integer arithmetic only, so SQLite and PostgreSQL
//! give identical answers.

use assurance_runtime::ApiResult;
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait},
};

use super::{Store, entities::incident};

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
        let counts = |col: incident::Column| {
            incident::Entity::find()
                .select_only()
                .column(col)
                .column_as(Expr::cust("COUNT(*)"), "n")
                .filter(scope.clone())
                .group_by(col)
                .order_by_asc(col)
                .into_tuple::<(i32, i64)>()
                .all(db)
        };
        let by_phase = counts(incident::Column::Phase).await?;
        let by_severity = counts(incident::Column::Severity).await?;
        let total = by_phase.iter().map(|(_, n)| n).sum();
        let closed = by_phase
            .iter()
            .filter(|(p, _)| *p == crate::domain::phase::Phase::Closed as i32)
            .map(|(_, n)| n)
            .sum::<i64>();
        Ok(Metrics {
            total,
            open: total - closed,
            by_phase,
            by_severity,
            to_detect: self
                .stats(
                    &scope,
                    incident::Column::DetectTime,
                    incident::Column::OccurTime,
                )
                .await?,
            to_declare: self
                .stats(
                    &scope,
                    incident::Column::DeclareTime,
                    incident::Column::DetectTime,
                )
                .await?,
            to_contain: self
                .stats(
                    &scope,
                    incident::Column::ContainTime,
                    incident::Column::DeclareTime,
                )
                .await?,
            to_recover: self
                .stats(
                    &scope,
                    incident::Column::RecoverTime,
                    incident::Column::DeclareTime,
                )
                .await?,
            total_time: self
                .stats(
                    &scope,
                    incident::Column::CloseTime,
                    incident::Column::DeclareTime,
                )
                .await?,
        })
    }

    /// Stats of `end - start` over the incidents in scope that have both.
    async fn stats(
        &self,
        scope: &Condition,
        end: incident::Column,
        start: incident::Column,
    ) -> ApiResult<Stats> {
        let db = self.connection();
        let present = Condition::all()
            .add(scope.clone())
            .add(end.is_not_null())
            .add(start.is_not_null());
        let duration = || Expr::col(end).sub(Expr::col(start));
        let (count, sum): (i64, Option<i64>) = incident::Entity::find()
            .select_only()
            .column_as(Expr::cust("COUNT(*)"), "n")
            .column_as(duration().sum().cast_as("BIGINT"), "total")
            .filter(present.clone())
            .into_tuple()
            .one(db)
            .await?
            .unwrap_or((0, None));
        if count == 0 {
            return Ok(Stats::default());
        }
        let p90: Option<i64> = incident::Entity::find()
            .select_only()
            .column_as(duration(), "d")
            .filter(present)
            .order_by_asc(duration())
            .offset(u64::try_from(nearest_rank(90, count) - 1).unwrap_or(0))
            .limit(1)
            .into_tuple()
            .one(db)
            .await?;
        Ok(Stats {
            count,
            mean: sum.unwrap_or(0) / count,
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
