//! `RiskSummaryService.SummarizeRisks` through a real risk-service on a clock the test moves:
//! a fixture with known counts (two services of a business unit, a closed risk, treated,
//! accepted, expired and re-assessed responses, action items, exceptions), then every figure
//! of a one-service group, a two-service group and an empty group; appetite per service and by
//! default; the treated-or-accepted rule; access (roles, a scoped principal); bad input.

use std::{sync::Arc, time::Duration};

use assurance_proto::risk::v1::{
    self as pb, exception_service_client::ExceptionServiceClient,
    organization_service_client::OrganizationServiceClient, risk_service_client::RiskServiceClient,
    risk_summary_service_client::RiskSummaryServiceClient,
};
use assurance_proto::r#type::v1 as tv;
use assurance_runtime::{
    auth::client::Bearer,
    serve::{Running, Shutdown},
    time::Clock,
};
use tonic::{Code, transport::Channel};

use crate::helpers::*;

/// risk-service on port 0 over a test database, with the clock of its expiries and figures.
struct Served {
    running: Running,
    channel: Channel,
    tokens: Arc<TestTokens>,
    clock: Clock,
}

impl Served {
    async fn start(db: &TestDb) -> Served {
        let config = risk_config(db);
        let clock = config.clock.clone();
        let running = risk_service::start(&config, Shutdown::new())
            .await
            .expect("risk-service starts");
        Served {
            channel: channel(running.grpc_addr).await,
            running,
            tokens: db.tokens.clone(),
            clock,
        }
    }

    fn as_(&self, who: &str) -> Authed {
        Bearer::new(self.channel.clone(), self.tokens.token(who)).expect("token")
    }

    fn risks(&self, who: &str) -> RiskServiceClient<Authed> {
        RiskServiceClient::new(self.as_(who))
    }

    fn summary(&self, who: &str) -> RiskSummaryServiceClient<Authed> {
        RiskSummaryServiceClient::new(self.as_(who))
    }

    async fn summarize(
        &self,
        who: &str,
        request: pb::SummarizeRisksRequest,
    ) -> Result<Vec<pb::RiskSummary>, tonic::Status> {
        self.summary(who)
            .summarize_risks(request)
            .await
            .map(|r| r.into_inner().summaries)
    }

