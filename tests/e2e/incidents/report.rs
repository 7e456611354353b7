//! Incident reports: Markdown, JSON, HTML and CSV exports that withhold restricted material.

use assurance_proto::incident::v1 as pb;
use assurance_proto::r#type::v1 as tpb;

use super::*;

crate::on_both_backends!(
    reports_export_markdown_and_json_and_withhold_restricted_material,
    reports_export_escaped_html_and_rfc4180_csv,
);

async fn reports_export_markdown_and_json_and_withhold_restricted_material(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;
    let declared = declare(&app, new_incident("Credential phishing of the sales team")).await;
    let mut client = app.incidents();
    client
        .assign_role(pb::AssignRoleRequest {
            parent: declared.name.clone(),
            role: Some(pb::Role {
                kind: pb::RoleKind::IncidentResponseLead as i32,
                person: "ana@example.com".into(),
                team: "security-response".into(),
                ..Default::default()
            }),
        })
        .await
        .expect("role");
    for (value, tlp) in [
        ("203.0.113.9", pb::Tlp::Red),
        ("198.51.100.4", pb::Tlp::Green),
    ] {
        client
            .create_indicator(pb::CreateIndicatorRequest {
                parent: declared.name.clone(),
                indicator: Some(pb::Indicator {
                    r#type: pb::IndicatorType::Ip as i32,
                    value: value.into(),
                    tlp: tlp as i32,
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .expect("indicator");
    }
    client
        .create_evidence(pb::CreateEvidenceRequest {
            parent: declared.name.clone(),
            evidence: Some(pb::Evidence {
                description: "Mailbox export".into(),
                hash: "d41d8cd98f00b204e9800998ecf8427e".into(),
                location: "vault-3".into(),
                collector: "kim@example.com".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("evidence");
    let export = |format: tpb::ReportFormat, external: bool| {
        let mut client = app.incidents();
        let request = pb::ExportIncidentReportRequest {
            name: declared.name.clone(),
            format: format as i32,
            external,
        };
        async move {
            client
                .export_incident_report(request)
                .await
                .map(|r| r.into_inner())
        }
    };
    let internal = export(tpb::ReportFormat::Markdown, false)
        .await
        .expect("markdown");
    assert_eq!(internal.content_type, "text/markdown; charset=utf-8");
    let text = String::from_utf8(internal.content).expect("utf-8");
    for expected in [
        "# Incident report: Credential phishing of the sales team",
        "## Timeline",
        "203.0.113.9",
        "Mailbox export",
        "ana@example.com",
        "| Severity | HIGH |",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    let external = String::from_utf8(
        export(tpb::ReportFormat::Markdown, true)
            .await
            .expect("external")
            .content,
    )
    .expect("utf-8");
    assert!(external.contains("198.51.100.4"), "TLP:GREEN is shareable");
    for withheld in [
        "203.0.113.9",
        "Mailbox export",
        "ana@example.com",
        "kim@example.com",
    ] {
        assert!(
            !external.contains(withheld),
            "{withheld:?} leaked into\n{external}"
        );
    }
    let json = export(tpb::ReportFormat::Json, false).await.expect("json");
    assert_eq!(json.content_type, "application/json");
    let value: serde_json::Value = serde_json::from_slice(&json.content).expect("valid JSON");
    assert_eq!(value["phase"], "DETECTION_ANALYSIS");
    assert_eq!(value["indicators"].as_array().map(Vec::len), Some(2));
    assert_eq!(value["timeline"].as_array().map(Vec::len), Some(5));
    let err = export(tpb::ReportFormat::Unspecified, false)
        .await
        .expect_err("no format");
    assert_eq!(violations(&err), ["format"]);
}

/// HTML escapes every value and stays self-contained; CSV is the timeline with RFC 4180 quoting.
async fn reports_export_escaped_html_and_rfc4180_csv(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;
    let declared = declare(&app, new_incident("Phish <script>alert(1)</script> & co")).await;
    let mut client = app.incidents();
    client
        .create_timeline_event(pb::CreateTimelineEventRequest {
            parent: declared.name.clone(),
            summary: "said \"stop\", then\nleft".into(),
            request_id: String::new(),
        })
        .await
        .expect("note");
    let export = |format: tpb::ReportFormat| {
        let mut client = app.incidents();
        let request = pb::ExportIncidentReportRequest {
            name: declared.name.clone(),
            format: format as i32,
            external: false,
        };
        async move {
            client
                .export_incident_report(request)
                .await
                .map(|r| r.into_inner())
        }
    };
    let html = export(tpb::ReportFormat::Html).await.expect("html");
    assert_eq!(html.content_type, "text/html; charset=utf-8");
    assert_eq!(html.format, tpb::ReportFormat::Html as i32);
    let page = String::from_utf8(html.content).expect("utf-8");
    assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
    assert!(
        page.contains("Phish &lt;script&gt;alert(1)&lt;/script&gt; &amp; co"),
        "{page}"
    );
    assert!(!page.contains("<script>"), "unescaped input in\n{page}");
    assert!(page.contains("said &quot;stop&quot;, then"), "{page}");
    assert!(
        !page.contains("src=") && !page.contains("href="),
        "not self-contained"
    );

    let csv = export(tpb::ReportFormat::Csv).await.expect("csv");
    assert_eq!(csv.content_type, "text/csv; charset=utf-8; header=present");
    let text = String::from_utf8(csv.content).expect("utf-8");
    assert!(
        text.starts_with("sequence,time,phase,kind,actor,summary\r\n"),
        "{text}"
    );
    assert!(
        text.contains(",NOTE,") && text.contains("\"said \"\"stop\"\", then\nleft\"\r\n"),
        "RFC 4180 quoting in\n{text}"
    );
    // Records: header, DECLARED, NOTE.
    assert_eq!(text.matches("\r\n").count(), 3, "{text}");

    let err = export(tpb::ReportFormat::Unspecified)
        .await
        .expect_err("no format");
    assert_eq!(violations(&err), ["format"]);
    let described = {
        use tonic_types::StatusExt;
        err.get_error_details()
            .bad_request()
            .map(|b| b.field_violations[0].description.clone())
            .unwrap_or_default()
    };
    assert!(
        described.contains("REPORT_FORMAT_HTML") && described.contains("REPORT_FORMAT_CSV"),
        "{described}"
    );
}
