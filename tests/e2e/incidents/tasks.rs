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
        .events
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
    let phases: Vec<i32> = all.iter().map(|t| t.phase).collect();
    let mut sorted = phases.clone();
    sorted.sort();
    assert_eq!(phases, sorted, "in phase order");
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
