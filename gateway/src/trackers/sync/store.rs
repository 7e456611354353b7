//! The sync's state in the gateway's store: one link per routed work item, the cursors of the
//! outbound scan and the reconciliation polls, and the webhook deliveries received. Every
//! decision the sync takes is made from these rows, so a restart (or a `kill -9`) resumes where
//! the last committed step left off.

use assurance_runtime::{ApiResult, error::is_unique_violation};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseConnection, EntityTrait, IntoActiveModel,
    Iterable, QueryFilter, QueryOrder, QuerySelect, sea_query::OnConflict,
};

/// Where a link stands (`TrackerLinkState` numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    Pending = 1,
    Creating = 2,
    Synced = 3,
    Failed = 4,
    Broken = 5,
}

impl LinkState {
    /// The state's name as a metrics label.
    pub fn label(self) -> &'static str {
        match self {
            LinkState::Pending => "pending",
            LinkState::Creating => "creating",
            LinkState::Synced => "synced",
            LinkState::Failed => "failed",
            LinkState::Broken => "broken",
        }
    }

    pub fn of(n: i32) -> LinkState {
        match n {
            2 => LinkState::Creating,
            3 => LinkState::Synced,
            4 => LinkState::Failed,
            5 => LinkState::Broken,
            _ => LinkState::Pending,
        }
    }

    pub const ALL: [LinkState; 5] = [
        LinkState::Pending,
        LinkState::Creating,
        LinkState::Synced,
        LinkState::Failed,
        LinkState::Broken,
    ];
}

/// A `next_attempt_time` that never comes: nothing to do until the item or the issue changes.
pub const NEVER: i64 = i64::MAX;

pub mod link {
    use sea_orm::entity::prelude::*;

    /// One routed work item and its tracker issue (see the migration for the columns' roles).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "tracker_links")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub item: String,
        pub kind: i32,
        pub tracker: String,
        pub project: String,
        pub state: i32,
        pub external_key: String,
        pub url: String,
        pub creating_time: Option<i64>,
        pub title: String,
        pub body: String,
        pub due_time: Option<i64>,
        pub assignee: String,
        pub item_status: i32,
        pub item_update_time: i64,
        pub pushed_hash: String,
        pub synced_status: i32,
        pub remote_status: String,
        pub remote_closed: bool,
        pub remote_update_time: i64,
        pub unmapped_status: bool,
        pub written_state: i32,
        pub written_key: String,
        pub attempts: i32,
        pub next_attempt_time: i64,
        pub last_error: String,
        pub sync_time: Option<i64>,
        pub create_time: i64,
        pub update_time: i64,
    }

    assurance_runtime::entity_without_relations!();
}

pub mod cursor {
    use sea_orm::entity::prelude::*;

    /// How far a scan or a poll has read: a time, and the last item name at that time.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "tracker_cursors")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        pub time: i64,
        pub item: String,
    }

    assurance_runtime::entity_without_relations!();
}

pub mod delivery {
    use sea_orm::entity::prelude::*;

    /// A webhook delivery received: the issue it hints at, and whether it was worked off.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "webhook_deliveries")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tracker: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub delivery_id: String,
        pub issue_key: String,
        pub receive_time: i64,
        pub done: bool,
    }

    assurance_runtime::entity_without_relations!();
}

pub use link::Model as Link;
use link::{Column as L, Entity as Links};

/// The sync's tables.
#[derive(Clone)]
pub struct SyncStore {
    db: DatabaseConnection,
}

