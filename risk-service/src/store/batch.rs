//! Group commit of creates and assessments.
//!
//! Concurrent `CreateRisk` and `AssessRisk` calls queue here; a single writer takes everything
//! queued and applies it in one transaction with a few statements (one lookup per kind, bulk
//! inserts, one upsert), then answers each caller after the commit. Acknowledged therefore
//! still means committed; under load many calls share one commit. A failure of the batch as a
//! whole (a conflict with another replica, a lost connection) replays its jobs one by one, so
//! one bad job never fails its neighbours.

use std::collections::{BTreeMap, HashMap, HashSet};

use assurance_runtime::{ApiError, ApiResult, audit, auth::Caller, db, time::now_micros};
use sea_orm::{
    ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    QuerySelect, sea_query::OnConflict,
};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::{
    RequestKey, Store,
    entities::{assessment, request_record, risk, risk_label, service},
    labels::labels_json,
    notify_risks,
    risks::{apply_assessment, transition},
};
use crate::domain::status::{RiskEvent, RiskStatus};

/// Most jobs in one transaction.
const MAX_BATCH: usize = 256;
/// Rows per bulk statement (SQLite allows 32,766 bound values).
const ROWS_PER_STATEMENT: usize = 500;

// Jobs live briefly, one move into the queue and one out: boxing would cost more than it saves.
#[allow(clippy::large_enum_variant)]
pub enum Work {
    Create {
        risk: risk::Model,
        labels: BTreeMap<String, String>,
        key: Option<RequestKey>,
        caller: Caller,
    },
    Assess {
        id: Uuid,
        assessment: assessment::Model,
        key: Option<RequestKey>,
        caller: Caller,
    },
}

impl Work {
    fn key(&self) -> Option<&RequestKey> {
        match self {
            Work::Create { key, .. } | Work::Assess { key, .. } => key.as_ref(),
        }
    }

    fn caller(&self) -> &Caller {
        match self {
            Work::Create { caller, .. } | Work::Assess { caller, .. } => caller,
        }
    }

    /// The resource a successful `self` produced.
    fn resource(&self, r: &risk::Model) -> String {
        match self {
            Work::Create { .. } => format!("risks/{}", r.id),
            Work::Assess { .. } => format!(
                "risks/{}/assessments/{}",
                r.id,
                r.latest_assessment_id.unwrap_or_default()
            ),
        }
    }
}

pub struct Job {
    pub work: Work,
    pub reply: oneshot::Sender<ApiResult<risk::Model>>,
}

/// Starts the writer of `store` (a store without a writer of its own).
pub fn spawn_writer(store: Store) -> mpsc::Sender<Job> {
    let (tx, mut rx) = mpsc::channel::<Job>(4 * MAX_BATCH);
    tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let mut jobs = vec![first];
            while jobs.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            store.apply(jobs).await;
        }
    });
    tx
}

/// What a job came to inside the batch.
#[allow(clippy::large_enum_variant)]
enum Step {
    Pending,
    Done(ApiResult<risk::Model>),
    /// A request id seen before: answer with the risk it made.
    Replay(Uuid),
    /// The same request id earlier in this batch: answer as that job.
    SameAs(usize),
}

impl Store {
    async fn apply(&self, jobs: Vec<Job>) {
        assurance_runtime::observe::write_batch(jobs.len());
        let (works, replies): (Vec<Work>, Vec<_>) =
            jobs.into_iter().map(|j| (j.work, j.reply)).unzip();
        let results = match self.apply_batch(&works).await {
            Ok(results) => results,
            Err(e) => {
                if works.len() > 1 {
                    tracing::debug!(error = %e, jobs = works.len(), "batch failed; applying its jobs one by one");
                }
                let mut results = Vec::with_capacity(works.len());
                for work in works {
                    results.push(match work {
                        Work::Create {
                            risk,
                            labels,
                            key,
                            caller,
                        } => self.create_risk_now(risk, labels, key, &caller).await,
                        Work::Assess {
                            id,
                            assessment,
                            key,
                            caller,
                        } => self.assess_risk_now(id, assessment, key, &caller).await,
                    });
                }
                results
            }
        };
        for (reply, result) in replies.into_iter().zip(results) {
            let _ = reply.send(result);
        }
    }

