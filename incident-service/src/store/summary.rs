//! The incident half of the ERM posture: the figures of groups of services, computed in the
//! database per group over the group's own distinct incidents (never combined from other
//! groups' figures), with integer arithmetic only so SQLite and PostgreSQL agree.
//!
//! Every statement starts with the same membership prelude. The groups' services come in as a
//! `VALUES` list `gs(grp, c, service_id)` (bound parameters; `c` = 1 for a complement group),
//! the candidate incidents of the figure family as `f` (open incidents, or those declared in
//! the period), and `m(grp, …)` is each group's distinct incidents among them:
//! - a plain group: the incidents one of whose `incident_services` rows names one of its
//!   services, once each (`hits` groups by incident);
//! - a complement group: every candidate except those whose services all lie in the group's
//!   list — an incident is excluded when it has services (`sizes.n`) and every one of them is
//!   listed (`hits.n` equal to it); one with no service at all is always in.
//!
//! Three statements answer every group at once: open counts by phase and severity, the top open
//! incidents (ROW_NUMBER per group), and the period's KPIs — count, and for each duration its
//! count, integer sum and nearest-rank p90 (ROW_NUMBER and COUNT over the group's durations in
//! order; the row whose number is the rank).

use std::{
    collections::BTreeSet,
    fmt::Write,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use assurance_runtime::ApiResult;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, PaginatorTrait, QueryFilter,
    QueryResult, QuerySelect, Statement, Value,
};
use uuid::Uuid;

use super::{Store, entities::incident, metrics::Stats};
use crate::domain::{
    phase::{Classification, Phase},
    priority::Severity,
};

/// The percentile of the KPIs' `p90`, by the nearest-rank rule
/// ([`crate::domain::metrics::nearest_rank`]).
const PERCENTILE: i64 = 90;

/// Services bound per statement at most: SQLite allows 32766 parameters, PostgreSQL 65535.
/// Larger requests are answered a batch of whole groups at a time.
const MAX_BOUND_SERVICES: usize = 30_000;

/// A set of services summarised together.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Group {
    /// Service ids (not resource names).
    pub services: Vec<String>,
    /// The incidents affecting a service not in `services`, or no service at all.
    pub complement: bool,
}

/// What to summarise: groups, the KPI period `[start, end)` of declaration times, and how many
/// open incidents to list per group.
#[derive(Debug, Clone)]
pub struct SummaryQuery {
    pub groups: Vec<Group>,
    pub start: i64,
    pub end: i64,
    pub top_n: u32,
}

/// An open incident listed among a group's most severe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopIncident {
    pub id: Uuid,
    pub title: String,
    pub severity: i32,
    pub phase: i32,
    pub declare_time: i64,
}

/// The figures of one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSummary {
    /// Every phase but CLOSED, in order, with its count of open incidents.
    pub open_by_phase: Vec<(Phase, i64)>,
    /// Every severity, in order, with its count of open incidents.
    pub open_by_severity: Vec<(Severity, i64)>,
    /// Incidents declared in the period.
    pub kpi_count: i64,
    pub to_detect: Stats,
    pub to_contain: Stats,
    pub to_recover: Stats,
    /// Most severe first, then the earlier declared, then by id.
    pub top: Vec<TopIncident>,
}

impl Default for GroupSummary {
    fn default() -> Self {
        GroupSummary {
            open_by_phase: OPEN_PHASES.iter().map(|p| (*p, 0)).collect(),
            open_by_severity: Severity::ALL.iter().map(|s| (*s, 0)).collect(),
            kpi_count: 0,
            to_detect: Stats::default(),
            to_contain: Stats::default(),
            to_recover: Stats::default(),
            top: Vec::new(),
        }
    }
}

impl GroupSummary {
    pub fn open(&self) -> i64 {
        self.open_by_phase.iter().map(|(_, n)| n).sum()
    }
}

/// The phases of an open incident: all but CLOSED.
const OPEN_PHASES: [Phase; 5] = [
    Phase::DetectionAnalysis,
    Phase::Containment,
    Phase::Eradication,
    Phase::Recovery,
    Phase::PostIncident,
];

/// The KPI durations, `(end, start)`, numbered 1, 2, 3 in the statement.
const KPI_DURATIONS: [(&str, &str); 3] = [
    ("detect_time", "occur_time"),
    ("contain_time", "declare_time"),
    ("recover_time", "declare_time"),
];

/// A statement under construction: SQL text and its bound values, with the backend's
/// placeholders (`?` or `$n`).
struct Sql {
    backend: DbBackend,
    text: String,
    values: Vec<Value>,
}

