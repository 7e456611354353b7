//! Incident metrics: counts and durations over a scope of incidents.

use assurance_proto::incident::v1 as pb;
use assurance_runtime::{
    filter,
    time::from_timestamp,
    validate::{Violations, slug_name},
};
use sea_orm::{ColumnTrait, Condition};
use tonic::{Request, Response, Status};

use super::{IncidentApi, convert};
use crate::{store::IncidentFilter, store::entities::incident};

impl IncidentApi {
    pub(super) async fn metrics_get(
        &self,
        request: Request<pb::GetIncidentMetricsRequest>,
    ) -> Result<Response<pb::IncidentMetrics>, Status> {
        let req = request.get_ref();
        let mut v = Violations::new();
        let mut scope = Condition::all();
        if !req.service.is_empty()
            && let Some(service) = slug_name(&mut v, "service", &req.service, "services")
        {
            scope = scope.add(filter::compile(
                "service",
                &filter::Filter::Compare {
                    field: "service".into(),
                    op: filter::Op::Eq,
                    value: service.into(),
                },
                &IncidentFilter,
            )?);
        }
        if req.severity != 0 {
            if pb::Severity::try_from(req.severity).is_err() {
                v.add("severity", format!("{} is not a known value", req.severity));
            }
            scope = scope.add(incident::Column::Severity.eq(req.severity));
        }
        for (field, ts, lower) in [
            ("start_time", &req.start_time, true),
            ("end_time", &req.end_time, false),
        ] {
            if let Some(ts) = ts {
                match from_timestamp(ts) {
                    Some(t) if lower => scope = scope.add(incident::Column::DeclareTime.gte(t)),
                    Some(t) => scope = scope.add(incident::Column::DeclareTime.lt(t)),
                    None => v.add(field, "is not a valid timestamp"),
                }
            }
        }
        v.finish()?;
        let m = self.store.metrics(scope).await?;
        Ok(Response::new(convert::metrics(&m)))
    }
}
