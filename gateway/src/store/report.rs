//! Formal reports in the gateway's store: the report, its services in scope with their
//! confirmations, its frozen risk rows (encoded `ReportRiskRow`s, in order), and a signed
//! report's exports, stored as 64 KiB chunks so that an export streams without loading the
//! whole document.

use assurance_runtime::{
    ApiError, ApiResult, audit,
    auth::Caller,
    etag,
    idempotency::{self, Outcome, RequestKey},
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, DbBackend,
    DbErr, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
};

use super::{SERVICE, Store};

pub mod report_record {
    use sea_orm::entity::prelude::*;

    /// A report. `state` is an `assurance.gateway.v1.ReportState` number; `posture` the
    /// encoded frozen `Posture`; `scoring_policies` newline-separated.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "reports")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub scope: String,
        pub title: String,
        pub period_start: i64,
        pub period_end: i64,
        pub state: i32,
        pub content_hash: String,
        pub posture: Vec<u8>,
        pub risk_count: i64,
        pub scoring_policies: String,
        /// The person who created it (the user a system principal acted for).
        pub creator: String,
        /// The authenticated principal that created it.
        pub creator_principal: String,
        pub version: i64,
        pub create_time: i64,
        pub update_time: i64,
        pub rejected_by: String,
        pub reject_reason: String,
        pub reject_time: Option<i64>,
        pub signed_off_by: String,
        pub sign_off_time: Option<i64>,
    }

    assurance_runtime::entity_without_relations!();
}

pub mod report_service {
    use sea_orm::entity::prelude::*;

    /// A service in a report's scope (`services/{id}`) and its confirmation, once given.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "report_services")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub report_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub service: String,
        /// Empty until confirmed.
        pub confirmed_by: String,
        pub principal: String,
        pub note: String,
        pub confirm_time: Option<i64>,
    }

    assurance_runtime::entity_without_relations!();
}

pub mod report_row {
    use sea_orm::entity::prelude::*;

    /// One frozen risk row: an encoded `assurance.risk.v1.ReportRiskRow`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "report_rows")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub report_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub seq: i64,
        /// `services/{id}`.
        pub service: String,
        pub row: Vec<u8>,
    }

    assurance_runtime::entity_without_relations!();
}

pub mod report_export {
    use sea_orm::entity::prelude::*;

    /// A signed report's export in one format (`ReportFormat` number).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "report_exports")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub report_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub format: i32,
        pub size: i64,
        /// Hex.
        pub sha256: String,
    }

    assurance_runtime::entity_without_relations!();
}

pub mod report_chunk {
    use sea_orm::entity::prelude::*;

    /// One chunk (at most 64 KiB) of a stored export, numbered from 0.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "report_export_chunks")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub report_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub format: i32,
        #[sea_orm(primary_key, auto_increment = false)]
        pub seq: i64,
        pub data: Vec<u8>,
    }

    assurance_runtime::entity_without_relations!();
}

pub use report_record::Model as Report;
pub use report_service::Model as ReportService;

/// Rows per INSERT statement when a report is frozen.
const ROWS_PER_INSERT: usize = 200;

/// The filters of `ListReports`.
#[derive(Debug, Default)]
pub struct ReportFilter {
    pub scope: Option<String>,
    pub state: Option<i32>,
    /// Reports whose period overlaps [start, end).
    pub period_start: Option<i64>,
    pub period_end: Option<i64>,
    /// A principal scoped to services: only reports in which one of these (`services/{id}`)
    /// is in scope, or whose scope is one of them.
    pub services: Option<Vec<String>>,
}

/// The store's name of report `id`.
pub fn name(id: &str) -> String {
    format!("reports/{id}")
}

/// Writes `batch` (service, encoded row) from sequence number `first`.
async fn insert_rows(
    tx: &DatabaseTransaction,
    id: &str,
    first: i64,
    batch: &[(String, Vec<u8>)],
) -> Result<(), DbErr> {
    if batch.is_empty() {
        return Ok(());
    }
    let models = batch.iter().zip(first..).map(|((service, row), seq)| {
        report_row::Model {
            report_id: id.to_string(),
            seq,
            service: service.clone(),
            row: row.clone(),
        }
        .into_active_model()
    });
    report_row::Entity::insert_many(models).exec(tx).await?;
    Ok(())
}

