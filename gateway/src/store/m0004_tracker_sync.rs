//! Migration 0004: the tracker sync — each routed work item's link to its tracker issue (with
//! what was last pushed, for echo suppression), the sync's cursors, and the webhook deliveries
//! received (deduplicated by delivery id, worked off after the answer).

use sea_orm_migration::prelude::*;

pub struct M0004TrackerSync;

impl MigrationName for M0004TrackerSync {
    fn name(&self) -> &str {
        "m0004_tracker_sync"
    }
}

fn text(name: &'static str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .string()
        .not_null()
        .to_owned()
}

fn long_text(name: &'static str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .text()
        .not_null()
        .to_owned()
}

fn big(name: &'static str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .big_integer()
        .not_null()
        .to_owned()
}

fn optional_big(name: &'static str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .big_integer()
        .null()
        .to_owned()
}

fn int(name: &'static str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .integer()
        .not_null()
        .to_owned()
}

fn flag(name: &'static str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .boolean()
        .not_null()
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for M0004TrackerSync {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Alias::new("tracker_links"))
                .col(text("item").primary_key())
                .col(int("kind"))
                .col(text("tracker"))
                .col(text("project"))
                .col(int("state"))
                .col(text("external_key"))
                .col(text("url"))
                .col(optional_big("creating_time"))
                // The item as last read: what Assurance owns of the issue, and its status.
                .col(text("title"))
                .col(long_text("body"))
                .col(optional_big("due_time"))
                .col(text("assignee"))
                .col(int("item_status"))
                .col(big("item_update_time"))
                // What was last pushed, and the item status both sides last agreed on.
                .col(text("pushed_hash"))
                .col(int("synced_status"))
                // The issue as last fetched.
                .col(text("remote_status"))
                .col(flag("remote_closed"))
                .col(big("remote_update_time"))
                .col(flag("unmapped_status"))
                // The link as last written to the item (its sync state and key).
                .col(int("written_state"))
                .col(text("written_key"))
                .col(int("attempts"))
                .col(big("next_attempt_time"))
                .col(long_text("last_error"))
                .col(optional_big("sync_time"))
                .col(big("create_time"))
                .col(big("update_time"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("tracker_links_due")
                .table(Alias::new("tracker_links"))
                .col(Alias::new("tracker"))
                .col(Alias::new("next_attempt_time"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("tracker_links_by_issue")
                .table(Alias::new("tracker_links"))
                .col(Alias::new("tracker"))
                .col(Alias::new("external_key"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Alias::new("tracker_cursors"))
                .col(text("name").primary_key())
                .col(big("time"))
                .col(text("item"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Alias::new("webhook_deliveries"))
                .col(text("tracker"))
                .col(text("delivery_id"))
                .col(text("issue_key"))
                .col(big("receive_time"))
                .col(flag("done"))
                .primary_key(
                    Index::create()
                        .col(Alias::new("tracker"))
                        .col(Alias::new("delivery_id")),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("webhook_deliveries_open")
                .table(Alias::new("webhook_deliveries"))
                .col(Alias::new("done"))
                .col(Alias::new("receive_time"))
                .to_owned(),
        )
        .await
    }
}
