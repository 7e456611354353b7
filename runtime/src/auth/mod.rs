//! Identity and authorisation: who is calling (bearer tokens from a tokens file, or OIDC JWTs
//! checked against JWKS keys), what their roles let them call (the role matrix, one table for
//! every RPC), which services' records they may change (service scope), and the caller each
//! handler sees.
//!
//! A server checks identity once, in [`layer::AuthLayer`] at its edge; the handlers behind it
//! — in the same process, as in `gateway --embedded` — read the [`Caller`] it attached.

pub mod authenticator;
pub mod client;
pub mod jwt;
pub mod layer;
pub mod matrix;
pub mod tokens;

use std::{fmt, sync::Arc};

use crate::{ApiError, ApiResult};

/// The roles of DESIGN.md's Security section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Viewer,
    Reporter,
    RiskOwner,
    ServiceManager,
    TrustTeam,
    ErmExecutive,
    Responder,
    SecurityLead,
    Tracker,
    System,
    Admin,
}

impl Role {
    pub const ALL: [Role; 11] = [
        Role::Viewer,
        Role::Reporter,
        Role::RiskOwner,
        Role::ServiceManager,
        Role::TrustTeam,
        Role::ErmExecutive,
        Role::Responder,
        Role::SecurityLead,
        Role::Tracker,
        Role::System,
        Role::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Reporter => "reporter",
            Role::RiskOwner => "risk_owner",
            Role::ServiceManager => "service_manager",
            Role::TrustTeam => "trust_team",
            Role::ErmExecutive => "erm_executive",
            Role::Responder => "responder",
            Role::SecurityLead => "security_lead",
            Role::Tracker => "tracker",
            Role::System => "system",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    const fn bit(self) -> u16 {
        1 << self as u16
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of roles.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Roles(u16);

impl Roles {
    pub const NONE: Roles = Roles(0);

    pub const fn of(roles: &[Role]) -> Roles {
        let mut bits = 0;
        let mut i = 0;
        while i < roles.len() {
            bits |= roles[i].bit();
            i += 1;
        }
        Roles(bits)
    }

    pub const fn union(self, other: Roles) -> Roles {
        Roles(self.0 | other.0)
    }

    pub fn contains(self, role: Role) -> bool {
        self.0 & role.bit() != 0
    }

    pub fn intersects(self, other: Roles) -> bool {
        self.0 & other.0 != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Role> {
        Role::ALL.into_iter().filter(move |r| self.contains(*r))
    }

    /// Parses role names; an unknown name is an error naming it.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Roles, String> {
        let mut roles = Roles::NONE;
        for name in names {
            let role = Role::parse(name).ok_or_else(|| {
                format!(
                    "unknown role {name:?} (roles: {})",
                    Role::ALL.map(Role::as_str).join(", ")
                )
            })?;
            roles = roles.union(Roles::of(&[role]));
        }
        Ok(roles)
    }
}

impl fmt::Display for Roles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.iter().map(Role::as_str).collect();
        f.write_str(&names.join(", "))
    }
}

/// A principal as Assurance compares and stores it: without surrounding whitespace, in lower
/// case. Authentication applies it to token principals, JWT subjects and `x-on-behalf-of`, so
/// "RO2" and " ro2" are one person in every check (segregation of duties, request ids) and in
/// the audit trail.
pub fn normalize_principal(principal: &str) -> String {
    principal.trim().to_lowercase()
}

/// Whether two stored principals are the same person (records written before principals were
/// normalised may differ in case).
pub fn same_principal(a: &str, b: &str) -> bool {
    normalize_principal(a) == normalize_principal(b)
}

/// An authenticated identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Who it is, as recorded in the audit trail: a token's `principal`, a JWT's `sub`.
    pub subject: String,
    pub roles: Roles,
    /// Service ids (`exchange-online`) whose records this principal may change; `None` for
    /// every service.
    pub services: Option<Vec<String>>,
}

impl Principal {
    /// The identity `--insecure-dev` gives every caller.
    pub fn insecure_dev() -> Principal {
        Principal {
            subject: "insecure-dev".into(),
            roles: Roles::of(&[Role::Admin]),
            services: None,
        }
    }
}

/// The caller of one request: the authenticated principal, whom it acts for (a `system`
/// principal may name the user it acts on behalf of), and the RPC called.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Arc<Principal>,
    pub on_behalf_of: Option<String>,
    /// The full gRPC method path, e.g. `/assurance.risk.v1.RiskService/CreateRisk`.
    pub rpc: Arc<str>,
    /// The `x-request-id` metadata of the call, if any.
    pub request_id: String,
}

