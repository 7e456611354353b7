//! The posture counters (`risk_posture_counts`, kept by triggers) and each risk's treated
//! flag stay equal to a from-scratch recount after a varied workload through the store's own
//! write paths: group-commit creates and assessments, re-assessments, responses proposed,
//! approved, rejected and expired, closures, service moves, deletes and bulk inserts. After
//! each step the figures `SummarizeRisks` reuses are the ones it would compute afresh, and kept
//! figures give way when a time-driven figure changes — also for response failures: a
//! realisation, a failed control test, and each leaving the 365-day window. On SQLite, and on PostgreSQL when
//! `ASSURANCE_TEST_POSTGRES_URL` is set.

use std::{collections::BTreeMap, sync::Arc};

use assurance_runtime::auth::{Caller, Principal, Role, Roles};
use risk_service::{
    domain::{
        governance::ApprovalState,
        reviews::{ObservationEffect, ObservationSource},
        scoring::Severity,
    },
    store::{
        RiskPatch, Store, StoreOptions,
        entities::{
            action_item, action_plan, assessment, business_unit, control, risk, risk_response,
            service,
        },
        identified_risk,
        reviews::observation,
        summary::{FAILURES_WITHIN_MICROS, RiskCounts, ServiceFigures},
    },
};
use sea_orm::{ConnectionTrait, Database, EntityTrait, FromQueryResult, Statement};
use uuid::Uuid;

const DAY: i64 = 86_400 * 1_000_000;

fn caller(subject: &str, role: Role) -> Caller {
    Caller {
        principal: Arc::new(Principal {
            subject: subject.into(),
            roles: Roles::of(&[role]),
            services: None,
        }),
        on_behalf_of: None,
        rpc: "/test.Workload/Write".into(),
        request_id: String::new(),
    }
}

fn new_risk(title: &str, service: &str) -> risk::Model {
    let mut r = identified_risk(Uuid::now_v7());
    r.title = title.into();
    r.service_id = service.into();
    r.owner = "owner@example.com".into();
    r.threat = 1;
    r.identification_source = 1;
    r.labels = "{}".into();
    r
}

/// An assessment with the given figures (the store stores what it is given).
fn assessment(impact: i32, likelihood: i32, severity: i32, strategy: i32) -> assessment::Model {
    assessment::Model {
        id: Uuid::nil(),
        risk_id: Uuid::nil(),
        impact,
        likelihood,
        control_deficiency: 2,
        exposure: impact * likelihood,
        score: impact * likelihood * 2,
        severity,
        strategy,
        risk_level: 0,
        methodology: 1,
        policy_id: "test".into(),
        rationale: String::new(),
        assessor: "assessor@example.com".into(),
        assess_time: 0,
        control_deficiency_derived: false,
    }
}

fn response(decision: i32, acceptance_expire_time: Option<i64>) -> risk_response::Model {
    risk_response::Model {
        id: Uuid::nil(),
        risk_id: Uuid::nil(),
        decision,
        strategy: 0,
        strategy_override: 0,
        override_justification: String::new(),
        rationale: "because".into(),
        acceptance_expire_time,
        state: 0,
        severity: 0,
        required_role: String::new(),
        proposer: String::new(),
        decided_by: String::new(),
        decision_comment: String::new(),
        expired: false,
        create_time: 0,
        decide_time: None,
    }
}

#[derive(Debug, PartialEq, Eq, FromQueryResult)]
struct Counter {
    service_id: String,
    dimension: i32,
    bucket: i32,
    n: i64,
}

#[derive(Debug, PartialEq, Eq, FromQueryResult)]
struct Treated {
    id: Uuid,
    approved_severity: i32,
}

