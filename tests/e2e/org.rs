//! The org registry: business units and services.

use assurance_proto::risk::v1 as pb;
use prost_types::FieldMask;
use risk_service::domain::scoring::Methodology;
use tonic::Code;

use crate::helpers::*;

crate::on_both_backends!(
    business_units_and_services_crud,
    org_validation_and_conflicts,
    moving_a_service_moves_its_risks,
    deleting_is_refused_while_open_risks_or_services_reference_it,
);

async fn business_units_and_services_crud(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = risk_service(&db, Methodology::Standard).await;
    let mut org = app.org();

    let bu = create_bu(&app, "productivity").await;
    assert_eq!(bu.name, "businessUnits/productivity");
    assert_eq!(bu.etag, "\"1\"");
    for id in ["cloud", "devices", "gaming"] {
        create_bu(&app, id).await;
    }
    let got = org
        .get_business_unit(pb::GetBusinessUnitRequest {
            name: bu.name.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(got, bu);

    // Pages of two, in id order.
    let page1 = org
        .list_business_units(pb::ListBusinessUnitsRequest {
            page_size: 2,
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    let page2 = org
        .list_business_units(pb::ListBusinessUnitsRequest {
            page_size: 2,
            page_token: page1.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    let ids: Vec<_> = page1
        .business_units
        .iter()
        .chain(&page2.business_units)
        .map(|b| b.name.as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "businessUnits/cloud",
            "businessUnits/devices",
            "businessUnits/gaming",
            "businessUnits/productivity"
        ]
    );
    assert!(page2.next_page_token.is_empty());

    let updated = org
        .update_business_unit(pb::UpdateBusinessUnitRequest {
            business_unit: Some(pb::BusinessUnit {
                name: bu.name.clone(),
                display_name: "Productivity & Collaboration".into(),
                etag: bu.etag.clone(),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["display_name".into()],
            }),
        })
        .await
        .expect("update")
        .into_inner();
    assert_eq!(updated.display_name, "Productivity & Collaboration");
    assert_eq!(updated.owner, bu.owner);
    assert_eq!(updated.etag, "\"2\"");

    let svc = create_service(&app, "exchange-online", "productivity").await;
    create_service(&app, "azure-compute", "cloud").await;
    assert_eq!(svc.business_unit, "businessUnits/productivity");
    let only_productivity = org
        .list_services(pb::ListServicesRequest {
            business_unit: "businessUnits/productivity".into(),
            ..Default::default()
        })
        .await
        .expect("list services")
        .into_inner();
    assert_eq!(only_productivity.services, vec![svc.clone()]);
    let svc2 = org
        .update_service(pb::UpdateServiceRequest {
            service: Some(pb::Service {
                name: svc.name.clone(),
                description: "Hosted mail".into(),
                ..Default::default()
            }),
            update_mask: None,
        })
        .await
        .expect("update service")
        .into_inner();
    assert_eq!(svc2.description, "Hosted mail");
    assert_eq!(svc2.display_name, svc.display_name);
}

async fn org_validation_and_conflicts(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = risk_service(&db, Methodology::Standard).await;
    let mut org = app.org();
    create_bu(&app, "productivity").await;

    let err = org
        .create_business_unit(pb::CreateBusinessUnitRequest {
            business_unit_id: "Productivity!".into(),
            business_unit: Some(pb::BusinessUnit::default()),
            request_id: String::new(),
        })
        .await
        .expect_err("invalid");
    let mut fields = violations(&err);
    fields.sort();
    assert_eq!(fields, ["business_unit.display_name", "business_unit_id"]);

    let err = org
        .create_business_unit(pb::CreateBusinessUnitRequest {
            business_unit_id: "productivity".into(),
            business_unit: Some(pb::BusinessUnit {
                display_name: "Again".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect_err("duplicate");
    assert_reason(&err, Code::AlreadyExists, "ALREADY_EXISTS");

    // A retried create with a request id returns the same resource instead.
    let request = pb::CreateBusinessUnitRequest {
        business_unit_id: "cloud".into(),
        business_unit: Some(pb::BusinessUnit {
            display_name: "Cloud".into(),
            ..Default::default()
        }),
        request_id: "7d2c8a3e-0b7f-4d8e-9f00-1a2b3c4d5e6f".into(),
    };
    let first = org
        .create_business_unit(request.clone())
        .await
        .expect("create")
        .into_inner();
    let retry = org
        .create_business_unit(request)
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(first, retry);

    let err = org
        .create_service(pb::CreateServiceRequest {
            service_id: "exchange-online".into(),
            service: Some(pb::Service {
                business_unit: "businessUnits/nope".into(),
                display_name: "Exchange".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect_err("unknown business unit");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violations(&err), ["service.business_unit"]);

    let err = org
        .get_service(pb::GetServiceRequest {
            name: "services/missing".into(),
        })
        .await
        .expect_err("missing");
    assert_eq!(err.code(), Code::NotFound);

    let err = org
        .update_business_unit(pb::UpdateBusinessUnitRequest {
            business_unit: Some(pb::BusinessUnit {
                name: "businessUnits/productivity".into(),
                display_name: "x".into(),
                etag: "\"9\"".into(),
                ..Default::default()
            }),
            update_mask: None,
        })
        .await
        .expect_err("stale");
    assert_eq!(err.code(), Code::Aborted);

    let err = org
        .update_business_unit(pb::UpdateBusinessUnitRequest {
            business_unit: Some(pb::BusinessUnit {
                name: "businessUnits/productivity".into(),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["name".into()],
            }),
        })
        .await
        .expect_err("immutable path");
    assert_eq!(violations(&err), ["update_mask"]);
}

async fn moving_a_service_moves_its_risks(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = risk_service(&db, Methodology::Standard).await;
    org_fixture(&app).await;
    create_bu(&app, "cloud").await;
    let risk = create_risk(&app, new_risk("Mailbox takeover", "exchange-online")).await;

    app.org()
        .update_service(pb::UpdateServiceRequest {
            service: Some(pb::Service {
                name: "services/exchange-online".into(),
                business_unit: "businessUnits/cloud".into(),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["business_unit".into()],
            }),
        })
        .await
        .expect("move service");
    let moved = get_risk(&app, &risk.name).await;
    assert_eq!(moved.business_unit, "businessUnits/cloud");
    assert_ne!(moved.etag, risk.etag, "the risk's representation changed");
    let in_cloud = app
        .risks()
        .list_risks(pb::ListRisksRequest {
            filter: "business_unit = businessUnits/cloud".into(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(in_cloud.risks.len(), 1);
}

/// The `PreconditionFailure` subjects of a refusal.
fn precondition_subjects(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .precondition_failure()
        .map(|p| p.violations.iter().map(|v| v.subject.clone()).collect())
        .unwrap_or_default()
}

/// DeleteService and DeleteBusinessUnit: refused with FAILED_PRECONDITION naming what is still
/// open (risks not CLOSED; a business unit's services) and to roles other than the org admins;
/// otherwise deleted (etag checked, audited): not found, listed or referable any more, its id
/// not reused, and its CLOSED risks keep naming it.
async fn deleting_is_refused_while_open_risks_or_services_reference_it(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = embedded_gateway(&db, backend).await;
    org_fixture(&app).await;
    let teams = create_service(&app, "teams", "productivity").await;
    let risk = identify_risk_as(
        &app,
        "risk_owner",
        new_risk("Stale admins", "exchange-online"),
    )
    .await
    .expect("identify");
    let delete_service = |name: &str, etag: &str| pb::DeleteServiceRequest {
        name: name.into(),
        etag: etag.into(),
    };
    let delete_bu = |name: &str, etag: &str| pb::DeleteBusinessUnitRequest {
        name: name.into(),
        etag: etag.into(),
    };

    let err = app
        .org_as("service_manager")
        .delete_service(delete_service("services/exchange-online", ""))
        .await
        .expect_err("not an org admin");
    assert_eq!(err.code(), Code::PermissionDenied);
    let mut org = app.org_as("trust_team");
    let err = org
        .delete_service(delete_service("services/exchange-online", ""))
        .await
        .expect_err("open risk");
    assert_reason(&err, Code::FailedPrecondition, "REFERENCED");
    assert_eq!(precondition_subjects(&err), vec![risk.name.clone()]);
    let err = org
        .delete_business_unit(delete_bu("businessUnits/productivity", ""))
        .await
        .expect_err("services and an open risk");
    assert_reason(&err, Code::FailedPrecondition, "REFERENCED");
    assert_eq!(
        precondition_subjects(&err),
        vec![
            "services/exchange-online".to_string(),
            "services/teams".to_string(),
            risk.name.clone()
        ]
    );

    // Closed, the risk no longer holds its service; a stale etag is still ABORTED.
    app.risks_as("trust_team")
        .delete_risk(pb::DeleteRiskRequest {
            name: risk.name.clone(),
            reason: "accounts removed".into(),
            etag: String::new(),
        })
        .await
        .expect("close");
    let err = org
        .delete_service(delete_service("services/exchange-online", "\"7\""))
        .await
        .expect_err("stale");
    assert_reason(&err, Code::Aborted, "STALE_ETAG");
    org.delete_service(delete_service("services/exchange-online", "\"1\""))
        .await
        .expect("delete service");
    let trail = audit_trail(&app, "resource = \"services/exchange-online\"").await;
    assert!(
        trail.iter().any(|e| e.rpc.ends_with("/DeleteService")),
        "{trail:?}"
    );

    let err = org
        .get_service(pb::GetServiceRequest {
            name: "services/exchange-online".into(),
        })
        .await
        .expect_err("deleted");
    assert_refused(&err, Code::NotFound, "services/exchange-online");
    let listed = org
        .list_services(pb::ListServicesRequest::default())
        .await
        .expect("list")
        .into_inner()
        .services;
    assert_eq!(listed, vec![teams.clone()]);
    let closed = get_risk(&app, &risk.name).await;
    assert_eq!(closed.service, "services/exchange-online");
    let err = identify_risk_as(&app, "risk_owner", new_risk("Another", "exchange-online"))
        .await
        .expect_err("deleted service");
    assert_eq!(violations(&err), vec!["risk.service"]);
    let err = register_service(
        &app,
        "admin",
        "exchange-online",
        pb::Service {
            business_unit: "businessUnits/productivity".into(),
            display_name: "Exchange again".into(),
            ..Default::default()
        },
    )
    .await
    .expect_err("id not reused");
    assert_eq!(err.code(), Code::AlreadyExists);
    let err = org
        .delete_service(delete_service("services/exchange-online", ""))
        .await
        .expect_err("deleted already");
    assert_eq!(err.code(), Code::NotFound);

    // The business unit still has a service; without it, it goes (its closed risk keeps it).
    let err = org
        .delete_business_unit(delete_bu("businessUnits/productivity", ""))
        .await
        .expect_err("teams");
    assert_eq!(
        precondition_subjects(&err),
        vec!["services/teams".to_string()]
    );
    org.delete_service(delete_service("services/teams", ""))
        .await
        .expect("delete teams");
    org.delete_business_unit(delete_bu("businessUnits/productivity", "\"1\""))
        .await
        .expect("delete business unit");
    let err = org
        .get_business_unit(pb::GetBusinessUnitRequest {
            name: "businessUnits/productivity".into(),
        })
        .await
        .expect_err("deleted");
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(
        get_risk(&app, &risk.name).await.business_unit,
        "businessUnits/productivity"
    );
    let err = org
        .delete_business_unit(delete_bu("unit/x", ""))
        .await
        .expect_err("malformed");
    assert_eq!(violations(&err), vec!["name"]);
}