impl Store {
    /// Stores a new report with its services in scope and its rows (service, encoded row) in
    /// order. Audited, and idempotent with `key`.
    pub async fn create_report(
        &self,
        report: Report,
        services: &[String],
        rows: &[(String, Vec<u8>)],
        key: Option<RequestKey>,
        caller: &Caller,
    ) -> ApiResult<Report> {
        let request_id = key
            .as_ref()
            .map(|k| k.request_id.clone())
            .unwrap_or_default();
        let outcome = idempotency::run(self.connection(), key, async |tx| {
            let resource = name(&report.id);
            report.clone().into_active_model().insert(tx).await?;
            if !services.is_empty() {
                report_service::Entity::insert_many(services.iter().map(|service| {
                    report_service::Model {
                        report_id: report.id.clone(),
                        service: service.clone(),
                        confirmed_by: String::new(),
                        principal: String::new(),
                        note: String::new(),
                        confirm_time: None,
                    }
                    .into_active_model()
                }))
                .exec(tx)
                .await?;
            }
            for (i, batch) in rows.chunks(ROWS_PER_INSERT).enumerate() {
                let first = i64::try_from(i * ROWS_PER_INSERT).unwrap_or(i64::MAX);
                insert_rows(tx, &report.id, first, batch).await?;
            }
            audit::record(tx, SERVICE, caller, &resource, &request_id).await?;
            Ok((resource, report.clone()))
        })
        .await?;
        match outcome {
            Outcome::Created(report) => Ok(report),
            Outcome::Replayed(resource) => {
                let id = resource.trim_start_matches("reports/");
                self.report(id)
                    .await?
                    .ok_or_else(|| ApiError::not_found(&resource))
            }
        }
    }

    /// After a large write (a report's rows, its exports): on SQLite, folds the WAL back into
    /// the database file (`PASSIVE`, blocking no one), so that later reads go through `mmap`
    /// instead of filling each pooled connection's page cache with WAL pages.
    pub async fn fold_wal(&self) {
        let conn = self.connection();
        if conn.get_database_backend() == DbBackend::Sqlite
            && let Err(e) = conn
                .execute_unprepared("PRAGMA wal_checkpoint(PASSIVE)")
                .await
        {
            tracing::debug!(error = %e, "WAL checkpoint skipped");
        }
    }

    pub async fn report(&self, id: &str) -> ApiResult<Option<Report>> {
        Ok(report_record::Entity::find_by_id(id)
            .one(self.connection())
            .await?)
    }

    /// The report's services in scope, by name.
    pub async fn report_services(&self, id: &str) -> ApiResult<Vec<ReportService>> {
        services_of(self.connection(), id).await
    }

    /// A signed report's stored exports.
    pub async fn report_exports(&self, id: &str) -> ApiResult<Vec<report_export::Model>> {
        Ok(report_export::Entity::find()
            .filter(report_export::Column::ReportId.eq(id))
            .order_by_asc(report_export::Column::Format)
            .all(self.connection())
            .await?)
    }

    /// A page of reports matching `filter`, newest first, after (create time, id).
    pub async fn list_reports(
        &self,
        filter: &ReportFilter,
        after: Option<(i64, String)>,
        limit: u64,
    ) -> ApiResult<Vec<Report>> {
        use report_record::Column as R;
        let mut select = report_record::Entity::find();
        if let Some(scope) = &filter.scope {
            select = select.filter(R::Scope.eq(scope));
        }
        if let Some(state) = filter.state {
            select = select.filter(R::State.eq(state));
        }
        if let Some(start) = filter.period_start {
            select = select.filter(R::PeriodEnd.gt(start));
        }
        if let Some(end) = filter.period_end {
            select = select.filter(R::PeriodStart.lt(end));
        }
        if let Some(services) = &filter.services {
            let in_scope = report_service::Entity::find()
                .select_only()
                .column(report_service::Column::ReportId)
                .filter(report_service::Column::Service.is_in(services.clone()))
                .into_query();
            select = select.filter(
                Condition::any()
                    .add(R::Id.in_subquery(in_scope))
                    .add(R::Scope.is_in(services.clone())),
            );
        }
        if let Some((time, id)) = after {
            select = select.filter(
                Condition::any().add(R::CreateTime.lt(time)).add(
                    Condition::all()
                        .add(R::CreateTime.eq(time))
                        .add(R::Id.lt(id)),
                ),
            );
        }
        Ok(select
            .order_by_desc(R::CreateTime)
            .order_by_desc(R::Id)
            .limit(limit)
            .all(self.connection())
            .await?)
    }

