//! Preparation: the built-in response template, contacts and notification rules.

use assurance_proto::incident::v1 as pb;

use crate::helpers::*;

crate::on_both_backends!(the_built_in_preparation_offers_a_template_contacts_and_rules);

async fn the_built_in_preparation_offers_a_template_contacts_and_rules(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;
    let mut client = app.incidents();
    let templates = client
        .list_response_templates(pb::ListResponseTemplatesRequest::default())
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
        .list_contacts(pb::ListContactsRequest::default())
        .await
        .expect("contacts")
        .into_inner()
        .contacts;
    assert!(contacts.iter().any(|c| c.team == "security-response"));
    assert!(
        contacts.len() > 1,
        "the built-in preparation has several contacts"
    );
    let paged = super::one_at_a_time(|page_token| {
        let mut client = app.incidents();
        async move {
            let page = client
                .list_contacts(pb::ListContactsRequest {
                    page_size: 1,
                    page_token,
                })
                .await
                .expect("a page of contacts")
                .into_inner();
            (page.contacts, page.next_page_token)
        }
    })
    .await;
    assert_eq!(
        paged, contacts,
        "paging one at a time gives the same contacts in order"
    );
    let rules = client
        .list_notification_rules(pb::ListNotificationRulesRequest::default())
        .await
        .expect("rules")
        .into_inner()
        .rules;
    let paged = super::one_at_a_time(|page_token| {
        let mut client = app.incidents();
        async move {
            let page = client
                .list_notification_rules(pb::ListNotificationRulesRequest {
                    page_size: 1,
                    page_token,
                })
                .await
                .expect("a page of rules")
                .into_inner();
            (page.rules, page.next_page_token)
        }
    })
    .await;
    assert_eq!(
        paged, rules,
        "paging one at a time gives the same rules in order"
    );
    let templates_page = client
        .list_response_templates(pb::ListResponseTemplatesRequest {
            page_size: 1,
            page_token: String::new(),
        })
        .await
        .expect("one template page")
        .into_inner();
    assert_eq!(templates_page.templates, templates);
    assert_eq!(templates_page.next_page_token, "", "one template: one page");
    let err = client
        .list_contacts(pb::ListContactsRequest {
            page_size: 1,
            page_token: "not-a-token".into(),
        })
        .await
        .expect_err("a forged token");
    assert_eq!(violations(&err), ["page_token"]);
    assert!(
        rules
            .iter()
            .any(|r| r.customer_data_affected && r.notify == ["customer-communications"])
    );
}
