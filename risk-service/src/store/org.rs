//! Business units and services.

use assurance_runtime::{ApiResult, audit, auth::Caller, db, time::now_micros};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QuerySelect,
    sea_query::{Expr, ExprTrait},
};

use super::{
    Outcome, RequestKey, SERVICE, Store, check_version,
    entities::{action_item, business_unit, risk, service},
    get_by_id, insert_new, next_version, one_or_not_found, write_version,
};

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
        get_by_id::<business_unit::Entity>(self.connection(), id, &name).await
    }

    /// Business units by id, after `after`, at most `limit`.
    pub async fn list_business_units(
        &self,
        after: Option<&str>,
        limit: u64,
    ) -> ApiResult<Vec<business_unit::Model>> {
        let all = business_unit::Entity::find();
        Ok(db::page_after(
            self.connection(),
            all,
            business_unit::Column::Id,
            after,
            limit,
        )
        .await?)
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
        let locked = business_unit::Entity::find_by_id(id).lock_exclusive();
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
        get_by_id::<service::Entity>(self.connection(), id, &format!("services/{id}")).await
    }

    /// Services by id, optionally of one business unit, after `after`, at most `limit`.
    pub async fn list_services(
        &self,
        business_unit: Option<&str>,
        after: Option<&str>,
        limit: u64,
    ) -> ApiResult<Vec<service::Model>> {
        let mut q = service::Entity::find();
        if let Some(bu) = business_unit {
            q = q.filter(service::Column::BusinessUnitId.eq(bu));
        }
        Ok(db::page_after(self.connection(), q, service::Column::Id, after, limit).await?)
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
        let locked = service::Entity::find_by_id(id).lock_exclusive();
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
    get_by_id::<business_unit::Entity>(conn, id, &name)
        .await
        .map(|_| ())
}

/// Ensures a service a write refers to exists and returns its business unit id (`NOT_FOUND`
/// of it otherwise).
pub(super) async fn service_business_unit(
    conn: &impl ConnectionTrait,
    id: &str,
) -> ApiResult<String> {
    get_by_id::<service::Entity>(conn, id, &format!("services/{id}"))
        .await
        .map(|s| s.business_unit_id)
}
