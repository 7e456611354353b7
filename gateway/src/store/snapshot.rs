//! Posture snapshots in the gateway's store: one row per snapshot (its header: periods, the
//! appetite versions used, the halves missing), one row per node of the enterprise tree (its
//! figures, prost-encoded), and the claims of the scheduled slots, so that gateway replicas
//! sharing the store take each scheduled snapshot once.

use assurance_runtime::{
    ApiError, ApiResult, audit,
    auth::Caller,
    db,
    idempotency::{self, Outcome, RequestKey},
    time::now_micros,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait,
};

use super::{SERVICE, Store};

pub mod posture_snapshot {
    use sea_orm::entity::prelude::*;

    /// One snapshot.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "posture_snapshots")]
    pub struct Model {
        /// The `{id}` of `postureSnapshots/{id}` (a UUIDv7).
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// When the figures were computed (the gateway's clock), in microseconds.
        pub take_time: i64,
        /// The `assurance.gateway.v1.PostureSnapshot` without its name, prost-encoded.
        pub header: Vec<u8>,
    }

    assurance_runtime::entity_without_relations!();
}

pub mod snapshot_node {
    use sea_orm::entity::prelude::*;

    /// One node of a snapshot's tree.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "posture_snapshot_nodes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub snapshot_id: String,
        /// `enterprise`, `businessUnits/{id}`, `services/{id}` or `unassigned`.
        #[sea_orm(primary_key, auto_increment = false)]
        pub scope: String,
        /// The parent's scope; empty for the enterprise.
        pub parent: String,
        /// The node's rank in a depth-first walk of the tree: children come in this order.
        pub position: i32,
        /// `assurance.gateway.v1.NodeKind`.
        pub kind: i32,
        /// The `assurance.gateway.v1.PostureNode` without its children, prost-encoded.
        pub figures: Vec<u8>,
    }

    assurance_runtime::entity_without_relations!();
}

pub mod snapshot_slot {
    use sea_orm::entity::prelude::*;

    /// The claim of one scheduled slot (`floor(time / interval)`) by one gateway replica.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "posture_snapshot_slots")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub slot: i64,
        /// The replica holding the claim (an id drawn at start-up).
        pub holder: String,
        /// Real time (microseconds) after which another replica may take the slot over.
        pub lease_expire_time: i64,
        /// The snapshot taken for the slot; empty while it is being taken.
        pub snapshot_id: String,
    }

    assurance_runtime::entity_without_relations!();
}

use posture_snapshot::{Column as S, Entity as Snapshots, Model as Snapshot};
use snapshot_node::{Column as N, Entity as Nodes, Model as Node};
use snapshot_slot::{Column as L, Entity as Slots};

/// Nodes inserted per statement (6 parameters each, well under SQLite's limit).
const NODE_BATCH: usize = 500;

/// What claiming a scheduled slot found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This replica holds the slot: take its snapshot.
    Claimed,
    /// Another replica holds an unexpired claim and is taking it.
    Held,
    /// The slot's snapshot was taken.
    Taken,
}

/// A snapshot to store, and the scheduled slot it fills, if any.
pub struct NewSnapshot {
    pub snapshot: Snapshot,
    pub nodes: Vec<Node>,
    /// `(slot, holder)`: the claim this snapshot completes.
    pub slot: Option<(i64, String)>,
}

impl Store {
    /// Claims scheduled `slot` for `holder` until `lease` microseconds from now (real time).
    /// Claimed when this replica should take the slot's snapshot: the slot is new, or its
    /// claim is this holder's, or an expired claim of a replica that never finished.
    pub async fn claim_slot(&self, slot: i64, holder: &str, lease: i64) -> ApiResult<Claim> {
        let now = now_micros();
        let tx = db::begin_write(&self.db).await?;
        let Some(claim) = Slots::find_by_id(slot).one(&tx).await? else {
            let row = snapshot_slot::Model {
                slot,
                holder: holder.to_string(),
                lease_expire_time: now + lease,
                snapshot_id: String::new(),
            };
            return match row.into_active_model().insert(&tx).await {
                Ok(_) => {
                    tx.commit().await?;
                    Ok(Claim::Claimed)
                }
                // Another replica claimed it first.
                Err(e) if assurance_runtime::error::is_unique_violation(&e) => Ok(Claim::Held),
                Err(e) => Err(e.into()),
            };
        };
        if !claim.snapshot_id.is_empty() {
            return Ok(Claim::Taken);
        }
        if claim.holder != holder && claim.lease_expire_time > now {
            return Ok(Claim::Held);
        }
        // Take over (or renew) only the claim as read: a replica racing for it loses here.
        let taken = Slots::update_many()
            .col_expr(L::Holder, sea_orm::sea_query::Expr::value(holder))
            .col_expr(
                L::LeaseExpireTime,
                sea_orm::sea_query::Expr::value(now + lease),
            )
            .filter(L::Slot.eq(slot))
            .filter(L::Holder.eq(claim.holder.as_str()))
            .filter(L::LeaseExpireTime.eq(claim.lease_expire_time))
            .filter(L::SnapshotId.eq(""))
            .exec(&tx)
            .await?
            .rows_affected
            == 1;
        tx.commit().await?;
        Ok(if taken { Claim::Claimed } else { Claim::Held })
    }

