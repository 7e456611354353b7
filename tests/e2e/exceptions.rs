//! Security and compliance exceptions through the embedded gateway, authenticated: request
//! (validation, scope, idempotency) → approval (refused to the requester, to roles that do not
//! approve, to admin) → listing (filters, expiring within N days, pages) → revocation; the
//! decision log of a linked risk and the audit trail; expiry by the system job on a clock the
//! test moves.

use std::time::Duration;

use assurance_proto::risk::v1::{self as pb, exception_service_client::ExceptionServiceClient};
use tonic::Code;

use crate::helpers::*;

fn client(app: &App, who: &str) -> ExceptionServiceClient<Authed> {
    ExceptionServiceClient::new(app.channel_as(who))
}

fn exception(
    title: &str,
    services: &[&str],
    risk: &str,
    expire_in_days: i64,
) -> pb::PolicyException {
    pb::PolicyException {
        title: title.into(),
        scope: "TLS 1.0 stays enabled on the legacy SMTP relay".into(),
        services: services.iter().map(|s| format!("services/{s}")).collect(),
        risk: risk.into(),
        justification: "Two partner banks still submit over TLS 1.0; migration is contracted."
            .into(),
        compensating_controls: "Relay accepts only the partners' IP ranges; traffic is monitored."
            .into(),
        expire_time: Some(days(expire_in_days)),
        ..Default::default()
    }
}

async fn request(
    app: &App,
    who: &str,
    e: pb::PolicyException,
    request_id: &str,
) -> Result<pb::PolicyException, tonic::Status> {
    client(app, who)
        .create_policy_exception(pb::CreatePolicyExceptionRequest {
            policy_exception: Some(e),
            request_id: request_id.into(),
        })
        .await
        .map(|r| r.into_inner())
}

