//! The roll-up tree of a scope — enterprise → business units → services, with `unassigned`
//! under the enterprise — as the groups each service summarises, and the nodes assembled from
//! their answers.

use std::collections::HashMap;

use assurance_proto::{
    gateway::v1::{NodeKind, PostureNode},
    incident::v1::{IncidentGroup, IncidentSummary},
    risk::v1::{AppetiteThresholds, RiskGroup, RiskSummary},
};

use super::{appetite::Scope, registry::Registry};

/// The key of the node of services incidents name that the registry does not know.
pub const UNASSIGNED: &str = "unassigned";

/// A node before its figures are known.
#[derive(Debug, Clone)]
pub struct Spec {
    pub key: String,
    pub kind: NodeKind,
    pub display_name: String,
    /// Its services (ids); for `unassigned`, every registry service (complemented).
    pub services: Vec<String>,
    /// The incident group is the complement of `services`.
    pub complement: bool,
    /// Whether it has risk figures (every node but `unassigned`).
    pub risks: bool,
    pub children: Vec<Spec>,
}

fn service_spec(id: &str, display_name: String) -> Spec {
    Spec {
        key: format!("services/{id}"),
        kind: NodeKind::Service,
        display_name,
        services: vec![id.to_string()],
        complement: false,
        risks: true,
        children: Vec::new(),
    }
}

fn unit_spec(registry: &Registry, id: &str) -> Option<Spec> {
    let unit = registry.units.get(id)?;
    Some(Spec {
        key: format!("businessUnits/{id}"),
        kind: NodeKind::BusinessUnit,
        display_name: unit.display_name.clone(),
        services: unit.services.clone(),
        complement: false,
        risks: true,
        children: unit
            .services
            .iter()
            .map(|s| {
                let name = registry
                    .services
                    .get(s)
                    .map(|s| s.display_name.clone())
                    .unwrap_or_default();
                service_spec(s, name)
            })
            .collect(),
    })
}

/// The tree of `scope` over `registry`; `None` when the registry does not know the scope.
pub fn build(scope: &Scope, registry: &Registry) -> Option<Spec> {
    match scope {
        Scope::Service(id) => registry
            .services
            .get(id)
            .map(|s| service_spec(id, s.display_name.clone())),
        Scope::BusinessUnit(id) => unit_spec(registry, id),
        Scope::Enterprise => {
            let mut children: Vec<Spec> = registry
                .units
                .keys()
                .filter_map(|id| unit_spec(registry, id))
                .collect();
            children.push(Spec {
                key: UNASSIGNED.into(),
                kind: NodeKind::Unassigned,
                display_name: String::new(),
                services: registry.service_ids(),
                complement: true,
                risks: false,
                children: Vec::new(),
            });
            Some(Spec {
                key: "enterprise".into(),
                kind: NodeKind::Enterprise,
                display_name: String::new(),
                services: registry.service_ids(),
                complement: false,
                risks: true,
                children,
            })
        }
    }
}

/// The incident-only tree of `scope` when the registry is unknown: the scope's node alone
/// (the enterprise: every incident; a service: its own), or `None` for a business unit, whose
/// services only the registry knows.
pub fn without_registry(scope: &Scope) -> Option<Spec> {
    match scope {
        Scope::Enterprise => Some(Spec {
            key: "enterprise".into(),
            kind: NodeKind::Enterprise,
            display_name: String::new(),
            services: Vec::new(),
            complement: true,
            risks: false,
            children: Vec::new(),
        }),
        Scope::Service(id) => Some(Spec {
            risks: false,
            ..service_spec(id, String::new())
        }),
        Scope::BusinessUnit(_) => None,
    }
}

impl Spec {
    fn walk<'a>(&'a self, out: &mut Vec<&'a Spec>) {
        out.push(self);
        for child in &self.children {
            child.walk(out);
        }
    }

    /// Every node, parents first.
    pub fn nodes(&self) -> Vec<&Spec> {
        let mut out = Vec::new();
        self.walk(&mut out);
        out
    }

    pub fn risk_groups(&self) -> Vec<RiskGroup> {
        self.nodes()
            .into_iter()
            .filter(|n| n.risks)
            .map(|n| RiskGroup {
                key: n.key.clone(),
                services: n.services.iter().map(|s| format!("services/{s}")).collect(),
            })
            .collect()
    }

    pub fn incident_groups(&self) -> Vec<IncidentGroup> {
        self.nodes()
            .into_iter()
            .map(|n| {
                // The enterprise's incidents are all incidents, the registry's services or not.
                let (services, complement) = if n.kind == NodeKind::Enterprise {
                    (Vec::new(), true)
                } else {
                    (
                        n.services.iter().map(|s| format!("services/{s}")).collect(),
                        n.complement,
                    )
                };
                IncidentGroup {
                    key: n.key.clone(),
                    services,
                    complement,
                }
            })
            .collect()
    }

    /// The node with its figures (taken out of the maps) and its children's.
    pub fn assemble(
        &self,
        risks: &mut HashMap<String, RiskSummary>,
        incidents: &mut HashMap<String, IncidentSummary>,
        appetites: &HashMap<String, AppetiteThresholds>,
    ) -> PostureNode {
        PostureNode {
            scope: self.key.clone(),
            kind: self.kind as i32,
            display_name: self.display_name.clone(),
            risks: risks.remove(&self.key),
            incidents: incidents.remove(&self.key),
            appetite: appetites.get(&self.key).cloned(),
            children: self
                .children
                .iter()
                .map(|c| c.assemble(risks, incidents, appetites))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::posture::registry::{Service, Unit};

    fn registry() -> Registry {
        let mut r = Registry::default();
        for (bu, services) in [("retail", vec!["pos", "shop"]), ("empty", vec![])] {
            r.units.insert(
                bu.into(),
                Unit {
                    display_name: bu.to_uppercase(),
                    services: services.iter().map(|s| s.to_string()).collect(),
                },
            );
            for s in services {
                r.services.insert(
                    s.into(),
                    Service {
                        display_name: s.to_uppercase(),
                        business_unit: bu.into(),
                    },
                );
            }
        }
        r
    }

    #[test]
    fn the_enterprise_tree_and_its_groups() {
        let tree = build(&Scope::Enterprise, &registry()).expect("tree");
        let keys: Vec<_> = tree.nodes().iter().map(|n| n.key.clone()).collect();
        assert_eq!(
            keys,
            [
                "enterprise",
                "businessUnits/empty",
                "businessUnits/retail",
                "services/pos",
                "services/shop",
                "unassigned"
            ]
        );
        let risk_groups = tree.risk_groups();
        assert_eq!(risk_groups.len(), 5, "no risk group for unassigned");
        assert_eq!(risk_groups[0].services, ["services/pos", "services/shop"]);
        let incident_groups = tree.incident_groups();
        assert!(incident_groups[0].complement && incident_groups[0].services.is_empty());
        let unassigned = &incident_groups[5];
        assert!(unassigned.complement);
        assert_eq!(unassigned.services, ["services/pos", "services/shop"]);
        assert!(build(&Scope::BusinessUnit("nope".into()), &registry()).is_none());
        assert!(without_registry(&Scope::BusinessUnit("retail".into())).is_none());
    }
}
