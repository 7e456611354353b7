//! The transactional outbox: an event is written in the same transaction as the change that
//! causes it, and the service's [`relay`] delivers it later, at least once, in order per
//! aggregate, to an idempotent receiver (the event id is the idempotency key). Services that
//! share a database share the `outbox` table, each event tagged with its service.
//!
//! Producers must write (lock) the aggregate's own row before they queue its event, so that
//! on PostgreSQL two transactions on one aggregate take their sequence numbers in commit order.
//!
//! Each service serves its outbox as `OutboxService` (list, get, replay of dead letters).

pub mod relay;

use assurance_proto::outbox::v1 as pb;
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::NotSet,
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, Order, QueryFilter, QueryOrder,
    QuerySelect, Set,
    sea_query::{ColumnDef, Expr, Index, IndexCreateStatement, Table, TableCreateStatement},
};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    ApiError, ApiResult, Reason,
    auth::Caller,
    error::Violation,
    list::{
        EnumValues, Field, FilterContext, FilterTable, KeyType, Kind, ListQuery, ListRequest,
        Sorting,
    },
    page::Key,
    time::{now_micros, to_timestamp},
    validate::Violations,
};

pub mod outbox_event {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "outbox")]
    pub struct Model {
        /// Write order: the relay delivers an aggregate's events in this order.
        #[sea_orm(primary_key)]
        pub seq: i64,
        /// The event id (UUIDv7): `outboxEvents/{id}`, the receiver's idempotency key.
        #[sea_orm(unique)]
        pub id: Uuid,
        /// The producing service (services may share one database).
        pub service: String,
        /// The event type, e.g. `incident.identified_risk`.
        pub kind: String,
        /// The resource whose events are delivered in order, e.g. `incidents/{id}`.
        pub aggregate: String,
        /// JSON body for the receiver.
        pub payload: String,
        pub create_time: i64,
        /// [`super::State`] as its wire number.
        pub state: i32,
        pub attempts: i32,
        /// Not before this time (backoff or the receiver's Retry-After).
        pub next_attempt_time: i64,
        /// The relay delivering it, and until when (a relay that dies lets it go then).
        pub lease_owner: String,
        pub lease_until: i64,
        pub last_error: String,
        pub deliver_time: Option<i64>,
        pub dead_time: Option<i64>,
    }

    crate::entity_without_relations!();
}

use outbox_event::Column as C;

/// Where an event stands (stored as the wire number of `OutboxEventState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum State {
    Pending = 1,
    Delivered = 2,
    Dead = 3,
}

static STATES: EnumValues = EnumValues {
    prefix: "OUTBOX_EVENT_STATE_",
    values: &[("PENDING", 1), ("DELIVERED", 2), ("DEAD", 3)],
};

/// The migration statements of `outbox` (`IF NOT EXISTS`: services sharing a database share
/// the table, told apart by `service`): the table, the relay's index (pending events by
/// aggregate, in order) and the listing's.
pub fn create_table() -> (TableCreateStatement, [IndexCreateStatement; 2]) {
    let text = |c: C| ColumnDef::new(c).string().not_null().to_owned();
    let int = |c: C| ColumnDef::new(c).big_integer().not_null().to_owned();
    (
        Table::create()
            .table(outbox_event::Entity)
            .if_not_exists()
            .col(
                ColumnDef::new(C::Seq)
                    .big_integer()
                    .not_null()
                    .auto_increment()
                    .primary_key(),
            )
            .col(ColumnDef::new(C::Id).uuid().not_null().unique_key())
            .col(text(C::Service))
            .col(text(C::Kind))
            .col(text(C::Aggregate))
            .col(ColumnDef::new(C::Payload).text().not_null())
            .col(int(C::CreateTime))
            .col(ColumnDef::new(C::State).integer().not_null())
            .col(ColumnDef::new(C::Attempts).integer().not_null())
            .col(int(C::NextAttemptTime))
            .col(text(C::LeaseOwner))
            .col(int(C::LeaseUntil))
            .col(ColumnDef::new(C::LastError).text().not_null())
            .col(ColumnDef::new(C::DeliverTime).big_integer().null())
            .col(ColumnDef::new(C::DeadTime).big_integer().null())
            .to_owned(),
        [
            Index::create()
                .if_not_exists()
                .name("outbox_by_aggregate")
                .table(outbox_event::Entity)
                .col(C::Service)
                .col(C::Aggregate)
                .col(C::State)
                .col(C::Seq)
                .to_owned(),
            Index::create()
                .if_not_exists()
                .name("outbox_by_state")
                .table(outbox_event::Entity)
                .col(C::Service)
                .col(C::State)
                .col(C::Seq)
                .to_owned(),
        ],
    )
}

