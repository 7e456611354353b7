//! Need-to-know reads of incidents (DESIGN.md, Security): a service-scoped caller sees only
//! the incidents that affect one of its services, and an incident's restricted material —
//! TLP:RED and TLP:AMBER+STRICT indicators, and evidence — only its role holders,
//! `security_lead`, `trust_team` and `admin` see.
//!
//! A hidden incident answers `PERMISSION_DENIED`, and so does a missing one for a scoped
//! caller (AIP-211), so the two cannot be told apart; unscoped callers still get `NOT_FOUND`.

use assurance_runtime::{
    ApiError, ApiResult,
    auth::{Caller, same_principal},
};
use uuid::Uuid;

use super::{IncidentApi, pb};
use crate::{
    domain::indicator::Tlp,
    store::{entities::incident, services_of},
};

/// What a restricted value reads as for a caller who may not see it.
pub const WITHHELD: &str = "[withheld]";

/// Whether an indicator of this TLP is restricted material.
pub fn restricted_tlp(tlp: i32) -> bool {
    tlp == Tlp::Red as i32 || tlp == Tlp::AmberStrict as i32
}

/// The indicator as a caller who may not see restricted material reads it: a restricted
/// indicator's value and description are withheld (its name, type and TLP stay).
pub fn redact_indicator(mut i: pb::Indicator, sees_restricted: bool) -> pb::Indicator {
    if !sees_restricted && restricted_tlp(i.tlp) {
        i.value = WITHHELD.into();
        i.description = WITHHELD.into();
    }
    i
}

/// `PERMISSION_DENIED` for an incident a scoped caller may not see (or that does not exist).
fn hidden(caller: &Caller, id: Uuid) -> ApiError {
    caller.hidden(&format!("incidents/{id}"))
}

impl IncidentApi {
    /// The incident `id` if `caller` may see it: `PERMISSION_DENIED` for a scoped caller when
    /// it affects none of its services or does not exist, `NOT_FOUND` for an unscoped caller
    /// when it does not exist.
    pub(super) async fn visible(&self, caller: &Caller, id: Uuid) -> ApiResult<incident::Model> {
        match self.store.get(id).await {
            Ok(m) if caller.sees_any(services_of(&m)) => Ok(m),
            Ok(_) => Err(hidden(caller, id)),
            Err(ApiError::NotFound { .. }) if caller.read_scope().is_some() => {
                Err(hidden(caller, id))
            }
            Err(e) => Err(e),
        }
    }

    /// Whether `caller` may see the restricted material of the incident `id`: by role, or as
    /// the holder of one of its response roles.
    pub(super) async fn sees_restricted(&self, caller: &Caller, id: Uuid) -> ApiResult<bool> {
        if caller.sees_restricted_everywhere() {
            return Ok(true);
        }
        let roles = self.store.roles(id, None, 100).await?;
        Ok(roles
            .iter()
            .any(|r| same_principal(&r.person, caller.person())))
    }

    /// `PERMISSION_DENIED` unless `caller` may see the incident `id` and its evidence.
    pub(super) async fn may_see_evidence(&self, caller: &Caller, id: Uuid) -> ApiResult<()> {
        self.visible(caller, id).await?;
        if self.sees_restricted(caller, id).await? {
            return Ok(());
        }
        Err(ApiError::PermissionDenied(format!(
            "the evidence of incidents/{id} is visible only to its role holders, security_lead, \
             trust_team and admin; {} is none of them",
            caller.person()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_restricted_indicators_are_redacted() {
        let ind = |tlp: Tlp| pb::Indicator {
            value: "198.51.100.77".into(),
            description: "C2".into(),
            tlp: tlp as i32,
            ..Default::default()
        };
        for tlp in [Tlp::Red, Tlp::AmberStrict] {
            let r = redact_indicator(ind(tlp), false);
            assert_eq!(
                (r.value.as_str(), r.description.as_str()),
                (WITHHELD, WITHHELD)
            );
            assert_eq!(redact_indicator(ind(tlp), true).value, "198.51.100.77");
        }
        for tlp in [Tlp::Clear, Tlp::Green, Tlp::Amber] {
            assert_eq!(redact_indicator(ind(tlp), false).value, "198.51.100.77");
        }
    }
}
