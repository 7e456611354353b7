//! Measures `SummarizeRisks` as the gateway's enterprise posture asks it: 221 groups (200
//! services, 20 business units, the enterprise) over a seeded register, in-process (no
//! transport), with one plain `GROUP BY` in the same run as the baseline.
//!
//! ```sh
//! cargo run --release -p risk-service --example risk_summary_bench -- [RISKS] [DATABASE_URL]
//! ```
//! Defaults: 100,000 risks in a fresh SQLite file. A `postgres://` URL must name an empty
//! database.

use std::{collections::BTreeMap, sync::Arc, time::Instant};

use assurance_proto::risk::v1::{self as pb, risk_summary_service_server::RiskSummaryService};
use assurance_runtime::{
    auth::{Caller, Principal, Role, Roles},
    time::{Clock, now_micros},
};
use risk_service::{
    api::summary::SummaryApi,
    store::{
        Store, StoreOptions,
        effectiveness::realization,
        entities::{action_item, action_plan, business_unit, risk, risk_response, service},
        reviews::observation,
    },
};
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, EntityTrait, IntoActiveModel, Statement, TransactionTrait,
};
use uuid::Uuid;

const BUSINESS_UNITS: usize = 20;
const SERVICES: usize = 200;
const DAY: i64 = 86_400 * 1_000_000;
const CALLS: usize = 300;

/// A small deterministic generator (xorshift), so runs seed the same register.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

