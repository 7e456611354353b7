//! gRPC handlers of `assurance.incident.v1.IncidentService`: validation, mapping to and from
//! the protos, and calls into the store.

mod convert;
mod report;
mod review;

use std::{collections::HashSet, sync::Arc};

use assurance_proto::incident::v1::{self as pb, incident_service_server::IncidentService};
use assurance_runtime::{
    ApiError, ApiResult,
    auth::Caller,
    filter,
    idempotency::RequestKey,
    page,
    time::{from_timestamp, now_micros},
    validate::{Violations, is_slug, name_id, slug_name, update_paths},
};
use prost::Message;

use crate::domain::preparation::Preparation;
use sea_orm::{ColumnTrait, Condition, Order};
use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    domain::{
        indicator,
        phase::{self, Classification, Direction, Phase},
        priority::{
            self, Factors, FunctionalImpact, InformationImpact, Recoverability, SeverityRule,
        },
    },
    store::{
        Change, IncidentFilter, IncidentOrder, ListIncidents, Store, TimelineKind,
        entities::incident, parse_etag,
    },
};

/// Clock skew tolerated on client-supplied times.
const SKEW_MICROS: i64 = 5 * 60 * 1_000_000;
const MAX_SERVICES: usize = 100;

pub struct IncidentApi {
    store: Store,
    rule: Arc<SeverityRule>,
    preparation: Arc<Preparation>,
}

impl IncidentApi {
    pub fn new(store: Store, rule: Arc<SeverityRule>, preparation: Arc<Preparation>) -> Self {
        IncidentApi {
            store,
            rule,
            preparation,
        }
    }
}

const TASK_UPDATABLE: &[&str] = &["title", "description", "assignee", "status"];

/// `incidents/{id}/tasks/{id}` → both ids, or a violation on `field`.
fn task_name(v: &mut Violations, field: &str, name: &str) -> Option<(Uuid, Uuid)> {
    let parsed = name.split_once("/tasks/").and_then(|(incident, item)| {
        let incident = name_id(incident, "incidents").and_then(|id| Uuid::parse_str(id).ok())?;
        Some((incident, Uuid::parse_str(item).ok()?))
    });
    if parsed.is_none() {
        v.add(field, "must be `incidents/{id}/tasks/{id}` with UUID ids");
    }
    parsed
}

/// The AIP-160 fields of `ListTasks`.
struct TaskFilter;

impl filter::FilterSchema for TaskFilter {
    fn compare(&self, field: &str, op: filter::Op, value: &str) -> Result<Condition, String> {
        use crate::store::entities::task::Column as C;
        use filter::{compare, enum_value, equality_only};
        equality_only(field, op)?;
        let bad = |allowed: &str| format!("`{value}` is not a valid {field}; one of {allowed}");
        match field {
            "phase" => {
                let v = enum_value(value, "PHASE_", |s| {
                    pb::Phase::from_str_name(s).map(|e| e as i32)
                })
                .ok_or_else(|| {
                    bad("DETECTION_ANALYSIS, CONTAINMENT, ERADICATION, RECOVERY, POST_INCIDENT")
                })?;
                Ok(compare(C::Phase, op, v.into()))
            }
            "owner_team" => {
                let v = enum_value(value, "OWNER_TEAM_", |s| {
                    pb::OwnerTeam::from_str_name(s).map(|e| e as i32)
                })
                .ok_or_else(|| bad("SECURITY_TEAM, SERVICE_TEAM"))?;
                Ok(compare(C::OwnerTeam, op, v.into()))
            }
            "status" => {
                let v = enum_value(value, "TASK_STATUS_", |s| {
                    pb::TaskStatus::from_str_name(s).map(|e| e as i32)
                })
                .ok_or_else(|| bad("OPEN, IN_PROGRESS, BLOCKED, DONE, WONT_DO"))?;
                Ok(compare(C::Status, op, v.into()))
            }
            "assignee" => Ok(compare(C::Assignee, op, value.into())),
            _ => Err(format!(
                "unknown field `{field}`; filterable: phase, owner_team, status, assignee"
            )),
        }
    }
}

fn check_task_field(v: &mut Violations, t: &pb::Task, field: &str) {
    match field {
        "phase" => check_enum(v, "task.phase", t.phase, (1..=5).contains(&t.phase)),
        "owner_team" => check_enum(
            v,
            "task.owner_team",
            t.owner_team,
            (1..=2).contains(&t.owner_team),
        ),
        "title" => v.line("task.title", &t.title, true, 200),
        "description" => v.paragraph("task.description", &t.description, false, 4000),
        "assignee" => v.principal("task.assignee", &t.assignee, false),
        "status" => check_enum(v, "task.status", t.status, (1..=5).contains(&t.status)),
        _ => {}
    }
}

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
];

