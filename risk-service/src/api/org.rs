//! `assurance.risk.v1.OrganizationService`: business units and services.

use assurance_proto::risk::v1::{self as pb, organization_service_server::OrganizationService};
use assurance_runtime::list::{FilterContext, ListQuery, ListRequest};
use assurance_runtime::{
    auth::Caller,
    validate::{Violations, is_slug, slug_name, update_paths},
};
use tonic::{Request, Response, Status};

use super::{convert, referenced};
use crate::store::RequestKey;
use crate::store::{
    Store,
    entities::{business_unit, service},
    listing, parse_etag,
};

pub struct OrgApi {
    store: Store,
}

impl OrgApi {
    pub fn new(store: Store) -> Self {
        OrgApi { store }
    }
}

const BU_UPDATABLE: &[&str] = &["display_name", "description", "owner"];
const SERVICE_UPDATABLE: &[&str] = &["business_unit", "display_name", "description", "owner"];

fn check_id(v: &mut Violations, field: &str, id: &str) {
    if id.is_empty() {
        v.add(field, "is required");
    } else if !is_slug(id) {
        v.add(
            field,
            "must be a lowercase slug: a letter, then up to 62 of a-z 0-9 -, not ending in -",
        );
    }
}

fn check_display_name(v: &mut Violations, field: &str, value: &str) {
    v.line(field, value, true, 200);
}

