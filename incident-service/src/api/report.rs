//! The per-incident report, rendered from the API's own messages as Markdown, JSON, a
//! self-contained HTML page (every value escaped), or the timeline as CSV (RFC 4180).

use super::pb;
use assurance_runtime::{
    ApiError,
    text::{html_escape as esc, push_csv_field},
    time::now_micros,
    validate::Violations,
};
use serde_json::{Value, json};
use tonic::{Request, Response, Status};

use assurance_runtime::auth::Caller;

use super::{IncidentApi, convert, incident_id, need_to_know};

/// Everything a report draws on.
pub struct Material {
    pub incident: pb::Incident,
    pub roles: Vec<pb::Role>,
    pub timeline: Vec<pb::TimelineEvent>,
    pub indicators: Vec<pb::Indicator>,
    pub evidence: Vec<pb::Evidence>,
    pub notifications: Vec<pb::Notification>,
    pub review: Option<pb::PostIncidentReview>,
}

impl Material {
    /// What a reader who may not see the incident's restricted material gets: TLP:RED and
    /// TLP:AMBER+STRICT indicators with their values withheld, and no evidence.
    pub fn for_need_to_know(mut self) -> Self {
        self.indicators = self
            .indicators
            .into_iter()
            .map(|i| need_to_know::redact_indicator(i, false))
            .collect();
        self.evidence.clear();
        self
    }

    /// What external readers may see: TLP:CLEAR and GREEN indicators, no evidence, no roles or
    /// names (no owners, no participants), only approved or sent external communications, and
    /// only the milestones of the timeline.
    pub fn for_external(mut self) -> Self {
        self.indicators
            .retain(|i| i.tlp == pb::Tlp::Clear as i32 || i.tlp == pb::Tlp::Green as i32);
        self.evidence.clear();
        let released = [
            pb::NotificationStatus::Approved as i32,
            pb::NotificationStatus::Sent as i32,
        ];
        self.notifications.retain(|n| {
            n.audience != pb::Audience::Internal as i32 && released.contains(&n.status)
        });
        self.roles.clear();
        if let Some(review) = &mut self.review {
            review.participants.clear();
            for f in &mut review.follow_ups {
                f.owner.clear();
            }
            for r in &mut review.identified_risks {
                r.owner.clear();
            }
        }
        // Summaries of other events quote indicators, evidence, names and internal notes.
        use pb::TimelineEventKind as K;
        let shareable =
            [K::Declared, K::PhaseChanged, K::ReviewRecorded, K::Closed].map(|k| k as i32);
        self.timeline.retain(|e| shareable.contains(&e.kind));
        for e in &mut self.timeline {
            e.actor.clear();
            if e.kind == K::PhaseChanged as i32 {
                // Keep "phase A → B", not the responder's free-text reason.
                e.summary = e.summary.split(':').next().unwrap_or_default().to_string();
            }
        }
        self
    }
}

fn name<T: TryFrom<i32>>(v: i32, as_str: impl Fn(&T) -> &'static str, prefix: &str) -> String {
    T::try_from(v).map_or_else(
        |_| "UNSPECIFIED".to_string(),
        |x| as_str(&x).trim_start_matches(prefix).to_string(),
    )
}

fn time(ts: &Option<prost_types::Timestamp>) -> String {
    ts.as_ref()
        .map_or_else(|| "—".to_string(), |t| t.to_string())
}

fn phase(v: i32) -> String {
    name::<pb::Phase>(v, pb::Phase::as_str_name, "PHASE_")
}

fn severity(v: i32) -> String {
    name::<pb::Severity>(v, pb::Severity::as_str_name, "SEVERITY_")
}