/// The counters (without zero rows) and every risk's treated flag, as stored.
async fn snapshot(store: &Store) -> (Vec<Counter>, Vec<Treated>) {
    let conn = store.connection();
    let backend = conn.get_database_backend();
    let counters = Counter::find_by_statement(Statement::from_string(
        backend,
        "SELECT service_id, dimension, bucket, n FROM risk_posture_counts WHERE n <> 0 \
         ORDER BY service_id, dimension, bucket",
    ))
    .all(conn)
    .await
    .expect("counters");
    let treated = Treated::find_by_statement(Statement::from_string(
        backend,
        "SELECT id, approved_severity FROM risks ORDER BY id",
    ))
    .all(conn)
    .await
    .expect("treated flags");
    (counters, treated)
}

/// `figures` in a comparable form (its maps sorted).
fn canonical(figures: &ServiceFigures) -> String {
    let counts: BTreeMap<_, _> = figures.counts.iter().collect();
    let top: BTreeMap<_, _> = figures.top.iter().collect();
    let mut exceptions = figures.expiring_exceptions.clone();
    exceptions.sort();
    format!("{counts:?} {top:?} {exceptions:?}")
}

/// The figures reused for the workload's services at `now` are those computed afresh.
async fn reused_figures_are_exact(store: &Store, step: &str, now: i64) {
    let services = ["alpha", "beta", "gamma"]
        .map(String::from)
        .into_iter()
        .collect();
    let kept = store
        .cached_summary_figures(&services, 3, now)
        .await
        .expect("kept figures");
    let fresh = store
        .summary_figures(&services, 3, now)
        .await
        .expect("fresh figures");
    assert_eq!(
        canonical(&kept),
        canonical(&fresh),
        "the reused figures missed a change: {step}"
    );
}

