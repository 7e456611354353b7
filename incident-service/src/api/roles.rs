//! Incident roles: who holds each role of an incident.

use super::pb;
use assurance_runtime::{
    auth::Caller,
    validate::{Violations, is_slug},
};
use assurance_runtime::{
    list::{ListQuery, ListRequest, Sorting},
    page::Key,
};
use tonic::{Request, Response, Status};

use super::{IncidentApi, convert, incident_id};
use crate::domain::role::RoleKind;

impl IncidentApi {
    pub(super) async fn roles_assign(
        &self,
        request: Request<pb::AssignRoleRequest>,
    ) -> Result<Response<pb::Role>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let id = incident_id(&mut v, "parent", &req.parent);
        let role = &mut v.message("role", req.role.clone());
        let kind = v.enumeration::<RoleKind>("role.kind", role.kind);
        v.principal("role.person", &mut role.person, true);
        if role.team.is_empty() {
            v.add("role.team", "is required");
        } else if !is_slug(&role.team) {
            v.add(
                "role.team",
                "must be a lowercase slug such as `security-response`",
            );
        }
        v.finish()?;
        let role_name = kind.map_or("", RoleKind::slug);
        let model = crate::store::entities::role::Model {
            incident_id: id.unwrap_or_default(),
            kind: role.kind,
            person: role.person.clone(),
            team: role.team.clone(),
            assign_time: 0,
        };
        let assigned = self.store.assign_role(model, role_name, &caller).await?;
        Ok(Response::new(convert::role(&assigned)))
    }

    pub(super) async fn roles_list(
        &self,
        request: Request<pb::ListRolesRequest>,
    ) -> Result<Response<pb::ListRolesResponse>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let id = incident_id(&mut v, "parent", &req.parent);
        // Roles are keyed by their kind, one holder each.
        let list = ListQuery::parse(
            &mut v,
            &ListRequest::paged(&["roles", &req.parent], req.page_size, &req.page_token),
            None,
            &Sorting::BY_SEQUENCE,
        );
        v.finish()?;
        let id = id.unwrap_or_default();
        self.visible(&caller, id).await?;
        let mut roles = self
            .store
            .roles(id, list.after_sequence(), list.limit())
            .await?;
        let next_page_token = list.next_page(&mut roles, |r| vec![Key::Int(i64::from(r.kind))]);
        Ok(Response::new(pb::ListRolesResponse {
            roles: roles.iter().map(convert::role).collect(),
            next_page_token,
        }))
    }
}
