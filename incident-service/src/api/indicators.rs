//! Indicators of compromise: add to an incident, list, and sweep across incidents.

use super::pb;
use assurance_runtime::idempotency::RequestKey;
use assurance_runtime::list::{FilterContext, ListQuery, ListRequest, Sorting, page_by_id};
use assurance_runtime::{auth::Caller, validate::Violations};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{
    IncidentApi, convert, incident_id,
    need_to_know::{self, redact_indicator},
};
use crate::domain::indicator::{self, IndicatorType, Tlp};
use crate::store::{INDICATOR_FILTER, INDICATOR_SORTING, row_keys};
use assurance_runtime::page::Key;

impl IncidentApi {
    pub(super) async fn indicators_add(
        &self,
        request: Request<pb::CreateIndicatorRequest>,
    ) -> Result<Response<pb::Indicator>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let id = incident_id(&mut v, "parent", &req.parent);
        v.request_id("request_id", &req.request_id);
        let ind = &v.message("indicator", req.indicator.clone());
        let kind = v.enumeration::<IndicatorType>("indicator.type", ind.r#type);
        if kind.is_none() && ind.value.trim().is_empty() {
            v.add("indicator.value", "is required");
        }
        let value = kind.and_then(|k| match indicator::normalize(k, &ind.value) {
            Ok(value) => Some(value),
            Err(why) => {
                v.add("indicator.value", why);
                None
            }
        });
        v.enumeration::<Tlp>("indicator.tlp", ind.tlp);
        v.paragraph("indicator.description", &ind.description, false, 2000);
        v.finish()?;
        let model = crate::store::entities::indicator::Model {
            id: Uuid::now_v7(),
            incident_id: id.unwrap_or_default(),
            kind: ind.r#type,
            value: value.unwrap_or_default(),
            tlp: ind.tlp,
            description: ind.description.clone(),
            create_time: 0,
        };
        let kind_name = pb::IndicatorType::try_from(ind.r#type)
            .map_or("indicator", |t| {
                t.as_str_name().trim_start_matches("INDICATOR_TYPE_")
            })
            .to_ascii_lowercase();
        let key = RequestKey::for_request("AddIndicator", &caller, req, |r| &mut r.request_id);
        let added = self
            .store
            .create_indicator(model, &kind_name, &caller, key)
            .await?;
        Ok(Response::new(convert::indicator(&added)))
    }

    pub(super) async fn indicators_list(
        &self,
        request: Request<pb::ListIndicatorsRequest>,
    ) -> Result<Response<pb::ListIndicatorsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let id = incident_id(&mut v, "parent", &req.parent);
        let list = ListQuery::parse(
            &mut v,
            &ListRequest {
                filter: &req.filter,
                order_by: &req.order_by,
                ..ListRequest::paged(&["indicators", &req.parent], req.page_size, &req.page_token)
            },
            Some(&INDICATOR_FILTER.at(FilterContext::default())),
            &INDICATOR_SORTING,
        );
        v.finish()?;
        let id = id.unwrap_or_default();
        self.visible(&caller, id).await?;
        let sees = self.sees_restricted(&caller, id).await?;
        let mut rows = self.store.indicators_page(id, &list).await?;
        let next_page_token = list.next_page(&mut rows, |i| {
            row_keys(&list, |_| i.create_time, Key::Text(i.id.to_string()))
        });
        Ok(Response::new(pb::ListIndicatorsResponse {
            indicators: rows
                .iter()
                .map(|i| redact_indicator(convert::indicator(i), sees))
                .collect(),
            next_page_token,
        }))
    }

    pub(super) async fn indicators_find(
        &self,
        request: Request<pb::SearchIndicatorsRequest>,
    ) -> Result<Response<pb::SearchIndicatorsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let kind = v.enumeration::<IndicatorType>("type", req.r#type);
        if kind.is_none() && req.value.trim().is_empty() {
            v.add("value", "is required");
        }
        let value = kind.and_then(|k| match indicator::normalize(k, &req.value) {
            Ok(value) => Some(value),
            Err(why) => {
                v.add("value", why);
                None
            }
        });
        let value = value.unwrap_or_default();
        let kind = req.r#type.to_string();
        let (rows, next_page_token) = page_by_id(
            v,
            &ListRequest::paged(&["sweep", &kind, &value], req.page_size, &req.page_token),
            &Sorting::BY_UUID,
            async |list| {
                self.store
                    .sweep(
                        req.r#type,
                        value.clone(),
                        caller.read_scope(),
                        list.after_id(),
                        list.limit(),
                    )
                    .await
            },
            |(i, _)| i.id,
        )
        .await?;
        // Restricted values only for the incidents whose material the caller may see.
        let mut sees = std::collections::HashMap::new();
        for (i, _) in &rows {
            if need_to_know::restricted_tlp(i.tlp) && !sees.contains_key(&i.incident_id) {
                let s = self.sees_restricted(&caller, i.incident_id).await?;
                sees.insert(i.incident_id, s);
            }
        }
        Ok(Response::new(pb::SearchIndicatorsResponse {
            matches: rows
                .iter()
                .map(|(i, m)| pb::IndicatorMatch {
                    indicator: Some(redact_indicator(
                        convert::indicator(i),
                        sees.get(&i.incident_id).copied().unwrap_or(true),
                    )),
                    incident: format!("incidents/{}", m.id),
                    incident_title: m.title.clone(),
                    incident_phase: m.phase,
                })
                .collect(),
            next_page_token,
        }))
    }
}
