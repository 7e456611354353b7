//! `assurance.risk.v1.RiskSummaryService`: the risk half of the ERM posture. The gateway (or a
//! reporting job) sends groups of services; each group's figures are sums of its services'
//! figures, which the store computes from trigger-kept counters and indexed range scans.

use std::collections::{BTreeSet, HashMap, HashSet};

use assurance_proto::risk::v1::{self as pb, risk_summary_service_server::RiskSummaryService};
use assurance_proto::r#type::v1 as tv;
use assurance_runtime::{
    ApiError, ApiResult,
    auth::Caller,
    time::Clock,
    validate::{Violations, slug_name},
};
use tonic::{Request, Response, Status};

use crate::domain::{
    appetite::{AppetiteCounts, AppetiteStatus, Thresholds},
    scoring::{Severity, Strategy},
    status::RiskStatus,
};
use crate::store::{
    Store,
    summary::{RiskCounts, ServiceFigures, TopRisk},
};

/// Most groups in one request.
pub const MAX_GROUPS: usize = 1000;
/// Most services in one group.
pub const MAX_GROUP_SERVICES: usize = 5000;
/// Longest group key.
pub const MAX_KEY_CHARS: usize = 200;
/// Top risks per group when the request says 0, and the most it may ask.
pub const DEFAULT_TOP_N: usize = 10;
pub const MAX_TOP_N: i32 = 100;
/// Malformed service names reported one by one; beyond this, one violation says how many more.
const MAX_NAME_VIOLATIONS: usize = 100;

/// Serves `SummarizeRisks`. Public so that `gateway --embedded` can call it in-process (with a
/// [`Caller`] in the request's extensions).
#[derive(Clone)]
pub struct SummaryApi {
    store: Store,
    clock: Clock,
}

impl SummaryApi {
    pub fn new(store: Store, clock: Clock) -> Self {
        SummaryApi { store, clock }
    }
}

/// A valid request, by service ids.
struct Summarize {
    /// (key, its distinct services), in the request's order.
    groups: Vec<(String, Vec<String>)>,
    top_n: usize,
    appetites: HashMap<String, Thresholds>,
    default_appetite: Option<Thresholds>,
}

impl Summarize {
    fn judged(&self) -> bool {
        self.default_appetite.is_some() || !self.appetites.is_empty()
    }

    fn thresholds(&self, service: &str) -> Option<Thresholds> {
        self.appetites
            .get(service)
            .copied()
            .or(self.default_appetite)
    }
}

/// A required `AppetiteThresholds` under `field`.
fn thresholds(
    v: &mut Violations,
    field: &str,
    t: Option<&pb::AppetiteThresholds>,
) -> Option<Thresholds> {
    let Some(t) = t else {
        v.add(field, "is required");
        return None;
    };
    let appetite = v.enumeration::<Severity>(&format!("{field}.appetite"), t.appetite);
    let tolerance = v.enumeration::<Severity>(&format!("{field}.tolerance"), t.tolerance);
    let (appetite, tolerance) = (appetite?, tolerance?);
    if (appetite as i32) > (tolerance as i32) {
        v.add(
            format!("{field}.tolerance"),
            format!(
                "must be at or above the appetite ({} is below {})",
                tolerance.as_str(),
                appetite.as_str()
            ),
        );
        return None;
    }
    Some(Thresholds {
        appetite,
        tolerance,
    })
}

