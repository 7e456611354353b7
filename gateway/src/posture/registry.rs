//! The org registry as the posture needs it: business units and their services, read from
//! risk-service (all pages) and kept as the last good copy, so the incident half can still be
//! grouped while risk-service is down.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use assurance_proto::risk::v1::{ListBusinessUnitsRequest, ListServicesRequest};
use assurance_runtime::validate::name_id;
use tokio::sync::RwLock;
use tonic::Status;

use super::upstream::{OnBehalf, Upstreams};

#[derive(Debug, Clone, Default)]
pub struct Unit {
    pub display_name: String,
    /// Service ids, ascending.
    pub services: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Service {
    pub display_name: String,
    pub business_unit: String,
}

/// Business units and services by id (ascending).
#[derive(Debug, Clone, Default)]
pub struct Registry {
    pub units: BTreeMap<String, Unit>,
    pub services: BTreeMap<String, Service>,
}

impl Registry {
    /// Every service id, ascending.
    pub fn service_ids(&self) -> Vec<String> {
        self.services.keys().cloned().collect()
    }
}

/// The registry, read fresh for each posture with the last good copy kept.
#[derive(Clone, Default)]
pub struct RegistryCache {
    last: Arc<RwLock<Option<Arc<Registry>>>>,
}

impl RegistryCache {
    /// A fresh registry within `budget`, or when risk-service does not answer the last good
    /// one (if any) with the error. With a registry read before, only half the budget is spent
    /// waiting for a fresh one, so that a late risk-service leaves the other half of the time to
    /// the incident half of the posture.
    pub async fn read(
        &self,
        upstreams: &Upstreams,
        on: &OnBehalf,
        budget: Duration,
    ) -> (Option<Arc<Registry>>, Option<Status>) {
        let last = self.last.read().await.clone();
        let budget = if last.is_some() { budget / 2 } else { budget };
        match tokio::time::timeout(budget, fetch(upstreams, on)).await {
            Ok(Ok(registry)) => {
                let registry = Arc::new(registry);
                *self.last.write().await = Some(registry.clone());
                (Some(registry), None)
            }
            Ok(Err(status)) => (last, Some(status)),
            Err(_) => (
                last,
                Some(Status::deadline_exceeded(format!(
                    "no answer within {budget:?}"
                ))),
            ),
        }
    }
}

async fn fetch(upstreams: &Upstreams, on: &OnBehalf) -> Result<Registry, Status> {
    let mut registry = Registry::default();
    let mut page_token = String::new();
    loop {
        let page = upstreams
            .business_units(
                on,
                ListBusinessUnitsRequest {
                    page_size: 1000,
                    page_token: std::mem::take(&mut page_token),
                    ..Default::default()
                },
            )
            .await?;
        for bu in page.business_units {
            if let Some(id) = name_id(&bu.name, "businessUnits") {
                registry.units.insert(
                    id.to_string(),
                    Unit {
                        display_name: bu.display_name,
                        services: Vec::new(),
                    },
                );
            }
        }
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    loop {
        let page = upstreams
            .services(
                on,
                ListServicesRequest {
                    page_size: 1000,
                    page_token: std::mem::take(&mut page_token),
                    ..Default::default()
                },
            )
            .await?;
        for service in page.services {
            let (Some(id), Some(bu)) = (
                name_id(&service.name, "services"),
                name_id(&service.business_unit, "businessUnits"),
            ) else {
                continue;
            };
            registry
                .units
                .entry(bu.to_string())
                .or_default()
                .services
                .push(id.to_string());
            registry.services.insert(
                id.to_string(),
                Service {
                    display_name: service.display_name,
                    business_unit: bu.to_string(),
                },
            );
        }
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    for unit in registry.units.values_mut() {
        unit.services.sort();
    }
    Ok(registry)
}
