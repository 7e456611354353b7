//! The risk appetite RPCs of `PostureService`: GetRiskAppetite, SetRiskAppetite (versions,
//! inheritance within the parent's tolerance, who may set which scope) and
//! ListRiskAppetiteVersions. The values and their inheritance are in [`super::appetite`].

use super::*;

/// How far in the past a "now" effective time may be (clock skew, a retry): it is taken as now.
const EFFECTIVE_GRACE_MICROS: i64 = 60_000_000;

fn severity_name(raw: i32) -> &'static str {
    Severity::try_from(raw)
        .map(|s| s.as_str_name().trim_start_matches("SEVERITY_"))
        .unwrap_or("UNKNOWN")
}

fn effective_value(value: &appetite::Value) -> EffectiveValue {
    EffectiveValue {
        value: value.severity,
        source: value
            .source
            .as_ref()
            .map(Scope::appetite_name)
            .unwrap_or_default(),
        capped: value.capped,
    }
}

/// The resource of `scope`'s appetite: `own` (the version in force, if any) and the effective
/// values.
fn appetite_resource(scope: &Scope, own: Option<&Version>, effective: &Effective) -> RiskAppetite {
    let mut out = RiskAppetite {
        name: scope.appetite_name(),
        effective_appetite: Some(effective_value(&effective.appetite)),
        effective_tolerance: Some(effective_value(&effective.tolerance)),
        ..Default::default()
    };
    if let Some(v) = own {
        out.appetite = v.appetite;
        out.tolerance = v.tolerance;
        out.effective_time = Some(to_timestamp(v.effective_time));
        out.reason = v.reason.clone();
        out.version = v.version;
        out.set_by = v.set_by.clone();
        out.create_time = Some(to_timestamp(v.create_time));
        out.etag = etag::etag(v.version);
    }
    out
}

/// The scope of an appetite name, or a violation of `field`.
fn appetite_scope(v: &mut Violations, field: &str, name: &str) -> Option<Scope> {
    if name.is_empty() {
        v.add(field, "is required");
        return None;
    }
    let scope = Scope::of_appetite(name);
    if scope.is_none() {
        v.add(
            field,
            "must be `enterprise/riskAppetite`, `businessUnits/{id}/riskAppetite` or \
             `services/{id}/riskAppetite`",
        );
    }
    scope
}

/// `erm_executive` sets the enterprise's appetite, `trust_team` the overrides; a principal
/// scoped to services sets only its own services'.
fn authorize_setter(caller: &Caller, scope: &Scope) -> ApiResult<()> {
    let roles = &caller.principal.roles;
    let (needed, allowed) = match scope {
        Scope::Enterprise => ("erm_executive", roles.contains(Role::ErmExecutive)),
        _ => ("trust_team", roles.contains(Role::TrustTeam)),
    };
    if !allowed {
        return Err(ApiError::PermissionDenied(format!(
            "{} may not set {}: it needs the {needed} role",
            caller.principal.subject,
            scope.appetite_name()
        )));
    }
    match scope {
        Scope::Service(id) => caller.may_change(id),
        _ if caller.principal.services.is_some() => Err(ApiError::PermissionDenied(format!(
            "{} is scoped to its services and may not set {}",
            caller.principal.subject,
            scope.appetite_name()
        ))),
        _ => Ok(()),
    }
}

