//! Preparation: response templates per incident type, the contact directory and notification
//! rules — configuration loaded at start-up, validated, and listable through the API.
//!
//! The built-in template follows the duty split between the security team and the service
//! teams in the security incident management process (`seeds/004`): who sweeps for IOCs, hunts,
//! triages, investigates, executes containment, leads the post-incident analysis, and so on.

use std::collections::HashSet;

use serde::Deserialize;

numbered! {
    /// Who owns a task in the federated model.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
    #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
    pub enum OwnerTeam {
        SecurityTeam = 1 => "SECURITY_TEAM",
        ServiceTeam = 2 => "SERVICE_TEAM",
    }
}

numbered! {
    /// The phases tasks belong to (the names of `assurance.incident.v1.Phase`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
    #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
    pub enum TaskPhase {
        DetectionAnalysis = 1 => "DETECTION_ANALYSIS",
        Containment = 2 => "CONTAINMENT",
        Eradication = 3 => "ERADICATION",
        Recovery = 4 => "RECOVERY",
        PostIncident = 5 => "POST_INCIDENT",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateTask {
    pub phase: TaskPhase,
    pub owner: OwnerTeam,
    pub title: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// The incident type it applies to; `default` serves every other type.
    pub incident_type: String,
    #[serde(default)]
    pub description: String,
    /// Roles to fill (names of `RoleKind` without the prefix, e.g. `INCIDENT_RESPONSE_LEAD`).
    #[serde(default)]
    pub roles: Vec<String>,
    pub tasks: Vec<TemplateTask>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    /// A lowercase slug, e.g. `security-response`.
    pub team: String,
    #[serde(default)]
    pub description: String,
    /// How to reach the team (alias, pager).
    #[serde(default)]
    pub channel: String,
    /// The on-call rotation, in order.
    #[serde(default)]
    pub on_call: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationRule {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Applies from this severity up (`LOW` … `CRITICAL`); absent: any.
    #[serde(default)]
    pub min_severity: Option<String>,
    /// Applies only when customer data is affected.
    #[serde(default)]
    pub customer_data_affected: bool,
    /// Teams to notify (contacts).
    pub notify: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preparation {
    pub templates: Vec<Template>,
    #[serde(default)]
    pub contacts: Vec<Contact>,
    #[serde(default)]
    pub notification_rules: Vec<NotificationRule>,
    /// Hours after the declaration within which customer and regulator notices are due when
    /// customer data is affected (1 to 8760, a year); see [`Preparation::deadline_hours`].
    #[serde(default = "default_deadline_hours")]
    pub notification_deadline_hours: i64,
    /// How many days before now an incident's `occur_time` and `detect_time` may lie (1 to
    /// 3,652,425, ten thousand years); `--incident-time-horizon-days` overrides it.
    #[serde(default = "default_horizon_days")]
    pub time_horizon_days: i64,
}

/// The time horizon when neither the preparation nor a flag names one: ten years.
pub const DEFAULT_HORIZON_DAYS: i64 = 3650;
/// The longest time horizon, in days (ten thousand years).
pub const MAX_HORIZON_DAYS: i64 = 3_652_425;

fn default_horizon_days() -> i64 {
    DEFAULT_HORIZON_DAYS
}

/// The notification deadline when the preparation names none (GDPR's 72 hours).
pub const DEFAULT_DEADLINE_HOURS: i64 = 72;
/// The longest notification deadline, in hours (one year).
const MAX_DEADLINE_HOURS: i64 = 8760;

fn default_deadline_hours() -> i64 {
    DEFAULT_DEADLINE_HOURS
}

const ROLES: &[&str] = &[
    "INCIDENT_RESPONSE_LEAD",
    "SECURITY_INCIDENT_OWNER",
    "FORENSICS",
    "COMMUNICATIONS",
    "LEGAL",
    "SERVICE_ENGINEER",
    "SCRIBE",
];
const SEVERITIES: &[&str] = &["LOW", "MEDIUM", "HIGH", "CRITICAL"];

fn is_slug(s: &str) -> bool {
    assurance_runtime::validate::is_slug(s)
}

impl Preparation {
    /// The built-in preparation: one `default` template from the process's duty split, the two
    /// sides of it as contacts, and a rule that brings in legal and communications when
    /// customer data is affected.
    pub fn builtin() -> Self {
        use OwnerTeam::{SecurityTeam as Sec, ServiceTeam as Svc};
        use TaskPhase::*;
        let t = |phase, owner, title: &str| TemplateTask {
            phase,
            owner,
            title: title.to_string(),
            description: String::new(),
        };
        Preparation {
            templates: vec![Template {
                incident_type: "default".into(),
                description: "Federated response: security team and service team duties per phase".into(),
                roles: vec!["INCIDENT_RESPONSE_LEAD".into(), "SECURITY_INCIDENT_OWNER".into()],
                tasks: vec![
                    t(DetectionAnalysis, Sec, "Security monitoring and analysis"),
                    t(DetectionAnalysis, Sec, "Indicator of compromise (IOC) sweeps"),
                    t(DetectionAnalysis, Sec, "Breach hunt"),
                    t(DetectionAnalysis, Sec, "Security on-call takes the incident response lead"),
                    t(DetectionAnalysis, Svc, "Service analysis and insight"),
                    t(DetectionAnalysis, Svc, "Event and alert triage"),
                    t(DetectionAnalysis, Svc, "Engage the service engineering on-call"),
                    t(Containment, Sec, "Forensics investigation"),
                    t(Containment, Sec, "Security expertise and consulting"),
                    t(Containment, Svc, "Name the security incident owner"),
                    t(Containment, Svc, "Execute containment"),
                    t(Eradication, Svc, "Execute eradication"),
                    t(Eradication, Sec, "Confirm eradication with forensics"),
                    t(Recovery, Sec, "Recovery guidance"),
                    t(Recovery, Svc, "Execute recovery"),
                    t(PostIncident, Sec, "Lead the post-incident analysis"),
                    t(PostIncident, Sec, "Data collection and archival"),
                    t(PostIncident, Sec, "Lessons learned and bug requests"),
                    t(PostIncident, Sec, "Incident reporting"),
                    t(PostIncident, Svc, "Service-side incident analysis"),
                    t(PostIncident, Svc, "Prioritize follow-up activities"),
                    t(PostIncident, Svc, "Implement security investments"),
                    t(PostIncident, Svc, "Service security readiness"),
                ],
            }],
            contacts: vec![
                Contact {
                    team: "security-response".into(),
                    description: "Security response team: 24x7 on-call, incident response lead".into(),
                    channel: String::new(),
                    on_call: Vec::new(),
                },
                Contact {
                    team: "customer-communications".into(),
                    description: "Customer communications about security incidents".into(),
                    channel: String::new(),
                    on_call: Vec::new(),
                },
            ],
            notification_rules: vec![NotificationRule {
                name: "customer-data".into(),
                description: "Customer data affected: involve communications; customer and regulator notices are due within 72 h".into(),
                min_severity: None,
                customer_data_affected: true,
                notify: vec!["customer-communications".into()],
            }],
            notification_deadline_hours: DEFAULT_DEADLINE_HOURS,
            time_horizon_days: DEFAULT_HORIZON_DAYS,
        }
    }

    /// The time horizon in microseconds (validated at load to be 1–3,652,425 days).
    pub fn horizon_micros(&self) -> i64 {
        self.time_horizon_days
            .clamp(1, MAX_HORIZON_DAYS)
            .saturating_mul(86_400_000_000)
    }

    /// The notification deadline in hours (validated at load to be 1–8760).
    pub fn deadline_hours(&self) -> u32 {
        u32::try_from(self.notification_deadline_hours).unwrap_or(DEFAULT_DEADLINE_HOURS as u32)
    }

    /// Every problem with the configuration, or Ok.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut errors = Vec::new();
        let mut types = HashSet::new();
        if !self.templates.iter().any(|t| t.incident_type == "default") {
            errors.push("a template for incident_type `default` is required".to_string());
        }
        for t in &self.templates {
            if !is_slug(&t.incident_type) {
                errors.push(format!(
                    "template incident_type `{}` is not a lowercase slug",
                    t.incident_type
                ));
            }
            if !types.insert(t.incident_type.as_str()) {
                errors.push(format!(
                    "two templates for incident_type `{}`",
                    t.incident_type
                ));
            }
            for r in &t.roles {
                if !ROLES.contains(&r.as_str()) {
                    errors.push(format!(
                        "template `{}`: unknown role `{r}`",
                        t.incident_type
                    ));
                }
            }
            for task in &t.tasks {
                if task.title.trim().is_empty() || task.title.chars().count() > 200 {
                    errors.push(format!(
                        "template `{}`: task titles must have 1–200 characters",
                        t.incident_type
                    ));
                }
            }
        }
        let mut teams = HashSet::new();
        for c in &self.contacts {
            if !is_slug(&c.team) {
                errors.push(format!("contact team `{}` is not a lowercase slug", c.team));
            }
            if !teams.insert(c.team.as_str()) {
                errors.push(format!("two contacts for team `{}`", c.team));
            }
        }
        for r in &self.notification_rules {
            if let Some(s) = &r.min_severity
                && !SEVERITIES.contains(&s.as_str())
            {
                errors.push(format!("rule `{}`: unknown min_severity `{s}`", r.name));
            }
            for team in &r.notify {
                if !teams.contains(team.as_str()) {
                    errors.push(format!(
                        "rule `{}` notifies `{team}`, which is not a contact",
                        r.name
                    ));
                }
            }
        }
        if !(1..=MAX_DEADLINE_HOURS).contains(&self.notification_deadline_hours) {
            errors.push(format!(
                "notification_deadline_hours must be a whole number of hours from 1 to \
                 {MAX_DEADLINE_HOURS} (got {})",
                self.notification_deadline_hours
            ));
        }
        if !(1..=MAX_HORIZON_DAYS).contains(&self.time_horizon_days) {
            errors.push(format!(
                "time_horizon_days must be a whole number of days from 1 to {MAX_HORIZON_DAYS} \
                 (got {})",
                self.time_horizon_days
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// The template of an incident type (or the default one).
    pub fn template(&self, incident_type: &str) -> Option<&Template> {
        self.templates
            .iter()
            .find(|t| t.incident_type == incident_type)
            .or_else(|| self.templates.iter().find(|t| t.incident_type == "default"))
    }

    /// Loads and validates a TOML file, or returns the built-in preparation.
    pub fn load(file: Option<&std::path::Path>) -> Result<Self, String> {
        let prep = match file {
            None => Preparation::builtin(),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read preparation {}: {e}", path.display()))?;
                toml::from_str(&text)
                    .map_err(|e| format!("invalid preparation {}: {e}", path.display()))?
            }
        };
        prep.validate()
            .map_err(|errors| format!("invalid preparation: {}", errors.join("; ")))?;
        Ok(prep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_is_valid_and_covers_both_teams_in_every_phase() {
        let p = Preparation::builtin();
        assert_eq!(p.validate(), Ok(()));
        let t = p.template("anything").expect("default");
        for phase in [
            TaskPhase::DetectionAnalysis,
            TaskPhase::Containment,
            TaskPhase::Eradication,
            TaskPhase::Recovery,
            TaskPhase::PostIncident,
        ] {
            for owner in [OwnerTeam::SecurityTeam, OwnerTeam::ServiceTeam] {
                assert!(
                    t.tasks.iter().any(|x| x.phase == phase && x.owner == owner),
                    "{phase:?} {owner:?}"
                );
            }
        }
    }

    #[test]
    fn files_are_validated() {
        let good: Preparation = toml::from_str(
            r#"
[[templates]]
incident_type = "default"
roles = ["INCIDENT_RESPONSE_LEAD"]
tasks = [{ phase = "CONTAINMENT", owner = "SERVICE_TEAM", title = "Rotate keys" }]

[[templates]]
incident_type = "ransomware"
tasks = [{ phase = "DETECTION_ANALYSIS", owner = "SECURITY_TEAM", title = "Identify the strain" }]

[[contacts]]
team = "security-response"
on_call = ["ana@example.com", "kim@example.com"]

[[notification_rules]]
name = "critical"
min_severity = "CRITICAL"
notify = ["security-response"]
"#,
        )
        .expect("parses");
        assert_eq!(good.validate(), Ok(()));
        assert_eq!(good.template("ransomware").map(|t| t.tasks.len()), Some(1));
        assert_eq!(
            good.template("phishing").map(|t| t.incident_type.as_str()),
            Some("default")
        );

        let mut bad = good.clone();
        bad.templates.remove(0);
        bad.notification_rules[0].notify = vec!["nobody".into()];
        bad.notification_rules[0].min_severity = Some("SEVERE".into());
        bad.templates[0].roles = vec!["JANITOR".into()];
        bad.notification_deadline_hours = 0;
        let errors = bad.validate().expect_err("invalid");
        assert_eq!(errors.len(), 5, "{errors:?}");
        assert!(
            toml::from_str::<Preparation>(
                "[[templates]]\nincident_type = \"x\"\ntasks = []\nextra = 1"
            )
            .is_err()
        );
    }

    #[test]
    fn the_notification_deadline_is_configurable_and_defaults_to_72_hours() {
        assert_eq!(Preparation::builtin().notification_deadline_hours, 72);
        assert_eq!(Preparation::builtin().deadline_hours(), 72);
        let parse = |extra: &str| {
            toml::from_str::<Preparation>(&format!(
                "{extra}\n[[templates]]\nincident_type = \"default\"\ntasks = []"
            ))
        };
        let unset = parse("").expect("parses");
        assert_eq!(unset.notification_deadline_hours, 72);
        assert_eq!(unset.validate(), Ok(()));
        let day = parse("notification_deadline_hours = 24").expect("parses");
        assert_eq!(day.deadline_hours(), 24);
        assert_eq!(day.validate(), Ok(()));
        for bad in [0, -1, 8761] {
            let p = parse(&format!("notification_deadline_hours = {bad}")).expect("parses");
            let errors = p.validate().expect_err("out of range");
            assert!(
                errors[0].contains("notification_deadline_hours"),
                "{errors:?}"
            );
        }
        assert!(parse("notification_deadline_hours = 1.5").is_err());
        assert!(parse("notification_deadline_hours = \"72\"").is_err());
    }

    #[test]
    fn an_out_of_range_deadline_stops_the_start() {
        let path =
            std::env::temp_dir().join(format!("incident-preparation-{}.toml", std::process::id()));
        let file = "notification_deadline_hours = 0\n[[templates]]\nincident_type = \"default\"\ntasks = []\n";
        std::fs::write(&path, file).expect("temp file");
        let loaded = Preparation::load(Some(&path));
        let _ = std::fs::remove_file(&path);
        assert_eq!(
            loaded.expect_err("refused"),
            "invalid preparation: notification_deadline_hours must be a whole number of hours \
             from 1 to 8760 (got 0)"
        );
    }
}
