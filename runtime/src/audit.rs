//! The audit trail: one append-only row per mutation — principal, on_behalf_of, RPC, resource,
//! time, request id — written in the mutation's own transaction, so a change and its record
//! commit together or not at all. Each service serves its trail as `ListAuditEvents`.

use assurance_proto::audit::v1 as pb;

use crate::ApiError;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    Order, QueryFilter, QueryOrder, QuerySelect, Set,
    sea_query::{ColumnDef, Index, IndexCreateStatement, Table, TableCreateStatement},
};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    ApiResult,
    auth::Caller,
    filter::{Op, equality_only},
    list::{
        Direction, Field, FilterContext, FilterTable, KeyType, Kind, ListQuery, ListRequest,
        Sorting,
    },
    page::Key,
    time::{now_micros, to_timestamp},
    validate::Violations,
};

pub mod audit_event {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_events")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// The service that recorded it (services may share one database).
        pub service: String,
        pub time: i64,
        pub principal: String,
        pub on_behalf_of: String,
        /// `package.Service/Method`.
        pub rpc: String,
        pub resource: String,
        pub request_id: String,
    }

    crate::entity_without_relations!();
}

use audit_event::Column as C;

/// The migration statements of `audit_events` (`IF NOT EXISTS`: services sharing a database
/// share the table, told apart by `service`).
pub fn create_table() -> (TableCreateStatement, IndexCreateStatement) {
    (
        Table::create()
            .table(audit_event::Entity)
            .if_not_exists()
            .col(ColumnDef::new(C::Id).uuid().not_null().primary_key())
            .col(ColumnDef::new(C::Service).string().not_null())
            .col(ColumnDef::new(C::Time).big_integer().not_null())
            .col(ColumnDef::new(C::Principal).string().not_null())
            .col(ColumnDef::new(C::OnBehalfOf).string().not_null())
            .col(ColumnDef::new(C::Rpc).string().not_null())
            .col(ColumnDef::new(C::Resource).string().not_null())
            .col(ColumnDef::new(C::RequestId).string().not_null())
            .to_owned(),
        Index::create()
            .if_not_exists()
            .name("audit_events_by_time")
            .table(audit_event::Entity)
            .col(C::Service)
            .col(C::Time)
            .col(C::Id)
            .to_owned(),
    )
}

/// The row recording that `caller` changed `resource`. `request_id` is the request's own
/// `request_id` field when it has one; otherwise the call's `x-request-id` is recorded.
pub fn event(
    service: &str,
    caller: &Caller,
    resource: &str,
    request_id: &str,
) -> audit_event::ActiveModel {
    audit_event::ActiveModel {
        id: Set(Uuid::now_v7()),
        service: Set(service.to_string()),
        time: Set(now_micros()),
        principal: Set(caller.principal.subject.clone()),
        on_behalf_of: Set(caller.on_behalf_of.clone().unwrap_or_default()),
        rpc: Set(caller.rpc.trim_start_matches('/').to_string()),
        resource: Set(resource.to_string()),
        request_id: Set(if request_id.is_empty() {
            caller.request_id.clone()
        } else {
            request_id.to_string()
        }),
    }
}

/// Records, inside the mutation's transaction `tx`, that `caller` changed `resource`.
pub async fn record(
    tx: &impl ConnectionTrait,
    service: &str,
    caller: &Caller,
    resource: &str,
    request_id: &str,
) -> ApiResult<()> {
    event(service, caller, resource, request_id)
        .insert(tx)
        .await?;
    Ok(())
}

/// The filter fields of `ListAuditEvents`.
static FILTER: FilterTable<C> = FilterTable(&[
    Field::new("principal", Kind::Text(C::Principal)),
    Field::new("on_behalf_of", Kind::Text(C::OnBehalfOf)),
    Field::new("rpc", Kind::Text(C::Rpc)),
    Field::new("method", Kind::Custom(method)),
    Field::new("resource", Kind::Text(C::Resource)),
    Field::new("request_id", Kind::Text(C::RequestId)),
    Field::new("event_time", Kind::Time(C::Time)),
]);

/// Newest first; the time breaks ties by id.
const SORTING: Sorting = Sorting {
    fields: &[("time", KeyType::Int)],
    default: &[("time", Direction::Desc)],
    max_fields: 0,
    id: KeyType::Uuid,
};