async fn approve(app: &App, who: &str, name: &str) -> Result<pb::PolicyException, tonic::Status> {
    client(app, who)
        .approve_policy_exception(pb::ApprovePolicyExceptionRequest {
            name: name.into(),
            comment: "agreed in the security forum".into(),
            etag: String::new(),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner())
}

async fn get(app: &App, name: &str) -> pb::PolicyException {
    client(app, "viewer")
        .get_policy_exception(pb::GetPolicyExceptionRequest { name: name.into() })
        .await
        .expect("get exception")
        .into_inner()
}

async fn list(app: &App, filter: &str) -> Result<Vec<String>, tonic::Status> {
    client(app, "reporter")
        .list_policy_exceptions(pb::ListPolicyExceptionsRequest {
            filter: filter.into(),
            ..Default::default()
        })
        .await
        .map(|r| {
            r.into_inner()
                .policy_exceptions
                .into_iter()
                .map(|e| e.name)
                .collect()
        })
}

/// The filter of active exceptions that expire within `days` of `now` (microseconds).
fn expiring_within(days: i64, now: i64) -> String {
    let by = assurance_runtime::time::to_timestamp(now + days * 86_400 * 1_000_000);
    format!("status = ACTIVE AND expire_time <= \"{by}\"")
}

/// An embedded gateway with the org fixture, the service `teams`, and a risk on
/// exchange-online the exceptions may link to.
async fn with_a_risk(backend: Backend) -> (TestDb, App, pb::Risk) {
    let db = TestDb::new(backend).await;
    let app = embedded_gateway(&db, backend).await;
    org_fixture(&app).await;
    create_service(&app, "teams", "productivity").await;
    let risk = create_risk(
        &app,
        new_risk("Legacy TLS on SMTP relay", "exchange-online"),
    )
    .await;
    (db, app, risk)
}

/// The trust team's exception linked to `risk`, requested with request id `req-tls-1` and
/// approved by an ERM executive.
async fn approved_tls_exception(app: &App, risk: &pb::Risk) -> pb::PolicyException {
    let linked = request(
        app,
        "trust_team",
        exception(
            "Legacy TLS for partner banks",
            &["exchange-online"],
            &risk.name,
            30,
        ),
        "req-tls-1",
    )
    .await
    .expect("request");
    approve(app, "erm_executive", &linked.name)
        .await
        .expect("approve");
    linked
}

/// The exchange team's exception (approved by the trust team) and a risk owner's over two
/// services (rejected).
async fn team_and_shared_exceptions(app: &App) -> (pb::PolicyException, pb::PolicyException) {
    let team = request(
        app,
        "scoped",
        exception("Basic auth for a kiosk app", &["exchange-online"], "", 200),
        "",
    )
    .await
    .expect("scoped request");
    approve(app, "trust_team", &team.name)
        .await
        .expect("approve team's");
    let both = request(
        app,
        "risk_owner",
        exception("Shared relay", &["teams", "exchange-online"], "", 10),
        "",
    )
    .await
    .expect("request over two services");
    client(app, "trust_team")
        .reject_policy_exception(pb::RejectPolicyExceptionRequest {
            name: both.name.clone(),
            reason: "Fix the relay instead; budget approved.".into(),
            etag: both.etag.clone(),
            ..Default::default()
        })
        .await
        .expect("reject");
    (team, both)
}

async fn invalid_requests_name_every_bad_field(backend: Backend) {
    let (_db, app, _risk) = with_a_risk(backend).await;
    // Validation reports every bad field at once, by path.
    let err = request(
        &app,
        "trust_team",
        pb::PolicyException {
            title: String::new(),
            services: vec![
                "exchange-online".into(),
                "services/exchange-online".into(),
                "services/exchange-online".into(),
            ],
            risk: "risks/not-a-uuid".into(),
            justification: " ".into(),
            expire_time: Some(days(-1)),
            ..exception("x", &[], "", 30)
        },
        "",
    )
    .await
    .expect_err("invalid");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        violations(&err),
        vec![
            "policy_exception.title",
            "policy_exception.services[0]",
            "policy_exception.services[2]",
            "policy_exception.risk",
            "policy_exception.justification",
            "policy_exception.expire_time",
        ]
    );
    let err = request(
        &app,
        "trust_team",
        pb::PolicyException {
            expire_time: None,
            ..exception("No services", &[], "", 30)
        },
        "",
    )
    .await
    .expect_err("no services, no expiry");
    assert_eq!(
        violations(&err),
        vec!["policy_exception.services", "policy_exception.expire_time"]
    );
    let err = request(
        &app,
        "trust_team",
        exception("Too long", &["exchange-online"], "", 400),
        "",
    )
    .await
    .expect_err("more than a year");
    assert_eq!(violations(&err), vec!["policy_exception.expire_time"]);
    let err = request(
        &app,
        "trust_team",
        exception("Unknown service", &["exchange-online", "nope"], "", 30),
        "",
    )
    .await
    .expect_err("unknown service");
    assert_eq!(violations(&err), vec!["policy_exception.services[1]"]);
    let err = request(
        &app,
        "trust_team",
        exception(
            "Unknown risk",
            &["exchange-online"],
            "risks/01890000-0000-7000-8000-000000000000",
            30,
        ),
        "",
    )
    .await
    .expect_err("unknown risk");
    assert_eq!(violations(&err), vec!["policy_exception.risk"]);
}

async fn viewers_and_teams_outside_their_services_may_not_request(backend: Backend) {
    let (_db, app, _risk) = with_a_risk(backend).await;
    // Roles and scope: a viewer may not request; a scoped team only for its own services.
    let err = request(
        &app,
        "viewer",
        exception("Viewer", &["exchange-online"], "", 30),
        "",
    )
    .await
    .expect_err("viewer");
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = request(
        &app,
        "scoped",
        exception("Both services", &["exchange-online", "teams"], "", 30),
        "",
    )
    .await
    .expect_err("out of scope");
    assert_refused(&err, Code::PermissionDenied, "services/teams");
}