async fn workload(store: &Store) {
    let exact = |step: &'static str| async move {
        reused_figures_are_exact(store, step, assurance_runtime::time::now_micros()).await
    };
    exact("no risk yet").await;
    let admin = caller("admin", Role::Admin);
    let owner = caller("owner@example.com", Role::RiskOwner);
    let exec = caller("exec@example.com", Role::ErmExecutive);
    store
        .create_business_unit(
            business_unit::Model {
                id: "bu".into(),
                display_name: "BU".into(),
                description: String::new(),
                owner: "cio@example.com".into(),
                version: 0,
                create_time: 0,
                update_time: 0,
                delete_time: None,
            },
            None,
            &admin,
        )
        .await
        .expect("business unit");
    for id in ["alpha", "beta", "gamma"] {
        store
            .create_service(
                service::Model {
                    id: id.into(),
                    business_unit_id: "bu".into(),
                    display_name: id.into(),
                    description: String::new(),
                    owner: "manager@example.com".into(),
                    version: 0,
                    create_time: 0,
                    update_time: 0,
                    delete_time: None,
                },
                None,
                &admin,
            )
            .await
            .expect("service");
    }
    // Creates and first assessments, concurrently: the group-commit writer batches them
    // (bulk inserts, and upserts for assessments of risks it already holds).
    let services = ["alpha", "beta", "gamma"];
    let creates = (0..30).map(|i| {
        let store = store.clone();
        let owner = owner.clone();
        async move {
            store
                .create_risk(
                    new_risk(&format!("risk {i}"), services[i % 3]),
                    BTreeMap::new(),
                    None,
                    &owner,
                )
                .await
                .expect("create risk")
        }
    });
    let risks: Vec<risk::Model> = futures_join(creates).await;
    exact("creates").await;
    let assessments = risks.iter().enumerate().take(24).map(|(i, r)| {
        let store = store.clone();
        let owner = owner.clone();
        let id = r.id;
        let i = i as i32;
        async move {
            store
                .assess_risk(
                    id,
                    assessment(i % 5 + 1, (i / 5) % 5 + 1, i % 4 + 1, (i + 1) % 4 + 1),
                    None,
                    &owner,
                )
                .await
                .expect("assess risk")
        }
    });
    futures_join(assessments).await;
    exact("first assessments").await;
    let now = assurance_runtime::time::now_micros();
    // Re-assessments, one to a higher severity.
    for r in &risks[0..4] {
        store
            .assess_risk(r.id, assessment(5, 5, 4, 4), None, &owner)
            .await
            .expect("re-assess");
    }
    exact("re-assessments").await;
    // Responses: approved (treated), rejected, pending; an acceptance that expires.
    let mut responses = Vec::new();
    for (i, r) in risks[4..14].iter().enumerate() {
        let decision = if i % 3 == 0 { 4 } else { 1 };
        let expiry = (decision == 4).then_some(now + (i as i64 + 1) * DAY);
        let proposed = store
            .set_response(r.id, response(decision, expiry), None, &owner, now)
            .await
            .expect("propose");
        responses.push((r.id, proposed.id, i));
    }
    exact("responses proposed").await;
    for (risk_id, response_id, i) in &responses {
        match i % 4 {
            0 | 1 => {
                store
                    .decide_response(
                        *risk_id,
                        *response_id,
                        true,
                        "ok".into(),
                        None,
                        None,
                        &exec,
                        now,
                    )
                    .await
                    .expect("approve");
            }
            2 => {
                store
                    .decide_response(
                        *risk_id,
                        *response_id,
                        false,
                        "no".into(),
                        None,
                        None,
                        &exec,
                        now,
                    )
                    .await
                    .expect("reject");
            }
            _ => {}
        }
    }
    exact("responses decided").await;
    let approved: Vec<Uuid> = responses
        .iter()
        .filter(|(_, _, i)| i % 4 < 2)
        .map(|(r, _, _)| *r)
        .collect();
    let treated = store.get_risk(approved[0]).await.expect("risk");
    assert_eq!(
        treated.status, 5,
        "an approved acceptance monitors the risk"
    );
    // A treated risk re-assessed higher is no longer treated; the same severity stays treated.
    store
        .assess_risk(approved[1], assessment(5, 5, 4, 4), None, &owner)
        .await
        .expect("re-assess treated");
    // Acceptances that lapse, swept by the expiry job.
    let swept = store
        .expire_acceptances(now + 2 * DAY, &caller("system:risk-service", Role::System))
        .await
        .expect("expire acceptances");
    assert!(swept >= 1, "an acceptance expired");
    exact("acceptances expired").await;
    // Closures, a move to another service, a hard delete, bulk inserts around the API.
    for r in &risks[20..24] {
        store
            .close_risk(r.id, None, "retired".into(), &owner)
            .await
            .expect("close");
    }
    store
        .close_risk(approved[2], None, "accepted for good".into(), &owner)
        .await
        .expect("close treated");
    exact("closures").await;
    store
        .update_risk(
            risks[5].id,
            None,
            RiskPatch {
                service_id: Some("gamma".into()),
                ..Default::default()
            },
            &owner,
        )
        .await
        .expect("move service");
    exact("a service move").await;
    risk::Entity::delete_by_id(risks[29].id)
        .exec(store.connection())
        .await
        .expect("delete an unassessed risk");
    exact("a hard delete").await;
    let mut seeded = Vec::new();
    for i in 0..50 {
        let mut r = new_risk(&format!("seeded {i}"), services[i % 3]);
        r.business_unit_id = "bu".into();
        (r.version, r.create_time, r.update_time) = (1, now, now);
        if i % 2 == 0 {
            r.status = 2;
            r.latest_assessment_id = Some(Uuid::now_v7());
            (r.impact, r.likelihood, r.severity, r.strategy) = (3, 4, 3, 2);
            r.score = 24;
        }
        seeded.push(sea_orm::IntoActiveModel::into_active_model(r));
    }
    risk::Entity::insert_many(seeded)
        .exec_without_returning(store.connection())
        .await
        .expect("bulk insert");
    exact("a bulk insert").await;
    // An action item falling due: no write, yet the kept figures give way once it is overdue.
    let plan_risk = risks[10].id;
    store
        .create_plan(
            action_plan::Model {
                risk_id: plan_risk,
                title: "plan".into(),
                owner: "owner@example.com".into(),
                create_time: 0,
                version: 0,
                update_time: 0,
            },
            None,
            &owner,
            now,
        )
        .await
        .expect("action plan");
    let due = assurance_runtime::time::now_micros() + 3_600_000_000;
    store
        .add_item(
            action_item::Model {
                id: Uuid::now_v7(),
                risk_id: plan_risk,
                service_id: String::new(),
                business_unit_id: String::new(),
                title: "patch".into(),
                description: String::new(),
                owner: "owner@example.com".into(),
                due_time: due,
                status: 1,
                tracker_system: String::new(),
                tracker_key: String::new(),
                tracker_url: String::new(),
                sync_state: 0,
                sync_time: None,
                version: 0,
                create_time: 0,
                update_time: 0,
            },
            None,
            &owner,
            now,
        )
        .await
        .expect("action item");
    exact("an action item added").await;
    reused_figures_are_exact(store, "before the item falls due", due - 1).await;
    reused_figures_are_exact(store, "after the item fell due", due + 1).await;
    // An acceptance entering its last 30 days, then expiring.
    let accepted = store
        .set_response(
            risks[15].id,
            response(4, Some(due + 40 * DAY)),
            None,
            &owner,
            now,
        )
        .await
        .expect("propose acceptance");
    store
        .decide_response(
            risks[15].id,
            accepted.id,
            true,
            "ok".into(),
            None,
            None,
            &exec,
            now,
        )
        .await
        .expect("approve acceptance");
    for (step, at) in [
        ("an acceptance approved", due),
        ("an acceptance within 30 days of expiry", due + 11 * DAY),
        ("an acceptance expired", due + 41 * DAY),
    ] {
        reused_figures_are_exact(store, step, at).await;
    }
    failures(store, &risks, due + 41 * DAY).await;
}

