//! Notifications to stakeholders: a second approver, and the deadline they keep.

use assurance_proto::incident::v1 as pb;

use super::*;

crate::on_both_backends!(notifications_need_another_approver_and_keep_their_deadline,);

async fn notifications_need_another_approver_and_keep_their_deadline(backend: Backend) {
    use sea_orm::ConnectionTrait;
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;
    let mut inc = new_incident("Customer records exposed");
    inc.customer_data_affected = true;
    let declared = declare(&app, inc).await;
    // Drafted by the security lead; the author is the caller, whatever the request says.
    let create = |audience: pb::Audience, subject: &str| {
        let mut client = app.incidents_as("security_lead");
        let request = pb::CreateNotificationRequest {
            parent: declared.name.clone(),
            notification: Some(pb::Notification {
                audience: audience as i32,
                subject: subject.into(),
                body: "We are writing to let you know…".into(),
                author: "comms@example.com".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        };
        async move {
            client
                .create_notification(request)
                .await
                .map(|r| r.into_inner())
        }
    };
    let customers = create(pb::Audience::Customers, "Notice of a security incident")
        .await
        .expect("draft");
    assert_eq!(customers.status, pb::NotificationStatus::Draft as i32);
    assert_eq!(customers.author, "security_lead@example.com");
    let declared_at = declared.declare_time.expect("declared").seconds;
    assert_eq!(
        customers.deadline_time.map(|d| d.seconds),
        Some(declared_at + 72 * 3600)
    );
    assert!(!customers.overdue);
    let internal = create(pb::Audience::Internal, "All-hands note")
        .await
        .expect("internal");
    assert!(
        internal.deadline_time.is_none(),
        "internal notices have no deadline"
    );

    let sent = |name: String| {
        let mut client = app.incidents();
        async move {
            client
                .mark_notification_sent(pb::MarkNotificationSentRequest {
                    name,
                    ..Default::default()
                })
                .await
                .map(|r| r.into_inner())
        }
    };
    let approve = |name: String, who: &str| {
        let mut client = app.incidents_as(who);
        let request = pb::ApproveNotificationRequest {
            name,
            // Ignored: the approver is the caller.
            approver: "someone-else@example.com".into(),
            ..Default::default()
        };
        async move {
            client
                .approve_notification(request)
                .await
                .map(|r| r.into_inner())
        }
    };
    let err = sent(customers.name.clone())
        .await
        .expect_err("not approved");
    assert_eq!(reason(&err), "NOT_APPROVED");
    let err = approve(customers.name.clone(), "security_lead")
        .await
        .expect_err("own draft");
    assert_eq!(reason(&err), "SELF_APPROVAL");
    let approved = approve(customers.name.clone(), "admin")
        .await
        .expect("approve");
    assert_eq!(
        (approved.status, approved.approver.as_str()),
        (pb::NotificationStatus::Approved as i32, "admin@example.com")
    );
    let err = approve(customers.name.clone(), "admin2")
        .await
        .expect_err("twice");
    assert_eq!(reason(&err), "NOT_A_DRAFT");
    let done = sent(customers.name.clone()).await.expect("send");
    assert_eq!(done.status, pb::NotificationStatus::Sent as i32);
    assert!(done.send_time.is_some());

    // A regulator notice whose deadline has passed shows in the overdue list of all incidents.
    let regulator = create(pb::Audience::Regulator, "Breach notification")
        .await
        .expect("regulator");
    let id = regulator
        .name
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let store = incident_service::store::Store::open(&db.incident_url(), 2)
        .await
        .expect("store");
    let past = sea_orm::Statement::from_sql_and_values(
        store.connection().get_database_backend(),
        match store.connection().get_database_backend() {
            sea_orm::DbBackend::Postgres => {
                "UPDATE notifications SET deadline_time = 1 WHERE id = $1"
            }
            _ => "UPDATE notifications SET deadline_time = 1 WHERE id = ?",
        },
        [uuid::Uuid::parse_str(&id).expect("uuid").into()],
    );
    store
        .connection()
        .execute_raw(past)
        .await
        .expect("move the deadline into the past");
    let overdue = app
        .incidents()
        .list_notifications(pb::ListNotificationsRequest {
            parent: "incidents/-".into(),
            filter: "overdue = true".into(),
            ..Default::default()
        })
        .await
        .expect("overdue")
        .into_inner()
        .notifications;
    assert_eq!(overdue.len(), 1);
    assert_eq!(overdue[0].name, regulator.name);
    assert!(overdue[0].overdue);
    let to_regulators = app
        .incidents()
        .list_notifications(pb::ListNotificationsRequest {
            parent: "incidents/-".into(),
            filter: "audience = REGULATOR AND NOT overdue = false".into(),
            ..Default::default()
        })
        .await
        .expect("regulator notices")
        .into_inner()
        .notifications;
    assert_eq!(
        to_regulators.iter().map(|n| &n.name).collect::<Vec<_>>(),
        [&regulator.name]
    );
    let err = app
        .incidents()
        .list_notifications(pb::ListNotificationsRequest {
            parent: "incidents/-".into(),
            filter: "overdue = maybe".into(),
            ..Default::default()
        })
        .await
        .expect_err("not a boolean");
    assert_eq!(violations(&err), ["filter"]);
    let all = app
        .incidents()
        .list_notifications(pb::ListNotificationsRequest {
            parent: declared.name.clone(),
            ..Default::default()
        })
        .await
        .expect("all of the incident")
        .into_inner()
        .notifications;
    assert_eq!(all.len(), 3);
}
