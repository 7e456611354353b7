//! Business units and services. A deleted one keeps its row (marked by `delete_time`): CLOSED
//! risks keep naming their service as history. It is not found, listed or referable any more,
//! and its id is not reused.

use assurance_runtime::{
    ApiError, ApiResult, audit, auth::Caller, db, list::ListQuery, time::now_micros,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait, Query},
};

use super::{
    Outcome, RequestKey, SERVICE, Store, check_version,
    entities::{action_item, business_unit, exception, exception_service, risk, service},
    insert_new, listing, next_version, one_or_not_found,
    reviews::review_cycle,
    write_version,
};
use crate::domain::{exceptions::ExceptionStatus, reviews::ReviewCycleState, status::RiskStatus};

/// At most this many referencing resources are named in a refused delete.
const MAX_NAMED: u64 = 100;

/// The business unit `id` unless deleted, or `NOT_FOUND`.
fn live_business_unit(id: &str) -> sea_orm::Select<business_unit::Entity> {
    business_unit::Entity::find_by_id(id).filter(business_unit::Column::DeleteTime.is_null())
}

/// The service `id` unless deleted, or `NOT_FOUND`.
fn live_service(id: &str) -> sea_orm::Select<service::Entity> {
    service::Entity::find_by_id(id).filter(service::Column::DeleteTime.is_null())
}

impl Store {
    pub async fn create_business_unit(
        &self,
        mut bu: business_unit::Model,
        key: Option<RequestKey>,
        caller: &Caller,
    ) -> ApiResult<business_unit::Model> {
        caller.must_be_unscoped("create business units")?;
        let request_id = super::request_id_of(&key);
        let now = now_micros();
        (bu.version, bu.create_time, bu.update_time) = (1, now, now);
        let name = format!("businessUnits/{}", bu.id);
        let outcome = self
            .idempotent(key, async |tx| {
                insert_new(tx, bu.clone().into_active_model().reset_all(), &name).await?;
                audit::record(tx, SERVICE, caller, &name, &request_id).await?;
                Ok((name.clone(), bu.clone()))
            })
            .await?;
        match outcome {
            Outcome::Created(m) => Ok(m),
            Outcome::Replayed(_) => self.get_business_unit(&bu.id).await,
        }
    }

    pub async fn get_business_unit(&self, id: &str) -> ApiResult<business_unit::Model> {
        let name = format!("businessUnits/{id}");
        one_or_not_found(live_business_unit(id), self.connection(), &name).await
    }

    /// A page of the business units in `q`'s filter and order.
    pub async fn list_business_units(&self, q: &ListQuery) -> ApiResult<Vec<business_unit::Model>> {
        let all = business_unit::Entity::find().filter(business_unit::Column::DeleteTime.is_null());
        let select = listing::page_of(
            all,
            q,
            listing::business_unit_column,
            business_unit::Column::Id,
        )?;
        Ok(select.all(self.connection()).await?)
    }

    pub async fn update_business_unit(
        &self,
        id: &str,
        expected_version: Option<i64>,
        patch: impl Fn(&mut business_unit::Model),
        caller: &Caller,
    ) -> ApiResult<business_unit::Model> {
        caller.must_be_unscoped("change business units")?;
        let name = format!("businessUnits/{id}");
        let tx = db::begin_write(self.connection()).await?;
        let locked = live_business_unit(id).lock_exclusive();
        let current = one_or_not_found(locked, &tx, &name).await?;
        check_version(&name, expected_version, current.version)?;
        let next = next_version(&current, now_micros(), patch);
        write_version(&tx, &next, current.version, &name).await?;
        audit::record(&tx, SERVICE, caller, &name, "").await?;
        tx.commit().await?;
        Ok(next)
    }

    pub async fn create_service(
        &self,
        mut svc: service::Model,
        key: Option<RequestKey>,
        caller: &Caller,
    ) -> ApiResult<service::Model> {
        caller.must_be_unscoped("register services")?;
        let request_id = super::request_id_of(&key);
        let now = now_micros();
        (svc.version, svc.create_time, svc.update_time) = (1, now, now);
        let name = format!("services/{}", svc.id);
        let outcome = self
            .idempotent(key, async |tx| {
                require_business_unit(tx, &svc.business_unit_id).await?;
                insert_new(tx, svc.clone().into_active_model().reset_all(), &name).await?;
                audit::record(tx, SERVICE, caller, &name, &request_id).await?;
                Ok((name.clone(), svc.clone()))
            })
            .await?;
        match outcome {
            Outcome::Created(m) => Ok(m),
            Outcome::Replayed(_) => self.get_service(&svc.id).await,
        }
    }