#[tonic::async_trait]
impl OrganizationService for OrgApi {
    async fn create_business_unit(
        &self,
        request: Request<pb::CreateBusinessUnitRequest>,
    ) -> Result<Response<pb::BusinessUnit>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        check_id(&mut v, "business_unit_id", &req.business_unit_id);
        v.request_id("request_id", &req.request_id);
        let bu = &mut v.message("business_unit", req.business_unit.clone());
        check_display_name(&mut v, "business_unit.display_name", &bu.display_name);
        v.paragraph("business_unit.description", &bu.description, false, 4000);
        v.principal("business_unit.owner", &mut bu.owner, false);
        v.finish()?;
        let model = business_unit::Model {
            id: req.business_unit_id.clone(),
            display_name: bu.display_name.clone(),
            description: bu.description.clone(),
            owner: bu.owner.clone(),
            version: 0,
            create_time: 0,
            update_time: 0,
            delete_time: None,
        };
        let created = self
            .store
            .create_business_unit(
                model,
                RequestKey::for_request("CreateBusinessUnit", &caller, req, |r| &mut r.request_id),
                &caller,
            )
            .await?;
        Ok(Response::new(convert::business_unit(&created)))
    }

    async fn get_business_unit(
        &self,
        request: Request<pb::GetBusinessUnitRequest>,
    ) -> Result<Response<pb::BusinessUnit>, Status> {
        let mut v = Violations::new();
        let id = slug_name(&mut v, "name", &request.get_ref().name, "businessUnits");
        v.finish()?;
        let bu = self.store.get_business_unit(id.unwrap_or_default()).await?;
        Ok(Response::new(convert::business_unit(&bu)))
    }

    async fn list_business_units(
        &self,
        request: Request<pb::ListBusinessUnitsRequest>,
    ) -> Result<Response<pb::ListBusinessUnitsResponse>, Status> {
        let req = request.get_ref();
        let mut v = Violations::new();
        let list = ListQuery::parse(
            &mut v,
            &ListRequest {
                scope: &["businessUnits"],
                page_size: req.page_size,
                page_token: &req.page_token,
                filter: &req.filter,
                order_by: &req.order_by,
            },
            Some(&listing::BUSINESS_UNIT_FILTER.at(FilterContext::default())),
            &listing::BUSINESS_UNIT_SORTING,
        );
        v.finish()?;
        let mut rows = self.store.list_business_units(&list).await?;
        let next_page_token = list.next_page(&mut rows, |r| listing::business_unit_keys(&list, r));
        Ok(Response::new(pb::ListBusinessUnitsResponse {
            business_units: rows.iter().map(convert::business_unit).collect(),
            next_page_token,
        }))
    }

    async fn update_business_unit(
        &self,
        request: Request<pb::UpdateBusinessUnitRequest>,
    ) -> Result<Response<pb::BusinessUnit>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let mut bu = v.message("business_unit", req.business_unit);
        let id =
            slug_name(&mut v, "business_unit.name", &bu.name, "businessUnits").map(str::to_string);
        let paths = update_paths(req.update_mask.as_ref(), BU_UPDATABLE, |p| match p {
            "display_name" => !bu.display_name.is_empty(),
            "description" => !bu.description.is_empty(),
            "owner" => !bu.owner.is_empty(),
            _ => false,
        })?;
        for path in &paths {
            match *path {
                "display_name" => {
                    check_display_name(&mut v, "business_unit.display_name", &bu.display_name)
                }
                "description" => {
                    v.paragraph("business_unit.description", &bu.description, false, 4000)
                }
                "owner" => v.principal("business_unit.owner", &mut bu.owner, false),
                _ => {}
            }
        }
        let expected = v.absorb(
            "business_unit.etag",
            parse_etag("business_unit.etag", &bu.etag),
        );
        v.finish()?;
        let updated = self
            .store
            .update_business_unit(
                &id.unwrap_or_default(),
                expected.flatten(),
                |m| {
                    for path in &paths {
                        match *path {
                            "display_name" => m.display_name = bu.display_name.clone(),
                            "description" => m.description = bu.description.clone(),
                            "owner" => m.owner = bu.owner.clone(),
                            _ => {}
                        }
                    }
                },
                &caller,
            )
            .await?;
        Ok(Response::new(convert::business_unit(&updated)))
    }

    async fn create_service(
        &self,
        request: Request<pb::CreateServiceRequest>,
    ) -> Result<Response<pb::Service>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        check_id(&mut v, "service_id", &req.service_id);
        v.request_id("request_id", &req.request_id);
        let svc = &mut v.message("service", req.service.clone());
        let bu = slug_name(
            &mut v,
            "service.business_unit",
            &svc.business_unit,
            "businessUnits",
        );
        check_display_name(&mut v, "service.display_name", &svc.display_name);
        v.paragraph("service.description", &svc.description, false, 4000);
        v.principal("service.owner", &mut svc.owner, false);
        v.finish()?;
        let model = service::Model {
            id: req.service_id.clone(),
            business_unit_id: bu.unwrap_or_default().to_string(),
            display_name: svc.display_name.clone(),
            description: svc.description.clone(),
            owner: svc.owner.clone(),
            version: 0,
            create_time: 0,
            update_time: 0,
            delete_time: None,
        };
        let created = self
            .store
            .create_service(
                model,
                RequestKey::for_request("CreateService", &caller, req, |r| &mut r.request_id),
                &caller,
            )
            .await
            .map_err(referenced("service.business_unit", &["businessUnits"]))?;
        Ok(Response::new(convert::service(&created)))
    }

    async fn get_service(
        &self,
        request: Request<pb::GetServiceRequest>,
    ) -> Result<Response<pb::Service>, Status> {
        let mut v = Violations::new();
        let id = slug_name(&mut v, "name", &request.get_ref().name, "services");
        v.finish()?;
        let svc = self.store.get_service(id.unwrap_or_default()).await?;
        Ok(Response::new(convert::service(&svc)))
    }

    async fn list_services(
        &self,
        request: Request<pb::ListServicesRequest>,
    ) -> Result<Response<pb::ListServicesResponse>, Status> {
        let req = request.get_ref();
        let mut v = Violations::new();
        let bu = if req.business_unit.is_empty() {
            None
        } else {
            slug_name(&mut v, "business_unit", &req.business_unit, "businessUnits")
        };
        let list = ListQuery::parse(
            &mut v,
            &ListRequest {
                scope: &["services", &req.business_unit],
                page_size: req.page_size,
                page_token: &req.page_token,
                filter: &req.filter,
                order_by: &req.order_by,
            },
            Some(&listing::SERVICE_FILTER.at(FilterContext::default())),
            &listing::SERVICE_SORTING,
        );
        v.finish()?;
        let mut rows = self.store.list_services(bu, &list).await?;
        let next_page_token = list.next_page(&mut rows, |r| listing::service_keys(&list, r));
        Ok(Response::new(pb::ListServicesResponse {
            services: rows.iter().map(convert::service).collect(),
            next_page_token,
        }))
    }

    async fn update_service(
        &self,
        request: Request<pb::UpdateServiceRequest>,
    ) -> Result<Response<pb::Service>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let mut svc = v.message("service", req.service);
        let id = slug_name(&mut v, "service.name", &svc.name, "services").map(str::to_string);
        let paths = update_paths(req.update_mask.as_ref(), SERVICE_UPDATABLE, |p| match p {
            "business_unit" => !svc.business_unit.is_empty(),
            "display_name" => !svc.display_name.is_empty(),
            "description" => !svc.description.is_empty(),
            "owner" => !svc.owner.is_empty(),
            _ => false,
        })?;
        let mut new_bu = None;
        for path in &paths {
            match *path {
                "business_unit" => {
                    new_bu = slug_name(
                        &mut v,
                        "service.business_unit",
                        &svc.business_unit,
                        "businessUnits",
                    )
                    .map(str::to_string)
                }
                "display_name" => {
                    check_display_name(&mut v, "service.display_name", &svc.display_name)
                }
                "description" => v.paragraph("service.description", &svc.description, false, 4000),
                "owner" => v.principal("service.owner", &mut svc.owner, false),
                _ => {}
            }
        }
        let expected = v.absorb("service.etag", parse_etag("service.etag", &svc.etag));
        v.finish()?;
        if new_bu.is_some() {
            caller.must_be_unscoped("move services between business units")?;
        }
        let updated = self
            .store
            .update_service(
                &id.unwrap_or_default(),
                expected.flatten(),
                |m| {
                    for path in &paths {
                        match *path {
                            "business_unit" => {
                                if let Some(bu) = &new_bu {
                                    m.business_unit_id = bu.clone();
                                }
                            }
                            "display_name" => m.display_name = svc.display_name.clone(),
                            "description" => m.description = svc.description.clone(),
                            "owner" => m.owner = svc.owner.clone(),
                            _ => {}
                        }
                    }
                },
                &caller,
            )
            .await
            .map_err(referenced("service.business_unit", &["businessUnits"]))?;
        Ok(Response::new(convert::service(&updated)))
    }

    async fn delete_business_unit(
        &self,
        request: Request<pb::DeleteBusinessUnitRequest>,
    ) -> Result<Response<()>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let id = slug_name(&mut v, "name", &req.name, "businessUnits").map(str::to_string);
        let expected = v.absorb("etag", parse_etag("etag", &req.etag)).flatten();
        v.finish()?;
        let id = id.unwrap_or_default();
        self.store
            .delete_business_unit(&id, expected, &caller)
            .await?;
        Ok(Response::new(()))
    }

    async fn delete_service(
        &self,
        request: Request<pb::DeleteServiceRequest>,
    ) -> Result<Response<()>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let id = slug_name(&mut v, "name", &req.name, "services").map(str::to_string);
        let expected = v.absorb("etag", parse_etag("etag", &req.etag)).flatten();
        v.finish()?;
        let id = id.unwrap_or_default();
        self.store.delete_service(&id, expected, &caller).await?;
        Ok(Response::new(()))
    }
}
