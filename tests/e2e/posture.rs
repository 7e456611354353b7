//! The ERM posture at the gateway (`PostureService.GetPosture`) through a real client: every
//! figure of every node of a fixture whose answers are known, the roll-up rules (risks add up;
//! an incident spanning two business units counts once per node; KPIs computed per node), the
//! `unassigned` node, appetite status with the treated/accepted rule, and scoped access.

use std::collections::BTreeMap;

use assurance_proto::{
    gateway::v1::{
        GetPostureRequest, NodeKind, Posture, PostureNode, RiskAppetite, SetRiskAppetiteRequest,
    },
    incident::v1 as ipb,
    risk::v1::{
        self as pb, AppetiteStatus, RiskSummary, exception_service_client::ExceptionServiceClient,
    },
    r#type::v1::Severity,
};
use tonic::Code;

use crate::helpers::*;

crate::on_both_backends!(
    every_figure_of_every_node,
    scoped_principals_see_their_services_only
);

const HOUR_SECS: i64 = 3600;

pub async fn get_posture(app: &App, who: &str, scope: &str) -> Result<Posture, tonic::Status> {
    app.posture_as(who)
        .get_posture(GetPostureRequest {
            scope: scope.into(),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner())
}

/// Every node of the tree, by scope.
pub fn nodes(node: &PostureNode) -> BTreeMap<String, PostureNode> {
    let mut out = BTreeMap::new();
    fn walk(node: &PostureNode, out: &mut BTreeMap<String, PostureNode>) {
        out.insert(node.scope.clone(), node.clone());
        for child in &node.children {
            walk(child, out);
        }
    }
    walk(node, &mut out);
    out
}

/// An incident affecting `services`, detected `ttd_hours` after it occurred.
async fn incident(app: &App, title: &str, services: &[&str], ttd_hours: i64) -> ipb::Incident {
    let detect = days(0);
    let occur = prost_types::Timestamp {
        seconds: detect.seconds - ttd_hours * HOUR_SECS,
        nanos: 0,
    };
    let incident = ipb::Incident {
        title: title.into(),
        affected_services: services.iter().map(|s| format!("services/{s}")).collect(),
        occur_time: Some(occur),
        detect_time: Some(detect),
        classification: ipb::Classification::SecurityIncident as i32,
        ..phishing_wave()
    };
    declare_incident_as(app, "responder", incident, "")
        .await
        .expect("declare")
}

/// What a node's risk figures must be, computed from the risks themselves.
struct Expected {
    risks: Vec<pb::Risk>,
    /// Service id → (appetite, tolerance).
    thresholds: BTreeMap<String, (i32, i32)>,
    /// Risks with a response approved at their current level.
    treated: Vec<String>,
    /// The clock of the services, in seconds since the epoch.
    now: i64,
}

impl Expected {
    /// `timed`: the expected (overdue action items, expiring acceptances, expiring exceptions).
    fn check(&self, node: &PostureNode, services: &[&str], timed: (i64, i64, i64)) {
        let summary: &RiskSummary = node
            .risks
            .as_ref()
            .unwrap_or_else(|| panic!("{}: no risk figures", node.scope));
        let open: Vec<&pb::Risk> = self
            .risks
            .iter()
            .filter(|r| services.contains(&r.service.trim_start_matches("services/")))
            .filter(|r| r.status != pb::RiskStatus::Closed as i32)
            .collect();
        let assessed: Vec<(&pb::Risk, &pb::Assessment)> = open
            .iter()
            .filter_map(|r| r.latest_assessment.as_ref().map(|a| (*r, a)))
            .collect();
        let at = &node.scope;
        assert_eq!(summary.open_risks, open.len() as i64, "{at}: open");
        assert_eq!(
            summary.unassessed,
            (open.len() - assessed.len()) as i64,
            "{at}: unassessed"
        );
        let overdue = open
            .iter()
            .filter(|r| r.next_review_time.is_some_and(|t| t.seconds < self.now))
            .count() as i64;
        assert_eq!(summary.overdue_reviews, overdue, "{at}: overdue reviews");
        assert_eq!(
            (
                summary.overdue_action_items,
                summary.expiring_acceptances,
                summary.expiring_exceptions
            ),
            timed,
            "{at}: overdue items, expiring acceptances and exceptions"
        );
        let count = |f: &dyn Fn(&pb::Assessment) -> bool| {
            assessed.iter().filter(|(_, a)| f(a)).count() as i64
        };
        for c in &summary.by_severity {
            assert_eq!(
                c.count,
                count(&|a| a.severity == c.severity),
                "{at}: severity {}",
                c.severity
            );
        }
        assert_eq!(
            summary.by_severity.iter().map(|c| c.count).sum::<i64>(),
            assessed.len() as i64
        );
        for c in &summary.by_strategy {
            assert_eq!(
                c.count,
                count(&|a| a.strategy == c.strategy),
                "{at}: strategy {}",
                c.strategy
            );
        }
        assert_eq!(
            summary.by_strategy.iter().map(|c| c.count).sum::<i64>(),
            assessed.len() as i64
        );
        for c in &summary.by_status {
            let n = open.iter().filter(|r| r.status == c.status).count() as i64;
            assert_eq!(c.count, n, "{at}: status {}", c.status);
        }
        assert_eq!(
            summary.by_status.iter().map(|c| c.count).sum::<i64>(),
            open.len() as i64
        );
        assert_eq!(summary.heat_map.len(), 25, "{at}: 5×5 cells");
        for cell in &summary.heat_map {
            let n = count(&|a| a.impact == cell.impact && a.likelihood == cell.likelihood);
            assert_eq!(
                cell.count, n,
                "{at}: cell {}×{}",
                cell.impact, cell.likelihood
            );
        }
        let mut top = assessed.clone();
        top.sort_by_key(|(r, a)| (-a.score, r.create_time.map(|t| (t.seconds, t.nanos))));
        let want: Vec<&str> = top.iter().take(10).map(|(r, _)| r.name.as_str()).collect();
        let got: Vec<&str> = summary.top_risks.iter().map(|t| t.risk.as_str()).collect();
        assert_eq!(got, want, "{at}: top risks");
        // Appetite: each risk against its own service's thresholds.
        let (mut within, mut above, mut outside, mut treated) = (0, 0, 0, 0);
        let mut worst = AppetiteStatus::WithinAppetite;
        for (r, a) in &assessed {
            let (appetite, tolerance) = self.thresholds[r.service.trim_start_matches("services/")];
            if a.severity <= appetite {
                within += 1;
            } else if self.treated.contains(&r.name) {
                treated += 1;
            } else if a.severity <= tolerance {
                above += 1;
                worst = worst.max(AppetiteStatus::AboveAppetite);
            } else {
                outside += 1;
                worst = AppetiteStatus::OutsideTolerance;
            }
        }
        let got = summary.appetite.unwrap_or_default();
        assert_eq!(
            (
                got.within_appetite,
                got.above_appetite,
                got.outside_tolerance,
                got.above_appetite_treated,
                got.status
            ),
            (within, above, outside, treated, worst as i32),
            "{at}: appetite"
        );
    }
}

/// Incident figures a node must show: (open incidents, KPI count, mean and p90 time to detect
/// in hours).
fn check_incidents(node: &PostureNode, open: i64, count: i64, mean_h: i64, p90_h: i64) {
    let at = &node.scope;
    let s = node
        .incidents
        .as_ref()
        .unwrap_or_else(|| panic!("{at}: no incident figures"));
    assert_eq!(s.open_incidents, open, "{at}: open incidents");
    assert_eq!(
        s.open_by_phase.iter().map(|c| c.count).sum::<i64>(),
        open,
        "{at}"
    );
    assert_eq!(
        s.open_by_severity.iter().map(|c| c.count).sum::<i64>(),
        open,
        "{at}"
    );
    let kpis = s.kpis.unwrap_or_default();
    assert_eq!(kpis.count, count, "{at}: KPI count");
    let ttd = kpis.time_to_detect.unwrap_or_default();
    let secs = |d: Option<prost_types::Duration>| d.map(|d| d.seconds).unwrap_or(0);
    assert_eq!(ttd.count, count, "{at}: detect count");
    assert_eq!(
        secs(ttd.mean),
        mean_h * HOUR_SECS,
        "{at}: mean time to detect"
    );
    assert_eq!(secs(ttd.p90), p90_h * HOUR_SECS, "{at}: p90 time to detect");
}

async fn every_figure_of_every_node(backend: Backend) {
    let db = TestDb::new(backend).await;
    let config = embedded_config(&db, backend);
    let clock = config.clock.clone();
    let app = start_gateway(&db, config).await;
    for bu in ["retail", "corp", "empty"] {
        create_bu(&app, bu).await;
    }
    for (service, bu) in [("shop", "retail"), ("pos", "retail"), ("hr", "corp")] {
        create_service(&app, service, bu).await;
    }

    // Appetite: the enterprise accepts LOW and tolerates HIGH; hr tolerates only MEDIUM.
    let mut posture = app.posture_as("erm_executive");
    posture
        .set_risk_appetite(SetRiskAppetiteRequest {
            risk_appetite: Some(RiskAppetite {
                name: "enterprise/riskAppetite".into(),
                appetite: Severity::Low as i32,
                tolerance: Severity::High as i32,
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("enterprise appetite");
    app.posture_as("trust_team")
        .set_risk_appetite(SetRiskAppetiteRequest {
            risk_appetite: Some(RiskAppetite {
                name: "services/hr/riskAppetite".into(),
                tolerance: Severity::Medium as i32,
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("hr override");

    // Risks: assessed at various levels, one unassessed, one closed, one treated.
    let mut names = Vec::new();
    for (title, service, assessment) in [
        ("card skimming", "shop", Some((5, 5, 4))),
        ("cart outage", "shop", Some((2, 2, 2))),
        ("stale stock", "shop", None),
        ("old terminal", "shop", Some((3, 3, 3))),
        ("till fraud", "pos", Some((4, 4, 4))),
        ("payroll leak", "hr", Some((4, 3, 3))),
        ("badge cloning", "hr", Some((1, 2, 1))),
    ] {
        let risk = create_risk(&app, new_risk(title, service)).await;
        if let Some((i, l, d)) = assessment {
            assess(&app, &risk.name, i, l, d).await;
        }
        names.push(risk.name);
    }
    app.risks()
        .delete_risk(pb::DeleteRiskRequest {
            name: names[3].clone(),
            reason: "terminal replaced".into(),
            ..Default::default()
        })
        .await
        .expect("close a risk");
    let response = propose_response(&app, "risk_owner", &names[4], mitigation("new tills"))
        .await
        .expect("propose");
    approve_response(&app, "erm_executive", &response.name)
        .await
        .expect("approve");
    // Time-driven figures: an acceptance of an hr risk and an exception of shop and hr (one
    // exception spanning both business units), expiring soon after the clock moves 40 days; an
    // action item of a shop risk overdue by then, and the CRITICAL risks' 30-day reviews.
    let acceptance = pb::RiskResponse {
        decision: pb::ResponseDecision::Accept as i32,
        rationale: "Payroll moves to the new provider next quarter.".into(),
        acceptance_expire_time: Some(days(60)),
        ..Default::default()
    };
    let response = propose_response(&app, "risk_owner", &names[5], acceptance)
        .await
        .expect("propose acceptance");
    approve_response(&app, "erm_executive", &response.name)
        .await
        .expect("approve acceptance");
    let requested = ExceptionServiceClient::new(app.channel_as("trust_team"))
        .create_policy_exception(pb::CreatePolicyExceptionRequest {
            policy_exception: Some(pb::PolicyException {
                title: "Legacy TLS".into(),
                scope: "TLS 1.0 on the partner relay".into(),
                services: vec!["services/shop".into(), "services/hr".into()],
                justification: "Partners migrate next quarter.".into(),
                expire_time: Some(days(50)),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("request exception")
        .into_inner();
    ExceptionServiceClient::new(app.channel_as("erm_executive"))
        .approve_policy_exception(pb::ApprovePolicyExceptionRequest {
            name: requested.name,
            comment: "ok".into(),
            ..Default::default()
        })
        .await
        .expect("approve exception");
    let plan = create_action_plan(&app, "admin", &names[0], "replace the readers").await;
    add_action_item(&app, "admin", &plan, action_item("new readers", days(1)))
        .await
        .expect("action item");
    clock.advance(std::time::Duration::from_secs(40 * 86_400));
    let mut risks = Vec::new();
    for name in &names {
        risks.push(get_risk(&app, name).await);
    }

    // Incidents: one spanning both business units, one of an unknown service, one that is
    // not an incident.
    let spanning = incident(&app, "credential stuffing", &["shop", "hr"], 1).await;
    let shop_only = incident(&app, "skimmer found", &["shop"], 3).await;
    // A service retired from the registry after its incident was declared: the incident
    // counts under `unassigned`.
    create_service(&app, "legacy-app", "corp").await;
    incident(&app, "legacy app defaced", &["legacy-app"], 2).await;
    app.org()
        .delete_service(pb::DeleteServiceRequest {
            name: "services/legacy-app".into(),
            etag: String::new(),
        })
        .await
        .expect("retire legacy-app");
    let not_one = incident(&app, "false alarm", &["pos"], 5).await;
    app.incidents()
        .update_incident(ipb::UpdateIncidentRequest {
            incident: Some(ipb::Incident {
                name: not_one.name.clone(),
                classification: ipb::Classification::NotAnIncident as i32,
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["classification".into()],
            }),
        })
        .await
        .expect("classify");
    app.incidents()
        .advance_phase(ipb::AdvancePhaseRequest {
            name: shop_only.name.clone(),
            target_phase: ipb::Phase::Containment as i32,
            ..Default::default()
        })
        .await
        .expect("contain");
    let _ = spanning;

    let answer = get_posture(&app, "trust_team", "enterprise")
        .await
        .expect("posture");
    assert!(answer.missing.is_empty(), "{:?}", answer.missing);
    let root = answer.root.clone().expect("root");
    let all = nodes(&root);
    assert_eq!(
        all.keys().cloned().collect::<Vec<_>>(),
        [
            "businessUnits/corp",
            "businessUnits/empty",
            "businessUnits/retail",
            "enterprise",
            "services/hr",
            "services/pos",
            "services/shop",
            "unassigned"
        ]
    );
    assert_eq!(root.kind, NodeKind::Enterprise as i32);
    assert_eq!(
        root.children
            .iter()
            .map(|c| c.scope.as_str())
            .collect::<Vec<_>>(),
        [
            "businessUnits/corp",
            "businessUnits/empty",
            "businessUnits/retail",
            "unassigned"
        ]
    );
    assert_eq!(all["services/shop"].display_name, "Service shop");

    let expected = Expected {
        risks,
        thresholds: BTreeMap::from([
            ("shop".into(), (Severity::Low as i32, Severity::High as i32)),
            ("pos".into(), (Severity::Low as i32, Severity::High as i32)),
            ("hr".into(), (Severity::Low as i32, Severity::Medium as i32)),
        ]),
        treated: vec![names[4].clone(), names[5].clone()],
        now: days(40).seconds,
    };
    // The exception spans both business units: once in each, and once at the enterprise.
    for (scope, services, timed) in [
        ("enterprise", vec!["shop", "pos", "hr"], (1, 1, 1)),
        ("businessUnits/retail", vec!["shop", "pos"], (1, 0, 1)),
        ("businessUnits/corp", vec!["hr"], (0, 1, 1)),
        ("businessUnits/empty", vec![], (0, 0, 0)),
        ("services/shop", vec!["shop"], (1, 0, 1)),
        ("services/pos", vec!["pos"], (0, 0, 0)),
        ("services/hr", vec!["hr"], (0, 1, 1)),
    ] {
        expected.check(&all[scope], &services, timed);
    }
    assert!(
        root.risks.as_ref().is_some_and(|r| r.overdue_reviews > 0),
        "the CRITICAL risks' reviews are overdue 40 days on"
    );
    assert!(
        all["unassigned"].risks.is_none(),
        "unassigned has incidents only"
    );
    assert_eq!(root.risks.as_ref().map(|r| r.open_risks), Some(6));
    assert_eq!(
        all["services/hr"]
            .appetite
            .map(|a| (a.appetite, a.tolerance)),
        Some((Severity::Low as i32, Severity::Medium as i32))
    );
    assert_eq!(
        answer.appetite_versions.len(),
        2,
        "{:?}",
        answer.appetite_versions
    );

    // Incidents: the spanning one once per node — once at the enterprise, once in each unit.
    check_incidents(&root, 3, 3, 2, 3);
    check_incidents(&all["businessUnits/retail"], 2, 2, 2, 3);
    check_incidents(&all["services/shop"], 2, 2, 2, 3);
    check_incidents(&all["businessUnits/corp"], 1, 1, 1, 1);
    check_incidents(&all["services/hr"], 1, 1, 1, 1);
    check_incidents(&all["services/pos"], 0, 0, 0, 0);
    check_incidents(&all["businessUnits/empty"], 0, 0, 0, 0);
    check_incidents(&all["unassigned"], 1, 1, 2, 2);
    assert_eq!(
        root.incidents.as_ref().map(|i| i.top_incidents.len()),
        Some(3),
        "the trust team sees the open incidents"
    );

    // A viewer gets counts and KPIs, never incident names.
    let seen = get_posture(&app, "viewer", "enterprise")
        .await
        .expect("viewer");
    for node in nodes(&seen.root.expect("root")).values() {
        let incidents = node.incidents.clone().expect("incident figures");
        assert!(incidents.top_incidents.is_empty(), "{}", node.scope);
    }

    // A business unit's subtree, and bad scopes.
    let retail = get_posture(&app, "reporter", "businessUnits/retail")
        .await
        .expect("unit posture")
        .root
        .expect("root");
    assert_eq!(retail.children.len(), 2);
    expected.check(&retail, &["shop", "pos"], (1, 0, 1));
    let err = get_posture(&app, "reporter", "businessUnits/nope")
        .await
        .expect_err("unknown unit");
    assert_eq!(err.code(), Code::NotFound);
    let err = get_posture(&app, "reporter", "galaxy")
        .await
        .expect_err("bad scope");
    names_required(err, &["scope"]);
    let err = get_posture(&app, "responder", "enterprise")
        .await
        .expect_err("responders do not read posture");
    assert_eq!(err.code(), Code::PermissionDenied);
}

async fn scoped_principals_see_their_services_only(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = embedded_gateway(&db, backend).await;
    org_fixture(&app).await;
    create_service(&app, "sharepoint", "productivity").await;
    for scope in [
        "enterprise",
        "businessUnits/productivity",
        "services/sharepoint",
    ] {
        let err = get_posture(&app, "scoped", scope).await.expect_err(scope);
        assert_refused(&err, Code::PermissionDenied, "services/exchange-online");
    }
    let own = get_posture(&app, "scoped", "services/exchange-online")
        .await
        .expect("own service");
    let root = own.root.expect("root");
    assert_eq!(root.scope, "services/exchange-online");
    assert!(root.children.is_empty());
}

mod processes {
    //! Partial results with real processes: a forwarding gateway in front of a risk-service
    //! and an incident-service, each its own process, one of them stopped.

    use std::{net::SocketAddr, path::PathBuf, process::Child, time::Duration};

    use assurance_proto::gateway::v1::{PostureHalf, posture_service_client::PostureServiceClient};
    use assurance_runtime::auth::client::Bearer;
    use assurance_tests::server::{free_addr, wait_serving};
    use tonic::Code;

    use super::*;

    crate::on_both_backends!(a_missing_half_is_reported_not_fatal);

    struct Process(Child);

    impl Drop for Process {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// `assurance-bench serve…` hosts each component exactly as its binary does.
    fn spawn(command: &str, addr: SocketAddr, args: &[String]) -> Process {
        let http = free_addr().expect("free port");
        let child =
            std::process::Command::new(PathBuf::from(env!("CARGO_BIN_EXE_assurance-bench")))
                .arg(command)
                .args([
                    "--listen",
                    &addr.to_string(),
                    "--http-listen",
                    &http.to_string(),
                ])
                .args(["--log-format", "json"])
                .args(args)
                .env(
                    "RUST_LOG",
                    std::env::var("SERVER_LOG").unwrap_or_else(|_| "warn".into()),
                )
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("spawn");
        Process(child)
    }

    async fn started(command: &str, addr: SocketAddr, args: &[String]) -> Process {
        let process = spawn(command, addr, args);
        wait_serving(addr, Duration::from_secs(60))
            .await
            .unwrap_or_else(|e| panic!("{command} on {addr}: {e}"));
        process
    }

    fn halves(posture: &Posture) -> Vec<i32> {
        posture.missing.iter().map(|m| m.half).collect()
    }

    async fn a_missing_half_is_reported_not_fatal(backend: Backend) {
        let db = TestDb::new(backend).await;
        let tokens = db.tokens.path.display().to_string();
        let token_file = db.data_dir().join("system-token");
        std::fs::write(&token_file, db.tokens.token("system")).expect("token file");
        let (risk_addr, incident_addr, gateway_addr) = (
            free_addr().expect("port"),
            free_addr().expect("port"),
            free_addr().expect("port"),
        );
        let service_args = |url: String| {
            vec![
                "--database-url".into(),
                url,
                "--tokens-file".into(),
                tokens.clone(),
            ]
        };
        let risk = started("serve", risk_addr, &service_args(db.url.clone())).await;
        let incident_args = service_args(db.incident_url());
        let incident = started("serve-incident", incident_addr, &incident_args).await;
        let gateway_store = match backend {
            Backend::Postgres => db.url.clone(),
            Backend::Sqlite => assurance_runtime::db::sqlite_url(&db.data_dir().join("gateway.db")),
        };
        let _gateway = started(
            "serve-gateway",
            gateway_addr,
            &[
                "--risk-url".into(),
                format!("http://{risk_addr}"),
                "--incident-url".into(),
                format!("http://{incident_addr}"),
                "--tokens-file".into(),
                tokens.clone(),
                "--service-token-file".into(),
                token_file.display().to_string(),
                "--database-url".into(),
                gateway_store,
                "--posture-deadline-ms".into(),
                "3000".into(),
            ],
        )
        .await;
        let channel = channel(gateway_addr).await;
        let as_who =
            |who: &str| Bearer::new(channel.clone(), db.tokens.token(who)).expect("token metadata");
        let app_org =
            assurance_proto::risk::v1::organization_service_client::OrganizationServiceClient::new(
                as_who("admin"),
            );
        let mut org = app_org.clone();
        org.create_business_unit(pb::CreateBusinessUnitRequest {
            business_unit_id: "retail".into(),
            business_unit: Some(pb::BusinessUnit {
                display_name: "Retail".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("unit");
        org.create_service(pb::CreateServiceRequest {
            service_id: "shop".into(),
            service: Some(pb::Service {
                business_unit: "businessUnits/retail".into(),
                display_name: "Shop".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("service");
        let mut risks =
            assurance_proto::risk::v1::risk_service_client::RiskServiceClient::new(as_who("admin"));
        risks
            .create_risk(pb::CreateRiskRequest {
                risk: Some(new_risk("card skimming", "shop")),
                request_id: String::new(),
            })
            .await
            .expect("risk");
        assurance_proto::incident::v1::incident_service_client::IncidentServiceClient::new(as_who(
            "responder",
        ))
        .declare_incident(ipb::DeclareIncidentRequest {
            incident: Some(ipb::Incident {
                affected_services: vec!["services/shop".into()],
                ..phishing_wave()
            }),
            ..Default::default()
        })
        .await
        .expect("incident");

        let mut posture = PostureServiceClient::new(as_who("reporter"));
        let ask = || GetPostureRequest {
            scope: "enterprise".into(),
            ..Default::default()
        };
        let whole = posture
            .get_posture(ask())
            .await
            .expect("posture")
            .into_inner();
        assert!(whole.missing.is_empty(), "{:?}", whole.missing);
        let root = whole.root.clone().expect("root");
        assert_eq!(root.risks.as_ref().map(|r| r.open_risks), Some(1));
        assert_eq!(root.incidents.as_ref().map(|i| i.open_incidents), Some(1));

        // incident-service stopped: the risk half, and what is missing.
        drop(incident);
        let partial = posture
            .get_posture(ask())
            .await
            .expect("partial")
            .into_inner();
        assert_eq!(halves(&partial), [PostureHalf::Incidents as i32]);
        assert!(
            partial.missing[0].reason.contains("incident-service"),
            "{:?}",
            partial.missing
        );
        let root = partial.root.expect("root");
        assert_eq!(root.risks.as_ref().map(|r| r.open_risks), Some(1));
        assert!(root.incidents.is_none());
        assert_eq!(root.children.len(), 2, "retail and unassigned");

        // Back, and risk-service stopped instead: the incident half, grouped by the registry
        // read last.
        let _incident = started("serve-incident", incident_addr, &incident_args).await;
        drop(risk);
        let partial = posture
            .get_posture(ask())
            .await
            .expect("partial")
            .into_inner();
        assert_eq!(halves(&partial), [PostureHalf::Risks as i32]);
        let root = partial.root.expect("root");
        assert!(root.risks.is_none());
        assert_eq!(root.incidents.as_ref().map(|i| i.open_incidents), Some(1));
        let shop = nodes(&root)["services/shop"].clone();
        assert_eq!(shop.incidents.map(|i| i.open_incidents), Some(1));

        // Both gone: UNAVAILABLE.
        drop(_incident);
        let err = posture
            .get_posture(ask())
            .await
            .expect_err("nothing to answer with");
        assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    }
}
