//! Placeholder replaced by the real implementation at merge (issue #12 work in progress).
use assurance_proto::incident::v1::{
    SummarizeIncidentsRequest, SummarizeIncidentsResponse,
    incident_summary_service_server::IncidentSummaryService,
};
use tonic::{Request, Response, Status};

#[derive(Clone)]
pub struct SummaryApi;

#[tonic::async_trait]
impl IncidentSummaryService for SummaryApi {
    async fn summarize_incidents(
        &self,
        _request: Request<SummarizeIncidentsRequest>,
    ) -> Result<Response<SummarizeIncidentsResponse>, Status> {
        Err(Status::unimplemented("SummarizeIncidents"))
    }
}
