//! incident-service's link to risk-service, and the relay receiver that delivers its outbox
//! events there:
//! - `incident.identified_risk` → `CreateRisk` (source INCIDENT, `source_reference` the
//!   incident; the event id is the request id), then an IDENTIFIED risk link on the incident
//!   and the risk's name on the review's identified risk;
//! - `incident.risk_realized` → `RecordRiskRealization` (the event id is the request id).
//!
//! `incident.follow_up` events are for the tracker sync and stay queued here.

use std::{pin::Pin, sync::Arc, time::Duration};

use assurance_proto::{risk::v1 as rpb, r#type::v1::Severity};
use assurance_runtime::{
    auth::client::Bearer,
    outbox::{
        outbox_event,
        relay::{Outcome, Receiver},
    },
    time::parse_rfc3339,
};
use serde::Deserialize;
use tonic::{Status, transport::Channel};

use crate::store::{Store, outbox};

/// A boxed future, for the object-safe [`RiskRegister`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What incident-service asks of risk-service: over gRPC with its `system` credential
/// ([`RemoteRisks`]), or in process (`gateway --embedded`).
pub trait RiskRegister: Send + Sync + 'static {
    fn create_risk(
        &self,
        request: rpb::CreateRiskRequest,
    ) -> BoxFuture<'_, Result<rpb::Risk, Status>>;
    fn record_realization(
        &self,
        request: rpb::RecordRiskRealizationRequest,
    ) -> BoxFuture<'_, Result<(), Status>>;
    /// OK when the org registry has the service; NOT_FOUND when it does not.
    fn get_service(&self, request: rpb::GetServiceRequest) -> BoxFuture<'_, Result<(), Status>>;
}

/// risk-service over gRPC (`--risk-url`), as the `system` principal of `--service-token-file`.
pub struct RemoteRisks {
    risks: rpb::risk_service_client::RiskServiceClient<Bearer<Channel>>,
    org: rpb::organization_service_client::OrganizationServiceClient<Bearer<Channel>>,
}

impl RemoteRisks {
    pub fn new(channel: Channel, token: &str) -> Result<Self, String> {
        let bearer = Bearer::new(channel, token)?;
        Ok(RemoteRisks {
            risks: rpb::risk_service_client::RiskServiceClient::new(bearer.clone()),
            org: rpb::organization_service_client::OrganizationServiceClient::new(bearer),
        })
    }
}

impl RiskRegister for RemoteRisks {
    fn create_risk(
        &self,
        request: rpb::CreateRiskRequest,
    ) -> BoxFuture<'_, Result<rpb::Risk, Status>> {
        let mut client = self.risks.clone();
        Box::pin(async move { Ok(client.create_risk(request).await?.into_inner()) })
    }

    fn record_realization(
        &self,
        request: rpb::RecordRiskRealizationRequest,
    ) -> BoxFuture<'_, Result<(), Status>> {
        let mut client = self.risks.clone();
        Box::pin(async move {
            client.record_risk_realization(request).await?;
            Ok(())
        })
    }

    fn get_service(&self, request: rpb::GetServiceRequest) -> BoxFuture<'_, Result<(), Status>> {
        let mut client = self.org.clone();
        Box::pin(async move {
            client.get_service(request).await?;
            Ok(())
        })
    }
}

/// How long a check of `affected_services` waits for the registry before accepting them.
pub const REGISTRY_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The services of `names` (`services/{id}`) that the registry does not have. A registry
/// that cannot be asked (unreachable, slow, refusing) checks nothing: the incident is
/// accepted and its unknown services fall under `unassigned` in posture.
pub async fn unknown_services(risks: &dyn RiskRegister, names: &[String]) -> Vec<usize> {
    let mut unknown = Vec::new();
    for (n, name) in names.iter().enumerate() {
        let ask = risks.get_service(rpb::GetServiceRequest { name: name.clone() });
        match tokio::time::timeout(REGISTRY_CHECK_TIMEOUT, ask).await {
            Ok(Ok(())) => {}
            Ok(Err(status)) if status.code() == tonic::Code::NotFound => unknown.push(n),
            Ok(Err(status)) => {
                tracing::warn!(code = ?status.code(), message = status.message(), "org registry check skipped");
                return Vec::new();
            }
            Err(_) => {
                tracing::warn!("org registry check skipped: no answer in time");
                return Vec::new();
            }
        }
    }
    unknown
}