    /// Changes report `id` in one transaction: `change` sees the report (and the transaction,
    /// for the rows it writes) and moves it on; its version is then raised and the change
    /// audited. With `expected` (from an etag), ABORTED unless that is still the version.
    /// Idempotent with `key`: a replay returns the report as it is.
    pub async fn change_report(
        &self,
        id: &str,
        expected: Option<i64>,
        key: Option<RequestKey>,
        caller: &Caller,
        change: impl AsyncFnOnce(&DatabaseTransaction, &mut Report) -> ApiResult<()>,
    ) -> ApiResult<Report> {
        let resource = name(id);
        let request_id = key
            .as_ref()
            .map(|k| k.request_id.clone())
            .unwrap_or_default();
        let outcome = idempotency::run(self.connection(), key, async |tx| {
            let mut report = report_record::Entity::find_by_id(id)
                .one(tx)
                .await?
                .ok_or_else(|| ApiError::not_found(&resource))?;
            etag::check_version(&resource, expected, report.version)?;
            let version = report.version;
            change(tx, &mut report).await?;
            report.version = version + 1;
            let active = report.clone().into_active_model().reset_all();
            // Two writers racing: the version guard lets only the first through.
            let updated = report_record::Entity::update_many()
                .set(active)
                .filter(report_record::Column::Id.eq(id))
                .filter(report_record::Column::Version.eq(version))
                .exec(tx)
                .await?;
            if updated.rows_affected != 1 {
                return Err(ApiError::Conflict {
                    resource: resource.clone(),
                });
            }
            audit::record(tx, SERVICE, caller, &resource, &request_id).await?;
            Ok((resource.clone(), report))
        })
        .await?;
        match outcome {
            Outcome::Created(report) => Ok(report),
            Outcome::Replayed(_) => self
                .report(id)
                .await?
                .ok_or_else(|| ApiError::not_found(&resource)),
        }
    }
}

/// Report `id`'s services in scope, by name.
pub async fn services_of(conn: &impl ConnectionTrait, id: &str) -> ApiResult<Vec<ReportService>> {
    Ok(report_service::Entity::find()
        .filter(report_service::Column::ReportId.eq(id))
        .order_by_asc(report_service::Column::Service)
        .all(conn)
        .await?)
}

/// Records `confirmation` (its report and service must be in scope).
pub async fn confirm(conn: &impl ConnectionTrait, confirmation: ReportService) -> ApiResult<()> {
    let active = confirmation.into_active_model().reset_all();
    report_service::Entity::update(active).exec(conn).await?;
    Ok(())
}

/// Up to `limit` rows of report `id` after sequence number `after`, only of `services` when
/// given.
pub async fn rows(
    conn: &impl ConnectionTrait,
    id: &str,
    after: Option<i64>,
    services: Option<&[String]>,
    limit: u64,
) -> ApiResult<Vec<report_row::Model>> {
    let mut select = report_row::Entity::find().filter(report_row::Column::ReportId.eq(id));
    if let Some(after) = after {
        select = select.filter(report_row::Column::Seq.gt(after));
    }
    if let Some(services) = services {
        select = select.filter(report_row::Column::Service.is_in(services.iter().cloned()));
    }
    Ok(select
        .order_by_asc(report_row::Column::Seq)
        .limit(limit)
        .all(conn)
        .await?)
}

/// Stores an export's `seq`th chunk.
pub async fn put_chunk(
    conn: &impl ConnectionTrait,
    id: &str,
    format: i32,
    seq: i64,
    data: Vec<u8>,
) -> ApiResult<()> {
    report_chunk::Model {
        report_id: id.to_string(),
        format,
        seq,
        data,
    }
    .into_active_model()
    .insert(conn)
    .await?;
    Ok(())
}

/// Records an export's size and SHA-256 once its chunks are stored.
pub async fn put_export(
    conn: &impl ConnectionTrait,
    export: report_export::Model,
) -> ApiResult<()> {
    export.into_active_model().insert(conn).await?;
    Ok(())
}

/// Up to `limit` stored chunks of an export from sequence number `from`.
pub async fn chunks(
    conn: &impl ConnectionTrait,
    id: &str,
    format: i32,
    from: i64,
    limit: u64,
) -> ApiResult<Vec<report_chunk::Model>> {
    Ok(report_chunk::Entity::find()
        .filter(report_chunk::Column::ReportId.eq(id))
        .filter(report_chunk::Column::Format.eq(format))
        .filter(report_chunk::Column::Seq.gte(from))
        .order_by_asc(report_chunk::Column::Seq)
        .limit(limit)
        .all(conn)
        .await?)
}