async fn a_request_is_idempotent_and_approved_once_by_someone_else(backend: Backend) {
    let (_db, app, risk) = with_a_risk(backend).await;
    // The trust team requests an exception linked to the risk (idempotently).
    // A retry sends the very same request (same expiry), so build it once.
    let tls = exception(
        "Legacy TLS for partner banks",
        &["exchange-online"],
        &risk.name,
        30,
    );
    let linked = request(&app, "trust_team", tls.clone(), "req-tls-1")
        .await
        .expect("request");
    assert_eq!(linked.status, pb::PolicyExceptionStatus::Requested as i32);
    assert_eq!(linked.requester, "trust_team@example.com");
    assert_eq!(linked.services, vec!["services/exchange-online"]);
    assert_eq!(linked.risk, risk.name);
    assert_eq!(linked.etag, "\"1\"");
    assert!(linked.name.starts_with("exceptions/"));
    let again = request(&app, "trust_team", tls, "req-tls-1")
        .await
        .expect("retry");
    assert_eq!(again.name, linked.name);
    let err = request(
        &app,
        "trust_team",
        exception("Something else", &["exchange-online"], "", 30),
        "req-tls-1",
    )
    .await
    .expect_err("reused request id");
    assert_eq!(reason(&err), "REQUEST_ID_REUSED");

    // Nobody approves their own request; roles outside the approvers are refused, admin too.
    let err = approve(&app, "trust_team", &linked.name)
        .await
        .expect_err("self-approval");
    assert_reason(&err, Code::FailedPrecondition, "SELF_APPROVAL");
    let err = approve(&app, "service_manager", &linked.name)
        .await
        .expect_err("not an approver");
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = approve(&app, "admin", &linked.name)
        .await
        .expect_err("admin is not an approver");
    assert_refused(&err, Code::PermissionDenied, "erm_executive");
    // A stale etag is refused.
    let err = client(&app, "erm_executive")
        .approve_policy_exception(pb::ApprovePolicyExceptionRequest {
            name: linked.name.clone(),
            comment: String::new(),
            etag: "\"7\"".into(),
            ..Default::default()
        })
        .await
        .expect_err("stale etag");
    assert_eq!(err.code(), Code::Aborted);
    // Approved with the current etag and a request id; the retry answers the same (no
    // FAILED_PRECONDITION), and the decision is applied once.
    let approve_once = || {
        let mut c = client(&app, "erm_executive");
        let request = pb::ApprovePolicyExceptionRequest {
            name: linked.name.clone(),
            comment: "agreed in the security forum".into(),
            etag: linked.etag.clone(),
            request_id: "approve-tls-1".into(),
        };
        async move { c.approve_policy_exception(request).await }
    };
    let active = approve_once().await.expect("approve").into_inner();
    assert_eq!(active.status, pb::PolicyExceptionStatus::Active as i32);
    assert_eq!(active.approver, "erm_executive@example.com");
    assert_eq!(active.decision_comment, "agreed in the security forum");
    assert!(active.approve_time.is_some());
    assert_eq!(active.etag, "\"2\"");
    let retried = approve_once().await.expect("retried approval").into_inner();
    assert_eq!(retried, active);
    let approvals = audit_trail(&app, &format!("resource = \"{}\"", linked.name))
        .await
        .into_iter()
        .filter(|e| e.rpc.ends_with("/ApprovePolicyException"))
        .count();
    assert_eq!(approvals, 1);
    let err = approve(&app, "erm_executive", &linked.name)
        .await
        .expect_err("twice");
    assert_eq!(reason(&err), "ILLEGAL_TRANSITION");
    assert_mentions(&err, "allowed: revoke");
}