/// Delivers incident-service's events for risk-service.
pub struct RiskReceiver {
    store: Store,
    risks: Arc<dyn RiskRegister>,
}

impl RiskReceiver {
    pub fn new(store: Store, risks: Arc<dyn RiskRegister>) -> Self {
        RiskReceiver { store, risks }
    }

    async fn identified_risk(&self, event: &outbox_event::Model) -> Result<Outcome, String> {
        let p: IdentifiedRiskPayload =
            serde_json::from_str(&event.payload).map_err(|e| format!("payload: {e}"))?;
        let threat = rpb::Threat::from_str_name(&p.threat).unwrap_or(rpb::Threat::Unspecified);
        let request = rpb::CreateRiskRequest {
            risk: Some(rpb::Risk {
                title: p.title,
                description: p.description,
                service: p.service,
                category: p.category,
                threat: threat as i32,
                identification_source: rpb::IdentificationSource::Incident as i32,
                source_reference: p.source_reference.clone(),
                owner: p.owner,
                ..Default::default()
            }),
            request_id: event.id.to_string(),
        };
        let risk = match self.risks.create_risk(request).await {
            Ok(risk) => risk,
            Err(status) => return Ok(Outcome::of_status(&status)),
        };
        let incident = p
            .source_reference
            .strip_prefix("incidents/")
            .and_then(|id| uuid::Uuid::parse_str(id).ok())
            .ok_or_else(|| format!("source_reference {:?}", p.source_reference))?;
        // A local failure (the database busy or away) is retried: CreateRisk answers the same
        // risk again for the same request id.
        Ok(
            match self
                .store
                .link_identified_risk(incident, p.index, &risk.name)
                .await
            {
                Ok(()) => Outcome::Delivered,
                Err(e) => Outcome::Retry {
                    error: format!("link {}: {e}", risk.name),
                    after: None,
                },
            },
        )
    }

    async fn risk_realized(&self, event: &outbox_event::Model) -> Result<Outcome, String> {
        let p: RealizedPayload =
            serde_json::from_str(&event.payload).map_err(|e| format!("payload: {e}"))?;
        let request = rpb::RecordRiskRealizationRequest {
            risk: p.risk,
            incident: p.incident,
            incident_severity: Severity::from_str_name(&p.incident_severity)
                .unwrap_or(Severity::Unspecified) as i32,
            realize_time: parse_rfc3339(&p.realize_time).map(assurance_runtime::time::to_timestamp),
            request_id: event.id.to_string(),
        };
        Ok(match self.risks.record_realization(request).await {
            Ok(()) => Outcome::Delivered,
            Err(status) => Outcome::of_status(&status),
        })
    }
}

#[derive(Deserialize)]
struct IdentifiedRiskPayload {
    #[serde(default)]
    index: usize,
    title: String,
    #[serde(default)]
    description: String,
    service: String,
    owner: String,
    #[serde(default)]
    threat: String,
    #[serde(default)]
    category: String,
    source_reference: String,
}

#[derive(Deserialize)]
struct RealizedPayload {
    risk: String,
    incident: String,
    incident_severity: String,
    realize_time: String,
}

impl Receiver for RiskReceiver {
    fn kinds(&self) -> &'static [&'static str] {
        &[outbox::IDENTIFIED_RISK, outbox::RISK_REALIZED]
    }

    async fn deliver(&self, event: &outbox_event::Model) -> Outcome {
        let outcome = match event.kind.as_str() {
            outbox::IDENTIFIED_RISK => self.identified_risk(event).await,
            outbox::RISK_REALIZED => self.risk_realized(event).await,
            other => Err(format!("no receiver for {other}")),
        };
        outcome.unwrap_or_else(|error| Outcome::Park { error })
    }
}