    async fn org(&self) {
        let mut org = OrganizationServiceClient::new(self.as_("admin"));
        for (bu, services) in [
            ("retail", &["shop", "payments"][..]),
            ("productivity", &["exchange-online"][..]),
        ] {
            org.create_business_unit(pb::CreateBusinessUnitRequest {
                business_unit_id: bu.into(),
                business_unit: Some(pb::BusinessUnit {
                    display_name: bu.into(),
                    owner: "cio@example.com".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .expect("business unit");
            for s in services {
                org.create_service(pb::CreateServiceRequest {
                    service_id: (*s).into(),
                    service: Some(pb::Service {
                        business_unit: format!("businessUnits/{bu}"),
                        display_name: (*s).into(),
                        owner: "manager@example.com".into(),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                })
                .await
                .expect("service");
            }
        }
    }

    async fn risk(&self, title: &str, service: &str) -> String {
        self.risks("admin")
            .create_risk(pb::CreateRiskRequest {
                risk: Some(new_risk(title, service)),
                request_id: String::new(),
            })
            .await
            .expect("create risk")
            .into_inner()
            .name
    }

    async fn assess(&self, risk: &str, (impact, likelihood, deficiency): (i32, i32, i32)) {
        self.risks("admin")
            .assess_risk(pb::AssessRiskRequest {
                name: risk.into(),
                assessment: Some(assessment(impact, likelihood, deficiency)),
                ..Default::default()
            })
            .await
            .expect("assess");
    }

    /// A risk owner proposes; an ERM executive approves unless `approve` is false.
    async fn respond(&self, risk: &str, response: pb::RiskResponse, approve: bool) -> String {
        let proposed = self
            .risks("risk_owner")
            .create_risk_response(pb::CreateRiskResponseRequest {
                parent: risk.into(),
                response: Some(response),
                request_id: String::new(),
            })
            .await
            .expect("propose")
            .into_inner();
        if approve {
            self.risks("erm_executive")
                .approve_risk_response(pb::ApproveRiskResponseRequest {
                    name: proposed.name.clone(),
                    comment: "agreed".into(),
                    ..Default::default()
                })
                .await
                .expect("approve");
        }
        proposed.name
    }

    async fn plan_with_items(&self, risk: &str, items: &[(i64, tv::WorkItemStatus)]) {
        let mut client = self.risks("admin");
        let plan = client
            .create_action_plan(pb::CreateActionPlanRequest {
                parent: risk.into(),
                action_plan: Some(pb::ActionPlan {
                    title: "Fix it".into(),
                    owner: "owner@example.com".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .expect("plan")
            .into_inner();
        for (due_in_days, status) in items {
            let item = client
                .create_action_item(pb::CreateActionItemRequest {
                    parent: plan.name.clone(),
                    action_item: Some(action_item("step", days(*due_in_days))),
                    request_id: String::new(),
                })
                .await
                .expect("item")
                .into_inner();
            if *status != tv::WorkItemStatus::Open {
                client
                    .update_action_item(pb::UpdateActionItemRequest {
                        action_item: Some(pb::ActionItem {
                            status: *status as i32,
                            ..item
                        }),
                        update_mask: Some(prost_types::FieldMask {
                            paths: vec!["status".into()],
                        }),
                    })
                    .await
                    .expect("item status");
            }
        }
    }

    /// The trust team requests an exception of `services`; an ERM executive approves it
    /// unless `approve` is false.
    async fn exception(&self, services: &[&str], expire_in_days: i64, approve: bool) -> String {
        let requested = ExceptionServiceClient::new(self.as_("trust_team"))
            .create_policy_exception(pb::CreatePolicyExceptionRequest {
                policy_exception: Some(pb::PolicyException {
                    title: "Legacy TLS".into(),
                    scope: "TLS 1.0 on the partner relay".into(),
                    services: services.iter().map(|s| format!("services/{s}")).collect(),
                    justification: "Partners migrate next quarter.".into(),
                    expire_time: Some(days(expire_in_days)),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .expect("request exception")
            .into_inner();
        if approve {
            ExceptionServiceClient::new(self.as_("erm_executive"))
                .approve_policy_exception(pb::ApprovePolicyExceptionRequest {
                    name: requested.name.clone(),
                    comment: "ok".into(),
                    ..Default::default()
                })
                .await
                .expect("approve exception");
        }
        requested.name
    }
}

fn accept(expire_in_days: i64) -> pb::RiskResponse {
    pb::RiskResponse {
        decision: pb::ResponseDecision::Accept as i32,
        rationale: "Within what the business carries.".into(),
        acceptance_expire_time: Some(days(expire_in_days)),
        ..Default::default()
    }
}

// Assessments (impact, likelihood, control deficiency) and what the default policy derives.
/// Score 4, LOW, OPERATE.
const LOW_OPERATE: (i32, i32, i32) = (1, 2, 2);
/// Score 24, MEDIUM, TOLERATE.
const MEDIUM_TOLERATE: (i32, i32, i32) = (2, 3, 4);
/// Score 60, HIGH, IMPROVE.
const HIGH_IMPROVE: (i32, i32, i32) = (3, 4, 5);
/// Score 50, HIGH, MONITOR.
const HIGH_MONITOR: (i32, i32, i32) = (5, 5, 2);
/// Score 100, CRITICAL, IMPROVE.
const CRITICAL_IMPROVE: (i32, i32, i32) = (4, 5, 5);
/// Score 100, CRITICAL, IMPROVE (impact 5, likelihood 5).
const CRITICAL_55: (i32, i32, i32) = (5, 5, 4);

/// The risk names of the fixture.
struct Fixture {
    shop: [String; 4],
    payments: [String; 4],
}

/// The fixture, built at the wall clock's now; then the clock moves 40 days on.
///
/// shop: r0 unassessed; r1 LOW; r2 HIGH, mitigation approved (treated), action items due in
/// 10 days (overdue), 60 days, and 5 days but WONT_DO; r3 CRITICAL (review due after 30 days:
/// overdue); a MEDIUM risk with an overdue item, closed.
/// payments: p0 HIGH accepted until day 50 (treated, expiring); p1 HIGH accepted until day 20
/// (lapses: the expiry job sends it back to ASSESSED); p2 MEDIUM mitigation approved, then
/// re-assessed CRITICAL (no longer treated); p3 CRITICAL with a pending response.
/// Exceptions: shop + payments until day 45 (expiring, counted once), shop until day 80,
/// payments until day 35 (lapses), shop + payments until day 45 but never approved.
async fn fixture(s: &Served) -> Fixture {
    s.org().await;
    let r0 = s.risk("Unassessed", "shop").await;
    let r1 = s.risk("Low", "shop").await;
    s.assess(&r1, LOW_OPERATE).await;
    let r2 = s.risk("Treated", "shop").await;
    s.assess(&r2, HIGH_IMPROVE).await;
    s.respond(&r2, mitigation("patch"), true).await;
    s.plan_with_items(
        &r2,
        &[
            (10, tv::WorkItemStatus::Open),
            (60, tv::WorkItemStatus::InProgress),
            (5, tv::WorkItemStatus::WontDo),
        ],
    )
    .await;
    let r3 = s.risk("Critical", "shop").await;
    s.assess(&r3, CRITICAL_IMPROVE).await;
    let closed = s.risk("Closed", "shop").await;
    s.assess(&closed, MEDIUM_TOLERATE).await;
    s.respond(&closed, mitigation("patch"), true).await;
    s.plan_with_items(&closed, &[(10, tv::WorkItemStatus::Open)])
        .await;
    s.risks("admin")
        .delete_risk(pb::DeleteRiskRequest {
            name: closed.clone(),
            reason: "service retired".into(),
            etag: String::new(),
        })
        .await
        .expect("close");

    let p0 = s.risk("Accepted", "payments").await;
    s.assess(&p0, HIGH_MONITOR).await;
    s.respond(&p0, accept(50), true).await;
    let p1 = s.risk("Acceptance lapses", "payments").await;
    s.assess(&p1, HIGH_IMPROVE).await;
    s.respond(&p1, accept(20), true).await;
    let p2 = s.risk("Worse since approval", "payments").await;
    s.assess(&p2, MEDIUM_TOLERATE).await;
    s.respond(&p2, mitigation("patch"), true).await;
    s.assess(&p2, CRITICAL_55).await;
    let p3 = s.risk("Pending", "payments").await;
    s.assess(&p3, CRITICAL_IMPROVE).await;
    s.respond(&p3, mitigation("patch"), false).await;

    s.exception(&["shop", "payments"], 45, true).await;
    s.exception(&["shop"], 80, true).await;
    let lapsing = s.exception(&["payments"], 35, true).await;
    s.exception(&["shop", "payments"], 45, false).await;

    s.clock.advance(Duration::from_secs(40 * 86_400));
    // The expiry job sweeps every second: wait for the lapsed acceptance and exception.
    eventually("the acceptance and the exception lapse", || async {
        let status = s
            .risks("admin")
            .get_risk(pb::GetRiskRequest { name: p1.clone() })
            .await
            .map_err(|e| e.to_string())?
            .into_inner()
            .status;
        let exception = ExceptionServiceClient::new(s.as_("admin"))
            .get_policy_exception(pb::GetPolicyExceptionRequest {
                name: lapsing.clone(),
            })
            .await
            .map_err(|e| e.to_string())?
            .into_inner()
            .status;
        if status == pb::RiskStatus::Assessed as i32
            && exception == pb::PolicyExceptionStatus::Expired as i32
        {
            Ok(())
        } else {
            Err(format!(
                "risk status {status}, exception status {exception}"
            ))
        }
    })
    .await;
    Fixture {
        shop: [r0, r1, r2, r3],
        payments: [p0, p1, p2, p3],
    }
}

fn group(key: &str, services: &[&str]) -> pb::RiskGroup {
    pb::RiskGroup {
        key: key.into(),
        services: services.iter().map(|s| format!("services/{s}")).collect(),
    }
}

fn thresholds(appetite: tv::Severity, tolerance: tv::Severity) -> pb::AppetiteThresholds {
    pb::AppetiteThresholds {
        appetite: appetite as i32,
        tolerance: tolerance as i32,
    }
}

/// The request of the test: shop, payments, both, an empty group and one of an unknown
/// service; top 3; shop judged LOW/CRITICAL, the others by the default MEDIUM/HIGH.
fn request() -> pb::SummarizeRisksRequest {
    pb::SummarizeRisksRequest {
        groups: vec![
            group("services/shop", &["shop"]),
            group("services/payments", &["payments"]),
            group("businessUnits/retail", &["shop", "payments"]),
            group("empty", &[]),
            group("unknown", &["nowhere"]),
        ],
        top_n: 3,
        appetites: vec![pb::ServiceAppetite {
            service: "services/shop".into(),
            thresholds: Some(thresholds(tv::Severity::Low, tv::Severity::Critical)),
        }],
        default_appetite: Some(thresholds(tv::Severity::Medium, tv::Severity::High)),
    }
}

/// Every figure of a summary, compact: (open, unassessed, by severity LOW..CRITICAL, by
/// strategy TOLERATE..IMPROVE, by status IDENTIFIED..MONITORING, overdue reviews, overdue
/// items, expiring acceptances, expiring exceptions).
type Counts = (i64, i64, [i64; 4], [i64; 4], [i64; 5], [i64; 4]);

fn counts(s: &pb::RiskSummary) -> Counts {
    let severities: Vec<i32> = s.by_severity.iter().map(|c| c.severity).collect();
    assert_eq!(severities, [1, 2, 3, 4], "every severity listed, in order");
    let strategies: Vec<i32> = s.by_strategy.iter().map(|c| c.strategy).collect();
    assert_eq!(strategies, [1, 2, 3, 4], "every strategy listed, in order");
    let statuses: Vec<i32> = s.by_status.iter().map(|c| c.status).collect();
    assert_eq!(
        statuses,
        [1, 2, 3, 4, 5],
        "every open status listed, in order"
    );
    let take = |v: Vec<i64>| -> Vec<i64> { v };
    let sev = take(s.by_severity.iter().map(|c| c.count).collect());
    let strat = take(s.by_strategy.iter().map(|c| c.count).collect());
    let status = take(s.by_status.iter().map(|c| c.count).collect());
    (
        s.open_risks,
        s.unassessed,
        [sev[0], sev[1], sev[2], sev[3]],
        [strat[0], strat[1], strat[2], strat[3]],
        [status[0], status[1], status[2], status[3], status[4]],
        [
            s.overdue_reviews,
            s.overdue_action_items,
            s.expiring_acceptances,
            s.expiring_exceptions,
        ],
    )
}

/// The non-empty heat-map cells as (impact, likelihood, count), after checking the 25 cells
/// are listed impact-major.
fn heat(s: &pb::RiskSummary) -> Vec<(i32, i32, i64)> {
    let cells: Vec<(i32, i32)> = s
        .heat_map
        .iter()
        .map(|c| (c.impact, c.likelihood))
        .collect();
    let expected: Vec<(i32, i32)> = (1..=5).flat_map(|i| (1..=5).map(move |l| (i, l))).collect();
    assert_eq!(cells, expected, "25 cells, impact-major");
    s.heat_map
        .iter()
        .filter(|c| c.count > 0)
        .map(|c| (c.impact, c.likelihood, c.count))
        .collect()
}

fn top(s: &pb::RiskSummary) -> Vec<(String, i32)> {
    s.top_risks
        .iter()
        .map(|t| (t.risk.clone(), t.score))
        .collect()
}

fn appetite(s: &pb::RiskSummary) -> (pb::AppetiteStatus, [i64; 4]) {
    let a = s.appetite.as_ref().expect("the request gave appetites");
    (
        a.status(),
        [
            a.within_appetite,
            a.above_appetite,
            a.outside_tolerance,
            a.above_appetite_treated,
        ],
    )
}

async fn every_figure_of_each_group(backend: Backend) {
    let db = TestDb::new(backend).await;
    let s = Served::start(&db).await;
    let f = fixture(&s).await;
    let got = s.summarize("reporter", request()).await.expect("summarize");
    let keys: Vec<&str> = got.iter().map(|g| g.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "services/shop",
            "services/payments",
            "businessUnits/retail",
            "empty",
            "unknown"
        ]
    );
    let [shop, payments, retail, empty, unknown] = &got[..] else {
        panic!("five summaries")
    };

    // shop: r0 IDENTIFIED, r1 ASSESSED LOW, r2 IN_TREATMENT HIGH, r3 ASSESSED CRITICAL.
    assert_eq!(
        counts(shop),
        (
            4,
            1,
            [1, 0, 1, 1],
            [0, 1, 0, 2],
            [1, 2, 0, 1, 0],
            // r3's review (30 days for CRITICAL); r2's item due on day 10; the exception of
            // shop and payments until day 45.
            [1, 1, 0, 1]
        )
    );
    assert_eq!(heat(shop), [(1, 2, 1), (3, 4, 1), (4, 5, 1)]);
    assert_eq!(
        top(shop),
        [
            (format!("risks/{}", id(&f.shop[3])), 100),
            (format!("risks/{}", id(&f.shop[2])), 60),
            (format!("risks/{}", id(&f.shop[1])), 4),
        ]
    );
    let first = &shop.top_risks[0];
    assert_eq!(
        (
            first.title.as_str(),
            first.service.as_str(),
            first.owner.as_str(),
            first.severity,
            first.status
        ),
        (
            "Critical",
            "services/shop",
            "owner@example.com",
            tv::Severity::Critical as i32,
            pb::RiskStatus::Assessed as i32
        )
    );
    // shop's own thresholds LOW/CRITICAL: r1 within; r2 HIGH treated; r3 CRITICAL above.
    assert_eq!(
        appetite(shop),
        (pb::AppetiteStatus::AboveAppetite, [1, 1, 0, 1])
    );

    // payments: p0 MONITORING HIGH, p1 ASSESSED HIGH (its acceptance lapsed), p2 IN_TREATMENT
    // CRITICAL, p3 RESPONSE_PLANNED CRITICAL.
    assert_eq!(
        counts(payments),
        (
            4,
            0,
            [0, 0, 2, 2],
            [0, 0, 1, 3],
            [0, 1, 1, 1, 1],
            // p2's and p3's reviews; p0's acceptance (day 50); the shared exception (the one
            // of payments alone lapsed on day 35).
            [2, 0, 1, 1]
        )
    );
    assert_eq!(heat(payments), [(3, 4, 1), (4, 5, 1), (5, 5, 2)]);
    // p2 and p3 tie at 100: the older first.
    assert_eq!(
        top(payments),
        [
            (format!("risks/{}", id(&f.payments[2])), 100),
            (format!("risks/{}", id(&f.payments[3])), 100),
            (format!("risks/{}", id(&f.payments[1])), 60),
        ]
    );
    // The default MEDIUM/HIGH: p0 accepted (treated); p1's acceptance lapsed (above); p2 was
    // approved at MEDIUM and is CRITICAL now, p3 is pending (outside tolerance).
    assert_eq!(
        appetite(payments),
        (pb::AppetiteStatus::OutsideTolerance, [0, 1, 2, 1])
    );

    // The business unit: the sums, the shared exception once, its own top 3.
    assert_eq!(
        counts(retail),
        (
            8,
            1,
            [1, 0, 3, 3],
            [0, 1, 1, 5],
            [1, 3, 1, 2, 1],
            [3, 1, 1, 1]
        )
    );
    assert_eq!(heat(retail), [(1, 2, 1), (3, 4, 2), (4, 5, 2), (5, 5, 2)]);
    assert_eq!(
        top(retail),
        [
            (format!("risks/{}", id(&f.shop[3])), 100),
            (format!("risks/{}", id(&f.payments[2])), 100),
            (format!("risks/{}", id(&f.payments[3])), 100),
        ]
    );
    assert_eq!(
        appetite(retail),
        (pb::AppetiteStatus::OutsideTolerance, [1, 2, 2, 2])
    );

    // No services, or an unknown one: zeros everywhere, every row still listed.
    for g in [empty, unknown] {
        assert_eq!(
            counts(g),
            (0, 0, [0; 4], [0; 4], [0; 5], [0; 4]),
            "{}",
            g.key
        );
        assert!(heat(g).is_empty());
        assert!(g.top_risks.is_empty());
        assert_eq!(appetite(g), (pb::AppetiteStatus::WithinAppetite, [0; 4]));
    }

    // Without appetites, no appetite status; top_n 0 means 10.
    let plain = s
        .summarize(
            "system",
            pb::SummarizeRisksRequest {
                groups: vec![group("retail", &["shop", "payments"])],
                ..Default::default()
            },
        )
        .await
        .expect("summarize without appetites");
    assert!(plain[0].appetite.is_none());
    assert_eq!(plain[0].top_risks.len(), 7, "every assessed open risk");

    // Figures follow the writes: closing p3 removes it from every count.
    s.risks("admin")
        .delete_risk(pb::DeleteRiskRequest {
            name: f.payments[3].clone(),
            reason: "merged".into(),
            etag: String::new(),
        })
        .await
        .expect("close p3");
    let after = s.summarize("viewer", request()).await.expect("summarize");
    assert_eq!(
        appetite(&after[1]),
        (pb::AppetiteStatus::OutsideTolerance, [0, 1, 1, 1])
    );
    assert_eq!(after[1].open_risks, 3);
    assert_eq!(after[1].overdue_reviews, 1);
    s.running.stop().await.expect("stop");
}

/// The id of a `risks/{id}` name.
fn id(name: &str) -> &str {
    name.trim_start_matches("risks/")
}

async fn access_and_bad_input(backend: Backend) {
    let db = TestDb::new(backend).await;
    let s = Served::start(&db).await;
    s.org().await;
    let mine = s.risk("Mailbox takeover", "exchange-online").await;
    s.assess(&mine, HIGH_IMPROVE).await;

    // Roles: posture readers and system may summarise; a responder may not.
    for who in ["viewer", "reporter", "erm_executive", "system", "admin"] {
        s.summarize(who, request())
            .await
            .unwrap_or_else(|e| panic!("{who}: {e:?}"));
    }
    let refused = s
        .summarize("responder", request())
        .await
        .expect_err("responder");
    assert_eq!(refused.code(), Code::PermissionDenied);

    // A principal scoped to exchange-online: its own service only.
    let own = s
        .summarize(
            "scoped",
            pb::SummarizeRisksRequest {
                groups: vec![group("services/exchange-online", &["exchange-online"])],
                ..Default::default()
            },
        )
        .await
        .expect("its own service");
    assert_eq!(own[0].open_risks, 1);
    assert_eq!(own[0].by_severity[2].count, 1);
    let foreign = s
        .summarize(
            "scoped",
            pb::SummarizeRisksRequest {
                groups: vec![group("mixed", &["exchange-online", "shop"])],
                ..Default::default()
            },
        )
        .await
        .expect_err("a foreign service");
    assert_refused(&foreign, Code::PermissionDenied, "services/shop");

    // Bad input: every violation at once, by field path.
    let empty = s
        .summarize("admin", pb::SummarizeRisksRequest::default())
        .await
        .expect_err("no groups");
    names_required(empty, &["groups"]);
    let bad = s
        .summarize(
            "admin",
            pb::SummarizeRisksRequest {
                groups: vec![
                    group("", &["shop"]),
                    group("dup", &["shop"]),
                    pb::RiskGroup {
                        key: "dup".into(),
                        services: vec!["shop".into(), "services/Bad Name".into()],
                    },
                    group(&"k".repeat(201), &[]),
                ],
                top_n: 101,
                appetites: vec![
                    pb::ServiceAppetite {
                        service: "services/shop".into(),
                        thresholds: Some(thresholds(tv::Severity::High, tv::Severity::Medium)),
                    },
                    pb::ServiceAppetite {
                        service: "services/shop".into(),
                        thresholds: None,
                    },
                    pb::ServiceAppetite {
                        service: String::new(),
                        thresholds: Some(pb::AppetiteThresholds::default()),
                    },
                ],
                default_appetite: Some(pb::AppetiteThresholds {
                    appetite: tv::Severity::Low as i32,
                    tolerance: 0,
                }),
            },
        )
        .await
        .expect_err("bad input");
    let mut fields = violations(&bad);
    fields.sort();
    let mut expected = vec![
        "appetites[0].thresholds.tolerance",
        "appetites[1].service",
        "appetites[1].thresholds",
        "appetites[2].service",
        "appetites[2].thresholds.appetite",
        "appetites[2].thresholds.tolerance",
        "default_appetite.tolerance",
        "groups[0].key",
        "groups[2].key",
        "groups[2].services[0]",
        "groups[2].services[1]",
        "groups[3].key",
        "top_n",
    ];
    expected.sort();
    assert_eq!(fields, expected, "{bad:?}");
    s.running.stop().await.expect("stop");
}

crate::on_both_backends!(every_figure_of_each_group, access_and_bad_input);
