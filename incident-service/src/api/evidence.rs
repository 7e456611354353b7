//! Evidence and its chain of custody.

use super::pb;
use assurance_runtime::idempotency::RequestKey;
use assurance_runtime::list::{FilterContext, ListQuery, ListRequest};
use assurance_runtime::page::Key;
use assurance_runtime::{auth::Caller, time::now_micros, validate::Violations};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{IncidentApi, child_name, convert, incident_id, past_time};
use crate::domain::indicator;
use crate::store::{CUSTODY_FILTER, EVIDENCE_FILTER, EVIDENCE_SORTING, SEQUENCE_SORTING, row_keys};

impl IncidentApi {
    pub(super) async fn evidence_add(
        &self,
        request: Request<pb::CreateEvidenceRequest>,
    ) -> Result<Response<pb::Evidence>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let id = incident_id(&mut v, "parent", &req.parent);
        v.request_id("request_id", &req.request_id);
        let e = &mut v.message("evidence", req.evidence.clone());
        v.paragraph("evidence.description", &e.description, true, 2000);
        let hash = match indicator::normalize(indicator::IndicatorType::FileHash, &e.hash) {
            Ok(h) => Some(h),
            Err(why) => {
                v.add("evidence.hash", why);
                None
            }
        };
        v.line("evidence.location", &e.location, true, 1000);
        v.principal("evidence.collector", &mut e.collector, true);
        let now = now_micros();
        let collect_time = past_time(
            &mut v,
            "evidence.collect_time",
            e.collect_time.as_ref(),
            now,
        );
        v.finish()?;
        let model = crate::store::entities::evidence::Model {
            id: Uuid::now_v7(),
            incident_id: id.unwrap_or_default(),
            description: e.description.clone(),
            hash: hash.unwrap_or_default(),
            location: e.location.clone(),
            collector: e.collector.clone(),
            custodian: String::new(),
            collect_time: collect_time.unwrap_or(now),
            custody_seq: 0,
            create_time: 0,
        };
        let key = RequestKey::for_request("AddEvidence", &caller, req, |r| &mut r.request_id);
        let added = self.store.create_evidence(model, &caller, key).await?;
        Ok(Response::new(convert::evidence(&added)))
    }

    pub(super) async fn evidence_list(
        &self,
        request: Request<pb::ListEvidenceRequest>,
    ) -> Result<Response<pb::ListEvidenceResponse>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let id = incident_id(&mut v, "parent", &req.parent);
        let list = ListQuery::parse(
            &mut v,
            &ListRequest {
                filter: &req.filter,
                order_by: &req.order_by,
                ..ListRequest::paged(&["evidence", &req.parent], req.page_size, &req.page_token)
            },
            Some(&EVIDENCE_FILTER.at(FilterContext::default())),
            &EVIDENCE_SORTING,
        );
        v.finish()?;
        let id = id.unwrap_or_default();
        self.may_see_evidence(&caller, id).await?;
        let mut rows = self.store.evidence_page(id, &list).await?;
        let next_page_token = list.next_page(&mut rows, |e| {
            let time = |f: &str| match f {
                "collect_time" => e.collect_time,
                _ => e.create_time,
            };
            row_keys(&list, time, Key::Text(e.id.to_string()))
        });
        Ok(Response::new(pb::ListEvidenceResponse {
            evidence: rows.iter().map(convert::evidence).collect(),
            next_page_token,
        }))
    }

    pub(super) async fn custody_record(
        &self,
        request: Request<pb::CreateCustodyRecordRequest>,
    ) -> Result<Response<pb::CustodyRecord>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let ids = child_name(&mut v, "evidence", "evidence", &req.evidence);
        v.request_id("request_id", &req.request_id);
        let mut entry = v.message("custody_record", req.custody_record.clone());
        v.principal("custody_record.to_custodian", &mut entry.to_custodian, true);
        v.paragraph("custody_record.purpose", &entry.purpose, true, 2000);
        v.line("custody_record.location", &entry.location, false, 1000);
        v.finish()?;
        let (incident, item) = ids.unwrap_or_default();
        let model = crate::store::entities::custody_entry::Model {
            evidence_id: item,
            seq: 0,
            incident_id: incident,
            from_custodian: String::new(),
            to_custodian: entry.to_custodian.clone(),
            purpose: entry.purpose.clone(),
            location: entry.location.clone(),
            transfer_time: 0,
        };
        let key = RequestKey::for_request("RecordCustody", &caller, req, |r| &mut r.request_id);
        let recorded = self
            .store
            .create_custody_record(incident, item, model, &caller, key)
            .await?;
        Ok(Response::new(convert::custody_entry(&recorded)))
    }

    pub(super) async fn custody_list(
        &self,
        request: Request<pb::ListCustodyRecordsRequest>,
    ) -> Result<Response<pb::ListCustodyRecordsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let ids = child_name(&mut v, "parent", "evidence", &req.parent);
        let list = ListQuery::parse(
            &mut v,
            &ListRequest {
                filter: &req.filter,
                order_by: &req.order_by,
                ..ListRequest::paged(&["custody", &req.parent], req.page_size, &req.page_token)
            },
            Some(&CUSTODY_FILTER.at(FilterContext::default())),
            &SEQUENCE_SORTING,
        );
        v.finish()?;
        let (incident, item) = ids.unwrap_or_default();
        self.may_see_evidence(&caller, incident).await?;
        let mut entries = self.store.custody_page(incident, item, &list).await?;
        let next_page_token = list.next_page(&mut entries, |e| {
            row_keys(&list, |_| e.seq, Key::Int(e.seq))
        });
        Ok(Response::new(pb::ListCustodyRecordsResponse {
            custody_records: entries.iter().map(convert::custody_entry).collect(),
            next_page_token,
        }))
    }
}
