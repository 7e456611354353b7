//! `assurance.risk.v1.ControlService`: the controls catalogue and risk ↔ control links.

use assurance_proto::risk::v1::{self as pb, control_service_server::ControlService};
use assurance_runtime::list::{FilterContext, ListQuery, ListRequest, Sorting, page_by_id};
use assurance_runtime::page::Key;
use assurance_runtime::{
    auth::Caller,
    time::{Clock, from_timestamp, to_timestamp},
    validate::{Violations, is_slug, name_id, slug_name, update_paths},
};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{convert, risk::risk_id};
use crate::{
    domain::controls::{
        CONTROL_FIELDS, ControlDraft, Effectiveness, Requirement, check_control,
        check_control_field,
    },
    store::{
        RequestKey, Store,
        controls::{
            CONTROL_FILTER, CONTROL_SORTING, LINK_FILTER, LINK_SORTING, control_keys, link_name,
            requirements_json, requirements_of,
        },
        entities::{control, risk_control},
        etag, parse_etag,
    },
};

pub struct ControlApi {
    store: Store,
    clock: Clock,
}

impl ControlApi {
    pub fn new(store: Store, clock: Clock) -> Self {
        ControlApi { store, clock }
    }
}

pub fn control(c: &control::Model) -> pb::Control {
    pb::Control {
        name: format!("controls/{}", c.id),
        title: c.title.clone(),
        description: c.description.clone(),
        owner: c.owner.clone(),
        design_effectiveness: c.design_effectiveness,
        operating_effectiveness: c.operating_effectiveness,
        last_test_time: c.last_test_time.map(to_timestamp),
        requirements: requirements_of(c)
            .into_iter()
            .map(|r| pb::Requirement {
                framework: r.framework,
                section: r.section,
            })
            .collect(),
        etag: etag(c.version),
        create_time: Some(to_timestamp(c.create_time)),
        update_time: Some(to_timestamp(c.update_time)),
    }
}

fn link(l: &risk_control::Model) -> pb::RiskControlLink {
    pb::RiskControlLink {
        name: link_name(l.risk_id, &l.control_id),
        risk: format!("risks/{}", l.risk_id),
        control: format!("controls/{}", l.control_id),
        linked_by: l.linked_by.clone(),
        create_time: Some(to_timestamp(l.create_time)),
    }
}

/// The draft of a control message; a malformed `last_test_time` is a violation.
fn draft(v: &mut Violations, field: &str, c: &pb::Control) -> ControlDraft {
    let last_test_time = c.last_test_time.as_ref().and_then(|ts| {
        let micros = from_timestamp(ts);
        if micros.is_none() {
            v.add(
                format!("{field}.last_test_time"),
                "is not a valid timestamp",
            );
        }
        micros
    });
    ControlDraft {
        title: c.title.clone(),
        description: c.description.clone(),
        owner: c.owner.clone(),
        design_effectiveness: c.design_effectiveness,
        operating_effectiveness: c.operating_effectiveness,
        last_test_time,
        requirements: c
            .requirements
            .iter()
            .map(|r| Requirement {
                framework: r.framework.clone(),
                section: r.section.clone(),
            })
            .collect(),
    }
}

/// The stored row of a validated draft (version and times are set by the store).
pub fn model(id: &str, d: &ControlDraft) -> control::Model {
    control::Model {
        id: id.to_string(),
        title: d.title.clone(),
        description: d.description.clone(),
        owner: d.owner.clone(),
        design_effectiveness: d.design_effectiveness,
        operating_effectiveness: d.operating_effectiveness,
        last_test_time: d.last_test_time,
        requirements: requirements_json(&d.requirements),
        version: 0,
        create_time: 0,
        update_time: 0,
    }
}

/// `risks/{risk}/controlLinks/{control}` → (risk, control id), or a violation on `field`.
fn link_id(v: &mut Violations, field: &str, name: &str) -> Option<(Uuid, String)> {
    if name.is_empty() {
        v.add(field, "is required");
        return None;
    }
    let parsed = name
        .strip_prefix("risks/")
        .and_then(|rest| rest.split_once('/'))
        .and_then(|(risk, rest)| {
            let control = name_id(rest, "controlLinks").filter(|c| is_slug(c))?;
            Some((Uuid::parse_str(risk).ok()?, control.to_string()))
        });
    if parsed.is_none() {
        v.add(
            field,
            "must be a link name `risks/{risk}/controlLinks/{control}` (a UUID and a slug)",
        );
    }
    parsed
}

