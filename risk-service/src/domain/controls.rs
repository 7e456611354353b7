//! The controls framework's pure rules: control effectiveness, the control deficiency a risk
//! derives from its linked controls, and the validation of a control's fields (shared by the
//! API and the catalogue import, which name fields differently).
//!
//! **Derivation rule.** Each effectiveness scores as a control deficiency: `EFFECTIVE` 1,
//! `PARTIALLY_EFFECTIVE` 3, `NOT_TESTED` 4, `INEFFECTIVE` 5. A control scores the worse (the
//! higher) of its design and operating scores: a well designed control that does not operate
//! is no better than its operation. A risk's derived control deficiency is the best (the
//! lowest) score among its linked controls — the strongest control mitigates the risk — and 5
//! (no effective control) when it has none.

use std::collections::HashSet;

use assurance_runtime::validate::Violations;
use serde::{Deserialize, Serialize};

/// The `ControlEffectiveness` of `assurance.risk.v1`; the discriminants are its numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Effectiveness {
    Effective = 1,
    PartiallyEffective = 2,
    Ineffective = 3,
    NotTested = 4,
}

numbered!(Effectiveness {
    Effective => "EFFECTIVE",
    PartiallyEffective => "PARTIALLY_EFFECTIVE",
    Ineffective => "INEFFECTIVE",
    NotTested => "NOT_TESTED",
});

impl Effectiveness {
    /// The effectiveness numbered `v`; `None` for 0 (unspecified) and unknown numbers.
    pub fn from_i32(v: i32) -> Option<Self> {
        Self::try_from(v).ok()
    }

    /// Parses `EFFECTIVE` or `CONTROL_EFFECTIVENESS_EFFECTIVE`, in any case.
    pub fn parse(name: &str) -> Option<Self> {
        let upper = name.trim().to_ascii_uppercase();
        let bare = upper
            .strip_prefix("CONTROL_EFFECTIVENESS_")
            .unwrap_or(&upper);
        Self::ALL.iter().copied().find(|e| e.as_str() == bare)
    }

    /// The operating effectiveness after a failed test: one step down the tested scale
    /// (EFFECTIVE → PARTIALLY_EFFECTIVE → INEFFECTIVE). An untested control that failed is
    /// INEFFECTIVE: the failure is its first test, and NOT_TESTED already ranks below
    /// PARTIALLY_EFFECTIVE (see [`Self::deficiency`]).
    pub fn after_failure(self) -> Self {
        match self {
            Effectiveness::Effective => Effectiveness::PartiallyEffective,
            _ => Effectiveness::Ineffective,
        }
    }

    /// The control deficiency (1–5) this effectiveness amounts to.
    pub fn deficiency(self) -> u8 {
        match self {
            Effectiveness::Effective => 1,
            Effectiveness::PartiallyEffective => 3,
            Effectiveness::NotTested => 4,
            Effectiveness::Ineffective => 5,
        }
    }
}

/// The names accepted for an effectiveness, for error messages.
pub const EFFECTIVENESS_NAMES: &str = "EFFECTIVE, PARTIALLY_EFFECTIVE, INEFFECTIVE, NOT_TESTED";

/// The deficiency of one control: the worse of its design and operating effectiveness.
pub fn control_deficiency(design: Effectiveness, operating: Effectiveness) -> u8 {
    design.deficiency().max(operating.deficiency())
}

/// The control deficiency of a risk with `controls` linked, as (design, operating)
/// effectiveness: the lowest control deficiency among them, 5 with none. Unknown numbers (never
/// stored) count as `NOT_TESTED`.
pub fn derived_deficiency(controls: impl IntoIterator<Item = (i32, i32)>) -> u8 {
    let of = |v: i32| Effectiveness::from_i32(v).unwrap_or(Effectiveness::NotTested);
    controls
        .into_iter()
        .map(|(design, operating)| control_deficiency(of(design), of(operating)))
        .min()
        .unwrap_or(5)
}

/// An external requirement a control satisfies.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Requirement {
    pub framework: String,
    pub section: String,
}

pub const MAX_REQUIREMENTS: usize = 100;

/// The fields of a control, as validated and stored (effectiveness as proto numbers, times
/// in microseconds since the epoch).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ControlDraft {
    pub title: String,
    pub description: String,
    pub owner: String,
    pub design_effectiveness: i32,
    pub operating_effectiveness: i32,
    pub last_test_time: Option<i64>,
    pub requirements: Vec<Requirement>,
}

/// The mutable fields of a control, in the order they are checked.
pub const CONTROL_FIELDS: &[&str] = &[
    "title",
    "description",
    "owner",
    "design_effectiveness",
    "operating_effectiveness",
    "last_test_time",
    "requirements",
];

/// Test times may run ahead of this server's clock by this much.
const CLOCK_SKEW_MICROS: i64 = 5 * 60 * 1_000_000;

/// Checks `field` of a control, recording violations as `{prefix}.{field}` (requirements as
/// `{prefix}.requirements[i].framework`). `now` bounds `last_test_time`.
pub fn check_control_field(
    v: &mut Violations,
    prefix: &str,
    c: &mut ControlDraft,
    field: &str,
    now: i64,
) {
    let name = |f: &str| format!("{prefix}.{f}");
    match field {
        "title" => v.line(&name("title"), &c.title, true, 200),
        "description" => v.paragraph(&name("description"), &c.description, false, 10_000),
        "owner" => v.principal(&name("owner"), &mut c.owner, true),
        "design_effectiveness" | "operating_effectiveness" => {
            let value = if field == "design_effectiveness" {
                c.design_effectiveness
            } else {
                c.operating_effectiveness
            };
            if value == 0 {
                v.add(
                    name(field),
                    format!("is required: one of {EFFECTIVENESS_NAMES}"),
                );
            } else if Effectiveness::from_i32(value).is_none() {
                v.add(name(field), format!("{value} is not a known value"));
            }
        }
        "last_test_time" => {
            if let Some(t) = c.last_test_time
                && t > now.saturating_add(CLOCK_SKEW_MICROS)
            {
                v.add(name("last_test_time"), "must not be in the future");
            }
        }
        "requirements" => check_requirements(v, &name("requirements"), &c.requirements),
        _ => {}
    }
}