    /// Stores `new` with its nodes, audited as `caller`'s; idempotent with `key` (a replay
    /// returns the snapshot the first attempt stored). A scheduled snapshot completes its
    /// slot's claim, and is not stored when the claim was lost to another replica.
    pub async fn save_snapshot(
        &self,
        new: NewSnapshot,
        key: Option<RequestKey>,
        caller: &Caller,
    ) -> ApiResult<Snapshot> {
        let request_id = key
            .as_ref()
            .map(|k| k.request_id.clone())
            .unwrap_or_default();
        let name = format!("postureSnapshots/{}", new.snapshot.id);
        let outcome = idempotency::run(&self.db, key, async |tx| {
            new.snapshot.clone().into_active_model().insert(tx).await?;
            for batch in new.nodes.chunks(NODE_BATCH) {
                Nodes::insert_many(
                    batch
                        .iter()
                        .cloned()
                        .map(IntoActiveModel::into_active_model),
                )
                .exec(tx)
                .await?;
            }
            if let Some((slot, holder)) = &new.slot {
                let completed = Slots::update_many()
                    .col_expr(
                        L::SnapshotId,
                        sea_orm::sea_query::Expr::value(new.snapshot.id.as_str()),
                    )
                    .filter(L::Slot.eq(*slot))
                    .filter(L::Holder.eq(holder.as_str()))
                    .filter(L::SnapshotId.eq(""))
                    .exec(tx)
                    .await?
                    .rows_affected;
                if completed != 1 {
                    return Err(ApiError::Conflict {
                        resource: format!("scheduled snapshot slot {slot}"),
                    });
                }
            }
            audit::record(tx, SERVICE, caller, &name, &request_id).await?;
            Ok((name.clone(), new.snapshot.clone()))
        })
        .await?;
        match outcome {
            Outcome::Created(snapshot) => Ok(snapshot),
            Outcome::Replayed(resource) => {
                let id = resource.trim_start_matches("postureSnapshots/");
                self.snapshot(id)
                    .await?
                    .ok_or_else(|| ApiError::not_found(&resource))
            }
        }
    }

    /// The snapshot `id`.
    pub async fn snapshot(&self, id: &str) -> ApiResult<Option<Snapshot>> {
        Ok(Snapshots::find_by_id(id.to_string()).one(&self.db).await?)
    }

    /// The latest snapshot taken at or before `at`.
    pub async fn snapshot_at(&self, at: i64) -> ApiResult<Option<Snapshot>> {
        Ok(Snapshots::find()
            .filter(S::TakeTime.lte(at))
            .order_by_desc(S::TakeTime)
            .order_by_desc(S::Id)
            .one(&self.db)
            .await?)
    }

    /// A page of snapshots taken in `[start, end]`, newest first, after `after` (the
    /// take_time and id of the last one of the previous page).
    pub async fn snapshots(
        &self,
        (start, end): (Option<i64>, Option<i64>),
        after: Option<(i64, String)>,
        limit: u64,
    ) -> ApiResult<Vec<Snapshot>> {
        let mut select = Snapshots::find();
        if let Some(start) = start {
            select = select.filter(S::TakeTime.gte(start));
        }
        if let Some(end) = end {
            select = select.filter(S::TakeTime.lte(end));
        }
        if let Some((time, id)) = after {
            select = select.filter(
                Condition::any()
                    .add(S::TakeTime.lt(time))
                    .add(Condition::all().add(S::TakeTime.eq(time)).add(S::Id.lt(id))),
            );
        }
        Ok(select
            .order_by_desc(S::TakeTime)
            .order_by_desc(S::Id)
            .limit(limit)
            .all(&self.db)
            .await?)
    }

    /// Every node of snapshot `id`, in tree order.
    pub async fn snapshot_nodes(&self, id: &str) -> ApiResult<Vec<Node>> {
        Ok(Nodes::find()
            .filter(N::SnapshotId.eq(id))
            .order_by_asc(N::Position)
            .all(&self.db)
            .await?)
    }

    /// The snapshots taken in `[start, end]`, oldest first, at most `limit`, each with its
    /// node of `scope` (none when that scope was not in the tree then). One read transaction,
    /// so both lists agree.
    pub async fn trend(
        &self,
        scope: &str,
        (start, end): (i64, i64),
        limit: u64,
    ) -> ApiResult<Vec<(Snapshot, Option<Node>)>> {
        let tx = self.db.begin().await?;
        let snapshots = Snapshots::find()
            .filter(S::TakeTime.gte(start))
            .filter(S::TakeTime.lte(end))
            .order_by_asc(S::TakeTime)
            .order_by_asc(S::Id)
            .limit(limit)
            .all(&tx)
            .await?;
        let ids: Vec<String> = snapshots.iter().map(|s| s.id.clone()).collect();
        let mut nodes: std::collections::HashMap<String, Node> = Nodes::find()
            .filter(N::Scope.eq(scope))
            .filter(N::SnapshotId.is_in(ids))
            .all(&tx)
            .await?
            .into_iter()
            .map(|n| (n.snapshot_id.clone(), n))
            .collect();
        tx.commit().await?;
        Ok(snapshots
            .into_iter()
            .map(|s| {
                let node = nodes.remove(&s.id);
                (s, node)
            })
            .collect())
    }
}
