//! The controls framework through the embedded gateway, authenticated: the catalogue (create,
//! get, list with filters and pages, update with etags), risk ↔ control links in both
//! directions with service scope, the control deficiency an assessment derives from linked
//! controls, and the catalogue import (YAML and JSON, idempotent).

use assurance_proto::risk::v1::{self as pb, control_service_client::ControlServiceClient};
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::*;

fn controls_as(app: &App, who: &str) -> ControlServiceClient<Authed> {
    ControlServiceClient::new(app.channel_as(who))
}

fn req(framework: &str, section: &str) -> pb::Requirement {
    pb::Requirement {
        framework: framework.into(),
        section: section.into(),
    }
}

fn new_control(
    title: &str,
    design: pb::ControlEffectiveness,
    operating: pb::ControlEffectiveness,
    requirements: Vec<pb::Requirement>,
) -> pb::Control {
    pb::Control {
        title: title.into(),
        description: "Tested every quarter.".into(),
        owner: "iam-team@example.com".into(),
        design_effectiveness: design as i32,
        operating_effectiveness: operating as i32,
        last_test_time: Some(prost_types::Timestamp {
            seconds: 1_780_000_000,
            nanos: 0,
        }),
        requirements,
        ..Default::default()
    }
}

async fn create_control(
    app: &App,
    who: &str,
    id: &str,
    control: pb::Control,
) -> Result<pb::Control, tonic::Status> {
    controls_as(app, who)
        .create_control(pb::CreateControlRequest {
            control_id: id.into(),
            control: Some(control),
            request_id: String::new(),
        })
        .await
        .map(|r| r.into_inner())
}

/// A page of the catalogue as a viewer reads it.
async fn list_page(
    app: &App,
    filter: &str,
    page_size: i32,
    page_token: String,
) -> Result<pb::ListControlsResponse, tonic::Status> {
    controls_as(app, "viewer")
        .list_controls(pb::ListControlsRequest {
            filter: filter.into(),
            page_size,
            page_token,
            order_by: String::new(),
        })
        .await
        .map(|r| r.into_inner())
}

async fn list(app: &App, filter: &str) -> Vec<String> {
    list_page(app, filter, 0, String::new())
        .await
        .unwrap_or_else(|e| panic!("list {filter}: {e}"))
        .controls
        .into_iter()
        .map(|c| c.name)
        .collect()
}

async fn get_control(app: &App, name: &str) -> Result<pb::Control, tonic::Status> {
    controls_as(app, "viewer")
        .get_control(pb::GetControlRequest { name: name.into() })
        .await
        .map(|r| r.into_inner())
}

async fn update_control(
    app: &App,
    who: &str,
    request: pb::UpdateControlRequest,
) -> Result<pb::Control, tonic::Status> {
    controls_as(app, who)
        .update_control(request)
        .await
        .map(|r| r.into_inner())
}

/// `who` links a risk to a control.
async fn link(
    app: &App,
    who: &str,
    risk: &str,
    control: &str,
) -> Result<pb::RiskControlLink, tonic::Status> {
    let request = pb::CreateRiskControlLinkRequest {
        parent: risk.into(),
        risk_control_link: Some(pb::RiskControlLink {
            control: control.into(),
            ..Default::default()
        }),
        request_id: String::new(),
    };
    let reply = controls_as(app, who)
        .create_risk_control_link(request)
        .await;
    reply.map(|r| r.into_inner())
}

/// `who` removes the link of a risk to a control.
async fn unlink(app: &App, who: &str, risk: &str, control: &str) -> Result<(), tonic::Status> {
    let id = control.strip_prefix("controls/").unwrap_or(control);
    let request = pb::DeleteRiskControlLinkRequest {
        name: format!("{risk}/controlLinks/{id}"),
    };
    let reply = controls_as(app, who)
        .delete_risk_control_link(request)
        .await;
    reply.map(|r| r.into_inner())
}

async fn risk_controls(app: &App, risk: &str) -> Vec<String> {
    let request = pb::ListRiskControlsRequest {
        parent: risk.into(),
        ..Default::default()
    };
    let reply = controls_as(app, "viewer").list_risk_controls(request).await;
    let controls = reply.expect("risk controls").into_inner().controls;
    controls.into_iter().map(|c| c.name).collect()
}

/// A page of the risks linked to a control.
async fn control_risks_page(
    app: &App,
    control: &str,
    show_deleted: bool,
    page_size: i32,
) -> pb::ListControlRisksResponse {
    controls_as(app, "viewer")
        .list_control_risks(pb::ListControlRisksRequest {
            parent: control.into(),
            show_deleted,
            page_size,
            ..Default::default()
        })
        .await
        .expect("control risks")
        .into_inner()
}

