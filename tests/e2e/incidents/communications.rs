//! Notifications to stakeholders: a second approver, and the deadline they keep.

use assurance_proto::incident::v1 as pb;

use super::*;

crate::on_both_backends!(
    notifications_need_another_approver_and_keep_their_deadline,
    notifications_list_in_creation_order_or_the_order_asked_for,
);

async fn notifications_need_another_approver_and_keep_their_deadline(backend: Backend) {
    use sea_orm::ConnectionTrait;
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;
    let mut inc = new_incident("Customer records exposed");
    inc.customer_data_affected = true;
    let declared = declare(&app, inc).await;
    // Drafted by a responder or the security lead; the author is the caller, whatever the
    // request says.
    let create = |audience: pb::Audience, subject: &str, who: &str| {
        let mut client = app.incidents_as(who);
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
    let customers = create(
        pb::Audience::Customers,
        "Notice of a security incident",
        "responder",
    )
    .await
    .expect("draft");
    assert_eq!(customers.status, pb::NotificationStatus::Draft as i32);
    assert_eq!(customers.author, "responder@example.com");
    let declared_at = declared.declare_time.expect("declared").seconds;
    assert_eq!(
        customers.deadline_time.map(|d| d.seconds),
        Some(declared_at + 72 * 3600)
    );
    assert!(!customers.overdue);
    let internal = create(pb::Audience::Internal, "All-hands note", "security_lead")
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
    let err = approve(internal.name.clone(), "security_lead")
        .await
        .expect_err("own draft");
    assert_eq!(reason(&err), "SELF_APPROVAL");
    // admin approves nothing.
    let err = approve(customers.name.clone(), "admin")
        .await
        .expect_err("admin");
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err:?}");
    let approved = approve(customers.name.clone(), "security_lead")
        .await
        .expect("approve");
    assert_eq!(
        (approved.status, approved.approver.as_str()),
        (
            pb::NotificationStatus::Approved as i32,
            "security_lead@example.com"
        )
    );
    let err = approve(customers.name.clone(), "security_lead")
        .await
        .expect_err("twice");
    assert_eq!(reason(&err), "NOT_A_DRAFT");
    let done = sent(customers.name.clone()).await.expect("send");
    assert_eq!(done.status, pb::NotificationStatus::Sent as i32);
    assert!(done.send_time.is_some());

    // A regulator notice whose deadline has passed shows in the overdue list of all incidents.
    let regulator = create(pb::Audience::Regulator, "Breach notification", "responder")
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

/// The names of the notifications under `parent` in `order_by`, paged `page_size` at a time.
async fn ordered(app: &App, parent: &str, order_by: &str, page_size: i32) -> Vec<String> {
    names_in_pages_of_one(|page_token| {
        let mut c = app.incidents();
        let request = pb::ListNotificationsRequest {
            parent: parent.into(),
            order_by: order_by.into(),
            page_size,
            page_token,
            ..Default::default()
        };
        async move {
            let page = c
                .list_notifications(request)
                .await
                .unwrap_or_else(|e| panic!("order_by {order_by}: {e}"))
                .into_inner();
            assert!(page.notifications.len() <= page_size as usize);
            (
                page.notifications.into_iter().map(|n| n.name).collect(),
                page.next_page_token,
            )
        }
    })
    .await
}

async fn notifications_list_in_creation_order_or_the_order_asked_for(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;
    let declared = declare(&app, new_incident("Customer records exposed")).await;
    let mut names = Vec::new();
    for (audience, subject) in [
        (pb::Audience::Customers, "a"),
        (pb::Audience::Internal, "b"),
        (pb::Audience::Regulator, "c"),
        (pb::Audience::Internal, "d"),
    ] {
        let n = app
            .incidents_as("responder")
            .create_notification(pb::CreateNotificationRequest {
                parent: declared.name.clone(),
                notification: Some(pb::Notification {
                    audience: audience as i32,
                    subject: subject.into(),
                    body: "We are writing to let you know…".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .expect("draft")
            .into_inner();
        names.push(n.name);
    }
    let [a, b, c, d] = [0, 1, 2, 3].map(|i| names[i].clone());
    // b approved, c approved and sent: statuses DRAFT, APPROVED, SENT, DRAFT.
    for name in [&b, &c] {
        app.incidents_as("security_lead")
            .approve_notification(pb::ApproveNotificationRequest {
                name: name.clone(),
                ..Default::default()
            })
            .await
            .expect("approve");
    }
    app.incidents()
        .mark_notification_sent(pb::MarkNotificationSentRequest {
            name: c.clone(),
            ..Default::default()
        })
        .await
        .expect("sent");
    for (order_by, expected) in [
        ("", [&a, &b, &c, &d]),
        ("create_time", [&a, &b, &c, &d]),
        ("create_time desc", [&d, &c, &b, &a]),
        ("status", [&a, &d, &b, &c]),
        ("status desc", [&c, &b, &d, &a]),
        ("status, create_time desc", [&d, &a, &b, &c]),
    ] {
        for parent in [declared.name.as_str(), "incidents/-"] {
            for size in [1, 2, 1000] {
                let listed = ordered(&app, parent, order_by, size).await;
                assert_eq!(
                    listed.iter().collect::<Vec<_>>(),
                    expected,
                    "{order_by} under {parent}, pages of {size}"
                );
            }
        }
    }
    for bad in ["subject", "status sideways", "status, create_time, status"] {
        let err = app
            .incidents()
            .list_notifications(pb::ListNotificationsRequest {
                parent: declared.name.clone(),
                order_by: bad.into(),
                ..Default::default()
            })
            .await
            .expect_err(bad);
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{bad}");
        assert_eq!(violations(&err), ["order_by"], "{bad}");
    }
}