    /// One transaction for every job; `Err` only when the batch as a whole failed.
    async fn apply_batch(&self, works: &[Work]) -> Result<Vec<ApiResult<risk::Model>>, DbErr> {
        let tx = db::begin_write(self.connection()).await?;
        let mut steps: Vec<Step> = works.iter().map(|_| Step::Pending).collect();
        dedupe_requests(&tx, works, &mut steps).await?;
        let now = now_micros();

        // Creates: one lookup of their services, bulk inserts.
        let wanted: HashSet<&str> = pending(works, &steps)
            .filter_map(|(_, w)| match w {
                Work::Create { risk, .. } => Some(risk.service_id.as_str()),
                Work::Assess { .. } => None,
            })
            .collect();
        let business_units: HashMap<String, String> = if wanted.is_empty() {
            HashMap::new()
        } else {
            service::Entity::find()
                .filter(service::Column::Id.is_in(wanted))
                .filter(service::Column::DeleteTime.is_null())
                .all(&tx)
                .await?
                .into_iter()
                .map(|s| (s.id, s.business_unit_id))
                .collect()
        };
        let mut touched: BTreeMap<Uuid, risk::Model> = BTreeMap::new();
        let mut new_risks = Vec::new();
        let mut new_labels = Vec::new();
        for (i, work) in works.iter().enumerate() {
            let (Step::Pending, Work::Create { risk, labels, .. }) = (&steps[i], work) else {
                continue;
            };
            let Some(bu) = business_units.get(&risk.service_id) else {
                steps[i] = Step::Done(Err(ApiError::not_found(format!(
                    "services/{}",
                    risk.service_id
                ))));
                continue;
            };
            let mut r = risk.clone();
            (r.version, r.create_time, r.update_time) = (1, now, now);
            r.status = RiskStatus::Identified as i32;
            r.business_unit_id = bu.clone();
            r.labels = labels_json(labels);
            new_labels.extend(labels.iter().map(|(k, v)| risk_label::Model {
                risk_id: r.id,
                key: k.clone(),
                value: v.clone(),
            }));
            new_risks.push(r.clone());
            touched.insert(r.id, r.clone());
            steps[i] = Step::Done(Ok(r));
        }
        insert_all::<risk::Entity, _>(
            &tx,
            new_risks
                .iter()
                .cloned()
                .map(IntoActiveModel::into_active_model),
        )
        .await?;
        insert_all::<risk_label::Entity, _>(
            &tx,
            new_labels
                .into_iter()
                .map(IntoActiveModel::into_active_model),
        )
        .await?;

        // Assessments: one locking read of their risks, then apply in arrival order.
        let to_read: Vec<Uuid> = pending(works, &steps)
            .filter_map(|(_, w)| match w {
                Work::Assess { id, .. } if !touched.contains_key(id) => Some(*id),
                _ => None,
            })
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        for chunk in to_read.chunks(ROWS_PER_STATEMENT) {
            let rows = risk::Entity::find()
                .filter(risk::Column::Id.is_in(chunk.to_vec()))
                .order_by_asc(risk::Column::Id)
                .lock_exclusive()
                .all(&tx)
                .await?;
            touched.extend(rows.into_iter().map(|r| (r.id, r)));
        }
        let mut assessed: BTreeMap<Uuid, risk::Model> = BTreeMap::new();
        let mut new_assessments = Vec::new();
        for (i, work) in works.iter().enumerate() {
            let (
                Step::Pending,
                Work::Assess {
                    id,
                    assessment,
                    caller,
                    ..
                },
            ) = (&steps[i], work)
            else {
                continue;
            };
            let Some(current) = touched.get_mut(id) else {
                steps[i] = Step::Done(Err(ApiError::not_found(format!("risks/{id}"))));
                continue;
            };
            if let Err(e) = caller.may_change(&current.service_id) {
                steps[i] = Step::Done(Err(e));
                continue;
            }
            match transition(current, RiskEvent::Assessed) {
                Err(e) => steps[i] = Step::Done(Err(e)),
                Ok(next) => {
                    let mut a = assessment.clone();
                    // Minted in application order, so "newest by id" is the latest applied.
                    a.id = Uuid::now_v7();
                    a.risk_id = *id;
                    a.assess_time = now;
                    apply_assessment(current, next, &a);
                    current.version += 1;
                    current.update_time = now;
                    new_assessments.push(a);
                    assessed.insert(*id, current.clone());
                    steps[i] = Step::Done(Ok(current.clone()));
                }
            }
        }
        insert_all::<assessment::Entity, _>(
            &tx,
            new_assessments
                .into_iter()
                .map(IntoActiveModel::into_active_model),
        )
        .await?;
        // Risks created in this batch were inserted with their final state already.
        let updates: Vec<risk::Model> = assessed
            .values()
            .filter(|r| !new_risks.iter().any(|n| n.id == r.id))
            .cloned()
            .collect();
        for chunk in updates.chunks(ROWS_PER_STATEMENT) {
            risk::Entity::insert_many(
                chunk
                    .iter()
                    .cloned()
                    .map(IntoActiveModel::into_active_model),
            )
            .on_conflict(upsert_assessment_columns())
            .exec_without_returning(&tx)
            .await?;
        }
        for r in new_risks.iter_mut() {
            if let Some(latest) = assessed.get(&r.id) {
                *r = latest.clone();
            }
        }
        if new_risks.iter().any(|r| r.version > 1) {
            // An assessment of a risk created in this batch: write its final state.
            let finals: Vec<_> = new_risks
                .iter()
                .filter(|r| r.version > 1)
                .cloned()
                .collect();
            risk::Entity::insert_many(finals.into_iter().map(IntoActiveModel::into_active_model))
                .on_conflict(upsert_assessment_columns())
                .exec_without_returning(&tx)
                .await?;
        }

        // Request ids of what succeeded, in the same transaction.
        let records = works
            .iter()
            .zip(&steps)
            .filter_map(|(w, step)| match (w.key(), step) {
                (Some(key), Step::Done(Ok(r))) => Some(
                    request_record::Model {
                        operation: key.operation.to_string(),
                        request_id: key.stored.clone(),
                        fingerprint: key.fingerprint.clone(),
                        resource: w.resource(r),
                        create_time: now,
                    }
                    .into_active_model(),
                ),
                _ => None,
            });
        insert_all::<request_record::Entity, _>(&tx, records).await?;
        let audit = works.iter().zip(&steps).filter_map(|(w, step)| match step {
            Step::Done(Ok(r)) => Some(audit::event(
                super::SERVICE,
                w.caller(),
                &w.resource(r),
                w.key().map(|k| k.request_id.as_str()).unwrap_or_default(),
            )),
            _ => None,
        });
        insert_all::<audit::audit_event::Entity, _>(&tx, audit).await?;
        let changed: Vec<String> = updates.iter().map(|r| r.id.to_string()).collect();
        for chunk in changed.chunks(200) {
            notify_risks(&tx, &chunk.join(",")).await?;
        }
        tx.commit().await?;

        for r in &new_risks {
            self.cache.store_new(r);
        }
        for r in &updates {
            self.cache.store(r);
        }
        let mut results: Vec<ApiResult<risk::Model>> = Vec::with_capacity(steps.len());
        for step in &steps {
            let result = match step {
                Step::Done(r) => r.clone(),
                Step::Replay(id) => self.get_risk(*id).await,
                Step::SameAs(j) => results[*j].clone(),
                Step::Pending => Err(ApiError::Internal("job left pending".into())),
            };
            results.push(result);
        }
        Ok(results)
    }
}

