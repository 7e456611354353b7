//! Mapping between the domain and stored rows on one side and `assurance.incident.v1` messages
//! on the other: typed enum conversions (`From` domain → proto, `TryFrom` proto → domain, which
//! refuses UNSPECIFIED), the messages built from rows, and the review's storage form.

use super::pb;
use assurance_proto::r#type::v1 as tv;
use assurance_runtime::outbox::NewEvent;
use assurance_runtime::{
    ApiError, ApiResult,
    time::{from_timestamp, to_timestamp},
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    domain::{
        indicator::{IndicatorType, Tlp},
        notification::{Audience, NotificationStatus},
        phase::{Classification, Phase},
        preparation::{self, OwnerTeam, TaskPhase},
        priority::{FunctionalImpact, InformationImpact, Recoverability, Severity},
        role::RoleKind,
        task::TaskStatus,
        timeline::TimelineKind,
    },
    store::{
        FINISHED, ReviewRows,
        entities::{
            custody_entry, evidence, follow_up, incident, indicator, notification, review, role,
            task, timeline_event,
        },
        etag, follow_up_name,
        metrics::{Metrics, Stats},
        outbox,
        summary::GroupSummary,
    },
};

/// A proto enum number that names no value of the domain enum (UNSPECIFIED, or unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotAValue(pub i32);

/// `From<domain> for proto`, `TryFrom<proto> for domain` and `TryFrom<i32> for domain` (the
/// wire number) for a domain enum whose variants carry the proto's names.
macro_rules! wire_enum {
    ($domain:ty => $proto:ident { $($variant:ident),+ $(,)? }) => {
        impl From<$domain> for pb::$proto {
            fn from(value: $domain) -> Self {
                match value {
                    $(<$domain>::$variant => pb::$proto::$variant,)+
                }
            }
        }

        impl TryFrom<pb::$proto> for $domain {
            type Error = NotAValue;

            fn try_from(value: pb::$proto) -> Result<Self, NotAValue> {
                match value {
                    $(pb::$proto::$variant => Ok(<$domain>::$variant),)+
                    other => Err(NotAValue(other as i32)),
                }
            }
        }

        impl TryFrom<i32> for $domain {
            type Error = NotAValue;

            fn try_from(value: i32) -> Result<Self, NotAValue> {
                pb::$proto::try_from(value)
                    .map_err(|_| NotAValue(value))
                    .and_then(<$domain>::try_from)
            }
        }
    };
}

wire_enum!(Phase => Phase {
    DetectionAnalysis,
    Containment,
    Eradication,
    Recovery,
    PostIncident,
    Closed,
});
wire_enum!(TaskPhase => Phase { DetectionAnalysis, Containment, Eradication, Recovery, PostIncident });
wire_enum!(Classification => Classification { Event, SecurityIncident, NotAnIncident });
wire_enum!(Severity => Severity { Low, Medium, High, Critical });
wire_enum!(FunctionalImpact => FunctionalImpact { None, Low, Medium, High });
wire_enum!(InformationImpact => InformationImpact {
    None,
    PrivacyBreach,
    ProprietaryBreach,
    IntegrityLoss,
});
wire_enum!(Recoverability => Recoverability { Regular, Supplemented, Extended, NotRecoverable });
wire_enum!(IndicatorType => IndicatorType { Ip, Domain, Url, FileHash, Email, FileName, Other });
wire_enum!(Tlp => Tlp { Clear, Green, Amber, AmberStrict, Red });
wire_enum!(OwnerTeam => OwnerTeam { SecurityTeam, ServiceTeam });
wire_enum!(TaskStatus => WorkItemStatus { Open, InProgress, Blocked, Done, WontDo });
wire_enum!(RoleKind => RoleKind {
    IncidentResponseLead,
    SecurityIncidentOwner,
    Forensics,
    Communications,
    Legal,
    ServiceEngineer,
    Scribe,
});
wire_enum!(Audience => Audience { Customers, Regulator, Internal });
wire_enum!(NotificationStatus => NotificationStatus { Draft, Approved, Sent });
wire_enum!(TimelineKind => TimelineEventKind {
    Declared,
    Updated,
    PhaseChanged,
    Closed,
    Note,
    ReviewRecorded,
    IndicatorAdded,
    RoleAssigned,
    Evidence,
    Communication,
    Task,
});

pub fn severity_name(v: i32) -> &'static str {
    pb::Severity::try_from(v).map_or("UNKNOWN", |s| {
        s.as_str_name().trim_start_matches("SEVERITY_")
    })
}

