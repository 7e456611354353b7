//! The figures of `SummarizeRisks`, per service, computed in the database: counts of open
//! risks from the trigger-kept counters (`risk_posture_counts`, see `migration_summary.rs`),
//! each service's top risks through an index, and the time-based figures as range scans on
//! indexed time columns grouped by service. Groups are summed by the caller: a risk belongs to
//! one service, so a group's counts are sums of its services' (exceptions are returned as
//! pairs, so that a group counts each once).

use std::collections::{BTreeSet, HashMap};

use assurance_runtime::{ApiResult, db};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, FromQueryResult, Statement, Value};
use uuid::Uuid;

use super::Store;
use crate::domain::{
    effectiveness::WINDOW_MICROS,
    exceptions::ExceptionStatus,
    governance::{ActionItemStatus, ApprovalState},
    reviews::ObservationEffect,
    status::{Decision, RiskStatus},
};

// The dimensions of `risk_posture_counts`, each counting open risks of a service by `bucket`.
/// By status (bucket: the `RiskStatus` number).
pub(super) const STATUS: i32 = 1;
/// Not yet assessed (bucket 0).
pub(super) const UNASSESSED: i32 = 2;
/// Assessed, by the severity of the latest assessment.
pub(super) const SEVERITY: i32 = 3;
/// Assessed and treated or accepted (an approved, unexpired response proposed at the risk's
/// current severity or above), by severity.
pub(super) const TREATED: i32 = 4;
/// Assessed, by strategy.
pub(super) const STRATEGY: i32 = 5;
/// Assessed, by heat-map cell: impact × 10 + likelihood.
pub(super) const HEAT: i32 = 6;

pub(super) const CLOSED: i32 = RiskStatus::Closed as i32;
const APPROVED: i32 = ApprovalState::Approved as i32;
const ACCEPT: i32 = Decision::Accept as i32;
const ACTIVE: i32 = ExceptionStatus::Active as i32;
const CONTROL_FAILED: i32 = ObservationEffect::ControlFailed as i32;

/// Acceptances and exceptions expiring within this many microseconds are "expiring".
pub const EXPIRING_WITHIN_MICROS: i64 = 30 * 24 * 3600 * 1_000_000;

/// Realisations and failed control tests count while their time is at or after now minus this
/// many microseconds (365 days): the window of `GetResponseEffectiveness`'s proposal.
pub const FAILURES_WITHIN_MICROS: i64 = WINDOW_MICROS;

/// Services per statement (bound values stay far below every backend's limit; SQLite allows
/// 500 terms in a compound SELECT).
const SERVICES_PER_STATEMENT: usize = 400;
const TOP_SERVICES_PER_STATEMENT: usize = 200;

/// The highest severity at proposal of the approved, unexpired responses of the risk
/// `risk_id` (an SQL expression), 0 when none: what `risks.approved_severity` holds.
pub(super) fn treated_severity(risk_id: &str) -> String {
    format!(
        "COALESCE((SELECT MAX(rr.severity) FROM risk_responses rr \
         WHERE rr.risk_id = {risk_id} AND rr.state = {APPROVED} AND rr.expired = false), 0)"
    )
}