async fn a_scoped_team_requests_for_its_service_and_rejection_needs_a_reason(backend: Backend) {
    let (_db, app, _risk) = with_a_risk(backend).await;
    // The scoped team requests for its own service; the trust team approves.
    let team = request(
        &app,
        "scoped",
        exception("Basic auth for a kiosk app", &["exchange-online"], "", 200),
        "",
    )
    .await
    .expect("scoped request");
    assert_eq!(team.requester, "exchange-team@example.com");
    approve(&app, "trust_team", &team.name)
        .await
        .expect("approve team's");
    // A risk owner's request over two services, rejected (a reason is required).
    let both = request(
        &app,
        "risk_owner",
        exception("Shared relay", &["teams", "exchange-online"], "", 10),
        "",
    )
    .await
    .expect("request over two services");
    assert_eq!(
        both.services,
        vec!["services/exchange-online", "services/teams"]
    );
    let err = client(&app, "trust_team")
        .reject_policy_exception(pb::RejectPolicyExceptionRequest {
            name: both.name.clone(),
            reason: String::new(),
            etag: String::new(),
            ..Default::default()
        })
        .await
        .expect_err("no reason");
    assert_eq!(violations(&err), vec!["reason"]);
    let rejected = client(&app, "trust_team")
        .reject_policy_exception(pb::RejectPolicyExceptionRequest {
            name: both.name.clone(),
            reason: "Fix the relay instead; budget approved.".into(),
            etag: both.etag.clone(),
            ..Default::default()
        })
        .await
        .expect("reject")
        .into_inner();
    assert_eq!(rejected.status, pb::PolicyExceptionStatus::Rejected as i32);
    assert_eq!(rejected.approver, "trust_team@example.com");
}

async fn lists_filter_by_expiry_service_requester_status_and_risk_in_pages(backend: Backend) {
    let (_db, app, risk) = with_a_risk(backend).await;
    let linked = approved_tls_exception(&app, &risk).await;
    let (team, both) = team_and_shared_exceptions(&app).await;

    // Listing: expiring within N days of now, AIP-160 filters, pages.
    assert_eq!(
        list(
            &app,
            &expiring_within(60, assurance_runtime::time::now_micros())
        )
        .await
        .expect("expiring in 60 days"),
        vec![linked.name.clone()]
    );
    assert_eq!(
        list(
            &app,
            &expiring_within(366, assurance_runtime::time::now_micros())
        )
        .await
        .expect("expiring in a year"),
        vec![linked.name.clone(), team.name.clone()]
    );
    assert_eq!(
        list(&app, "service = \"services/teams\"")
            .await
            .expect("by service"),
        vec![both.name.clone()]
    );
    assert_eq!(
        list(
            &app,
            "status = ACTIVE AND requester = \"exchange-team@example.com\"",
        )
        .await
        .expect("by requester"),
        vec![team.name.clone()]
    );
    assert_eq!(
        list(&app, "status = REJECTED OR status = REQUESTED")
            .await
            .expect("by status"),
        vec![both.name.clone()]
    );
    assert_eq!(
        list(&app, &format!("risk = \"{}\"", risk.name))
            .await
            .expect("by risk"),
        vec![linked.name.clone()]
    );
    let err = list(&app, "owner = x").await.expect_err("unknown field");
    assert_eq!(violations(&err), vec!["filter"]);
    let err = list(&app, "expire_time <= soon")
        .await
        .expect_err("not a time");
    assert_eq!(violations(&err), vec!["filter"]);
    let names = names_in_pages_of_one(|page_token| async {
        let page = client(&app, "viewer")
            .list_policy_exceptions(pb::ListPolicyExceptionsRequest {
                page_size: 1,
                page_token,
                ..Default::default()
            })
            .await
            .expect("page")
            .into_inner();
        let names = page.policy_exceptions.into_iter().map(|e| e.name).collect();
        (names, page.next_page_token)
    })
    .await;
    assert_eq!(
        names,
        vec![linked.name.clone(), team.name.clone(), both.name.clone()]
    );
}

