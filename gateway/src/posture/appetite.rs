//! Risk appetite: which version of each scope is in force at a time, and the effective
//! appetite and tolerance of a scope — inherited down enterprise → business unit → service,
//! each override capped to its parent's tolerance.

use std::collections::HashMap;

use assurance_proto::r#type::v1::Severity;

use crate::store::appetite_version::Model as Version;

/// The built-in enterprise values, in force until the enterprise sets its own.
pub const DEFAULT_APPETITE: Severity = Severity::Medium;
pub const DEFAULT_TOLERANCE: Severity = Severity::High;

/// A scope of the roll-up tree that can carry an appetite.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    Enterprise,
    BusinessUnit(String),
    Service(String),
}

impl Scope {
    /// `enterprise`, `businessUnits/{id}` or `services/{id}` (ids are slugs).
    pub fn parse(name: &str) -> Option<Scope> {
        use assurance_runtime::validate::{is_slug, name_id};
        if name == "enterprise" {
            return Some(Scope::Enterprise);
        }
        if let Some(id) = name_id(name, "businessUnits").filter(|id| is_slug(id)) {
            return Some(Scope::BusinessUnit(id.to_string()));
        }
        name_id(name, "services")
            .filter(|id| is_slug(id))
            .map(|id| Scope::Service(id.to_string()))
    }

    /// The scope of an appetite's resource name (`{scope}/riskAppetite`).
    pub fn of_appetite(name: &str) -> Option<Scope> {
        name.strip_suffix("/riskAppetite").and_then(Scope::parse)
    }

    pub fn name(&self) -> String {
        match self {
            Scope::Enterprise => "enterprise".into(),
            Scope::BusinessUnit(id) => format!("businessUnits/{id}"),
            Scope::Service(id) => format!("services/{id}"),
        }
    }

    pub fn appetite_name(&self) -> String {
        format!("{}/riskAppetite", self.name())
    }
}

/// One effective value and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    pub severity: i32,
    /// The scope whose version set it; `None` for the built-in default.
    pub source: Option<Scope>,
    /// Lowered to a parent's tolerance.
    pub capped: bool,
}

/// The effective appetite and tolerance of a scope, and the versions they came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    pub appetite: Value,
    pub tolerance: Value,
    /// `(scope, version)` of every version in force along the chain.
    pub versions: Vec<(Scope, i64)>,
}

/// Every scope's versions, oldest first.
#[derive(Debug, Default, Clone)]
pub struct Versions {
    by_scope: HashMap<String, Vec<Version>>,
}

impl Versions {
    pub fn new(rows: Vec<Version>) -> Versions {
        let mut by_scope: HashMap<String, Vec<Version>> = HashMap::new();
        for row in rows {
            by_scope.entry(row.scope.clone()).or_default().push(row);
        }
        Versions { by_scope }
    }

    /// The version of `scope` in force at `at`: the latest effective time at or before `at`,
    /// and of two with the same effective time the later version. A version set to take
    /// effect later stays scheduled when another is set meanwhile.
    pub fn in_force(&self, scope: &Scope, at: i64) -> Option<&Version> {
        self.by_scope
            .get(&scope.name())?
            .iter()
            .filter(|v| v.effective_time <= at)
            .max_by_key(|v| (v.effective_time, v.version))
    }

