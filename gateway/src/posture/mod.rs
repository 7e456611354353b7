//! `assurance.gateway.v1.PostureService`: the ERM posture of a scope, assembled from the
//! services' aggregate RPCs (fetched concurrently, with a deadline; a missing half is reported,
//! not fatal), and the risk appetite kept in the gateway's store.

pub mod appetite;
mod appetite_rpc;
pub mod history;
pub(crate) mod registry;
mod tree;
mod trend;
pub mod upstream;
mod watch;

use std::{collections::HashMap, sync::Arc, time::Duration};

use assurance_proto::{
    gateway::v1::{
        AppetiteVersionRef, CreateSnapshotRequest, EffectiveValue, GetPostureRequest,
        GetPostureTrendRequest, GetPostureTrendResponse, GetRiskAppetiteRequest,
        GetSnapshotRequest, ListRiskAppetiteVersionsRequest, ListRiskAppetiteVersionsResponse,
        ListSnapshotsRequest, ListSnapshotsResponse, MissingHalf, Posture, PostureHalf,
        PostureSnapshot, RiskAppetite, SetRiskAppetiteRequest, WatchPostureRequest,
        posture_service_server::PostureService,
    },
    incident::v1::SummarizeIncidentsRequest,
    risk::v1::{AppetiteThresholds, ServiceAppetite, SummarizeRisksRequest},
    r#type::v1::Severity,
};
use assurance_runtime::{
    ApiError, ApiResult,
    auth::{Caller, Role, layer::AuthLayer, matrix},
    etag,
    idempotency::RequestKey,
    page,
    time::{Clock, from_timestamp, to_timestamp},
    validate::Violations,
};
use tonic::{Request, Response, Status};

use crate::store::{Store, appetite_version::Model as Version};
use appetite::{Effective, Scope, Versions};
use registry::{Registry, RegistryCache};
use upstream::{OnBehalf, Upstreams};

const DAY_MICROS: i64 = 86_400_000_000;
/// The default KPI period.
const DEFAULT_PERIOD_DAYS: i64 = 90;
const MAX_TOP_N: i32 = 100;

/// Settings of the posture.
#[derive(Debug, Clone)]
pub struct PostureSettings {
    /// Top risks per node when the request does not say.
    pub top_n: u32,
    /// How long GetPosture waits for the services before answering without a half.
    pub deadline: Duration,
    /// WatchPosture sends at most one message per this interval.
    pub watch_interval: Duration,
}

#[derive(Clone)]
pub struct PostureApi {
    store: Store,
    upstreams: Upstreams,
    registry: RegistryCache,
    settings: PostureSettings,
    clock: Clock,
    /// The server's auth layer, with which WatchPosture checks its caller before each message.
    auth: Option<AuthLayer>,
    /// WatchPosture's shared computations.
    feeds: watch::Feeds,
}

impl PostureApi {
    pub fn new(
        store: Store,
        upstreams: Upstreams,
        settings: PostureSettings,
        clock: Clock,
    ) -> PostureApi {
        PostureApi {
            store,
            upstreams,
            registry: RegistryCache::default(),
            settings,
            clock,
            auth: None,
            feeds: watch::Feeds::default(),
        }
    }

    /// This API with the server's auth layer, which WatchPosture needs.
    pub fn with_auth(mut self, auth: AuthLayer) -> PostureApi {
        self.auth = Some(auth);
        self
    }

    /// The top list length of a request's `top_n` (0: the gateway's default).
    fn top_n(&self, requested: i32) -> i32 {
        if requested == 0 {
            i32::try_from(self.settings.top_n).unwrap_or(MAX_TOP_N)
        } else {
            requested
        }
    }
}

/// The scope of a posture request's `field`, or a violation.
fn posture_scope(v: &mut Violations, field: &str, raw: &str) -> Option<Scope> {
    if raw.is_empty() {
        v.add(field, "is required");
        return None;
    }
    let scope = Scope::parse(raw);
    if scope.is_none() {
        v.add(
            field,
            "must be `enterprise`, `businessUnits/{id}` or `services/{id}`",
        );
    }
    scope
}