async fn control_risks(app: &App, control: &str, show_deleted: bool) -> Vec<String> {
    let page = control_risks_page(app, control, show_deleted, 0).await;
    page.risks.into_iter().map(|r| r.name).collect()
}

/// Assesses (4,4,·), leaving the control deficiency to be derived from the linked controls.
async fn assess_deriving(app: &App, risk: &str) -> pb::Assessment {
    assess_as(app, "admin", risk, assessment(4, 4, 0))
        .await
        .expect("assess deriving control deficiency")
        .latest_assessment
        .expect("latest assessment")
}

use pb::ControlEffectiveness::{Effective, Ineffective, NotTested, PartiallyEffective};

fn mfa_control() -> pb::Control {
    new_control(
        "MFA enforced for every sign-in",
        Effective,
        PartiallyEffective,
        vec![req("ISO 27001", "A.5"), req("SOC 2", "CA-03")],
    )
}

/// `backup-restore` with unspecified effectiveness (by an admin).
async fn create_backup_control(app: &App) -> pb::Control {
    create_control(
        app,
        "admin",
        "backup-restore",
        pb::Control {
            title: "Quarterly restore tests".into(),
            owner: "sre@example.com".into(),
            requirements: vec![req("ISO 22301", "6.1.1"), req("FedRAMP", "RA-3")],
            ..Default::default()
        },
    )
    .await
    .expect("create with defaults")
}

/// `dlp-mail` (by the system principal).
async fn create_dlp_control(app: &App) {
    create_control(
        app,
        "system",
        "dlp-mail",
        new_control(
            "DLP on outbound mail",
            Ineffective,
            Effective,
            vec![req("SOC 2", "CC6.7")],
        ),
    )
    .await
    .expect("create as system");
}

/// The catalogue of three controls the list and update scenarios work on; returns
/// `mfa-enforcement`, created by the trust team with request id `create-mfa-1`.
async fn three_controls(app: &App) -> pb::Control {
    let created = controls_as(app, "trust_team")
        .create_control(pb::CreateControlRequest {
            control_id: "mfa-enforcement".into(),
            control: Some(mfa_control()),
            request_id: "create-mfa-1".into(),
        })
        .await
        .expect("create")
        .into_inner();
    create_backup_control(app).await;
    create_dlp_control(app).await;
    created
}

async fn creating_a_control_is_idempotent_validated_and_for_the_trust_team(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = embedded_gateway(&db, backend).await;

    let mfa = mfa_control();
    // Idempotent create: a retry with the request id returns the same control.
    let create = pb::CreateControlRequest {
        control_id: "mfa-enforcement".into(),
        control: Some(mfa.clone()),
        request_id: "create-mfa-1".into(),
    };
    let created = controls_as(&app, "trust_team")
        .create_control(create.clone())
        .await
        .expect("create")
        .into_inner();
    assert_eq!(created.name, "controls/mfa-enforcement");
    assert_eq!(created.etag, "\"1\"");
    assert_eq!(created.requirements.len(), 2);
    let replayed = controls_as(&app, "trust_team")
        .create_control(create)
        .await
        .expect("replay")
        .into_inner();
    assert_eq!(replayed, created);
    let err = create_control(&app, "admin", "mfa-enforcement", mfa.clone())
        .await
        .expect_err("exists");
    assert_eq!(err.code(), Code::AlreadyExists);
    // The catalogue is the trust team's: service managers and risk owners may not add to it.
    for who in ["service_manager", "risk_owner", "viewer"] {
        let err = create_control(&app, who, "other", mfa.clone())
            .await
            .expect_err("not a control editor");
        assert_eq!(err.code(), Code::PermissionDenied, "{who}");
    }
    // Every bad field at once; unspecified effectiveness means NOT_TESTED.
    let err = create_control(
        &app,
        "trust_team",
        "Bad_Id",
        pb::Control {
            title: String::new(),
            owner: "two words".into(),
            operating_effectiveness: 42,
            requirements: vec![
                req("SOC 2", ""),
                req("ISO 27001", "A.5"),
                req("ISO 27001", "A.5"),
            ],
            ..Default::default()
        },
    )
    .await
    .expect_err("invalid");
    assert_eq!(
        violations(&err),
        vec![
            "control_id",
            "control.title",
            "control.owner",
            "control.operating_effectiveness",
            "control.requirements[0].section",
            "control.requirements[2]",
        ]
    );
    let backup = create_backup_control(&app).await;
    assert_eq!(backup.design_effectiveness, NotTested as i32);
    assert_eq!(backup.operating_effectiveness, NotTested as i32);
    assert_eq!(backup.last_test_time, None);
    create_dlp_control(&app).await;
}