/// The response-failure figures of the workload's services at `now`: (realisations, failed
/// control tests, risks with a failed response).
async fn failure_counts(store: &Store, now: i64) -> (i64, i64, i64) {
    let services = ["alpha", "beta", "gamma"]
        .map(String::from)
        .into_iter()
        .collect();
    let mut sum = RiskCounts::default();
    for counts in store
        .summary_figures(&services, 3, now)
        .await
        .expect("figures")
        .counts
        .values()
    {
        sum.add(counts);
    }
    (
        sum.realizations,
        sum.failed_control_tests,
        sum.risks_with_failed_response,
    )
}

/// Response failures from `t0`: a realisation against an approved acceptance (risks[15]), an
/// older one of a risk without an approved response (risks[16]), a failed control test of a
/// risk in treatment (risks[12]); then the clock runs past the window of each.
async fn failures(store: &Store, risks: &[risk::Model], t0: i64) {
    let admin = caller("admin", Role::Admin);
    let owner = caller("owner@example.com", Role::RiskOwner);
    let exact = |step: &'static str, at: i64| reused_figures_are_exact(store, step, at);
    let before = failure_counts(store, t0).await;
    exact("before any failure", t0).await;
    store
        .record_realization(
            risks[15].id,
            "incidents/1".into(),
            Severity::High,
            t0,
            None,
            &caller("system:relay", Role::System),
            t0,
        )
        .await
        .expect("realisation of an accepted risk");
    exact("a realisation", t0).await;
    let older = t0 - 100 * DAY;
    store
        .record_realization(
            risks[16].id,
            "incidents/2".into(),
            Severity::Low,
            older,
            None,
            &admin,
            t0,
        )
        .await
        .expect("realisation of a risk without a response");
    exact("an older realisation", t0).await;
    store
        .create_control(
            control::Model {
                id: "mfa".into(),
                title: "MFA".into(),
                description: String::new(),
                owner: "iam@example.com".into(),
                design_effectiveness: 0,
                operating_effectiveness: 0,
                last_test_time: None,
                requirements: "[]".into(),
                version: 0,
                create_time: 0,
                update_time: 0,
            },
            None,
            &admin,
            t0,
        )
        .await
        .expect("control");
    store
        .link_control(risks[12].id, "mfa", None, &owner, t0)
        .await
        .expect("link");
    exact("a control linked", t0).await;
    store
        .add_observation(
            observation::Model {
                id: Uuid::nil(),
                risk_id: risks[12].id,
                source: ObservationSource::ControlTest as i32,
                summary: "MFA bypassed".into(),
                effect: ObservationEffect::ControlFailed as i32,
                reference: String::new(),
                observer: String::new(),
                observe_time: 0,
                reassessment_triggered: false,
                control_id: "mfa".into(),
            },
            None,
            &owner,
            t0,
        )
        .await
        .expect("a failed control test");
    exact("a failed control test", t0).await;
    let after = failure_counts(store, t0).await;
    assert_eq!(
        (after.0 - before.0, after.1 - before.1, after.2 - before.2),
        (2, 1, 2),
        "two realisations, a failed test, two responses failed (not risks[16]'s: it has none)"
    );
    // The clock moves: the older realisation leaves the window first, then the others; the
    // failed responses stay failed.
    let window = FAILURES_WITHIN_MICROS;
    for (step, at, want) in [
        (
            "the older realisation's last instant",
            older + window,
            (2, 1, 2),
        ),
        ("the older realisation left", older + window + 1, (1, 1, 2)),
        ("the last instant of the others", t0 + window, (1, 1, 2)),
        ("every failure left the window", t0 + window + 1, (0, 0, 2)),
    ] {
        exact(step, at).await;
        let got = failure_counts(store, at).await;
        assert_eq!(
            (got.0 - before.0, got.1 - before.1, got.2 - before.2),
            want,
            "{step}"
        );
    }
}