fn split<T>(text: &str, f: impl Fn(&str) -> Option<T>) -> Vec<T> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .filter_map(f)
        .collect()
}

pub fn incident(m: &incident::Model) -> pb::Incident {
    pb::Incident {
        name: format!("incidents/{}", m.id),
        title: m.title.clone(),
        summary: m.summary.clone(),
        classification: m.classification,
        severity: m.severity,
        severity_overridden: m.severity_overridden,
        functional_impact: m.functional_impact,
        information_impacts: split(&m.information_impacts, |s| s.parse().ok()),
        recoverability: m.recoverability,
        customer_data_affected: m.customer_data_affected,
        affected_services: split(&m.affected_services, |s| Some(format!("services/{s}"))),
        detection_source: m.detection_source.clone(),
        incident_type: m.incident_type.clone(),
        phase: m.phase,
        occur_time: m.occur_time.map(to_timestamp),
        detect_time: Some(to_timestamp(m.detect_time)),
        declare_time: Some(to_timestamp(m.declare_time)),
        contain_time: m.contain_time.map(to_timestamp),
        eradicate_time: m.eradicate_time.map(to_timestamp),
        recover_time: m.recover_time.map(to_timestamp),
        post_incident_time: m.post_incident_time.map(to_timestamp),
        close_time: m.close_time.map(to_timestamp),
        resolution: m.resolution.clone(),
        etag: etag(m.version),
        create_time: Some(to_timestamp(m.create_time)),
        update_time: Some(to_timestamp(m.update_time)),
        // Read from their own table; see `IncidentApi::with_links`.
        risk_links: Vec::new(),
    }
}

pub fn timeline_event(e: &timeline_event::Model) -> pb::TimelineEvent {
    pb::TimelineEvent {
        name: format!("incidents/{}/timelineEvents/{}", e.incident_id, e.seq),
        sequence: e.seq,
        kind: e.kind,
        actor: e.actor.clone(),
        summary: e.summary.clone(),
        phase: e.phase,
        event_time: Some(to_timestamp(e.event_time)),
    }
}

pub fn indicator(i: &indicator::Model) -> pb::Indicator {
    pb::Indicator {
        name: format!("incidents/{}/indicators/{}", i.incident_id, i.id),
        r#type: i.kind,
        value: i.value.clone(),
        tlp: i.tlp,
        description: i.description.clone(),
        create_time: Some(to_timestamp(i.create_time)),
    }
}

pub fn role(r: &role::Model) -> pb::Role {
    let slug = RoleKind::try_from(r.kind).map_or("", RoleKind::slug);
    pb::Role {
        name: format!("incidents/{}/roles/{slug}", r.incident_id),
        kind: r.kind,
        person: r.person.clone(),
        team: r.team.clone(),
        assign_time: Some(to_timestamp(r.assign_time)),
    }
}

pub fn evidence(e: &evidence::Model) -> pb::Evidence {
    pb::Evidence {
        name: format!("incidents/{}/evidence/{}", e.incident_id, e.id),
        description: e.description.clone(),
        hash: e.hash.clone(),
        location: e.location.clone(),
        collector: e.collector.clone(),
        custodian: e.custodian.clone(),
        collect_time: Some(to_timestamp(e.collect_time)),
        create_time: Some(to_timestamp(e.create_time)),
    }
}

pub fn custody_entry(c: &custody_entry::Model) -> pb::CustodyRecord {
    pb::CustodyRecord {
        name: format!(
            "incidents/{}/evidence/{}/custodyRecords/{}",
            c.incident_id, c.evidence_id, c.seq
        ),
        sequence: c.seq,
        from_custodian: c.from_custodian.clone(),
        to_custodian: c.to_custodian.clone(),
        purpose: c.purpose.clone(),
        location: c.location.clone(),
        transfer_time: Some(to_timestamp(c.transfer_time)),
    }
}

/// A notification as of `now` (which decides `overdue`).
pub fn notification(n: &notification::Model, now: i64) -> pb::Notification {
    pb::Notification {
        name: format!("incidents/{}/notifications/{}", n.incident_id, n.id),
        audience: n.audience,
        subject: n.subject.clone(),
        body: n.body.clone(),
        status: n.status,
        author: n.author.clone(),
        approver: n.approver.clone(),
        deadline_time: n.deadline_time.map(to_timestamp),
        overdue: n.status != NotificationStatus::Sent as i32
            && n.deadline_time.is_some_and(|d| d < now),
        approve_time: n.approve_time.map(to_timestamp),
        send_time: n.send_time.map(to_timestamp),
        create_time: Some(to_timestamp(n.create_time)),
        etag: etag(n.version),
    }
}

