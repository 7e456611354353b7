//! `ListWorkItems` (#14): one lookup across a risk's action items and an incident's follow-ups,
//! through an embedded and a forwarding gateway — every filter, "changed since" paging over
//! items created in one transaction (equal update times), an update moving an item to the end,
//! and who may look.

use assurance_proto::{
    gateway::v1::{self as gpb, work_item_service_client::WorkItemServiceClient},
    incident::v1 as ipb,
    risk::v1 as pb,
    r#type::v1 as tv,
};
use prost_types::{FieldMask, Timestamp};
use tonic::Code;

use crate::helpers::*;

crate::on_both_backends!(
    work_items_in_an_embedded_gateway,
    work_items_through_a_forwarding_gateway,
    both_services_filter_and_order_work_items_alike,
);

async fn work_items_in_an_embedded_gateway(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = embedded_gateway(&db, backend).await;
    one_lookup_across_both_kinds(&app).await;
}

async fn work_items_through_a_forwarding_gateway(backend: Backend) {
    let db = TestDb::new(backend).await;
    let risk = risk_service(&db, risk_service::domain::scoring::Methodology::Standard).await;
    let incident = incident_service(&db).await;
    let app = forwarding_gateway(&db, risk.grpc_addr, incident.grpc_addr).await;
    one_lookup_across_both_kinds(&app).await;
}

/// The page of `filter` after `token` as `who`.
async fn page_as(
    app: &App,
    who: &str,
    filter: &str,
    page_size: i32,
    token: String,
) -> Result<gpb::ListWorkItemsResponse, tonic::Status> {
    WorkItemServiceClient::new(app.channel_as(who))
        .list_work_items(gpb::ListWorkItemsRequest {
            page_size,
            page_token: token,
            filter: filter.into(),
            order_by: String::new(),
        })
        .await
        .map(|r| r.into_inner())
}

/// Every item matching `filter`, in one page, as the tracker sync.
async fn list(app: &App, filter: &str) -> Vec<gpb::WorkItem> {
    let page = page_as(app, "tracker", filter, 1000, String::new())
        .await
        .unwrap_or_else(|e| panic!("{filter:?}: {e}"));
    assert!(page.next_page_token.is_empty(), "{filter:?}: one page");
    page.work_items
}

fn titles(items: &[gpb::WorkItem]) -> Vec<&str> {
    let mut titles: Vec<&str> = items.iter().map(|i| i.title.as_str()).collect();
    titles.sort();
    titles
}

fn key(item: &gpb::WorkItem) -> (i64, i32, String) {
    let t = item.update_time.expect("update_time");
    (t.seconds, t.nanos, item.name.clone())
}

fn rfc3339(t: Timestamp) -> String {
    t.to_string()
}

