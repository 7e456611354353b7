//! Formal reports (`ReportService`) through a real client: the whole cycle — a frozen DRAFT
//! whose figures are recounted from its rows, confirmation by a scoped manager (and refused for
//! another service), VERIFIED, sign-off (refused to the report's creator), the four exports
//! parsed back with real parsers (CSV, JSON, HTML) and their SHA-256 checked, byte-identical
//! exports of a signed report, refused changes to it, rejection, and the audit trail.

use std::collections::BTreeMap;

use assurance_proto::{
    audit::v1 as audit_pb,
    gateway::v1::{
        ConfirmReportRequest, CreateReportRequest, ExportReportRequest, GetReportRequest,
        ListReportsRequest, RejectReportRequest, Report, ReportFormat, ReportState,
        SignOffReportRequest, audit_service_client::AuditServiceClient,
        report_service_client::ReportServiceClient,
    },
    risk::v1 as pb,
};
use tonic::Code;

use crate::{helpers::*, posture::nodes};

crate::on_both_backends!(
    the_report_cycle_from_draft_to_signed_exports,
    rejection_self_sign_off_and_scoped_reads
);

fn reports_as(app: &App, who: &str) -> ReportServiceClient<Authed> {
    ReportServiceClient::new(app.channel_as(who)).max_decoding_message_size(64 << 20)
}

/// The period reported on: the 90 days up to tomorrow, at midnight UTC (the same in a retry).
fn quarter() -> (prost_types::Timestamp, prost_types::Timestamp) {
    let midnight = |t: prost_types::Timestamp| prost_types::Timestamp {
        seconds: t.seconds - t.seconds.rem_euclid(86_400),
        nanos: 0,
    };
    (midnight(days(-89)), midnight(days(1)))
}

async fn create_report(app: &App, who: &str, scope: &str) -> Result<Report, tonic::Status> {
    reports_as(app, who)
        .create_report(CreateReportRequest {
            report: Some(Report {
                scope: scope.into(),
                title: "ERM report Q4 2026".into(),
                period_start: Some(quarter().0),
                period_end: Some(quarter().1),
                ..Default::default()
            }),
            request_id: format!("create-{}-{who}", scope.replace('/', ".")),
        })
        .await
        .map(|r| r.into_inner())
}

async fn confirm(
    app: &App,
    who: &str,
    report: &Report,
    service: &str,
    etag: &str,
) -> Result<Report, tonic::Status> {
    reports_as(app, who)
        .confirm_report(ConfirmReportRequest {
            name: report.name.clone(),
            service: service.into(),
            note: format!("{service} checked against our register"),
            etag: etag.into(),
            request_id: String::new(),
        })
        .await
        .map(|r| r.into_inner())
}

async fn sign_off(app: &App, who: &str, report: &Report) -> Result<Report, tonic::Status> {
    reports_as(app, who)
        .sign_off_report(SignOffReportRequest {
            name: report.name.clone(),
            etag: String::new(),
            request_id: String::new(),
        })
        .await
        .map(|r| r.into_inner())
}

async fn reject(app: &App, who: &str, report: &Report) -> Result<Report, tonic::Status> {
    reports_as(app, who)
        .reject_report(RejectReportRequest {
            name: report.name.clone(),
            reason: "sharepoint's risks are missing the Q4 pen test".into(),
            etag: String::new(),
            request_id: String::new(),
        })
        .await
        .map(|r| r.into_inner())
}

/// An export: (bytes, total size announced, stored SHA-256 announced, draft flag).
async fn export(
    app: &App,
    who: &str,
    report: &Report,
    format: ReportFormat,
) -> Result<(Vec<u8>, i64, String, bool), tonic::Status> {
    let mut stream = reports_as(app, who)
        .export_report(ExportReportRequest {
            name: report.name.clone(),
            format: format as i32,
        })
        .await?
        .into_inner();
    let mut bytes = Vec::new();
    let mut header = None;
    while let Some(chunk) = stream.message().await? {
        assert!(chunk.data.len() <= 64 * 1024, "chunks are at most 64 KiB");
        if header.is_none() {
            header = Some((chunk.total_size, chunk.sha256.clone(), chunk.draft));
        } else {
            assert_eq!(chunk.total_size, 0, "only the first chunk carries the size");
        }
        bytes.extend_from_slice(&chunk.data);
    }
    let (size, sha, draft) = header.expect("at least one chunk");
    assert_eq!(
        size,
        bytes.len() as i64,
        "the first chunk announces the size"
    );
    Ok((bytes, size, sha, draft))
}

fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The risks of the fixture: exchange-online has two assessed risks (one with an action plan)
/// and one not assessed; sharepoint one assessed; payroll none. Returns them.
async fn fixture(app: &App) -> Vec<pb::Risk> {
    org_fixture(app).await;
    create_service(app, "sharepoint", "productivity").await;
    create_bu(app, "corporate").await;
    create_service(app, "payroll", "corporate").await;
    let mut risks = Vec::new();
    for (title, service, assessed) in [
        (
            "Leaked \"admin\" credentials, reused",
            "exchange-online",
            Some((4, 4)),
        ),
        (
            "Mailbox <b>export</b> abuse",
            "exchange-online",
            Some((2, 3)),
        ),
        (
            "Unreviewed transport rules\nacross tenants",
            "exchange-online",
            None,
        ),
        ("Public sharing links", "sharepoint", Some((5, 5))),
    ] {
        let mut risk = create_risk(app, new_risk(&title.replace('\n', " "), service)).await;
        if let Some((impact, likelihood)) = assessed {
            risk = assess(app, &risk.name, impact, likelihood, 3).await;
        }
        risks.push(risk);
    }
    let plan = create_action_plan(app, "admin", &risks[0].name, "Rotate credentials").await;
    for title in ["Rotate the break-glass account", "Enforce MFA"] {
        add_action_item(app, "admin", &plan, action_item(title, days(20)))
            .await
            .expect("action item");
    }
    risks
}

