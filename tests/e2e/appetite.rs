//! Risk appetite at the gateway: versions with effective times, inheritance enterprise →
//! business unit → service within the parent's tolerance, who may set what, retries, etags and
//! the gateway's audit trail.

use assurance_proto::{
    audit::v1 as audit_pb,
    gateway::v1::{
        GetRiskAppetiteRequest, ListRiskAppetiteVersionsRequest, RiskAppetite,
        SetRiskAppetiteRequest, audit_service_client::AuditServiceClient,
    },
    r#type::v1::Severity,
};
use tonic::Code;

use crate::helpers::*;

crate::on_both_backends!(appetite_versions_inherit_and_stay_within_tolerance);

fn appetite(name: &str, appetite: Severity, tolerance: Severity) -> RiskAppetite {
    RiskAppetite {
        name: name.into(),
        appetite: appetite as i32,
        tolerance: tolerance as i32,
        reason: "Board risk statement 2026".into(),
        ..Default::default()
    }
}

async fn set(
    app: &App,
    who: &str,
    body: RiskAppetite,
    request_id: &str,
) -> Result<RiskAppetite, tonic::Status> {
    app.posture_as(who)
        .set_risk_appetite(SetRiskAppetiteRequest {
            risk_appetite: Some(body),
            request_id: request_id.into(),
        })
        .await
        .map(|r| r.into_inner())
}

async fn get(app: &App, name: &str, as_of: Option<prost_types::Timestamp>) -> RiskAppetite {
    app.posture_as("viewer")
        .get_risk_appetite(GetRiskAppetiteRequest {
            name: name.into(),
            as_of,
        })
        .await
        .unwrap_or_else(|e| panic!("get {name}: {e:?}"))
        .into_inner()
}

fn effective(a: &RiskAppetite) -> (i32, String, i32, String) {
    let ap = a.effective_appetite.clone().unwrap_or_default();
    let to = a.effective_tolerance.clone().unwrap_or_default();
    (ap.value, ap.source, to.value, to.source)
}

