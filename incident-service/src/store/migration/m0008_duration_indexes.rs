//! Migration 0008: expression indexes of the metrics durations.

use sea_orm_migration::prelude::*;

/// The durations of the metrics, each `(end, start)`.
pub const DURATIONS: [(&str, &str); 5] = [
    ("detect_time", "occur_time"),
    ("declare_time", "detect_time"),
    ("contain_time", "declare_time"),
    ("recover_time", "declare_time"),
    ("close_time", "declare_time"),
];

pub struct DurationIndexes;

impl MigrationName for DurationIndexes {
    fn name(&self) -> &str {
        "m0008_duration_indexes"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for DurationIndexes {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // Expression indexes (same SQL on SQLite and PostgreSQL): a percentile walks the index
        // to its rank instead of sorting every duration.
        for (end, start) in DURATIONS {
            m.get_connection()
                .execute_unprepared(&format!(
                    "CREATE INDEX incidents_{end}_after_{start} ON incidents (({end} - {start}))"
                ))
                .await?;
        }
        Ok(())
    }
}