impl PostureApi {
    pub(super) async fn get_appetite(
        &self,
        request: Request<GetRiskAppetiteRequest>,
    ) -> ApiResult<RiskAppetite> {
        let on = on_behalf(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let scope = appetite_scope(&mut v, "name", &req.name);
        let at = time_field(&mut v, "as_of", req.as_of.as_ref());
        v.finish()?;
        let Some(scope) = scope else {
            return Err(ApiError::Internal("name validated but absent".into()));
        };
        let at = at.unwrap_or_else(|| self.clock.now_micros());
        let chain = self.chain_of(&scope, &on).await?;
        let versions = Versions::new(self.store.appetite_versions().await?);
        Ok(appetite_resource(
            &scope,
            versions.in_force(&scope, at),
            &versions.effective(&chain, at),
        ))
    }

    /// The inheritance chain of `scope`, checked against the registry.
    async fn chain_of(&self, scope: &Scope, on: &OnBehalf) -> ApiResult<Vec<Scope>> {
        match scope {
            Scope::Enterprise => Ok(vec![Scope::Enterprise]),
            _ => chain(scope, &*self.registry(on).await?),
        }
    }

    pub(super) async fn set_appetite(
        &self,
        request: Request<SetRiskAppetiteRequest>,
    ) -> ApiResult<RiskAppetite> {
        let on = on_behalf(&request)?;
        let caller = on.caller.clone();
        let req = request.into_inner();
        let key = RequestKey::for_request("SetRiskAppetite", &caller, &req, |r| &mut r.request_id);
        let now = self.clock.now_micros();
        let mut v = Violations::new();
        v.request_id("request_id", &req.request_id);
        let body = v.message("risk_appetite", req.risk_appetite.clone());
        let scope = appetite_scope(&mut v, "risk_appetite.name", &body.name);
        // Unspecified inherits the parent's value (the enterprise's are required below).
        for (field, value) in [("appetite", body.appetite), ("tolerance", body.tolerance)] {
            if Severity::try_from(value).is_err() {
                v.add(
                    format!("risk_appetite.{field}"),
                    format!("{value} is not a known severity"),
                );
            }
        }
        let effective_time = match time_field(
            &mut v,
            "risk_appetite.effective_time",
            body.effective_time.as_ref(),
        ) {
            None => now,
            Some(t) if t >= now => t,
            Some(t) if t >= now - EFFECTIVE_GRACE_MICROS => now,
            Some(_) => {
                v.add(
                    "risk_appetite.effective_time",
                    "must not be in the past: a version takes effect now or later",
                );
                now
            }
        };
        v.paragraph("risk_appetite.reason", &body.reason, false, 2000);
        let expected = v.absorb(
            "risk_appetite.etag",
            etag::parse_etag("risk_appetite.etag", &body.etag),
        );
        if scope == Some(Scope::Enterprise) {
            for (field, value) in [("appetite", body.appetite), ("tolerance", body.tolerance)] {
                if value == 0 {
                    v.add(
                        format!("risk_appetite.{field}"),
                        "is required for the enterprise, which has no parent to inherit from",
                    );
                }
            }
        }
        if body.appetite > 0 && body.tolerance > 0 && body.appetite > body.tolerance {
            v.add(
                "risk_appetite.appetite",
                format!(
                    "{} is above the tolerance {}: the appetite is at or below the tolerance",
                    severity_name(body.appetite),
                    severity_name(body.tolerance)
                ),
            );
        }
        v.finish()?;
        let Some(scope) = scope else {
            return Err(ApiError::Internal("name validated but absent".into()));
        };
        authorize_setter(&caller, &scope)?;
        let chain = self.chain_of(&scope, &on).await?;
        let versions = Versions::new(self.store.appetite_versions().await?);
        if chain.len() > 1 {
            // Within the parent's tolerance, as it will be when this version takes effect.
            let parent = versions.effective(&chain[..chain.len() - 1], effective_time);
            let ceiling = parent.tolerance.severity;
            let source = parent
                .tolerance
                .source
                .as_ref()
                .map(Scope::appetite_name)
                .unwrap_or_else(|| "the built-in default".into());
            let mut v = Violations::new();
            for (field, value) in [("appetite", body.appetite), ("tolerance", body.tolerance)] {
                if value > ceiling {
                    v.add(
                        format!("risk_appetite.{field}"),
                        format!(
                            "{} is above the parent's tolerance {} (from {source}): an override \
                             stays within its parent's tolerance",
                            severity_name(value),
                            severity_name(ceiling)
                        ),
                    );
                }
            }
            let tolerance = if body.tolerance > 0 {
                body.tolerance
            } else {
                ceiling
            };
            if body.appetite > 0 && body.tolerance == 0 && body.appetite > tolerance {
                v.add(
                    "risk_appetite.appetite",
                    format!(
                        "{} is above the inherited tolerance {}",
                        severity_name(body.appetite),
                        severity_name(tolerance)
                    ),
                );
            }
            v.finish()?;
        }
        let row = Version {
            scope: scope.name(),
            version: 0,
            appetite: body.appetite,
            tolerance: body.tolerance,
            effective_time,
            reason: body.reason.trim().to_string(),
            set_by: caller.person().to_string(),
            principal: caller.principal.subject.clone(),
            create_time: 0,
        };
        let name = scope.appetite_name();
        let stored = self
            .store
            .append_version(row, expected.flatten(), key, &caller, &name)
            .await?;
        let versions = Versions::new(self.store.appetite_versions().await?);
        let at = stored.effective_time.max(now);
        Ok(appetite_resource(
            &scope,
            Some(&stored),
            &versions.effective(&chain, at),
        ))
    }

    pub(super) async fn list_versions(
        &self,
        request: Request<ListRiskAppetiteVersionsRequest>,
    ) -> ApiResult<ListRiskAppetiteVersionsResponse> {
        let on = on_behalf(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let scope = appetite_scope(&mut v, "name", &req.name);
        let size = v.absorb("page_size", page::page_size("page_size", req.page_size));
        v.finish()?;
        let (Some(scope), Some(size)) = (scope, size) else {
            return Err(ApiError::Internal("request validated but absent".into()));
        };
        let fingerprint = page::query_fingerprint(&["ListRiskAppetiteVersions", &req.name]);
        let after = page::decode("page_token", &req.page_token, &fingerprint, 1)?;
        let before = match after.as_deref() {
            Some([page::Key::Int(v)]) => Some(*v),
            Some(_) => {
                return Err(ApiError::invalid(
                    "page_token",
                    "is not a page token issued by this service",
                ));
            }
            None => None,
        };
        let chain = self.chain_of(&scope, &on).await?;
        let mut rows = self
            .store
            .versions_of(&scope.name(), before, size + 1)
            .await?;
        let next_page_token = page::finish(&mut rows, size, &fingerprint, |r| {
            vec![page::Key::Int(r.version)]
        });
        let versions = Versions::new(self.store.appetite_versions().await?);
        let now = self.clock.now_micros();
        Ok(ListRiskAppetiteVersionsResponse {
            risk_appetites: rows
                .iter()
                .map(|row| {
                    appetite_resource(
                        &scope,
                        Some(row),
                        &versions.effective(&chain, row.effective_time.max(now)),
                    )
                })
                .collect(),
            next_page_token,
        })
    }
}