fn pending<'a>(
    works: &'a [Work],
    steps: &'a [Step],
) -> impl Iterator<Item = (usize, &'a Work)> + 'a {
    works
        .iter()
        .enumerate()
        .filter(|(i, _)| matches!(steps[*i], Step::Pending))
}

/// Marks jobs whose request id was seen before (answer as then) or earlier in this batch.
async fn dedupe_requests(
    tx: &DatabaseTransaction,
    works: &[Work],
    steps: &mut [Step],
) -> Result<(), DbErr> {
    let mut first: HashMap<(&str, &str), usize> = HashMap::new();
    let mut by_operation: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (i, work) in works.iter().enumerate() {
        let Some(key) = work.key() else { continue };
        // Per principal: the stored id carries the principal (AIP-155).
        match first.get(&(key.operation, key.stored.as_str())) {
            Some(&j) => {
                let same = works[j]
                    .key()
                    .is_some_and(|k| k.fingerprint == key.fingerprint);
                steps[i] = if same {
                    Step::SameAs(j)
                } else {
                    Step::Done(Err(ApiError::RequestIdReused {
                        request_id: key.request_id.clone(),
                    }))
                };
            }
            None => {
                first.insert((key.operation, key.stored.as_str()), i);
                by_operation
                    .entry(key.operation)
                    .or_default()
                    .push(key.stored.clone());
            }
        }
    }
    for (operation, ids) in by_operation {
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            let seen = request_record::Entity::find()
                .filter(request_record::Column::Operation.eq(operation))
                .filter(request_record::Column::RequestId.is_in(chunk.to_vec()))
                .all(tx)
                .await?;
            for record in seen {
                let Some(&i) = first.get(&(operation, record.request_id.as_str())) else {
                    continue;
                };
                let key = works[i].key();
                steps[i] =
                    if key.map(|k| k.fingerprint.as_str()) != Some(record.fingerprint.as_str()) {
                        Step::Done(Err(ApiError::RequestIdReused {
                            request_id: key.map(|k| k.request_id.clone()).unwrap_or_default(),
                        }))
                    } else {
                        match record
                            .resource
                            .strip_prefix("risks/")
                            .and_then(|rest| rest.split('/').next())
                            .and_then(|id| Uuid::parse_str(id).ok())
                        {
                            Some(id) => Step::Replay(id),
                            None => Step::Done(Err(ApiError::Internal(format!(
                                "bad stored resource {}",
                                record.resource
                            )))),
                        }
                    };
            }
        }
    }
    Ok(())
}