fn duration(micros: i64) -> prost_types::Duration {
    prost_types::Duration {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1000) as i32,
    }
}

fn stats(s: &Stats) -> pb::DurationStats {
    pb::DurationStats {
        count: s.count,
        mean: (s.count > 0).then(|| duration(s.mean)),
        p90: (s.count > 0).then(|| duration(s.p90)),
    }
}

/// The figures of the group `key` (`SummarizeIncidents`).
pub fn incident_summary(key: &str, g: &GroupSummary) -> pb::IncidentSummary {
    pb::IncidentSummary {
        key: key.to_string(),
        open_incidents: g.open(),
        open_by_phase: g
            .open_by_phase
            .iter()
            .map(|(phase, count)| pb::PhaseCount {
                phase: *phase as i32,
                count: *count,
            })
            .collect(),
        open_by_severity: g
            .open_by_severity
            .iter()
            .map(|(severity, count)| pb::SeverityCount {
                severity: *severity as i32,
                count: *count,
            })
            .collect(),
        kpis: Some(pb::IncidentKpis {
            count: g.kpi_count,
            time_to_detect: Some(stats(&g.to_detect)),
            time_to_contain: Some(stats(&g.to_contain)),
            time_to_recover: Some(stats(&g.to_recover)),
        }),
        top_incidents: g
            .top
            .iter()
            .map(|t| pb::OpenIncident {
                incident: format!("incidents/{}", t.id),
                title: t.title.clone(),
                severity: t.severity,
                phase: t.phase,
                declare_time: Some(to_timestamp(t.declare_time)),
            })
            .collect(),
    }
}

pub fn metrics(m: &Metrics) -> pb::IncidentMetrics {
    pb::IncidentMetrics {
        total: m.total,
        open: m.open,
        by_phase: m
            .by_phase
            .iter()
            .map(|(phase, count)| pb::PhaseCount {
                phase: *phase,
                count: *count,
            })
            .collect(),
        by_severity: m
            .by_severity
            .iter()
            .map(|(severity, count)| pb::SeverityCount {
                severity: *severity,
                count: *count,
            })
            .collect(),
        time_to_detect: Some(stats(&m.to_detect)),
        time_to_declare: Some(stats(&m.to_declare)),
        time_to_contain: Some(stats(&m.to_contain)),
        time_to_recover: Some(stats(&m.to_recover)),
        total_time: Some(stats(&m.total_time)),
    }
}

pub fn task(t: &task::Model) -> pb::Task {
    pb::Task {
        name: format!("incidents/{}/tasks/{}", t.incident_id, t.id),
        phase: t.phase,
        owner_team: t.owner_team,
        title: t.title.clone(),
        description: t.description.clone(),
        assignee: t.assignee.clone(),
        status: t.status,
        from_template: t.from_template,
        etag: etag(t.version),
        create_time: Some(to_timestamp(t.create_time)),
        update_time: Some(to_timestamp(t.update_time)),
    }
}

pub fn template(t: &preparation::Template) -> pb::ResponseTemplate {
    pb::ResponseTemplate {
        incident_type: t.incident_type.clone(),
        description: t.description.clone(),
        roles: t
            .roles
            .iter()
            .filter_map(|r| {
                pb::RoleKind::from_str_name(&format!("ROLE_KIND_{r}")).map(|k| k as i32)
            })
            .collect(),
        tasks: t
            .tasks
            .iter()
            .map(|x| pb::TemplateTask {
                phase: pb::Phase::from(x.phase) as i32,
                owner_team: pb::OwnerTeam::from(x.owner) as i32,
                title: x.title.clone(),
                description: x.description.clone(),
            })
            .collect(),
    }
}

pub fn contact(c: &preparation::Contact) -> pb::Contact {
    pb::Contact {
        team: c.team.clone(),
        description: c.description.clone(),
        channel: c.channel.clone(),
        on_call: c.on_call.clone(),
    }
}

pub fn notification_rule(r: &preparation::NotificationRule) -> pb::NotificationRule {
    pb::NotificationRule {
        name: r.name.clone(),
        description: r.description.clone(),
        min_severity: r
            .min_severity
            .as_ref()
            .and_then(|s| pb::Severity::from_str_name(&format!("SEVERITY_{s}")))
            .map_or(0, |s| s as i32),
        customer_data_affected: r.customer_data_affected,
        notify: r.notify.clone(),
    }
}

#[derive(Serialize, Deserialize)]
struct FollowUp {
    title: String,
    description: String,
    owner: String,
    due_time: i64,
}

