//! sea-orm entities of incident-service. Times are microseconds since the epoch; enums are
//! stored as their `assurance.incident.v1` numbers; `version` backs the etag.

pub use assurance_runtime::idempotency::request_record;

pub mod incident {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "incidents")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub title: String,
        pub summary: String,
        pub incident_type: String,
        pub classification: i32,
        pub severity: i32,
        pub severity_overridden: bool,
        pub functional_impact: i32,
        /// Comma-separated `InformationImpact` numbers, ascending.
        pub information_impacts: String,
        pub recoverability: i32,
        pub customer_data_affected: bool,
        /// Comma-separated service ids (also indexed in `incident_services`).
        pub affected_services: String,
        pub detection_source: String,
        pub phase: i32,
        pub occur_time: Option<i64>,
        pub detect_time: i64,
        pub declare_time: i64,
        pub contain_time: Option<i64>,
        pub eradicate_time: Option<i64>,
        pub recover_time: Option<i64>,
        pub post_incident_time: Option<i64>,
        pub close_time: Option<i64>,
        pub resolution: String,
        pub review_complete: bool,
        /// Sequence number of the last timeline event.
        pub timeline_seq: i64,
        pub version: i64,
        pub create_time: i64,
        pub update_time: i64,
    }

    assurance_runtime::entity_without_relations!();
}

pub mod incident_service {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "incident_services")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub incident_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub service_id: String,
    }

    assurance_runtime::entity_without_relations!();
}

pub mod timeline_event {
    use sea_orm::entity::prelude::*;

    /// Append-only: rows are inserted, never updated or deleted.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "timeline_events")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub incident_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub seq: i64,
        pub kind: i32,
        pub actor: String,
        pub summary: String,
        pub phase: i32,
        pub event_time: i64,
    }

    assurance_runtime::entity_without_relations!();
}

pub mod review {
    use sea_orm::entity::prelude::*;

    /// One post-incident review per incident; lists are stored as JSON.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "post_incident_reviews")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub incident_id: Uuid,
        pub root_cause: String,
        pub went_well: String,
        pub went_poorly: String,
        pub lessons_learned: String,
        pub participants: String,
        pub follow_ups: String,
        pub identified_risks: String,
        pub review_time: i64,
    }

    assurance_runtime::entity_without_relations!();
}

pub mod indicator {
    use sea_orm::entity::prelude::*;

    /// An indicator of an incident; `value` is normalised, so a sweep is an exact match.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "indicators")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub incident_id: Uuid,
        pub kind: i32,
        pub value: String,
        pub tlp: i32,
        pub description: String,
        pub create_time: i64,
    }

    assurance_runtime::entity_without_relations!();
}

pub mod role {
    use sea_orm::entity::prelude::*;

    /// The current holder of a role in an incident (history is in the timeline).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "incident_roles")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub incident_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub kind: i32,
        pub person: String,
        pub team: String,
        pub assign_time: i64,
    }

    assurance_runtime::entity_without_relations!();
}

pub mod evidence {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "evidence")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub incident_id: Uuid,
        pub description: String,
        pub hash: String,
        pub location: String,
        pub collector: String,
        pub custodian: String,
        pub collect_time: i64,
        /// Sequence of the last custody entry.
        pub custody_seq: i64,
        pub create_time: i64,
    }

    assurance_runtime::entity_without_relations!();
}

pub mod custody_entry {
    use sea_orm::entity::prelude::*;

    /// Append-only chain of custody.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "custody_entries")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub evidence_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub seq: i64,
        pub incident_id: Uuid,
        pub from_custodian: String,
        pub to_custodian: String,
        pub purpose: String,
        pub location: String,
        pub transfer_time: i64,
    }

    assurance_runtime::entity_without_relations!();
}

pub mod notification {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "notifications")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub incident_id: Uuid,
        pub audience: i32,
        pub subject: String,
        pub body: String,
        pub status: i32,
        pub author: String,
        pub approver: String,
        /// None when no deadline applies.
        pub deadline_time: Option<i64>,
        pub approve_time: Option<i64>,
        pub send_time: Option<i64>,
        pub create_time: i64,
        /// Bumped by every change; the etag.
        pub version: i64,
    }

    assurance_runtime::entity_without_relations!();
}

pub mod task {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "tasks")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub incident_id: Uuid,
        pub phase: i32,
        pub owner_team: i32,
        pub title: String,
        pub description: String,
        pub assignee: String,
        pub status: i32,
        pub from_template: bool,
        pub version: i64,
        pub create_time: i64,
        pub update_time: i64,
    }

    assurance_runtime::entity_without_relations!();
}

pub mod follow_up {
    use sea_orm::entity::prelude::*;

    /// A post-incident follow-up: tracked work with a tracker link (`tracker_*`, `sync_*`).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "follow_ups")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub incident_id: Uuid,
        pub title: String,
        pub description: String,
        pub owner: String,
        pub due_time: i64,
        pub status: i32,
        pub tracker_system: String,
        pub tracker_key: String,
        pub tracker_url: String,
        pub sync_state: i32,
        pub sync_time: Option<i64>,
        pub from_review: bool,
        pub version: i64,
        pub create_time: i64,
        pub update_time: i64,
    }

    assurance_runtime::entity_without_relations!();
}

pub mod risk_link {
    use sea_orm::entity::prelude::*;

    /// A link from an incident to a risk of the register; `position` keeps the order given.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "incident_risk_links")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub incident_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub risk_id: String,
        pub relation: i32,
        pub position: i32,
    }

    assurance_runtime::entity_without_relations!();
}