fn validate(req: &pb::SummarizeRisksRequest) -> ApiResult<Summarize> {
    let mut v = Violations::new();
    let mut bad_names = 0usize;
    let mut service_id = |v: &mut Violations, field: &str, name: &str| -> Option<String> {
        if bad_names >= MAX_NAME_VIOLATIONS {
            // Past the cap, malformed names are only counted (checked without a violation).
            let mut quiet = Violations::new();
            let id = slug_name(&mut quiet, field, name, "services").map(str::to_string);
            if id.is_none() {
                bad_names += 1;
            }
            return id;
        }
        let id = slug_name(v, field, name, "services").map(str::to_string);
        if id.is_none() {
            bad_names += 1;
        }
        id
    };
    if req.groups.is_empty() {
        v.add("groups", "is required");
    } else if req.groups.len() > MAX_GROUPS {
        v.add(
            "groups",
            format!(
                "must hold at most {MAX_GROUPS} groups (got {})",
                req.groups.len()
            ),
        );
    }
    let mut keys = HashSet::new();
    let mut groups = Vec::with_capacity(req.groups.len().min(MAX_GROUPS));
    for (i, g) in req.groups.iter().enumerate().take(MAX_GROUPS) {
        let field = format!("groups[{i}]");
        let chars = g.key.chars().count();
        if g.key.is_empty() {
            v.add(format!("{field}.key"), "is required");
        } else if chars > MAX_KEY_CHARS {
            v.add(
                format!("{field}.key"),
                format!("must be at most {MAX_KEY_CHARS} characters (got {chars})"),
            );
        } else if g.key.chars().any(char::is_control) {
            v.add(
                format!("{field}.key"),
                "must not contain control characters",
            );
        } else if !keys.insert(g.key.as_str()) {
            v.add(
                format!("{field}.key"),
                format!("repeats the key {:?} of an earlier group", g.key),
            );
        }
        if g.services.len() > MAX_GROUP_SERVICES {
            v.add(
                format!("{field}.services"),
                format!(
                    "must name at most {MAX_GROUP_SERVICES} services (got {})",
                    g.services.len()
                ),
            );
        }
        let mut services = BTreeSet::new();
        for (j, name) in g.services.iter().enumerate().take(MAX_GROUP_SERVICES) {
            if let Some(id) = service_id(&mut v, &format!("{field}.services[{j}]"), name) {
                services.insert(id);
            }
        }
        groups.push((g.key.clone(), services.into_iter().collect()));
    }
    if !(0..=MAX_TOP_N).contains(&req.top_n) {
        v.add(
            "top_n",
            format!(
                "must be between 0 (meaning {DEFAULT_TOP_N}) and {MAX_TOP_N} (got {})",
                req.top_n
            ),
        );
    }
    let mut appetites = HashMap::new();
    let mut judged = HashSet::new();
    for (i, a) in req.appetites.iter().enumerate() {
        let field = format!("appetites[{i}]");
        let service = service_id(&mut v, &format!("{field}.service"), &a.service);
        let t = thresholds(
            &mut v,
            &format!("{field}.thresholds"),
            a.thresholds.as_ref(),
        );
        if let Some(id) = service {
            if !judged.insert(id.clone()) {
                v.add(
                    format!("{field}.service"),
                    format!("repeats services/{id}: each service has one appetite"),
                );
            } else if let Some(t) = t {
                appetites.insert(id, t);
            }
        }
    }
    let default_appetite = req
        .default_appetite
        .as_ref()
        .and_then(|t| thresholds(&mut v, "default_appetite", Some(t)));
    if bad_names > MAX_NAME_VIOLATIONS {
        v.add(
            "groups",
            format!(
                "{} more malformed service names are not listed one by one",
                bad_names - MAX_NAME_VIOLATIONS
            ),
        );
    }
    v.finish()?;
    Ok(Summarize {
        groups,
        top_n: match req.top_n {
            0 => DEFAULT_TOP_N,
            n => usize::try_from(n).unwrap_or(DEFAULT_TOP_N),
        },
        appetites,
        default_appetite,
    })
}

/// A principal scoped to services may name only its own: `PERMISSION_DENIED` naming the first
/// foreign one and the scope.
fn check_scope(caller: &Caller, request: &Summarize) -> ApiResult<()> {
    let Some(scope) = &caller.principal.services else {
        return Ok(());
    };
    let named = request
        .groups
        .iter()
        .flat_map(|(_, services)| services.iter())
        .chain(request.appetites.keys());
    for service in named {
        if !scope.iter().any(|s| s == service) {
            let mine = scope
                .iter()
                .map(|s| format!("services/{s}"))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(ApiError::PermissionDenied(format!(
                "{} may summarise only its own services ({mine}); not services/{service}",
                caller.principal.subject
            )));
        }
    }
    Ok(())
}

fn top_risk(r: &TopRisk) -> pb::TopRisk {
    pb::TopRisk {
        risk: format!("risks/{}", r.id),
        title: r.title.clone(),
        service: format!("services/{}", r.service_id),
        owner: r.owner.clone(),
        score: r.score,
        severity: r.severity,
        status: r.status,
    }
}

fn appetite_status(s: AppetiteStatus) -> pb::AppetiteStatus {
    match s {
        AppetiteStatus::WithinAppetite => pb::AppetiteStatus::WithinAppetite,
        AppetiteStatus::AboveAppetite => pb::AppetiteStatus::AboveAppetite,
        AppetiteStatus::OutsideTolerance => pb::AppetiteStatus::OutsideTolerance,
    }
}

