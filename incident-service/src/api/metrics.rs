//! Incident metrics: counts and durations over a scope of incidents.

use super::pb;
use assurance_runtime::validate::{Violations, slug_name};
use tonic::{Request, Response, Status};

use super::{IncidentApi, convert};
use crate::{domain::priority::Severity, store::metrics::MetricsScope};

impl IncidentApi {
    pub(super) async fn metrics_get(
        &self,
        request: Request<pb::GetIncidentMetricsRequest>,
    ) -> Result<Response<pb::IncidentMetrics>, Status> {
        let req = request.get_ref();
        let mut v = Violations::new();
        let mut scope = MetricsScope::default();
        if !req.service.is_empty() {
            scope.service =
                slug_name(&mut v, "service", &req.service, "services").map(String::from);
        }
        if req.severity != 0 {
            match Severity::try_from(req.severity) {
                Ok(s) => scope.severity = Some(s),
                Err(_) => v.add("severity", format!("{} is not a known value", req.severity)),
            }
        }
        for (field, ts, bound) in [
            ("start_time", &req.start_time, &mut scope.declared_from),
            ("end_time", &req.end_time, &mut scope.declared_before),
        ] {
            if let Some(ts) = ts {
                *bound = v.timestamp(field, ts);
            }
        }
        v.finish()?;
        let m = self.store.metrics(&scope).await?;
        Ok(Response::new(convert::metrics(&m)))
    }
}