async fn insert_all<A: ActiveModelTrait + Clone + Send>(
    tx: &sea_orm::DatabaseTransaction,
    rows: Vec<A>,
) -> Result<(), String> {
    for part in rows.chunks(500) {
        A::Entity::insert_many(part.to_vec())
            .exec_without_returning(tx)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn svc(i: usize) -> String {
    format!("svc-{i:03}")
}

async fn seed(store: &Store, count: usize) -> Result<(), String> {
    let db = store.connection();
    let now = now_micros();
    let bus = (0..BUSINESS_UNITS).map(|i| {
        business_unit::Model {
            id: format!("bu-{i:02}"),
            display_name: format!("BU {i}"),
            description: String::new(),
            owner: "exec@example.com".into(),
            version: 1,
            create_time: now,
            update_time: now,
            delete_time: None,
        }
        .into_active_model()
    });
    business_unit::Entity::insert_many(bus)
        .exec_without_returning(db)
        .await
        .map_err(|e| e.to_string())?;
    let services = (0..SERVICES).map(|i| {
        service::Model {
            id: svc(i),
            business_unit_id: format!("bu-{:02}", i % BUSINESS_UNITS),
            display_name: format!("Service {i}"),
            description: String::new(),
            owner: "manager@example.com".into(),
            version: 1,
            create_time: now,
            update_time: now,
            delete_time: None,
        }
        .into_active_model()
    });
    service::Entity::insert_many(services)
        .exec_without_returning(db)
        .await
        .map_err(|e| e.to_string())?;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // Response failures from a generator of their own (the register stays the same): one
    // risk in 20 realised and one in 20 with a failed control test, over the last two years.
    let mut failing = Rng(0x2545_f491_4f6c_dd1d);
    let mut first = 0;
    while first < count {
        let last = (first + 10_000).min(count);
        let tx = db.begin().await.map_err(|e| e.to_string())?;
        let (mut risks, mut responses, mut plans, mut items) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut realized, mut failed) = (Vec::new(), Vec::new());
        for n in first..last {
            let id = Uuid::now_v7();
            let s = rng.below(SERVICES);
            let assessed = rng.below(10) < 8;
            let (impact, likelihood, deficiency) =
                (rng.below(5) + 1, rng.below(5) + 1, rng.below(5) + 1);
            let score = (impact * likelihood * deficiency) as i32;
            let severity = match score {
                0..=10 => 1,
                11..=30 => 2,
                31..=60 => 3,
                _ => 4,
            };
            let status = match (assessed, rng.below(20)) {
                (false, _) => 1,
                (true, 0) => 6,
                (true, 1..=3) => 4,
                (true, 4) => 5,
                (true, _) => 2,
            };
            let t = now - 400 * DAY + n as i64;
            risks.push(
                risk::Model {
                    id,
                    title: format!("Seeded risk {n}"),
                    description: String::new(),
                    service_id: svc(s),
                    business_unit_id: format!("bu-{:02}", s % BUSINESS_UNITS),
                    category: "access-control".into(),
                    threat: 2,
                    identification_source: 2,
                    source_reference: String::new(),
                    owner: format!("owner-{}@example.com", n % 300),
                    status,
                    labels: "{}".into(),
                    close_reason: String::new(),
                    close_time: None,
                    version: 2,
                    create_time: t,
                    update_time: t,
                    latest_assessment_id: assessed.then(Uuid::now_v7),
                    impact: if assessed { impact as i32 } else { 0 },
                    likelihood: if assessed { likelihood as i32 } else { 0 },
                    control_deficiency: if assessed { deficiency as i32 } else { 0 },
                    exposure: if assessed {
                        (impact * likelihood) as i32
                    } else {
                        0
                    },
                    score: if assessed { score } else { 0 },
                    severity: if assessed { severity } else { 0 },
                    strategy: if assessed { rng.below(4) as i32 + 1 } else { 0 },
                    risk_level: 0,
                    methodology: 1,
                    policy_id: "seed".into(),
                    assessment_rationale: String::new(),
                    assessor: "seed@example.com".into(),
                    assess_time: assessed.then_some(t),
                    // 3% are past their review.
                    next_review_time: assessed
                        .then(|| now + if rng.below(100) < 3 { -DAY } else { 30 * DAY }),
                    control_deficiency_derived: false,
                }
                .into_active_model(),
            );
            if status == 4 || status == 5 {
                let accept = status == 5;
                responses.push(
                    risk_response::Model {
                        id: Uuid::now_v7(),
                        risk_id: id,
                        decision: if accept { 4 } else { 1 },
                        strategy: 1,
                        strategy_override: 0,
                        override_justification: String::new(),
                        rationale: "seeded".into(),
                        acceptance_expire_time: accept
                            .then(|| now + (rng.below(120) as i64 + 1) * DAY),
                        state: 2,
                        severity,
                        required_role: "trust_team".into(),
                        proposer: "owner@example.com".into(),
                        decided_by: "exec@example.com".into(),
                        decision_comment: String::new(),
                        expired: false,
                        create_time: t,
                        decide_time: Some(t),
                    }
                    .into_active_model(),
                );
            }
            if failing.below(20) == 0 {
                realized.push(
                    realization::Model {
                        risk_id: id,
                        incident: format!("incidents/{}", Uuid::now_v7()),
                        incident_severity: failing.below(4) as i32 + 1,
                        realize_time: now - failing.below(730) as i64 * DAY,
                        recorder: "relay".into(),
                        create_time: now,
                    }
                    .into_active_model(),
                );
            }
            if failing.below(20) == 0 {
                failed.push(
                    observation::Model {
                        id: Uuid::now_v7(),
                        risk_id: id,
                        source: 5,
                        summary: "control test failed".into(),
                        effect: 4,
                        reference: String::new(),
                        observer: "tester@example.com".into(),
                        observe_time: now - failing.below(730) as i64 * DAY,
                        reassessment_triggered: false,
                        control_id: "seeded".into(),
                    }
                    .into_active_model(),
                );
            }
            if status == 4 {
                plans.push(
                    action_plan::Model {
                        risk_id: id,
                        title: "plan".into(),
                        owner: "ops@example.com".into(),
                        create_time: t,
                        version: 1,
                        update_time: t,
                    }
                    .into_active_model(),
                );
                items.push(
                    action_item::Model {
                        id: Uuid::now_v7(),
                        risk_id: id,
                        service_id: svc(s),
                        business_unit_id: format!("bu-{:02}", s % BUSINESS_UNITS),
                        title: "fix".into(),
                        description: String::new(),
                        owner: "ops@example.com".into(),
                        due_time: now + (rng.below(60) as i64 - 30) * DAY,
                        status: rng.below(5) as i32 + 1,
                        tracker_system: String::new(),
                        tracker_key: String::new(),
                        tracker_url: String::new(),
                        sync_state: 1,
                        sync_time: None,
                        version: 1,
                        create_time: t,
                        update_time: t,
                    }
                    .into_active_model(),
                );
            }
        }
        insert_all(&tx, risks).await?;
        insert_all(&tx, responses).await?;
        insert_all(&tx, plans).await?;
        insert_all(&tx, items).await?;
        insert_all(&tx, realized).await?;
        insert_all(&tx, failed).await?;
        tx.commit().await.map_err(|e| e.to_string())?;
        first = last;
    }
    Ok(())
}

fn enterprise_request() -> pb::SummarizeRisksRequest {
    let mut groups: Vec<pb::RiskGroup> = (0..SERVICES)
        .map(|i| pb::RiskGroup {
            key: format!("services/{}", svc(i)),
            services: vec![format!("services/{}", svc(i))],
        })
        .collect();
    let mut units: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for i in 0..SERVICES {
        units
            .entry(i % BUSINESS_UNITS)
            .or_default()
            .push(format!("services/{}", svc(i)));
    }
    groups.extend(units.into_iter().map(|(bu, services)| pb::RiskGroup {
        key: format!("businessUnits/bu-{bu:02}"),
        services,
    }));
    groups.push(pb::RiskGroup {
        key: "enterprise".into(),
        services: (0..SERVICES)
            .map(|i| format!("services/{}", svc(i)))
            .collect(),
    });
    pb::SummarizeRisksRequest {
        groups,
        top_n: 10,
        default_appetite: Some(pb::AppetiteThresholds {
            appetite: 2,
            tolerance: 3,
        }),
        ..Default::default()
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let count: usize = args
        .get(1)
        .map(|a| {
            a.parse()
                .map_err(|_| format!("RISKS must be a number: {a}"))
        })
        .transpose()?
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let url = args
        .get(2)
        .cloned()
        .unwrap_or_else(|| assurance_runtime::db::sqlite_url(&dir.path().join("risk.db")));
    let store = Store::open(&url, &StoreOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    seed(&store, count).await?;
    let seeded = started.elapsed().as_secs_f64();
    println!(
        "seeded {count} risks with their triggers in {seeded:.1} s ({:.0} risks/s)",
        count as f64 / seeded
    );
    let started = Instant::now();
    store
        .refresh_summary_counters()
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "refresh_summary_counters: {:.0} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
    let api = SummaryApi::new(store.clone(), Clock::default());
    let caller = Caller {
        principal: Arc::new(Principal {
            subject: "gateway".into(),
            roles: Roles::of(&[Role::System]),
            services: None,
        }),
        on_behalf_of: Some("bench@example.com".into()),
        rpc: "/assurance.risk.v1.RiskSummaryService/SummarizeRisks".into(),
        request_id: String::new(),
    };
    let body = enterprise_request();
    let conn = store.connection();
    let baseline_sql = "SELECT service_id, severity, COUNT(*) FROM risks WHERE status <> 6 \
                        GROUP BY service_id, severity";
    let (mut summary, mut baseline) = (Vec::new(), Vec::new());
    for _ in 0..CALLS {
        let mut request = tonic::Request::new(body.clone());
        request.extensions_mut().insert(caller.clone());
        let t = Instant::now();
        let answer = api
            .summarize_risks(request)
            .await
            .map_err(|e| e.to_string())?;
        summary.push(t.elapsed().as_secs_f64() * 1000.0);
        if answer.get_ref().summaries.len() != 221 {
            return Err("expected 221 summaries".into());
        }
        if baseline.len() < CALLS / 10 {
            let t = Instant::now();
            conn.query_all_raw(Statement::from_string(
                conn.get_database_backend(),
                baseline_sql,
            ))
            .await
            .map_err(|e| e.to_string())?;
            baseline.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    // Where the time goes: the two bulk reads alone, through the same connection pool.
    let services: Vec<String> = (0..SERVICES).map(|i| format!("'{}'", svc(i))).collect();
    let counters_sql = format!(
        "SELECT service_id, dimension, bucket, n FROM risk_posture_counts \
         WHERE service_id IN ({}) AND n <> 0",
        services.join(", ")
    );
    let top_sql = services
        .iter()
        .enumerate()
        .map(|(i, s)| {
            format!(
                "SELECT * FROM (SELECT id, title, service_id, owner, score, severity, status, \
                 create_time FROM risks WHERE service_id = {s} AND status <> 6 AND score > 0 \
                 ORDER BY score DESC, create_time, id LIMIT 10) AS t{i}"
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    for (what, sql) in [("counters", counters_sql), ("top risks", top_sql)] {
        let mut times = Vec::new();
        let mut rows = 0;
        for _ in 0..30 {
            let t = Instant::now();
            rows = conn
                .query_all_raw(Statement::from_string(conn.get_database_backend(), &sql))
                .await
                .map_err(|e| e.to_string())?
                .len();
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        println!(
            "  {what}: {rows} rows, p50 {:.1} ms",
            percentile(&times, 0.5)
        );
    }
    // Every figure computed afresh (what a call pays after a change), failures included.
    let ids = (0..SERVICES).map(svc).collect();
    let mut fresh = Vec::new();
    let mut failures = (0, 0, 0);
    for _ in 0..30 {
        let t = Instant::now();
        let figures = store
            .summary_figures(&ids, 10, now_micros())
            .await
            .map_err(|e| e.to_string())?;
        fresh.push(t.elapsed().as_secs_f64() * 1000.0);
        failures = figures.counts.values().fold((0, 0, 0), |a, c| {
            (
                a.0 + c.realizations,
                a.1 + c.failed_control_tests,
                a.2 + c.risks_with_failed_response,
            )
        });
    }
    fresh.sort_by(f64::total_cmp);
    println!(
        "  figures afresh: p50 {:.1} ms (realisations {}, failed control tests {}, risks with \
         a failed response {})",
        percentile(&fresh, 0.5),
        failures.0,
        failures.1,
        failures.2
    );
    summary.sort_by(f64::total_cmp);
    baseline.sort_by(f64::total_cmp);
    println!(
        "SummarizeRisks, 221 groups, {CALLS} calls, one caller: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms",
        percentile(&summary, 0.5),
        percentile(&summary, 0.9),
        percentile(&summary, 0.99)
    );
    println!(
        "baseline GROUP BY service, severity ({} calls): p50 {:.1} ms",
        baseline.len(),
        percentile(&baseline, 0.5)
    );
    Ok(())
}