/// A Markdown report.
pub fn markdown(m: &Material) -> String {
    let i = &m.incident;
    let mut out = format!(
        "# Incident report: {}\n\n`{}`\n\n{}\n\n",
        i.title, i.name, i.summary
    );
    out.push_str("| | |\n|---|---|\n");
    for (k, v) in facts(i) {
        out.push_str(&format!(
            "| {k} | {} |\n",
            if v.is_empty() { "—".into() } else { v }
        ));
    }
    out.push_str("\n## Key times\n\n| | |\n|---|---|\n");
    for (k, v) in key_times(i) {
        out.push_str(&format!("| {k} | {v} |\n"));
    }
    if !m.roles.is_empty() {
        out.push_str("\n## Roles\n\n");
        for r in &m.roles {
            out.push_str(&format!(
                "- {}: {} ({})\n",
                name::<pb::RoleKind>(r.kind, pb::RoleKind::as_str_name, "ROLE_KIND_"),
                r.person,
                r.team
            ));
        }
    }
    out.push_str("\n## Timeline\n\n| # | time | phase | event |\n|---|---|---|---|\n");
    for e in &m.timeline {
        let who = if e.actor.is_empty() {
            String::new()
        } else {
            format!(" — {}", e.actor)
        };
        out.push_str(&format!(
            "| {} | {} | {} | {}{who} |\n",
            e.sequence,
            time(&e.event_time),
            phase(e.phase),
            e.summary.replace('|', "\\\\|")
        ));
    }
    if !m.indicators.is_empty() {
        out.push_str("\n## Indicators of compromise\n\n| type | value | TLP |\n|---|---|---|\n");
        for x in &m.indicators {
            out.push_str(&format!(
                "| {} | `{}` | {} |\n",
                name::<pb::IndicatorType>(
                    x.r#type,
                    pb::IndicatorType::as_str_name,
                    "INDICATOR_TYPE_"
                ),
                x.value,
                name::<pb::Tlp>(x.tlp, pb::Tlp::as_str_name, "TLP_")
            ));
        }
    }
    if !m.evidence.is_empty() {
        out.push_str("\n## Evidence\n\n");
        for e in &m.evidence {
            out.push_str(&format!(
                "- {} — `{}` at {}, held by {}\n",
                e.description, e.hash, e.location, e.custodian
            ));
        }
    }
    if !m.notifications.is_empty() {
        out.push_str("\n## Communications\n\n");
        for n in &m.notifications {
            out.push_str(&format!(
                "- {} to {}: {} (deadline {})\n",
                name::<pb::NotificationStatus>(
                    n.status,
                    pb::NotificationStatus::as_str_name,
                    "NOTIFICATION_STATUS_"
                ),
                name::<pb::Audience>(n.audience, pb::Audience::as_str_name, "AUDIENCE_"),
                n.subject,
                time(&n.deadline_time)
            ));
        }
    }
    if let Some(r) = &m.review {
        out.push_str(&format!(
            "\n## Post-incident review\n\n**Root cause.** {}\n\n**What went well.** {}\n\n**What went poorly.** {}\n\n**Lessons learned.** {}\n",
            r.root_cause, r.went_well, r.went_poorly, r.lessons_learned
        ));
        if !r.follow_ups.is_empty() {
            out.push_str("\n**Follow-up items**\n\n");
            for f in &r.follow_ups {
                let owner = if f.owner.is_empty() {
                    String::new()
                } else {
                    format!(" — {}", f.owner)
                };
                out.push_str(&format!(
                    "- {}{owner}, due {}\n",
                    f.title,
                    time(&f.due_time)
                ));
            }
        }
    }
    out
}

/// `<table>` of label/value rows (values escaped here).
fn html_pairs(out: &mut String, rows: &[(&str, String)]) {
    out.push_str("<table>\n");
    for (k, v) in rows {
        let v = if v.is_empty() { "—" } else { v.as_str() };
        out.push_str(&format!(
            "<tr><th>{}</th><td>{}</td></tr>\n",
            esc(k),
            esc(v)
        ));
    }
    out.push_str("</table>\n");
}