/// Recomputes `risks.approved_severity` and every counter from the rows (inside the caller's
/// transaction). Returns the number of counter rows.
pub(super) async fn recount(conn: &impl ConnectionTrait) -> Result<u64, DbErr> {
    let treated = treated_severity("risks.id");
    conn.execute_unprepared(&format!(
        "UPDATE risks SET approved_severity = {treated} WHERE approved_severity <> {treated}"
    ))
    .await?;
    conn.execute_unprepared("DELETE FROM risk_posture_counts")
        .await?;
    let open = format!("status <> {CLOSED}");
    let assessed = format!("{open} AND latest_assessment_id IS NOT NULL");
    let inserted = conn
        .execute_unprepared(&format!(
            "INSERT INTO risk_posture_counts (service_id, dimension, bucket, n) \
             SELECT service_id, {STATUS}, status, COUNT(*) FROM risks WHERE {open} \
             GROUP BY service_id, status \
             UNION ALL SELECT service_id, {UNASSESSED}, 0, COUNT(*) FROM risks \
             WHERE {open} AND latest_assessment_id IS NULL GROUP BY service_id \
             UNION ALL SELECT service_id, {SEVERITY}, severity, COUNT(*) FROM risks \
             WHERE {assessed} GROUP BY service_id, severity \
             UNION ALL SELECT service_id, {TREATED}, severity, COUNT(*) FROM risks \
             WHERE {assessed} AND approved_severity >= severity GROUP BY service_id, severity \
             UNION ALL SELECT service_id, {STRATEGY}, strategy, COUNT(*) FROM risks \
             WHERE {assessed} GROUP BY service_id, strategy \
             UNION ALL SELECT service_id, {HEAT}, impact * 10 + likelihood, COUNT(*) FROM risks \
             WHERE {assessed} GROUP BY service_id, impact, likelihood"
        ))
        .await?;
    Ok(inserted.rows_affected())
}

/// The counts of one service (or, summed, of a group), by the numbers the database stores.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RiskCounts {
    /// Open risks by `RiskStatus` number (index 0 and 6 stay 0).
    pub by_status: [i64; 7],
    pub unassessed: i64,
    /// Assessed open risks by `Severity` number (index 0 unused).
    pub by_severity: [i64; 5],
    /// Of those, treated or accepted.
    pub treated: [i64; 5],
    /// By `ResponseStrategy` number (index 0 unused).
    pub by_strategy: [i64; 5],
    /// `[impact - 1][likelihood - 1]`.
    pub heat: [[i64; 5]; 5],
    pub overdue_reviews: i64,
    pub overdue_action_items: i64,
    pub expiring_acceptances: i64,
    /// Realisations (risk and incident) of open risks within [`FAILURES_WITHIN_MICROS`].
    pub realizations: i64,
    /// `CONTROL_FAILED` observations of open risks within [`FAILURES_WITHIN_MICROS`].
    pub failed_control_tests: i64,
    /// Open risks with a failure at or after the approval of their current response.
    pub risks_with_failed_response: i64,
}

impl RiskCounts {
    pub fn open(&self) -> i64 {
        self.by_status.iter().sum()
    }

    /// Adds `other` (a service of the same group).
    pub fn add(&mut self, other: &RiskCounts) {
        fn sum<const N: usize>(a: &mut [i64; N], b: &[i64; N]) {
            a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
        }
        sum(&mut self.by_status, &other.by_status);
        self.unassessed += other.unassessed;
        sum(&mut self.by_severity, &other.by_severity);
        sum(&mut self.treated, &other.treated);
        sum(&mut self.by_strategy, &other.by_strategy);
        for (row, other_row) in self.heat.iter_mut().zip(&other.heat) {
            sum(row, other_row);
        }
        self.overdue_reviews += other.overdue_reviews;
        self.overdue_action_items += other.overdue_action_items;
        self.expiring_acceptances += other.expiring_acceptances;
        self.realizations += other.realizations;
        self.failed_control_tests += other.failed_control_tests;
        self.risks_with_failed_response += other.risks_with_failed_response;
    }

    /// Counts `n` into `dimension`/`bucket`; buckets out of range (never written) are ignored.
    fn count(&mut self, dimension: i32, bucket: i32, n: i64) {
        let slot = |len: usize| usize::try_from(bucket).ok().filter(|b| *b < len);
        let cell = match dimension {
            STATUS => slot(7).map(|b| &mut self.by_status[b]),
            UNASSESSED => Some(&mut self.unassessed),
            SEVERITY => slot(5).map(|b| &mut self.by_severity[b]),
            TREATED => slot(5).map(|b| &mut self.treated[b]),
            STRATEGY => slot(5).map(|b| &mut self.by_strategy[b]),
            HEAT => {
                let (impact, likelihood) = (bucket / 10 - 1, bucket % 10 - 1);
                match (usize::try_from(impact), usize::try_from(likelihood)) {
                    (Ok(i), Ok(l)) if i < 5 && l < 5 => Some(&mut self.heat[i][l]),
                    _ => None,
                }
            }
            _ => None,
        };
        if let Some(cell) = cell {
            *cell += n;
        }
    }
}

