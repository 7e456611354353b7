//! `assurance.incident.v1.IncidentSummaryService`: the incident half of the ERM posture, the
//! figures of groups of services (`SummarizeIncidents`). The gateway calls it for each node of
//! its roll-up tree — over gRPC, or in-process through [`SummaryApi`] in `gateway --embedded`.

use std::collections::{BTreeSet, HashMap};

use assurance_proto::incident::v1::incident_summary_service_server::IncidentSummaryService;
use assurance_runtime::{
    ApiError, ApiResult,
    auth::Caller,
    time::{now_micros, to_timestamp},
    validate::{Violations, slug_name},
};
use tonic::{Request, Response, Status};

use super::{convert, pb};
use crate::store::{
    Store,
    summary::{Group, SummaryQuery},
};

const MAX_GROUPS: usize = 1000;
const MAX_KEY_CHARS: usize = 200;
const MAX_GROUP_SERVICES: usize = 5000;
const MAX_TOP_N: i32 = 100;
/// The KPI period when `start_time` is not given: the 90 days before `end_time`.
const DEFAULT_PERIOD_MICROS: i64 = 90 * 86_400 * 1_000_000;

/// The handlers of `IncidentSummaryService`.
#[derive(Clone)]
pub struct SummaryApi {
    store: Store,
}

impl SummaryApi {
    pub fn new(store: Store) -> Self {
        SummaryApi { store }
    }

    /// `SummarizeIncidents`: validates every group (all violations at once), keeps a scoped
    /// caller to its own services, and answers each group's figures in the request's order.
    pub async fn summarize(
        &self,
        request: Request<pb::SummarizeIncidentsRequest>,
    ) -> Result<Response<pb::SummarizeIncidentsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let query = check(req, now_micros())?;
        in_scope(&caller, &query.groups)?;
        tracing::info!(
            principal = %caller.principal.subject,
            on_behalf_of = caller.on_behalf_of.as_deref().unwrap_or_default(),
            groups = query.groups.len(),
            "summarising incidents"
        );
        let figures = self.store.summarize(&query).await?;
        Ok(Response::new(pb::SummarizeIncidentsResponse {
            summaries: req
                .groups
                .iter()
                .zip(&figures)
                .map(|(g, f)| convert::incident_summary(&g.key, f))
                .collect(),
            start_time: Some(to_timestamp(query.start)),
            end_time: Some(to_timestamp(query.end)),
        }))
    }
}

#[tonic::async_trait]
impl IncidentSummaryService for SummaryApi {
    async fn summarize_incidents(
        &self,
        request: Request<pb::SummarizeIncidentsRequest>,
    ) -> Result<Response<pb::SummarizeIncidentsResponse>, Status> {
        self.summarize(request).await
    }
}

/// The query a request asks for, or every violation of it.
fn check(req: &pb::SummarizeIncidentsRequest, now: i64) -> ApiResult<SummaryQuery> {
    let mut v = Violations::new();
    if req.groups.is_empty() {
        v.add("groups", format!("is required (1–{MAX_GROUPS} groups)"));
    } else if req.groups.len() > MAX_GROUPS {
        v.add(
            "groups",
            format!(
                "must hold at most {MAX_GROUPS} groups (got {})",
                req.groups.len()
            ),
        );
    }
    let mut keys: HashMap<&str, usize> = HashMap::new();
    let mut groups = Vec::with_capacity(req.groups.len());
    for (n, g) in req.groups.iter().enumerate() {
        let key_field = format!("groups[{n}].key");
        v.line(&key_field, &g.key, true, MAX_KEY_CHARS);
        if !g.key.is_empty()
            && let Some(first) = keys.get(g.key.as_str())
        {
            v.add(&key_field, format!("repeats the key of groups[{first}]"));
        } else {
            keys.insert(&g.key, n);
        }
        if g.services.len() > MAX_GROUP_SERVICES {
            v.add(
                format!("groups[{n}].services"),
                format!(
                    "must name at most {MAX_GROUP_SERVICES} services (got {})",
                    g.services.len()
                ),
            );
        }
        // A service listed twice counts once.
        let mut services = BTreeSet::new();
        for (j, s) in g.services.iter().take(MAX_GROUP_SERVICES).enumerate() {
            if let Some(id) =
                slug_name(&mut v, &format!("groups[{n}].services[{j}]"), s, "services")
            {
                services.insert(id.to_string());
            }
        }
        groups.push(Group {
            services: services.into_iter().collect(),
            complement: g.complement,
        });
    }
    if !(0..=MAX_TOP_N).contains(&req.top_n) {
        v.add(
            "top_n",
            format!("must be between 0 and {MAX_TOP_N} (got {})", req.top_n),
        );
    }
    let mut time = |field: &str, ts: Option<&prost_types::Timestamp>| match ts {
        None => None,
        Some(ts) => v.timestamp(field, ts),
    };
    let end = time("end_time", req.end_time.as_ref());
    let start = time("start_time", req.start_time.as_ref());
    let end = match (&req.end_time, end) {
        (None, _) => Some(now),
        (Some(_), end) => end,
    };
    let start = match (&req.start_time, start) {
        (None, _) => end.map(|e| e.saturating_sub(DEFAULT_PERIOD_MICROS)),
        (Some(_), start) => start,
    };
    if let (Some(s), Some(e)) = (start, end)
        && s >= e
    {
        v.add("start_time", "must be before end_time");
    }
    v.finish()?;
    match (start, end) {
        (Some(start), Some(end)) => Ok(SummaryQuery {
            groups,
            start,
            end,
            top_n: u32::try_from(req.top_n).unwrap_or(0),
        }),
        _ => Err(ApiError::Internal("period lost in validation".into())),
    }
}

