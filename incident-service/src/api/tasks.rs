//! Response tasks of an incident: create, update, list (AIP-160 filters).

use super::pb;
use assurance_runtime::idempotency::RequestKey;
use assurance_runtime::list::{FilterContext, ListQuery, ListRequest};
use assurance_runtime::{
    auth::Caller,
    validate::{Violations, update_paths},
};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{IncidentApi, child_name, convert, incident_id};
use crate::{
    domain::{
        preparation::{OwnerTeam, TaskPhase},
        task::TaskStatus,
    },
    store::{TASK_FILTER, TASK_SORTING, parse_etag, task_keys},
};

const TASK_UPDATABLE: &[&str] = &["title", "description", "assignee", "status"];

fn check_task_field(v: &mut Violations, t: &mut pb::Task, field: &str) {
    match field {
        "phase" => {
            v.enumeration::<TaskPhase>("task.phase", t.phase);
        }
        "owner_team" => {
            v.enumeration::<OwnerTeam>("task.owner_team", t.owner_team);
        }
        "title" => v.line("task.title", &t.title, true, 200),
        "description" => v.paragraph("task.description", &t.description, false, 4000),
        "assignee" => v.principal("task.assignee", &mut t.assignee, false),
        "status" => {
            v.enumeration::<TaskStatus>("task.status", t.status);
        }
        _ => {}
    }
}

impl IncidentApi {
    pub(super) async fn tasks_create(
        &self,
        request: Request<pb::CreateTaskRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let id = incident_id(&mut v, "parent", &req.parent);
        v.request_id("request_id", &req.request_id);
        let t = &mut v.message("task", req.task.clone());
        for field in ["phase", "owner_team", "title", "description", "assignee"] {
            check_task_field(&mut v, t, field);
        }
        if t.status != 0 {
            check_task_field(&mut v, t, "status");
        }
        v.finish()?;
        let model = crate::store::entities::task::Model {
            id: Uuid::now_v7(),
            incident_id: id.unwrap_or_default(),
            phase: t.phase,
            owner_team: t.owner_team,
            title: t.title.clone(),
            description: t.description.clone(),
            assignee: t.assignee.clone(),
            status: if t.status == 0 {
                TaskStatus::Open as i32
            } else {
                t.status
            },
            from_template: false,
            version: 0,
            create_time: 0,
            update_time: 0,
        };
        let key = RequestKey::for_request("CreateTask", &caller, req, |r| &mut r.request_id);
        let created = self.store.create_task(model, &caller, key).await?;
        Ok(Response::new(convert::task(&created)))
    }

    pub(super) async fn tasks_update(
        &self,
        request: Request<pb::UpdateTaskRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let mut t = v.message("task", req.task);
        let ids = child_name(&mut v, "task.name", "tasks", &t.name);
        let paths = update_paths(req.update_mask.as_ref(), TASK_UPDATABLE, |p| match p {
            "title" => !t.title.is_empty(),
            "description" => !t.description.is_empty(),
            "assignee" => !t.assignee.is_empty(),
            "status" => t.status != 0,
            _ => false,
        })?;
        if paths.is_empty() {
            v.add("update_mask", "names no field to update");
        }
        for p in &paths {
            check_task_field(&mut v, &mut t, p);
        }
        let expected = v
            .absorb("task.etag", parse_etag("task.etag", &t.etag))
            .flatten();
        v.finish()?;
        let (incident, id) = ids.unwrap_or_default();
        let updated = self
            .store
            .update_task(incident, id, expected, &caller, |m| {
                for p in &paths {
                    match *p {
                        "title" => m.title = t.title.clone(),
                        "description" => m.description = t.description.clone(),
                        "assignee" => m.assignee = t.assignee.clone(),
                        "status" => m.status = t.status,
                        _ => {}
                    }
                }
            })
            .await?;
        Ok(Response::new(convert::task(&updated)))
    }

    pub(super) async fn tasks_list(
        &self,
        request: Request<pb::ListTasksRequest>,
    ) -> Result<Response<pb::ListTasksResponse>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let id = incident_id(&mut v, "parent", &req.parent);
        let list = ListQuery::parse(
            &mut v,
            &ListRequest {
                scope: &["tasks", &req.parent],
                page_size: req.page_size,
                page_token: &req.page_token,
                filter: &req.filter,
                order_by: &req.order_by,
            },
            Some(&TASK_FILTER.at(FilterContext::default())),
            &TASK_SORTING,
        );
        v.finish()?;
        let id = id.unwrap_or_default();
        self.visible(&caller, id).await?;
        let mut rows = self.store.tasks(id, &list).await?;
        let next_page_token = list.next_page(&mut rows, |t| task_keys(&list, t));
        Ok(Response::new(pb::ListTasksResponse {
            tasks: rows.iter().map(convert::task).collect(),
            next_page_token,
        }))
    }
}
