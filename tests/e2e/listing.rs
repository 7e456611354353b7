//! ListRisks: AIP-160 filters, ordering, keyset pagination and soft-deleted risks.

use std::collections::HashSet;

use assurance_proto::risk::v1 as pb;
use assurance_proto::r#type::v1 as tv;
use risk_service::domain::scoring::Methodology;
use tonic::Code;

use crate::helpers::*;

crate::on_both_backends!(
    filters_select_the_right_risks,
    pages_cover_every_risk_once_in_order,
    bad_list_requests,
    governance_and_org_lists_filter_and_order,
);

async fn list(app: &App, filter: &str) -> Vec<pb::Risk> {
    list_with(app, filter, "", false).await
}

/// Every page of a query.
async fn list_with(app: &App, filter: &str, order_by: &str, show_deleted: bool) -> Vec<pb::Risk> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let page = app
            .risks()
            .list_risks(pb::ListRisksRequest {
                page_size: 7,
                page_token: token.clone(),
                filter: filter.into(),
                order_by: order_by.into(),
                show_deleted,
            })
            .await
            .unwrap_or_else(|e| panic!("list `{filter}` `{order_by}`: {e}"))
            .into_inner();
        assert!(page.risks.len() <= 7);
        out.extend(page.risks);
        if page.next_page_token.is_empty() {
            return out;
        }
        token = page.next_page_token;
    }
}

/// Two business units, three services, 24 risks with varied assessments; 2 closed.
async fn seed(app: &App) -> Vec<pb::Risk> {
    create_bu(app, "productivity").await;
    create_bu(app, "cloud").await;
    create_service(app, "exchange-online", "productivity").await;
    create_service(app, "sharepoint", "productivity").await;
    create_service(app, "compute", "cloud").await;
    let services = ["exchange-online", "sharepoint", "compute"];
    let mut risks = Vec::new();
    for i in 0..24 {
        let mut r = new_risk(&format!("Risk {i:02}"), services[i % 3]);
        r.owner = if i % 2 == 0 {
            "alice@example.com"
        } else {
            "bob@example.com"
        }
        .into();
        if i % 4 == 0 {
            r.identification_source = pb::IdentificationSource::AuditFinding as i32;
        }
        r.source_reference = format!("scanner:finding/{}", i % 5);
        r.labels
            .insert("env".into(), if i % 3 == 0 { "prod" } else { "dev" }.into());
        let created = create_risk(app, r).await;
        // Leave every sixth risk unassessed; vary the rest.
        let current = if i % 6 == 5 {
            created
        } else {
            let (imp, lik, def) = (
                (i % 5 + 1) as i32,
                ((i / 5) % 5 + 1) as i32,
                (i % 3 + 1) as i32,
            );
            assess(app, &created.name, imp, lik, def).await
        };
        risks.push(current);
    }
    for r in &risks[22..] {
        app.risks()
            .delete_risk(pb::DeleteRiskRequest {
                name: r.name.clone(),
                reason: "merged".into(),
                etag: String::new(),
            })
            .await
            .expect("close");
    }
    risks
}

fn names(risks: &[pb::Risk]) -> HashSet<String> {
    risks.iter().map(|r| r.name.clone()).collect()
}

fn expect(all: &[pb::Risk], keep: impl Fn(usize, &pb::Risk) -> bool) -> HashSet<String> {
    all.iter()
        .enumerate()
        .filter(|(i, r)| *i < 22 && keep(*i, r))
        .map(|(_, r)| r.name.clone())
        .collect()
}

fn severity(r: &pb::Risk) -> i32 {
    r.latest_assessment.as_ref().map_or(0, |a| a.severity)
}

