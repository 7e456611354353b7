//! Incidents and their phases: declare, read, list, update (with the severity rule), advance
//! through the phase machine, close.

use std::collections::HashSet;

use super::pb;
use assurance_runtime::idempotency::{Outcome, RequestKey};
use assurance_runtime::list::{FilterContext, ListQuery, ListRequest};
use assurance_runtime::{
    ApiError, ApiResult,
    auth::Caller,
    time::{from_timestamp, now_micros},
    validate::{Violations, is_slug, name_id, slug_name, update_paths},
};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{IncidentApi, convert, incident_id, incident_time};
use crate::{
    domain::{
        phase::{self, Classification, Direction, Phase},
        priority::{self, Factors, FunctionalImpact, InformationImpact, Recoverability},
        task::TaskStatus,
        timeline::TimelineKind,
    },
    store::{
        Change, INCIDENT_FILTER, INCIDENT_SORTING, entities::incident, incident_keys, parse_etag,
        phase_of, refuse_if_closed,
    },
};

const MAX_SERVICES: usize = 100;

const UPDATABLE: &[&str] = &[
    "title",
    "summary",
    "classification",
    "severity",
    "functional_impact",
    "information_impacts",
    "recoverability",
    "customer_data_affected",
    "affected_services",
    "detection_source",
    "incident_type",
    "occur_time",
    "detect_time",
    "risk_links",
];

use crate::store::MAX_RISK_LINKS;