/// The summary of the group `key` of `services` from the services' figures.
fn summarise(
    request: &Summarize,
    figures: &ServiceFigures,
    key: &str,
    services: &[String],
) -> pb::RiskSummary {
    let mut counts = RiskCounts::default();
    let mut appetite = AppetiteCounts::default();
    let mut top: Vec<&TopRisk> = Vec::new();
    for service in services {
        if let Some(c) = figures.counts.get(service) {
            counts.add(c);
            if let Some(t) = request.thresholds(service) {
                appetite.add(&AppetiteCounts::judge(&c.by_severity, &c.treated, t));
            }
        }
        if let Some(list) = figures.top.get(service) {
            top.extend(list.iter().take(request.top_n));
        }
    }
    top.sort_by_key(|r| r.rank());
    top.truncate(request.top_n);
    let in_group: HashSet<&str> = services.iter().map(String::as_str).collect();
    let expiring_exceptions = figures
        .expiring_exceptions
        .iter()
        .filter(|(_, service)| in_group.contains(service.as_str()))
        .map(|(exception, _)| exception)
        .collect::<HashSet<_>>()
        .len();
    pb::RiskSummary {
        key: key.to_string(),
        open_risks: counts.open(),
        unassessed: counts.unassessed,
        by_severity: Severity::ALL
            .iter()
            .map(|s| pb::RiskSeverityCount {
                severity: *s as i32,
                count: counts.by_severity[*s as usize],
            })
            .collect(),
        by_strategy: Strategy::ALL
            .iter()
            .map(|s| pb::StrategyCount {
                strategy: *s as i32,
                count: counts.by_strategy[*s as usize],
            })
            .collect(),
        by_status: RiskStatus::ALL
            .iter()
            .filter(|s| s.is_open())
            .map(|s| pb::StatusCount {
                status: *s as i32,
                count: counts.by_status[*s as usize],
            })
            .collect(),
        heat_map: (1..=5)
            .flat_map(|impact| (1..=5).map(move |likelihood| (impact, likelihood)))
            .map(|(impact, likelihood)| pb::HeatMapCell {
                impact,
                likelihood,
                count: counts.heat[(impact - 1) as usize][(likelihood - 1) as usize],
            })
            .collect(),
        top_risks: top.into_iter().map(top_risk).collect(),
        overdue_reviews: counts.overdue_reviews,
        overdue_action_items: counts.overdue_action_items,
        expiring_acceptances: counts.expiring_acceptances,
        expiring_exceptions: i64::try_from(expiring_exceptions).unwrap_or(i64::MAX),
        appetite: request.judged().then(|| pb::AppetiteSummary {
            status: appetite_status(appetite.status()) as i32,
            within_appetite: appetite.within_appetite,
            above_appetite: appetite.above_appetite,
            outside_tolerance: appetite.outside_tolerance,
            above_appetite_treated: appetite.above_appetite_treated,
        }),
        realizations: counts.realizations,
        failed_control_tests: counts.failed_control_tests,
        risks_with_failed_response: counts.risks_with_failed_response,
    }
}

impl SummaryApi {
    /// `SummarizeRisks` for `caller`.
    pub async fn summarize(
        &self,
        caller: &Caller,
        req: &pb::SummarizeRisksRequest,
    ) -> ApiResult<pb::SummarizeRisksResponse> {
        let request = validate(req)?;
        check_scope(caller, &request)?;
        let on_behalf_of = caller.on_behalf_of.as_deref().unwrap_or_default();
        tracing::info!(
            principal = %caller.principal.subject,
            on_behalf_of,
            groups = request.groups.len(),
            "SummarizeRisks"
        );
        let services: BTreeSet<String> = request
            .groups
            .iter()
            .flat_map(|(_, services)| services.iter().cloned())
            .collect();
        let figures = self
            .store
            .cached_summary_figures(&services, request.top_n, self.clock.now_micros())
            .await?;
        Ok(pb::SummarizeRisksResponse {
            summaries: request
                .groups
                .iter()
                .map(|(key, services)| summarise(&request, &figures, key, services))
                .collect(),
        })
    }
}

#[tonic::async_trait]
impl RiskSummaryService for SummaryApi {
    async fn summarize_risks(
        &self,
        request: Request<pb::SummarizeRisksRequest>,
    ) -> Result<Response<pb::SummarizeRisksResponse>, Status> {
        let caller = Caller::of(&request)?;
        Ok(Response::new(
            self.summarize(&caller, request.get_ref()).await?,
        ))
    }
    async fn list_report_risks(
        &self,
        request: Request<pb::ListReportRisksRequest>,
    ) -> Result<Response<pb::ListReportRisksResponse>, Status> {
        let caller = Caller::of(&request)?;
        let rows = super::report_rows::list(&self.store, &self.clock, &caller, request.get_ref());
        Ok(Response::new(rows.await?))
    }
}

// The proto's severity numbers are the domain's.
const _: () = assert!(tv::Severity::Critical as i32 == Severity::Critical as i32);
