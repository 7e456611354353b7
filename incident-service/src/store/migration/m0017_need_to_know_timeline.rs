//! Migration 0017: need-to-know timeline summaries. Summaries written before it quoted
//! restricted material to every reader of an incident: a TLP:RED or TLP:AMBER+STRICT
//! indicator's value ("indicator added: ip 198.51.100.77"), and evidence descriptions, hashes
//! and custody purposes. They are rewritten in the form new events take (see
//! `store::indicators::indicator_summary` and `store::evidence`); the records themselves keep
//! every detail for those who may see them.

use sea_orm_migration::prelude::*;

pub struct NeedToKnowTimeline;

impl MigrationName for NeedToKnowTimeline {
    fn name(&self) -> &str {
        "m0017_need_to_know_timeline"
    }
}

/// The timeline kind numbers (`domain::timeline::TimelineKind`) and the TLP numbers
/// (`domain::indicator::Tlp`) as they were stored when this migration was written.
const KIND_NAME: &str = "CASE i.kind WHEN 1 THEN 'ip' WHEN 2 THEN 'domain' WHEN 3 THEN 'url' \
     WHEN 4 THEN 'file_hash' WHEN 5 THEN 'email' WHEN 6 THEN 'file_name' ELSE 'other' END";

#[async_trait::async_trait]
impl MigrationTrait for NeedToKnowTimeline {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        // Indicators added (kind 7) with TLP:AMBER+STRICT (4) or TLP:RED (5).
        let indicator = format!(
            "FROM indicators i WHERE i.incident_id = timeline_events.incident_id \
               AND i.tlp IN (4, 5) \
               AND timeline_events.summary = 'indicator added: ' || {KIND_NAME} || ' ' || i.value"
        );
        db.execute_unprepared(&format!(
            "UPDATE timeline_events SET summary = (\
               SELECT 'indicator added: ' || {KIND_NAME} || \
                 CASE i.tlp WHEN 5 THEN ' (TLP:RED, value withheld)' \
                   ELSE ' (TLP:AMBER+STRICT, value withheld)' END \
               {indicator} LIMIT 1) \
             WHERE kind = 7 AND EXISTS (SELECT 1 {indicator})"
        ))
        .await?;
        // Evidence collected (kind 9).
        let evidence = "FROM evidence e WHERE e.incident_id = timeline_events.incident_id \
               AND timeline_events.summary = \
                 'evidence collected by ' || e.collector || ': ' || e.description || \
                 ' (' || e.hash || ')'";
        db.execute_unprepared(&format!(
            "UPDATE timeline_events SET summary = (\
               SELECT 'evidence collected by ' || e.collector || \
                 ' (details in the evidence record)' {evidence} LIMIT 1) \
             WHERE kind = 9 AND EXISTS (SELECT 1 {evidence})"
        ))
        .await?;
        // Custody transfers (kind 9).
        let custody = "FROM custody_entries c JOIN evidence e ON e.id = c.evidence_id \
             WHERE c.incident_id = timeline_events.incident_id \
               AND timeline_events.summary = 'custody of ' || e.description || ': ' || \
                 c.from_custodian || ' → ' || c.to_custodian || ': ' || c.purpose";
        db.execute_unprepared(&format!(
            "UPDATE timeline_events SET summary = (\
               SELECT 'custody of evidence transferred: ' || c.from_custodian || ' → ' || \
                 c.to_custodian {custody} LIMIT 1) \
             WHERE kind = 9 AND EXISTS (SELECT 1 {custody})"
        ))
        .await?;
        // Any other evidence event still in an old form (a description changed since).
        db.execute_unprepared(
            "UPDATE timeline_events SET summary = 'evidence recorded (details in the evidence records)' \
             WHERE kind = 9 \
               AND summary NOT LIKE '% (details in the evidence record)' \
               AND summary NOT LIKE 'custody of evidence transferred: %'",
        )
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, QueryOrder, Statement};
    use sea_orm_migration::MigratorTrait;
    use uuid::Uuid;

    use crate::store::{entities::timeline_event, migration::Migrator};

    async fn exec(db: &sea_orm::DatabaseConnection, sql: &str, values: Vec<sea_orm::Value>) {
        db.execute_raw(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            sql,
            values,
        ))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Old summaries of restricted indicators and of evidence lose the restricted values;
    /// others stay as they were.
    #[tokio::test]
    async fn restricted_values_leave_stored_summaries() {
        let db = assurance_runtime::db::connect("sqlite::memory:", 1)
            .await
            .expect("database");
        Migrator::up(&db, Some(16)).await.expect("up to 0016");
        // Rows of one incident without the incident itself (one connection: the pragma holds).
        exec(&db, "PRAGMA foreign_keys = OFF", vec![]).await;
        let incident = Uuid::now_v7();
        let evidence = Uuid::now_v7();
        for (id, tlp, value) in [
            (Uuid::now_v7(), 5, "198.51.100.77"),
            (Uuid::now_v7(), 4, "evil.example"),
            (Uuid::now_v7(), 3, "198.51.100.8"),
        ] {
            let kind = if tlp == 4 { 2 } else { 1 };
            exec(
                &db,
                "INSERT INTO indicators (id, incident_id, kind, value, tlp, description, \
                   create_time) VALUES (?, ?, ?, ?, ?, '', 0)",
                vec![
                    id.into(),
                    incident.into(),
                    kind.into(),
                    value.into(),
                    tlp.into(),
                ],
            )
            .await;
        }
        exec(
            &db,
            "INSERT INTO evidence (id, incident_id, description, hash, location, collector, \
               custodian, collect_time, custody_seq, create_time) \
             VALUES (?, ?, 'Disk image of LT-4411', 'abc', 'locker', 'ana', 'bo', 0, 1, 0)",
            vec![evidence.into(), incident.into()],
        )
        .await;
        exec(
            &db,
            "INSERT INTO custody_entries (evidence_id, seq, incident_id, from_custodian, \
               to_custodian, purpose, location, transfer_time) \
             VALUES (?, 1, ?, 'ana', 'bo', 'imaging for the case', '', 0)",
            vec![evidence.into(), incident.into()],
        )
        .await;
        let events = [
            (7, "indicator added: ip 198.51.100.77"),
            (7, "indicator added: domain evil.example"),
            (7, "indicator added: ip 198.51.100.8"),
            (9, "evidence collected by ana: Disk image of LT-4411 (abc)"),
            (
                9,
                "custody of Disk image of LT-4411: ana → bo: imaging for the case",
            ),
            (9, "custody of Old name: ana → bo: why"),
            (1, "declared"),
        ];
        for (seq, (kind, summary)) in events.iter().enumerate() {
            exec(
                &db,
                "INSERT INTO timeline_events (incident_id, seq, kind, actor, summary, phase, \
                   event_time) VALUES (?, ?, ?, 'x', ?, 1, 0)",
                vec![
                    incident.into(),
                    (seq as i64 + 1).into(),
                    (*kind).into(),
                    (*summary).into(),
                ],
            )
            .await;
        }
        Migrator::up(&db, None).await.expect("up");
        let summaries: Vec<String> = timeline_event::Entity::find()
            .order_by_asc(timeline_event::Column::Seq)
            .all(&db)
            .await
            .expect("timeline")
            .into_iter()
            .map(|e| e.summary)
            .collect();
        assert_eq!(
            summaries,
            [
                "indicator added: ip (TLP:RED, value withheld)",
                "indicator added: domain (TLP:AMBER+STRICT, value withheld)",
                "indicator added: ip 198.51.100.8",
                "evidence collected by ana (details in the evidence record)",
                "custody of evidence transferred: ana → bo",
                "evidence recorded (details in the evidence records)",
                "declared",
            ]
        );
    }
}