/// The caller and the credential it presented, for calls made on its behalf.
pub(crate) fn on_behalf<T>(request: &Request<T>) -> ApiResult<OnBehalf> {
    Ok(OnBehalf {
        caller: Caller::of(request)?,
        authorization: request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    })
}

/// A timestamp field, or a violation.
fn time_field(v: &mut Violations, field: &str, ts: Option<&prost_types::Timestamp>) -> Option<i64> {
    let ts = ts?;
    let micros = from_timestamp(ts);
    if micros.is_none() {
        v.add(field, "is not a valid timestamp");
    }
    micros
}

/// PERMISSION_DENIED unless `caller` may read `scope`: a principal scoped to services may ask
/// only for those services.
fn authorize_scope(caller: &Caller, scope: &Scope) -> ApiResult<()> {
    let Some(own) = &caller.principal.services else {
        return Ok(());
    };
    if let Scope::Service(id) = scope
        && own.iter().any(|s| s == id)
    {
        return Ok(());
    }
    let allowed: Vec<String> = own.iter().map(|s| format!("services/{s}")).collect();
    Err(ApiError::PermissionDenied(format!(
        "{} is scoped to its services and may not read the posture of {}; it may ask for: {}",
        caller.principal.subject,
        scope.name(),
        if allowed.is_empty() {
            "none".to_string()
        } else {
            allowed.join(", ")
        }
    )))
}

/// Whether `caller` may read incidents themselves (not only their counts).
fn reads_incidents(caller: &Caller) -> bool {
    caller.principal.roles.intersects(matrix::allowed(
        "/assurance.incident.v1.IncidentService/GetIncident",
    ))
}

/// The chain of scopes whose appetite `scope` inherits, enterprise first.
fn chain(scope: &Scope, registry: &Registry) -> ApiResult<Vec<Scope>> {
    match scope {
        Scope::Enterprise => Ok(vec![Scope::Enterprise]),
        Scope::BusinessUnit(id) => {
            if registry.units.contains_key(id) {
                Ok(vec![Scope::Enterprise, scope.clone()])
            } else {
                Err(ApiError::not_found(scope.name()))
            }
        }
        Scope::Service(id) => match registry.services.get(id) {
            Some(s) => Ok(vec![
                Scope::Enterprise,
                Scope::BusinessUnit(s.business_unit.clone()),
                scope.clone(),
            ]),
            None => Err(ApiError::not_found(scope.name())),
        },
    }
}

fn thresholds(effective: &Effective) -> AppetiteThresholds {
    AppetiteThresholds {
        appetite: effective.appetite.severity,
        tolerance: effective.tolerance.severity,
    }
}

impl PostureApi {
    /// The registry, or UNAVAILABLE when risk-service does not answer and none was read before.
    async fn registry(&self, on: &OnBehalf) -> ApiResult<Arc<Registry>> {
        match self
            .registry
            .read(&self.upstreams, on, self.settings.deadline)
            .await
        {
            (Some(registry), _) => Ok(registry),
            (None, error) => Err(ApiError::Unavailable(format!(
                "the org registry is unavailable ({}); retry later",
                error
                    .as_ref()
                    .map(failure)
                    .unwrap_or_else(|| "no answer".into())
            ))),
        }
    }

    async fn posture(&self, request: Request<GetPostureRequest>) -> ApiResult<Posture> {
        let on = on_behalf(&request)?;
        let req = request.into_inner();
        let now = self.clock.now_micros();
        let mut v = Violations::new();
        let scope = posture_scope(&mut v, "scope", &req.scope);
        let as_of = time_field(&mut v, "as_of", req.as_of.as_ref());
        if as_of.is_some() && (req.period_start.is_some() || req.period_end.is_some()) {
            v.add(
                "as_of",
                "answers with the snapshot's own period: leave period_start and period_end unset",
            );
        }
        let end = time_field(&mut v, "period_end", req.period_end.as_ref()).unwrap_or(now);
        let start = time_field(&mut v, "period_start", req.period_start.as_ref())
            .unwrap_or(end.saturating_sub(DEFAULT_PERIOD_DAYS * DAY_MICROS));
        if start >= end {
            v.add("period_start", "must be before period_end");
        }
        if !(0..=MAX_TOP_N).contains(&req.top_n) {
            v.add("top_n", format!("must be 0 (the default) to {MAX_TOP_N}"));
        }
        v.finish()?;
        let Some(scope) = scope else {
            return Err(ApiError::Internal("scope validated but absent".into()));
        };
        authorize_scope(&on.caller, &scope)?;
        if let Some(at) = as_of {
            return self.posture_as_of(&on.caller, &scope, at, req.top_n).await;
        }
        let top_n = self.top_n(req.top_n);
        self.compute(&on, &scope, (start, end), top_n, now).await
    }

