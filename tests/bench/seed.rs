//! Fast seeding of a risk database with `insert_many` batches (1,000 rows a statement,
//! 10,000 a transaction), straight into the schema risk-service migrates.

use std::time::Instant;

use assurance_runtime::time::now_micros;
use risk_service::store::{
    Store,
    entities::{assessment, business_unit, risk, service},
};
use sea_orm::{EntityTrait, IntoActiveModel, TransactionTrait};
use uuid::Uuid;

pub const BUSINESS_UNITS: usize = 4;
pub const SERVICES: usize = 20;
pub const OWNERS: usize = 200;

pub fn service_id(i: usize) -> String {
    format!("svc-{:02}", i % SERVICES)
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
    let mut done = 0;
    while done < count {
        let chunk = (count - done).min(10_000);
        let tx = db.begin().await.map_err(|e| e.to_string())?;
        let mut risks = Vec::with_capacity(chunk);
        let mut assessments = Vec::with_capacity(chunk);
        for n in done..done + chunk {
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
                }
                .into_active_model(),
            );
            risk_ids.push(id);
        }
        for part in risks.chunks(1000) {
            risk::Entity::insert_many(part.to_vec())
                .exec_without_returning(&tx)
                .await
                .map_err(|e| e.to_string())?;
        }
        for part in assessments.chunks(1000) {
            assessment::Entity::insert_many(part.to_vec())
                .exec_without_returning(&tx)
                .await
                .map_err(|e| e.to_string())?;
        }
        tx.commit().await.map_err(|e| e.to_string())?;
        done += chunk;
    }
    db.clone().close().await.ok();
    eprintln!(
        "seeded {count} risks in {:.1}s ({:.0} rows/s)",
        started.elapsed().as_secs_f64(),
        (2 * count) as f64 / started.elapsed().as_secs_f64()
    );
    Ok(Seeded { risk_ids })
}