#[tonic::async_trait]
impl ControlService for ControlApi {
    async fn create_control(
        &self,
        request: Request<pb::CreateControlRequest>,
    ) -> Result<Response<pb::Control>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let now = self.clock.now_micros();
        let mut v = Violations::new();
        if req.control_id.is_empty() {
            v.add("control_id", "is required");
        } else if !is_slug(&req.control_id) {
            v.add(
                "control_id",
                "must be a lowercase slug: a letter, then up to 62 of a-z 0-9 -, not ending in -",
            );
        }
        v.request_id("request_id", &req.request_id);
        let c = v.message("control", req.control.clone());
        let mut d = draft(&mut v, "control", &c);
        // Unspecified on create: never tested.
        for e in [&mut d.design_effectiveness, &mut d.operating_effectiveness] {
            if *e == 0 {
                *e = Effectiveness::NotTested as i32;
            }
        }
        check_control(&mut v, "control", &mut d, now);
        v.finish()?;
        let created = self
            .store
            .create_control(
                model(&req.control_id, &d),
                RequestKey::for_request("CreateControl", &caller, req, |r| &mut r.request_id),
                &caller,
                now,
            )
            .await?;
        Ok(Response::new(control(&created)))
    }

    async fn get_control(
        &self,
        request: Request<pb::GetControlRequest>,
    ) -> Result<Response<pb::Control>, Status> {
        let mut v = Violations::new();
        let id = slug_name(&mut v, "name", &request.get_ref().name, "controls");
        v.finish()?;
        let c = self.store.get_control(id.unwrap_or_default()).await?;
        Ok(Response::new(control(&c)))
    }

    async fn list_controls(
        &self,
        request: Request<pb::ListControlsRequest>,
    ) -> Result<Response<pb::ListControlsResponse>, Status> {
        let req = request.get_ref();
        let mut v = Violations::new();
        let list = ListQuery::parse(
            &mut v,
            &ListRequest {
                scope: &["controls"],
                page_size: req.page_size,
                page_token: &req.page_token,
                filter: &req.filter,
                order_by: &req.order_by,
            },
            Some(&CONTROL_FILTER.at(FilterContext::default())),
            &CONTROL_SORTING,
        );
        v.finish()?;
        let mut rows = self.store.list_controls(&list).await?;
        let next_page_token = list.next_page(&mut rows, |c| control_keys(&list, c));
        Ok(Response::new(pb::ListControlsResponse {
            controls: rows.iter().map(control).collect(),
            next_page_token,
        }))
    }

    async fn update_control(
        &self,
        request: Request<pb::UpdateControlRequest>,
    ) -> Result<Response<pb::Control>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.into_inner();
        let now = self.clock.now_micros();
        let mut v = Violations::new();
        let c = v.message("control", req.control);
        let id = slug_name(&mut v, "control.name", &c.name, "controls").map(str::to_string);
        let paths = v
            .absorb(
                "update_mask",
                update_paths(req.update_mask.as_ref(), CONTROL_FIELDS, |p| match p {
                    "title" => !c.title.is_empty(),
                    "description" => !c.description.is_empty(),
                    "owner" => !c.owner.is_empty(),
                    "design_effectiveness" => c.design_effectiveness != 0,
                    "operating_effectiveness" => c.operating_effectiveness != 0,
                    "last_test_time" => c.last_test_time.is_some(),
                    "requirements" => !c.requirements.is_empty(),
                    _ => false,
                }),
            )
            .inspect(|paths| {
                if paths.is_empty() {
                    v.add("update_mask", "names no field to update");
                }
            })
            .unwrap_or_default();
        let mut d = draft(&mut v, "control", &c);
        for path in &paths {
            check_control_field(&mut v, "control", &mut d, path, now);
        }
        let expected = v
            .absorb("control.etag", parse_etag("control.etag", &c.etag))
            .flatten();
        v.finish()?;
        let requirements = requirements_json(&d.requirements);
        let updated = self
            .store
            .update_control(&id.unwrap_or_default(), expected, &caller, now, |m| {
                for path in &paths {
                    match *path {
                        "title" => m.title = d.title.clone(),
                        "description" => m.description = d.description.clone(),
                        "owner" => m.owner = d.owner.clone(),
                        "design_effectiveness" => m.design_effectiveness = d.design_effectiveness,
                        "operating_effectiveness" => {
                            m.operating_effectiveness = d.operating_effectiveness
                        }
                        "last_test_time" => m.last_test_time = d.last_test_time,
                        "requirements" => m.requirements = requirements.clone(),
                        _ => {}
                    }
                }
            })
            .await?;
        Ok(Response::new(control(&updated)))
    }

    async fn delete_control(
        &self,
        request: Request<pb::DeleteControlRequest>,
    ) -> Result<Response<()>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let id = slug_name(&mut v, "name", &req.name, "controls").map(str::to_string);
        let expected = v.absorb("etag", parse_etag("etag", &req.etag)).flatten();
        v.finish()?;
        let id = id.unwrap_or_default();
        self.store.delete_control(&id, expected, &caller).await?;
        Ok(Response::new(()))
    }

    async fn create_risk_control_link(
        &self,
        request: Request<pb::CreateRiskControlLinkRequest>,
    ) -> Result<Response<pb::RiskControlLink>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let risk = risk_id(&mut v, "parent", &req.parent);
        let l = v.message("risk_control_link", req.risk_control_link.clone());
        let control = slug_name(&mut v, "risk_control_link.control", &l.control, "controls")
            .map(str::to_string);
        v.request_id("request_id", &req.request_id);
        v.finish()?;
        let key =
            RequestKey::for_request("CreateRiskControlLink", &caller, req, |r| &mut r.request_id);
        let linked = self
            .store
            .link_control(
                risk.unwrap_or_default(),
                &control.unwrap_or_default(),
                key,
                &caller,
                self.clock.now_micros(),
            )
            .await?;
        Ok(Response::new(link(&linked)))
    }

    async fn get_risk_control_link(
        &self,
        request: Request<pb::GetRiskControlLinkRequest>,
    ) -> Result<Response<pb::RiskControlLink>, Status> {
        let mut v = Violations::new();
        let ids = link_id(&mut v, "name", &request.get_ref().name);
        v.finish()?;
        let (risk, control) = ids.unwrap_or_default();
        let found = self.store.control_link(risk, &control).await?;
        Ok(Response::new(link(&found)))
    }

    async fn list_risk_control_links(
        &self,
        request: Request<pb::ListRiskControlLinksRequest>,
    ) -> Result<Response<pb::ListRiskControlLinksResponse>, Status> {
        let req = request.get_ref();
        let mut v = Violations::new();
        let risk = risk_id(&mut v, "parent", &req.parent);
        let list = ListQuery::parse(
            &mut v,
            &ListRequest {
                scope: &["controlLinks", &req.parent],
                page_size: req.page_size,
                page_token: &req.page_token,
                filter: &req.filter,
                order_by: &req.order_by,
            },
            Some(&LINK_FILTER.at(FilterContext::default())),
            &LINK_SORTING,
        );
        v.finish()?;
        let mut rows = self
            .store
            .control_links(risk.unwrap_or_default(), &list)
            .await?;
        let next_page_token = list.next_page(&mut rows, |l| {
            let mut keys: Vec<Key> = list.order.iter().map(|_| Key::Int(l.create_time)).collect();
            keys.push(Key::Text(l.control_id.clone()));
            keys
        });
        Ok(Response::new(pb::ListRiskControlLinksResponse {
            risk_control_links: rows.iter().map(link).collect(),
            next_page_token,
        }))
    }

    async fn delete_risk_control_link(
        &self,
        request: Request<pb::DeleteRiskControlLinkRequest>,
    ) -> Result<Response<()>, Status> {
        let caller = Caller::of(&request)?;
        let mut v = Violations::new();
        let ids = link_id(&mut v, "name", &request.get_ref().name);
        v.finish()?;
        let (risk, control) = ids.unwrap_or_default();
        self.store.unlink_control(risk, &control, &caller).await?;
        Ok(Response::new(()))
    }

    async fn list_risk_controls(
        &self,
        request: Request<pb::ListRiskControlsRequest>,
    ) -> Result<Response<pb::ListRiskControlsResponse>, Status> {
        let req = request.get_ref();
        let mut v = Violations::new();
        let risk = risk_id(&mut v, "parent", &req.parent);
        let (rows, next_page_token) = page_by_id(
            v,
            &ListRequest::paged(
                &["riskControls", &req.parent],
                req.page_size,
                &req.page_token,
            ),
            &Sorting::BY_TEXT_ID,
            async |list| {
                self.store
                    .risk_controls(risk.unwrap_or_default(), list)
                    .await
            },
            |c| c.id.clone(),
        )
        .await?;
        Ok(Response::new(pb::ListRiskControlsResponse {
            controls: rows.iter().map(control).collect(),
            next_page_token,
        }))
    }

    async fn list_control_risks(
        &self,
        request: Request<pb::ListControlRisksRequest>,
    ) -> Result<Response<pb::ListControlRisksResponse>, Status> {
        let req = request.get_ref();
        let mut v = Violations::new();
        let id = slug_name(&mut v, "parent", &req.parent, "controls").map(str::to_string);
        let show = if req.show_deleted { "1" } else { "0" };
        let (rows, next_page_token) = page_by_id(
            v,
            &ListRequest::paged(
                &["controlRisks", &req.parent, show],
                req.page_size,
                &req.page_token,
            ),
            &Sorting::BY_UUID,
            async |list| {
                let id = id.unwrap_or_default();
                let (after, limit) = (list.after_id(), list.limit());
                self.store
                    .control_risks(&id, req.show_deleted, after, limit)
                    .await
            },
            |r| r.id,
        )
        .await?;
        Ok(Response::new(pb::ListControlRisksResponse {
            risks: rows.iter().map(convert::risk).collect(),
            next_page_token,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_control_round_trips_through_its_row() {
        let d = ControlDraft {
            title: "MFA".into(),
            owner: "iam@example.com".into(),
            design_effectiveness: 1,
            operating_effectiveness: 2,
            last_test_time: Some(1_700_000_000_000_000),
            requirements: vec![Requirement {
                framework: "SOC 2".into(),
                section: "CC6.1".into(),
            }],
            ..Default::default()
        };
        let mut m = model("mfa", &d);
        m.version = 3;
        let p = control(&m);
        assert_eq!(p.name, "controls/mfa");
        assert_eq!(p.etag, "\"3\"");
        let mut v = Violations::new();
        assert_eq!(draft(&mut v, "control", &p), d);
        assert!(v.is_empty());
    }
}