    pub async fn get_service(&self, id: &str) -> ApiResult<service::Model> {
        one_or_not_found(
            live_service(id),
            self.connection(),
            &format!("services/{id}"),
        )
        .await
    }

    /// A page of the services, optionally of one business unit, in `q`'s filter and order.
    pub async fn list_services(
        &self,
        business_unit: Option<&str>,
        q: &ListQuery,
    ) -> ApiResult<Vec<service::Model>> {
        let mut select = service::Entity::find().filter(service::Column::DeleteTime.is_null());
        if let Some(bu) = business_unit {
            select = select.filter(service::Column::BusinessUnitId.eq(bu));
        }
        let select = listing::page_of(select, q, listing::service_column, service::Column::Id)?;
        Ok(select.all(self.connection()).await?)
    }

    /// Deletes the business unit `id` (etag checked) unless something open references it:
    /// then `Referenced`, naming what does — its services (not deleted), risks not CLOSED, open
    /// review cycles scoped to it.
    pub async fn delete_business_unit(
        &self,
        id: &str,
        expected_version: Option<i64>,
        caller: &Caller,
    ) -> ApiResult<()> {
        caller.must_be_unscoped("delete business units")?;
        let name = format!("businessUnits/{id}");
        let tx = db::begin_write(self.connection()).await?;
        let current = one_or_not_found(live_business_unit(id).lock_exclusive(), &tx, &name).await?;
        check_version(&name, expected_version, current.version)?;
        let mut referencing: Vec<String> = service::Entity::find()
            .filter(service::Column::BusinessUnitId.eq(id))
            .filter(service::Column::DeleteTime.is_null())
            .order_by_asc(service::Column::Id)
            .limit(MAX_NAMED)
            .all(&tx)
            .await?
            .into_iter()
            .map(|s| format!("services/{}", s.id))
            .collect();
        referencing.extend(
            open_risks(
                &tx,
                Condition::all().add(risk::Column::BusinessUnitId.eq(id)),
            )
            .await?,
        );
        referencing.extend(open_cycles(&tx, &name).await?);
        if !referencing.is_empty() {
            return Err(ApiError::Referenced {
                resource: name,
                by: referencing,
            });
        }
        let now = now_micros();
        let next = next_version(&current, now, |m| m.delete_time = Some(now));
        write_version(&tx, &next, current.version, &name).await?;
        audit::record(&tx, SERVICE, caller, &name, "").await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes the service `id` (etag checked) unless something open references it: then
    /// `Referenced`, naming what does — its risks not CLOSED, exceptions REQUESTED or ACTIVE
    /// that cover it, open review cycles scoped to it. Its CLOSED risks keep its id as history.
    pub async fn delete_service(
        &self,
        id: &str,
        expected_version: Option<i64>,
        caller: &Caller,
    ) -> ApiResult<()> {
        caller.must_be_unscoped("delete services")?;
        let name = format!("services/{id}");
        let tx = db::begin_write(self.connection()).await?;
        let current = one_or_not_found(live_service(id).lock_exclusive(), &tx, &name).await?;
        check_version(&name, expected_version, current.version)?;
        let mut referencing =
            open_risks(&tx, Condition::all().add(risk::Column::ServiceId.eq(id))).await?;
        referencing.extend(open_exceptions(&tx, id).await?);
        referencing.extend(open_cycles(&tx, &name).await?);
        if !referencing.is_empty() {
            return Err(ApiError::Referenced {
                resource: name,
                by: referencing,
            });
        }
        let now = now_micros();
        let next = next_version(&current, now, |m| m.delete_time = Some(now));
        write_version(&tx, &next, current.version, &name).await?;
        audit::record(&tx, SERVICE, caller, &name, "").await?;
        tx.commit().await?;
        Ok(())
    }

    /// Updates a service; moving it to another business unit moves its risks' roll-up too
    /// (and bumps their etags, since their `business_unit` changes).
    pub async fn update_service(
        &self,
        id: &str,
        expected_version: Option<i64>,
        patch: impl Fn(&mut service::Model),
        caller: &Caller,
    ) -> ApiResult<service::Model> {
        caller.may_change(id)?;
        let name = format!("services/{id}");
        let tx = db::begin_write(self.connection()).await?;
        let locked = live_service(id).lock_exclusive();
        let current = one_or_not_found(locked, &tx, &name).await?;
        check_version(&name, expected_version, current.version)?;
        let next = next_version(&current, now_micros(), patch);
        if next.business_unit_id != current.business_unit_id {
            require_business_unit(&tx, &next.business_unit_id).await?;
            risk::Entity::update_many()
                .col_expr(
                    risk::Column::BusinessUnitId,
                    Expr::value(next.business_unit_id.clone()),
                )
                .col_expr(
                    risk::Column::Version,
                    Expr::col(risk::Column::Version).add(1),
                )
                .filter(risk::Column::ServiceId.eq(id))
                .exec(&tx)
                .await?;
            action_item::Entity::update_many()
                .col_expr(
                    action_item::Column::BusinessUnitId,
                    Expr::value(next.business_unit_id.clone()),
                )
                .filter(action_item::Column::ServiceId.eq(id))
                .exec(&tx)
                .await?;
            super::notify_risks(&tx, super::cache::ALL).await?;
        }
        write_version(&tx, &next, current.version, &name).await?;
        audit::record(&tx, SERVICE, caller, &name, "").await?;
        tx.commit().await?;
        if next.business_unit_id != current.business_unit_id {
            self.cache.clear();
        }
        Ok(next)
    }
}

/// Ensures a business unit a write refers to exists (`NOT_FOUND` of it otherwise; the API
/// reports that against the field that names it).
pub(super) async fn require_business_unit(conn: &impl ConnectionTrait, id: &str) -> ApiResult<()> {
    let name = format!("businessUnits/{id}");
    one_or_not_found(live_business_unit(id), conn, &name)
        .await
        .map(|_| ())
}

/// Ensures a service a write refers to exists and returns its business unit id (`NOT_FOUND`
/// of it otherwise).
pub(super) async fn service_business_unit(
    conn: &impl ConnectionTrait,
    id: &str,
) -> ApiResult<String> {
    one_or_not_found(live_service(id), conn, &format!("services/{id}"))
        .await
        .map(|s| s.business_unit_id)
}

/// Names of the open review cycles scoped to `scope` (`businessUnits/{id}`, `services/{id}`).
async fn open_cycles(conn: &impl ConnectionTrait, scope: &str) -> ApiResult<Vec<String>> {
    Ok(review_cycle::Entity::find()
        .filter(review_cycle::Column::Scope.eq(scope))
        .filter(review_cycle::Column::State.eq(ReviewCycleState::Open as i32))
        .order_by_asc(review_cycle::Column::Id)
        .limit(MAX_NAMED)
        .all(conn)
        .await?
        .into_iter()
        .map(|c| format!("reviewCycles/{}", c.id))
        .collect())
}

/// Names of the risks not CLOSED matching `condition`.
async fn open_risks(conn: &impl ConnectionTrait, condition: Condition) -> ApiResult<Vec<String>> {
    Ok(risk::Entity::find()
        .filter(condition)
        .filter(risk::Column::Status.ne(RiskStatus::Closed as i32))
        .order_by_asc(risk::Column::Id)
        .limit(MAX_NAMED)
        .all(conn)
        .await?
        .into_iter()
        .map(|r| format!("risks/{}", r.id))
        .collect())
}

/// Names of the exceptions REQUESTED or ACTIVE that cover the service `id`.
async fn open_exceptions(conn: &impl ConnectionTrait, id: &str) -> ApiResult<Vec<String>> {
    let covering = Query::select()
        .column(exception_service::Column::ExceptionId)
        .from(exception_service::Entity)
        .and_where(exception_service::Column::ServiceId.eq(id))
        .to_owned();
    let open = [ExceptionStatus::Requested, ExceptionStatus::Active].map(|s| s as i32);
    Ok(exception::Entity::find()
        .filter(exception::Column::Id.in_subquery(covering))
        .filter(exception::Column::Status.is_in(open))
        .order_by_asc(exception::Column::Id)
        .limit(MAX_NAMED)
        .all(conn)
        .await?
        .into_iter()
        .map(|e| format!("exceptions/{}", e.id))
        .collect())
}