impl SyncStore {
    pub fn new(db: DatabaseConnection) -> Self {
        SyncStore { db }
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    pub async fn link(&self, item: &str) -> ApiResult<Option<Link>> {
        Ok(Links::find_by_id(item.to_string()).one(&self.db).await?)
    }

    /// The link of the issue `key` of `tracker`.
    pub async fn link_of_issue(&self, tracker: &str, key: &str) -> ApiResult<Option<Link>> {
        Ok(Links::find()
            .filter(L::Tracker.eq(tracker))
            .filter(L::ExternalKey.eq(key))
            .one(&self.db)
            .await?)
    }

    /// Writes `link` whole (insert or replace); committed when this returns.
    pub async fn save(&self, link: &Link) -> ApiResult<()> {
        let active = link.clone().into_active_model().reset_all();
        Links::insert(active)
            .on_conflict(
                OnConflict::column(L::Item)
                    .update_columns(L::iter().filter(|c| !matches!(c, L::Item)))
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
        Ok(())
    }

    /// Up to `limit` links of `tracker` due by `now`, the longest waiting first.
    pub async fn due(&self, tracker: &str, now: i64, limit: u64) -> ApiResult<Vec<Link>> {
        Ok(Links::find()
            .filter(L::Tracker.eq(tracker))
            .filter(L::NextAttemptTime.lte(now))
            .order_by_asc(L::NextAttemptTime)
            .limit(limit)
            .all(&self.db)
            .await?)
    }

    /// The next time a link of `tracker` is due, if any.
    pub async fn next_due(&self, tracker: &str) -> ApiResult<Option<i64>> {
        Ok(Links::find()
            .select_only()
            .column_as(L::NextAttemptTime.min(), "next")
            .filter(L::Tracker.eq(tracker))
            .filter(L::NextAttemptTime.lt(NEVER))
            .into_tuple::<Option<i64>>()
            .one(&self.db)
            .await?
            .flatten())
    }

    /// The oldest `next_attempt_time` of `tracker`'s links due by `now`: how long the sync lags.
    pub async fn oldest_due(&self, tracker: &str, now: i64) -> ApiResult<Option<i64>> {
        Ok(Links::find()
            .select_only()
            .column_as(L::NextAttemptTime.min(), "oldest")
            .filter(L::Tracker.eq(tracker))
            .filter(L::NextAttemptTime.lte(now))
            .into_tuple::<Option<i64>>()
            .one(&self.db)
            .await?
            .flatten())
    }

    /// Links per state of `tracker`.
    pub async fn counts(&self, tracker: &str) -> ApiResult<Vec<(i32, i64)>> {
        Ok(Links::find()
            .select_only()
            .column(L::State)
            .column_as(L::Item.count(), "n")
            .filter(L::Tracker.eq(tracker))
            .group_by(L::State)
            .into_tuple::<(i32, i64)>()
            .all(&self.db)
            .await?)
    }

    /// The remote statuses of `tracker`'s links that the mapping does not map.
    pub async fn unmapped(&self, tracker: &str) -> ApiResult<Vec<String>> {
        Ok(Links::find()
            .select_only()
            .column(L::RemoteStatus)
            .distinct()
            .filter(L::Tracker.eq(tracker))
            .filter(L::UnmappedStatus.eq(true))
            .order_by_asc(L::RemoteStatus)
            .into_tuple::<String>()
            .all(&self.db)
            .await?)
    }

    /// The projects `tracker` has links in.
    pub async fn projects(&self, tracker: &str) -> ApiResult<Vec<String>> {
        Ok(Links::find()
            .select_only()
            .column(L::Project)
            .distinct()
            .filter(L::Tracker.eq(tracker))
            .into_tuple::<String>()
            .all(&self.db)
            .await?)
    }

    /// A page of links matching `condition`, in item order after `after`.
    pub async fn page(
        &self,
        condition: Condition,
        after: Option<&str>,
        limit: u64,
    ) -> ApiResult<Vec<Link>> {
        let mut select = Links::find().filter(condition);
        if let Some(after) = after {
            select = select.filter(L::Item.gt(after));
        }
        Ok(select
            .order_by_asc(L::Item)
            .limit(limit)
            .all(&self.db)
            .await?)
    }

    /// Makes every FAILED link of `tracker` due at `now` (a restart retries refusals once: the
    /// configuration may have changed).
    pub async fn retry_failed(&self, tracker: &str, now: i64) -> ApiResult<()> {
        Links::update_many()
            .col_expr(L::NextAttemptTime, now.into())
            .filter(L::Tracker.eq(tracker))
            .filter(L::State.eq(LinkState::Failed as i32))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// The cursor `name`: (time, item), `None` before the first read.
    pub async fn cursor(&self, name: &str) -> ApiResult<Option<(i64, String)>> {
        Ok(cursor::Entity::find_by_id(name.to_string())
            .one(&self.db)
            .await?
            .map(|c| (c.time, c.item)))
    }

    pub async fn set_cursor(&self, name: &str, time: i64, item: &str) -> ApiResult<()> {
        let row = cursor::ActiveModel {
            name: sea_orm::Set(name.to_string()),
            time: sea_orm::Set(time),
            item: sea_orm::Set(item.to_string()),
        };
        cursor::Entity::insert(row)
            .on_conflict(
                OnConflict::column(cursor::Column::Name)
                    .update_columns([cursor::Column::Time, cursor::Column::Item])
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
        Ok(())
    }

    /// Records a delivery; false when `delivery_id` was received before (a replay).
    pub async fn receive(
        &self,
        tracker: &str,
        delivery_id: &str,
        issue_key: &str,
        now: i64,
    ) -> ApiResult<bool> {
        let row = delivery::ActiveModel {
            tracker: sea_orm::Set(tracker.to_string()),
            delivery_id: sea_orm::Set(delivery_id.to_string()),
            issue_key: sea_orm::Set(issue_key.to_string()),
            receive_time: sea_orm::Set(now),
            done: sea_orm::Set(issue_key.is_empty()),
        };
        match delivery::Entity::insert(row)
            .exec_without_returning(&self.db)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Up to `limit` deliveries of `tracker` not worked off yet, oldest first.
    pub async fn open_deliveries(
        &self,
        tracker: &str,
        limit: u64,
    ) -> ApiResult<Vec<delivery::Model>> {
        Ok(delivery::Entity::find()
            .filter(delivery::Column::Done.eq(false))
            .filter(delivery::Column::Tracker.eq(tracker))
            .order_by_asc(delivery::Column::ReceiveTime)
            .limit(limit)
            .all(&self.db)
            .await?)
    }

    pub async fn delivery_done(&self, tracker: &str, delivery_id: &str) -> ApiResult<()> {
        delivery::Entity::update_many()
            .col_expr(delivery::Column::Done, true.into())
            .filter(delivery::Column::Tracker.eq(tracker))
            .filter(delivery::Column::DeliveryId.eq(delivery_id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Forgets the deliveries worked off before `before` (GitHub redelivers only by hand, and
    /// within days).
    pub async fn forget_deliveries(&self, before: i64) -> ApiResult<()> {
        delivery::Entity::delete_many()
            .filter(delivery::Column::Done.eq(true))
            .filter(delivery::Column::ReceiveTime.lt(before))
            .exec(&self.db)
            .await?;
        Ok(())
    }
}
