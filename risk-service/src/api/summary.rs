//! Placeholder replaced by the real implementation at merge (issue #12 work in progress).
use assurance_proto::risk::v1::{
    SummarizeRisksRequest, SummarizeRisksResponse, risk_summary_service_server::RiskSummaryService,
};
use tonic::{Request, Response, Status};

#[derive(Clone)]
pub struct SummaryApi;

#[tonic::async_trait]
impl RiskSummaryService for SummaryApi {
    async fn summarize_risks(
        &self,
        _request: Request<SummarizeRisksRequest>,
    ) -> Result<Response<SummarizeRisksResponse>, Status> {
        Err(Status::unimplemented("SummarizeRisks"))
    }
}
