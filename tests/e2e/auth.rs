//! Identity, authorisation and audit, end to end: the role matrix over every RPC, service
//! scope, bearer-token and JWT failure modes, revocation, `on_behalf_of`, the audit trail,
//! credentials forwarded through the gateway, the gateway's first-start admin token, TLS and
//! mTLS, and `--insecure-dev`.

use std::time::Duration;

use assurance_proto::audit::v1 as audit_pb;
use assurance_proto::incident::v1 as ipb;
use assurance_proto::risk::v1::{self as pb, audit_service_client::AuditServiceClient};
use assurance_runtime::auth::{Role, client::Bearer, matrix};
use assurance_tests::{jwt, pki::TestPki, raw::RawCodec};
use prost::Message;
use tonic::{Code, transport::Channel};

use crate::helpers::*;

/// Every RPC of the Assurance packages, as `/package.Service/Method`, from the descriptors.
fn every_rpc() -> Vec<String> {
    let set = prost_types::FileDescriptorSet::decode(assurance_proto::FILE_DESCRIPTOR_SET)
        .expect("descriptor set");
    let mut out = Vec::new();
    for file in set.file {
        let package = file.package().to_string();
        for service in &file.service {
            for method in &service.method {
                out.push(format!("/{package}.{}/{}", service.name(), method.name()));
            }
        }
    }
    out
}

/// Calls `path` with an empty message: the code the server answers.
async fn call(channel: Bearer<Channel>, path: &str) -> Code {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("ready");
    let path = http::uri::PathAndQuery::try_from(path).expect("path");
    match grpc
        .unary::<_, bytes::Bytes, _>(tonic::Request::new(bytes::Bytes::new()), path, RawCodec)
        .await
    {
        Ok(_) => Code::Ok,
        Err(s) => s.code(),
    }
}

/// Every RPC × every role through the embedded gateway: refused with PERMISSION_DENIED
/// exactly when the matrix says so; never UNAUTHENTICATED for a valid token.
async fn role_matrix_over_every_rpc(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = embedded_gateway(&db, backend).await;
    let rpcs = every_rpc();
    assert!(rpcs.len() >= 49, "found {} RPCs", rpcs.len());
    for path in &rpcs {
        let allowed = matrix::allowed(path);
        assert!(
            !allowed.is_empty(),
            "{path} is missing from the role matrix"
        );
        for role in Role::ALL {
            let code = call(app.channel_as(role.as_str()), path).await;
            if allowed.contains(role) {
                assert!(
                    !matches!(code, Code::PermissionDenied | Code::Unauthenticated),
                    "{role} should be allowed {path}, got {code:?}"
                );
            } else {
                assert_eq!(
                    code,
                    Code::PermissionDenied,
                    "{role} must be refused {path}"
                );
            }
        }
    }
    // Unknown methods are refused to everyone, even an administrator.
    let code = call(
        app.channel_as("admin"),
        "/assurance.risk.v1.RiskService/DropAll",
    )
    .await;
    assert_eq!(code, Code::PermissionDenied);
}