async fn controls_are_read_listed_by_filter_and_paged(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = embedded_gateway(&db, backend).await;
    let created = three_controls(&app).await;

    // Get.
    let got = get_control(&app, "controls/mfa-enforcement")
        .await
        .expect("get");
    assert_eq!(got, created);
    let err = get_control(&app, "controls/nope")
        .await
        .expect_err("missing");
    assert_eq!(err.code(), Code::NotFound);

    // Lists: by id; filters on framework, effectiveness, owner, test time.
    let all = [
        "controls/backup-restore",
        "controls/dlp-mail",
        "controls/mfa-enforcement",
    ];
    assert_eq!(list(&app, "").await, all);
    assert_eq!(
        list(&app, "framework = \"SOC 2\"").await,
        ["controls/dlp-mail", "controls/mfa-enforcement"]
    );
    assert_eq!(
        list(&app, "framework != \"SOC 2\"").await,
        ["controls/backup-restore"]
    );
    assert_eq!(
        list(&app, "framework = \"ISO 27001\" OR framework = FedRAMP").await,
        ["controls/backup-restore", "controls/mfa-enforcement"]
    );
    assert_eq!(
        list(&app, "design_effectiveness = EFFECTIVE").await,
        ["controls/mfa-enforcement"]
    );
    assert_eq!(
        list(
            &app,
            "operating_effectiveness = CONTROL_EFFECTIVENESS_EFFECTIVE"
        )
        .await,
        ["controls/dlp-mail"]
    );
    assert_eq!(
        list(
            &app,
            "owner = \"iam-team@example.com\" AND design_effectiveness != INEFFECTIVE"
        )
        .await,
        ["controls/mfa-enforcement"]
    );
    assert_eq!(
        list(&app, "last_test_time >= \"2026-01-01T00:00:00Z\"").await,
        ["controls/dlp-mail", "controls/mfa-enforcement"]
    );
    for bad in [
        "framework > SOC",
        "design_effectiveness = GREAT",
        "colour = red",
    ] {
        let err = list_page(&app, bad, 0, String::new()).await.expect_err(bad);
        assert_eq!(violations(&err), ["filter"], "{bad}");
    }
    // Pages of one, bound to their filter.
    let names = names_in_pages_of_one(|page_token| async {
        let page = list_page(&app, "", 1, page_token).await.expect("page");
        let names = page.controls.into_iter().map(|c| c.name).collect();
        (names, page.next_page_token)
    })
    .await;
    assert_eq!(names, all);
}

async fn updates_replace_requirements_with_the_current_etag_and_are_audited(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = embedded_gateway(&db, backend).await;
    let created = three_controls(&app).await;

    // Update with a mask and the current etag: requirements are replaced, the filter follows.
    let update = |etag: &str| pb::UpdateControlRequest {
        control: Some(pb::Control {
            name: "controls/mfa-enforcement".into(),
            operating_effectiveness: Effective as i32,
            requirements: vec![req("ISO 27001", "A.5.17")],
            etag: etag.into(),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["operating_effectiveness".into(), "requirements".into()],
        }),
    };
    let updated = update_control(&app, "trust_team", update(&created.etag))
        .await
        .expect("update");
    assert_eq!(updated.etag, "\"2\"");
    assert_eq!(updated.operating_effectiveness, Effective as i32);
    assert_eq!(updated.title, created.title);
    assert_eq!(updated.requirements, vec![req("ISO 27001", "A.5.17")]);
    assert_eq!(
        list(&app, "framework = \"SOC 2\"").await,
        ["controls/dlp-mail"]
    );
    // The old etag is stale now.
    let err = update_control(&app, "trust_team", update(&created.etag))
        .await
        .expect_err("stale etag");
    assert_reason(&err, Code::Aborted, "STALE_ETAG");
    let err = update_control(
        &app,
        "trust_team",
        pb::UpdateControlRequest {
            control: Some(pb::Control {
                name: "controls/mfa-enforcement".into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["design_effectiveness".into()],
            }),
        },
    )
    .await
    .expect_err("unspecified in the mask");
    assert_eq!(violations(&err), ["control.design_effectiveness"]);
    let err = update_control(&app, "service_manager", update(""))
        .await
        .expect_err("not an editor");
    assert_eq!(err.code(), Code::PermissionDenied);

    // Audited in the same transactions.
    let trail = audit_trail(&app, "resource = \"controls/mfa-enforcement\"").await;
    let rpcs: Vec<&str> = trail.iter().map(|e| e.rpc.as_str()).collect();
    assert_eq!(
        rpcs,
        [
            "assurance.risk.v1.ControlService/UpdateControl",
            "assurance.risk.v1.ControlService/CreateControl",
        ]
    );
    assert_eq!(trail[1].request_id, "create-mfa-1");
    assert_eq!(trail[0].principal, "trust_team@example.com");
}

