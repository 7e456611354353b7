//! Evidence and its chain of custody: collection is the first custody entry; each transfer
//! appends one.

use assurance_runtime::{
    ApiError, ApiResult,
    auth::Caller,
    idempotency::{RequestKey, last_segment},
    time::now_micros,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseTransaction, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::{
    Change, Created, Store,
    entities::{custody_entry, evidence, incident},
};
use crate::domain::timeline::TimelineKind;

impl Store {
    /// Records an item of evidence and the first entry of its custody log (the collection).
    pub async fn create_evidence(
        &self,
        mut item: evidence::Model,
        caller: &Caller,
        key: Option<RequestKey>,
    ) -> ApiResult<evidence::Model> {
        let id = item.incident_id;
        let create = async |tx: &DatabaseTransaction, _: &mut incident::Model| {
            let now = now_micros();
            (item.create_time, item.custody_seq, item.custodian) = (now, 1, item.collector.clone());
            evidence::Entity::insert(item.clone().into_active_model())
                .exec_without_returning(tx)
                .await?;
            let first = custody_entry::Model {
                evidence_id: item.id,
                seq: 1,
                incident_id: id,
                from_custodian: String::new(),
                to_custodian: item.collector.clone(),
                purpose: "collected".into(),
                location: item.location.clone(),
                transfer_time: item.collect_time,
            };
            custody_entry::Entity::insert(first.into_active_model())
                .exec_without_returning(tx)
                .await?;
            Ok(Created {
                name: format!("incidents/{id}/evidence/{}", item.id),
                change: Change {
                    kind: TimelineKind::Evidence,
                    // Evidence is restricted material (need-to-know): the timeline, which
                    // every reader of the incident sees, names the record, not its content.
                    summary: format!(
                        "evidence collected by {} (details in the evidence record)",
                        item.collector
                    ),
                    services: None,
                },
                value: item,
            })
        };
        let reread = async |name: String| self.evidence(last_segment(&name)?).await;
        self.create_in(id, caller, key, create, reread).await
    }

    pub async fn evidence(&self, id: Uuid) -> ApiResult<evidence::Model> {
        evidence::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("evidence {id}")))
    }

    /// Evidence of an incident by id, after `after`.
    pub async fn evidence_of(
        &self,
        incident: Uuid,
        filter: sea_orm::Condition,
        after: Option<Uuid>,
        limit: u64,
    ) -> ApiResult<Vec<evidence::Model>> {
        self.get(incident).await?;
        let of_incident = evidence::Entity::find()
            .filter(evidence::Column::IncidentId.eq(incident))
            .filter(filter);
        Ok(assurance_runtime::db::page_after(
            &self.db,
            of_incident,
            evidence::Column::Id,
            after,
            limit,
        )
        .await?)
    }

    /// Appends a custody transfer of an item of `incident`.
    pub async fn create_custody_record(
        &self,
        incident: Uuid,
        evidence_id: Uuid,
        mut entry: custody_entry::Model,
        caller: &Caller,
        key: Option<RequestKey>,
    ) -> ApiResult<custody_entry::Model> {
        let create = async |tx: &DatabaseTransaction, _: &mut incident::Model| {
            let item = evidence::Entity::find_by_id(evidence_id)
                .lock_exclusive()
                .one(tx)
                .await?
                .filter(|e| e.incident_id == incident)
                .ok_or_else(|| {
                    ApiError::not_found(format!("incidents/{incident}/evidence/{evidence_id}"))
                })?;
            entry.evidence_id = evidence_id;
            entry.incident_id = incident;
            entry.seq = item.custody_seq + 1;
            entry.from_custodian = item.custodian.clone();
            entry.transfer_time = now_micros();
            let mut next = item.clone();
            next.custody_seq = entry.seq;
            next.custodian = entry.to_custodian.clone();
            if !entry.location.is_empty() {
                next.location = entry.location.clone();
            }
            evidence::Entity::update(next.into_active_model().reset_all())
                .exec(tx)
                .await?;
            custody_entry::Entity::insert(entry.clone().into_active_model())
                .exec_without_returning(tx)
                .await?;
            Ok(Created {
                name: format!(
                    "incidents/{incident}/evidence/{evidence_id}/custodyRecords/{}",
                    entry.seq
                ),
                change: Change {
                    kind: TimelineKind::Evidence,
                    summary: format!(
                        "custody of evidence transferred: {} → {}",
                        entry.from_custodian, entry.to_custodian
                    ),
                    services: None,
                },
                value: entry,
            })
        };
        let reread = async |name: String| {
            let seq: i64 = last_segment(&name)?;
            custody_entry::Entity::find_by_id((evidence_id, seq))
                .one(&self.db)
                .await?
                .ok_or_else(|| ApiError::not_found(name))
        };
        self.create_in(incident, caller, key, create, reread).await
    }

    /// The custody log of an item, oldest first.
    /// A page of an item's chain of custody, oldest first, after the step `after`.
    pub async fn custody(
        &self,
        incident: Uuid,
        evidence_id: Uuid,
        filter: sea_orm::Condition,
        after: Option<i64>,
        limit: u64,
    ) -> ApiResult<Vec<custody_entry::Model>> {
        let item = self.evidence(evidence_id).await?;
        if item.incident_id != incident {
            return Err(ApiError::not_found(format!(
                "incidents/{incident}/evidence/{evidence_id}"
            )));
        }
        let mut q = custody_entry::Entity::find()
            .filter(custody_entry::Column::EvidenceId.eq(evidence_id))
            .filter(filter)
            .order_by_asc(custody_entry::Column::Seq);
        if let Some(seq) = after {
            q = q.filter(custody_entry::Column::Seq.gt(seq));
        }
        Ok(q.limit(limit).all(&self.db).await?)
    }
}
