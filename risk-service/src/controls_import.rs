//! `risk-service import-controls FILE`: loads a controls catalogue (YAML for `.yaml`/`.yml`,
//! JSON for `.json`), validates every entry — all problems reported at once, each naming the
//! entry index and field — and upserts it in one transaction: new ids are created, changed
//! controls updated (their version, hence etag, bumped), identical ones left alone, so running
//! it twice changes nothing the second time. Controls absent from the file are kept. Changes are
//! audited as the `system:risk-service` principal running `ImportControls`.
//!
//! ```yaml
//! controls:
//!   - id: mfa-enforcement
//!     title: MFA enforced for every interactive sign-in
//!     owner: iam-team@example.com
//!     design_effectiveness: EFFECTIVE
//!     operating_effectiveness: PARTIALLY_EFFECTIVE
//!     last_test_time: "2026-09-30T00:00:00Z"
//!     requirements:
//!       - { framework: ISO 27001, section: A.5.17 }
//! ```

use std::{collections::HashMap, path::Path, process::ExitCode};

use assurance_runtime::{
    ApiError,
    auth::Caller,
    time::{now_micros, parse_rfc3339},
    validate::{Violations, is_slug},
};
use serde::Deserialize;

use crate::{
    api::controls::model,
    domain::controls::{
        CONTROL_FIELDS, ControlDraft, EFFECTIVENESS_NAMES, Effectiveness, Requirement,
        check_control,
    },
    store::{Store, StoreOptions, entities::control},
};

pub use crate::store::controls::ImportSummary;

/// Flags of `risk-service import-controls`.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// The catalogue: YAML (`.yaml`, `.yml`) or JSON (`.json`).
    pub file: std::path::PathBuf,
    /// Database URL, as for the server.
    #[arg(
        long,
        env = "RISK_DATABASE_URL",
        default_value = "sqlite://./data/risk.db?mode=rwc"
    )]
    pub database_url: String,
}

/// The format of a catalogue file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
}

impl Format {
    /// By extension: `.yaml`/`.yml` or `.json`.
    pub fn of(path: &Path) -> Result<Format, String> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("yaml" | "yml") => Ok(Format::Yaml),
            Some("json") => Ok(Format::Json),
            _ => Err(format!(
                "{}: a controls catalogue ends in .yaml, .yml or .json",
                path.display()
            )),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Catalogue {
    controls: Vec<serde_json::Value>,
}

/// The fields of a catalogue entry: its id, then the fields of a control.
const ENTRY_FIELDS: [&str; CONTROL_FIELDS.len() + 1] = {
    let mut fields = ["id"; CONTROL_FIELDS.len() + 1];
    let mut i = 0;
    while i < CONTROL_FIELDS.len() {
        fields[i + 1] = CONTROL_FIELDS[i];
        i += 1;
    }
    fields
};

/// The fields of one object of the catalogue, each read once and reported by its path.
struct Fields<'a> {
    at: String,
    map: Option<&'a serde_json::Map<String, serde_json::Value>>,
}

impl<'a> Fields<'a> {
    /// The object at `at`, or a violation; unknown keys are violations too.
    fn of(
        v: &mut Violations,
        at: String,
        value: &'a serde_json::Value,
        known: &[&str],
    ) -> Fields<'a> {
        let map = value.as_object();
        match map {
            None => v.add(&at, "must be a mapping of field names to values"),
            Some(map) => {
                for key in map.keys().filter(|k| !known.contains(&k.as_str())) {
                    v.add(
                        format!("{at}.{key}"),
                        format!("is not a known field; known: {}", known.join(", ")),
                    );
                }
            }
        }
        Fields { at, map }
    }

    fn path(&self, key: &str) -> String {
        format!("{}.{key}", self.at)
    }

    /// A text field; absent or null is `None`. Numbers and booleans are refused rather than
    /// converted (YAML reads `6.10` as the number 6.1).
    fn text(&self, v: &mut Violations, key: &str) -> Option<String> {
        match self.map?.get(key)? {
            serde_json::Value::Null => None,
            serde_json::Value::String(s) => Some(s.clone()),
            other => {
                v.add(
                    self.path(key),
                    format!("must be text (got {other}; quote it: \"{other}\")"),
                );
                None
            }
        }
    }

    fn list(&self, v: &mut Violations, key: &str) -> &'a [serde_json::Value] {
        match self.map.and_then(|m| m.get(key)) {
            None | Some(serde_json::Value::Null) => &[],
            Some(serde_json::Value::Array(items)) => items,
            Some(_) => {
                v.add(self.path(key), "must be a list");
                &[]
            }
        }
    }
}

fn effectiveness(v: &mut Violations, field: String, value: Option<&str>) -> i32 {
    match value {
        None => Effectiveness::NotTested as i32,
        Some(name) => match Effectiveness::parse(name) {
            Some(e) => e as i32,
            None => {
                v.add(
                    field,
                    format!("`{name}` is not one of {EFFECTIVENESS_NAMES}"),
                );
                0
            }
        },
    }
}

