//! Response tasks: seeded from the template on declaration, worked with etags, added by
//! hand, filtered and paged.

use assurance_proto::incident::v1 as pb;
use assurance_proto::r#type::v1 as tpb;
use tonic::Code;

use super::*;

crate::on_both_backends!(
    declaration_seeds_open_template_tasks_in_phase_order,
    a_task_is_worked_once_and_a_stale_etag_is_refused,
    own_tasks_join_the_seeded_ones_across_pages,
    tasks_list_in_creation_order_or_the_order_asked_for,
);

/// How many tasks the built-in response template seeds.
async fn seeded_task_count(app: &App) -> usize {
    let templates = app
        .incidents()
        .list_response_templates(pb::ListResponseTemplatesRequest::default())
        .await
        .expect("templates")
        .into_inner()
        .templates;
    templates.first().expect("a response template").tasks.len()
}

async fn list_tasks(
    app: &App,
    incident: &str,
    filter: &str,
    page_size: i32,
    page_token: String,
) -> pb::ListTasksResponse {
    app.incidents()
        .list_tasks(pb::ListTasksRequest {
            parent: incident.into(),
            filter: filter.into(),
            page_size,
            page_token,
            order_by: String::new(),
        })
        .await
        .expect("tasks")
        .into_inner()
}

/// The service team's containment tasks of `incident`.
async fn service_containment(app: &App, incident: &str) -> Vec<pb::Task> {
    list_tasks(
        app,
        incident,
        "owner_team = SERVICE_TEAM AND phase = CONTAINMENT",
        50,
        String::new(),
    )
    .await
    .tasks
}

async fn timeline(app: &App, incident: &str) -> Vec<pb::TimelineEvent> {
    app.incidents()
        .list_timeline_events(pb::ListTimelineEventsRequest {
            parent: incident.into(),
            ..Default::default()
        })
        .await
        .expect("timeline")
        .into_inner()
        .timeline_events
}

async fn declaration_seeds_open_template_tasks_in_phase_order(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;
    let seeded = seeded_task_count(&app).await;
    let declared = declare(&app, new_incident("Malware on a build agent")).await;
    let all = list_tasks(&app, &declared.name, "", 1000, String::new())
        .await
        .tasks;
    assert_eq!(all.len(), seeded);
    assert!(
        all.iter()
            .all(|t| t.from_template && t.status == tpb::WorkItemStatus::Open as i32)
    );
    // The template seeds them phase by phase, so creation order is phase order here.
    let phases: Vec<i32> = all.iter().map(|t| t.phase).collect();
    let mut sorted = phases.clone();
    sorted.sort();
    assert_eq!(phases, sorted, "seeded in phase order");
    let service_containment = service_containment(&app, &declared.name).await;
    let titles: Vec<&str> = service_containment
        .iter()
        .map(|t| t.title.as_str())
        .collect();
    assert_eq!(
        titles,
        ["Name the security incident owner", "Execute containment"]
    );
    let timeline = timeline(&app, &declared.name).await;
    assert!(
        timeline[0]
            .summary
            .contains(&format!("{seeded} tasks from the response template"))
    );
}

async fn a_task_is_worked_once_and_a_stale_etag_is_refused(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;
    let mut client = app.incidents();
    let declared = declare(&app, new_incident("Malware on a build agent")).await;
    let task = service_containment(&app, &declared.name)
        .await
        .get(1)
        .cloned()
        .expect("the service team's second containment task");
    let done = client
        .update_task(pb::UpdateTaskRequest {
            task: Some(pb::Task {
                name: task.name.clone(),
                status: tpb::WorkItemStatus::Done as i32,
                assignee: "sam@example.com".into(),
                etag: task.etag.clone(),
                ..Default::default()
            }),
            update_mask: None,
        })
        .await
        .expect("done")
        .into_inner();
    assert_eq!(
        (done.status, done.assignee.as_str()),
        (tpb::WorkItemStatus::Done as i32, "sam@example.com")
    );
    let err = client
        .update_task(pb::UpdateTaskRequest {
            task: Some(pb::Task {
                name: task.name.clone(),
                status: 2,
                etag: task.etag.clone(),
                ..Default::default()
            }),
            update_mask: None,
        })
        .await
        .expect_err("stale");
    assert_eq!(err.code(), Code::Aborted);
    let done_by_service = list_tasks(
        &app,
        &declared.name,
        "owner_team = SERVICE_TEAM AND status = DONE",
        50,
        String::new(),
    )
    .await
    .tasks;
    assert_eq!(done_by_service.len(), 1);
    let timeline = timeline(&app, &declared.name).await;
    assert!(
        timeline
            .iter()
            .any(|e| e.summary == "task Execute containment: OPEN → DONE")
    );
}