impl Caller {
    /// The caller `request` was authenticated as. A server always runs behind
    /// [`layer::AuthLayer`]; a request without a caller is refused, never served anonymously.
    pub fn of<T>(request: &tonic::Request<T>) -> ApiResult<Caller> {
        request
            .extensions()
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::Unauthenticated("no authenticated caller".into()))
    }

    /// The caller of an internal job of `service` (an expiry sweep, an outbox relay): a
    /// service principal with the `system` role. Its audit records name the job as the RPC.
    pub fn system(service: &str, job: &str) -> Caller {
        Caller {
            principal: Arc::new(Principal {
                subject: format!("system:{service}"),
                roles: Roles::of(&[Role::System]),
                services: None,
            }),
            on_behalf_of: None,
            rpc: format!("/internal.{service}/{job}").into(),
            request_id: String::new(),
        }
    }

    /// For timelines and logs: the subject, and whom it acted for.
    pub fn actor(&self) -> String {
        match &self.on_behalf_of {
            Some(user) => format!("{} (on behalf of {user})", self.principal.subject),
            None => self.principal.subject.clone(),
        }
    }

    /// The person behind the call: the user a `system` principal acts for, else the
    /// principal. Authorship and approvals are theirs.
    pub fn person(&self) -> &str {
        self.on_behalf_of
            .as_deref()
            .unwrap_or(&self.principal.subject)
    }

    /// The method name alone (`CreateRisk`).
    pub fn method(&self) -> &str {
        self.rpc.rsplit('/').next().unwrap_or(&self.rpc)
    }

    /// Whether this caller may change records of the service `service_id`.
    pub fn in_scope(&self, service_id: &str) -> bool {
        match &self.principal.services {
            None => true,
            Some(scope) => scope.iter().any(|s| s == service_id),
        }
    }

    /// The services a scoped caller's reads are limited to (need-to-know), `None` when it
    /// is unscoped and sees every service's records its roles allow.
    pub fn read_scope(&self) -> Option<&[String]> {
        self.principal.services.as_deref()
    }

    /// Whether this caller may see a record (an incident) of the services `service_ids`:
    /// an unscoped caller sees every one, a scoped caller those with at least one of them
    /// in its scope.
    pub fn sees_any<'a>(&self, service_ids: impl IntoIterator<Item = &'a str>) -> bool {
        self.principal.services.is_none() || service_ids.into_iter().any(|s| self.in_scope(s))
    }

    /// Whether this caller's roles let it see every incident's restricted material
    /// (TLP:RED and TLP:AMBER+STRICT indicators, evidence): `security_lead`, `trust_team`,
    /// `admin`, and the services' own `system` principals. Anyone else sees it only as a
    /// role holder of the incident.
    pub fn sees_restricted_everywhere(&self) -> bool {
        self.principal.roles.intersects(Roles::of(&[
            Role::SecurityLead,
            Role::TrustTeam,
            Role::Admin,
            Role::System,
        ]))
    }

    /// `PERMISSION_DENIED` for a record (`incidents/{id}`) a scoped caller may not see, worded
    /// alike whether it exists or not, so that a hidden record cannot be told from a missing
    /// one (AIP-211).
    pub fn hidden(&self, resource: &str) -> ApiError {
        let scope = self.scope_names();
        ApiError::PermissionDenied(format!(
            "{} may see only records of {scope}; {resource} is not one of them or does not exist",
            self.principal.subject
        ))
    }

    /// `PERMISSION_DENIED` unless this caller may change records of `service_id`.
    pub fn may_change(&self, service_id: &str) -> ApiResult<()> {
        if self.in_scope(service_id) {
            Ok(())
        } else {
            Err(self.out_of_scope(&format!("services/{service_id}")))
        }
    }

    /// `PERMISSION_DENIED` unless this caller may change a record of the services
    /// `service_ids` — at least one of them in its scope.
    pub fn may_change_any<'a>(
        &self,
        service_ids: impl IntoIterator<Item = &'a str>,
    ) -> ApiResult<()> {
        let ids: Vec<&str> = service_ids.into_iter().collect();
        if self.principal.services.is_none() || ids.iter().any(|s| self.in_scope(s)) {
            Ok(())
        } else {
            Err(self.out_of_scope(
                &ids.iter()
                    .map(|s| format!("services/{s}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            ))
        }
    }

    /// `PERMISSION_DENIED` unless this caller may change every service in `service_ids`.
    pub fn may_change_all<'a>(
        &self,
        service_ids: impl IntoIterator<Item = &'a str>,
    ) -> ApiResult<()> {
        for id in service_ids {
            self.may_change(id)?;
        }
        Ok(())
    }

    /// `PERMISSION_DENIED` when this caller may call its RPC only as a bug tracker (the
    /// `tracker` role is its one role allowed there) and `paths` name a field other than the
    /// item's `status` and `tracker` link: a tracker owns those, Assurance the rest.
    pub fn check_tracker_fields(&self, paths: &[&str]) -> ApiResult<()> {
        let allowed = matrix::allowed(&self.rpc);
        let own = Role::ALL
            .iter()
            .filter(|r| allowed.contains(**r) && self.principal.roles.contains(**r))
            .collect::<Vec<_>>();
        if own != [&Role::Tracker] {
            return Ok(());
        }
        let other: Vec<&str> = paths
            .iter()
            .copied()
            .filter(|p| !matches!(*p, "status" | "tracker"))
            .collect();
        if other.is_empty() {
            Ok(())
        } else {
            Err(ApiError::PermissionDenied(format!(
                "{} acts as a bug tracker and may change only an item's status and tracker link, not {}",
                self.principal.subject,
                other.join(", ")
            )))
        }
    }

    /// `PERMISSION_DENIED` for a scoped caller: only unscoped principals may do this.
    pub fn must_be_unscoped(&self, what: &str) -> ApiResult<()> {
        match &self.principal.services {
            None => Ok(()),
            Some(_) => Err(ApiError::PermissionDenied(format!(
                "{} is scoped to its services and may not {what}",
                self.principal.subject
            ))),
        }
    }

    /// The caller's services as names (`services/a, services/b`), for refusals.
    fn scope_names(&self) -> String {
        self.principal
            .services
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|s| format!("services/{s}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn out_of_scope(&self, resources: &str) -> ApiError {
        let scope = self.scope_names();
        ApiError::PermissionDenied(format!(
            "{} may change only records of {scope}; not of {resources}",
            self.principal.subject
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_round_trip() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
        let roles = Roles::parse(["viewer", "admin"]).expect("known roles");
        assert!(roles.contains(Role::Admin) && roles.contains(Role::Viewer));
        assert!(!roles.contains(Role::System));
        assert_eq!(roles.to_string(), "viewer, admin");
        assert!(Roles::parse(["viewer", "root"]).is_err());
    }

    fn caller(services: Option<Vec<String>>) -> Caller {
        Caller {
            principal: Arc::new(Principal {
                subject: "svc-team".into(),
                roles: Roles::of(&[Role::ServiceManager]),
                services,
            }),
            on_behalf_of: None,
            rpc: "/assurance.risk.v1.RiskService/CreateRisk".into(),
            request_id: String::new(),
        }
    }

    #[test]
    fn service_scope() {
        let scoped = caller(Some(vec!["exchange-online".into()]));
        assert!(scoped.may_change("exchange-online").is_ok());
        let denied = scoped.may_change("teams").expect_err("out of scope");
        assert!(matches!(denied, ApiError::PermissionDenied(m) if m.contains("services/teams")));
        assert!(scoped.may_change_any(["teams", "exchange-online"]).is_ok());
        assert!(scoped.may_change_any(["teams"]).is_err());
        assert!(scoped.may_change_all(["teams", "exchange-online"]).is_err());
        assert!(scoped.must_be_unscoped("create services").is_err());
        let unscoped = caller(None);
        assert!(unscoped.may_change("teams").is_ok());
        assert!(unscoped.must_be_unscoped("create services").is_ok());
        assert_eq!(unscoped.method(), "CreateRisk");
    }

    #[test]
    fn need_to_know() {
        let scoped = caller(Some(vec!["exchange-online".into()]));
        assert!(scoped.sees_any(["teams", "exchange-online"]));
        assert!(!scoped.sees_any(["teams"]));
        assert!(!scoped.sees_any([]));
        assert_eq!(
            scoped.read_scope(),
            Some(&["exchange-online".to_string()][..])
        );
        assert!(!scoped.sees_restricted_everywhere());
        let hidden = scoped.hidden("incidents/1");
        assert!(
            matches!(&hidden, ApiError::PermissionDenied(m)
                if m.contains("services/exchange-online") && m.contains("incidents/1")),
            "{hidden:?}"
        );
        let unscoped = caller(None);
        assert!(unscoped.sees_any(["teams"]));
        assert!(unscoped.read_scope().is_none());
        for (role, sees) in [
            (Role::SecurityLead, true),
            (Role::TrustTeam, true),
            (Role::Admin, true),
            (Role::System, true),
            (Role::Responder, false),
            (Role::ServiceManager, false),
        ] {
            let c = Caller {
                principal: Arc::new(Principal {
                    subject: "p".into(),
                    roles: Roles::of(&[role]),
                    services: None,
                }),
                ..unscoped.clone()
            };
            assert_eq!(c.sees_restricted_everywhere(), sees, "{role}");
        }
    }
}