/// One of a service's top risks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopRisk {
    pub id: Uuid,
    pub title: String,
    pub service_id: String,
    pub owner: String,
    pub score: i32,
    pub severity: i32,
    pub status: i32,
    pub create_time: i64,
}

impl TopRisk {
    /// The order of top risks: highest score first, then the older, then by id.
    pub fn rank(&self) -> (std::cmp::Reverse<i32>, i64, Uuid) {
        (std::cmp::Reverse(self.score), self.create_time, self.id)
    }
}

/// The figures of the requested services.
#[derive(Debug, Default)]
pub struct ServiceFigures {
    /// Services without a counted risk are absent.
    pub counts: HashMap<String, RiskCounts>,
    /// Each service's top risks, best first.
    pub top: HashMap<String, Vec<TopRisk>>,
    /// (exception, service) of ACTIVE exceptions expiring within 30 days, for the requested
    /// services.
    pub expiring_exceptions: Vec<(Uuid, String)>,
}

/// One packed top risk of `service_id` (see `summary_figures`).
fn top_risk(service_id: &str, record: &str) -> Option<TopRisk> {
    let mut f = record.splitn(7, '\u{1f}');
    let id = Uuid::parse_str(f.next()?).ok()?;
    let score = f.next()?.parse().ok()?;
    let severity = f.next()?.parse().ok()?;
    let status = f.next()?.parse().ok()?;
    let create_time = f.next()?.parse().ok()?;
    let owner = f.next()?.to_string();
    let title = f.next()?.to_string();
    Some(TopRisk {
        id,
        title,
        service_id: service_id.to_string(),
        owner,
        score,
        severity,
        status,
        create_time,
    })
}

/// A service and its figures packed in one text (one row a service: every row costs a
/// hand-off from the driver's worker thread).
#[derive(FromQueryResult)]
struct PackedCounters {
    service_id: String,
    packed: String,
}

#[derive(FromQueryResult)]
struct ServiceCount {
    service_id: String,
    n: i64,
}

/// Response failures of a service; `None` counts those of closed risks.
#[derive(FromQueryResult)]
struct FailureCount {
    service_id: Option<String>,
    n: i64,
}

#[derive(FromQueryResult)]
struct SeverityCount {
    service_id: String,
    severity: i32,
    n: i64,
}

#[derive(FromQueryResult)]
struct ExceptionService {
    exception_id: Uuid,
    service_id: String,
}