async fn own_tasks_join_the_seeded_ones_across_pages(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;
    let seeded = seeded_task_count(&app).await;
    let declared = declare(&app, new_incident("Malware on a build agent")).await;
    // A task of one's own, then paging through them all.
    let extra = app
        .incidents()
        .create_task(pb::CreateTaskRequest {
            parent: declared.name.clone(),
            task: Some(pb::Task {
                phase: pb::Phase::Recovery as i32,
                owner_team: pb::OwnerTeam::ServiceTeam as i32,
                title: "Rebuild the agent image".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("create")
        .into_inner();
    assert!(!extra.from_template);
    let mut paged = Vec::new();
    let mut token = String::new();
    loop {
        let page = list_tasks(&app, &declared.name, "", 10, token).await;
        paged.extend(page.tasks.into_iter().map(|t| t.name));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(paged.len(), seeded + 1);
    assert!(paged.contains(&extra.name));
    let err = app
        .incidents()
        .list_tasks(pb::ListTasksRequest {
            parent: declared.name.clone(),
            filter: "owner_team = JANITORS".into(),
            ..Default::default()
        })
        .await
        .expect_err("bad filter");
    assert_eq!(violations(&err), ["filter"]);
}

/// The names of `incident`'s tasks in `order_by`, paged `page_size` at a time.
async fn ordered(app: &App, incident: &str, order_by: &str, page_size: i32) -> Vec<String> {
    names_in_pages_of_one(|page_token| {
        let mut c = app.incidents();
        let request = pb::ListTasksRequest {
            parent: incident.into(),
            order_by: order_by.into(),
            page_size,
            page_token,
            ..Default::default()
        };
        async move {
            let page = c
                .list_tasks(request)
                .await
                .unwrap_or_else(|e| panic!("order_by {order_by}: {e}"))
                .into_inner();
            assert!(page.tasks.len() <= page_size as usize);
            (
                page.tasks.into_iter().map(|t| t.name).collect(),
                page.next_page_token,
            )
        }
    })
    .await
}

async fn tasks_list_in_creation_order_or_the_order_asked_for(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;
    let declared = declare(&app, new_incident("Malware on a build agent")).await;
    // A detection-phase task made after the seeded ones of every phase.
    let late = app
        .incidents()
        .create_task(pb::CreateTaskRequest {
            parent: declared.name.clone(),
            task: Some(pb::Task {
                phase: pb::Phase::DetectionAnalysis as i32,
                owner_team: pb::OwnerTeam::SecurityTeam as i32,
                title: "Check the other build agents".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("create")
        .into_inner();
    let all = list_tasks(&app, &declared.name, "", 1000, String::new())
        .await
        .tasks;
    assert!(
        all.iter()
            .any(|t| t.phase > pb::Phase::DetectionAnalysis as i32),
        "the template seeds later phases too"
    );
    // Default: creation order, so the late task comes last.
    let created: Vec<String> = all.iter().map(|t| t.name.clone()).collect();
    assert_eq!(created.last(), Some(&late.name));
    let mut ids: Vec<&str> = created
        .iter()
        .filter_map(|n| n.rsplit('/').next())
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        created
            .iter()
            .filter_map(|n| n.rsplit('/').next())
            .collect::<Vec<_>>(),
        "ascending id"
    );
    // `phase`: grouped by phase, creation order within one.
    let phase_of = |name: &str| {
        all.iter()
            .find(|t| t.name == name)
            .map(|t| t.phase)
            .unwrap_or_default()
    };
    let mut by_phase = created.clone();
    by_phase.sort_by_key(|n| phase_of(n));
    assert_ne!(by_phase, created, "the late task moves up to its phase");
    let mut by_phase_desc = by_phase.clone();
    by_phase_desc.reverse();
    // `status`: the one done task last (stable: creation order within a status).
    let done = all.first().expect("a task");
    app.incidents()
        .update_task(pb::UpdateTaskRequest {
            task: Some(pb::Task {
                name: done.name.clone(),
                status: tpb::WorkItemStatus::Done as i32,
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["status".into()],
            }),
        })
        .await
        .expect("done");
    let mut by_status: Vec<String> = created[1..].to_vec();
    by_status.push(done.name.clone());
    let mut by_update_desc = vec![done.name.clone()];
    by_update_desc.extend(created[1..].iter().rev().cloned());
    for (order_by, expected) in [
        ("", &created),
        ("phase", &by_phase),
        ("phase asc", &by_phase),
        ("phase desc", &by_phase_desc),
        ("status", &by_status),
        ("status, phase", &{
            let mut v = by_phase.clone();
            v.retain(|n| n != &done.name);
            v.push(done.name.clone());
            v
        }),
        ("update_time desc", &by_update_desc),
    ] {
        for size in [1, 2, 1000] {
            assert_eq!(
                &ordered(&app, &declared.name, order_by, size).await,
                expected,
                "{order_by}, pages of {size}"
            );
        }
    }
    for bad in ["title", "phase sideways", "phase, status, create_time"] {
        let err = app
            .incidents()
            .list_tasks(pb::ListTasksRequest {
                parent: declared.name.clone(),
                order_by: bad.into(),
                ..Default::default()
            })
            .await
            .expect_err(bad);
        assert_eq!(err.code(), Code::InvalidArgument, "{bad}");
        assert_eq!(violations(&err), ["order_by"], "{bad}");
    }
}