/// An incident on `service` in POST_INCIDENT whose review records follow-ups named `titles`
/// (in one transaction: equal update times).
pub(crate) async fn reviewed_incident(app: &App, service: &str, titles: &[&str]) -> ipb::Incident {
    let declared = app
        .incidents()
        .declare_incident(ipb::DeclareIncidentRequest {
            incident: Some(ipb::Incident {
                title: "Mailbox rule abuse".into(),
                summary: "Forwarding rules created by an attacker.".into(),
                classification: ipb::Classification::SecurityIncident as i32,
                functional_impact: ipb::FunctionalImpact::Low as i32,
                information_impacts: vec![ipb::InformationImpact::PrivacyBreach as i32],
                recoverability: ipb::Recoverability::Regular as i32,
                affected_services: vec![format!("services/{service}")],
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("declare")
        .into_inner();
    for phase in [
        ipb::Phase::Containment,
        ipb::Phase::Eradication,
        ipb::Phase::Recovery,
        ipb::Phase::PostIncident,
    ] {
        app.incidents()
            .advance_phase(ipb::AdvancePhaseRequest {
                name: declared.name.clone(),
                target_phase: phase as i32,
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("advance to {phase:?}: {e}"));
    }
    let follow_ups = titles
        .iter()
        .map(|title| ipb::FollowUpItem {
            title: title.to_string(),
            owner: "soc@example.com".into(),
            due_time: Some(days(30)),
            ..Default::default()
        })
        .collect();
    app.incidents()
        .create_post_incident_review(ipb::CreatePostIncidentReviewRequest {
            parent: declared.name.clone(),
            review: Some(ipb::PostIncidentReview {
                root_cause: "A legacy protocol left enabled.".into(),
                lessons_learned: "Disable legacy auth tenant-wide.".into(),
                follow_ups,
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("review");
    declared
}

/// Changes `item` at its service (its status, with its etag); the changed item's etag.
async fn change(app: &App, item: &gpb::WorkItem, status: tv::WorkItemStatus) -> String {
    let paths = Some(FieldMask {
        paths: vec!["status".into()],
    });
    if item.kind == gpb::WorkItemKind::ActionItem as i32 {
        app.risks()
            .update_action_item(pb::UpdateActionItemRequest {
                action_item: Some(pb::ActionItem {
                    name: item.name.clone(),
                    status: status as i32,
                    etag: item.etag.clone(),
                    ..Default::default()
                }),
                update_mask: paths,
            })
            .await
            .expect("update action item")
            .into_inner()
            .etag
    } else {
        app.incidents()
            .update_follow_up(ipb::UpdateFollowUpRequest {
                follow_up: Some(ipb::FollowUp {
                    name: item.name.clone(),
                    status: status as i32,
                    etag: item.etag.clone(),
                    ..Default::default()
                }),
                update_mask: paths,
            })
            .await
            .expect("update follow-up")
            .into_inner()
            .etag
    }
}

/// Every name matching `filter`, read in pages of `size`.
async fn read_in_pages(app: &App, filter: &str, size: i32) -> Vec<String> {
    names_in_pages_of_one(|token| async move {
        let page = page_as(app, "tracker", filter, size, token)
            .await
            .expect("page");
        assert!(page.work_items.len() <= size as usize);
        (
            page.work_items.into_iter().map(|i| i.name).collect(),
            page.next_page_token,
        )
    })
    .await
}

async fn one_lookup_across_both_kinds(app: &App) {
    org_fixture(app).await;
    create_service(app, "teams", "productivity").await;
    let risk = create_risk(app, new_risk("Legacy sign-in", "exchange-online")).await;
    let plan = create_action_plan(app, "admin", &risk.name, "Harden sign-in").await;
    let mfa = add_action_item(app, "admin", &plan, action_item("Enforce MFA", days(20)))
        .await
        .expect("item");
    let linked = pb::ActionItem {
        tracker: Some(pb::TrackerLink {
            system: "github".into(),
            external_key: "acme/owa#1".into(),
            url: "https://github.com/acme/owa/issues/1".into(),
            ..Default::default()
        }),
        ..action_item("Block legacy auth", days(40))
    };
    add_action_item(app, "admin", &plan, linked)
        .await
        .expect("linked item");
    let incident =
        reviewed_incident(app, "teams", &["Rotate keys", "Fix routing", "Audit rules"]).await;
    let late = app
        .incidents()
        .create_follow_up(ipb::CreateFollowUpRequest {
            parent: incident.name.clone(),
            follow_up: Some(ipb::FollowUp {
                title: "Retire the old gateway".into(),
                owner: "identity-team@example.com".into(),
                due_time: Some(Timestamp {
                    seconds: 1_700_000_000,
                    nanos: 0,
                }),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("follow-up")
        .into_inner();

    // Both kinds, in update_time then name order; the review's three share an update time.
    let all = list(app, "").await;
    assert_eq!(all.len(), 6, "{all:#?}");
    let keys: Vec<_> = all.iter().map(key).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "ordered by update_time, then name");
    let review_times: std::collections::BTreeSet<_> = all
        .iter()
        .filter(|i| i.owner == "soc@example.com")
        .map(|i| i.update_time.map(|t| (t.seconds, t.nanos)))
        .collect();
    assert_eq!(review_times.len(), 1, "one transaction, one update time");
    let first = all.iter().find(|i| i.name == mfa.name).expect("listed");
    assert_eq!(first.kind, gpb::WorkItemKind::ActionItem as i32);
    assert_eq!(first.parent, risk.name);
    assert_eq!(first.services, ["services/exchange-online"]);
    assert_eq!(first.etag, mfa.etag);
    assert_eq!(first.status, tv::WorkItemStatus::Open as i32);
    let hand = all.iter().find(|i| i.name == late.name).expect("listed");
    assert_eq!(hand.kind, gpb::WorkItemKind::FollowUp as i32);
    assert_eq!(hand.parent, incident.name);
    assert_eq!(hand.services, ["services/teams"]);
    assert!(hand.overdue);

    // Each filter.
    assert_eq!(list(app, "kind = FOLLOW_UP").await.len(), 4);
    assert_eq!(
        titles(&list(app, "kind = action_item").await),
        ["Block legacy auth", "Enforce MFA"]
    );
    assert_eq!(
        titles(&list(app, r#"service = "services/exchange-online""#).await),
        ["Block legacy auth", "Enforce MFA"]
    );
    assert_eq!(list(app, "service = teams").await.len(), 4);
    assert_eq!(
        titles(&list(app, "owner = \"identity-team@example.com\"").await),
        ["Retire the old gateway"]
    );
    assert_eq!(
        titles(&list(app, "overdue = true").await),
        ["Retire the old gateway"]
    );
    assert_eq!(list(app, "overdue = false").await.len(), 5);
    let tracked = list(
        app,
        r#"tracker_system = github AND external_key = "acme/owa#1""#,
    )
    .await;
    assert_eq!(titles(&tracked), ["Block legacy auth"]);
    let link = tracked[0].tracker.as_ref().expect("tracker");
    assert_eq!(link.url, "https://github.com/acme/owa/issues/1");
    assert_eq!(
        titles(&list(app, "kind = FOLLOW_UP AND owner = \"soc@example.com\"").await),
        ["Audit rules", "Fix routing", "Rotate keys"]
    );

    // Changed since: status and update_time; an update moves an item after everything else.
    let since = rfc3339(all.last().and_then(|i| i.update_time).expect("time"));
    let changed = format!("update_time > \"{since}\"");
    assert!(list(app, &changed).await.is_empty());
    change(app, first, tv::WorkItemStatus::Done).await;
    assert_eq!(titles(&list(app, &changed).await), ["Enforce MFA"]);
    assert_eq!(titles(&list(app, "status = DONE").await), ["Enforce MFA"]);
    let now = list(app, "").await;
    assert_eq!(now.last().map(|i| i.name.as_str()), Some(mfa.name.as_str()));

    // Pages of one and of two list every item once, ties included.
    let names: Vec<String> = now.iter().map(|i| i.name.clone()).collect();
    assert_eq!(read_in_pages(app, "", 1).await, names);
    assert_eq!(read_in_pages(app, "", 2).await, names);
    assert_eq!(
        read_in_pages(app, "owner = \"soc@example.com\"", 1)
            .await
            .len(),
        3
    );

    // Paging while items change: a changed item is listed again at the end, an unchanged one
    // is never skipped.
    let page = page_as(app, "tracker", "", 2, String::new())
        .await
        .expect("first page");
    let seen = &page.work_items[0];
    let unseen = &now[3];
    change(app, seen, tv::WorkItemStatus::InProgress).await;
    change(app, unseen, tv::WorkItemStatus::Blocked).await;
    let mut read: Vec<String> = page.work_items.iter().map(|i| i.name.clone()).collect();
    let mut token = page.next_page_token;
    while !token.is_empty() {
        let next = page_as(app, "tracker", "", 2, token).await.expect("page");
        read.extend(next.work_items.into_iter().map(|i| i.name));
        token = next.next_page_token;
    }
    let mut expected: Vec<String> = names
        .iter()
        .filter(|n| **n != unseen.name)
        .cloned()
        .collect();
    expected.push(seen.name.clone());
    expected.push(unseen.name.clone());
    assert_eq!(read, expected);

    // Who may look: readers of both kinds (the tracker among them). The risk register is open
    // to every reader; incidents are need-to-know, so a scoped principal sees no follow-up of
    // another service's incident.
    assert_eq!(list(app, "").await.len(), 6);
    let page = page_as(app, "scoped", "", 100, String::new())
        .await
        .expect("scoped");
    assert_eq!(
        titles(&page.work_items),
        ["Block legacy auth", "Enforce MFA"],
        "only the register's items"
    );
    for who in ["responder", "trust_team", "admin"] {
        let page = page_as(app, who, "", 100, String::new())
            .await
            .unwrap_or_else(|e| panic!("{who}: {e}"));
        assert_eq!(page.work_items.len(), 6, "{who}");
    }
    for who in ["viewer", "risk_owner", "erm_executive"] {
        let err = page_as(app, who, "", 100, String::new())
            .await
            .expect_err(who);
        assert_eq!(err.code(), Code::PermissionDenied, "{who}: {err:?}");
    }

    // Bad requests name their field.
    for (filter, order_by, token, field, says) in [
        ("title = x", "", "", "filter", "unknown field `title`"),
        ("kind = RISK", "", "", "filter", "ACTION_ITEM, FOLLOW_UP"),
        ("update_time > yesterday", "", "", "filter", "RFC 3339"),
        ("", "title", "", "order_by", "update_time"),
        ("", "", "nonsense", "page_token", "page token"),
    ] {
        let err = WorkItemServiceClient::new(app.channel_as("tracker"))
            .list_work_items(gpb::ListWorkItemsRequest {
                page_size: 10,
                page_token: token.into(),
                filter: filter.into(),
                order_by: order_by.into(),
            })
            .await
            .expect_err(field);
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert_eq!(violations(&err), [field], "{err:?}");
        assert_mentions(&err, says);
    }
    let first_page = page_as(app, "tracker", "kind = FOLLOW_UP", 1, String::new())
        .await
        .expect("page");
    let err = page_as(
        app,
        "tracker",
        "kind = ACTION_ITEM",
        1,
        first_page.next_page_token,
    )
    .await
    .expect_err("token of another filter");
    assert_eq!(violations(&err), ["page_token"]);
}

/// Names of the action items of every plan matching `filter`, in `order_by`, read in pages of
/// one.
async fn action_item_names(app: &App, filter: &str, order_by: &str) -> Vec<String> {
    names_in_pages_of_one(|token| async move {
        let page = app
            .risks_as("tracker")
            .list_action_items(pb::ListActionItemsRequest {
                parent: "risks/-/actionPlan".into(),
                page_size: 1,
                page_token: token,
                filter: filter.into(),
                order_by: order_by.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("{filter:?} {order_by:?}: {e}"))
            .into_inner();
        (
            page.action_items.into_iter().map(|i| i.name).collect(),
            page.next_page_token,
        )
    })
    .await
}

/// `ListActionItems` takes the filters of `ListFollowUps` (tracker link, times) and both take
/// `name` as a filter field and an order, which the gateway's merge relies on.
async fn both_services_filter_and_order_work_items_alike(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = embedded_gateway(&db, backend).await;
    org_fixture(&app).await;
    let risk = create_risk(&app, new_risk("Legacy sign-in", "exchange-online")).await;
    let plan = create_action_plan(&app, "admin", &risk.name, "Harden sign-in").await;
    let mut items = Vec::new();
    for (title, due, tracker) in [
        ("soon", days(5), None),
        ("later", days(50), Some(("jira", "SEC-1"))),
        ("last", days(100), None),
    ] {
        let item = pb::ActionItem {
            tracker: tracker.map(|(system, key)| pb::TrackerLink {
                system: system.into(),
                external_key: key.into(),
                ..Default::default()
            }),
            ..action_item(title, due)
        };
        items.push(
            add_action_item(&app, "admin", &plan, item)
                .await
                .expect("item"),
        );
    }
    let name = |n: usize| items[n].name.clone();
    let time = |t: Option<Timestamp>| rfc3339(t.expect("time"));

    for (filter, expected) in [
        ("tracker_system = jira".to_string(), vec![name(1)]),
        ("external_key = \"SEC-1\"".into(), vec![name(1)]),
        ("tracker_system = \"\"".into(), vec![name(0), name(2)]),
        (
            format!("due_time < \"{}\"", rfc3339(days(10))),
            vec![name(0)],
        ),
        (
            format!("create_time >= \"{}\"", time(items[1].create_time)),
            vec![name(1), name(2)],
        ),
        (
            format!("update_time > \"{}\"", time(items[0].update_time)),
            vec![name(1), name(2)],
        ),
    ] {
        assert_eq!(
            action_item_names(&app, &filter, "").await,
            expected,
            "{filter}"
        );
    }

    // Name order (one risk: the ids'), and `name` compared in it.
    let mut by_name: Vec<String> = items.iter().map(|i| i.name.clone()).collect();
    by_name.sort();
    assert_eq!(action_item_names(&app, "", "name").await, by_name);
    for (op, expected) in [
        ("=", &by_name[1..2]),
        ("!=", &[by_name[0].clone(), by_name[2].clone()][..]),
        (">", &by_name[2..]),
        (">=", &by_name[1..]),
        ("<", &by_name[..1]),
        ("<=", &by_name[..2]),
    ] {
        let filter = format!("name {op} \"{}\"", by_name[1]);
        assert_eq!(
            action_item_names(&app, &filter, "name").await,
            expected,
            "{filter}"
        );
    }
    let err = app
        .risks()
        .list_action_items(pb::ListActionItemsRequest {
            parent: "risks/-/actionPlan".into(),
            filter: "name > \"incidents/x\"".into(),
            ..Default::default()
        })
        .await
        .expect_err("not an action item's name");
    assert_eq!(violations(&err), ["filter"]);
    let in_update_order: Vec<String> = items.iter().map(|i| i.name.clone()).collect();
    assert_eq!(
        action_item_names(&app, "", "update_time, name").await,
        in_update_order
    );

    // Follow-ups written in one transaction: equal update times, then name order.
    reviewed_incident(&app, "exchange-online", &["Rotate keys", "Fix routing"]).await;
    let follow_ups = |filter: String, page_token: String| {
        let mut client = app.incidents_as("tracker");
        async move {
            client
                .list_follow_ups(ipb::ListFollowUpsRequest {
                    parent: "incidents/-".into(),
                    page_size: 1,
                    page_token,
                    filter,
                    order_by: "update_time, name".into(),
                })
                .await
                .expect("follow-ups")
                .into_inner()
        }
    };
    let first = follow_ups(String::new(), String::new()).await;
    let second = follow_ups(String::new(), first.next_page_token).await;
    let (a, b) = (&first.follow_ups[0], &second.follow_ups[0]);
    assert_eq!(a.update_time, b.update_time);
    assert!(a.name < b.name, "{} then {}", a.name, b.name);
    let after = follow_ups(format!("name > \"{}\"", a.name), String::new()).await;
    assert_eq!(after.follow_ups, std::slice::from_ref(b));
}