    /// The posture of `scope` now (`now`), with incident KPIs over `period` (start, end) and
    /// `top_n` top risks per node, fetched on behalf of `on` (whose access to `scope` was
    /// checked by the caller of this).
    pub(crate) async fn compute(
        &self,
        on: &OnBehalf,
        scope: &Scope,
        (start, end): (i64, i64),
        top_n: i32,
        now: i64,
    ) -> ApiResult<Posture> {
        let deadline = tokio::time::Instant::now() + self.settings.deadline;
        let (registry, registry_error) = self
            .registry
            .read(&self.upstreams, on, self.settings.deadline)
            .await;
        let mut missing = Vec::new();
        let (tree, with_risks) = match &registry {
            Some(registry) => (
                tree::build(scope, registry).ok_or_else(|| ApiError::not_found(scope.name()))?,
                registry_error.is_none(),
            ),
            None => match tree::without_registry(scope) {
                Some(tree) => (tree, false),
                None => {
                    return Err(ApiError::Unavailable(format!(
                        "risk-service does not answer ({}) and the posture of {} needs its org \
                         registry: both halves are missing; retry later",
                        registry_error
                            .as_ref()
                            .map(failure)
                            .unwrap_or_else(|| "no answer".into()),
                        scope.name()
                    )));
                }
            },
        };
        if !with_risks {
            missing.push(MissingHalf {
                half: PostureHalf::Risks as i32,
                reason: format!(
                    "risk-service: {}",
                    registry_error
                        .as_ref()
                        .map(failure)
                        .unwrap_or_else(|| "no answer".into())
                ),
            });
        }

        // Appetite of every service in the tree, in force now.
        let versions = Versions::new(self.store.appetite_versions().await?);
        let mut appetites = HashMap::new();
        let mut used = std::collections::BTreeSet::new();
        let mut service_appetites = Vec::new();
        let enterprise = versions.effective(&[Scope::Enterprise], now);
        used.extend(enterprise.versions.iter().cloned());
        if let Some(registry) = &registry {
            for node in tree.nodes() {
                let Some(id) = node.key.strip_prefix("services/") else {
                    continue;
                };
                let Ok(chain) = chain(&Scope::Service(id.to_string()), registry) else {
                    continue;
                };
                let effective = versions.effective(&chain, now);
                used.extend(effective.versions.iter().cloned());
                appetites.insert(node.key.clone(), thresholds(&effective));
                service_appetites.push(ServiceAppetite {
                    service: node.key.clone(),
                    thresholds: Some(thresholds(&effective)),
                });
            }
        }

        let risk_call = async {
            if !with_risks {
                return None;
            }
            let request = SummarizeRisksRequest {
                groups: tree.risk_groups(),
                top_n,
                appetites: service_appetites,
                default_appetite: Some(thresholds(&enterprise)),
            };
            Some(
                tokio::time::timeout_at(deadline, self.upstreams.summarize_risks(on, request))
                    .await,
            )
        };
        let incident_call = async {
            let request = SummarizeIncidentsRequest {
                groups: tree.incident_groups(),
                start_time: Some(to_timestamp(start)),
                end_time: Some(to_timestamp(end)),
                top_n: if reads_incidents(&on.caller) {
                    top_n
                } else {
                    0
                },
            };
            tokio::time::timeout_at(deadline, self.upstreams.summarize_incidents(on, request)).await
        };
        let (risks, incidents) = tokio::join!(risk_call, incident_call);
        let timeout = || format!("no answer within {:?}", self.settings.deadline);
        let mut risk_map = HashMap::new();
        match risks {
            None => {}
            Some(Ok(Ok(answer))) => {
                risk_map = answer
                    .summaries
                    .into_iter()
                    .map(|s| (s.key.clone(), s))
                    .collect();
            }
            Some(outcome) => missing.push(MissingHalf {
                half: PostureHalf::Risks as i32,
                reason: format!(
                    "risk-service: {}",
                    match outcome {
                        Ok(Err(status)) => failure(&status),
                        _ => timeout(),
                    }
                ),
            }),
        }
        let mut incident_map = HashMap::new();
        match incidents {
            Ok(Ok(answer)) => {
                incident_map = answer
                    .summaries
                    .into_iter()
                    .map(|s| (s.key.clone(), s))
                    .collect();
            }
            outcome => missing.push(MissingHalf {
                half: PostureHalf::Incidents as i32,
                reason: format!(
                    "incident-service: {}",
                    match outcome {
                        Ok(Err(status)) => failure(&status),
                        _ => timeout(),
                    }
                ),
            }),
        }
        if missing.len() == 2 {
            let reasons: Vec<String> = missing.iter().map(|m| m.reason.clone()).collect();
            tracing::warn!(reasons = ?reasons, "posture: both halves missing");
            return Err(ApiError::Unavailable(format!(
                "both halves of the posture are missing ({}); retry later",
                reasons.join("; ")
            )));
        }
        for m in &missing {
            tracing::warn!(scope = %scope.name(), reason = %m.reason, "posture: a half is missing");
        }
        Ok(Posture {
            scope: scope.name(),
            root: Some(tree.assemble(&mut risk_map, &mut incident_map, &appetites)),
            period_start: Some(to_timestamp(start)),
            period_end: Some(to_timestamp(end)),
            compute_time: Some(to_timestamp(now)),
            missing,
            snapshot: String::new(),
            appetite_versions: used
                .into_iter()
                .map(|(scope, version)| AppetiteVersionRef {
                    risk_appetite: scope.appetite_name(),
                    version,
                })
                .collect(),
        })
    }
}