/// An embedded gateway with the services exchange-online and teams, a risk on each, and
/// the controls `mfa-enforcement` and `lobby-policy`.
async fn risks_and_controls(backend: Backend) -> (TestDb, App, pb::Risk, pb::Risk) {
    let db = TestDb::new(backend).await;
    let app = embedded_gateway(&db, backend).await;
    org_fixture(&app).await;
    create_service(&app, "teams", "productivity").await;
    let owa = create_risk(
        &app,
        new_risk("Credential stuffing on OWA", "exchange-online"),
    )
    .await;
    let meetings = create_risk(&app, new_risk("Meeting bombing", "teams")).await;
    for (id, design) in [
        ("mfa-enforcement", Effective),
        ("lobby-policy", PartiallyEffective),
    ] {
        create_control(
            &app,
            "trust_team",
            id,
            new_control(id, design, Effective, vec![]),
        )
        .await
        .expect("control");
    }
    (db, app, owa, meetings)
}

/// The risk owner links `lobby-policy` to `owa`, a service manager `mfa-enforcement` to
/// `meetings`; returns both risks' names, sorted (the risks of `mfa-enforcement` once `owa`
/// is linked to it as well).
async fn link_lobby_policy_and_meetings(
    app: &App,
    owa: &pb::Risk,
    meetings: &pb::Risk,
) -> Vec<String> {
    link(app, "risk_owner", &owa.name, "controls/lobby-policy")
        .await
        .expect("second control");
    link(
        app,
        "service_manager",
        &meetings.name,
        "controls/mfa-enforcement",
    )
    .await
    .expect("another risk");
    let mut both = vec![owa.name.clone(), meetings.name.clone()];
    both.sort();
    both
}

async fn links_are_scoped_idempotent_and_listed_both_ways(backend: Backend) {
    let (_db, app, owa, meetings) = risks_and_controls(backend).await;

    // The scoped token (exchange-online's service manager) links its own risk; twice is fine.
    let first = link(&app, "scoped", &owa.name, "controls/mfa-enforcement")
        .await
        .expect("link");
    assert_eq!(first.risk, owa.name);
    assert_eq!(first.control, "controls/mfa-enforcement");
    assert_eq!(first.linked_by, "exchange-team@example.com");
    let again = link(&app, "scoped", &owa.name, "controls/mfa-enforcement")
        .await
        .expect("link again");
    assert_eq!(again, first);
    // …but not another service's risk.
    let err = link(&app, "scoped", &meetings.name, "controls/mfa-enforcement")
        .await
        .expect_err("out of scope");
    assert_refused(&err, Code::PermissionDenied, "services/teams");
    let err = link(&app, "viewer", &owa.name, "controls/lobby-policy")
        .await
        .expect_err("viewers do not link");
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = link(&app, "risk_owner", &owa.name, "controls/nope")
        .await
        .expect_err("unknown control");
    assert_eq!(err.code(), Code::NotFound);
    let err = link(&app, "risk_owner", "risks/not-a-uuid", "nope")
        .await
        .expect_err("malformed");
    assert_eq!(violations(&err), ["parent", "risk_control_link.control"]);

    let both = link_lobby_policy_and_meetings(&app, &owa, &meetings).await;
    assert_eq!(
        risk_controls(&app, &owa.name).await,
        ["controls/lobby-policy", "controls/mfa-enforcement"]
    );
    assert_eq!(
        risk_controls(&app, &meetings.name).await,
        ["controls/mfa-enforcement"]
    );
    assert_eq!(
        control_risks(&app, "controls/mfa-enforcement", false).await,
        both
    );
    assert_eq!(
        control_risks(&app, "controls/lobby-policy", false).await,
        [owa.name.as_str()]
    );
    // Pages of one over the risks of a control.
    let page = control_risks_page(&app, "controls/mfa-enforcement", false, 1).await;
    assert_eq!(page.risks.len(), 1);
    assert!(!page.next_page_token.is_empty());
}