fn fingerprint<M: Message + Clone>(request: &M, clear: impl FnOnce(&mut M)) -> String {
    let mut copy = request.clone();
    clear(&mut copy);
    Sha256::digest(copy.encode_to_vec())
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn incident_id(v: &mut Violations, field: &str, name: &str) -> Option<Uuid> {
    if name.is_empty() {
        v.add(field, "is required");
        return None;
    }
    let id = name_id(name, "incidents").and_then(|id| Uuid::parse_str(id).ok());
    if id.is_none() {
        v.add(
            field,
            "must be an incident name `incidents/{id}` with a UUID id",
        );
    }
    id
}

fn check_enum(v: &mut Violations, field: &str, value: i32, valid: bool) {
    if value == 0 {
        v.add(
            field,
            "is required (the _UNSPECIFIED value is not accepted)",
        );
    } else if !valid {
        v.add(field, format!("{value} is not a known value"));
    }
}

fn functional(v: i32) -> Option<FunctionalImpact> {
    [
        FunctionalImpact::None,
        FunctionalImpact::Low,
        FunctionalImpact::Medium,
        FunctionalImpact::High,
    ]
    .into_iter()
    .find(|f| *f as i32 == v)
}

fn information(v: i32) -> Option<InformationImpact> {
    [
        InformationImpact::None,
        InformationImpact::PrivacyBreach,
        InformationImpact::ProprietaryBreach,
        InformationImpact::IntegrityLoss,
    ]
    .into_iter()
    .find(|i| *i as i32 == v)
}

fn recoverability(v: i32) -> Option<Recoverability> {
    [
        Recoverability::Regular,
        Recoverability::Supplemented,
        Recoverability::Extended,
        Recoverability::NotRecoverable,
    ]
    .into_iter()
    .find(|r| *r as i32 == v)
}

fn classification(v: i32) -> Option<Classification> {
    [
        Classification::Event,
        Classification::SecurityIncident,
        Classification::NotAnIncident,
    ]
    .into_iter()
    .find(|c| *c as i32 == v)
}

/// Checks one mutable field of an incident in `input`; the services field yields their ids.
fn check_field(v: &mut Violations, i: &pb::Incident, field: &str) -> Option<Vec<String>> {
    let now = now_micros();
    let time =
        |v: &mut Violations, name: &str, ts: &Option<prost_types::Timestamp>| -> Option<i64> {
            let ts = ts.as_ref()?;
            match from_timestamp(ts) {
                Some(t) if t <= now + SKEW_MICROS => Some(t),
                Some(_) => {
                    v.add(format!("incident.{name}"), "must not be in the future");
                    None
                }
                None => {
                    v.add(format!("incident.{name}"), "is not a valid timestamp");
                    None
                }
            }
        };
    match field {
        "title" => v.line("incident.title", &i.title, true, 200),
        "summary" => v.paragraph("incident.summary", &i.summary, false, 10_000),
        "classification" => check_enum(
            v,
            "incident.classification",
            i.classification,
            classification(i.classification).is_some(),
        ),
        "severity" if i.severity != 0 && pb::Severity::try_from(i.severity).is_err() => {
            v.add(
                "incident.severity",
                format!("{} is not a known value", i.severity),
            );
        }
        "functional_impact" => check_enum(
            v,
            "incident.functional_impact",
            i.functional_impact,
            functional(i.functional_impact).is_some(),
        ),
        "information_impacts" => {
            let mut parsed = Vec::new();
            for (n, raw) in i.information_impacts.iter().enumerate() {
                match information(*raw) {
                    Some(x) => parsed.push(x),
                    None => v.add(
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
        "recoverability" => check_enum(
            v,
            "incident.recoverability",
            i.recoverability,
            recoverability(i.recoverability).is_some(),
        ),
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
            time(v, "occur_time", &i.occur_time);
        }
        "detect_time" => {
            let detect = time(v, "detect_time", &i.detect_time);
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

fn indicator_type(v: &mut Violations, field: &str, raw: i32) -> Option<indicator::IndicatorType> {
    use indicator::IndicatorType as T;
    let kind = [
        T::Ip,
        T::Domain,
        T::Url,
        T::FileHash,
        T::Email,
        T::FileName,
        T::Other,
    ]
    .into_iter()
    .find(|k| *k as i32 == raw);
    check_enum(v, field, raw, kind.is_some());
    kind
}

/// The id after which a page of an id-ordered list continues.
fn uuid_cursor(page_token: &str, fingerprint: &str) -> ApiResult<Option<Uuid>> {
    let malformed =
        || ApiError::invalid("page_token", "is not a page token issued by this service");
    match page::decode("page_token", page_token, fingerprint, 1)? {
        None => Ok(None),
        Some(keys) => match keys.first() {
            Some(page::Key::Text(t)) => Uuid::parse_str(t).map(Some).map_err(|_| malformed()),
            _ => Err(malformed()),
        },
    }
}

/// `incidents/{id}/evidence/{id}` → both ids, or a violation on `field`.
fn evidence_name(v: &mut Violations, field: &str, name: &str) -> Option<(Uuid, Uuid)> {
    let parsed = name.split_once("/evidence/").and_then(|(incident, item)| {
        let incident = name_id(incident, "incidents").and_then(|id| Uuid::parse_str(id).ok())?;
        Some((incident, Uuid::parse_str(item).ok()?))
    });
    if parsed.is_none() {
        v.add(
            field,
            "must be `incidents/{id}/evidence/{id}` with UUID ids",
        );
    }
    parsed
}

/// `incidents/{id}/notifications/{id}` → both ids, or a violation on `field`.
fn notification_name(v: &mut Violations, field: &str, name: &str) -> Option<(Uuid, Uuid)> {
    let parsed = name
        .split_once("/notifications/")
        .and_then(|(incident, item)| {
            let incident =
                name_id(incident, "incidents").and_then(|id| Uuid::parse_str(id).ok())?;
            Some((incident, Uuid::parse_str(item).ok()?))
        });
    if parsed.is_none() {
        v.add(
            field,
            "must be `incidents/{id}/notifications/{id}` with UUID ids",
        );
    }
    parsed
}

fn factors(m: &incident::Model) -> Option<Factors> {
    Some(Factors {
        functional: functional(m.functional_impact)?,
        information: m
            .information_impacts
            .split(',')
            .filter_map(|s| s.parse().ok())
            .filter_map(information)
            .collect(),
        recoverability: recoverability(m.recoverability)?,
        customer_data_affected: m.customer_data_affected,
    })
}

fn impacts_text(raw: &[i32]) -> String {
    let mut v = raw.to_vec();
    v.sort_unstable();
    v.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

impl IncidentApi {
    /// Severity: explicit when overridden, else derived by the rule.
    fn settle_severity(&self, m: &mut incident::Model) {
        if !m.severity_overridden
            && let Some(f) = factors(m)
        {
            m.severity = self.rule.severity(&f) as i32;
        }
    }
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

fn phase_of(m: &incident::Model) -> ApiResult<Phase> {
    Phase::from_i32(m.phase).ok_or_else(|| {
        ApiError::Internal(format!("incident {} has unknown phase {}", m.id, m.phase))
    })
}

fn classification_of(m: &incident::Model) -> ApiResult<Classification> {
    classification(m.classification)
        .ok_or_else(|| ApiError::Internal(format!("incident {} has unknown classification", m.id)))
}

/// How often a watcher looks for changes made through other replicas.
const WATCH_POLL: std::time::Duration = std::time::Duration::from_millis(250);

type EventStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<pb::TimelineEvent, Status>> + Send>>;

#[tonic::async_trait]
impl IncidentService for IncidentApi {
    type WatchIncidentStream = EventStream;

    async fn watch_incident(
        &self,
        request: Request<pb::WatchIncidentRequest>,
    ) -> Result<Response<Self::WatchIncidentStream>, Status> {
        let req = request.into_inner();
        let mut v = Violations::new();
        let id = incident_id(&mut v, "name", &req.name);
        if req.after_sequence < 0 {
            v.add("after_sequence", "must not be negative");
        }
        v.finish()?;
        let id = id.unwrap_or_default();
        // Unknown incidents fail the call itself rather than the stream.
        self.store.get(id).await?;
        struct Cursor {
            store: Store,
            id: Uuid,
            after: i64,
            buffered: std::collections::VecDeque<crate::store::entities::timeline_event::Model>,
            done: bool,
        }
        let start = Cursor {
            store: self.store.clone(),
            id,
            after: req.after_sequence,
            buffered: Default::default(),
            done: false,
        };
        let stream = futures::stream::unfold(start, |mut c| async move {
            loop {
                if let Some(e) = c.buffered.pop_front() {
                    c.after = e.seq;
                    // The stream ends after the CLOSED event (and anything buffered with it).
                    c.done |= e.kind == TimelineKind::Closed as i32;
                    return Some((Ok(convert::timeline_event(&e)), c));
                }
                if c.done {
                    return None;
                }
                match c.store.timeline(c.id, c.after, 100).await {
                    Ok(rows) if !rows.is_empty() => c.buffered.extend(rows),
                    Ok(_) => c.store.wait_for_change(WATCH_POLL).await,
                    Err(e) => {
                        c.done = true;
                        return Some((Err(e.into()), c));
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn declare_incident(
        &self,
        request: Request<pb::DeclareIncidentRequest>,
    ) -> Result<Response<pb::Incident>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        v.request_id("request_id", &req.request_id);
        let i = v.require("incident", req.incident.as_ref())?;
        let mut services = Vec::new();
        for field in UPDATABLE {
            if let Some(ids) = check_field(&mut v, i, field) {
                services = ids;
            }
        }
        v.finish()?;
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
        let fp = fingerprint(req, |r| r.request_id.clear());
        let key = RequestKey::of("DeclareIncident", &req.request_id, fp);
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
                        status: pb::TaskStatus::Open as i32,
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

    async fn get_incident(
        &self,
        request: Request<pb::GetIncidentRequest>,
    ) -> Result<Response<pb::Incident>, Status> {
        let mut v = Violations::new();
        let id = incident_id(&mut v, "name", &request.get_ref().name);
        v.finish()?;
        let m = self.store.get(id.unwrap_or_default()).await?;
        Ok(Response::new(convert::incident(&m)))
    }

    async fn list_incidents(
        &self,
        request: Request<pb::ListIncidentsRequest>,
    ) -> Result<Response<pb::ListIncidentsResponse>, Status> {
        let req = request.get_ref();
        let mut v = Violations::new();
        let size = v.absorb("page_size", page::page_size("page_size", req.page_size));
        let parsed = v
            .absorb("filter", filter::parse("filter", &req.filter))
            .flatten();
        let order = match req
            .order_by
            .split_whitespace()
            .collect::<Vec<_>>()
            .as_slice()
        {
            [] | ["declare_time", "desc"] => Some((IncidentOrder::DeclareTime, Order::Desc)),
            ["declare_time"] | ["declare_time", "asc"] => {
                Some((IncidentOrder::DeclareTime, Order::Asc))
            }
            ["update_time", "desc"] => Some((IncidentOrder::UpdateTime, Order::Desc)),
            ["update_time"] | ["update_time", "asc"] => {
                Some((IncidentOrder::UpdateTime, Order::Asc))
            }
            _ => {
                v.add(
                    "order_by",
                    "must be `declare_time` or `update_time`, optionally followed by `desc`",
                );
                None
            }
        };
        v.finish()?;
        let mut condition = Condition::all();
        if let Some(f) = &parsed {
            condition = condition.add(filter::compile("filter", f, &IncidentFilter)?);
        }
        let fp = page::query_fingerprint(&["incidents", &req.filter, &req.order_by]);
        let after = page::decode("page_token", &req.page_token, &fp, 2)?;
        let size = size.unwrap_or(page::DEFAULT_PAGE_SIZE);
        let (order, direction) = order.unwrap_or((IncidentOrder::DeclareTime, Order::Desc));
        let query = ListIncidents {
            condition,
            order,
            direction,
            after,
            limit: size + 1,
        };
        let mut rows = self.store.list(&query).await?;
        let next_page_token = page::finish(&mut rows, size, &fp, |r| query.keys_of(r));
        Ok(Response::new(pb::ListIncidentsResponse {
            incidents: rows.iter().map(convert::incident).collect(),
            next_page_token,
        }))
    }

    async fn update_incident(
        &self,
        request: Request<pb::UpdateIncidentRequest>,
    ) -> Result<Response<pb::Incident>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let i = v.require("incident", req.incident)?;
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
            _ => false,
        })?;
        if paths.is_empty() {
            v.add("update_mask", "names no field to update");
        }
        let mut services = None;
        for p in &paths {
            if let Some(ids) = check_field(&mut v, &i, p) {
                services = Some(ids);
            }
        }
        let expected = v
            .absorb("incident.etag", parse_etag("incident.etag", &i.etag))
            .flatten();
        v.finish()?;
        let updated = self
            .store
            .modify(id.unwrap_or_default(), expected, &caller, async |_, m| {
                if phase_of(m)? == Phase::Closed {
                    return Err(ApiError::precondition(
                        assurance_runtime::Reason::IncidentClosed,
                        format!("incidents/{} is CLOSED", m.id),
                    ));
                }
                let before = m.severity;
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
                let mut summary = format!("updated {}", paths.join(", "));
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
        Ok(Response::new(convert::incident(&updated)))
    }

    async fn advance_phase(
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
            let t = Phase::from_i32(req.target_phase);
            if t.is_none() {
                v.add(
                    "target_phase",
                    format!("{} is not a known value", req.target_phase),
                );
            }
            t
        };
        v.paragraph("reason", &req.reason, false, 2000);
        let expected = v.absorb("etag", parse_etag("etag", &req.etag)).flatten();
        v.finish()?;
        let target = target.unwrap_or(Phase::DetectionAnalysis);
        let updated = self
            .store
            .modify(id.unwrap_or_default(), expected, &caller, async |_, m| {
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
        Ok(Response::new(convert::incident(&updated)))
    }

    async fn close_incident(
        &self,
        request: Request<pb::CloseIncidentRequest>,
    ) -> Result<Response<pb::Incident>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let id = incident_id(&mut v, "name", &req.name);
        v.paragraph("resolution", &req.resolution, true, 4000);
        let expected = v.absorb("etag", parse_etag("etag", &req.etag)).flatten();
        v.finish()?;
        let closed = self
            .store
            .modify(id.unwrap_or_default(), expected, &caller, async |_, m| {
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
        Ok(Response::new(convert::incident(&closed)))
    }

    async fn record_post_incident_review(
        &self,
        request: Request<pb::RecordPostIncidentReviewRequest>,
    ) -> Result<Response<pb::PostIncidentReview>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let id = incident_id(&mut v, "parent", &req.parent);
        v.request_id("request_id", &req.request_id);
        let r = v.require("review", req.review.as_ref())?;
        review::check(&mut v, r);
        v.finish()?;
        let id = id.unwrap_or_default();
        let (model, events) = review::to_store(id, r)?;
        let fp = fingerprint(req, |r| r.request_id.clear());
        let key = RequestKey::of("RecordPostIncidentReview", &req.request_id, fp);
        let recorded = self
            .store
            .record_review(id, model, events, &caller, key)
            .await?;
        Ok(Response::new(review::to_proto(&recorded)))
    }

    async fn get_post_incident_review(
        &self,
        request: Request<pb::GetPostIncidentReviewRequest>,
    ) -> Result<Response<pb::PostIncidentReview>, Status> {
        let name = &request.get_ref().name;
        let mut v = Violations::new();
        let id = match name.strip_suffix("/review") {
            Some(parent) => incident_id(&mut v, "name", parent),
            None => {
                v.add("name", "must be `incidents/{id}/review`");
                None
            }
        };
        v.finish()?;
        let found = self.store.review(id.unwrap_or_default()).await?;
        Ok(Response::new(review::to_proto(&found)))
    }

    async fn assign_role(
        &self,
        request: Request<pb::AssignRoleRequest>,
    ) -> Result<Response<pb::Role>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let id = incident_id(&mut v, "parent", &req.parent);
        let role = v.require("role", req.role.as_ref())?;
        let kind = pb::RoleKind::try_from(role.kind)
            .ok()
            .filter(|k| *k != pb::RoleKind::Unspecified);
        check_enum(&mut v, "role.kind", role.kind, kind.is_some());
        v.principal("role.person", &role.person, true);
        if role.team.is_empty() {
            v.add("role.team", "is required");
        } else if !is_slug(&role.team) {
            v.add(
                "role.team",
                "must be a lowercase slug such as `security-response`",
            );
        }
        v.finish()?;
        let role_name = kind.map(convert::role_slug).unwrap_or_default();
        let model = crate::store::entities::role::Model {
            incident_id: id.unwrap_or_default(),
            kind: role.kind,
            person: role.person.clone(),
            team: role.team.clone(),
            assign_time: 0,
        };
        let assigned = self.store.assign_role(model, &role_name, &caller).await?;
        Ok(Response::new(convert::role(&assigned)))
    }

    async fn list_roles(
        &self,
        request: Request<pb::ListRolesRequest>,
    ) -> Result<Response<pb::ListRolesResponse>, Status> {
        let mut v = Violations::new();
        let id = incident_id(&mut v, "parent", &request.get_ref().parent);
        v.finish()?;
        let roles = self.store.roles(id.unwrap_or_default()).await?;
        Ok(Response::new(pb::ListRolesResponse {
            roles: roles.iter().map(convert::role).collect(),
        }))
    }

    async fn add_evidence(
        &self,
        request: Request<pb::AddEvidenceRequest>,
    ) -> Result<Response<pb::Evidence>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let id = incident_id(&mut v, "parent", &req.parent);
        v.request_id("request_id", &req.request_id);
        let e = v.require("evidence", req.evidence.as_ref())?;
        v.paragraph("evidence.description", &e.description, true, 2000);
        let hash = match indicator::normalize(indicator::IndicatorType::FileHash, &e.hash) {
            Ok(h) => Some(h),
            Err(why) => {
                v.add("evidence.hash", why);
                None
            }
        };
        v.line("evidence.location", &e.location, true, 1000);
        v.principal("evidence.collector", &e.collector, true);
        let now = now_micros();
        let collect_time = match e.collect_time.as_ref().map(from_timestamp) {
            None => Some(now),
            Some(Some(t)) if t <= now + SKEW_MICROS => Some(t),
            Some(Some(_)) => {
                v.add("evidence.collect_time", "must not be in the future");
                None
            }
            Some(None) => {
                v.add("evidence.collect_time", "is not a valid timestamp");
                None
            }
        };
        v.finish()?;
        let model = crate::store::entities::evidence::Model {
            id: Uuid::now_v7(),
            incident_id: id.unwrap_or_default(),
            description: e.description.clone(),
            hash: hash.unwrap_or_default(),
            location: e.location.clone(),
            collector: e.collector.clone(),
            custodian: String::new(),
            collect_time: collect_time.unwrap_or(now),
            custody_seq: 0,
            create_time: 0,
        };
        let fp = fingerprint(req, |r| r.request_id.clear());
        let key = RequestKey::of("AddEvidence", &req.request_id, fp);
        let added = self.store.add_evidence(model, &caller, key).await?;
        Ok(Response::new(convert::evidence(&added)))
    }

    async fn list_evidence(
        &self,
        request: Request<pb::ListEvidenceRequest>,
    ) -> Result<Response<pb::ListEvidenceResponse>, Status> {
        let req = request.get_ref();
        let mut v = Violations::new();
        let id = incident_id(&mut v, "parent", &req.parent);
        let size = v.absorb("page_size", page::page_size("page_size", req.page_size));
        v.finish()?;
        let fp = page::query_fingerprint(&["evidence", &req.parent]);
        let after = uuid_cursor(&req.page_token, &fp)?;
        let size = size.unwrap_or(page::DEFAULT_PAGE_SIZE);
        let mut rows = self
            .store
            .evidence_of(id.unwrap_or_default(), after, size + 1)
            .await?;
        let next_page_token = page::finish(&mut rows, size, &fp, |e| {
            vec![page::Key::Text(e.id.to_string())]
        });
        Ok(Response::new(pb::ListEvidenceResponse {
            evidence: rows.iter().map(convert::evidence).collect(),
            next_page_token,
        }))
    }

    async fn record_custody(
        &self,
        request: Request<pb::RecordCustodyRequest>,
    ) -> Result<Response<pb::CustodyEntry>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let ids = evidence_name(&mut v, "evidence", &req.evidence);
        v.request_id("request_id", &req.request_id);
        let entry = v.require("entry", req.entry.as_ref())?;
        v.principal("entry.to_custodian", &entry.to_custodian, true);
        v.paragraph("entry.purpose", &entry.purpose, true, 2000);
        v.line("entry.location", &entry.location, false, 1000);
        v.finish()?;
        let (incident, item) = ids.unwrap_or_default();
        let model = crate::store::entities::custody_entry::Model {
            evidence_id: item,
            seq: 0,
            incident_id: incident,
            from_custodian: String::new(),
            to_custodian: entry.to_custodian.clone(),
            purpose: entry.purpose.clone(),
            location: entry.location.clone(),
            transfer_time: 0,
        };
        let fp = fingerprint(req, |r| r.request_id.clear());
        let key = RequestKey::of("RecordCustody", &req.request_id, fp);
        let recorded = self
            .store
            .record_custody(incident, item, model, &caller, key)
            .await?;
        Ok(Response::new(convert::custody_entry(&recorded)))
    }

    async fn list_custody(
        &self,
        request: Request<pb::ListCustodyRequest>,
    ) -> Result<Response<pb::ListCustodyResponse>, Status> {
        let mut v = Violations::new();
        let ids = evidence_name(&mut v, "parent", &request.get_ref().parent);
        v.finish()?;
        let (incident, item) = ids.unwrap_or_default();
        let entries = self.store.custody(incident, item).await?;
        Ok(Response::new(pb::ListCustodyResponse {
            entries: entries.iter().map(convert::custody_entry).collect(),
        }))
    }

    async fn create_notification(
        &self,
        request: Request<pb::CreateNotificationRequest>,
    ) -> Result<Response<pb::Notification>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let id = incident_id(&mut v, "parent", &req.parent);
        v.request_id("request_id", &req.request_id);
        let n = v.require("notification", req.notification.as_ref())?;
        check_enum(
            &mut v,
            "notification.audience",
            n.audience,
            (1..=3).contains(&n.audience),
        );
        v.line("notification.subject", &n.subject, true, 200);
        v.paragraph("notification.body", &n.body, true, 20_000);
        v.finish()?;
        let model = crate::store::entities::notification::Model {
            id: Uuid::now_v7(),
            incident_id: id.unwrap_or_default(),
            audience: n.audience,
            subject: n.subject.clone(),
            body: n.body.clone(),
            status: 0,
            author: caller.person().to_string(),
            approver: String::new(),
            deadline_time: None,
            approve_time: None,
            send_time: None,
            create_time: 0,
        };
        let fp = fingerprint(req, |r| r.request_id.clear());
        let key = RequestKey::of("CreateNotification", &req.request_id, fp);
        let created = self.store.create_notification(model, &caller, key).await?;
        Ok(Response::new(convert::notification(&created, now_micros())))
    }

    async fn approve_notification(
        &self,
        request: Request<pb::ApproveNotificationRequest>,
    ) -> Result<Response<pb::Notification>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let ids = notification_name(&mut v, "name", &req.name);
        v.finish()?;
        let (incident, id) = ids.unwrap_or_default();
        let n = self
            .store
            .advance_notification(incident, id, Some(caller.person().to_string()), &caller)
            .await?;
        Ok(Response::new(convert::notification(&n, now_micros())))
    }

    async fn mark_notification_sent(
        &self,
        request: Request<pb::MarkNotificationSentRequest>,
    ) -> Result<Response<pb::Notification>, Status> {
        let caller = Caller::of(&request)?;
        let mut v = Violations::new();
        let ids = notification_name(&mut v, "name", &request.get_ref().name);
        v.finish()?;
        let (incident, id) = ids.unwrap_or_default();
        let n = self
            .store
            .advance_notification(incident, id, None, &caller)
            .await?;
        Ok(Response::new(convert::notification(&n, now_micros())))
    }

    async fn list_notifications(
        &self,
        request: Request<pb::ListNotificationsRequest>,
    ) -> Result<Response<pb::ListNotificationsResponse>, Status> {
        let req = request.get_ref();
        let mut v = Violations::new();
        let incident = if req.parent == "incidents/-" {
            None
        } else {
            incident_id(&mut v, "parent", &req.parent)
        };
        let size = v.absorb("page_size", page::page_size("page_size", req.page_size));
        v.finish()?;
        let fp = page::query_fingerprint(&[
            "notifications",
            &req.parent,
            if req.only_overdue { "1" } else { "0" },
        ]);
        let after = uuid_cursor(&req.page_token, &fp)?;
        let size = size.unwrap_or(page::DEFAULT_PAGE_SIZE);
        let mut rows = self
            .store
            .notifications(incident, req.only_overdue, after, size + 1)
            .await?;
        let next_page_token = page::finish(&mut rows, size, &fp, |n| {
            vec![page::Key::Text(n.id.to_string())]
        });
        let now = now_micros();
        Ok(Response::new(pb::ListNotificationsResponse {
            notifications: rows.iter().map(|n| convert::notification(n, now)).collect(),
            next_page_token,
        }))
    }

    async fn export_incident_report(
        &self,
        request: Request<pb::ExportIncidentReportRequest>,
    ) -> Result<Response<pb::IncidentReport>, Status> {
        let req = request.get_ref();
        let mut v = Violations::new();
        let id = incident_id(&mut v, "name", &req.name);
        let format = pb::ReportFormat::try_from(req.format)
            .ok()
            .filter(|f| *f != pb::ReportFormat::Unspecified);
        check_enum(&mut v, "format", req.format, format.is_some());
        v.finish()?;
        let id = id.unwrap_or_default();
        let incident = self.store.get(id).await?;
        let now = now_micros();
        const ALL: u64 = 10_000;
        let review = match self.store.review(id).await {
            Ok(r) => Some(review::to_proto(&r)),
            Err(ApiError::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        let mut material = report::Material {
            incident: convert::incident(&incident),
            roles: self
                .store
                .roles(id)
                .await?
                .iter()
                .map(convert::role)
                .collect(),
            timeline: self
                .store
                .timeline(id, 0, ALL)
                .await?
                .iter()
                .map(convert::timeline_event)
                .collect(),
            indicators: self
                .store
                .indicators(Some(id), None, None, ALL)
                .await?
                .iter()
                .map(convert::indicator)
                .collect(),
            evidence: self
                .store
                .evidence_of(id, None, ALL)
                .await?
                .iter()
                .map(convert::evidence)
                .collect(),
            notifications: self
                .store
                .notifications(Some(id), false, None, ALL)
                .await?
                .iter()
                .map(|n| convert::notification(n, now))
                .collect(),
            review,
        };
        if req.external {
            material = material.for_external();
        }
        let (content_type, content) = match format {
            Some(pb::ReportFormat::Json) => (
                "application/json",
                serde_json::to_vec_pretty(&report::json(&material))
                    .map_err(|e| ApiError::Internal(format!("render report: {e}")))?,
            ),
            _ => (
                "text/markdown; charset=utf-8",
                report::markdown(&material).into_bytes(),
            ),
        };
        Ok(Response::new(pb::IncidentReport {
            name: req.name.clone(),
            format: req.format,
            content_type: content_type.into(),
            content,
            generate_time: Some(assurance_runtime::time::to_timestamp(now)),
        }))
    }

    async fn get_incident_metrics(
        &self,
        request: Request<pb::GetIncidentMetricsRequest>,
    ) -> Result<Response<pb::IncidentMetrics>, Status> {
        let req = request.get_ref();
        let mut v = Violations::new();
        let mut scope = Condition::all();
        if !req.service.is_empty()
            && let Some(service) = slug_name(&mut v, "service", &req.service, "services")
        {
            scope = scope.add(filter::compile(
                "service",
                &filter::Filter::Compare {
                    field: "service".into(),
                    op: filter::Op::Eq,
                    value: service.into(),
                },
                &IncidentFilter,
            )?);
        }
        if req.severity != 0 {
            if pb::Severity::try_from(req.severity).is_err() {
                v.add("severity", format!("{} is not a known value", req.severity));
            }
            scope = scope.add(incident::Column::Severity.eq(req.severity));
        }
        for (field, ts, lower) in [
            ("start_time", &req.start_time, true),
            ("end_time", &req.end_time, false),
        ] {
            if let Some(ts) = ts {
                match from_timestamp(ts) {
                    Some(t) if lower => scope = scope.add(incident::Column::DeclareTime.gte(t)),
                    Some(t) => scope = scope.add(incident::Column::DeclareTime.lt(t)),
                    None => v.add(field, "is not a valid timestamp"),
                }
            }
        }
        v.finish()?;
        let m = self.store.metrics(scope).await?;
        Ok(Response::new(convert::metrics(&m)))
    }

    async fn list_response_templates(
        &self,
        _request: Request<pb::ListResponseTemplatesRequest>,
    ) -> Result<Response<pb::ListResponseTemplatesResponse>, Status> {
        Ok(Response::new(pb::ListResponseTemplatesResponse {
            templates: self
                .preparation
                .templates
                .iter()
                .map(convert::template)
                .collect(),
        }))
    }

    async fn list_contacts(
        &self,
        _request: Request<pb::ListContactsRequest>,
    ) -> Result<Response<pb::ListContactsResponse>, Status> {
        Ok(Response::new(pb::ListContactsResponse {
            contacts: self
                .preparation
                .contacts
                .iter()
                .map(|c| pb::Contact {
                    team: c.team.clone(),
                    description: c.description.clone(),
                    channel: c.channel.clone(),
                    on_call: c.on_call.clone(),
                })
                .collect(),
        }))
    }

    async fn list_notification_rules(
        &self,
        _request: Request<pb::ListNotificationRulesRequest>,
    ) -> Result<Response<pb::ListNotificationRulesResponse>, Status> {
        Ok(Response::new(pb::ListNotificationRulesResponse {
            rules: self
                .preparation
                .notification_rules
                .iter()
                .map(convert::notification_rule)
                .collect(),
        }))
    }

    async fn create_task(
        &self,
        request: Request<pb::CreateTaskRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let id = incident_id(&mut v, "parent", &req.parent);
        v.request_id("request_id", &req.request_id);
        let t = v.require("task", req.task.as_ref())?;
        for field in ["phase", "owner_team", "title", "description", "assignee"] {
            check_task_field(&mut v, t, field);
        }
        if t.status != 0 {
            check_task_field(&mut v, t, "status");
        }
        v.finish()?;
        let model = crate::store::entities::task::Model {
            id: Uuid::now_v7(),
            incident_id: id.unwrap_or_default(),
            phase: t.phase,
            owner_team: t.owner_team,
            title: t.title.clone(),
            description: t.description.clone(),
            assignee: t.assignee.clone(),
            status: if t.status == 0 {
                pb::TaskStatus::Open as i32
            } else {
                t.status
            },
            from_template: false,
            version: 0,
            create_time: 0,
            update_time: 0,
        };
        let fp = fingerprint(req, |r| r.request_id.clear());
        let key = RequestKey::of("CreateTask", &req.request_id, fp);
        let created = self.store.create_task(model, &caller, key).await?;
        Ok(Response::new(convert::task(&created)))
    }

    async fn update_task(
        &self,
        request: Request<pb::UpdateTaskRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let t = v.require("task", req.task)?;
        let ids = task_name(&mut v, "task.name", &t.name);
        let paths = update_paths(req.update_mask.as_ref(), TASK_UPDATABLE, |p| match p {
            "title" => !t.title.is_empty(),
            "description" => !t.description.is_empty(),
            "assignee" => !t.assignee.is_empty(),
            "status" => t.status != 0,
            _ => false,
        })?;
        if paths.is_empty() {
            v.add("update_mask", "names no field to update");
        }
        for p in &paths {
            check_task_field(&mut v, &t, p);
        }
        let expected = v
            .absorb("task.etag", parse_etag("task.etag", &t.etag))
            .flatten();
        v.finish()?;
        let (incident, id) = ids.unwrap_or_default();
        let updated = self
            .store
            .update_task(incident, id, expected, &caller, |m| {
                for p in &paths {
                    match *p {
                        "title" => m.title = t.title.clone(),
                        "description" => m.description = t.description.clone(),
                        "assignee" => m.assignee = t.assignee.clone(),
                        "status" => m.status = t.status,
                        _ => {}
                    }
                }
            })
            .await?;
        Ok(Response::new(convert::task(&updated)))
    }

    async fn list_tasks(
        &self,
        request: Request<pb::ListTasksRequest>,
    ) -> Result<Response<pb::ListTasksResponse>, Status> {
        let req = request.get_ref();
        let mut v = Violations::new();
        let id = incident_id(&mut v, "parent", &req.parent);
        let size = v.absorb("page_size", page::page_size("page_size", req.page_size));
        let parsed = v
            .absorb("filter", filter::parse("filter", &req.filter))
            .flatten();
        v.finish()?;
        let mut condition = Condition::all();
        if let Some(f) = &parsed {
            condition = condition.add(filter::compile("filter", f, &TaskFilter)?);
        }
        let fp = page::query_fingerprint(&["tasks", &req.parent, &req.filter]);
        let malformed =
            || ApiError::invalid("page_token", "is not a page token issued by this service");
        let after = match page::decode("page_token", &req.page_token, &fp, 2)? {
            None => None,
            Some(keys) => match (keys.first(), keys.get(1)) {
                (Some(page::Key::Int(phase)), Some(page::Key::Text(tid))) => Some((
                    i32::try_from(*phase).map_err(|_| malformed())?,
                    Uuid::parse_str(tid).map_err(|_| malformed())?,
                )),
                _ => return Err(malformed().into()),
            },
        };
        let size = size.unwrap_or(page::DEFAULT_PAGE_SIZE);
        let mut rows = self
            .store
            .tasks(id.unwrap_or_default(), condition, after, size + 1)
            .await?;
        let next_page_token = page::finish(&mut rows, size, &fp, |t| {
            vec![
                page::Key::Int(i64::from(t.phase)),
                page::Key::Text(t.id.to_string()),
            ]
        });
        Ok(Response::new(pb::ListTasksResponse {
            tasks: rows.iter().map(convert::task).collect(),
            next_page_token,
        }))
    }

    async fn add_indicator(
        &self,
        request: Request<pb::AddIndicatorRequest>,
    ) -> Result<Response<pb::Indicator>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let id = incident_id(&mut v, "parent", &req.parent);
        v.request_id("request_id", &req.request_id);
        let ind = v.require("indicator", req.indicator.as_ref())?;
        let kind = indicator_type(&mut v, "indicator.type", ind.r#type);
        let value = kind.and_then(|k| match indicator::normalize(k, &ind.value) {
            Ok(value) => Some(value),
            Err(why) => {
                v.add("indicator.value", why);
                None
            }
        });
        check_enum(&mut v, "indicator.tlp", ind.tlp, (1..=5).contains(&ind.tlp));
        v.paragraph("indicator.description", &ind.description, false, 2000);
        v.finish()?;
        let model = crate::store::entities::indicator::Model {
            id: Uuid::now_v7(),
            incident_id: id.unwrap_or_default(),
            kind: ind.r#type,
            value: value.unwrap_or_default(),
            tlp: ind.tlp,
            description: ind.description.clone(),
            create_time: 0,
        };
        let kind_name = pb::IndicatorType::try_from(ind.r#type)
            .map_or("indicator", |t| {
                t.as_str_name().trim_start_matches("INDICATOR_TYPE_")
            })
            .to_ascii_lowercase();
        let fp = fingerprint(req, |r| r.request_id.clear());
        let key = RequestKey::of("AddIndicator", &req.request_id, fp);
        let added = self
            .store
            .add_indicator(model, &kind_name, &caller, key)
            .await?;
        Ok(Response::new(convert::indicator(&added)))
    }

    async fn list_indicators(
        &self,
        request: Request<pb::ListIndicatorsRequest>,
    ) -> Result<Response<pb::ListIndicatorsResponse>, Status> {
        let req = request.get_ref();
        let mut v = Violations::new();
        let id = incident_id(&mut v, "parent", &req.parent);
        let size = v.absorb("page_size", page::page_size("page_size", req.page_size));
        v.finish()?;
        let fp = page::query_fingerprint(&["indicators", &req.parent]);
        let after = uuid_cursor(&req.page_token, &fp)?;
        let size = size.unwrap_or(page::DEFAULT_PAGE_SIZE);
        let mut rows = self.store.indicators(id, None, after, size + 1).await?;
        let next_page_token = page::finish(&mut rows, size, &fp, |i| {
            vec![page::Key::Text(i.id.to_string())]
        });
        Ok(Response::new(pb::ListIndicatorsResponse {
            indicators: rows.iter().map(convert::indicator).collect(),
            next_page_token,
        }))
    }

    async fn find_indicator(
        &self,
        request: Request<pb::FindIndicatorRequest>,
    ) -> Result<Response<pb::FindIndicatorResponse>, Status> {
        let req = request.get_ref();
        let mut v = Violations::new();
        let kind = indicator_type(&mut v, "type", req.r#type);
        let value = kind.and_then(|k| match indicator::normalize(k, &req.value) {
            Ok(value) => Some(value),
            Err(why) => {
                v.add("value", why);
                None
            }
        });
        let size = v.absorb("page_size", page::page_size("page_size", req.page_size));
        v.finish()?;
        let value = value.unwrap_or_default();
        let fp = page::query_fingerprint(&["sweep", &req.r#type.to_string(), &value]);
        let after = uuid_cursor(&req.page_token, &fp)?;
        let size = size.unwrap_or(page::DEFAULT_PAGE_SIZE);
        let mut rows = self
            .store
            .indicators(None, Some((req.r#type, value)), after, size + 1)
            .await?;
        let next_page_token = page::finish(&mut rows, size, &fp, |i| {
            vec![page::Key::Text(i.id.to_string())]
        });
        Ok(Response::new(pb::FindIndicatorResponse {
            indicators: rows.iter().map(convert::indicator).collect(),
            next_page_token,
        }))
    }

    async fn add_timeline_event(
        &self,
        request: Request<pb::AddTimelineEventRequest>,
    ) -> Result<Response<pb::TimelineEvent>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let id = incident_id(&mut v, "parent", &req.parent);
        v.paragraph("summary", &req.summary, true, 4000);
        v.request_id("request_id", &req.request_id);
        v.finish()?;
        let fp = fingerprint(req, |r| r.request_id.clear());
        let key = RequestKey::of("AddTimelineEvent", &req.request_id, fp);
        let event = self
            .store
            .add_note(id.unwrap_or_default(), req.summary.clone(), &caller, key)
            .await?;
        Ok(Response::new(convert::timeline_event(&event)))
    }

    async fn list_timeline(
        &self,
        request: Request<pb::ListTimelineRequest>,
    ) -> Result<Response<pb::ListTimelineResponse>, Status> {
        let req = request.get_ref();
        let mut v = Violations::new();
        let id = incident_id(&mut v, "parent", &req.parent);
        let size = v.absorb("page_size", page::page_size("page_size", req.page_size));
        v.finish()?;
        let fp = page::query_fingerprint(&["timeline", &req.parent]);
        let after = match page::decode("page_token", &req.page_token, &fp, 1)? {
            Some(keys) => match keys.first() {
                Some(page::Key::Int(seq)) => *seq,
                _ => {
                    return Err(ApiError::invalid(
                        "page_token",
                        "is not a page token issued by this service",
                    )
                    .into());
                }
            },
            None => 0,
        };
        let size = size.unwrap_or(page::DEFAULT_PAGE_SIZE);
        let mut rows = self
            .store
            .timeline(id.unwrap_or_default(), after, size + 1)
            .await?;
        let next_page_token = page::finish(&mut rows, size, &fp, |e| vec![page::Key::Int(e.seq)]);
        Ok(Response::new(pb::ListTimelineResponse {
            events: rows.iter().map(convert::timeline_event).collect(),
            next_page_token,
        }))
    }
}