async fn revocation_is_terminal_and_recorded_in_the_decision_log_and_audit(backend: Backend) {
    let (_db, app, risk) = with_a_risk(backend).await;
    let linked = approved_tls_exception(&app, &risk).await;

    // Revocation: the trust team or an executive, with a reason; a risk owner may not; terminal
    // after.
    let err = client(&app, "risk_owner")
        .revoke_policy_exception(pb::RevokePolicyExceptionRequest {
            name: linked.name.clone(),
            reason: "partners migrated".into(),
            etag: String::new(),
            ..Default::default()
        })
        .await
        .expect_err("not a revoker");
    assert_eq!(err.code(), Code::PermissionDenied);
    let revoked = client(&app, "trust_team")
        .revoke_policy_exception(pb::RevokePolicyExceptionRequest {
            name: linked.name.clone(),
            reason: "Partners migrated to TLS 1.2.".into(),
            etag: String::new(),
            ..Default::default()
        })
        .await
        .expect("revoke")
        .into_inner();
    assert_eq!(revoked.status, pb::PolicyExceptionStatus::Revoked as i32);
    assert_eq!(revoked.revoke_reason, "Partners migrated to TLS 1.2.");
    assert!(revoked.revoke_time.is_some());
    assert_eq!(get(&app, &linked.name).await, revoked);
    let err = client(&app, "trust_team")
        .revoke_policy_exception(pb::RevokePolicyExceptionRequest {
            name: linked.name.clone(),
            reason: "again".into(),
            etag: String::new(),
            ..Default::default()
        })
        .await
        .expect_err("terminal");
    assert_refused(&err, Code::FailedPrecondition, "nothing (terminal)");
    let err = client(&app, "viewer")
        .get_policy_exception(pb::GetPolicyExceptionRequest {
            name: "exceptions/01890000-0000-7000-8000-000000000000".into(),
        })
        .await
        .expect_err("missing");
    assert_eq!(err.code(), Code::NotFound);

    // The linked risk's decision log holds the exception's decisions; the others are not there.
    let log = decisions(&app, &risk.name).await;
    let kinds: Vec<i32> = log.iter().rev().map(|d| d.kind).collect();
    assert_eq!(
        kinds,
        vec![
            pb::DecisionKind::ExceptionRequested as i32,
            pb::DecisionKind::ExceptionApproved as i32,
            pb::DecisionKind::ExceptionRevoked as i32,
        ]
    );
    assert!(log.iter().all(|d| d.summary.contains(&linked.name)));
    assert_eq!(log[1].actor, "erm_executive@example.com");
    // Every change is audited, with the request id of the create.
    let events = audit_trail(&app, &format!("resource = \"{}\"", linked.name)).await;
    assert_eq!(events.len(), 3, "requested, approved, revoked: {events:?}");
    assert_eq!(events[2].request_id, "req-tls-1");
    assert_eq!(
        events[0].rpc,
        "assurance.risk.v1.ExceptionService/RevokePolicyException"
    );
}