/// Checks every field of a control.
pub fn check_control(v: &mut Violations, prefix: &str, c: &mut ControlDraft, now: i64) {
    for field in CONTROL_FIELDS {
        check_control_field(v, prefix, c, field, now);
    }
}

/// At most [`MAX_REQUIREMENTS`]; framework and section single lines of 1–100 characters; no
/// (framework, section) pair twice.
pub fn check_requirements(v: &mut Violations, field: &str, requirements: &[Requirement]) {
    if requirements.len() > MAX_REQUIREMENTS {
        v.add(
            field,
            format!("must have at most {MAX_REQUIREMENTS} entries"),
        );
    }
    let mut seen = HashSet::new();
    for (i, r) in requirements.iter().enumerate() {
        v.line(&format!("{field}[{i}].framework"), &r.framework, true, 100);
        v.line(&format!("{field}[{i}].section"), &r.section, true, 100);
        if !seen.insert((r.framework.as_str(), r.section.as_str())) {
            v.add(
                format!("{field}[{i}]"),
                format!("repeats {} {}", r.framework, r.section),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Effectiveness::*;
    use assurance_runtime::ApiError;

    #[test]
    fn effectiveness_scores() {
        assert_eq!(Effective.deficiency(), 1);
        assert_eq!(PartiallyEffective.deficiency(), 3);
        assert_eq!(NotTested.deficiency(), 4);
        assert_eq!(Ineffective.deficiency(), 5);
        assert_eq!(Effectiveness::from_i32(0), None);
        assert_eq!(Effectiveness::from_i32(5), None);
        for &e in Effectiveness::ALL {
            assert_eq!(Effectiveness::from_i32(e as i32), Some(e));
            assert_eq!(Effectiveness::parse(e.as_str()), Some(e));
        }
        assert_eq!(
            Effectiveness::parse("control_effectiveness_partially_effective"),
            Some(PartiallyEffective)
        );
        assert_eq!(Effectiveness::parse("great"), None);
    }

    #[test]
    fn a_control_is_as_good_as_its_worse_side() {
        assert_eq!(control_deficiency(Effective, Effective), 1);
        assert_eq!(control_deficiency(Effective, PartiallyEffective), 3);
        assert_eq!(control_deficiency(PartiallyEffective, Effective), 3);
        assert_eq!(control_deficiency(Effective, NotTested), 4);
        assert_eq!(control_deficiency(NotTested, Ineffective), 5);
    }

    #[test]
    fn a_risk_takes_its_best_control() {
        let n = |e: Effectiveness| e as i32;
        assert_eq!(derived_deficiency([]), 5);
        assert_eq!(derived_deficiency([(n(Effective), n(Effective))]), 1);
        assert_eq!(derived_deficiency([(n(NotTested), n(NotTested))]), 4);
        assert_eq!(
            derived_deficiency([
                (n(Ineffective), n(Effective)),
                (n(Effective), n(PartiallyEffective)),
                (n(NotTested), n(Effective)),
            ]),
            3
        );
        assert_eq!(derived_deficiency([(n(Ineffective), n(Ineffective))]), 5);
        // Never stored, but never a panic: unknown counts as NOT_TESTED.
        assert_eq!(derived_deficiency([(0, 99)]), 4);
    }

    fn valid() -> ControlDraft {
        ControlDraft {
            title: "MFA enforcement".into(),
            description: "Conditional access requires MFA.".into(),
            owner: "iam@example.com".into(),
            design_effectiveness: Effective as i32,
            operating_effectiveness: NotTested as i32,
            last_test_time: Some(1_000),
            requirements: vec![Requirement {
                framework: "ISO 27001".into(),
                section: "A.5".into(),
            }],
        }
    }

    fn fields(v: Violations) -> Vec<String> {
        match v.finish() {
            Ok(()) => Vec::new(),
            Err(ApiError::InvalidArgument(list)) => list.into_iter().map(|x| x.field).collect(),
            Err(other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn validation_names_each_field() {
        let mut v = Violations::new();
        check_control(&mut v, "control", &mut valid(), 2_000);
        assert!(fields(v).is_empty());

        let mut bad = valid();
        bad.title = String::new();
        bad.owner = "two words".into();
        bad.design_effectiveness = 0;
        bad.operating_effectiveness = 9;
        bad.last_test_time = Some(i64::MAX);
        bad.requirements.push(Requirement {
            framework: String::new(),
            section: "CA-03".into(),
        });
        bad.requirements.push(bad.requirements[0].clone());
        let mut v = Violations::new();
        check_control(&mut v, "controls[3]", &mut bad, 2_000);
        assert_eq!(
            fields(v),
            [
                "controls[3].title",
                "controls[3].owner",
                "controls[3].design_effectiveness",
                "controls[3].operating_effectiveness",
                "controls[3].last_test_time",
                "controls[3].requirements[1].framework",
                "controls[3].requirements[2]",
            ]
        );
    }
}