async fn futures_join<T: Send + 'static>(
    tasks: impl Iterator<Item = impl std::future::Future<Output = T> + Send + 'static>,
) -> Vec<T> {
    let handles: Vec<_> = tasks.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

async fn counters_match_a_recount(url: &str) {
    let store = Store::open(url, &StoreOptions::default())
        .await
        .expect("store");
    workload(&store).await;
    let kept = snapshot(&store).await;
    assert!(!kept.0.is_empty(), "the workload left counts");
    assert!(
        kept.1.iter().any(|t| t.approved_severity > 0),
        "some risk is treated"
    );
    store
        .refresh_summary_counters()
        .await
        .expect("recount from the rows");
    let recounted = snapshot(&store).await;
    assert_eq!(kept.0, recounted.0, "counters drifted from the rows");
    assert_eq!(
        kept.1, recounted.1,
        "treated flags drifted from the responses"
    );
    // And the recount is what the triggers would have kept: a second one changes nothing.
    store.refresh_summary_counters().await.expect("recount");
    assert_eq!(snapshot(&store).await, recounted);
    // Spot checks against the rows themselves.
    let open: i64 = recounted
        .0
        .iter()
        .filter(|c| c.dimension == 1)
        .map(|c| c.n)
        .sum();
    let rows = risk::Entity::find()
        .all(store.connection())
        .await
        .expect("risks");
    assert_eq!(open, rows.iter().filter(|r| r.status != 6).count() as i64);
    let pending = risk_response::Entity::find()
        .all(store.connection())
        .await
        .expect("responses")
        .iter()
        .filter(|r| r.state == ApprovalState::Pending as i32)
        .count();
    assert!(pending > 0, "the workload left a pending response");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_match_a_recount_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = assurance_runtime::db::sqlite_url(&dir.path().join("risk.db"));
    counters_match_a_recount(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_match_a_recount_on_postgres() {
    let Some(admin) = std::env::var("ASSURANCE_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!("ASSURANCE_TEST_POSTGRES_URL is not set: PostgreSQL variant skipped");
        return;
    };
    let name = format!("assurance_rs_{}", Uuid::now_v7().simple());
    let conn = Database::connect(&admin).await.expect("PostgreSQL");
    conn.execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await
        .expect("create database");
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    counters_match_a_recount(&format!("{base}/{name}")).await;
    conn.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await
        .expect("drop database");
}
