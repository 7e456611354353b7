//! Who may do what with a report, beyond the role matrix, and what a reader sees.
//!
//! Reads: every posture reader reads every report, except that a principal scoped to services
//! reads only the reports in which one of its services is in scope (or whose scope is one of
//! them) — it must see what it is asked to confirm — and sees their posture pruned to its own
//! services: the enterprise and business-unit figures, which count other services, are left
//! out, and its draft exports hold only its services' rows. A signed report's stored exports
//! cover every service: they are streamed only to principals whose scope covers the report's.
//! Like `GetPosture`, a caller who may not read incidents (a `viewer`) never sees incident
//! names.

use assurance_proto::gateway::v1::{PostureNode, Report};
use assurance_runtime::{
    ApiError, ApiResult,
    auth::{Caller, Role, matrix},
};

use crate::store::report::ReportService;

/// The services (`services/{id}`) a scoped caller is limited to; `None` when unscoped.
pub fn own_services(caller: &Caller) -> Option<Vec<String>> {
    caller
        .principal
        .services
        .as_ref()
        .map(|ids| ids.iter().map(|id| format!("services/{id}")).collect())
}

/// PERMISSION_DENIED unless `caller` may read the report of `scope` with `services` in scope.
pub fn check_read(
    caller: &Caller,
    name: &str,
    scope: &str,
    services: &[ReportService],
) -> ApiResult<()> {
    let Some(own) = own_services(caller) else {
        return Ok(());
    };
    if own
        .iter()
        .any(|s| s == scope || services.iter().any(|r| &r.service == s))
    {
        return Ok(());
    }
    Err(ApiError::PermissionDenied(format!(
        "{} is scoped to {} and none of them is in the scope of {name}",
        caller.principal.subject,
        if own.is_empty() {
            "no service".to_string()
        } else {
            own.join(", ")
        }
    )))
}

/// Whether `caller` may read incidents themselves (not only their counts).
fn reads_incidents(caller: &Caller) -> bool {
    caller.principal.roles.intersects(matrix::allowed(
        "/assurance.incident.v1.IncidentService/GetIncident",
    ))
}

/// Keeps the path to `own`'s service nodes; the figures of other nodes are cleared. Whether
/// `node` stays.
fn prune(node: &mut PostureNode, own: &[String]) -> bool {
    if own.contains(&node.scope) {
        return true;
    }
    node.children.retain_mut(|child| prune(child, own));
    node.risks = None;
    node.incidents = None;
    node.appetite = None;
    !node.children.is_empty()
}

fn without_incident_names(node: &mut PostureNode) {
    if let Some(incidents) = &mut node.incidents {
        incidents.top_incidents.clear();
    }
    node.children.iter_mut().for_each(without_incident_names);
}

/// `report` as `caller` may see it.
pub fn redact(caller: &Caller, report: &mut Report) {
    let Some(posture) = &mut report.posture else {
        return;
    };
    if let (Some(own), Some(root)) = (own_services(caller), &mut posture.root) {
        prune(root, &own);
    }
    if !reads_incidents(caller)
        && let Some(root) = &mut posture.root
    {
        without_incident_names(root);
    }
}

/// PERMISSION_DENIED unless `caller` may confirm `service` (`services/{id}`): `trust_team`, or
/// a `service_manager` whose scope includes it.
pub fn check_confirmer(caller: &Caller, service: &str) -> ApiResult<()> {
    let roles = caller.principal.roles;
    let id = service.trim_start_matches("services/");
    if (roles.contains(Role::TrustTeam) || roles.contains(Role::ServiceManager))
        && caller.in_scope(id)
    {
        return Ok(());
    }
    Err(ApiError::PermissionDenied(format!(
        "{} may not confirm {service}: it needs the trust_team role, or service_manager with \
         {service} in its scope",
        caller.principal.subject
    )))
}

/// PERMISSION_DENIED unless `caller` may reject a report with `services` in scope: an
/// `erm_executive`, or one who may confirm one of its services.
pub fn check_rejecter(caller: &Caller, name: &str, services: &[ReportService]) -> ApiResult<()> {
    if caller.principal.roles.contains(Role::ErmExecutive)
        || services
            .iter()
            .any(|s| check_confirmer(caller, &s.service).is_ok())
    {
        return Ok(());
    }
    Err(ApiError::PermissionDenied(format!(
        "{} may not reject {name}: it needs the erm_executive role, or to be a confirmer of one \
         of its services",
        caller.principal.subject
    )))
}