/// An event to queue: its type, aggregate and JSON payload.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub kind: &'static str,
    pub aggregate: String,
    pub payload: serde_json::Value,
}

/// Queues `events` of `service` inside the transaction `tx` of the change that causes them
/// (write the aggregate's row first: see the module docs).
pub async fn queue(
    tx: &impl ConnectionTrait,
    service: &str,
    events: impl IntoIterator<Item = NewEvent>,
) -> ApiResult<()> {
    let now = now_micros();
    let rows: Vec<_> = events
        .into_iter()
        .map(|e| outbox_event::ActiveModel {
            seq: NotSet,
            id: Set(Uuid::now_v7()),
            service: Set(service.to_string()),
            kind: Set(e.kind.to_string()),
            aggregate: Set(e.aggregate),
            payload: Set(crate::trace_context::with_traceparent(e.payload).to_string()),
            create_time: Set(now),
            state: Set(State::Pending as i32),
            attempts: Set(0),
            next_attempt_time: Set(0),
            lease_owner: Set(String::new()),
            lease_until: Set(0),
            last_error: Set(String::new()),
            deliver_time: Set(None),
            dead_time: Set(None),
        })
        .collect();
    // One row at a time: a multi-row insert's sequence numbers follow the rows' order on
    // both backends, but one insert each keeps that obvious.
    for row in rows {
        row.insert(tx).await?;
    }
    Ok(())
}

/// The filter fields of `ListOutboxEvents`.
static FILTER: FilterTable<C> = FilterTable(&[
    Field::new(
        "state",
        Kind::Enum {
            column: C::State,
            values: &STATES,
            ordered: false,
        },
    ),
    Field::new("type", Kind::Text(C::Kind)),
    Field::new("aggregate", Kind::Text(C::Aggregate)),
    Field::new("create_time", Kind::Time(C::CreateTime)),
]);

/// Write order (the sequence number) only.
const SORTING: Sorting = Sorting {
    fields: &[],
    default: &[],
    max_fields: 0,
    id: KeyType::Int,
};

fn to_proto(e: outbox_event::Model) -> pb::OutboxEvent {
    let time = |t: Option<i64>| t.map(to_timestamp);
    pb::OutboxEvent {
        name: format!("outboxEvents/{}", e.id),
        r#type: e.kind,
        aggregate: e.aggregate,
        payload: e.payload,
        state: e.state,
        attempts: e.attempts,
        last_error: e.last_error,
        create_time: Some(to_timestamp(e.create_time)),
        next_attempt_time: (e.state == State::Pending as i32 && e.next_attempt_time > 0)
            .then(|| to_timestamp(e.next_attempt_time)),
        deliver_time: time(e.deliver_time),
        dead_time: time(e.dead_time),
        service: e.service,
    }
}

/// `OutboxService` of one service over its database.
#[derive(Clone)]
pub struct OutboxApi {
    db: DatabaseConnection,
    service: &'static str,
}

impl OutboxApi {
    pub fn new(db: DatabaseConnection, service: &'static str) -> OutboxApi {
        OutboxApi { db, service }
    }

    /// The event `name` (`outboxEvents/{id}`) of this service.
    async fn find(&self, name: &str) -> ApiResult<outbox_event::Model> {
        let id = name
            .strip_prefix("outboxEvents/")
            .and_then(|id| Uuid::parse_str(id).ok());
        let Some(id) = id else {
            let description = if name.is_empty() {
                "is required".to_string()
            } else {
                format!("{name:?} is not an outbox event name (outboxEvents/{{uuid}})")
            };
            return Err(ApiError::InvalidArgument(vec![Violation {
                field: "name".into(),
                description,
            }]));
        };
        outbox_event::Entity::find()
            .filter(C::Id.eq(id))
            .filter(C::Service.eq(self.service))
            .one(&self.db)
            .await?
            .ok_or_else(|| ApiError::not_found(name))
    }