/// `<table>` with a header row; every cell is escaped here.
fn html_table(out: &mut String, head: &[&str], rows: impl IntoIterator<Item = Vec<String>>) {
    out.push_str("<table>\n<tr>");
    for h in head {
        out.push_str(&format!("<th>{}</th>", esc(h)));
    }
    out.push_str("</tr>\n");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            out.push_str(&format!("<td>{}</td>", esc(&cell)));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

/// The facts table of a report (Markdown and HTML).
fn facts(i: &pb::Incident) -> Vec<(&'static str, String)> {
    let info: Vec<String> = i
        .information_impacts
        .iter()
        .map(|x| {
            name::<pb::InformationImpact>(
                *x,
                pb::InformationImpact::as_str_name,
                "INFORMATION_IMPACT_",
            )
        })
        .collect();
    vec![
        (
            "Classification",
            name::<pb::Classification>(
                i.classification,
                pb::Classification::as_str_name,
                "CLASSIFICATION_",
            ),
        ),
        ("Severity", severity(i.severity)),
        ("Phase", phase(i.phase)),
        (
            "Functional impact",
            name::<pb::FunctionalImpact>(
                i.functional_impact,
                pb::FunctionalImpact::as_str_name,
                "FUNCTIONAL_IMPACT_",
            ),
        ),
        ("Information impact", info.join(", ")),
        (
            "Recoverability",
            name::<pb::Recoverability>(
                i.recoverability,
                pb::Recoverability::as_str_name,
                "RECOVERABILITY_",
            ),
        ),
        (
            "Customer data affected",
            if i.customer_data_affected {
                "yes"
            } else {
                "no"
            }
            .to_string(),
        ),
        ("Affected services", i.affected_services.join(", ")),
        ("Incident type", i.incident_type.clone()),
        ("Detection source", i.detection_source.clone()),
        ("Resolution", i.resolution.clone()),
    ]
}

/// The key times of a report (Markdown and HTML).
fn key_times(i: &pb::Incident) -> Vec<(&'static str, String)> {
    [
        ("Occurred", &i.occur_time),
        ("Detected", &i.detect_time),
        ("Declared", &i.declare_time),
        ("Contained", &i.contain_time),
        ("Eradicated", &i.eradicate_time),
        ("Recovered", &i.recover_time),
        ("Post-incident", &i.post_incident_time),
        ("Closed", &i.close_time),
    ]
    .into_iter()
    .map(|(k, v)| (k, time(v)))
    .collect()
}

/// A self-contained HTML page with the content of the Markdown report: no scripts, no external
/// resources, every value escaped.
pub fn html(m: &Material) -> String {
    let i = &m.incident;
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Incident report: {title}</title>\n<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}table{{border-collapse:collapse;margin:1em 0}}th,td{{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}}</style>\n</head>\n<body>\n<h1>Incident report: {title}</h1>\n<p><code>{name}</code></p>\n<p>{summary}</p>\n",
        title = esc(&i.title),
        name = esc(&i.name),
        summary = esc(&i.summary),
    );
    html_pairs(&mut out, &facts(i));
    out.push_str("<h2>Key times</h2>\n");
    html_pairs(&mut out, &key_times(i));
    if !m.roles.is_empty() {
        out.push_str("<h2>Roles</h2>\n");
        html_table(
            &mut out,
            &["role", "person", "team"],
            m.roles.iter().map(|r| {
                vec![
                    name::<pb::RoleKind>(r.kind, pb::RoleKind::as_str_name, "ROLE_KIND_"),
                    r.person.clone(),
                    r.team.clone(),
                ]
            }),
        );
    }
    out.push_str("<h2>Timeline</h2>\n");
    html_table(
        &mut out,
        &["#", "time", "phase", "event", "by"],
        m.timeline.iter().map(|e| {
            vec![
                e.sequence.to_string(),
                time(&e.event_time),
                phase(e.phase),
                e.summary.clone(),
                e.actor.clone(),
            ]
        }),
    );
    if !m.indicators.is_empty() {
        out.push_str("<h2>Indicators of compromise</h2>\n");
        html_table(
            &mut out,
            &["type", "value", "TLP"],
            m.indicators.iter().map(|x| {
                vec![
                    name::<pb::IndicatorType>(
                        x.r#type,
                        pb::IndicatorType::as_str_name,
                        "INDICATOR_TYPE_",
                    ),
                    x.value.clone(),
                    name::<pb::Tlp>(x.tlp, pb::Tlp::as_str_name, "TLP_"),
                ]
            }),
        );
    }
    if !m.evidence.is_empty() {
        out.push_str("<h2>Evidence</h2>\n");
        html_table(
            &mut out,
            &["description", "hash", "location", "custodian"],
            m.evidence.iter().map(|e| {
                vec![
                    e.description.clone(),
                    e.hash.clone(),
                    e.location.clone(),
                    e.custodian.clone(),
                ]
            }),
        );
    }
    if !m.notifications.is_empty() {
        out.push_str("<h2>Communications</h2>\n");
        html_table(
            &mut out,
            &["status", "audience", "subject", "deadline"],
            m.notifications.iter().map(|n| {
                vec![
                    name::<pb::NotificationStatus>(
                        n.status,
                        pb::NotificationStatus::as_str_name,
                        "NOTIFICATION_STATUS_",
                    ),
                    name::<pb::Audience>(n.audience, pb::Audience::as_str_name, "AUDIENCE_"),
                    n.subject.clone(),
                    time(&n.deadline_time),
                ]
            }),
        );
    }
    if let Some(r) = &m.review {
        out.push_str("<h2>Post-incident review</h2>\n");
        for (k, v) in [
            ("Root cause", &r.root_cause),
            ("What went well", &r.went_well),
            ("What went poorly", &r.went_poorly),
            ("Lessons learned", &r.lessons_learned),
        ] {
            out.push_str(&format!("<h3>{}</h3>\n<p>{}</p>\n", esc(k), esc(v)));
        }
        if !r.follow_ups.is_empty() {
            out.push_str("<h3>Follow-up items</h3>\n");
            html_table(
                &mut out,
                &["title", "owner", "due"],
                r.follow_ups
                    .iter()
                    .map(|f| vec![f.title.clone(), f.owner.clone(), time(&f.due_time)]),
            );
        }
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// One CSV field (RFC 4180): quoted when it holds a comma, a double quote, CR or LF, with
/// double quotes doubled.
fn csv_field(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    push_csv_field(&mut out, s);
    out
}

/// The timeline as CSV (RFC 4180: a header row, CRLF line ends, fields quoted as needed).
pub fn csv(m: &Material) -> String {
    let mut out = String::from("sequence,time,phase,kind,actor,summary\r\n");
    for e in &m.timeline {
        let row = [
            e.sequence.to_string(),
            time(&e.event_time),
            phase(e.phase),
            name::<pb::TimelineEventKind>(
                e.kind,
                pb::TimelineEventKind::as_str_name,
                "TIMELINE_EVENT_KIND_",
            ),
            e.actor.clone(),
            e.summary.clone(),
        ];
        let fields: Vec<String> = row.iter().map(|f| csv_field(f)).collect();
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    }
    out
}

/// A JSON report with the same content.
pub fn json(m: &Material) -> Value {
    let i = &m.incident;
    json!({
        "name": i.name,
        "title": i.title,
        "summary": i.summary,
        "classification": name::<pb::Classification>(i.classification, pb::Classification::as_str_name, "CLASSIFICATION_"),
        "severity": severity(i.severity),
        "phase": phase(i.phase),
        "functional_impact": name::<pb::FunctionalImpact>(i.functional_impact, pb::FunctionalImpact::as_str_name, "FUNCTIONAL_IMPACT_"),
        "information_impacts": i.information_impacts.iter().map(|x| name::<pb::InformationImpact>(*x, pb::InformationImpact::as_str_name, "INFORMATION_IMPACT_")).collect::<Vec<_>>(),
        "recoverability": name::<pb::Recoverability>(i.recoverability, pb::Recoverability::as_str_name, "RECOVERABILITY_"),
        "customer_data_affected": i.customer_data_affected,
        "affected_services": i.affected_services,
        "times": {
            "occurred": i.occur_time.as_ref().map(ToString::to_string),
            "detected": i.detect_time.as_ref().map(ToString::to_string),
            "declared": i.declare_time.as_ref().map(ToString::to_string),
            "contained": i.contain_time.as_ref().map(ToString::to_string),
            "eradicated": i.eradicate_time.as_ref().map(ToString::to_string),
            "recovered": i.recover_time.as_ref().map(ToString::to_string),
            "post_incident": i.post_incident_time.as_ref().map(ToString::to_string),
            "closed": i.close_time.as_ref().map(ToString::to_string),
        },
        "resolution": i.resolution,
        "roles": m.roles.iter().map(|r| json!({"role": name::<pb::RoleKind>(r.kind, pb::RoleKind::as_str_name, "ROLE_KIND_"), "person": r.person, "team": r.team})).collect::<Vec<_>>(),
        "timeline": m.timeline.iter().map(|e| json!({"sequence": e.sequence, "time": time(&e.event_time), "phase": phase(e.phase), "summary": e.summary, "actor": e.actor})).collect::<Vec<_>>(),
        "indicators": m.indicators.iter().map(|x| json!({"type": name::<pb::IndicatorType>(x.r#type, pb::IndicatorType::as_str_name, "INDICATOR_TYPE_"), "value": x.value, "tlp": name::<pb::Tlp>(x.tlp, pb::Tlp::as_str_name, "TLP_")})).collect::<Vec<_>>(),
        "evidence": m.evidence.iter().map(|e| json!({"description": e.description, "hash": e.hash, "location": e.location, "custodian": e.custodian})).collect::<Vec<_>>(),
        "communications": m.notifications.iter().map(|n| json!({"audience": name::<pb::Audience>(n.audience, pb::Audience::as_str_name, "AUDIENCE_"), "status": name::<pb::NotificationStatus>(n.status, pb::NotificationStatus::as_str_name, "NOTIFICATION_STATUS_"), "subject": n.subject, "deadline": n.deadline_time.as_ref().map(ToString::to_string)})).collect::<Vec<_>>(),
        "review": m.review.as_ref().map(|r| json!({
            "root_cause": r.root_cause, "went_well": r.went_well, "went_poorly": r.went_poorly,
            "lessons_learned": r.lessons_learned,
            "follow_ups": r.follow_ups.iter().map(|f| json!({"title": f.title, "owner": f.owner, "due": time(&f.due_time)})).collect::<Vec<_>>(),
        })),
    })
}

/// The formats `ExportIncidentReport` renders (all of `assurance.type.v1.ReportFormat`).
const RENDERED: &[&str] = &[
    "REPORT_FORMAT_MARKDOWN",
    "REPORT_FORMAT_JSON",
    "REPORT_FORMAT_HTML",
    "REPORT_FORMAT_CSV",
];

impl IncidentApi {
    pub(super) async fn report_export(
        &self,
        request: Request<pb::ExportIncidentReportRequest>,
    ) -> Result<Response<pb::IncidentReport>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let id = incident_id(&mut v, "name", &req.name);
        let format = pb::ReportFormat::try_from(req.format)
            .ok()
            .filter(|f| *f != pb::ReportFormat::Unspecified);
        if format.is_none() {
            let problem = if req.format == 0 {
                "is required".to_string()
            } else {
                format!("{} is not a format this report renders", req.format)
            };
            v.add(
                "format",
                format!("{problem}; it renders {}", RENDERED.join(", ")),
            );
        }
        v.finish()?;
        let id = id.unwrap_or_default();
        let incident = self.visible(&caller, id).await?;
        let now = now_micros();
        const ALL: u64 = 10_000;
        let review = match self.store.review(id).await {
            Ok(r) => Some(convert::review(&r)),
            Err(ApiError::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        let mut material = Material {
            incident: convert::incident(&incident),
            roles: self
                .store
                .roles(id, None, ALL)
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
                .indicators(Some(id), sea_orm::Condition::all(), None, ALL)
                .await?
                .iter()
                .map(convert::indicator)
                .collect(),
            evidence: self
                .store
                .evidence_of(id, sea_orm::Condition::all(), None, ALL)
                .await?
                .iter()
                .map(convert::evidence)
                .collect(),
            notifications: self
                .store
                .notifications_of(id, ALL)
                .await?
                .iter()
                .map(|n| convert::notification(n, now))
                .collect(),
            review,
        };
        if !self.sees_restricted(&caller, id).await? {
            material = material.for_need_to_know();
        }
        if req.external {
            material = material.for_external();
        }
        let (content_type, content) = match format {
            Some(pb::ReportFormat::Json) => (
                "application/json",
                serde_json::to_vec_pretty(&json(&material))
                    .map_err(|e| ApiError::Internal(format!("render report: {e}")))?,
            ),
            Some(pb::ReportFormat::Html) => {
                ("text/html; charset=utf-8", html(&material).into_bytes())
            }
            Some(pb::ReportFormat::Csv) => (
                "text/csv; charset=utf-8; header=present",
                csv(&material).into_bytes(),
            ),
            _ => (
                "text/markdown; charset=utf-8",
                markdown(&material).into_bytes(),
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
}
