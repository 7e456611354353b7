//! Preparation: the built-in response template, contacts and notification rules.

use assurance_proto::incident::v1 as pb;

use crate::helpers::*;

crate::on_both_backends!(the_built_in_preparation_offers_a_template_contacts_and_rules);

async fn the_built_in_preparation_offers_a_template_contacts_and_rules(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;
    let mut client = app.incidents();
    let templates = client
        .list_response_templates(pb::ListResponseTemplatesRequest {})
        .await
        .expect("templates")
        .into_inner()
        .templates;
    assert_eq!(templates.len(), 1);
    assert_eq!(templates[0].incident_type, "default");
    assert_eq!(
        templates[0].roles,
        [
            pb::RoleKind::IncidentResponseLead as i32,
            pb::RoleKind::SecurityIncidentOwner as i32
        ]
    );
    assert!(!templates[0].tasks.is_empty(), "the template has tasks");
    let contacts = client
        .list_contacts(pb::ListContactsRequest {})
        .await
        .expect("contacts")
        .into_inner()
        .contacts;
    assert!(contacts.iter().any(|c| c.team == "security-response"));
    let rules = client
        .list_notification_rules(pb::ListNotificationRulesRequest {})
        .await
        .expect("rules")
        .into_inner()
        .rules;
    assert!(
        rules
            .iter()
            .any(|r| r.customer_data_affected && r.notify == ["customer-communications"])
    );
}