async fn unlinking_is_scoped_and_a_closed_risk_keeps_its_links(backend: Backend) {
    let (_db, app, owa, meetings) = risks_and_controls(backend).await;
    link(&app, "scoped", &owa.name, "controls/mfa-enforcement")
        .await
        .expect("link");
    let both = link_lobby_policy_and_meetings(&app, &owa, &meetings).await;

    // Scoped unlink is refused on another service's risk; a missing link is NOT_FOUND.
    let err = unlink(&app, "scoped", &meetings.name, "controls/mfa-enforcement")
        .await
        .expect_err("out of scope");
    assert_eq!(err.code(), Code::PermissionDenied);
    unlink(&app, "scoped", &owa.name, "controls/lobby-policy")
        .await
        .expect("unlink");
    let err = unlink(&app, "scoped", &owa.name, "controls/lobby-policy")
        .await
        .expect_err("already unlinked");
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(
        risk_controls(&app, &owa.name).await,
        ["controls/mfa-enforcement"]
    );
    assert!(
        control_risks(&app, "controls/lobby-policy", false)
            .await
            .is_empty()
    );

    // A closed risk keeps its links (shown with show_deleted) and they no longer change.
    app.risks()
        .delete_risk(pb::DeleteRiskRequest {
            name: meetings.name.clone(),
            reason: "feature retired".into(),
            ..Default::default()
        })
        .await
        .expect("close");
    assert_eq!(
        control_risks(&app, "controls/mfa-enforcement", false).await,
        [owa.name.as_str()]
    );
    assert_eq!(
        control_risks(&app, "controls/mfa-enforcement", true).await,
        both
    );
    let err = unlink(&app, "admin", &meetings.name, "controls/mfa-enforcement")
        .await
        .expect_err("closed");
    assert_eq!(reason(&err), "RISK_CLOSED");

    // Each change is audited under its link's name.
    let trail = audit_trail(
        &app,
        &format!("resource = \"{}/controlLinks/lobby-policy\"", owa.name),
    )
    .await;
    let rpcs: Vec<&str> = trail.iter().map(|e| e.rpc.as_str()).collect();
    assert_eq!(
        rpcs,
        [
            "assurance.risk.v1.ControlService/DeleteRiskControlLink",
            "assurance.risk.v1.ControlService/CreateRiskControlLink",
        ]
    );
}

/// The trust team adds the control `id` to the catalogue; the risk owner links it to `risk`.
async fn add_linked_control(
    app: &App,
    risk: &str,
    id: &str,
    design: pb::ControlEffectiveness,
    operating: pb::ControlEffectiveness,
) {
    create_control(
        app,
        "trust_team",
        id,
        new_control(id, design, operating, vec![]),
    )
    .await
    .expect("control");
    link(app, "risk_owner", risk, &format!("controls/{id}"))
        .await
        .expect("link");
}

async fn assessment_derives_control_deficiency(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = embedded_gateway(&db, backend).await;
    org_fixture(&app).await;
    let risk = create_risk(
        &app,
        new_risk("Credential stuffing on OWA", "exchange-online"),
    )
    .await;

    // No linked control: 5.
    let a = assess_deriving(&app, &risk.name).await;
    assert_eq!(a.control_deficiency, 5);
    assert_eq!(a.score, 4 * 4 * 5);

    // An untested control: 4; a partially effective one is better: 3.
    for (id, design, operating, deficiency) in [
        ("untested", NotTested, NotTested, 4),
        ("partial", Effective, PartiallyEffective, 3),
    ] {
        add_linked_control(&app, &risk.name, id, design, operating).await;
        assert_eq!(
            assess_deriving(&app, &risk.name).await.control_deficiency,
            deficiency,
            "with {id}"
        );
    }

    // One fully effective control: 1 (score 16, adequate controls → MONITOR).
    add_linked_control(&app, &risk.name, "mfa", Effective, Effective).await;
    let a = assess_deriving(&app, &risk.name).await;
    assert_eq!(a.control_deficiency, 1);
    assert_eq!(a.score, 16);
    assert_eq!(a.strategy, pb::ResponseStrategy::Monitor as i32);

    // The control's operation degrades: derivation follows its worse side.
    update_control(
        &app,
        "trust_team",
        pb::UpdateControlRequest {
            control: Some(pb::Control {
                name: "controls/mfa".into(),
                operating_effectiveness: Ineffective as i32,
                ..Default::default()
            }),
            update_mask: None,
        },
    )
    .await
    .expect("update");
    assert_eq!(
        assess_deriving(&app, &risk.name).await.control_deficiency,
        3
    );

    // An explicit value still wins; out of range is still refused.
    let explicit = assess(&app, &risk.name, 2, 2, 2).await;
    assert_eq!(
        explicit.latest_assessment.map(|a| a.control_deficiency),
        Some(2)
    );
    let err = assess_as(&app, "admin", &risk.name, assessment(2, 2, 6))
        .await
        .expect_err("out of range");
    assert_eq!(violations(&err), ["assessment.control_deficiency"]);

    // The history keeps each derived value.
    let history: Vec<i32> = assessment_history(&app, &risk.name)
        .await
        .iter()
        .map(|a| a.control_deficiency)
        .collect();
    assert_eq!(history, [2, 3, 1, 3, 4, 5]);
}

const CATALOGUE_YAML: &str = r#"
controls:
  - id: mfa-enforcement
    title: MFA enforced for every interactive sign-in
    description: Conditional access requires MFA for all users.
    owner: iam-team@example.com
    design_effectiveness: EFFECTIVE
    operating_effectiveness: PARTIALLY_EFFECTIVE
    last_test_time: 2026-09-30T00:00:00Z
    requirements:
      - { framework: ISO 27001, section: A.5.17 }
      - { framework: SOC 2, section: CC6.1 }
  - id: backup-restore
    title: Quarterly restore tests
    owner: sre@example.com
    requirements:
      - { framework: ISO 22301, section: "8.4" }