/// `?, ?, …` (SQLite) or `$first, $first+1, …` (PostgreSQL): `count` placeholders.
pub(super) fn placeholders(backend: DbBackend, first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| match backend {
            DbBackend::Postgres => format!("${i}"),
            _ => "?".to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn statement(backend: DbBackend, sql: String, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(backend, sql, values)
}

impl Store {
    /// Recomputes the posture counters (and each risk's treated flag) from the rows in one
    /// transaction: for a database seeded around the triggers, and as a repair.
    pub async fn refresh_summary_counters(&self) -> Result<(), DbErr> {
        let tx = db::begin_write(self.connection()).await?;
        recount(&tx).await?;
        tx.commit().await
    }

    /// The figures of `services` (ids) at `now`, with up to `top_n` top risks each.
    pub async fn summary_figures(
        &self,
        services: &BTreeSet<String>,
        top_n: usize,
        now: i64,
    ) -> ApiResult<ServiceFigures> {
        let conn = self.connection();
        let backend = conn.get_database_backend();
        let mut figures = ServiceFigures::default();
        if services.is_empty() {
            return Ok(figures);
        }
        let ids: Vec<&String> = services.iter().collect();
        // One row a service, its counters packed as `dimension:bucket:n,…`: every row costs
        // a hand-off from the driver's worker thread, several times what the database spends
        // packing it.
        let concat = match backend {
            DbBackend::Postgres => "string_agg",
            _ => "group_concat",
        };
        for chunk in ids.chunks(SERVICES_PER_STATEMENT) {
            let sql = format!(
                "SELECT service_id, {concat}(CAST(dimension AS TEXT) || ':' || \
                 CAST(bucket AS TEXT) || ':' || CAST(n AS TEXT), ',') AS packed \
                 FROM risk_posture_counts WHERE service_id IN ({}) AND n <> 0 \
                 GROUP BY service_id",
                placeholders(backend, 1, chunk.len())
            );
            let values = chunk.iter().map(|s| Value::from(s.as_str())).collect();
            for row in PackedCounters::find_by_statement(statement(backend, sql, values))
                .all(conn)
                .await?
            {
                let counts = figures.counts.entry(row.service_id).or_default();
                for counter in row.packed.split(',') {
                    let mut parts = counter.split(':').map(str::parse::<i32>);
                    if let (Some(Ok(dimension)), Some(Ok(bucket))) = (parts.next(), parts.next())
                        && let Some(Ok(n)) = counter.rsplit(':').next().map(str::parse::<i64>)
                    {
                        counts.count(dimension, bucket, n);
                    }
                }
            }
        }
        self.time_figures(services, now, &mut figures).await?;
        self.failure_figures(services, now, &mut figures).await?;
        if top_n > 0 {
            // Packed too, one row a service: `id␟score␟severity␟status␟create_time␟owner␟title`
            // records joined by ␞ (titles and owners hold no control characters; the title
            // comes last, so it is read whole).
            let (id, chr) = match backend {
                DbBackend::Postgres => ("CAST(id AS TEXT)", "chr"),
                _ => ("hex(id)", "char"),
            };
            let record = format!(
                "{id} || {chr}(31) || CAST(score AS TEXT) || {chr}(31) || \
                 CAST(severity AS TEXT) || {chr}(31) || CAST(status AS TEXT) || {chr}(31) || \
                 CAST(create_time AS TEXT) || {chr}(31) || owner || {chr}(31) || title"
            );
            for chunk in ids.chunks(TOP_SERVICES_PER_STATEMENT) {
                let union = (0..chunk.len())
                    .map(|i| {
                        format!(
                            "SELECT * FROM (SELECT service_id, {record} AS record FROM risks \
                             WHERE service_id = {} AND status <> {CLOSED} AND score > 0 \
                             ORDER BY score DESC, create_time, id LIMIT {top_n}) AS t{i}",
                            placeholders(backend, i + 1, 1)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" UNION ALL ");
                let sql = format!(
                    "SELECT service_id, {concat}(record, {chr}(30)) AS packed \
                     FROM ({union}) AS top GROUP BY service_id"
                );
                let values = chunk.iter().map(|s| Value::from(s.as_str())).collect();
                for row in PackedCounters::find_by_statement(statement(backend, sql, values))
                    .all(conn)
                    .await?
                {
                    let list = figures.top.entry(row.service_id.clone()).or_default();
                    for record in row.packed.split('\u{1e}') {
                        match top_risk(&row.service_id, record) {
                            Some(risk) => list.push(risk),
                            None => tracing::warn!(
                                service = %row.service_id,
                                "a top risk could not be read back; it is left out"
                            ),
                        }
                    }
                }
            }
            for list in figures.top.values_mut() {
                list.sort_by_key(TopRisk::rank);
            }
        }
        Ok(figures)
    }

    /// Overdue reviews and action items, expiring acceptances and exceptions, and treated
    /// risks whose acceptance lapsed before the expiry job saw it: range scans over indexed
    /// times, grouped by service (only services with something to count come back).
    async fn time_figures(
        &self,
        services: &BTreeSet<String>,
        now: i64,
        figures: &mut ServiceFigures,
    ) -> ApiResult<()> {
        let conn = self.connection();
        let backend = conn.get_database_backend();
        let p = |i: usize| placeholders(backend, i, 1);
        let horizon = now.saturating_add(EXPIRING_WITHIN_MICROS);
        let unfinished = ActionItemStatus::ALL
            .iter()
            .filter(|s| !ActionItemStatus::FINISHED.contains(s))
            .map(|s| (*s as i32).to_string())
            .collect::<Vec<_>>()
            .join(", ");
        // SQLite, without statistics, would rather walk an index in service order than
        // range-scan the review times.
        let by_review_due = match backend {
            DbBackend::Sqlite => "INDEXED BY risks_by_review_due",
            _ => "",
        };
        let per_service = [
            (
                format!(
                    "SELECT service_id, COUNT(*) AS n FROM risks {by_review_due} \
                     WHERE next_review_time < {} AND status <> {CLOSED} GROUP BY service_id",
                    p(1)
                ),
                vec![Value::from(now)],
            ),
            (
                format!(
                    "SELECT r.service_id AS service_id, COUNT(*) AS n FROM action_items ai \
                     JOIN risks r ON r.id = ai.risk_id \
                     WHERE ai.status IN ({unfinished}) AND ai.due_time < {} \
                     AND r.status <> {CLOSED} GROUP BY r.service_id",
                    p(1)
                ),
                vec![Value::from(now)],
            ),
            (
                format!(
                    "SELECT r.service_id AS service_id, COUNT(*) AS n FROM risk_responses rr \
                     JOIN risks r ON r.id = rr.risk_id \
                     WHERE rr.state = {APPROVED} AND rr.expired = false \
                     AND rr.acceptance_expire_time > {} AND rr.acceptance_expire_time <= {} \
                     AND rr.decision = {ACCEPT} AND r.status <> {CLOSED} GROUP BY r.service_id",
                    p(1),
                    p(2)
                ),
                vec![Value::from(now), Value::from(horizon)],
            ),
        ];
        for (which, (sql, values)) in per_service.into_iter().enumerate() {
            for row in ServiceCount::find_by_statement(statement(backend, sql, values))
                .all(conn)
                .await?
            {
                if !services.contains(&row.service_id) {
                    continue;
                }
                let counts = figures.counts.entry(row.service_id).or_default();
                match which {
                    0 => counts.overdue_reviews += row.n,
                    1 => counts.overdue_action_items += row.n,
                    _ => counts.expiring_acceptances += row.n,
                }
            }
        }
        // An acceptance past its expiry is no longer a treatment, even before the expiry job
        // marks it `expired` (the counters only see the mark).
        let lapsed = format!(
            "SELECT r.service_id AS service_id, r.severity AS severity, \
             COUNT(DISTINCT r.id) AS n FROM risk_responses rr \
             JOIN risks r ON r.id = rr.risk_id \
             WHERE rr.state = {APPROVED} AND rr.expired = false \
             AND rr.acceptance_expire_time <= {} \
             AND r.status <> {CLOSED} AND r.latest_assessment_id IS NOT NULL \
             AND r.approved_severity >= r.severity \
             AND NOT EXISTS (SELECT 1 FROM risk_responses o WHERE o.risk_id = r.id \
             AND o.state = {APPROVED} AND o.expired = false AND o.severity >= r.severity \
             AND (o.acceptance_expire_time IS NULL OR o.acceptance_expire_time > {})) \
             GROUP BY r.service_id, r.severity",
            p(1),
            p(2)
        );
        for row in SeverityCount::find_by_statement(statement(
            backend,
            lapsed,
            vec![Value::from(now), Value::from(now)],
        ))
        .all(conn)
        .await?
        {
            if let (true, Some(counts), Ok(severity)) = (
                services.contains(&row.service_id),
                figures.counts.get_mut(&row.service_id),
                usize::try_from(row.severity),
            ) && let Some(treated) = counts.treated.get_mut(severity)
            {
                *treated -= row.n;
            }
        }
        let exceptions = format!(
            "SELECT es.exception_id AS exception_id, es.service_id AS service_id \
             FROM exceptions e JOIN exception_services es ON es.exception_id = e.id \
             WHERE e.status = {ACTIVE} AND e.expire_time > {} AND e.expire_time <= {}",
            p(1),
            p(2)
        );
        figures.expiring_exceptions = ExceptionService::find_by_statement(statement(
            backend,
            exceptions,
            vec![Value::from(now), Value::from(horizon)],
        ))
        .all(conn)
        .await?
        .into_iter()
        .filter(|e| services.contains(&e.service_id))
        .map(|e| (e.exception_id, e.service_id))
        .collect();
        Ok(())
    }

    /// Response effectiveness per service: realisations and failed control tests of open
    /// risks within the window (range scans of indexed times, migration 0014), and open risks
    /// whose current response — the latest approved, by approval time, as in
    /// `GetResponseEffectiveness` — has a failure at or after its approval. Each starts from
    /// the failures, far fewer than risks, and looks their risks and responses up by key.
    async fn failure_figures(
        &self,
        services: &BTreeSet<String>,
        now: i64,
        figures: &mut ServiceFigures,
    ) -> ApiResult<()> {
        let conn = self.connection();
        let backend = conn.get_database_backend();
        let p = |i: usize| placeholders(backend, i, 1);
        let since = now.saturating_sub(FAILURES_WITHIN_MICROS);
        // Failures are few next to risks: each looks its open risk's service up by key (a
        // join would rather scan every risk); closed risks' failures fall in the NULL group.
        let per_service = |risk_ids: String| {
            format!(
                "SELECT service_id, COUNT(*) AS n FROM (SELECT (SELECT r.service_id FROM risks r \
                 WHERE r.id = x.risk_id AND r.status <> {CLOSED}) AS service_id \
                 FROM ({risk_ids}) AS x) AS s GROUP BY service_id"
            )
        };
        let approved = |when: &str| {
            format!(
                "SELECT 1 FROM risk_responses rr WHERE rr.risk_id = u.risk_id \
                 AND rr.state = {APPROVED} AND rr.decide_time {when}"
            )
        };
        let queries = [
            (
                per_service(format!(
                    "SELECT f.risk_id FROM risk_realizations f WHERE f.realize_time >= {}",
                    p(1)
                )),
                vec![Value::from(since)],
            ),
            (
                per_service(format!(
                    "SELECT o.risk_id FROM observations o \
                     WHERE o.effect = {CONTROL_FAILED} AND o.observe_time >= {}",
                    p(1)
                )),
                vec![Value::from(since)],
            ),
            (
                // Risks with a failure at or after the approval of their current response: an
                // approval at or before the failure, and none after it.
                per_service(format!(
                    "SELECT u.risk_id FROM (SELECT risk_id, realize_time AS t \
                     FROM risk_realizations UNION ALL SELECT risk_id, observe_time AS t \
                     FROM observations WHERE effect = {CONTROL_FAILED}) AS u \
                     WHERE EXISTS ({}) AND NOT EXISTS ({}) GROUP BY u.risk_id",
                    approved("<= u.t"),
                    approved("> u.t")
                )),
                Vec::new(),
            ),
        ];
        for (which, (sql, values)) in queries.into_iter().enumerate() {
            for row in FailureCount::find_by_statement(statement(backend, sql, values))
                .all(conn)
                .await?
            {
                let Some(service_id) = row.service_id.filter(|s| services.contains(s)) else {
                    continue;
                };
                let counts = figures.counts.entry(service_id).or_default();
                match which {
                    0 => counts.realizations += row.n,
                    1 => counts.failed_control_tests += row.n,
                    _ => counts.risks_with_failed_response += row.n,
                }
            }
        }
        Ok(())
    }
}