async fn appetite_versions_inherit_and_stay_within_tolerance(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = embedded_gateway(&db, backend).await;
    create_bu(&app, "retail").await;
    create_service(&app, "shop", "retail").await;
    create_service(&app, "pos", "retail").await;

    // Nothing set: the built-in default, version 0.
    let shop = get(&app, "services/shop/riskAppetite", None).await;
    assert_eq!(shop.version, 0);
    assert_eq!(
        effective(&shop),
        (
            Severity::Medium as i32,
            String::new(),
            Severity::High as i32,
            String::new()
        )
    );

    // The enterprise's appetite is the ERM executive's; overrides are the trust team's.
    let enterprise = appetite("enterprise/riskAppetite", Severity::Low, Severity::High);
    for who in ["trust_team", "admin", "viewer"] {
        let err = set(&app, who, enterprise.clone(), "").await.expect_err(who);
        assert_eq!(err.code(), Code::PermissionDenied, "{who}: {err:?}");
    }
    let v1 = set(&app, "erm_executive", enterprise.clone(), "board-1")
        .await
        .expect("enterprise appetite");
    assert_eq!((v1.version, v1.etag.as_str()), (1, "\"1\""));
    assert_eq!(v1.set_by, "erm_executive@example.com");
    // A retry with the same request id is the same version, not a second one.
    let again = set(&app, "erm_executive", enterprise.clone(), "board-1")
        .await
        .expect("retry");
    assert_eq!(again.version, 1);
    let unit = appetite(
        "businessUnits/retail/riskAppetite",
        Severity::Medium,
        Severity::Unspecified,
    );
    let err = set(&app, "erm_executive", unit.clone(), "")
        .await
        .expect_err("an override is the trust team's");
    assert_eq!(err.code(), Code::PermissionDenied);
    set(&app, "trust_team", unit, "")
        .await
        .expect("unit override");

    // The service inherits its appetite from its unit and its tolerance from the enterprise.
    let shop = get(&app, "services/shop/riskAppetite", None).await;
    assert_eq!(
        effective(&shop),
        (
            Severity::Medium as i32,
            "businessUnits/retail/riskAppetite".into(),
            Severity::High as i32,
            "enterprise/riskAppetite".into()
        )
    );

    // Overrides stay within the parent's tolerance; appetite ≤ tolerance; no past versions.
    let err = set(
        &app,
        "trust_team",
        appetite(
            "services/shop/riskAppetite",
            Severity::Unspecified,
            Severity::Critical,
        ),
        "",
    )
    .await
    .expect_err("above the parent's tolerance");
    names_required(err, &["risk_appetite.tolerance"]);
    let err = set(
        &app,
        "erm_executive",
        appetite("enterprise/riskAppetite", Severity::High, Severity::Low),
        "",
    )
    .await
    .expect_err("appetite above tolerance");
    names_required(err, &["risk_appetite.appetite"]);
    let mut past = appetite("enterprise/riskAppetite", Severity::Low, Severity::High);
    past.effective_time = Some(days(-1));
    let err = set(&app, "erm_executive", past, "")
        .await
        .expect_err("past");
    names_required(err, &["risk_appetite.effective_time"]);
    let err = set(
        &app,
        "trust_team",
        appetite(
            "businessUnits/nope/riskAppetite",
            Severity::Low,
            Severity::Low,
        ),
        "",
    )
    .await
    .expect_err("unknown unit");
    assert_eq!(err.code(), Code::NotFound);
    let err = set(&app, "erm_executive", RiskAppetite::default(), "")
        .await
        .expect_err("empty");
    names_required(err, &["risk_appetite.name"]);

    // A version scheduled for later leaves today's in force until then.
    let mut later = appetite("enterprise/riskAppetite", Severity::Low, Severity::Medium);
    later.effective_time = Some(days(10));
    later.etag = "\"1\"".into();
    let v2 = set(&app, "erm_executive", later.clone(), "")
        .await
        .expect("scheduled version");
    assert_eq!(v2.version, 2);
    // The etag of version 1 is stale now.
    let err = set(&app, "erm_executive", later, "")
        .await
        .expect_err("stale etag");
    assert_eq!(err.code(), Code::Aborted);
    let now = get(&app, "enterprise/riskAppetite", None).await;
    assert_eq!((now.version, now.tolerance), (1, Severity::High as i32));
    let then = get(&app, "services/shop/riskAppetite", Some(days(11))).await;
    assert_eq!(
        effective(&then).2,
        Severity::Medium as i32,
        "the lowered enterprise tolerance reaches the service"
    );

    // Versions, newest first, in pages.
    let mut client = app.posture_as("reporter");
    let first = client
        .list_risk_appetite_versions(ListRiskAppetiteVersionsRequest {
            name: "enterprise/riskAppetite".into(),
            page_size: 1,
            page_token: String::new(),
        })
        .await
        .expect("page 1")
        .into_inner();
    assert_eq!(first.risk_appetites[0].version, 2);
    let second = client
        .list_risk_appetite_versions(ListRiskAppetiteVersionsRequest {
            name: "enterprise/riskAppetite".into(),
            page_size: 1,
            page_token: first.next_page_token.clone(),
        })
        .await
        .expect("page 2")
        .into_inner();
    assert_eq!(second.risk_appetites[0].version, 1);
    assert!(second.next_page_token.is_empty());

    // Every change is in the gateway's own audit trail, with who made it.
    let trail = AuditServiceClient::new(app.channel_as("trust_team"))
        .list_audit_events(audit_pb::ListAuditEventsRequest {
            page_size: 100,
            ..Default::default()
        })
        .await
        .expect("gateway audit trail")
        .into_inner()
        .audit_events;
    let changes: Vec<(String, String)> = trail
        .iter()
        .map(|e| (e.resource.clone(), e.principal.clone()))
        .collect();
    assert_eq!(changes.len(), 3, "{changes:?}");
    assert!(changes.contains(&(
        "enterprise/riskAppetite@1".into(),
        "erm_executive@example.com".into()
    )));
    assert!(changes.contains(&(
        "businessUnits/retail/riskAppetite@1".into(),
        "trust_team@example.com".into()
    )));
    assert!(trail.iter().all(|e| e.service == "gateway"));
    let err = AuditServiceClient::new(app.channel_as("viewer"))
        .list_audit_events(audit_pb::ListAuditEventsRequest::default())
        .await
        .expect_err("auditors only");
    assert_eq!(err.code(), Code::PermissionDenied);
}