/// An identified risk as the review stores it; `risk` is set once risk-service created it.
#[derive(Serialize, Deserialize)]
pub struct IdentifiedRisk {
    title: String,
    description: String,
    service: String,
    owner: String,
    #[serde(default)]
    threat: i32,
    #[serde(default)]
    category: String,
    #[serde(default)]
    pub risk: String,
}

fn review_json<T: Serialize>(value: &T) -> ApiResult<String> {
    serde_json::to_string(value).map_err(|e| ApiError::Internal(format!("serialise review: {e}")))
}

/// The rows of the review `r` of `incident`: the review (lists as JSON), its follow-ups as
/// tracked items, and the outbox events it causes: one per follow-up (for the trackers) and one
/// per identified risk (a draft risk for risk-service, source INCIDENT).
pub fn review_rows(incident: Uuid, r: &pb::PostIncidentReview) -> ApiResult<ReviewRows> {
    let source = format!("incidents/{incident}");
    let follow_ups: Vec<FollowUp> = r
        .follow_ups
        .iter()
        .map(|f| FollowUp {
            title: f.title.clone(),
            description: f.description.clone(),
            owner: f.owner.clone(),
            due_time: f
                .due_time
                .as_ref()
                .and_then(from_timestamp)
                .unwrap_or_default(),
        })
        .collect();
    let risks: Vec<IdentifiedRisk> = r
        .identified_risks
        .iter()
        .map(|x| IdentifiedRisk {
            title: x.title.clone(),
            description: x.description.clone(),
            service: x.service.clone(),
            owner: x.owner.clone(),
            threat: x.threat,
            category: x.category.clone(),
            risk: String::new(),
        })
        .collect();
    let event = |kind: &'static str, payload: serde_json::Value| NewEvent {
        kind,
        aggregate: source.clone(),
        payload,
    };
    let tracked: Vec<follow_up::Model> = follow_ups
        .iter()
        .map(|f| follow_up::Model {
            id: Uuid::now_v7(),
            incident_id: incident,
            title: f.title.clone(),
            description: f.description.clone(),
            owner: f.owner.clone(),
            due_time: f.due_time,
            status: TaskStatus::Open as i32,
            tracker_system: String::new(),
            tracker_key: String::new(),
            tracker_url: String::new(),
            sync_state: tv::SyncState::NotLinked as i32,
            sync_time: None,
            from_review: true,
            version: 0,
            create_time: 0,
            update_time: 0,
        })
        .collect();
    let mut events = Vec::new();
    for (f, row) in follow_ups.iter().zip(&tracked) {
        events.push(event(
            outbox::FOLLOW_UP,
            serde_json::json!({
                "name": follow_up_name(row),
                "incident": source,
                "title": f.title,
                "description": f.description,
                "owner": f.owner,
                "due_time": to_timestamp(f.due_time).to_string(),
            }),
        ));
    }
    for (index, x) in risks.iter().enumerate() {
        let threat = pb::RiskThreat::try_from(x.threat).map_or("THREAT_UNSPECIFIED", |t| match t {
            pb::RiskThreat::Internal => "THREAT_INTERNAL",
            pb::RiskThreat::External => "THREAT_EXTERNAL",
            pb::RiskThreat::Unspecified => "THREAT_UNSPECIFIED",
        });
        events.push(event(
            outbox::IDENTIFIED_RISK,
            serde_json::json!({
                "index": index,
                "title": x.title,
                "description": x.description,
                "service": x.service,
                "owner": x.owner,
                "threat": threat,
                "category": x.category,
                "identification_source": "IDENTIFICATION_SOURCE_INCIDENT",
                "source_reference": source,
            }),
        ));
    }
    let model = review::Model {
        incident_id: incident,
        root_cause: r.root_cause.clone(),
        went_well: r.went_well.clone(),
        went_poorly: r.went_poorly.clone(),
        lessons_learned: r.lessons_learned.clone(),
        participants: review_json(&r.participants)?,
        follow_ups: review_json(&follow_ups)?,
        identified_risks: review_json(&risks)?,
        review_time: 0,
    };
    Ok(ReviewRows {
        review: model,
        follow_ups: tracked,
        events,
    })
}