/// Parses and validates a catalogue; `now` bounds test times. The error lists every problem,
/// one per line, as `controls[i].field: description`.
pub fn parse_catalogue(
    text: &str,
    format: Format,
    now: i64,
) -> Result<Vec<control::Model>, String> {
    let catalogue: Catalogue = match format {
        Format::Yaml => serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?,
        Format::Json => serde_json::from_str(text).map_err(|e| e.to_string())?,
    };
    let mut v = Violations::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    for (i, value) in catalogue.controls.iter().enumerate() {
        let entry = Fields::of(&mut v, format!("controls[{i}]"), value, &ENTRY_FIELDS);
        let id = entry.text(&mut v, "id").unwrap_or_default();
        if id.is_empty() {
            v.add(entry.path("id"), "is required");
        } else if !is_slug(&id) {
            v.add(
                entry.path("id"),
                "must be a lowercase slug: a letter, then up to 62 of a-z 0-9 -, not ending in -",
            );
        } else if let Some(first) = seen.insert(id.clone(), i) {
            v.add(
                entry.path("id"),
                format!("repeats controls[{first}] ({id})"),
            );
        }
        let title = entry.text(&mut v, "title").unwrap_or_default();
        let description = entry.text(&mut v, "description").unwrap_or_default();
        let owner = entry.text(&mut v, "owner").unwrap_or_default();
        let design = entry.text(&mut v, "design_effectiveness");
        let design = effectiveness(
            &mut v,
            entry.path("design_effectiveness"),
            design.as_deref(),
        );
        let operating = entry.text(&mut v, "operating_effectiveness");
        let operating = effectiveness(
            &mut v,
            entry.path("operating_effectiveness"),
            operating.as_deref(),
        );
        let last_test_time = entry.text(&mut v, "last_test_time").and_then(|t| {
            let micros = parse_rfc3339(&t);
            if micros.is_none() {
                v.add(
                    entry.path("last_test_time"),
                    format!("`{t}` is not an RFC 3339 time such as 2026-09-30T00:00:00Z"),
                );
            }
            micros
        });
        let mut requirements = Vec::new();
        for (j, item) in entry.list(&mut v, "requirements").iter().enumerate() {
            let r = Fields::of(
                &mut v,
                entry.path(&format!("requirements[{j}]")),
                item,
                &["framework", "section"],
            );
            requirements.push(Requirement {
                framework: r.text(&mut v, "framework").unwrap_or_default(),
                section: r.text(&mut v, "section").unwrap_or_default(),
            });
        }
        let d = ControlDraft {
            title,
            description,
            owner,
            design_effectiveness: design,
            operating_effectiveness: operating,
            last_test_time,
            requirements,
        };
        // Unknown effectiveness names are reported above; skip the "is required" echo.
        let mut checked = d.clone();
        for e in [
            &mut checked.design_effectiveness,
            &mut checked.operating_effectiveness,
        ] {
            if *e == 0 {
                *e = Effectiveness::NotTested as i32;
            }
        }
        check_control(&mut v, &entry.at, &mut checked, now);
        // The owner as checked: normalised like every principal.
        let d = ControlDraft {
            owner: checked.owner,
            ..d
        };
        out.push(model(&id, &d));
    }
    match v.finish() {
        Ok(()) => Ok(out),
        Err(ApiError::InvalidArgument(list)) => Err(list
            .into_iter()
            .map(|x| format!("{}: {}", x.field, x.description))
            .collect::<Vec<_>>()
            .join("\n")),
        Err(other) => Err(other.to_string()),
    }
}

/// Imports the catalogue at `path` into the database at `database_url` (migrating it first).
pub async fn run(database_url: &str, path: &Path) -> Result<ImportSummary, String> {
    let format = Format::of(path)?;
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let now = now_micros();
    let controls = parse_catalogue(&text, format, now)
        .map_err(|e| format!("invalid catalogue {}:\n{e}", path.display()))?;
    let options = StoreOptions {
        max_connections: 2,
        cache_size: 0,
        ..StoreOptions::default()
    };
    let store = Store::open(database_url, &options)
        .await
        .map_err(|e| format!("database: {e}"))?;
    let caller = Caller::system("risk-service", "ImportControls");
    store
        .import_controls(controls, &caller, now)
        .await
        .map_err(|e| match e {
            ApiError::Internal(detail) => format!("import failed: {detail}"),
            other => format!("import failed: {other}"),
        })
}