    /// The effective values of the last scope of `chain` (enterprise first, then its business
    /// unit, then the service) at `at`.
    pub fn effective(&self, chain: &[Scope], at: i64) -> Effective {
        let mut appetite = Value {
            severity: DEFAULT_APPETITE as i32,
            source: None,
            capped: false,
        };
        let mut tolerance = Value {
            severity: DEFAULT_TOLERANCE as i32,
            source: None,
            capped: false,
        };
        let mut versions = Vec::new();
        for (depth, scope) in chain.iter().enumerate() {
            let Some(v) = self.in_force(scope, at) else {
                continue;
            };
            versions.push((scope.clone(), v.version));
            let ceiling = tolerance.severity;
            let set = |value: &mut Value, own: i32| {
                if own > 0 {
                    let capped = depth > 0 && own > ceiling;
                    *value = Value {
                        severity: if capped { ceiling } else { own },
                        source: Some(scope.clone()),
                        capped,
                    };
                }
            };
            set(&mut tolerance, v.tolerance);
            set(&mut appetite, v.appetite);
        }
        if appetite.severity > tolerance.severity {
            appetite.severity = tolerance.severity;
            appetite.capped = true;
        }
        Effective {
            appetite,
            tolerance,
            versions,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(scope: &str, version: i64, appetite: Severity, tolerance: Severity, at: i64) -> Version {
        Version {
            scope: scope.into(),
            version,
            appetite: appetite as i32,
            tolerance: tolerance as i32,
            effective_time: at,
            reason: String::new(),
            set_by: String::new(),
            principal: String::new(),
            create_time: 0,
        }
    }

    fn chain() -> Vec<Scope> {
        vec![
            Scope::Enterprise,
            Scope::BusinessUnit("retail".into()),
            Scope::Service("shop".into()),
        ]
    }

    #[test]
    fn scopes_parse_and_name() {
        assert_eq!(Scope::parse("enterprise"), Some(Scope::Enterprise));
        assert_eq!(
            Scope::of_appetite("businessUnits/retail/riskAppetite"),
            Some(Scope::BusinessUnit("retail".into()))
        );
        assert_eq!(Scope::parse("services/Shop"), None);
        assert_eq!(Scope::parse("services/a/b"), None);
        assert_eq!(Scope::parse("unassigned"), None);
        assert_eq!(
            Scope::Service("shop".into()).appetite_name(),
            "services/shop/riskAppetite"
        );
    }

    #[test]
    fn defaults_inheritance_overrides_and_caps() {
        let none = Versions::default().effective(&chain(), 10);
        assert_eq!(none.appetite.severity, Severity::Medium as i32);
        assert_eq!(none.tolerance.severity, Severity::High as i32);
        assert_eq!(none.appetite.source, None);

        let versions = Versions::new(vec![
            v("enterprise", 1, Severity::Low, Severity::High, 0),
            // The business unit overrides its appetite only.
            v(
                "businessUnits/retail",
                1,
                Severity::Medium,
                Severity::Unspecified,
                0,
            ),
            // Later the enterprise lowers its tolerance below the unit's appetite.
            v("enterprise", 2, Severity::Low, Severity::Medium, 100),
            // The service asks for more than its parent tolerates.
            v(
                "services/shop",
                1,
                Severity::Unspecified,
                Severity::Critical,
                0,
            ),
        ]);
        let before = versions.effective(&chain(), 50);
        assert_eq!(before.appetite.severity, Severity::Medium as i32);
        assert_eq!(
            before.appetite.source,
            Some(Scope::BusinessUnit("retail".into()))
        );
        assert_eq!(before.tolerance.severity, Severity::High as i32);
        assert!(before.tolerance.capped);
        assert_eq!(before.tolerance.source, Some(Scope::Service("shop".into())));
        assert_eq!(before.versions.len(), 3);

        let after = versions.effective(&chain(), 100);
        assert_eq!(after.tolerance.severity, Severity::Medium as i32);
        assert_eq!(after.appetite.severity, Severity::Medium as i32);
        assert!(after.versions.contains(&(Scope::Enterprise, 2)));
    }

    #[test]
    fn a_scheduled_version_stays_scheduled() {
        let versions = Versions::new(vec![
            v("enterprise", 1, Severity::Low, Severity::High, 0),
            v("enterprise", 2, Severity::Medium, Severity::Critical, 1000),
            v("enterprise", 3, Severity::Low, Severity::Medium, 10),
        ]);
        let at = |t| versions.in_force(&Scope::Enterprise, t).map(|v| v.version);
        assert_eq!(at(5), Some(1));
        assert_eq!(at(10), Some(3));
        assert_eq!(at(1000), Some(2));
    }
}