/// `Incident.risk_links`: `risks/{uuid}` names, each once, with a relation; at most 100.
/// Returns the stored form: (risk id, relation) in the order given.
fn check_risk_links(v: &mut Violations, links: &[pb::RiskLink]) -> Vec<(String, i32)> {
    if links.len() > MAX_RISK_LINKS {
        v.add(
            "incident.risk_links",
            format!("must hold at most {MAX_RISK_LINKS} links"),
        );
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (n, link) in links.iter().enumerate() {
        let field = format!("incident.risk_links[{n}].risk");
        let id = if link.risk.is_empty() {
            v.add(&field, "is required");
            None
        } else {
            let id = name_id(&link.risk, "risks").and_then(|id| Uuid::parse_str(id).ok());
            if id.is_none() {
                v.add(&field, "must be a risk name `risks/{id}` with a UUID id");
            }
            id
        };
        if let Some(id) = id
            && !seen.insert(id)
        {
            v.add(&field, "is linked twice");
        }
        let relation_field = format!("incident.risk_links[{n}].relation");
        let relation = v.enumeration::<pb::RiskLinkRelation>(&relation_field, link.relation);
        if let (Some(id), Some(relation)) = (id, relation) {
            out.push((id.to_string(), relation as i32));
        }
    }
    out
}

/// Checks one mutable field of an incident in `input`; the services field yields their ids.
/// `horizon` bounds how far in the past the occurred and detected times may lie.
fn check_field(
    v: &mut Violations,
    i: &pb::Incident,
    field: &str,
    horizon: i64,
) -> Option<Vec<String>> {
    let now = now_micros();
    match field {
        "title" => v.line("incident.title", &i.title, true, 200),
        "summary" => v.paragraph("incident.summary", &i.summary, false, 10_000),
        "classification" => {
            v.enumeration::<Classification>("incident.classification", i.classification);
        }
        "severity" if i.severity != 0 && pb::Severity::try_from(i.severity).is_err() => {
            v.add(
                "incident.severity",
                format!("{} is not a known value", i.severity),
            );
        }
        "functional_impact" => {
            v.enumeration::<FunctionalImpact>("incident.functional_impact", i.functional_impact);
        }
        "information_impacts" => {
            let mut parsed = Vec::new();
            for (n, raw) in i.information_impacts.iter().enumerate() {
                match InformationImpact::try_from(*raw) {
                    Ok(x) => parsed.push(x),
                    Err(_) => v.add(
                        format!("incident.information_impacts[{n}]"),
                        "is not a known value (UNSPECIFIED is not accepted)",
                    ),
                }
            }
            if parsed.len() == i.information_impacts.len() {
                match priority::check_information(&parsed) {
                    Ok(()) => {}
                    Err(priority::InformationError::Empty) => v.add(
                        "incident.information_impacts",
                        "is required (one or more; NONE when nothing was compromised)",
                    ),
                    Err(priority::InformationError::NoneWithOthers) => v.add(
                        "incident.information_impacts",
                        "NONE cannot combine with other impacts",
                    ),
                    Err(priority::InformationError::Repeated) => {
                        v.add("incident.information_impacts", "names an impact twice")
                    }
                }
            }
        }
        "recoverability" => {
            v.enumeration::<Recoverability>("incident.recoverability", i.recoverability);
        }
        "affected_services" => {
            if i.affected_services.len() > MAX_SERVICES {
                v.add(
                    "incident.affected_services",
                    format!("must name at most {MAX_SERVICES} services"),
                );
            }
            let mut seen = HashSet::new();
            let mut ids = Vec::new();
            for (n, s) in i.affected_services.iter().enumerate() {
                let field = format!("incident.affected_services[{n}]");
                if let Some(id) = slug_name(v, &field, s, "services") {
                    if !seen.insert(id) {
                        v.add(field, "is listed twice");
                    }
                    ids.push(id.to_string());
                }
            }
            return Some(ids);
        }
        "detection_source" => v.line("incident.detection_source", &i.detection_source, false, 500),
        "incident_type" if !i.incident_type.is_empty() && !is_slug(&i.incident_type) => {
            v.add(
                "incident.incident_type",
                "must be a lowercase slug such as `credential-compromise`",
            );
        }
        "occur_time" => {
            let field = "incident.occur_time";
            incident_time(v, field, i.occur_time.as_ref(), now, horizon);
        }
        "detect_time" => {
            let field = "incident.detect_time";
            let detect = incident_time(v, field, i.detect_time.as_ref(), now, horizon);
            let occur = i.occur_time.as_ref().and_then(from_timestamp);
            if let (Some(o), Some(d)) = (occur, detect)
                && o > d
            {
                v.add("incident.occur_time", "must not be after detect_time");
            }
        }
        _ => {}
    }
    None
}

fn factors(m: &incident::Model) -> Option<Factors> {
    Some(Factors {
        functional: FunctionalImpact::try_from(m.functional_impact).ok()?,
        information: m
            .information_impacts
            .split(',')
            .filter_map(|s| s.parse::<i32>().ok())
            .filter_map(|n| InformationImpact::try_from(n).ok())
            .collect(),
        recoverability: Recoverability::try_from(m.recoverability).ok()?,
        customer_data_affected: m.customer_data_affected,
    })
}

fn impacts_text(raw: &[i32]) -> String {
    let mut v = raw.to_vec();
    v.sort_unstable();
    v.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

impl IncidentApi {
    /// Incidents as the API returns them, with their risk links (one query for all).
    pub(super) async fn incidents_out(
        &self,
        rows: &[incident::Model],
    ) -> ApiResult<Vec<pb::Incident>> {
        let ids: Vec<Uuid> = rows.iter().map(|m| m.id).collect();
        let mut links = self.store.risk_links(&ids).await?;
        Ok(rows
            .iter()
            .map(|m| {
                let mut out = convert::incident(m);
                out.risk_links = links
                    .remove(&m.id)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|l| pb::RiskLink {
                        risk: format!("risks/{}", l.risk_id),
                        relation: l.relation,
                    })
                    .collect();
                out
            })
            .collect())
    }

    pub(super) async fn incident_out(&self, m: &incident::Model) -> ApiResult<pb::Incident> {
        let mut out = self.incidents_out(std::slice::from_ref(m)).await?;
        out.pop()
            .ok_or_else(|| ApiError::Internal("incident lost".into()))
    }

    /// The incident a decision left: the one it wrote, or for a retry the incident as it is now.
    async fn decided(
        &self,
        id: Uuid,
        outcome: Outcome<incident::Model>,
    ) -> ApiResult<incident::Model> {
        match outcome {
            Outcome::Created(m) => Ok(m),
            Outcome::Replayed(_) => self.store.get(id).await,
        }
    }

    /// Severity: explicit when overridden, else derived by the rule.
    fn settle_severity(&self, m: &mut incident::Model) {
        if !m.severity_overridden
            && let Some(f) = factors(m)
        {
            m.severity = self.rule.severity(&f) as i32;
        }
    }
}

/// The paths of a closed incident an admin may still repair.
const REPAIRABLE: &[&str] = &["occur_time", "detect_time"];

/// A closed incident changes only by an admin's repair of its occurred and detected times;
/// anything else is `FAILED_PRECONDITION` (`INCIDENT_CLOSED`) naming what is still possible.
fn refuse_unless_repair(m: &incident::Model, caller: &Caller, paths: &[&str]) -> ApiResult<()> {
    let admin = caller
        .principal
        .roles
        .contains(assurance_runtime::auth::Role::Admin);
    if admin && paths.iter().all(|p| REPAIRABLE.contains(p)) {
        return Ok(());
    }
    let mut refusal = refuse_if_closed(m).err().unwrap_or_else(|| {
        ApiError::precondition(
            assurance_runtime::Reason::IncidentClosed,
            format!("incidents/{} is CLOSED", m.id),
        )
    });
    if let ApiError::FailedPrecondition { message, .. } = &mut refusal {
        message.push_str(
            "; only an admin may still repair its occur_time and detect_time (UpdateIncident)",
        );
    }
    Err(refusal)
}

/// The timeline summary of a repair: each time that changed, before and after.
fn repair_summary(before: (Option<i64>, i64), after: (Option<i64>, i64)) -> String {
    let text = |t: Option<i64>| {
        t.map(|t| assurance_runtime::time::to_timestamp(t).to_string())
            .unwrap_or_else(|| "unset".into())
    };
    let mut changes = Vec::new();
    if before.0 != after.0 {
        changes.push(format!("occur_time {} → {}", text(before.0), text(after.0)));
    }
    if before.1 != after.1 {
        changes.push(format!(
            "detect_time {} → {}",
            text(Some(before.1)),
            text(Some(after.1))
        ));
    }
    if changes.is_empty() {
        changes.push("no time changed".into());
    }
    format!("repaired the closed incident's {}", changes.join(", "))
}

fn refusal(r: phase::Refusal) -> ApiError {
    let allowed: Vec<&str> = r.allowed.iter().map(String::as_str).collect();
    ApiError::illegal_move(
        assurance_runtime::Reason::IllegalPhaseMove,
        r.message,
        &r.phase.to_string(),
        &allowed,
    )
}

fn classification_of(m: &incident::Model) -> ApiResult<Classification> {
    Classification::try_from(m.classification)
        .map_err(|_| ApiError::Internal(format!("incident {} has unknown classification", m.id)))
}

impl IncidentApi {
    pub(super) async fn incidents_declare(
        &self,
        request: Request<pb::DeclareIncidentRequest>,
    ) -> Result<Response<pb::Incident>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        v.request_id("request_id", &req.request_id);
        let i = &v.message("incident", req.incident.clone());
        let mut services = Vec::new();
        let horizon = self.preparation.horizon_micros();
        // Risk links are set with UpdateIncident (and, later, by the events relay).
        for field in UPDATABLE.iter().filter(|f| **f != "risk_links") {
            if let Some(ids) = check_field(&mut v, i, field, horizon) {
                services = ids;
            }
        }
        v.finish()?;
        self.check_registry(&services).await?;
        let now = now_micros();
        let mut model = incident::Model {
            id: Uuid::now_v7(),
            title: i.title.clone(),
            summary: i.summary.clone(),
            incident_type: i.incident_type.clone(),
            classification: i.classification,
            severity: i.severity,
            severity_overridden: i.severity != 0,
            functional_impact: i.functional_impact,
            information_impacts: impacts_text(&i.information_impacts),
            recoverability: i.recoverability,
            customer_data_affected: i.customer_data_affected,
            affected_services: services.join(","),
            detection_source: i.detection_source.clone(),
            phase: Phase::DetectionAnalysis as i32,
            occur_time: i.occur_time.as_ref().and_then(from_timestamp),
            detect_time: i
                .detect_time
                .as_ref()
                .and_then(from_timestamp)
                .unwrap_or(now),
            declare_time: 0,
            contain_time: None,
            eradicate_time: None,
            recover_time: None,
            post_incident_time: None,
            close_time: None,
            resolution: String::new(),
            review_complete: false,
            timeline_seq: 0,
            version: 0,
            create_time: 0,
            update_time: 0,
        };
        self.settle_severity(&mut model);
        let key = RequestKey::for_request("DeclareIncident", &caller, req, |r| &mut r.request_id);
        let tasks = self
            .preparation
            .template(&model.incident_type)
            .map(|template| {
                template
                    .tasks
                    .iter()
                    .map(|t| crate::store::entities::task::Model {
                        id: Uuid::now_v7(),
                        incident_id: model.id,
                        phase: t.phase as i32,
                        owner_team: t.owner as i32,
                        title: t.title.clone(),
                        description: t.description.clone(),
                        assignee: String::new(),
                        status: TaskStatus::Open as i32,
                        from_template: true,
                        version: 0,
                        create_time: 0,
                        update_time: 0,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let created = self
            .store
            .declare(model, services, tasks, &caller, key)
            .await?;
        Ok(Response::new(convert::incident(&created)))
    }

    pub(super) async fn incidents_get(
        &self,
        request: Request<pb::GetIncidentRequest>,
    ) -> Result<Response<pb::Incident>, Status> {
        let caller = Caller::of(&request)?;
        let mut v = Violations::new();
        let id = incident_id(&mut v, "name", &request.get_ref().name);
        v.finish()?;
        let m = self.visible(&caller, id.unwrap_or_default()).await?;
        Ok(Response::new(self.incident_out(&m).await?))
    }

    pub(super) async fn incidents_list(
        &self,
        request: Request<pb::ListIncidentsRequest>,
    ) -> Result<Response<pb::ListIncidentsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let query = ListQuery::parse(
            &mut v,
            &ListRequest {
                scope: &["incidents"],
                page_size: req.page_size,
                page_token: &req.page_token,
                filter: &req.filter,
                order_by: &req.order_by,
            },
            Some(&INCIDENT_FILTER.at(FilterContext::default())),
            &INCIDENT_SORTING,
        );
        v.finish()?;
        let mut rows = self.store.list(&query, caller.read_scope()).await?;
        let next_page_token = query.next_page(&mut rows, |r| incident_keys(&query, r));
        Ok(Response::new(pb::ListIncidentsResponse {
            incidents: self.incidents_out(&rows).await?,
            next_page_token,
        }))
    }

    pub(super) async fn incidents_update(
        &self,
        request: Request<pb::UpdateIncidentRequest>,
    ) -> Result<Response<pb::Incident>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let i = v.message("incident", req.incident);
        let id = incident_id(&mut v, "incident.name", &i.name);
        let paths = update_paths(req.update_mask.as_ref(), UPDATABLE, |p| match p {
            "title" => !i.title.is_empty(),
            "summary" => !i.summary.is_empty(),
            "classification" => i.classification != 0,
            "severity" => i.severity != 0,
            "functional_impact" => i.functional_impact != 0,
            "information_impacts" => !i.information_impacts.is_empty(),
            "recoverability" => i.recoverability != 0,
            "customer_data_affected" => i.customer_data_affected,
            "affected_services" => !i.affected_services.is_empty(),
            "detection_source" => !i.detection_source.is_empty(),
            "incident_type" => !i.incident_type.is_empty(),
            "occur_time" => i.occur_time.is_some(),
            "detect_time" => i.detect_time.is_some(),
            "risk_links" => !i.risk_links.is_empty(),
            _ => false,
        })?;
        if paths.is_empty() {
            v.add("update_mask", "names no field to update");
        }
        let mut services = None;
        let horizon = self.preparation.horizon_micros();
        for p in &paths {
            if let Some(ids) = check_field(&mut v, &i, p, horizon) {
                services = Some(ids);
            }
        }
        let links = paths
            .contains(&"risk_links")
            .then(|| check_risk_links(&mut v, &i.risk_links));
        let expected = v
            .absorb("incident.etag", parse_etag("incident.etag", &i.etag))
            .flatten();
        v.finish()?;
        if let Some(ids) = &services {
            self.check_registry(ids).await?;
        }
        let updated = self
            .store
            .modify(id.unwrap_or_default(), expected, &caller, async |tx, m| {
                let repair = m.phase == Phase::Closed as i32;
                if repair {
                    refuse_unless_repair(m, &caller, &paths)?;
                }
                let (before, times_before) = (m.severity, (m.occur_time, m.detect_time));
                for p in &paths {
                    match *p {
                        "title" => m.title = i.title.clone(),
                        "summary" => m.summary = i.summary.clone(),
                        "classification" => m.classification = i.classification,
                        "severity" => {
                            m.severity_overridden = i.severity != 0;
                            m.severity = i.severity;
                        }
                        "functional_impact" => m.functional_impact = i.functional_impact,
                        "information_impacts" => {
                            m.information_impacts = impacts_text(&i.information_impacts)
                        }
                        "recoverability" => m.recoverability = i.recoverability,
                        "customer_data_affected" => {
                            m.customer_data_affected = i.customer_data_affected
                        }
                        "affected_services" => {
                            m.affected_services = services.clone().unwrap_or_default().join(",")
                        }
                        "detection_source" => m.detection_source = i.detection_source.clone(),
                        "incident_type" => m.incident_type = i.incident_type.clone(),
                        "occur_time" => {
                            m.occur_time = i.occur_time.as_ref().and_then(from_timestamp)
                        }
                        "detect_time" => {
                            if let Some(t) = i.detect_time.as_ref().and_then(from_timestamp) {
                                m.detect_time = t;
                            }
                        }
                        _ => {}
                    }
                }
                if let Some(o) = m.occur_time
                    && o > m.detect_time
                {
                    return Err(ApiError::invalid(
                        "incident.occur_time",
                        "must not be after detect_time",
                    ));
                }
                self.settle_severity(m);
                if let Some(links) = &links {
                    crate::store::replace_risk_links(tx, m, links).await?;
                }
                let mut summary = if repair {
                    repair_summary(times_before, (m.occur_time, m.detect_time))
                } else {
                    format!("updated {}", paths.join(", "))
                };
                if m.severity != before {
                    summary.push_str(&format!(
                        "; severity {} → {}",
                        convert::severity_name(before),
                        convert::severity_name(m.severity)
                    ));
                }
                Ok(Change {
                    kind: TimelineKind::Updated,
                    summary,
                    services: services.clone(),
                })
            })
            .await?;
        Ok(Response::new(self.incident_out(&updated).await?))
    }

    pub(super) async fn incidents_advance_phase(
        &self,
        request: Request<pb::AdvancePhaseRequest>,
    ) -> Result<Response<pb::Incident>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let id = incident_id(&mut v, "name", &req.name);
        let target = if req.target_phase == 0 {
            v.add(
                "target_phase",
                "is required (the _UNSPECIFIED value is not accepted)",
            );
            None
        } else {
            let t = Phase::try_from(req.target_phase).ok();
            if t.is_none() {
                v.add(
                    "target_phase",
                    format!("{} is not a known value", req.target_phase),
                );
            }
            t
        };
        v.paragraph("reason", &req.reason, false, 2000);
        v.request_id("request_id", &req.request_id);
        let expected = v.absorb("etag", parse_etag("etag", &req.etag)).flatten();
        v.finish()?;
        let target = target.unwrap_or(Phase::DetectionAnalysis);
        let key = RequestKey::for_request("AdvancePhase", &caller, &req, |r| &mut r.request_id);
        let id = id.unwrap_or_default();
        let outcome = self
            .store
            .decide(id, expected, &caller, key, async |_, m| {
                let from = phase_of(m)?;
                let direction =
                    phase::check_advance(from, target, classification_of(m)?, m.review_complete)
                        .map_err(refusal)?;
                if direction == Direction::Back && req.reason.trim().is_empty() {
                    return Err(ApiError::invalid(
                        "reason",
                        format!("is required to return to {target}"),
                    ));
                }
                let now = now_micros();
                let first_entry = match target {
                    Phase::Containment => &mut m.contain_time,
                    Phase::Eradication => &mut m.eradicate_time,
                    Phase::Recovery => &mut m.recover_time,
                    Phase::PostIncident => &mut m.post_incident_time,
                    Phase::DetectionAnalysis | Phase::Closed => &mut None,
                };
                first_entry.get_or_insert(now);
                m.phase = target as i32;
                let mut summary = format!("phase {from} → {target}");
                if !req.reason.trim().is_empty() {
                    summary.push_str(&format!(": {}", req.reason.trim()));
                }
                Ok(Change {
                    kind: TimelineKind::PhaseChanged,
                    summary,
                    services: None,
                })
            })
            .await?;
        let updated = self.decided(id, outcome).await?;
        Ok(Response::new(self.incident_out(&updated).await?))
    }

    pub(super) async fn incidents_close(
        &self,
        request: Request<pb::CloseIncidentRequest>,
    ) -> Result<Response<pb::Incident>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let id = incident_id(&mut v, "name", &req.name);
        v.paragraph("resolution", &req.resolution, true, 4000);
        v.request_id("request_id", &req.request_id);
        let expected = v.absorb("etag", parse_etag("etag", &req.etag)).flatten();
        v.finish()?;
        let key = RequestKey::for_request("CloseIncident", &caller, &req, |r| &mut r.request_id);
        let id = id.unwrap_or_default();
        let outcome = self
            .store
            .decide(id, expected, &caller, key, async |_, m| {
                phase::check_close(phase_of(m)?, classification_of(m)?, m.review_complete)
                    .map_err(refusal)?;
                m.phase = Phase::Closed as i32;
                m.close_time = Some(now_micros());
                m.resolution = req.resolution.clone();
                Ok(Change {
                    kind: TimelineKind::Closed,
                    summary: format!("closed: {}", req.resolution.trim()),
                    services: None,
                })
            })
            .await?;
        let closed = self.decided(id, outcome).await?;
        Ok(Response::new(self.incident_out(&closed).await?))
    }

    pub(super) async fn incidents_link_risk(
        &self,
        request: Request<pb::LinkIncidentRiskRequest>,
    ) -> Result<Response<pb::Incident>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let id = incident_id(&mut v, "name", &req.name);
        let risk = if req.risk.is_empty() {
            v.add("risk", "is required");
            None
        } else {
            let risk = name_id(&req.risk, "risks").and_then(|id| Uuid::parse_str(id).ok());
            if risk.is_none() {
                v.add("risk", "must be a risk name `risks/{id}` with a UUID id");
            }
            risk
        };
        match pb::RiskLinkRelation::try_from(req.relation) {
            Ok(pb::RiskLinkRelation::Realized | pb::RiskLinkRelation::Related) => {}
            Ok(pb::RiskLinkRelation::Identified) => v.add(
                "relation",
                "IDENTIFIED links come from the post-incident review's identified risks; \
                 link an existing risk as REALIZED or RELATED",
            ),
            _ => v.add("relation", "is required: REALIZED or RELATED"),
        }
        v.request_id("request_id", &req.request_id);
        let expected = v.absorb("etag", parse_etag("etag", &req.etag)).flatten();
        v.finish()?;
        let risk = risk.unwrap_or_default().to_string();
        let key = RequestKey::for_request("LinkIncidentRisk", &caller, &req, |r| &mut r.request_id);
        let id = id.unwrap_or_default();
        let mut links: Vec<(String, i32)> = self
            .store
            .risk_links(&[id])
            .await?
            .remove(&id)
            .unwrap_or_default()
            .into_iter()
            .map(|l| (l.risk_id, l.relation))
            .collect();
        match links.iter_mut().find(|(r, _)| *r == risk) {
            Some(link) => link.1 = req.relation,
            None => links.push((risk.clone(), req.relation)),
        }
        if links.len() > MAX_RISK_LINKS {
            return Err(ApiError::invalid(
                "risk",
                format!("the incident already has {MAX_RISK_LINKS} risk links, the most it keeps"),
            )
            .into());
        }
        let relation = pb::RiskLinkRelation::try_from(req.relation).map_or("UNKNOWN", |r| {
            r.as_str_name().trim_start_matches("RISK_LINK_RELATION_")
        });
        let outcome = self
            .store
            .decide(id, expected, &caller, key, async |tx, m| {
                refuse_if_closed(m)?;
                crate::store::replace_risk_links(tx, m, &links).await?;
                Ok(Change {
                    kind: TimelineKind::Updated,
                    summary: format!("risk linked: risks/{risk} ({relation})"),
                    services: None,
                })
            })
            .await?;
        let linked = self.decided(id, outcome).await?;
        Ok(Response::new(self.incident_out(&linked).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::repair_summary;

    #[test]
    fn a_repair_names_each_time_before_and_after_even_an_impossible_one() {
        let ancient = -9_120_000_000_000_000_000;
        let text = repair_summary((Some(ancient), 0), (Some(1_000_000), 0));
        assert!(
            text.starts_with("repaired the closed incident's occur_time -"),
            "{text}"
        );
        assert!(text.ends_with("→ 1970-01-01T00:00:01Z"), "{text}");
        let text = repair_summary((Some(i64::MIN), i64::MAX), (None, 0));
        assert!(
            text.contains("→ unset") && text.contains("detect_time"),
            "{text}"
        );
    }
}