async fn filters_select_the_right_risks(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = risk_service(&db, Methodology::Standard).await;
    let all = seed(&app).await;

    assert_eq!(
        names(&list(&app, "").await),
        expect(&all, |_, _| true),
        "closed risks hidden by default"
    );
    assert_eq!(
        names(&list(&app, r#"service = "services/sharepoint""#).await),
        expect(&all, |i, _| i % 3 == 1)
    );
    assert_eq!(
        names(&list(&app, "business_unit = businessUnits/cloud").await),
        expect(&all, |i, _| i % 3 == 2)
    );
    assert_eq!(
        names(&list(&app, "owner = alice@example.com").await),
        expect(&all, |i, _| i % 2 == 0)
    );
    assert_eq!(
        names(&list(&app, "source = AUDIT_FINDING").await),
        expect(&all, |i, _| i % 4 == 0)
    );
    assert_eq!(
        names(
            &list(
                &app,
                "identification_source = IDENTIFICATION_SOURCE_VULNERABILITY_SCAN"
            )
            .await
        ),
        expect(&all, |i, _| i % 4 != 0)
    );
    assert_eq!(
        names(&list(&app, r#"source_reference = "scanner:finding/3""#).await),
        expect(&all, |i, _| i % 5 == 3),
        "a scanner finds the risks it filed for a finding"
    );
    assert_eq!(
        names(&list(&app, r#"source_reference != "scanner:finding/3""#).await),
        expect(&all, |i, _| i % 5 != 3)
    );
    assert_eq!(
        names(&list(&app, "status = IDENTIFIED").await),
        expect(&all, |i, _| i % 6 == 5)
    );
    assert_eq!(
        names(&list(&app, "severity >= HIGH").await),
        expect(&all, |_, r| severity(r) >= tv::Severity::High as i32)
    );
    assert_eq!(
        names(&list(&app, "severity = LOW OR severity = MEDIUM").await),
        expect(&all, |_, r| matches!(severity(r), 1 | 2))
    );
    assert_eq!(
        names(&list(&app, "strategy = OPERATE").await),
        expect(&all, |_, r| r
            .latest_assessment
            .as_ref()
            .is_some_and(|a| a.strategy == 2))
    );
    assert_eq!(
        names(&list(&app, "score > 20 AND owner = bob@example.com").await),
        expect(&all, |i, r| i % 2 == 1
            && r.latest_assessment.as_ref().is_some_and(|a| a.score > 20))
    );
    assert_eq!(
        names(&list(&app, "labels.env = prod").await),
        expect(&all, |i, _| i % 3 == 0)
    );
    assert_eq!(
        names(&list(&app, "NOT labels.env = prod AND service = compute").await),
        expect(&all, |i, _| i % 3 == 2)
    );
    let cutoff = all[10].create_time.expect("create time");
    let rfc3339 = format!(
        "{}",
        prost_types::Timestamp {
            seconds: cutoff.seconds,
            nanos: cutoff.nanos
        }
    );
    assert_eq!(
        names(&list(&app, &format!("create_time >= \"{rfc3339}\"")).await),
        expect(&all, |i, _| i >= 10)
    );

    // Closed risks: by status filter or show_deleted.
    let closed: HashSet<String> = all[22..].iter().map(|r| r.name.clone()).collect();
    assert_eq!(names(&list(&app, "status = CLOSED").await), closed);
    assert_eq!(list_with(&app, "", "", true).await.len(), 24);
}

async fn pages_cover_every_risk_once_in_order(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = risk_service(&db, Methodology::Standard).await;
    let all = seed(&app).await;

    // Default order: creation.
    let default: Vec<String> = list(&app, "").await.into_iter().map(|r| r.name).collect();
    let created: Vec<String> = all[..22].iter().map(|r| r.name.clone()).collect();
    assert_eq!(default, created);

    // Score descending then title: a total order, paged in sevens across ties.
    let by_score = list_with(&app, "", "score desc, title", false).await;
    assert_eq!(by_score.len(), 22);
    let keys: Vec<(i32, String)> = by_score
        .iter()
        .map(|r| {
            (
                r.latest_assessment.as_ref().map_or(0, |a| a.score),
                r.title.clone(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    assert_eq!(keys, sorted);
    assert_eq!(names(&by_score).len(), 22, "no risk appears twice");

    let newest_first: Vec<String> = list_with(&app, "", "create_time desc", false)
        .await
        .into_iter()
        .map(|r| r.name)
        .collect();
    let mut reversed = created.clone();
    reversed.reverse();
    assert_eq!(newest_first, reversed);

    // A page size above the maximum is lowered, not refused.
    let big = app
        .risks()
        .list_risks(pb::ListRisksRequest {
            page_size: 5000,
            ..Default::default()
        })
        .await
        .expect("large page")
        .into_inner();
    assert_eq!(big.risks.len(), 22);
    assert!(big.next_page_token.is_empty());
}

async fn bad_list_requests(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = risk_service(&db, Methodology::Standard).await;
    seed(&app).await;
    let mut client = app.risks();

    let cases = [
        (
            pb::ListRisksRequest {
                page_size: -1,
                ..Default::default()
            },
            "page_size",
        ),
        (
            pb::ListRisksRequest {
                filter: "status = ".into(),
                ..Default::default()
            },
            "filter",
        ),
        (
            pb::ListRisksRequest {
                filter: "colour = red".into(),
                ..Default::default()
            },
            "filter",
        ),
        (
            pb::ListRisksRequest {
                filter: "severity = SEVERE".into(),
                ..Default::default()
            },
            "filter",
        ),
        (
            pb::ListRisksRequest {
                filter: "score > high".into(),
                ..Default::default()
            },
            "filter",
        ),
        (
            pb::ListRisksRequest {
                filter: "owner > a".into(),
                ..Default::default()
            },
            "filter",
        ),
        (
            pb::ListRisksRequest {
                filter: "create_time > yesterday".into(),
                ..Default::default()
            },
            "filter",
        ),
        (
            pb::ListRisksRequest {
                order_by: "owner".into(),
                ..Default::default()
            },
            "order_by",
        ),
        (
            pb::ListRisksRequest {
                order_by: "score sideways".into(),
                ..Default::default()
            },
            "order_by",
        ),
        (
            pb::ListRisksRequest {
                page_token: "bm90IGEgdG9rZW4".into(),
                ..Default::default()
            },
            "page_token",
        ),
    ];
    for (request, field) in cases {
        let err = client
            .list_risks(request.clone())
            .await
            .expect_err("invalid list request");
        assert_eq!(err.code(), Code::InvalidArgument, "{request:?}");
        assert_eq!(violations(&err), [field], "{request:?}");
    }

    // A token is bound to its query.
    let first = client
        .list_risks(pb::ListRisksRequest {
            page_size: 5,
            filter: "owner = alice@example.com".into(),
            ..Default::default()
        })
        .await
        .expect("first page")
        .into_inner();
    assert!(!first.next_page_token.is_empty());
    let err = client
        .list_risks(pb::ListRisksRequest {
            page_size: 5,
            filter: "owner = bob@example.com".into(),
            page_token: first.next_page_token,
            ..Default::default()
        })
        .await
        .expect_err("token from another query");
    assert_eq!(violations(&err), ["page_token"]);
}

/// The growing lists of a risk's governance and of the org registry take AIP-160 filters and
/// `order_by`; without one they are in ascending order of their names (creation order for
/// UUIDv7 ids, alphabetical for slugs); bad filters and orders name their field.
async fn governance_and_org_lists_filter_and_order(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = embedded_gateway(&db, backend).await;
    org_fixture(&app).await;
    create_bu(&app, "cloud").await;
    create_service(&app, "azure-compute", "cloud").await;
    let risk = identify_risk_as(
        &app,
        "risk_owner",
        new_risk("Stale admins", "exchange-online"),
    )
    .await
    .expect("identify");
    for (i, l, d) in [(1, 1, 1), (4, 4, 4), (2, 2, 2)] {
        assess(&app, &risk.name, i, l, d).await;
    }
    let mut risks = app.risks_as("viewer");

    // Assessments: oldest first by default; filter and order.
    let all = risks
        .list_assessments(pb::ListAssessmentsRequest {
            parent: risk.name.clone(),
            ..Default::default()
        })
        .await
        .expect("assessments")
        .into_inner()
        .assessments;
    let impacts: Vec<i32> = all.iter().map(|a| a.impact).collect();
    assert_eq!(impacts, [1, 4, 2]);
    let high = risks
        .list_assessments(pb::ListAssessmentsRequest {
            parent: risk.name.clone(),
            filter: "severity >= MEDIUM".into(),
            order_by: "score desc".into(),
            ..Default::default()
        })
        .await
        .expect("filtered")
        .into_inner()
        .assessments;
    assert_eq!(high.first().map(|a| a.score), Some(64));
    assert!(!high.iter().any(|a| a.impact == 1), "{high:?}");
    assert!(
        high.iter()
            .all(|a| a.severity >= tv::Severity::Medium as i32)
    );

    // Responses and decisions.
    let proposed = propose_response(&app, "risk_owner", &risk.name, mitigation("Recertify"))
        .await
        .expect("propose");
    let pending = risks
        .list_risk_responses(pb::ListRiskResponsesRequest {
            parent: risk.name.clone(),
            filter: "state = PENDING".into(),
            ..Default::default()
        })
        .await
        .expect("responses")
        .into_inner()
        .responses;
    assert_eq!(pending, vec![proposed.clone()]);
    let none = risks
        .list_risk_responses(pb::ListRiskResponsesRequest {
            parent: risk.name.clone(),
            filter: "state = APPROVED".into(),
            ..Default::default()
        })
        .await
        .expect("responses")
        .into_inner()
        .responses;
    assert!(none.is_empty());
    let proposals = risks
        .list_decisions(pb::ListDecisionsRequest {
            parent: "risks/-".into(),
            filter: "kind = RESPONSE_PROPOSED".into(),
            ..Default::default()
        })
        .await
        .expect("decisions")
        .into_inner()
        .decisions;
    assert_eq!(proposals.len(), 1);
    assert_eq!(proposals[0].response, proposed.name);
    // A sync job picks up the decisions made since its last run.
    let at = proposals[0].decide_time.expect("decide time");
    let since = |op: &str| {
        format!(
            "decide_time {op} \"{}\"",
            prost_types::Timestamp {
                seconds: at.seconds,
                nanos: at.nanos
            }
        )
    };
    for (op, expected) in [(">=", 1), (">", 0)] {
        let page = risks
            .list_decisions(pb::ListDecisionsRequest {
                parent: "risks/-".into(),
                filter: format!("{} AND kind = RESPONSE_PROPOSED", since(op)),
                order_by: "decide_time".into(),
                ..Default::default()
            })
            .await
            .expect("decisions since")
            .into_inner()
            .decisions;
        assert_eq!(page.len(), expected, "decisions with {}", since(op));
    }

    // Action items by due time. (The risk was assessed higher before: its highest severity
    // since no response was approved sets the level.)
    approve_response(&app, "trust_team", &proposed.name)
        .await
        .expect("approve");
    let plan = create_action_plan(&app, "risk_owner", &risk.name, "Recertify").await;
    for (title, due) in [
        ("later", days(30)),
        ("sooner", days(5)),
        ("latest", days(60)),
    ] {
        add_action_item(&app, "risk_owner", &plan, action_item(title, due))
            .await
            .expect("item");
    }
    let titles =
        |items: Vec<pb::ActionItem>| items.into_iter().map(|i| i.title).collect::<Vec<_>>();
    let by_creation = risks
        .list_action_items(pb::ListActionItemsRequest {
            parent: plan.name.clone(),
            ..Default::default()
        })
        .await
        .expect("items")
        .into_inner()
        .action_items;
    assert_eq!(titles(by_creation), ["later", "sooner", "latest"]);
    let mut by_due = Vec::new();
    let mut token = String::new();
    loop {
        let page = risks
            .list_action_items(pb::ListActionItemsRequest {
                parent: plan.name.clone(),
                order_by: "due_time desc".into(),
                page_size: 1,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .expect("items by due time")
            .into_inner();
        by_due.extend(page.action_items);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(titles(by_due), ["latest", "later", "sooner"]);

    // Business units and services.
    let mut org = app.org_as("viewer");
    let services = org
        .list_services(pb::ListServicesRequest {
            filter: "business_unit = cloud".into(),
            ..Default::default()
        })
        .await
        .expect("services")
        .into_inner()
        .services;
    let names: Vec<String> = services.into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["services/azure-compute"]);
    let units = org
        .list_business_units(pb::ListBusinessUnitsRequest {
            order_by: "display_name desc".into(),
            ..Default::default()
        })
        .await
        .expect("units")
        .into_inner()
        .business_units;
    let names: Vec<String> = units.into_iter().map(|b| b.name).collect();
    assert_eq!(names, ["businessUnits/productivity", "businessUnits/cloud"]);

    // Bad filters and orders name their field.
    let err = risks
        .list_decisions(pb::ListDecisionsRequest {
            parent: risk.name.clone(),
            filter: "colour = red".into(),
            order_by: "actor".into(),
            ..Default::default()
        })
        .await
        .expect_err("bad");
    assert_eq!(violations(&err), ["filter", "order_by"]);
    let err = org
        .list_services(pb::ListServicesRequest {
            order_by: "owner".into(),
            ..Default::default()
        })
        .await
        .expect_err("bad order");
    assert_eq!(violations(&err), ["order_by"]);
}
