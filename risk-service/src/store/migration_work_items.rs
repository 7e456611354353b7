//! Migration 0016: the indexes of the work-item lookup (`ListActionItems` as the gateway's
//! `ListWorkItems` asks it): "changed since", in `update_time` then name order, and the tracker
//! sync's lookup by external key.

use sea_orm_migration::prelude::*;

use super::migration::{a, index};

pub struct WorkItemIndexes;

impl MigrationName for WorkItemIndexes {
    fn name(&self) -> &str {
        "m0016_work_item_indexes"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for WorkItemIndexes {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(index(
            "action_items_by_update",
            a("action_items"),
            &["update_time", "risk_id", "id"],
        ))
        .await?;
        m.create_index(index(
            "action_items_by_tracker",
            a("action_items"),
            &["tracker_system", "tracker_key"],
        ))
        .await
    }
}