/// `PERMISSION_DENIED` unless the caller may see every group: a principal scoped to services
/// names only its own services and no complement (which would reach every other service).
fn in_scope(caller: &Caller, groups: &[Group]) -> ApiResult<()> {
    let Some(scope) = &caller.principal.services else {
        return Ok(());
    };
    let allowed = || {
        scope
            .iter()
            .map(|s| format!("services/{s}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if groups.iter().any(|g| g.complement) {
        return Err(ApiError::PermissionDenied(format!(
            "{} is scoped to {} and may not summarise a complement group (it reaches every \
             other service)",
            caller.principal.subject,
            allowed()
        )));
    }
    let outside: BTreeSet<&str> = groups
        .iter()
        .flat_map(|g| g.services.iter())
        .map(String::as_str)
        .filter(|s| !caller.in_scope(s))
        .collect();
    if outside.is_empty() {
        return Ok(());
    }
    Err(ApiError::PermissionDenied(format!(
        "{} may summarise only {}; not {}",
        caller.principal.subject,
        allowed(),
        outside
            .iter()
            .map(|s| format!("services/{s}"))
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use assurance_runtime::error::Violation;

    fn group(key: &str, services: &[&str]) -> pb::IncidentGroup {
        pb::IncidentGroup {
            key: key.into(),
            services: services.iter().map(|s| s.to_string()).collect(),
            complement: false,
        }
    }

    fn fields(req: &pb::SummarizeIncidentsRequest) -> Vec<String> {
        match check(req, 1_000_000_000_000_000) {
            Err(ApiError::InvalidArgument(list)) => list
                .into_iter()
                .map(|Violation { field, .. }| field)
                .collect(),
            other => panic!("expected violations, got {other:?}"),
        }
    }

    #[test]
    fn every_violation_at_once() {
        let req = pb::SummarizeIncidentsRequest {
            groups: vec![
                group("a", &["services/ok", "exchange"]),
                group("a", &[]),
                group("", &["services/Bad"]),
            ],
            top_n: 101,
            start_time: Some(prost_types::Timestamp {
                seconds: 20,
                nanos: 0,
            }),
            end_time: Some(prost_types::Timestamp {
                seconds: 10,
                nanos: 0,
            }),
        };
        assert_eq!(
            fields(&req),
            [
                "groups[0].services[1]",
                "groups[1].key",
                "groups[2].key",
                "groups[2].services[0]",
                "top_n",
                "start_time"
            ]
        );
        assert_eq!(
            fields(&pb::SummarizeIncidentsRequest::default()),
            ["groups"]
        );
    }

    #[test]
    fn period_defaults_to_the_ninety_days_before_end() {
        let now = 1_000_000_000_000_000;
        let req = pb::SummarizeIncidentsRequest {
            groups: vec![group("a", &["services/x", "services/x"])],
            ..Default::default()
        };
        let q = check(&req, now).expect("valid");
        assert_eq!((q.start, q.end), (now - DEFAULT_PERIOD_MICROS, now));
        assert_eq!(q.groups[0].services, ["x"]);
    }
}
