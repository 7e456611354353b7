//! Incident reports: Markdown and JSON exports that withhold restricted material.

use assurance_proto::incident::v1 as pb;

use super::*;

crate::on_both_backends!(reports_export_markdown_and_json_and_withhold_restricted_material,);

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
            .add_indicator(pb::AddIndicatorRequest {
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
        .add_evidence(pb::AddEvidenceRequest {
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
    let export = |format: pb::ReportFormat, external: bool| {
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
    let internal = export(pb::ReportFormat::Markdown, false)
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
        export(pb::ReportFormat::Markdown, true)
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
    let json = export(pb::ReportFormat::Json, false).await.expect("json");
    assert_eq!(json.content_type, "application/json");
    let value: serde_json::Value = serde_json::from_slice(&json.content).expect("valid JSON");
    assert_eq!(value["phase"], "DETECTION_ANALYSIS");
    assert_eq!(value["indicators"].as_array().map(Vec::len), Some(2));
    assert_eq!(value["timeline"].as_array().map(Vec::len), Some(5));
    let err = export(pb::ReportFormat::Unspecified, false)
        .await
        .expect_err("no format");
    assert_eq!(violations(&err), ["format"]);
}
