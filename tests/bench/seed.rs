//! Fast seeding of a risk database with `insert_many` batches (500 rows a statement,
//! 10,000 a transaction), straight into the schema risk-service migrates.

use std::time::Instant;

use assurance_runtime::time::now_micros;
use risk_service::store::{
    Store,
    entities::{assessment, business_unit, risk, service},
};
use sea_orm::{ActiveModelTrait, EntityTrait, IntoActiveModel, TransactionTrait};
use uuid::Uuid;

pub const BUSINESS_UNITS: usize = 4;
pub const SERVICES: usize = 20;
pub const OWNERS: usize = 200;

pub fn service_id(i: usize) -> String {
    format!("svc-{:02}", i % SERVICES)
}

/// Rows a transaction.
const TRANSACTION_ROWS: usize = 10_000;
/// Rows a statement.
const STATEMENT_ROWS: usize = 500;

/// The row numbers below `count`, a range a transaction.
pub fn transactions(count: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    (0..count)
        .step_by(TRANSACTION_ROWS)
        .map(move |first| first..(first + TRANSACTION_ROWS).min(count))
}

/// Inserts `rows` in `tx`, [`STATEMENT_ROWS`] a statement.
pub async fn insert_in_statements<A>(
    tx: &sea_orm::DatabaseTransaction,
    rows: Vec<A>,
) -> Result<(), String>
where
    A: ActiveModelTrait + Clone,
{
    for part in rows.chunks(STATEMENT_ROWS) {
        A::Entity::insert_many(part.to_vec())
            .exec_without_returning(tx)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Closes the seeding connection; the seconds since `started`.
async fn seeding_done(db: &sea_orm::DatabaseConnection, started: Instant) -> f64 {
    db.clone().close().await.ok();
    started.elapsed().as_secs_f64()
}

/// What was seeded: risk ids that accept assessments.
pub struct Seeded {
    pub risk_ids: Vec<Uuid>,
}

/// Creates the org and `count` risks (assessed, spread over services, severities, owners).
pub async fn seed(url: &str, count: usize) -> Result<Seeded, String> {
    let started = Instant::now();
    let store = Store::open(
        url,
        &risk_service::store::StoreOptions {
            max_connections: 2,
            cache_size: 0,
            ..Default::default()
        },
    )
    .await
    .map_err(|e| format!("open {url}: {e}"))?;
    let db = store.connection();
    let now = now_micros();
    let bus = (0..BUSINESS_UNITS).map(|i| {
        business_unit::Model {
            id: format!("bu-{i}"),
            display_name: format!("Business unit {i}"),
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
        .map_err(|e| format!("seed business units (is the database empty?): {e}"))?;
    let services = (0..SERVICES).map(|i| {
        service::Model {
            id: service_id(i),
            business_unit_id: format!("bu-{}", i % BUSINESS_UNITS),
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

    let policy = risk_service::domain::scoring::ScoringPolicy::defaults(
        risk_service::domain::scoring::Methodology::Standard,
    );
    store
        .register_policy(&policy)
        .await
        .map_err(|e| e.to_string())?;
    let policy_id = policy.id();
    let mut risk_ids = Vec::with_capacity(count);
    for rows in transactions(count) {
        let tx = db.begin().await.map_err(|e| e.to_string())?;
        let mut risks = Vec::with_capacity(rows.len());
        let mut assessments = Vec::with_capacity(rows.len());
        for n in rows {
            let id = Uuid::now_v7();
            let aid = Uuid::now_v7();
            let (impact, likelihood, deficiency) = (
                (n % 5 + 1) as u8,
                ((n / 5) % 5 + 1) as u8,
                ((n / 25) % 5 + 1) as u8,
            );
            let d = policy.derive(impact, likelihood, deficiency);
            let t = now + n as i64;
            let svc = n % SERVICES;
            risks.push(
                risk::Model {
                    id,
                    title: format!("Seeded risk {n}"),
                    description: "Seeded for benchmarks.".into(),
                    service_id: service_id(svc),
                    business_unit_id: format!("bu-{}", svc % BUSINESS_UNITS),
                    category: "access-control".into(),
                    threat: 2,
                    identification_source: 2,
                    source_reference: String::new(),
                    owner: format!("owner-{}@example.com", n % OWNERS),
                    status: 2,
                    labels: "{}".into(),
                    close_reason: String::new(),
                    close_time: None,
                    version: 2,
                    create_time: t,
                    update_time: t,
                    latest_assessment_id: Some(aid),
                    impact: impact.into(),
                    likelihood: likelihood.into(),
                    control_deficiency: deficiency.into(),
                    exposure: d.exposure.into(),
                    score: d.score.into(),
                    severity: d.severity as i32,
                    strategy: d.strategy as i32,
                    risk_level: 0,
                    methodology: 1,
                    policy_id: policy_id.clone(),
                    assessment_rationale: String::new(),
                    assessor: "seed@example.com".into(),
                    assess_time: Some(t),
                    next_review_time: Some(t + 90 * 86_400 * 1_000_000),
                    control_deficiency_derived: false,
                }
                .into_active_model(),
            );
            assessments.push(
                assessment::Model {
                    id: aid,
                    risk_id: id,
                    impact: impact.into(),
                    likelihood: likelihood.into(),
                    control_deficiency: deficiency.into(),
                    exposure: d.exposure.into(),
                    score: d.score.into(),
                    severity: d.severity as i32,
                    strategy: d.strategy as i32,
                    risk_level: 0,
                    methodology: 1,
                    policy_id: policy_id.clone(),
                    rationale: String::new(),
                    assessor: "seed@example.com".into(),
                    assess_time: t,
                    control_deficiency_derived: false,
                }
                .into_active_model(),
            );
            risk_ids.push(id);
        }
        insert_in_statements(&tx, risks).await?;
        insert_in_statements(&tx, assessments).await?;
        tx.commit().await.map_err(|e| e.to_string())?;
    }
    let took = seeding_done(db, started).await;
    eprintln!(
        "seeded {count} risks in {took:.1}s ({:.0} rows/s)",
        (2 * count) as f64 / took
    );
    Ok(Seeded { risk_ids })
}

/// Creates `count` incidents spread over phases, severities and response times, as the
/// incident-service schema stores them; returns their ids.
pub async fn seed_incidents(url: &str, count: usize) -> Result<Vec<Uuid>, String> {
    use incident_service::store::entities::incident;
    let started = Instant::now();
    let store = incident_service::store::Store::open(url, 2)
        .await
        .map_err(|e| format!("open {url}: {e}"))?;
    let db = store.connection();
    let now = now_micros();
    let minute = 60_000_000i64;
    let mut ids = Vec::with_capacity(count);
    for numbers in transactions(count) {
        let tx = db.begin().await.map_err(|e| e.to_string())?;
        let mut rows = Vec::with_capacity(numbers.len());
        for n in numbers {
            let id = Uuid::now_v7();
            let n64 = n as i64;
            let declare = now - (count as i64 - n64) * minute;
            let detect = declare - (n64 % 120) * minute;
            let phase = (n % 6) as i32 + 1;
            let at_least = |p: i32, t: i64| (phase >= p).then_some(t);
            rows.push(
                incident::Model {
                    id,
                    title: format!("Seeded incident {n}"),
                    summary: "Seeded for benchmarks.".into(),
                    incident_type: "default".into(),
                    classification: 2,
                    severity: (n % 4) as i32 + 1,
                    severity_overridden: true,
                    functional_impact: 2,
                    information_impacts: "1".into(),
                    recoverability: 1,
                    customer_data_affected: n % 5 == 0,
                    affected_services: service_id(n),
                    detection_source: String::new(),
                    phase,
                    occur_time: Some(detect - (n64 % 600) * minute),
                    detect_time: detect,
                    declare_time: declare,
                    contain_time: at_least(2, declare + (n64 % 240) * minute),
                    eradicate_time: at_least(3, declare + (n64 % 480) * minute),
                    recover_time: at_least(4, declare + (n64 % 960) * minute),
                    post_incident_time: at_least(5, declare + (n64 % 1440) * minute),
                    close_time: at_least(6, declare + (n64 % 2880) * minute),
                    resolution: String::new(),
                    review_complete: phase >= 6,
                    timeline_seq: 0,
                    version: 1,
                    create_time: declare,
                    update_time: declare,
                }
                .into_active_model(),
            );
            ids.push(id);
        }
        insert_in_statements(&tx, rows).await?;
        tx.commit().await.map_err(|e| e.to_string())?;
    }
    let took = seeding_done(db, started).await;
    eprintln!("seeded {count} incidents in {took:.1}s");
    Ok(ids)
}