/// Missing, unknown, tampered, expired and revoked tokens are UNAUTHENTICATED; health and
/// reflection need no token; a token removed from the file stops working without a restart.
async fn bad_tokens_are_unauthenticated(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = risk_service(&db, risk_service::domain::scoring::Methodology::Standard).await;
    let get = |channel: Bearer<Channel>| async move {
        pb::risk_service_client::RiskServiceClient::new(channel)
            .list_risks(pb::ListRisksRequest::default())
            .await
            .map(|_| ())
    };
    let no_token = pb::risk_service_client::RiskServiceClient::new(app.channel.clone())
        .list_risks(pb::ListRisksRequest::default())
        .await
        .expect_err("no token");
    assert_reason(&no_token, Code::Unauthenticated, "UNAUTHENTICATED");
    let admin = app.tokens.admin().to_string();
    let mut tampered = admin.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    for token in [
        "asr_not-a-real-token",
        tampered.as_str(),
        app.tokens.token("expired"),
        app.tokens.token("revoked"),
    ] {
        let err = get(Bearer::new(app.channel.clone(), token).expect("header"))
            .await
            .expect_err("refused");
        assert_eq!(err.code(), Code::Unauthenticated, "{token}");
        assert!(!err.message().contains(token), "the token is not echoed");
    }
    get(app.channel_as("viewer")).await.expect("valid token");
    // Health is public.
    app.health()
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .expect("health without a token");

    // Revoke the viewer: mark it revoked in the file; the server re-reads it.
    let text = std::fs::read_to_string(&app.tokens.path).expect("tokens file");
    let marker = "principal = \"viewer@example.com\"\n";
    std::fs::write(
        &app.tokens.path,
        text.replace(marker, &format!("{marker}revoked = true\n")),
    )
    .expect("rewrite tokens file");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match get(app.channel_as("viewer")).await {
            Err(e) if e.code() == Code::Unauthenticated => break,
            _ if std::time::Instant::now() > deadline => panic!("revocation not applied"),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    get(app.channel_as("admin"))
        .await
        .expect("others unaffected");
}

/// A principal scoped to exchange-online changes only its records.
async fn service_scope_limits_changes(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = embedded_gateway(&db, backend).await;
    org_fixture(&app).await;
    create_service(&app, "teams", "productivity").await;
    let ours = identify_risk_as(&app, "scoped", new_risk("Ours", "exchange-online"))
        .await
        .expect("in scope");
    let err = identify_risk_as(&app, "scoped", new_risk("Theirs", "teams"))
        .await
        .expect_err("out of scope");
    assert_refused(&err, Code::PermissionDenied, "services/teams");
    let theirs = create_risk(&app, new_risk("Theirs", "teams")).await;
    // Reading is not scoped; changing is.
    app.risks_as("scoped")
        .get_risk(pb::GetRiskRequest {
            name: theirs.name.clone(),
        })
        .await
        .expect("read");
    let err = assess_as(&app, "scoped", &theirs.name, assessment(3, 3, 3))
        .await
        .expect_err("assess out of scope");
    assert_eq!(err.code(), Code::PermissionDenied);
    // Moving our risk to their service is refused too.
    let mut moved = ours.clone();
    moved.service = "services/teams".into();
    let err = update_risk_as(&app, "scoped", moved, &["service"])
        .await
        .expect_err("move out of scope");
    assert_eq!(err.code(), Code::PermissionDenied);
    let sharepoint = pb::Service {
        business_unit: "businessUnits/productivity".into(),
        display_name: "SharePoint".into(),
        ..Default::default()
    };
    let err = register_service(&app, "scoped", "sharepoint", sharepoint)
        .await
        .expect_err("registering services is for unscoped principals");
    assert_eq!(err.code(), Code::PermissionDenied);

    // Incidents: declared only for its services; changed only where one is affected.
    let incident = |title: &str, summary: &str, service: &str| ipb::Incident {
        title: title.into(),
        summary: summary.into(),
        classification: ipb::Classification::SecurityIncident as i32,
        functional_impact: ipb::FunctionalImpact::Low as i32,
        information_impacts: vec![ipb::InformationImpact::None as i32],
        recoverability: ipb::Recoverability::Regular as i32,
        affected_services: vec![format!("services/{service}")],
        ..Default::default()
    };
    let abuse = |service| {
        let summary = "Forwarding rules created by an attacker.";
        declare_incident_as(
            &app,
            "scoped",
            incident("Mailbox rule abuse", summary, service),
            "",
        )
    };
    let mine = abuse("exchange-online").await.expect("declare in scope");
    let err = abuse("teams").await.expect_err("declare out of scope");
    assert_eq!(err.code(), Code::PermissionDenied);
    let note = |name: String| {
        let mut client = app.incidents_as("scoped");
        async move {
            client
                .create_timeline_event(ipb::CreateTimelineEventRequest {
                    parent: name,
                    summary: "Rules removed.".into(),
                    request_id: String::new(),
                })
                .await
        }
    };
    note(mine.name.clone()).await.expect("note on ours");
    let outage = incident("Teams outage", "Meetings fail to start.", "teams");
    let theirs = declare_incident_as(&app, "admin", outage, "")
        .await
        .expect("admin declares");
    let err = note(theirs.name.clone()).await.expect_err("not ours");
    assert_eq!(err.code(), Code::PermissionDenied);
}

/// Every mutation is in the audit trail with principal, RPC, resource and request id; a
/// system principal acting for a user records both; only admin and trust_team read it.
async fn audit_trail_records_every_mutation(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = embedded_gateway(&db, backend).await;
    org_fixture(&app).await;
    let risk = app
        .risks_as("risk_owner")
        .create_risk(pb::CreateRiskRequest {
            risk: Some(new_risk("Audited", "exchange-online")),
            request_id: "req-audit-1".into(),
        })
        .await
        .expect("create")
        .into_inner();
    // A system principal acting for a user.
    let relay = Bearer::new(app.channel.clone(), app.tokens.token("system"))
        .expect("header")
        .on_behalf_of("alice@example.com")
        .expect("header");
    pb::risk_service_client::RiskServiceClient::new(relay)
        .delete_risk(pb::DeleteRiskRequest {
            name: risk.name.clone(),
            reason: "duplicate".into(),
            etag: String::new(),
        })
        .await
        .expect("system closes for alice");
    // A failed mutation leaves no record.
    app.risks_as("risk_owner")
        .create_risk(pb::CreateRiskRequest {
            risk: Some(new_risk("", "exchange-online")),
            request_id: String::new(),
        })
        .await
        .expect_err("invalid");
    // on_behalf_of is for system principals only.
    let pretend = Bearer::new(app.channel.clone(), app.tokens.token("risk_owner"))
        .expect("header")
        .on_behalf_of("ceo@example.com")
        .expect("header");
    let err = pb::risk_service_client::RiskServiceClient::new(pretend)
        .list_risks(pb::ListRisksRequest::default())
        .await
        .expect_err("not a system principal");
    assert_eq!(err.code(), Code::PermissionDenied);

    let err = read_audit_trail(&app, "viewer", "")
        .await
        .expect_err("viewers may not read the trail");
    assert_eq!(err.code(), Code::PermissionDenied);
    let events = read_audit_trail(&app, "trust_team", &format!("resource = \"{}\"", risk.name))
        .await
        .expect("trail");
    assert_eq!(events.len(), 2, "{events:?}");
    // Newest first.
    assert_eq!(events[0].rpc, "assurance.risk.v1.RiskService/DeleteRisk");
    assert_eq!(events[0].principal, "system@example.com");
    assert_eq!(events[0].on_behalf_of, "alice@example.com");
    assert_eq!(events[1].rpc, "assurance.risk.v1.RiskService/CreateRisk");
    assert_eq!(events[1].principal, "risk_owner@example.com");
    assert_eq!(events[1].on_behalf_of, "");
    assert_eq!(events[1].request_id, "req-audit-1");
    assert_eq!(events[1].service, "risk-service");
    assert!(events[1].event_time.is_some());
    let by_alice = read_audit_trail(
        &app,
        "admin",
        "on_behalf_of = \"alice@example.com\" AND method = \"DeleteRisk\"",
    )
    .await
    .expect("filter");
    assert_eq!(by_alice.len(), 1);
    let err = read_audit_trail(&app, "admin", "colour = \"red\"")
        .await
        .expect_err("unknown field");
    assert_eq!(violations(&err), vec!["filter"]);

    // The incident service keeps its own trail.
    let declared = declare_incident_as(&app, "responder", phishing_wave(), "req-incident-1")
        .await
        .expect("declare");
    let trail = ipb::audit_service_client::AuditServiceClient::new(app.channel_as("admin"))
        .list_audit_events(audit_pb::ListAuditEventsRequest::default())
        .await
        .expect("incident trail")
        .into_inner()
        .audit_events;
    assert_eq!(
        trail.len(),
        1,
        "only the incident's own mutation: {trail:?}"
    );
    assert_eq!(trail[0].resource, declared.name);
    assert_eq!(trail[0].principal, "responder@example.com");
    assert_eq!(trail[0].service, "incident-service");
    // The timeline names the same actor.
    let timeline = app
        .incidents()
        .list_timeline_events(ipb::ListTimelineEventsRequest {
            parent: declared.name.clone(),
            ..Default::default()
        })
        .await
        .expect("timeline")
        .into_inner();
    assert_eq!(timeline.timeline_events[0].actor, "responder@example.com");
}

/// Separate services verify every call again: the forwarding gateway passes the caller's
/// credentials on, and the service's audit trail names the caller.
async fn forwarding_gateway_passes_credentials(backend: Backend) {
    let db = TestDb::new(backend).await;
    let risk = risk_service(&db, risk_service::domain::scoring::Methodology::Standard).await;
    let incident = incident_service(&db).await;
    let gw = forwarding_gateway(&db, risk.grpc_addr, incident.grpc_addr).await;
    let err = pb::organization_service_client::OrganizationServiceClient::new(gw.channel.clone())
        .list_business_units(pb::ListBusinessUnitsRequest::default())
        .await
        .expect_err("no token at the edge");
    assert_eq!(err.code(), Code::Unauthenticated);
    let finance = pb::BusinessUnit {
        display_name: "Finance".into(),
        ..Default::default()
    };
    let err = register_business_unit(&gw, "viewer", "finance", finance.clone())
        .await
        .expect_err("viewer");
    assert_eq!(err.code(), Code::PermissionDenied);
    register_business_unit(&gw, "trust_team", "finance", finance)
        .await
        .expect("trust team through the gateway");
    let trail = AuditServiceClient::new(risk.channel_as("admin"))
        .list_audit_events(audit_pb::ListAuditEventsRequest::default())
        .await
        .expect("trail at the service")
        .into_inner()
        .audit_events;
    assert_eq!(trail.len(), 1);
    assert_eq!(trail[0].principal, "trust_team@example.com");
    assert_eq!(trail[0].resource, "businessUnits/finance");
}

/// GetAuditEvent: one event of a service's trail by name, for auditors; another service's
/// event is not found there, a malformed name is INVALID_ARGUMENT.
async fn an_audit_event_is_fetched_by_name(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = embedded_gateway(&db, backend).await;
    org_fixture(&app).await;
    let events = read_audit_trail(&app, "trust_team", "")
        .await
        .expect("trail");
    let first = events.first().expect("the org fixture is audited").clone();
    let mut trail = pb::audit_service_client::AuditServiceClient::new(app.channel_as("trust_team"));
    let got = trail
        .get_audit_event(audit_pb::GetAuditEventRequest {
            name: first.name.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(got, first);
    let err = ipb::audit_service_client::AuditServiceClient::new(app.channel_as("trust_team"))
        .get_audit_event(audit_pb::GetAuditEventRequest {
            name: first.name.clone(),
        })
        .await
        .expect_err("a risk-service event is not in the incident trail");
    assert_eq!(err.code(), Code::NotFound);
    let err = trail
        .get_audit_event(audit_pb::GetAuditEventRequest {
            name: "risks/not-an-event".into(),
        })
        .await
        .expect_err("malformed");
    assert_eq!(violations(&err), ["name"]);
    let err = pb::audit_service_client::AuditServiceClient::new(app.channel_as("viewer"))
        .get_audit_event(audit_pb::GetAuditEventRequest { name: first.name })
        .await
        .expect_err("viewers may not read the trail");
    assert_eq!(err.code(), Code::PermissionDenied);
}

crate::on_both_backends!(
    role_matrix_over_every_rpc,
    bad_tokens_are_unauthenticated,
    service_scope_limits_changes,
    audit_trail_records_every_mutation,
    forwarding_gateway_passes_credentials,
    an_audit_event_is_fetched_by_name,
);

const ISSUER: &str = "https://login.example.com";
const AUDIENCE: &str = "assurance";

/// OIDC JWTs: RS256 and ES256 accepted with their roles; expired, not yet valid, wrong
/// audience, wrong issuer, wrong key, `alg: none` and tampered tokens refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_failure_modes() {
    let db = TestDb::new(Backend::Sqlite).await;
    let keys = jwt::TestKeys::new();
    let jwks = db.dir.path().join("jwks.json");
    std::fs::write(&jwks, keys.jwks_json()).expect("write jwks");
    let mut config = gateway_config(&db);
    config.embedded = true;
    config.security = gateway::config::Security {
        jwks_file: Some(jwks),
        jwt_issuer: Some(ISSUER.into()),
        jwt_audience: Some(AUDIENCE.into()),
        ..Default::default()
    };
    let running = gateway::start(&config, assurance_runtime::serve::Shutdown::new())
        .await
        .expect("gateway with JWKS starts");
    let channel = channel(running.grpc_addr).await;
    let as_token = |token: &str| {
        pb::organization_service_client::OrganizationServiceClient::new(
            Bearer::new(channel.clone(), token).expect("header"),
        )
    };
    let create = |token: String, id: &str| {
        let mut client = as_token(&token);
        let request = pb::CreateBusinessUnitRequest {
            business_unit_id: id.into(),
            business_unit: Some(pb::BusinessUnit {
                display_name: "BU".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        };
        async move { client.create_business_unit(request).await.map(|_| ()) }
    };
    let good = jwt::claims("alice@example.com", &["trust_team"], ISSUER, AUDIENCE, 300);
    create(keys.sign_rs256(&good), "by-rs256")
        .await
        .expect("RS256");
    create(keys.sign_es256(&good), "by-es256")
        .await
        .expect("ES256");
    let viewer = jwt::claims("bob@example.com", &["viewer"], ISSUER, AUDIENCE, 300);
    let err = create(keys.sign_es256(&viewer), "by-viewer")
        .await
        .expect_err("role");
    assert_eq!(err.code(), Code::PermissionDenied);

    let mut not_yet = good.clone();
    not_yet["nbf"] = serde_json::json!(jwt::now_secs() + 3600);
    let tampered = {
        let token = keys.sign_es256(&viewer);
        let parts: Vec<&str> = token.split('.').collect();
        let payload = {
            use base64::Engine;
            let mut claims = viewer.clone();
            claims["roles"] = serde_json::json!(["admin"]);
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(serde_json::to_vec(&claims).expect("json"))
        };
        format!("{}.{payload}.{}", parts[0], parts[2])
    };
    for (what, token) in [
        (
            "expired",
            keys.sign_rs256(&jwt::claims("a", &["admin"], ISSUER, AUDIENCE, -3600)),
        ),
        ("not yet valid", keys.sign_rs256(&not_yet)),
        (
            "wrong audience",
            keys.sign_rs256(&jwt::claims("a", &["admin"], ISSUER, "other", 300)),
        ),
        (
            "wrong issuer",
            keys.sign_es256(&jwt::claims("a", &["admin"], "https://evil", AUDIENCE, 300)),
        ),
        ("wrong key", keys.sign_es256_wrong_key(&good)),
        ("alg none", jwt::TestKeys::unsigned_alg_none(&good)),
        ("tampered", tampered),
    ] {
        let err = create(token, "never").await.expect_err(what);
        assert_eq!(
            err.code(),
            Code::Unauthenticated,
            "{what}: {}",
            err.message()
        );
    }
    running.stop().await.expect("stop");
}

/// `gateway --embedded` with no credentials creates a tokens file with an admin token on
/// first start, writes the token to a file only its owner can read, and reuses it after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_gateway_creates_an_admin_token_on_first_start() {
    let db = TestDb::new(Backend::Sqlite).await;
    let mut config = gateway_config(&db);
    config.embedded = true;
    config.security = gateway::config::Security::default();
    let running = gateway::start(&config, assurance_runtime::serve::Shutdown::new())
        .await
        .expect("gateway starts");
    let token_file = db.dir.path().join("admin-token");
    let token = std::fs::read_to_string(&token_file).expect("admin token written");
    let token = token.trim();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_file)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let tokens = std::fs::read_to_string(db.dir.path().join("tokens.toml")).expect("tokens");
    assert!(!tokens.contains(token), "only the hash is stored");
    let ch = channel(running.grpc_addr).await;
    pb::organization_service_client::OrganizationServiceClient::new(
        Bearer::new(ch.clone(), token).expect("header"),
    )
    .list_business_units(pb::ListBusinessUnitsRequest::default())
    .await
    .expect("the admin token works");
    let err = pb::organization_service_client::OrganizationServiceClient::new(ch)
        .list_business_units(pb::ListBusinessUnitsRequest::default())
        .await
        .expect_err("still closed to anonymous callers");
    assert_eq!(err.code(), Code::Unauthenticated);
    running.stop().await.expect("stop");
    // Second start: the same tokens file, no new token.
    let running = gateway::start(&config, assurance_runtime::serve::Shutdown::new())
        .await
        .expect("restarts");
    assert_eq!(
        std::fs::read_to_string(db.dir.path().join("tokens.toml")).expect("tokens"),
        tokens
    );
    running.stop().await.expect("stop");
}

/// A service without credentials refuses to start, naming the flags; `--insecure-dev` (the
/// only test that uses it) serves every caller as an administrator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_dev_is_the_only_way_to_run_without_credentials() {
    let db = TestDb::new(Backend::Sqlite).await;
    let mut config = risk_config(&db);
    config.security = risk_service::config::Security::default();
    let err = risk_service::start(&config, assurance_runtime::serve::Shutdown::new())
        .await
        .err()
        .expect("refuses to start open");
    assert!(
        err.contains("--tokens-file") && err.contains("--insecure-dev"),
        "{err}"
    );
    config.security.insecure_dev = true;
    let running = risk_service::start(&config, assurance_runtime::serve::Shutdown::new())
        .await
        .expect("starts open");
    let ch = channel(running.grpc_addr).await;
    pb::organization_service_client::OrganizationServiceClient::new(ch)
        .create_business_unit(pb::CreateBusinessUnitRequest {
            business_unit_id: "dev".into(),
            business_unit: Some(pb::BusinessUnit {
                display_name: "Dev".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("no token needed");
    running.stop().await.expect("stop");
}

/// TLS on the service, mTLS between gateway and service, TLS at the gateway's edge: calls
/// pass end to end; a gateway without the client certificate is refused by the service; the
/// HTTP probes answer over TLS without a client certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_mtls_on_every_link() {
    let db = TestDb::new(Backend::Sqlite).await;
    let pki = TestPki::generate();
    let mut risk = risk_config(&db);
    let files = pki.server_files(true);
    risk.security.tls_cert = files.cert.clone();
    risk.security.tls_key = files.key.clone();
    risk.security.tls_client_ca = files.client_ca.clone();
    let risk = risk_service::start(&risk, assurance_runtime::serve::Shutdown::new())
        .await
        .expect("risk-service with mTLS");
    let mut incident = incident_config(&db);
    incident.security.tls_cert = files.cert.clone();
    incident.security.tls_key = files.key.clone();
    incident.security.tls_client_ca = files.client_ca.clone();
    // incident-service's own link to risk-service (the relay, the org-registry check): mTLS.
    incident.risk_url = Some(format!("https://localhost:{}", risk.grpc_addr.port()));
    let relay_token = db.data_dir().join("incident-system.token");
    std::fs::write(&relay_token, db.tokens.token("system")).expect("token file");
    incident.service_token_file = Some(relay_token);
    incident.risk_tls_ca = Some(pki.ca.clone());
    incident.risk_tls_cert = Some(pki.client_cert.clone());
    incident.risk_tls_key = Some(pki.client_key.clone());
    let incident = incident_service::start(&incident, assurance_runtime::serve::Shutdown::new())
        .await
        .expect("incident-service with mTLS");

    let start_gateway = |with_identity: bool| {
        let mut config = gateway_config(&db);
        config.risk_url = vec![format!("https://localhost:{}", risk.grpc_addr.port())];
        config.incident_url = vec![format!("https://localhost:{}", incident.grpc_addr.port())];
        config.upstream_tls_ca = Some(pki.ca.clone());
        if with_identity {
            config.upstream_tls_cert = Some(pki.client_cert.clone());
            config.upstream_tls_key = Some(pki.client_key.clone());
        }
        config.security.tls_cert = files.cert.clone();
        config.security.tls_key = files.key.clone();
        async move {
            gateway::start(&config, assurance_runtime::serve::Shutdown::new())
                .await
                .expect("gateway starts")
        }
    };
    let gw = start_gateway(true).await;
    let tls_channel = |port: u16| {
        let tls = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(
                std::fs::read(&pki.ca).expect("ca"),
            ))
            .domain_name("localhost");
        async move {
            tonic::transport::Endpoint::from_shared(format!("https://localhost:{port}"))
                .expect("endpoint")
                .tls_config(tls)
                .expect("tls")
                .connect()
                .await
                .expect("TLS connect to the gateway")
        }
    };
    let ch = tls_channel(gw.grpc_addr.port()).await;
    let mut org = pb::organization_service_client::OrganizationServiceClient::new(
        Bearer::new(ch.clone(), db.tokens.admin()).expect("header"),
    );
    org.create_business_unit(pb::CreateBusinessUnitRequest {
        business_unit_id: "secure".into(),
        business_unit: Some(pb::BusinessUnit {
            display_name: "Secure".into(),
            ..Default::default()
        }),
        request_id: String::new(),
    })
    .await
    .expect("over TLS, then mTLS to risk-service");
    // An unknown affected service is refused only when incident-service reached risk-service's
    // org registry (an unreachable registry accepts it): its mTLS link works.
    let err = ipb::incident_service_client::IncidentServiceClient::new(
        Bearer::new(ch.clone(), db.tokens.admin()).expect("header"),
    )
    .declare_incident(ipb::DeclareIncidentRequest {
        incident: Some(ipb::Incident {
            title: "Checked over mTLS".into(),
            summary: "The registry is asked over mTLS.".into(),
            classification: ipb::Classification::Event as i32,
            functional_impact: ipb::FunctionalImpact::Low as i32,
            information_impacts: vec![ipb::InformationImpact::None as i32],
            recoverability: ipb::Recoverability::Regular as i32,
            affected_services: vec!["services/not-registered".into()],
            detection_source: "siem".into(),
            incident_type: "credential-compromise".into(),
            ..Default::default()
        }),
        request_id: String::new(),
    })
    .await
    .expect_err("the org registry was asked");
    assert!(err.message().contains("not in the org registry"), "{err:?}");
    // The HTTP listeners keep TLS but never ask for a client certificate, mTLS or not:
    // orchestrator probes and tracker webhooks have none.
    let https = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(&pki.ca).expect("ca")).expect("CA PEM"),
        )
        .build()
        .expect("HTTPS client");
    for (who, addr) in [
        ("risk-service", risk.http_addr),
        ("incident-service", incident.http_addr),
        ("gateway", gw.http_addr),
    ] {
        for path in ["/healthz", "/readyz"] {
            let response = https
                .get(format!("https://localhost:{}{path}", addr.port()))
                .send()
                .await
                .unwrap_or_else(|e| panic!("{who} {path} without a client certificate: {e}"));
            assert_eq!(response.status(), 200, "{who} {path}");
        }
    }
    // Plaintext to a TLS listener fails: at the connection or, if the transport connects
    // lazily, at the call. Either way no answer comes back.
    let refusal = plaintext_call(gw.grpc_addr, db.tokens.admin())
        .await
        .expect_err("plaintext is refused by a TLS listener");
    eprintln!("plaintext to the TLS gateway: {refusal}");
    // Without its client certificate the gateway cannot reach the services.
    let no_identity = start_gateway(false).await;
    let ch = tls_channel(no_identity.grpc_addr.port()).await;
    let err = pb::organization_service_client::OrganizationServiceClient::new(
        Bearer::new(ch, db.tokens.admin()).expect("header"),
    )
    .list_business_units(pb::ListBusinessUnitsRequest::default())
    .await
    .expect_err("service requires the gateway's certificate");
    assert_eq!(err.code(), Code::Unavailable, "{}", err.message());
    for r in [gw, no_identity, risk, incident] {
        r.stop().await.expect("stop");
    }
}

/// A plaintext gRPC call to `addr`; `Err` names the step that failed (`connect: …` or
/// `call: …`).
async fn plaintext_call(addr: std::net::SocketAddr, token: &str) -> Result<(), String> {
    let plain = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect_timeout(std::time::Duration::from_secs(5))
        .timeout(std::time::Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| format!("connect: {e}"))?;
    pb::organization_service_client::OrganizationServiceClient::new(
        Bearer::new(plain, token).expect("header"),
    )
    .list_business_units(pb::ListBusinessUnitsRequest::default())
    .await
    .map(drop)
    .map_err(|e| format!("call: {:?} {}", e.code(), e.message()))
}