/// A status of an upstream call, for `missing`: its code and message.
fn failure(status: &Status) -> String {
    format!("{:?}: {}", status.code(), status.message())
}

#[tonic::async_trait]
impl PostureService for PostureApi {
    async fn get_posture(
        &self,
        request: Request<GetPostureRequest>,
    ) -> Result<Response<Posture>, Status> {
        Ok(Response::new(self.posture(request).await?))
    }

    async fn get_risk_appetite(
        &self,
        request: Request<GetRiskAppetiteRequest>,
    ) -> Result<Response<RiskAppetite>, Status> {
        Ok(Response::new(self.get_appetite(request).await?))
    }

    async fn set_risk_appetite(
        &self,
        request: Request<SetRiskAppetiteRequest>,
    ) -> Result<Response<RiskAppetite>, Status> {
        Ok(Response::new(self.set_appetite(request).await?))
    }

    async fn list_risk_appetite_versions(
        &self,
        request: Request<ListRiskAppetiteVersionsRequest>,
    ) -> Result<Response<ListRiskAppetiteVersionsResponse>, Status> {
        Ok(Response::new(self.list_versions(request).await?))
    }

    async fn create_snapshot(
        &self,
        request: Request<CreateSnapshotRequest>,
    ) -> Result<Response<PostureSnapshot>, Status> {
        Ok(Response::new(self.snapshot_on_demand(request).await?))
    }

    async fn get_snapshot(
        &self,
        request: Request<GetSnapshotRequest>,
    ) -> Result<Response<PostureSnapshot>, Status> {
        Ok(Response::new(self.read_snapshot(request).await?))
    }

    async fn list_snapshots(
        &self,
        request: Request<ListSnapshotsRequest>,
    ) -> Result<Response<ListSnapshotsResponse>, Status> {
        Ok(Response::new(self.snapshot_page(request).await?))
    }

    async fn get_posture_trend(
        &self,
        request: Request<GetPostureTrendRequest>,
    ) -> Result<Response<GetPostureTrendResponse>, Status> {
        Ok(Response::new(self.trend(request).await?))
    }

    type WatchPostureStream = watch::WatchStream;

    async fn watch_posture(
        &self,
        request: Request<WatchPostureRequest>,
    ) -> Result<Response<Self::WatchPostureStream>, Status> {
        Ok(Response::new(self.watch(request).await?))
    }
}
