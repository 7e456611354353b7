//! Response tasks of an incident: create, update, list (AIP-160 filters).

use assurance_proto::incident::v1 as pb;
use assurance_runtime::{
    ApiError,
    auth::Caller,
    filter, page,
    validate::{Violations, update_paths},
};
use sea_orm::Condition;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{IncidentApi, child_name, convert, incident_id, request_key, required};
use crate::{
    domain::{
        preparation::{OwnerTeam, TaskPhase},
        task::TaskStatus,
    },
    store::parse_etag,
};

const TASK_UPDATABLE: &[&str] = &["title", "description", "assignee", "status"];

/// The AIP-160 fields of `ListTasks`.
struct TaskFilter;

impl filter::FilterSchema for TaskFilter {
    fn compare(&self, field: &str, op: filter::Op, value: &str) -> Result<Condition, String> {
        use crate::store::entities::task::Column as C;
        use filter::{compare, enum_value, equality_only};
        equality_only(field, op)?;
        let bad = |allowed: &str| format!("`{value}` is not a valid {field}; one of {allowed}");
        match field {
            "phase" => {
                let v = enum_value(value, "PHASE_", |s| {
                    pb::Phase::from_str_name(s).map(|e| e as i32)
                })
                .ok_or_else(|| {
                    bad("DETECTION_ANALYSIS, CONTAINMENT, ERADICATION, RECOVERY, POST_INCIDENT")
                })?;
                Ok(compare(C::Phase, op, v.into()))
            }
            "owner_team" => {
                let v = enum_value(value, "OWNER_TEAM_", |s| {
                    pb::OwnerTeam::from_str_name(s).map(|e| e as i32)
                })
                .ok_or_else(|| bad("SECURITY_TEAM, SERVICE_TEAM"))?;
                Ok(compare(C::OwnerTeam, op, v.into()))
            }
            "status" => {
                let v = enum_value(value, "TASK_STATUS_", |s| {
                    pb::TaskStatus::from_str_name(s).map(|e| e as i32)
                })
                .ok_or_else(|| bad("OPEN, IN_PROGRESS, BLOCKED, DONE, WONT_DO"))?;
                Ok(compare(C::Status, op, v.into()))
            }
            "assignee" => Ok(compare(C::Assignee, op, value.into())),
            _ => Err(format!(
                "unknown field `{field}`; filterable: phase, owner_team, status, assignee"
            )),
        }
    }
}

fn check_task_field(v: &mut Violations, t: &pb::Task, field: &str) {
    match field {
        "phase" => {
            required::<TaskPhase>(v, "task.phase", t.phase);
        }
        "owner_team" => {
            required::<OwnerTeam>(v, "task.owner_team", t.owner_team);
        }
        "title" => v.line("task.title", &t.title, true, 200),
        "description" => v.paragraph("task.description", &t.description, false, 4000),
        "assignee" => v.principal("task.assignee", &t.assignee, false),
        "status" => {
            required::<TaskStatus>(v, "task.status", t.status);
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
        let t = v.require("task", req.task.as_ref())?;
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
        let key = request_key("CreateTask", req, |r| &mut r.request_id);
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
        let t = v.require("task", req.task)?;
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
            check_task_field(&mut v, &t, p);
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
        let req = request.get_ref();
        let mut v = Violations::new();
        let id = incident_id(&mut v, "parent", &req.parent);
        let size = v.absorb("page_size", page::page_size("page_size", req.page_size));
        let parsed = v
            .absorb("filter", filter::parse("filter", &req.filter))
            .flatten();
        v.finish()?;
        let mut condition = Condition::all();
        if let Some(f) = &parsed {
            condition = condition.add(filter::compile("filter", f, &TaskFilter)?);
        }
        let fp = page::query_fingerprint(&["tasks", &req.parent, &req.filter]);
        let malformed =
            || ApiError::invalid("page_token", "is not a page token issued by this service");
        let after = match page::decode("page_token", &req.page_token, &fp, 2)? {
            None => None,
            Some(keys) => match (keys.first(), keys.get(1)) {
                (Some(page::Key::Int(phase)), Some(page::Key::Text(tid))) => Some((
                    i32::try_from(*phase).map_err(|_| malformed())?,
                    Uuid::parse_str(tid).map_err(|_| malformed())?,
                )),
                _ => return Err(malformed().into()),
            },
        };
        let size = size.unwrap_or(page::DEFAULT_PAGE_SIZE);
        let mut rows = self
            .store
            .tasks(id.unwrap_or_default(), condition, after, size + 1)
            .await?;
        let next_page_token = page::finish(&mut rows, size, &fp, |t| {
            vec![
                page::Key::Int(i64::from(t.phase)),
                page::Key::Text(t.id.to_string()),
            ]
        });
        Ok(Response::new(pb::ListTasksResponse {
            tasks: rows.iter().map(convert::task).collect(),
            next_page_token,
        }))
    }
}