async fn the_report_cycle_from_draft_to_signed_exports(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = embedded_gateway(&db, backend).await;
    let risks = fixture(&app).await;

    // Only the trust team and ERM executives create reports.
    let err = create_report(&app, "viewer", "enterprise")
        .await
        .expect_err("viewer");
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = create_report(&app, "admin", "enterprise")
        .await
        .expect_err("admin");
    assert_refused(&err, Code::PermissionDenied, "trust_team or erm_executive");
    let draft = create_report(&app, "trust_team", "enterprise")
        .await
        .expect("create");
    assert_eq!(draft.state, ReportState::Draft as i32);
    assert_eq!(draft.creator, "trust_team@example.com");
    assert_eq!(draft.content_hash.len(), 64);
    assert_eq!(draft.risk_count, 4);
    // In scope: services with a contributing risk; payroll has none.
    assert_eq!(
        draft.services_in_scope,
        ["services/exchange-online", "services/sharepoint"]
    );
    // A retry with the same request id returns the same report.
    let again = create_report(&app, "trust_team", "enterprise")
        .await
        .expect("retry");
    assert_eq!(again.name, draft.name);
    assert_eq!(again.content_hash, draft.content_hash);

    // The figures are traceable: the draft's CSV rows recount the frozen posture.
    let (csv_bytes, _, sha, is_draft) = export(&app, "trust_team", &draft, ReportFormat::Csv)
        .await
        .expect("draft csv");
    assert!(is_draft && sha.is_empty(), "a draft is rendered on the fly");
    let rows = parse_csv(&csv_bytes);
    assert_eq!(rows.len(), 4);
    assert!(rows.iter().all(|r| r["report_state"] == "DRAFT"));
    let posture = draft.posture.clone().expect("frozen posture");
    let tree = nodes(posture.root.as_ref().expect("root"));
    let mut per_service: BTreeMap<String, i64> = BTreeMap::new();
    for row in &rows {
        *per_service.entry(row["service"].clone()).or_default() += 1;
    }
    for (scope, node) in &tree {
        if scope.starts_with("services/") {
            let open = node.risks.as_ref().map(|r| r.open_risks).unwrap_or(0);
            assert_eq!(
                per_service.get(scope).copied().unwrap_or(0),
                open,
                "{scope}"
            );
        }
    }
    let root = tree["enterprise"].risks.clone().expect("enterprise risks");
    assert_eq!(root.open_risks, rows.len() as i64);
    for cell in &root.heat_map {
        let counted = rows
            .iter()
            .filter(|r| {
                r["impact"] == cell.impact.to_string()
                    && r["likelihood"] == cell.likelihood.to_string()
            })
            .count() as i64;
        assert_eq!(
            counted, cell.count,
            "heat map cell {}×{}",
            cell.impact, cell.likelihood
        );
    }
    assert_eq!(
        root.unassessed,
        rows.iter().filter(|r| r["assessed"] == "false").count() as i64
    );
    let titles: Vec<&str> = rows.iter().map(|r| r["title"].as_str()).collect();
    assert!(
        titles.contains(&"Leaked \"admin\" credentials, reused"),
        "{titles:?}"
    );
    let planned = rows
        .iter()
        .find(|r| r["risk"] == risks[0].name)
        .expect("row of the planned risk");
    assert_eq!(
        (
            planned["action_items"].as_str(),
            planned["action_items_closed"].as_str()
        ),
        ("2", "0")
    );

    // Listing filters by scope, state and period.
    let list = |req: ListReportsRequest| {
        let app = &app;
        async move {
            reports_as(app, "reporter")
                .list_reports(req)
                .await
                .expect("list")
                .into_inner()
                .reports
        }
    };
    let drafts = list(ListReportsRequest {
        state: ReportState::Draft as i32,
        ..Default::default()
    })
    .await;
    assert_eq!(drafts.len(), 1);
    assert!(drafts[0].posture.is_none(), "lists leave the posture out");
    assert!(
        list(ListReportsRequest {
            scope: "services/sharepoint".into(),
            ..Default::default()
        })
        .await
        .is_empty()
    );
    assert!(
        list(ListReportsRequest {
            period_end: Some(days(-200)),
            ..Default::default()
        })
        .await
        .is_empty()
    );

    // The scoped manager of exchange-online reads the report, pruned to its service.
    let seen = reports_as(&app, "scoped")
        .get_report(GetReportRequest {
            name: draft.name.clone(),
        })
        .await
        .expect("scoped read")
        .into_inner();
    let seen_tree = nodes(
        seen.posture
            .as_ref()
            .and_then(|p| p.root.as_ref())
            .expect("root"),
    );
    assert!(
        seen_tree["enterprise"].risks.is_none(),
        "no enterprise figures"
    );
    assert!(seen_tree.contains_key("services/exchange-online"));
    assert!(!seen_tree.contains_key("services/sharepoint"));
    // Its draft export holds its own rows only.
    let (own_csv, _, _, _) = export(&app, "scoped", &draft, ReportFormat::Csv)
        .await
        .expect("scoped export");
    let own_rows = parse_csv(&own_csv);
    assert_eq!(own_rows.len(), 3);
    assert!(
        own_rows
            .iter()
            .all(|r| r["service"] == "services/exchange-online")
    );

    // It confirms its own service, not another's; nor may anyone sign off a DRAFT.
    let err = confirm(&app, "scoped", &draft, "services/sharepoint", "")
        .await
        .expect_err("another service");
    assert_refused(&err, Code::PermissionDenied, "services/sharepoint");
    let err = confirm(&app, "trust_team", &draft, "services/payroll", "")
        .await
        .expect_err("not in scope");
    assert_refused(&err, Code::InvalidArgument, "not in the scope");
    let confirmed = confirm(
        &app,
        "scoped",
        &draft,
        "services/exchange-online",
        &draft.etag,
    )
    .await
    .expect("scoped confirmation");
    assert_eq!(confirmed.state, ReportState::Draft as i32);
    assert_eq!(confirmed.confirmations.len(), 1);
    assert_eq!(
        confirmed.confirmations[0].confirmed_by,
        "exchange-team@example.com"
    );
    let err = sign_off(&app, "erm_executive", &draft)
        .await
        .expect_err("draft");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    // A stale etag is refused.
    let err = confirm(
        &app,
        "trust_team",
        &draft,
        "services/sharepoint",
        &draft.etag,
    )
    .await
    .expect_err("stale etag");
    assert_eq!(err.code(), Code::Aborted, "{err:?}");
    let verified = confirm(
        &app,
        "trust_team",
        &draft,
        "services/sharepoint",
        &confirmed.etag,
    )
    .await
    .expect("trust team confirms");
    assert_eq!(verified.state, ReportState::Verified as i32);

    // Sign-off renders and stores the four exports.
    let err = sign_off(&app, "trust_team", &verified)
        .await
        .expect_err("trust team");
    assert_eq!(err.code(), Code::PermissionDenied);
    let signed = sign_off(&app, "erm_executive", &verified)
        .await
        .expect("sign off");
    assert_eq!(signed.state, ReportState::SignedOff as i32);
    assert_eq!(signed.signed_off_by, "erm_executive@example.com");
    assert_eq!(
        signed.content_hash, draft.content_hash,
        "the content never changes"
    );
    assert_eq!(signed.exports.len(), 4);

    for format in [
        ReportFormat::Json,
        ReportFormat::Csv,
        ReportFormat::Markdown,
        ReportFormat::Html,
    ] {
        let stored = signed
            .exports
            .iter()
            .find(|e| e.format == format as i32)
            .expect("stored export");
        let (bytes, size, sha, is_draft) = export(&app, "reporter", &signed, format)
            .await
            .expect("export");
        assert!(!is_draft);
        assert_eq!(size, stored.size_bytes);
        assert_eq!(sha, stored.sha256);
        assert_eq!(sha256_hex(&bytes), stored.sha256, "{format:?}: SHA-256");
        let (second, ..) = export(&app, "reporter", &signed, format)
            .await
            .expect("export again");
        assert_eq!(second, bytes, "{format:?}: byte-identical");
        check_format(format, &bytes, &signed);
    }

    // A signed report never changes.
    let err = reject(&app, "erm_executive", &signed)
        .await
        .expect_err("reject");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    let err = confirm(&app, "trust_team", &signed, "services/sharepoint", "")
        .await
        .expect_err("confirm");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    let err = sign_off(&app, "erm_executive", &signed)
        .await
        .expect_err("again");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");

    // Every state change is in the gateway's audit trail.
    let trail = AuditServiceClient::new(app.channel_as("trust_team"))
        .list_audit_events(audit_pb::ListAuditEventsRequest {
            filter: format!("resource = \"{}\"", signed.name),
            page_size: 100,
            ..Default::default()
        })
        .await
        .expect("audit trail")
        .into_inner()
        .audit_events;
    let mut rpcs: Vec<(String, String)> = trail
        .iter()
        .map(|e| {
            (
                e.rpc.rsplit('/').next().unwrap_or_default().to_string(),
                e.principal.clone(),
            )
        })
        .collect();
    rpcs.sort();
    assert_eq!(
        rpcs,
        [
            (
                "ConfirmReport".to_string(),
                "exchange-team@example.com".to_string()
            ),
            ("ConfirmReport".into(), "trust_team@example.com".into()),
            ("CreateReport".into(), "trust_team@example.com".into()),
            ("SignOffReport".into(), "erm_executive@example.com".into()),
        ]
    );
}

