//! How the gateway reaches the services' aggregate RPCs and the org registry: in-process in
//! embedded mode (the identity was checked once, at the gateway's edge), or over gRPC in
//! forwarding mode with the gateway's own `system` credential, naming the caller in
//! `x-on-behalf-of` — the services check that credential like any other.

use std::sync::Arc;

use assurance_proto::{
    incident::v1::{
        SummarizeIncidentsRequest, SummarizeIncidentsResponse,
        incident_summary_service_client::IncidentSummaryServiceClient,
        incident_summary_service_server::IncidentSummaryService,
    },
    risk::v1::{
        ListBusinessUnitsRequest, ListBusinessUnitsResponse, ListReportRisksRequest,
        ListReportRisksResponse, ListServicesRequest, ListServicesResponse, SummarizeRisksRequest,
        SummarizeRisksResponse, organization_service_client::OrganizationServiceClient,
        organization_service_server::OrganizationService,
        risk_summary_service_client::RiskSummaryServiceClient,
        risk_summary_service_server::RiskSummaryService,
    },
};
use assurance_runtime::auth::{Caller, Principal, Role, Roles, client::Bearer};
use tonic::{Request, Status, transport::Channel};

/// The services, in process or over gRPC.
#[derive(Clone)]
pub enum Upstreams {
    Local {
        org: Arc<risk_service::api::OrgApi>,
        risks: Arc<risk_service::api::summary::SummaryApi>,
        incidents: Arc<incident_service::api::summary::SummaryApi>,
        /// Action items, for `ListWorkItems`.
        actions: Arc<risk_service::api::RiskApi>,
        /// Follow-ups, for `ListWorkItems`.
        follow_ups: Arc<incident_service::api::IncidentApi>,
    },
    Remote {
        risk: Channel,
        incident: Channel,
        /// The gateway's `system` token; `None` presents each caller's own credential.
        token: Option<Arc<str>>,
    },
}

/// Who a call to a service is for: the caller at the gateway's edge, and the credential it
/// presented (used upstream only when the gateway has no token of its own).
#[derive(Clone)]
pub struct OnBehalf {
    pub caller: Caller,
    pub authorization: Option<String>,
}

impl OnBehalf {
    /// `message` as a request of the gateway's system principal acting for the caller (the
    /// in-process form of what the auth layer builds from `x-on-behalf-of`).
    pub(crate) fn local<T>(&self, message: T, rpc: &str) -> Request<T> {
        let mut request = Request::new(message);
        request.extensions_mut().insert(Caller {
            principal: Arc::new(Principal {
                subject: "system:gateway".into(),
                roles: Roles::of(&[Role::System]),
                services: None,
            }),
            on_behalf_of: Some(self.caller.person().to_string()),
            rpc: rpc.into(),
            request_id: self.caller.request_id.clone(),
        });
        request
    }

    /// `channel` with the credential to present upstream.
    pub(crate) fn remote(
        &self,
        channel: &Channel,
        token: Option<&str>,
    ) -> Result<Bearer<Channel>, Status> {
        let bearer = match (token, self.authorization.as_deref()) {
            (Some(token), _) => Bearer::new(channel.clone(), token)
                .and_then(|b| b.on_behalf_of(self.caller.person())),
            (None, Some(presented)) => Bearer::new(
                channel.clone(),
                presented.strip_prefix("Bearer ").unwrap_or(presented),
            ),
            (None, None) => Err("no credential to present to the services".into()),
        };
        bearer.map_err(Status::internal)
    }
}

const SUMMARIZE_RISKS: &str = "/assurance.risk.v1.RiskSummaryService/SummarizeRisks";
const SUMMARIZE_INCIDENTS: &str =
    "/assurance.incident.v1.IncidentSummaryService/SummarizeIncidents";

impl Upstreams {
    /// Whether the gateway calls the services with an identity of its own (in process, or
    /// its service token) rather than each caller's credential.
    pub fn has_own_credential(&self) -> bool {
        match self {
            Upstreams::Local { .. } => true,
            Upstreams::Remote { token, .. } => token.is_some(),
        }
    }

    pub async fn summarize_risks(
        &self,
        on: &OnBehalf,
        message: SummarizeRisksRequest,
    ) -> Result<SummarizeRisksResponse, Status> {
        match self {
            Upstreams::Local { risks, .. } => risks
                .summarize_risks(on.local(message, SUMMARIZE_RISKS))
                .await
                .map(tonic::Response::into_inner),
            Upstreams::Remote { risk, token, .. } => {
                RiskSummaryServiceClient::new(on.remote(risk, token.as_deref())?)
                    .max_decoding_message_size(64 << 20)
                    .summarize_risks(message)
                    .await
                    .map(tonic::Response::into_inner)
            }
        }
    }

    /// One page of the open risks of some services, as a report freezes them.
    pub async fn list_report_risks(
        &self,
        on: &OnBehalf,
        message: ListReportRisksRequest,
    ) -> Result<ListReportRisksResponse, Status> {
        const RPC: &str = "/assurance.risk.v1.RiskSummaryService/ListReportRisks";
        match self {
            Upstreams::Local { risks, .. } => risks
                .list_report_risks(on.local(message, RPC))
                .await
                .map(tonic::Response::into_inner),
            Upstreams::Remote { risk, token, .. } => {
                RiskSummaryServiceClient::new(on.remote(risk, token.as_deref())?)
                    .max_decoding_message_size(64 << 20)
                    .list_report_risks(message)
                    .await
                    .map(tonic::Response::into_inner)
            }
        }
    }

    pub async fn summarize_incidents(
        &self,
        on: &OnBehalf,
        message: SummarizeIncidentsRequest,
    ) -> Result<SummarizeIncidentsResponse, Status> {
        match self {
            Upstreams::Local { incidents, .. } => incidents
                .summarize_incidents(on.local(message, SUMMARIZE_INCIDENTS))
                .await
                .map(tonic::Response::into_inner),
            Upstreams::Remote {
                incident, token, ..
            } => IncidentSummaryServiceClient::new(on.remote(incident, token.as_deref())?)
                .max_decoding_message_size(64 << 20)
                .summarize_incidents(message)
                .await
                .map(tonic::Response::into_inner),
        }
    }

    /// One page of business units.
    pub async fn business_units(
        &self,
        on: &OnBehalf,
        message: ListBusinessUnitsRequest,
    ) -> Result<ListBusinessUnitsResponse, Status> {
        match self {
            Upstreams::Local { org, .. } => org
                .list_business_units(on.local(
                    message,
                    "/assurance.risk.v1.OrganizationService/ListBusinessUnits",
                ))
                .await
                .map(tonic::Response::into_inner),
            Upstreams::Remote { risk, token, .. } => {
                OrganizationServiceClient::new(on.remote(risk, token.as_deref())?)
                    .list_business_units(message)
                    .await
                    .map(tonic::Response::into_inner)
            }
        }
    }

    /// One page of services.
    pub async fn services(
        &self,
        on: &OnBehalf,
        message: ListServicesRequest,
    ) -> Result<ListServicesResponse, Status> {
        match self {
            Upstreams::Local { org, .. } => org
                .list_services(on.local(
                    message,
                    "/assurance.risk.v1.OrganizationService/ListServices",
                ))
                .await
                .map(tonic::Response::into_inner),
            Upstreams::Remote { risk, token, .. } => {
                OrganizationServiceClient::new(on.remote(risk, token.as_deref())?)
                    .list_services(message)
                    .await
                    .map(tonic::Response::into_inner)
            }
        }
    }
}