/// `method = CreateRisk`: the RPC's method name, whatever its service.
fn method(field: &str, op: Op, value: &str, _: &FilterContext) -> Result<Condition, String> {
    equality_only(field, op)?;
    let escaped = value.replace(['%', '_', '\\'], "");
    let cond = Condition::all().add(C::Rpc.like(format!("%/{escaped}")));
    Ok(if op == Op::Eq { cond } else { cond.not() })
}

/// A page of `service`'s audit trail, newest first.
pub async fn list(
    db: &DatabaseConnection,
    service: &str,
    request: &pb::ListAuditEventsRequest,
) -> ApiResult<pb::ListAuditEventsResponse> {
    let mut v = Violations::new();
    let query = ListQuery::parse(
        &mut v,
        &ListRequest {
            scope: &["audit", service],
            page_size: request.page_size,
            page_token: &request.page_token,
            filter: &request.filter,
            order_by: "",
        },
        Some(&FILTER.at(FilterContext::default())),
        &SORTING,
    );
    v.finish()?;
    let mut select = audit_event::Entity::find()
        .filter(C::Service.eq(service))
        .filter(query.condition.clone())
        .order_by(C::Time, Order::Desc)
        .order_by(C::Id, Order::Desc)
        .limit(query.limit());
    if let Some(after) = query.after_condition(&[C::Time], C::Id) {
        select = select.filter(after);
    }
    let mut rows = select.all(db).await?;
    let next_page_token = query.next_page(&mut rows, |e| {
        vec![Key::Int(e.time), Key::Text(e.id.to_string())]
    });
    Ok(pb::ListAuditEventsResponse {
        audit_events: rows.into_iter().map(to_proto).collect(),
        next_page_token,
    })
}

fn to_proto(e: audit_event::Model) -> pb::AuditEvent {
    pb::AuditEvent {
        name: format!("auditEvents/{}", e.id),
        event_time: Some(to_timestamp(e.time)),
        principal: e.principal,
        on_behalf_of: e.on_behalf_of,
        rpc: e.rpc,
        resource: e.resource,
        request_id: e.request_id,
        service: e.service,
    }
}

/// `AuditService` of one service over its database.
#[derive(Clone)]
pub struct AuditApi {
    db: DatabaseConnection,
    service: &'static str,
}

impl AuditApi {
    pub fn new(db: DatabaseConnection, service: &'static str) -> AuditApi {
        AuditApi { db, service }
    }

    async fn get_event(
        &self,
        request: Request<pb::GetAuditEventRequest>,
    ) -> Result<Response<pb::AuditEvent>, Status> {
        Caller::of(&request)?;
        let name = &request.get_ref().name;
        let id = name
            .strip_prefix("auditEvents/")
            .and_then(|id| Uuid::parse_str(id).ok());
        let Some(id) = id else {
            let description = if name.is_empty() {
                "is required".to_string()
            } else {
                format!("{name:?} is not an audit event name (auditEvents/{{uuid}})")
            };
            return Err(ApiError::InvalidArgument(vec![crate::error::Violation {
                field: "name".into(),
                description,
            }])
            .into());
        };
        let event = audit_event::Entity::find_by_id(id)
            .filter(C::Service.eq(self.service))
            .one(&self.db)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| ApiError::not_found(name))?;
        Ok(Response::new(to_proto(event)))
    }

    async fn list_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        Caller::of(&request)?;
        Ok(Response::new(
            list(&self.db, self.service, request.get_ref()).await?,
        ))
    }
}

/// Each package serves the one audit contract under its own service name.
macro_rules! serve_audit_contract {
    ($($package:ident),*) => {$(
        #[tonic::async_trait]
        impl assurance_proto::$package::v1::audit_service_server::AuditService for AuditApi {
            async fn list_audit_events(
                &self,
                request: Request<pb::ListAuditEventsRequest>,
            ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
                self.list_events(request).await
            }

            async fn get_audit_event(
                &self,
                request: Request<pb::GetAuditEventRequest>,
            ) -> Result<Response<pb::AuditEvent>, Status> {
                self.get_event(request).await
            }
        }
    )*};
}

serve_audit_contract!(risk, incident, gateway);