/// The `import-controls` subcommand: prints the summary, or the problems on stderr.
pub async fn main(args: &ImportArgs) -> ExitCode {
    match run(&args.database_url, &args.file).await {
        Ok(summary) => {
            for (verb, names) in [("created", &summary.created), ("updated", &summary.updated)] {
                for name in names {
                    println!("{verb} {name}");
                }
            }
            println!("{}: {summary}", args.file.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("risk-service import-controls: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Cli, Command};
    use clap::{CommandFactory, Parser};

    const NOW: i64 = 1_800_000_000_000_000;

    const YAML: &str = r#"
controls:
  - id: mfa-enforcement
    title: MFA enforced for every interactive sign-in
    description: |
      Conditional access requires MFA.
    owner: iam-team@example.com
    design_effectiveness: EFFECTIVE
    operating_effectiveness: partially_effective
    last_test_time: 2026-09-30T00:00:00Z
    requirements:
      - { framework: ISO 27001, section: A.5.17 }
      - framework: SOC 2
        section: CC6.1
  - id: backup-restore
    title: Quarterly restore tests
    owner: sre@example.com
"#;

    #[test]
    fn yaml_catalogue() {
        let controls = parse_catalogue(YAML, Format::Yaml, NOW).expect("valid");
        assert_eq!(controls.len(), 2);
        let mfa = &controls[0];
        assert_eq!(mfa.id, "mfa-enforcement");
        assert_eq!(mfa.description, "Conditional access requires MFA.\n");
        assert_eq!(mfa.design_effectiveness, Effectiveness::Effective as i32);
        assert_eq!(
            mfa.operating_effectiveness,
            Effectiveness::PartiallyEffective as i32
        );
        assert_eq!(mfa.last_test_time, parse_rfc3339("2026-09-30T00:00:00Z"));
        let reqs = crate::store::controls::requirements_of(mfa);
        assert_eq!(reqs.len(), 2);
        assert_eq!(reqs[1].framework, "SOC 2");
        // Omitted effectiveness: never tested.
        assert_eq!(
            controls[1].design_effectiveness,
            Effectiveness::NotTested as i32
        );
        assert_eq!(controls[1].last_test_time, None);
    }

    #[test]
    fn json_catalogue() {
        let json = r#"{"controls": [{"id": "dlp", "title": "DLP on mail", "owner": "sec@example.com",
            "requirements": [{"framework": "FedRAMP", "section": "RA-3"}]}]}"#;
        let controls = parse_catalogue(json, Format::Json, NOW).expect("valid");
        assert_eq!(controls[0].id, "dlp");
    }

    #[test]
    fn every_problem_names_its_entry_and_field() {
        let yaml = r#"
controls:
  - id: Bad_Id
    title: ""
    owner: a@example.com
    design_effectiveness: great
    last_test_time: yesterday
  - id: dup
    title: t
    owner: o@example.com
  - id: dup
    title: t
    owner: o@example.com
    requirements:
      - { framework: SOC 2, section: "" }
      - { framework: ISO 22301, section: 6.1 }
  - id: typo
    title: t
    ownr: o@example.com
  - just text
"#;
        let err = parse_catalogue(yaml, Format::Yaml, NOW).expect_err("invalid");
        let lines: Vec<&str> = err.lines().collect();
        for expected in [
            "controls[0].id: must be a lowercase slug",
            "controls[0].design_effectiveness: `great` is not one of",
            "controls[0].last_test_time: `yesterday` is not an RFC 3339 time",
            "controls[0].title: is required",
            "controls[2].id: repeats controls[1] (dup)",
            "controls[2].requirements[0].section: is required",
            "controls[2].requirements[1].section: must be text (got 6.1; quote it: \"6.1\")",
            "controls[3].ownr: is not a known field",
            "controls[3].owner: is required",
            "controls[4]: must be a mapping",
        ] {
            assert!(
                lines.iter().any(|l| l.starts_with(expected)),
                "{expected}\n{err}"
            );
        }
        assert!(
            !err.contains("controls[0].design_effectiveness: is required"),
            "{err}"
        );
        assert!(!err.contains("controls[1]."), "{err}");
    }

    #[test]
    fn malformed_documents() {
        assert!(parse_catalogue("controls: [", Format::Yaml, NOW).is_err());
        assert!(parse_catalogue("{}", Format::Json, NOW).is_err());
        assert!(parse_catalogue("controls: []\nextra: 1", Format::Yaml, NOW).is_err());
        assert_eq!(
            parse_catalogue("controls: []", Format::Yaml, NOW).map(|c| c.len()),
            Ok(0)
        );
    }

    #[test]
    fn formats_by_extension() {
        assert_eq!(Format::of(Path::new("c.yaml")), Ok(Format::Yaml));
        assert_eq!(Format::of(Path::new("c.YML")), Ok(Format::Yaml));
        assert_eq!(Format::of(Path::new("c.json")), Ok(Format::Json));
        assert!(Format::of(Path::new("c.toml")).is_err());
        assert!(Format::of(Path::new("catalogue")).is_err());
    }

    #[test]
    fn command_line() {
        Cli::command().debug_assert();
        let server = Cli::try_parse_from(["risk-service", "--listen", "127.0.0.1:9"])
            .expect("server flags parse");
        assert!(server.command.is_none());
        assert_eq!(server.config.listen.to_string(), "127.0.0.1:9");
        let import = Cli::try_parse_from([
            "risk-service",
            "import-controls",
            "catalogue.yaml",
            "--database-url",
            "postgres://db/risk",
        ])
        .expect("subcommand parses");
        let Some(Command::ImportControls(args)) = import.command else {
            panic!("expected import-controls")
        };
        assert_eq!(args.file, Path::new("catalogue.yaml"));
        assert_eq!(args.database_url, "postgres://db/risk");
        assert!(Cli::try_parse_from(["risk-service", "import-controls"]).is_err());
    }
}
