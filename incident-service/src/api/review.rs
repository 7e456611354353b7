//! The post-incident review: its validation, and the record and get RPCs (its storage form and
//! outbox payloads are in `convert`).

use super::pb;
use assurance_runtime::idempotency::RequestKey;
use assurance_runtime::{
    auth::Caller,
    validate::{Violations, slug_name},
};
use tonic::{Request, Response, Status};

use super::{IncidentApi, convert, incident_id};

const MAX_ITEMS: usize = 100;

/// Checks a review; every violation at once.
pub fn check(v: &mut Violations, r: &mut pb::PostIncidentReview) {
    v.paragraph("review.root_cause", &r.root_cause, true, 10_000);
    v.paragraph("review.went_well", &r.went_well, false, 10_000);
    v.paragraph("review.went_poorly", &r.went_poorly, false, 10_000);
    v.paragraph("review.lessons_learned", &r.lessons_learned, true, 10_000);
    for (field, len) in [
        ("review.participants", r.participants.len()),
        ("review.follow_ups", r.follow_ups.len()),
        ("review.identified_risks", r.identified_risks.len()),
    ] {
        if len > MAX_ITEMS {
            v.add(field, format!("must have at most {MAX_ITEMS} entries"));
        }
    }
    for (n, p) in r.participants.iter_mut().enumerate() {
        v.principal(&format!("review.participants[{n}]"), p, true);
    }
    for (n, f) in r.follow_ups.iter_mut().enumerate() {
        let at = |name: &str| format!("review.follow_ups[{n}].{name}");
        v.line(&at("title"), &f.title, true, 200);
        v.paragraph(&at("description"), &f.description, false, 4000);
        v.principal(&at("owner"), &mut f.owner, true);
        match f.due_time.as_ref() {
            None => v.add(at("due_time"), "is required"),
            Some(ts) => {
                v.timestamp(&at("due_time"), ts);
            }
        }
    }
    for (n, risk) in r.identified_risks.iter_mut().enumerate() {
        let at = |name: &str| format!("review.identified_risks[{n}].{name}");
        v.line(&at("title"), &risk.title, true, 200);
        v.paragraph(&at("description"), &risk.description, false, 10_000);
        slug_name(v, &at("service"), &risk.service, "services");
        v.principal(&at("owner"), &mut risk.owner, true);
        v.enumeration::<pb::RiskThreat>(&at("threat"), risk.threat);
        v.line(&at("category"), &risk.category, false, 100);
    }
}

impl IncidentApi {
    pub(super) async fn review_record(
        &self,
        request: Request<pb::CreatePostIncidentReviewRequest>,
    ) -> Result<Response<pb::PostIncidentReview>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let id = incident_id(&mut v, "parent", &req.parent);
        v.request_id("request_id", &req.request_id);
        let r = &mut v.message("review", req.review.clone());
        check(&mut v, r);
        v.finish()?;
        let id = id.unwrap_or_default();
        let rows = convert::review_rows(id, r)?;
        let key = RequestKey::for_request("RecordPostIncidentReview", &caller, req, |r| {
            &mut r.request_id
        });
        let recorded = self.store.record_review(id, rows, &caller, key).await?;
        Ok(Response::new(convert::review(&recorded)))
    }

    pub(super) async fn review_get(
        &self,
        request: Request<pb::GetPostIncidentReviewRequest>,
    ) -> Result<Response<pb::PostIncidentReview>, Status> {
        let caller = Caller::of(&request)?;
        let name = &request.get_ref().name;
        let mut v = Violations::new();
        let id = match name.strip_suffix("/review") {
            Some(parent) => incident_id(&mut v, "name", parent),
            None => {
                v.add("name", "must be `incidents/{id}/review`");
                None
            }
        };
        v.finish()?;
        let id = id.unwrap_or_default();
        self.visible(&caller, id).await?;
        let found = self.store.review(id).await?;
        Ok(Response::new(convert::review(&found)))
    }
}
