//! Response effectiveness: `RecordRiskRealization` (the incident relay's receiver) and
//! `GetResponseEffectiveness`.

use assurance_proto::risk::v1 as pb;
use assurance_runtime::{
    auth::Caller,
    time::{from_timestamp, to_timestamp},
    validate::Violations,
};
use tonic::{Request, Response, Status};

use super::risk::{RiskApi, risk_id};
use crate::{
    domain::scoring::Severity,
    store::{
        RequestKey,
        effectiveness::{Effectivity, ResponseRecord},
    },
};

/// Clock skew tolerated on a realisation time.
const SKEW_MICROS: i64 = 5 * 60 * 1_000_000;

fn record(r: &ResponseRecord) -> pb::ResponseRecord {
    pb::ResponseRecord {
        response: r
            .response
            .as_ref()
            .map(|x| format!("risks/{}/responses/{}", x.risk_id, x.id))
            .unwrap_or_default(),
        decision: r.response.as_ref().map_or(0, |x| x.decision),
        approve_time: r
            .response
            .as_ref()
            .and_then(|x| x.decide_time)
            .map(to_timestamp),
        realizations: r
            .realizations
            .iter()
            .map(|x| pb::Realization {
                incident: x.incident.clone(),
                incident_severity: x.incident_severity,
                realize_time: Some(to_timestamp(x.realize_time)),
            })
            .collect(),
        control_failures: r
            .control_failures
            .iter()
            .map(|o| pb::ControlFailure {
                observation: format!("risks/{}/observations/{}", o.risk_id, o.id),
                control: format!("controls/{}", o.control_id),
                summary: o.summary.clone(),
                observe_time: Some(to_timestamp(o.observe_time)),
            })
            .collect(),
    }
}

fn message(e: &Effectivity) -> pb::ResponseEffectiveness {
    let assessed = e.risk.latest_assessment_id.is_some();
    pb::ResponseEffectiveness {
        risk: format!("risks/{}", e.risk.id),
        responses: e.responses.iter().map(record).collect(),
        likelihood: if assessed { e.risk.likelihood } else { 0 },
        impact: if assessed { e.risk.impact } else { 0 },
        proposed_likelihood: e.proposal.likelihood,
        proposed_impact: e.proposal.impact,
        rationale: e.proposal.rationale.clone(),
    }
}

/// `incidents/{uuid}`, or a violation of `field`.
fn incident_name(v: &mut Violations, field: &str, name: &str) -> Option<String> {
    let valid = name
        .strip_prefix("incidents/")
        .is_some_and(|id| uuid::Uuid::parse_str(id).is_ok());
    if name.is_empty() {
        v.add(field, "is required");
    } else if !valid {
        v.add(
            field,
            "must be an incident name `incidents/{id}` with a UUID id",
        );
    }
    valid.then(|| name.to_string())
}

impl RiskApi {
    pub(super) async fn record_realization(
        &self,
        request: Request<pb::RecordRiskRealizationRequest>,
    ) -> Result<Response<pb::ResponseEffectiveness>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let now = self.clock.now_micros();
        let mut v = Violations::new();
        let risk = risk_id(&mut v, "risk", &req.risk);
        let incident = incident_name(&mut v, "incident", &req.incident);
        let severity = v.enumeration::<Severity>("incident_severity", req.incident_severity);
        v.request_id("request_id", &req.request_id);
        let at = match req.realize_time.as_ref().map(from_timestamp) {
            None => Some(now),
            Some(Some(t)) if t <= now + SKEW_MICROS => Some(t),
            Some(Some(_)) => {
                v.add("realize_time", "must not be in the future");
                None
            }
            Some(None) => {
                v.add("realize_time", "is not a valid timestamp");
                None
            }
        };
        v.finish()?;
        let (Some(risk), Some(incident), Some(severity), Some(at)) = (risk, incident, severity, at)
        else {
            return Err(Status::internal("request validated but incomplete"));
        };
        let key =
            RequestKey::for_request("RecordRiskRealization", &caller, req, |r| &mut r.request_id);
        self.store
            .record_realization(risk, incident, severity, at, key, &caller, now)
            .await?;
        let e = self.store.effectiveness(risk, now).await?;
        Ok(Response::new(message(&e)))
    }

    pub(super) async fn get_effectiveness(
        &self,
        request: Request<pb::GetResponseEffectivenessRequest>,
    ) -> Result<Response<pb::ResponseEffectiveness>, Status> {
        let mut v = Violations::new();
        let risk = risk_id(&mut v, "risk", &request.get_ref().risk);
        v.finish()?;
        let e = self
            .store
            .effectiveness(risk.unwrap_or_default(), self.clock.now_micros())
            .await?;
        Ok(Response::new(message(&e)))
    }
}