"#;

async fn import_catalogue(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = embedded_gateway(&db, backend).await;
    let yaml = db.dir.path().join("controls.yaml");
    std::fs::write(&yaml, CATALOGUE_YAML).expect("write yaml");

    let first = risk_service::controls_import::run(&db.url, &yaml)
        .await
        .expect("import yaml");
    assert_eq!(
        first.created,
        ["controls/mfa-enforcement", "controls/backup-restore"]
    );
    assert!(first.updated.is_empty() && first.unchanged.is_empty());
    let again = risk_service::controls_import::run(&db.url, &yaml)
        .await
        .expect("import yaml again");
    assert!(again.created.is_empty() && again.updated.is_empty());
    assert_eq!(again.unchanged.len(), 2);
    assert_eq!(again.to_string(), "0 created, 0 updated, 2 unchanged");

    let mfa = get_control(&app, "controls/mfa-enforcement")
        .await
        .expect("imported control");
    assert_eq!(mfa.etag, "\"1\"");
    assert_eq!(mfa.operating_effectiveness, PartiallyEffective as i32);
    assert_eq!(mfa.requirements.len(), 2);
    assert_eq!(
        list(&app, "framework = \"ISO 22301\"").await,
        ["controls/backup-restore"]
    );

    // A JSON catalogue: one control changed, one new; run twice.
    let json = db.dir.path().join("controls.json");
    std::fs::write(
        &json,
        r#"{"controls": [
            {"id": "mfa-enforcement", "title": "MFA enforced for every interactive sign-in",
             "description": "Conditional access requires MFA for all users.",
             "owner": "iam-team@example.com", "design_effectiveness": "EFFECTIVE",
             "operating_effectiveness": "EFFECTIVE", "last_test_time": "2026-10-31T00:00:00Z",
             "requirements": [{"framework": "ISO 27001", "section": "A.5.17"},
                              {"framework": "SOC 2", "section": "CC6.1"}]},
            {"id": "dlp-mail", "title": "DLP on outbound mail", "owner": "sec@example.com",
             "requirements": [{"framework": "FedRAMP", "section": "RA-3"}]}
        ]}"#,
    )
    .expect("write json");
    let third = risk_service::controls_import::run(&db.url, &json)
        .await
        .expect("import json");
    assert_eq!(third.created, ["controls/dlp-mail"]);
    assert_eq!(third.updated, ["controls/mfa-enforcement"]);
    let fourth = risk_service::controls_import::run(&db.url, &json)
        .await
        .expect("import json again");
    assert_eq!(fourth.unchanged.len(), 2);
    assert!(fourth.created.is_empty() && fourth.updated.is_empty());
    let mfa = get_control(&app, "controls/mfa-enforcement")
        .await
        .expect("updated control");
    assert_eq!(mfa.etag, "\"2\"");
    assert_eq!(mfa.operating_effectiveness, Effective as i32);
    // Controls absent from a catalogue are kept.
    assert_eq!(list(&app, "").await.len(), 3);

    // Audited as the import job: 2 + 2 changes, none for unchanged entries.
    let trail = audit_trail(&app, "principal = \"system:risk-service\"").await;
    assert_eq!(trail.len(), 4, "{trail:?}");
    assert!(
        trail
            .iter()
            .all(|e| e.rpc == "internal.risk-service/ImportControls")
    );

    // An invalid catalogue changes nothing and names each problem.
    let bad = db.dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "controls:\n  - id: dlp-mail\n    title: changed\n    owner: sec@example.com\n  - id: x\n    owner: o@example.com\n",
    )
    .expect("write bad");
    let err = risk_service::controls_import::run(&db.url, &bad)
        .await
        .expect_err("invalid");
    assert!(err.contains("controls[1].title: is required"), "{err}");
    let dlp = get_control(&app, "controls/dlp-mail").await.expect("dlp");
    assert_eq!(dlp.title, "DLP on outbound mail");
}