impl Sql {
    fn new(backend: DbBackend) -> Self {
        Sql {
            backend,
            text: String::with_capacity(4096),
            values: Vec::new(),
        }
    }

    fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    fn bind(&mut self, value: impl Into<Value>) -> &mut Self {
        self.values.push(value.into());
        match self.backend {
            DbBackend::Postgres => {
                let _ = write!(self.text, "${}", self.values.len());
            }
            _ => self.text.push('?'),
        }
        self
    }

    fn statement(self) -> Statement {
        Statement::from_sql_and_values(self.backend, self.text, self.values)
    }
}

/// The groups of one statement: `(index in the request, group)`, services deduplicated.
type Batch<'a> = Vec<(usize, BTreeSet<&'a str>, bool)>;

/// Splits the groups into batches of at most [`MAX_BOUND_SERVICES`] services (a group is never
/// split; one holds at most 5000).
fn batches(groups: &[Group]) -> Vec<Batch<'_>> {
    let mut out: Vec<Batch<'_>> = Vec::new();
    let mut current: Batch<'_> = Vec::new();
    let mut bound = 0;
    for (n, g) in groups.iter().enumerate() {
        let services: BTreeSet<&str> = g.services.iter().map(String::as_str).collect();
        if bound + services.len() > MAX_BOUND_SERVICES && !current.is_empty() {
            out.push(std::mem::take(&mut current));
            bound = 0;
        }
        bound += services.len();
        current.push((n, services, g.complement));
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Writes `WITH … m(grp, <columns of f>)`: each group's distinct incidents among the
/// candidates `SELECT id, <columns> FROM incidents WHERE <filter>`. `filter` writes the
/// condition (binding what it needs). False when no group can have a member (only plain groups
/// without services): the caller then skips the statement.
fn membership(
    sql: &mut Sql,
    batch: &Batch<'_>,
    columns: &str,
    filter: impl FnOnce(&mut Sql),
) -> bool {
    let any_services = batch.iter().any(|(_, s, _)| !s.is_empty());
    let any_complement = batch.iter().any(|(_, _, c)| *c);
    if !any_services && !any_complement {
        return false;
    }
    sql.push("WITH ");
    if any_services {
        sql.push("gs(grp, c, service_id) AS (VALUES ");
        let mut first = true;
        for (grp, services, complement) in batch {
            for service in services {
                if !first {
                    sql.push(", ");
                }
                first = false;
                let _ = write!(sql.text, "({grp}, {}, ", u8::from(*complement));
                sql.bind(*service).push(")");
            }
        }
        sql.push("), ");
    }
    if any_complement {
        sql.push("cg(grp) AS (VALUES ");
        let complements: Vec<String> = batch
            .iter()
            .filter(|(_, _, c)| *c)
            .map(|(grp, _, _)| format!("({grp})"))
            .collect();
        sql.push(&complements.join(", ")).push("), ");
    }
    // MATERIALIZED: each is read more than once, and SQLite would otherwise inline it. The
    // CROSS JOINs fix SQLite's join order (it has no hash join): the candidates drive the
    // lookups of their services, and each group's services find theirs in `fs` through an
    // automatic index on `service_id`.
    let _ = write!(
        sql.text,
        "f AS MATERIALIZED (SELECT id, {columns} FROM incidents WHERE "
    );
    filter(sql);
    sql.push("), ");
    if any_services {
        sql.push(
            "fs AS MATERIALIZED (SELECT s.incident_id AS id, s.service_id \
             FROM f CROSS JOIN incident_services s WHERE s.incident_id = f.id), \
             hits AS MATERIALIZED (SELECT gs.grp, gs.c, fs.id, COUNT(*) AS n \
             FROM gs CROSS JOIN fs WHERE fs.service_id = gs.service_id \
             GROUP BY gs.grp, gs.c, fs.id), ",
        );
    }
    if any_services && any_complement {
        sql.push("sizes AS MATERIALIZED (SELECT id, COUNT(*) AS n FROM fs GROUP BY id), ");
    }
    sql.push("m AS MATERIALIZED (");
    if any_services {
        sql.push("SELECT h.grp, f.* FROM hits h JOIN f ON f.id = h.id WHERE h.c = 0");
    }
    if any_complement {
        if any_services {
            sql.push(
                " UNION ALL SELECT cg.grp, f.* FROM cg CROSS JOIN f \
                 LEFT JOIN hits h ON h.grp = cg.grp AND h.id = f.id \
                 LEFT JOIN sizes z ON z.id = f.id \
                 WHERE h.n IS NULL OR h.n < z.n",
            );
        } else {
            sql.push("SELECT cg.grp, f.* FROM cg CROSS JOIN f");
        }
    }
    sql.push(") ");
    true
}

/// `phase IN (…open phases…) AND classification <> NOT_AN_INCIDENT` (constants of ours).
fn open_filter(sql: &mut Sql) {
    let phases: Vec<String> = OPEN_PHASES
        .iter()
        .map(|p| (*p as i32).to_string())
        .collect();
    let _ = write!(
        sql.text,
        "phase IN ({}) AND classification <> {}",
        phases.join(", "),
        Classification::NotAnIncident as i32
    );
}

/// The group index of a result row (a position in the request).
fn group_of(row: &QueryResult, len: usize) -> ApiResult<usize> {
    let grp: i64 = row.try_get("", "grp")?;
    usize::try_from(grp)
        .ok()
        .filter(|g| *g < len)
        .ok_or_else(|| assurance_runtime::ApiError::Internal(format!("group {grp} out of range")))
}

/// How long a cached summary may be reused at most, even when nothing seems to have changed:
/// the bound on staleness should a replica with a lagging clock write an `update_time` below
/// the newest one.
const CACHE_TTL: Duration = Duration::from_secs(30);
/// Summaries kept (the gateway asks a handful of distinct roll-ups).
const CACHE_ENTRIES: usize = 8;

/// Recent answers of [`Store::summarize`]. A dashboard asks the same roll-up again and again
/// while incidents change far more rarely, so an answer is reused while (a) the newest
/// `update_time` of the incidents is the one it was computed at — every change of an incident,
/// its services included, sets it, on every replica — and (b) no incident was declared between
/// its period's bounds and the new ones (a moving "last 90 days" keeps the answer until an
/// incident crosses a bound), and (c) it is younger than [`CACHE_TTL`].
#[derive(Default)]
pub struct Cache {
    entries: Mutex<Vec<CacheEntry>>,
    /// Held while an answer is computed: callers that miss together wait for one computation
    /// and reuse its answer instead of each computing the same figures.
    computing: tokio::sync::Mutex<()>,
}

struct CacheEntry {
    groups: Vec<Group>,
    top_n: u32,
    start: i64,
    end: i64,
    version: Option<i64>,
    computed: Instant,
    figures: Arc<Vec<GroupSummary>>,
}

impl Cache {
    fn entries(&self) -> std::sync::MutexGuard<'_, Vec<CacheEntry>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The cached answer to `query` at `version`: its period and figures.
    fn find(
        &self,
        query: &SummaryQuery,
        version: Option<i64>,
    ) -> Option<(i64, i64, Arc<Vec<GroupSummary>>)> {
        self.entries()
            .iter()
            .find(|e| {
                e.version == version
                    && e.top_n == query.top_n
                    && e.computed.elapsed() < CACHE_TTL
                    && e.groups == query.groups
            })
            .map(|e| (e.start, e.end, e.figures.clone()))
    }

    fn keep(&self, entry: CacheEntry) {
        let mut entries = self.entries();
        entries.retain(|e| !(e.top_n == entry.top_n && e.groups == entry.groups));
        if entries.len() >= CACHE_ENTRIES {
            entries.remove(0);
        }
        entries.push(entry);
    }
}

/// Incidents declared in `[a, b)` or `[b, a)`.
fn declared_between(a: i64, b: i64) -> Option<Condition> {
    (a != b).then(|| {
        Condition::all()
            .add(incident::Column::DeclareTime.gte(a.min(b)))
            .add(incident::Column::DeclareTime.lt(a.max(b)))
    })
}

impl Store {
    /// The figures of each group of `query`, in its order: computed, or a cached answer that
    /// is still exact (see [`Cache`]).
    pub async fn summarize(&self, query: &SummaryQuery) -> ApiResult<Vec<GroupSummary>> {
        if let Some(figures) = self.reusable(query).await? {
            return Ok(figures);
        }
        let _computing = self.summaries.computing.lock().await;
        // Another caller may have computed it while this one waited.
        if let Some(figures) = self.reusable(query).await? {
            return Ok(figures);
        }
        let version = self.summary_version().await?;
        let figures = self.compute_summaries(query).await?;
        self.summaries.keep(CacheEntry {
            groups: query.groups.clone(),
            top_n: query.top_n,
            start: query.start,
            end: query.end,
            version,
            computed: Instant::now(),
            figures: Arc::new(figures.clone()),
        });
        Ok(figures)
    }

    /// The newest `update_time` of the incidents: every change of an incident moves it.
    async fn summary_version(&self) -> ApiResult<Option<i64>> {
        Ok(incident::Entity::find()
            .select_only()
            .column_as(incident::Column::UpdateTime.max(), "v")
            .into_tuple()
            .one(self.connection())
            .await?
            .flatten())
    }

    /// A kept answer to `query` that is still exact, if any.
    async fn reusable(&self, query: &SummaryQuery) -> ApiResult<Option<Vec<GroupSummary>>> {
        let version = self.summary_version().await?;
        let Some((start, end, figures)) = self.summaries.find(query, version) else {
            return Ok(None);
        };
        let moved: Vec<Condition> = [
            declared_between(start, query.start),
            declared_between(end, query.end),
        ]
        .into_iter()
        .flatten()
        .collect();
        let unchanged = moved.is_empty()
            || incident::Entity::find()
                .filter(moved.into_iter().fold(Condition::any(), Condition::add))
                .count(self.connection())
                .await?
                == 0;
        Ok(unchanged.then(|| figures.as_ref().clone()))
    }

    /// The figures of each group of `query`, computed.
    async fn compute_summaries(&self, query: &SummaryQuery) -> ApiResult<Vec<GroupSummary>> {
        let len = query.groups.len();
        let mut out = vec![GroupSummary::default(); len];
        for batch in batches(&query.groups) {
            let (open, top, kpis) = tokio::try_join!(
                self.open_counts(&batch),
                self.top_open(&batch, query.top_n),
                self.kpis(&batch, query.start, query.end),
            )?;
            for row in open {
                let g = group_of(&row, len)?;
                let phase: i64 = row.try_get("", "phase")?;
                let severity: i64 = row.try_get("", "severity")?;
                let n: i64 = row.try_get("", "n")?;
                if let Some(slot) = out[g]
                    .open_by_phase
                    .iter_mut()
                    .find(|(p, _)| *p as i64 == phase)
                {
                    slot.1 += n;
                }
                if let Some(slot) = out[g]
                    .open_by_severity
                    .iter_mut()
                    .find(|(s, _)| *s as i64 == severity)
                {
                    slot.1 += n;
                }
            }
            for row in top {
                let g = group_of(&row, len)?;
                let severity: i64 = row.try_get("", "severity")?;
                let phase: i64 = row.try_get("", "phase")?;
                out[g].top.push(TopIncident {
                    id: row.try_get("", "id")?,
                    title: row.try_get("", "title")?,
                    severity: i32::try_from(severity).unwrap_or_default(),
                    phase: i32::try_from(phase).unwrap_or_default(),
                    declare_time: row.try_get("", "declare_time")?,
                });
            }
            for row in kpis {
                let g = group_of(&row, len)?;
                let kind: i64 = row.try_get("", "kind")?;
                let n: i64 = row.try_get("", "n")?;
                // The sum in whole seconds and leftover microseconds, so it cannot overflow.
                let seconds: i64 = row.try_get("", "s")?;
                let micros: i64 = row.try_get("", "u")?;
                let p90: i64 = row.try_get("", "d")?;
                let stats = Stats {
                    count: n,
                    mean: super::metrics::mean_of(seconds, micros, n),
                    p90,
                };
                let figures = &mut out[g];
                match kind {
                    0 => figures.kpi_count = n,
                    1 => figures.to_detect = stats,
                    2 => figures.to_contain = stats,
                    3 => figures.to_recover = stats,
                    _ => {}
                }
            }
        }
        Ok(out)
    }

    async fn run(&self, sql: Sql) -> ApiResult<Vec<QueryResult>> {
        Ok(self.connection().query_all_raw(sql.statement()).await?)
    }

    /// Rows `(grp, phase, severity, n)`: each group's open incidents by phase and severity.
    async fn open_counts(&self, batch: &Batch<'_>) -> ApiResult<Vec<QueryResult>> {
        let mut sql = Sql::new(self.connection().get_database_backend());
        if !membership(&mut sql, batch, "phase, severity", open_filter) {
            return Ok(Vec::new());
        }
        sql.push(
            "SELECT CAST(grp AS BIGINT) AS grp, CAST(phase AS BIGINT) AS phase, \
             CAST(severity AS BIGINT) AS severity, CAST(COUNT(*) AS BIGINT) AS n \
             FROM m GROUP BY grp, phase, severity",
        );
        self.run(sql).await
    }

    /// Rows `(grp, id, title, severity, phase, declare_time)`: each group's `top_n` most severe
    /// open incidents, the earlier declared first among equals, in that order.
    async fn top_open(&self, batch: &Batch<'_>, top_n: u32) -> ApiResult<Vec<QueryResult>> {
        let mut sql = Sql::new(self.connection().get_database_backend());
        if top_n == 0 || !membership(&mut sql, batch, "severity, declare_time", open_filter) {
            return Ok(Vec::new());
        }
        sql.push(
            ", r AS (SELECT grp, id, ROW_NUMBER() OVER \
             (PARTITION BY grp ORDER BY severity DESC, declare_time, id) AS rn FROM m) \
             SELECT CAST(r.grp AS BIGINT) AS grp, i.id, i.title, \
             CAST(i.severity AS BIGINT) AS severity, CAST(i.phase AS BIGINT) AS phase, \
             i.declare_time FROM r JOIN incidents i ON i.id = r.id WHERE r.rn <= ",
        );
        sql.bind(i64::from(top_n)).push(" ORDER BY r.grp, r.rn");
        self.run(sql).await
    }

    /// Rows `(grp, kind, n, s, u, d)`: kind 0 is the count of incidents declared in the period;
    /// kinds 1–3 the durations of [`KPI_DURATIONS`], each with its count `n`, sum (`s` whole
    /// seconds plus `u` microseconds) and
    /// nearest-rank p90 `d` (groups without such a duration have no row).
    async fn kpis(&self, batch: &Batch<'_>, start: i64, end: i64) -> ApiResult<Vec<QueryResult>> {
        let mut sql = Sql::new(self.connection().get_database_backend());
        let columns: Vec<String> = KPI_DURATIONS
            .iter()
            .enumerate()
            .map(|(k, (to, from))| {
                // A duration two times within 0001-01-01..9999-12-31 cannot make (a row stored
                // before the timestamp bounds) is left out rather than break the sums.
                let span = assurance_runtime::time::MAX_SPAN_MICROS;
                format!(
                    "CASE WHEN {to} - {from} BETWEEN -{span} AND {span} THEN {to} - {from} END \
                     AS d{}",
                    k + 1
                )
            })
            .collect();
        let present = membership(&mut sql, batch, &columns.join(", "), |sql| {
            sql.push("declare_time >= ")
                .bind(start)
                .push(" AND declare_time < ")
                .bind(end);
            let _ = write!(
                sql.text,
                " AND classification <> {}",
                Classification::NotAnIncident as i32
            );
        });
        if !present {
            return Ok(Vec::new());
        }
        let durations: Vec<String> = (1..=KPI_DURATIONS.len())
            .map(|k| format!("SELECT grp, {k} AS kind, d{k} AS d FROM m WHERE d{k} IS NOT NULL"))
            .collect();
        let _ = write!(
            sql.text,
            ", k AS ({}), \
             ranked AS (SELECT grp, kind, d, ROW_NUMBER() OVER w AS rn, \
             COUNT(*) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS n, \
             SUM(d / 1000000) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS s, \
             SUM(d % 1000000) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS u \
             FROM k WINDOW w AS (PARTITION BY grp, kind ORDER BY d)) \
             SELECT CAST(grp AS BIGINT) AS grp, CAST(kind AS BIGINT) AS kind, \
             CAST(n AS BIGINT) AS n, CAST(s AS BIGINT) AS s, CAST(u AS BIGINT) AS u, \
             CAST(d AS BIGINT) AS d \
             FROM ranked WHERE rn = ({PERCENTILE} * n + 99) / 100 \
             UNION ALL SELECT CAST(grp AS BIGINT), CAST(0 AS BIGINT), \
             CAST(COUNT(*) AS BIGINT), CAST(0 AS BIGINT), CAST(0 AS BIGINT), CAST(0 AS BIGINT) \
             FROM m GROUP BY grp",
            durations.join(" UNION ALL ")
        );
        self.run(sql).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::metrics::nearest_rank;

    /// The SQL's rank `(p * n + 99) / 100` is `nearest_rank` for every `n ≥ 1`.
    #[test]
    fn sql_rank_is_the_nearest_rank() {
        for n in 1..=1000 {
            assert_eq!((PERCENTILE * n + 99) / 100, nearest_rank(PERCENTILE, n));
        }
    }

    #[test]
    fn batches_keep_groups_whole() {
        let group = |n: usize| Group {
            services: (0..n).map(|i| format!("s{i}")).collect(),
            complement: false,
        };
        let groups = vec![group(5000); 13];
        let sizes: Vec<usize> = batches(&groups).iter().map(Vec::len).collect();
        assert_eq!(sizes, [6, 6, 1]);
        assert_eq!(batches(&[group(0)]).len(), 1);
    }
}