/// A follow-up as the API shows it at `now`, with its incident's affected `services`.
pub fn follow_up(f: &follow_up::Model, services: &[String], now: i64) -> pb::FollowUp {
    let finished = FINISHED.iter().any(|s| *s as i32 == f.status);
    pb::FollowUp {
        name: follow_up_name(f),
        title: f.title.clone(),
        description: f.description.clone(),
        owner: f.owner.clone(),
        due_time: Some(to_timestamp(f.due_time)),
        status: f.status,
        tracker: Some(tv::TrackerLink {
            system: f.tracker_system.clone(),
            external_key: f.tracker_key.clone(),
            url: f.tracker_url.clone(),
            sync_state: f.sync_state,
            sync_time: f.sync_time.map(to_timestamp),
        }),
        overdue: !finished && f.due_time < now,
        etag: etag(f.version),
        services: services.iter().map(|s| format!("services/{s}")).collect(),
        from_review: f.from_review,
        create_time: Some(to_timestamp(f.create_time)),
        update_time: Some(to_timestamp(f.update_time)),
    }
}

pub fn review(m: &review::Model) -> pb::PostIncidentReview {
    let follow_ups: Vec<FollowUp> = serde_json::from_str(&m.follow_ups).unwrap_or_default();
    let risks: Vec<IdentifiedRisk> = serde_json::from_str(&m.identified_risks).unwrap_or_default();
    pb::PostIncidentReview {
        name: format!("incidents/{}/review", m.incident_id),
        root_cause: m.root_cause.clone(),
        went_well: m.went_well.clone(),
        went_poorly: m.went_poorly.clone(),
        lessons_learned: m.lessons_learned.clone(),
        participants: serde_json::from_str(&m.participants).unwrap_or_default(),
        follow_ups: follow_ups
            .into_iter()
            .map(|f| pb::FollowUpItem {
                title: f.title,
                description: f.description,
                owner: f.owner,
                due_time: Some(to_timestamp(f.due_time)),
            })
            .collect(),
        identified_risks: risks
            .into_iter()
            .map(|x| pb::IdentifiedRisk {
                title: x.title,
                description: x.description,
                service: x.service,
                owner: x.owner,
                threat: x.threat,
                category: x.category,
                risk: x.risk,
            })
            .collect(),
        review_time: Some(to_timestamp(m.review_time)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every proto number from 0 to well past the last value: each named value converts to the
    /// domain and back to the same number; UNSPECIFIED, unknown numbers and the proto values
    /// listed after `except` (which the domain enum deliberately lacks) are refused.
    macro_rules! round_trip {
        ($name:ident: $domain:ty => $proto:ident $(, except $($skip:ident),+)?) => {
            #[test]
            fn $name() {
                let skipped: &[i32] = &[$($(pb::$proto::$skip as i32),+)?];
                for n in 0..=32 {
                    let domain = <$domain>::try_from(n);
                    match pb::$proto::try_from(n) {
                        Ok(p) if n != 0 && !skipped.contains(&n) => {
                            let d = domain.unwrap_or_else(|e| panic!("{p:?} refused: {e:?}"));
                            assert_eq!(pb::$proto::from(d) as i32, n);
                            assert_eq!(<$domain>::try_from(p), Ok(d));
                        }
                        _ => assert_eq!(domain, Err(NotAValue(n)), "{n} is not a value"),
                    }
                }
            }
        };
    }

    round_trip!(phase: Phase => Phase);
    round_trip!(task_phase: TaskPhase => Phase, except Closed);
    round_trip!(classification: Classification => Classification);
    round_trip!(severity: Severity => Severity);
    round_trip!(functional_impact: FunctionalImpact => FunctionalImpact);
    round_trip!(information_impact: InformationImpact => InformationImpact);
    round_trip!(recoverability: Recoverability => Recoverability);
    round_trip!(indicator_type: IndicatorType => IndicatorType);
    round_trip!(tlp: Tlp => Tlp);
    round_trip!(owner_team: OwnerTeam => OwnerTeam);
    round_trip!(task_status: TaskStatus => WorkItemStatus);
    round_trip!(role_kind: RoleKind => RoleKind);
    round_trip!(audience: Audience => Audience);
    round_trip!(notification_status: NotificationStatus => NotificationStatus);
    round_trip!(timeline_kind: TimelineKind => TimelineEventKind);

    /// `ROLE_KIND_INCIDENT_RESPONSE_LEAD` → `incident-response-lead`.
    fn role_slug(kind: pb::RoleKind) -> String {
        kind.as_str_name()
            .trim_start_matches("ROLE_KIND_")
            .to_ascii_lowercase()
            .replace('_', "-")
    }

    #[test]
    fn role_slugs_follow_the_proto_names() {
        for n in 1..=7 {
            let kind = RoleKind::try_from(n).expect("a role");
            assert_eq!(kind.slug(), role_slug(pb::RoleKind::from(kind)));
        }
    }
}