/// CSV records as header → value maps, read with a real RFC 4180 reader.
fn parse_csv(bytes: &[u8]) -> Vec<BTreeMap<String, String>> {
    assert!(bytes.windows(2).any(|w| w == b"\r\n"), "RFC 4180 line ends");
    let mut reader = csv::Reader::from_reader(bytes);
    let headers = reader.headers().expect("header row").clone();
    reader
        .records()
        .map(|record| {
            let record = record.expect("CSV record");
            headers
                .iter()
                .zip(record.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// Parses `bytes` as `format` and checks it against the signed report.
fn check_format(format: ReportFormat, bytes: &[u8], report: &Report) {
    let text = std::str::from_utf8(bytes).expect("UTF-8");
    match format {
        ReportFormat::Json => {
            let doc: serde_json::Value = serde_json::from_slice(bytes).expect("JSON");
            assert_eq!(doc["report"]["name"], report.name.as_str());
            assert_eq!(doc["report"]["state"], "SIGNED_OFF");
            assert_eq!(doc["report"]["draft"], false);
            assert_eq!(doc["report"]["content_hash"], report.content_hash.as_str());
            let risks = doc["risks"].as_array().expect("risks");
            assert_eq!(risks.len() as i64, report.risk_count);
            let nodes = doc["nodes"].as_array().expect("nodes");
            let enterprise = nodes
                .iter()
                .find(|n| n["scope"] == "enterprise")
                .expect("root");
            assert_eq!(
                enterprise["risks"]["open_risks"].as_i64(),
                Some(risks.len() as i64)
            );
            let confirmations = doc["report"]["confirmations"].as_array().expect("list");
            assert_eq!(confirmations.len(), 2);
        }
        ReportFormat::Csv => {
            let rows = parse_csv(bytes);
            assert_eq!(rows.len() as i64, report.risk_count);
            assert!(rows.iter().all(|r| r["report_state"] == "SIGNED_OFF"));
        }
        ReportFormat::Markdown => {
            assert!(text.starts_with("# ERM report Q4 2026\n"));
            assert!(!text.contains("DRAFT"));
            let risk_lines = text.lines().filter(|l| l.starts_with("| risks/")).count();
            assert_eq!(risk_lines as i64, report.risk_count);
            assert!(text.contains("Mailbox <b>export</b> abuse"));
        }
        ReportFormat::Html => {
            let html = scraper::Html::parse_document(text);
            assert!(html.errors.is_empty(), "{:?}", html.errors);
            let select = |css: &str| scraper::Selector::parse(css).expect("selector");
            let rows = html.select(&select("table#risks tr")).count();
            assert_eq!(
                rows as i64,
                report.risk_count + 1,
                "header and a row per risk"
            );
            assert_eq!(html.select(&select("svg rect.cell")).count(), 25);
            let cell = html
                .select(&select(
                    "svg rect[data-impact=\"5\"][data-likelihood=\"5\"]",
                ))
                .next()
                .expect("cell 5×5");
            assert!(cell.value().attr("fill").is_some());
            // Self-contained: no external asset.
            assert_eq!(html.select(&select("[src], link, script")).count(), 0);
            assert!(html.select(&select("#draft")).next().is_none());
            let titles: Vec<String> = html
                .select(&select("table#risks td"))
                .map(|td| td.text().collect())
                .collect();
            assert!(
                titles.iter().any(|t| t == "Mailbox <b>export</b> abuse"),
                "escaped"
            );
        }
        ReportFormat::Unspecified => unreachable!(),
    }
}

async fn rejection_self_sign_off_and_scoped_reads(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = embedded_gateway(&db, backend).await;
    fixture(&app).await;
    let report = create_report(&app, "erm_executive", "businessUnits/productivity")
        .await
        .expect("create");
    let mut current = report.clone();
    for service in ["services/exchange-online", "services/sharepoint"] {
        current = confirm(&app, "trust_team", &report, service, "")
            .await
            .expect("confirm");
    }
    assert_eq!(current.state, ReportState::Verified as i32);
    // Its creator may not sign it off.
    let err = sign_off(&app, "erm_executive", &report)
        .await
        .expect_err("self");
    assert_refused(&err, Code::FailedPrecondition, "created");

    // A sharepoint-only report is not the scoped manager's to read.
    let other = create_report(&app, "trust_team", "services/sharepoint")
        .await
        .expect("sharepoint report");
    let err = reports_as(&app, "scoped")
        .get_report(GetReportRequest {
            name: other.name.clone(),
        })
        .await
        .expect_err("foreign report");
    assert_eq!(err.code(), Code::PermissionDenied);
    let listed = reports_as(&app, "scoped")
        .list_reports(ListReportsRequest::default())
        .await
        .expect("scoped list")
        .into_inner()
        .reports;
    assert_eq!(
        listed.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        [report.name.as_str()]
    );
    // The scoped manager may not reject the sharepoint report; a viewer rejects nothing.
    let err = reject(&app, "scoped", &other).await.expect_err("scoped");
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = reject(&app, "viewer", &report).await.expect_err("viewer");
    assert_eq!(err.code(), Code::PermissionDenied);

    // A confirmer rejects the VERIFIED report: REJECTED is terminal.
    let rejected = reject(&app, "scoped", &report).await.expect("reject");
    assert_eq!(rejected.state, ReportState::Rejected as i32);
    assert_eq!(rejected.rejected_by, "exchange-team@example.com");
    assert!(rejected.reject_reason.contains("pen test"));
    let err = sign_off(&app, "erm_executive", &rejected)
        .await
        .expect_err("rejected");
    assert_eq!(err.code(), Code::FailedPrecondition);
    let err = reject(&app, "erm_executive", &rejected)
        .await
        .expect_err("twice");
    assert_eq!(err.code(), Code::FailedPrecondition);
    // Its export is still rendered on the fly, marked as a draft.
    let (html, _, _, is_draft) = export(&app, "trust_team", &rejected, ReportFormat::Html)
        .await
        .expect("export");
    assert!(is_draft);
    let html = scraper::Html::parse_document(std::str::from_utf8(&html).expect("UTF-8"));
    let draft = scraper::Selector::parse("#draft").expect("selector");
    assert!(html.select(&draft).next().is_some(), "marked as a draft");

    // Validation names the field.
    let err = reports_as(&app, "trust_team")
        .create_report(CreateReportRequest {
            report: Some(Report {
                scope: "galaxy".into(),
                title: String::new(),
                period_start: Some(days(0)),
                period_end: Some(days(-1)),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect_err("invalid");
    assert_eq!(err.code(), Code::InvalidArgument);
    for field in ["report.scope", "report.title", "report.period_start"] {
        assert_mentions(&err, field);
    }
}
