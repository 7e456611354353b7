//! `gateway --embedded`: incident-service reaches risk-service in process. Each call is made
//! as incident-service's `system` principal, as its relay would present itself over gRPC.

use std::sync::Arc;

use assurance_proto::risk::v1::{
    self as rpb, organization_service_server::OrganizationService, risk_service_server::RiskService,
};
use assurance_runtime::auth::Caller;
use incident_service::relay::{BoxFuture, RiskRegister};
use tonic::{Request, Status};

/// risk-service's APIs in this process.
pub struct LocalRisks {
    pub risks: Arc<risk_service::api::RiskApi>,
    pub org: Arc<risk_service::api::OrgApi>,
}

/// `message` as a request of incident-service's relay.
fn request<T>(message: T, rpc: &str) -> Request<T> {
    let mut request = Request::new(message);
    let mut caller = Caller::system(incident_service::store::SERVICE, "OutboxRelay");
    caller.rpc = rpc.into();
    request.extensions_mut().insert(caller);
    request
}

impl RiskRegister for LocalRisks {
    fn create_risk(&self, r: rpb::CreateRiskRequest) -> BoxFuture<'_, Result<rpb::Risk, Status>> {
        Box::pin(async move {
            let rpc = "/assurance.risk.v1.RiskService/CreateRisk";
            Ok(self.risks.create_risk(request(r, rpc)).await?.into_inner())
        })
    }

    fn record_realization(
        &self,
        r: rpb::RecordRiskRealizationRequest,
    ) -> BoxFuture<'_, Result<(), Status>> {
        Box::pin(async move {
            let rpc = "/assurance.risk.v1.RiskService/RecordRiskRealization";
            self.risks.record_risk_realization(request(r, rpc)).await?;
            Ok(())
        })
    }

    fn get_service(&self, r: rpb::GetServiceRequest) -> BoxFuture<'_, Result<(), Status>> {
        Box::pin(async move {
            let rpc = "/assurance.risk.v1.OrganizationService/GetService";
            self.org.get_service(request(r, rpc)).await?;
            Ok(())
        })
    }
}