async fn links_are_resources_and_a_control_in_use_is_not_deleted(backend: Backend) {
    let (_db, app, owa, meetings) = risks_and_controls(backend).await;
    // A link created with a request id has a name, a Get, and a retry answers the same.
    let create = || {
        let mut c = controls_as(&app, "risk_owner");
        let request = pb::CreateRiskControlLinkRequest {
            parent: owa.name.clone(),
            risk_control_link: Some(pb::RiskControlLink {
                control: "controls/mfa-enforcement".into(),
                ..Default::default()
            }),
            request_id: "link-owa-mfa".into(),
        };
        async move { c.create_risk_control_link(request).await }
    };
    let first = create().await.expect("link").into_inner();
    assert_eq!(
        first.name,
        format!("{}/controlLinks/mfa-enforcement", owa.name)
    );
    assert_eq!(first.risk, owa.name);
    assert_eq!(create().await.expect("retry").into_inner(), first);
    let got = controls_as(&app, "viewer")
        .get_risk_control_link(pb::GetRiskControlLinkRequest {
            name: first.name.clone(),
        })
        .await
        .expect("get link")
        .into_inner();
    assert_eq!(got, first);
    let err = controls_as(&app, "viewer")
        .get_risk_control_link(pb::GetRiskControlLinkRequest {
            name: format!("{}/controlLinks/lobby-policy", owa.name),
        })
        .await
        .expect_err("not linked");
    assert_eq!(err.code(), Code::NotFound);
    link(&app, "risk_owner", &owa.name, "controls/lobby-policy")
        .await
        .expect("second link");
    link(&app, "risk_owner", &meetings.name, "controls/lobby-policy")
        .await
        .expect("meetings link");
    // The links of a risk: by control id, filtered, newest first on request.
    let links = |filter: &str, order_by: &str| {
        let mut c = controls_as(&app, "viewer");
        let request = pb::ListRiskControlLinksRequest {
            parent: owa.name.clone(),
            filter: filter.into(),
            order_by: order_by.into(),
            ..Default::default()
        };
        async move {
            c.list_risk_control_links(request)
                .await
                .expect("links")
                .into_inner()
                .risk_control_links
                .into_iter()
                .map(|l| l.control)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        links("", "").await,
        ["controls/lobby-policy", "controls/mfa-enforcement"]
    );
    assert_eq!(
        links("control = \"controls/mfa-enforcement\"", "").await,
        ["controls/mfa-enforcement"]
    );
    assert_eq!(links("", "create_time desc").await.len(), 2);

    // A control linked to open risks is not deleted: the refusal names them.
    let delete = |who: &str, name: &str, etag: &str| {
        let mut c = controls_as(&app, who);
        let request = pb::DeleteControlRequest {
            name: name.into(),
            etag: etag.into(),
        };
        async move { c.delete_control(request).await }
    };
    let err = delete("viewer", "controls/lobby-policy", "")
        .await
        .expect_err("viewers delete nothing");
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = delete("trust_team", "controls/lobby-policy", "")
        .await
        .expect_err("in use");
    assert_eq!(err.code(), Code::FailedPrecondition);
    let failure = err
        .get_error_details()
        .precondition_failure()
        .cloned()
        .expect("precondition failure");
    let mut subjects: Vec<String> = failure.violations.into_iter().map(|v| v.subject).collect();
    subjects.sort();
    let mut both = vec![owa.name.clone(), meetings.name.clone()];
    both.sort();
    assert_eq!(subjects, both);
    // Once the one risk is closed and the other unlinked, it goes, with its closed links.
    app.risks()
        .delete_risk(pb::DeleteRiskRequest {
            name: meetings.name.clone(),
            reason: "feature retired".into(),
            ..Default::default()
        })
        .await
        .expect("close");
    unlink(&app, "risk_owner", &owa.name, "controls/lobby-policy")
        .await
        .expect("unlink");
    let err = delete("trust_team", "controls/lobby-policy", "\"9\"")
        .await
        .expect_err("stale etag");
    assert_eq!(err.code(), Code::Aborted);
    delete("trust_team", "controls/lobby-policy", "")
        .await
        .expect("delete");
    let err = get_control(&app, "controls/lobby-policy")
        .await
        .expect_err("deleted");
    assert_eq!(err.code(), Code::NotFound);
    let err = delete("trust_team", "controls/lobby-policy", "")
        .await
        .expect_err("gone");
    assert_eq!(err.code(), Code::NotFound);
    assert!(
        control_risks(&app, "controls/mfa-enforcement", true)
            .await
            .contains(&owa.name)
    );
}

async fn empty_requests_name_every_required_field(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = embedded_gateway(&db, backend).await;
    let mut c = controls_as(&app, "admin");
    let err = c
        .create_control(pb::CreateControlRequest {
            control: Some(pb::Control {
                create_time: Some(days(1)),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect_err("empty");
    names_required(err, &["control_id", "control.title", "control.owner"]);
    let err = c
        .create_control(pb::CreateControlRequest::default())
        .await
        .expect_err("empty");
    names_required(err, &["control_id", "control"]);
    let err = c
        .update_control(pb::UpdateControlRequest::default())
        .await
        .expect_err("empty");
    names_required(err, &["control"]);
    let err = c
        .delete_control(pb::DeleteControlRequest::default())
        .await
        .expect_err("empty");
    names_required(err, &["name"]);
    let err = c
        .create_risk_control_link(pb::CreateRiskControlLinkRequest {
            risk_control_link: Some(pb::RiskControlLink {
                risk: "risks/x".into(),
                linked_by: "x".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect_err("empty");
    names_required(err, &["parent", "risk_control_link.control"]);
    let err = c
        .create_risk_control_link(pb::CreateRiskControlLinkRequest::default())
        .await
        .expect_err("empty");
    names_required(err, &["parent", "risk_control_link"]);
    let err = c
        .get_risk_control_link(pb::GetRiskControlLinkRequest::default())
        .await
        .expect_err("empty");
    names_required(err, &["name"]);
    let err = c
        .delete_risk_control_link(pb::DeleteRiskControlLinkRequest::default())
        .await
        .expect_err("empty");
    names_required(err, &["name"]);
    let err = c
        .list_risk_control_links(pb::ListRiskControlLinksRequest::default())
        .await
        .expect_err("empty");
    names_required(err, &["parent"]);
}

crate::on_both_backends!(
    empty_requests_name_every_required_field,
    links_are_resources_and_a_control_in_use_is_not_deleted,
    creating_a_control_is_idempotent_validated_and_for_the_trust_team,
    controls_are_read_listed_by_filter_and_paged,
    controls_are_ordered_and_paged_in_that_order,
    updates_replace_requirements_with_the_current_etag_and_are_audited,
    links_are_scoped_idempotent_and_listed_both_ways,
    unlinking_is_scoped_and_a_closed_risk_keeps_its_links,
    assessment_derives_control_deficiency,
    import_catalogue,
);

/// The catalogue in `order_by`, paged `page_size` at a time (0: one page), as a viewer reads it.
async fn ordered(app: &App, order_by: &str, page_size: i32) -> Vec<String> {
    names_in_pages_of_one(|page_token| {
        let mut c = controls_as(app, "viewer");
        let request = pb::ListControlsRequest {
            order_by: order_by.into(),
            page_size,
            page_token,
            ..Default::default()
        };
        async move {
            let page = c
                .list_controls(request)
                .await
                .unwrap_or_else(|e| panic!("order_by {order_by}: {e}"))
                .into_inner();
            if page_size > 0 {
                assert!(page.controls.len() <= page_size as usize);
            }
            (
                page.controls.into_iter().map(|c| c.name).collect(),
                page.next_page_token,
            )
        }
    })
    .await
}

async fn controls_are_ordered_and_paged_in_that_order(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = embedded_gateway(&db, backend).await;
    // Created mfa-enforcement (iam-team, "MFA …"), backup-restore (sre, "Quarterly …"),
    // dlp-mail (iam-team, "DLP …").
    three_controls(&app).await;
    let (backup, dlp, mfa) = (
        "controls/backup-restore",
        "controls/dlp-mail",
        "controls/mfa-enforcement",
    );
    for (order_by, expected) in [
        ("", [backup, dlp, mfa]),
        ("title", [dlp, mfa, backup]),
        ("title desc", [backup, mfa, dlp]),
        ("create_time", [mfa, backup, dlp]),
        ("create_time desc", [dlp, backup, mfa]),
        ("update_time asc", [mfa, backup, dlp]),
        ("owner, title", [dlp, mfa, backup]),
        ("owner desc, title", [backup, dlp, mfa]),
        ("owner", [dlp, mfa, backup]),
        ("owner desc", [backup, mfa, dlp]),
    ] {
        assert_eq!(ordered(&app, order_by, 0).await, expected, "{order_by}");
        // Paging through one or two at a time gives every control once, in that order.
        for size in [1, 2] {
            assert_eq!(
                ordered(&app, order_by, size).await,
                expected,
                "{order_by}, pages of {size}"
            );
        }
    }
    for bad in ["colour", "title sideways", "title, owner, create_time"] {
        let err = controls_as(&app, "viewer")
            .list_controls(pb::ListControlsRequest {
                order_by: bad.into(),
                ..Default::default()
            })
            .await
            .expect_err(bad);
        assert_eq!(err.code(), Code::InvalidArgument, "{bad}");
        assert_eq!(violations(&err), ["order_by"], "{bad}");
    }
    // A page token is bound to its order.
    let first = controls_as(&app, "viewer")
        .list_controls(pb::ListControlsRequest {
            order_by: "title desc".into(),
            page_size: 1,
            ..Default::default()
        })
        .await
        .expect("first page")
        .into_inner();
    let err = controls_as(&app, "viewer")
        .list_controls(pb::ListControlsRequest {
            order_by: "title".into(),
            page_size: 1,
            page_token: first.next_page_token,
            ..Default::default()
        })
        .await
        .expect_err("token of another order");
    assert_eq!(violations(&err), ["page_token"]);
}