/// An approved exception lapses on the service's clock: the system job marks it EXPIRED,
/// writes the linked risk's decision log and audits it under its own principal.
async fn exception_expires_on_the_clock(backend: Backend) {
    let (_db, clock, app) = gateway_on_a_test_clock(backend).await;
    let risk = create_risk(
        &app,
        new_risk("Legacy TLS on SMTP relay", "exchange-online"),
    )
    .await;
    let short = request(
        &app,
        "service_manager",
        exception("Ten days", &["exchange-online"], &risk.name, 10),
        "",
    )
    .await
    .expect("request");
    approve(&app, "trust_team", &short.name)
        .await
        .expect("approve");
    let long = request(
        &app,
        "service_manager",
        exception("A hundred days", &["exchange-online"], "", 100),
        "",
    )
    .await
    .expect("request");
    approve(&app, "erm_executive", &long.name)
        .await
        .expect("approve");
    // Nothing happens before the expiry.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        get(&app, &short.name).await.status,
        pb::PolicyExceptionStatus::Active as i32
    );

    clock.advance(Duration::from_secs(11 * 86_400));
    let expired = eventually("exception did not expire", || async {
        let e = get(&app, &short.name).await;
        match e.status == pb::PolicyExceptionStatus::Expired as i32 {
            true => Ok(e),
            false => Err(format!("{e:?}")),
        }
    })
    .await;
    assert!(expired.lapse_time.is_some());
    assert_eq!(
        get(&app, &long.name).await.status,
        pb::PolicyExceptionStatus::Active as i32
    );
    // Expired exceptions no longer count as expiring; the long one is due in ~89 days now.
    assert_eq!(
        list(&app, &expiring_within(30, clock.now_micros()))
            .await
            .expect("expiring"),
        Vec::<String>::new()
    );
    assert_eq!(
        list(&app, &expiring_within(90, clock.now_micros()))
            .await
            .expect("expiring"),
        vec![long.name.clone()]
    );
    let err = client(&app, "trust_team")
        .revoke_policy_exception(pb::RevokePolicyExceptionRequest {
            name: short.name.clone(),
            reason: "too late".into(),
            etag: String::new(),
            ..Default::default()
        })
        .await
        .expect_err("expired is terminal");
    assert_eq!(reason(&err), "ILLEGAL_TRANSITION");

    let log = decisions(&app, &risk.name).await;
    assert_eq!(log[0].kind, pb::DecisionKind::ExceptionExpired as i32);
    assert_eq!(log[0].actor, "system:risk-service");
    assert!(log[0].summary.contains(&short.name), "{}", log[0].summary);
    let events = audit_trail(&app, "principal = \"system:risk-service\"").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].rpc, "internal.risk-service/ExpireExceptions");
    assert_eq!(events[0].resource, short.name);
}

async fn empty_requests_name_every_required_field(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = embedded_gateway(&db, backend).await;
    let mut c = client(&app, "admin");
    let all = [
        "policy_exception",
        "policy_exception.title",
        "policy_exception.scope",
        "policy_exception.services",
        "policy_exception.justification",
        "policy_exception.expire_time",
    ];
    let err = c
        .create_policy_exception(pb::CreatePolicyExceptionRequest::default())
        .await
        .expect_err("empty");
    names_required(err, &all);
    // Output-only fields satisfy nothing and are never validated.
    let err = c
        .create_policy_exception(pb::CreatePolicyExceptionRequest {
            policy_exception: Some(pb::PolicyException {
                status: 42,
                requester: "\u{7}".into(),
                approver: "someone".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect_err("output only");
    names_required(err, &all[1..]);
    let err = c
        .get_policy_exception(pb::GetPolicyExceptionRequest::default())
        .await
        .expect_err("empty");
    names_required(err, &["name"]);
    // Decisions are validated for their deciders (admin approves nothing).
    let mut decider = client(&app, "trust_team");
    let err = decider
        .approve_policy_exception(pb::ApprovePolicyExceptionRequest::default())
        .await
        .expect_err("empty");
    names_required(err, &["name"]);
    let err = decider
        .reject_policy_exception(pb::RejectPolicyExceptionRequest::default())
        .await
        .expect_err("empty");
    names_required(err, &["name", "reason"]);
    let err = c
        .revoke_policy_exception(pb::RevokePolicyExceptionRequest::default())
        .await
        .expect_err("empty");
    names_required(err, &["name", "reason"]);
}

crate::on_both_backends!(
    empty_requests_name_every_required_field,
    invalid_requests_name_every_bad_field,
    viewers_and_teams_outside_their_services_may_not_request,
    a_request_is_idempotent_and_approved_once_by_someone_else,
    a_scoped_team_requests_for_its_service_and_rejection_needs_a_reason,
    lists_filter_by_expiry_service_requester_status_and_risk_in_pages,
    revocation_is_terminal_and_recorded_in_the_decision_log_and_audit,
    exception_expires_on_the_clock,
);