    async fn get_event(
        &self,
        request: Request<pb::GetOutboxEventRequest>,
    ) -> Result<Response<pb::OutboxEvent>, Status> {
        Caller::of(&request)?;
        Ok(Response::new(to_proto(
            self.find(&request.get_ref().name).await?,
        )))
    }

    async fn list_events(
        &self,
        request: Request<pb::ListOutboxEventsRequest>,
    ) -> Result<Response<pb::ListOutboxEventsResponse>, Status> {
        Caller::of(&request)?;
        let r = request.get_ref();
        let mut v = Violations::new();
        let query = ListQuery::parse(
            &mut v,
            &ListRequest {
                scope: &["outbox", self.service],
                page_size: r.page_size,
                page_token: &r.page_token,
                filter: &r.filter,
                order_by: "",
            },
            Some(&FILTER.at(FilterContext::default())),
            &SORTING,
        );
        v.finish()?;
        let mut select = outbox_event::Entity::find()
            .filter(C::Service.eq(self.service))
            .filter(query.condition.clone())
            .order_by(C::Seq, Order::Asc)
            .limit(query.limit());
        if let Some(after) = query.after_sequence() {
            select = select.filter(C::Seq.gt(after));
        }
        let mut rows = select.all(&self.db).await.map_err(ApiError::from)?;
        let next_page_token = query.next_page(&mut rows, |e| vec![Key::Int(e.seq)]);
        Ok(Response::new(pb::ListOutboxEventsResponse {
            outbox_events: rows.into_iter().map(to_proto).collect(),
            next_page_token,
        }))
    }

    async fn replay_event(
        &self,
        request: Request<pb::ReplayOutboxEventRequest>,
    ) -> Result<Response<pb::OutboxEvent>, Status> {
        let caller = Caller::of(&request)?.clone();
        let name = &request.get_ref().name;
        let event = self.find(name).await?;
        let tx = crate::db::begin_write(&self.db)
            .await
            .map_err(ApiError::from)?;
        let replayed = outbox_event::Entity::update_many()
            .col_expr(C::State, Expr::value(State::Pending as i32))
            .col_expr(C::Attempts, Expr::value(0))
            .col_expr(C::NextAttemptTime, Expr::value(0))
            .col_expr(C::DeadTime, Expr::value(Option::<i64>::None))
            .filter(C::Seq.eq(event.seq))
            .filter(C::State.eq(State::Dead as i32))
            .exec(&tx)
            .await
            .map_err(ApiError::from)?;
        if replayed.rows_affected == 0 {
            return Err(ApiError::precondition(
                Reason::OutboxEventNotDead,
                format!("{name} is not DEAD: only a dead letter can be replayed"),
            )
            .into());
        }
        crate::audit::record(&tx, self.service, &caller, name, "").await?;
        tx.commit().await.map_err(ApiError::from)?;
        Ok(Response::new(to_proto(self.find(name).await?)))
    }
}

/// Each package serves the one outbox contract under its own service name.
macro_rules! serve_outbox_contract {
    ($($package:ident),*) => {$(
        #[tonic::async_trait]
        impl assurance_proto::$package::v1::outbox_service_server::OutboxService for OutboxApi {
            async fn list_outbox_events(
                &self,
                request: Request<pb::ListOutboxEventsRequest>,
            ) -> Result<Response<pb::ListOutboxEventsResponse>, Status> {
                self.list_events(request).await
            }

            async fn get_outbox_event(
                &self,
                request: Request<pb::GetOutboxEventRequest>,
            ) -> Result<Response<pb::OutboxEvent>, Status> {
                self.get_event(request).await
            }

            async fn replay_outbox_event(
                &self,
                request: Request<pb::ReplayOutboxEventRequest>,
            ) -> Result<Response<pb::OutboxEvent>, Status> {
                self.replay_event(request).await
            }
        }
    )*};
}

serve_outbox_contract!(risk, incident);