/// Inserts every row, `ROWS_PER_STATEMENT` rows a statement.
async fn insert_all<E, A>(
    tx: &DatabaseTransaction,
    rows: impl IntoIterator<Item = A>,
) -> Result<(), DbErr>
where
    E: EntityTrait,
    A: sea_orm::ActiveModelTrait<Entity = E>,
{
    let rows: Vec<A> = rows.into_iter().collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        E::insert_many(chunk.to_vec())
            .exec_without_returning(tx)
            .await?;
    }
    Ok(())
}

/// `ON CONFLICT (id) DO UPDATE` of the columns an assessment changes: a bulk update that
/// leaves every index on other columns alone.
fn upsert_assessment_columns() -> OnConflict {
    use risk::Column as C;
    OnConflict::column(C::Id)
        .update_columns([
            C::Status,
            C::Version,
            C::UpdateTime,
            C::LatestAssessmentId,
            C::Impact,
            C::Likelihood,
            C::ControlDeficiency,
            C::ControlDeficiencyDerived,
            C::Exposure,
            C::Score,
            C::Severity,
            C::Strategy,
            C::RiskLevel,
            C::Methodology,
            C::PolicyId,
            C::AssessmentRationale,
            C::Assessor,
            C::AssessTime,
            C::NextReviewTime,
        ])
        .to_owned()
}
