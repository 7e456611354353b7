//! The rows of `ListReportRisks`: every open risk of some services, one compact row each with
//! its latest response and action plan progress, in keyset pages ordered by
//! (service, create time, id) — the order of the `risks_by_service` index.

use assurance_runtime::ApiResult;
use sea_orm::{FromQueryResult, Statement, Value};
use uuid::Uuid;

use super::{Store, summary::placeholders};
use crate::domain::{governance::ActionItemStatus, status::RiskStatus};

const CLOSED: i32 = RiskStatus::Closed as i32;
const DONE: i32 = ActionItemStatus::Done as i32;
const WONT_DO: i32 = ActionItemStatus::WontDo as i32;

/// Where a page starts: after this (service, create time, id).
pub type After = (String, i64, Uuid);

/// One open risk as a report freezes it.
#[derive(Debug, Clone, FromQueryResult)]
pub struct ReportRow {
    pub id: Uuid,
    pub title: String,
    pub service_id: String,
    pub owner: String,
    pub status: i32,
    pub assessed: bool,
    pub impact: i32,
    pub likelihood: i32,
    pub score: i32,
    pub severity: i32,
    pub strategy: i32,
    pub policy_id: String,
    pub assess_time: Option<i64>,
    pub response_decision: Option<i32>,
    pub response_state: Option<i32>,
    pub treated: bool,
    pub action_items: i64,
    pub action_items_closed: i64,
    pub action_items_overdue: i64,
    pub next_review_time: Option<i64>,
    pub create_time: i64,
}

impl Store {
    /// Up to `limit` open risks of `services` after `after`, in (service, create time, id)
    /// order; "overdue" is judged at `now`.
    pub async fn report_rows(
        &self,
        services: &[String],
        after: Option<&After>,
        limit: u64,
        now: i64,
    ) -> ApiResult<Vec<ReportRow>> {
        if services.is_empty() {
            return Ok(Vec::new());
        }
        let conn = self.connection();
        let backend = conn.get_database_backend();
        // Values in the order their placeholders appear (SQLite's `?` are positional): now,
        // the services, the keyset.
        let mut values = vec![Value::from(now)];
        let now_1 = placeholders(backend, 1, 1);
        let services_in = placeholders(backend, 2, services.len());
        values.extend(services.iter().map(|s| Value::from(s.as_str())));
        let next = |v: Value, values: &mut Vec<Value>| {
            values.push(v);
            placeholders(backend, values.len(), 1)
        };
        let keyset = match after {
            None => String::new(),
            Some((service, time, id)) => {
                let s1 = next(Value::from(service.as_str()), &mut values);
                let s2 = next(Value::from(service.as_str()), &mut values);
                let t1 = next(Value::from(*time), &mut values);
                let t2 = next(Value::from(*time), &mut values);
                let i = next(Value::from(*id), &mut values);
                format!(
                    " AND (r.service_id > {s1} OR (r.service_id = {s2} AND \
                     (r.create_time > {t1} OR (r.create_time = {t2} AND r.id > {i}))))"
                )
            }
        };
        let latest = |column: &str| {
            format!(
                "(SELECT rr.{column} FROM risk_responses rr WHERE rr.risk_id = r.id \
                 ORDER BY rr.create_time DESC, rr.id DESC LIMIT 1)"
            )
        };
        let sql = format!(
            "SELECT r.id AS id, r.title AS title, r.service_id AS service_id, r.owner AS owner, \
             r.status AS status, \
             CASE WHEN r.latest_assessment_id IS NULL THEN false ELSE true END AS assessed, \
             r.impact AS impact, r.likelihood AS likelihood, r.score AS score, \
             r.severity AS severity, r.strategy AS strategy, r.policy_id AS policy_id, \
             r.assess_time AS assess_time, {decision} AS response_decision, \
             {state} AS response_state, \
             CASE WHEN r.latest_assessment_id IS NOT NULL AND r.approved_severity >= r.severity \
             THEN true ELSE false END AS treated, \
             (SELECT COUNT(*) FROM action_items ai WHERE ai.risk_id = r.id) AS action_items, \
             (SELECT COUNT(*) FROM action_items ai WHERE ai.risk_id = r.id \
              AND ai.status IN ({DONE}, {WONT_DO})) AS action_items_closed, \
             (SELECT COUNT(*) FROM action_items ai WHERE ai.risk_id = r.id \
              AND ai.status NOT IN ({DONE}, {WONT_DO}) AND ai.due_time < {now_1}) \
              AS action_items_overdue, \
             r.next_review_time AS next_review_time, r.create_time AS create_time \
             FROM risks r WHERE r.service_id IN ({services}) AND r.status <> {CLOSED}{keyset} \
             ORDER BY r.service_id, r.create_time, r.id LIMIT {limit}",
            decision = latest("decision"),
            state = latest("state"),
            services = services_in,
        );
        Ok(
            ReportRow::find_by_statement(Statement::from_sql_and_values(backend, sql, values))
                .all(conn)
                .await?,
        )
    }
}
