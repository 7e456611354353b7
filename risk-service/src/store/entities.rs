//! sea-orm entities of risk-service. Times are microseconds since the epoch; enums are
//! stored as their `assurance.risk.v1` numbers; `version` backs the etag.

pub mod business_unit {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "business_units")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub display_name: String,
        pub description: String,
        pub owner: String,
        pub version: i64,
        pub create_time: i64,
        pub update_time: i64,
        /// When it was deleted; a deleted one is not found, but its id stays taken.
        pub delete_time: Option<i64>,
    }

    assurance_runtime::entity_without_relations!();
}

pub mod service {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "services")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub business_unit_id: String,
        pub display_name: String,
        pub description: String,
        pub owner: String,
        pub version: i64,
        pub create_time: i64,
        pub update_time: i64,
        /// When it was deleted; a deleted one is not found, but its id stays taken.
        pub delete_time: Option<i64>,
    }

    assurance_runtime::entity_without_relations!();
}

pub mod risk {
    use sea_orm::entity::prelude::*;

    /// A risk with its latest assessment folded in, so a read is one row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "risks")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub title: String,
        pub description: String,
        pub service_id: String,
        /// Denormalised from the service, kept in step when a service moves.
        pub business_unit_id: String,
        pub category: String,
        pub threat: i32,
        pub identification_source: i32,
        pub source_reference: String,
        pub owner: String,
        pub status: i32,
        /// JSON object of the labels (also indexed in `risk_labels`).
        pub labels: String,
        pub close_reason: String,
        pub close_time: Option<i64>,
        pub version: i64,
        pub create_time: i64,
        pub update_time: i64,
        // The latest assessment; `latest_assessment_id` is None until the first one.
        pub latest_assessment_id: Option<Uuid>,
        pub impact: i32,
        pub likelihood: i32,
        pub control_deficiency: i32,
        pub exposure: i32,
        pub score: i32,
        pub severity: i32,
        pub strategy: i32,
        pub risk_level: i32,
        pub methodology: i32,
        pub policy_id: String,
        pub assessment_rationale: String,
        pub assessor: String,
        pub assess_time: Option<i64>,
        /// When the next periodic review is due (from the last assessment or review).
        pub next_review_time: Option<i64>,
        /// Of the latest assessment: its control deficiency was derived.
        pub control_deficiency_derived: bool,
    }

    assurance_runtime::entity_without_relations!();
}

pub mod risk_label {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "risk_labels")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub risk_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub key: String,
        pub value: String,
    }

    assurance_runtime::entity_without_relations!();
}

pub mod assessment {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "assessments")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub risk_id: Uuid,
        pub impact: i32,
        pub likelihood: i32,
        pub control_deficiency: i32,
        pub exposure: i32,
        pub score: i32,
        pub severity: i32,
        pub strategy: i32,
        pub risk_level: i32,
        pub methodology: i32,
        pub policy_id: String,
        pub rationale: String,
        pub assessor: String,
        pub assess_time: i64,
        /// The control deficiency was derived from the linked controls (not given).
        pub control_deficiency_derived: bool,
    }

    assurance_runtime::entity_without_relations!();
}

pub mod scoring_policy {
    use sea_orm::entity::prelude::*;

    /// Every scoring policy that ever derived an assessment, by id.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "scoring_policies")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub methodology: String,
        pub definition: String,
        pub create_time: i64,
    }

    assurance_runtime::entity_without_relations!();
}

pub use assurance_runtime::idempotency::request_record;

pub mod risk_response {
    use sea_orm::entity::prelude::*;

    /// A response and its approval.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "risk_responses")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub risk_id: Uuid,
        pub decision: i32,
        pub strategy: i32,
        pub strategy_override: i32,
        pub override_justification: String,
        pub rationale: String,
        pub acceptance_expire_time: Option<i64>,
        /// `ApprovalState` number.
        pub state: i32,
        pub severity: i32,
        pub required_role: String,
        pub proposer: String,
        pub decided_by: String,
        pub decision_comment: String,
        pub expired: bool,
        pub create_time: i64,
        pub decide_time: Option<i64>,
    }

    assurance_runtime::entity_without_relations!();
}

pub mod decision {
    use sea_orm::entity::prelude::*;

    /// One entry of the append-only decision log.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "decisions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub risk_id: Uuid,
        pub kind: i32,
        pub actor: String,
        pub summary: String,
        pub response_id: Option<Uuid>,
        pub time: i64,
    }

    assurance_runtime::entity_without_relations!();
}

pub mod action_plan {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "action_plans")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub risk_id: Uuid,
        pub title: String,
        pub owner: String,
        pub create_time: i64,
        pub version: i64,
        pub update_time: i64,
    }

    assurance_runtime::entity_without_relations!();
}

pub mod action_item {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "action_items")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub risk_id: Uuid,
        /// Denormalised from the risk for list filters.
        pub service_id: String,
        pub business_unit_id: String,
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
        pub version: i64,
        pub create_time: i64,
        pub update_time: i64,
    }

    assurance_runtime::entity_without_relations!();
}

pub mod exception {
    use sea_orm::entity::prelude::*;

    /// A security or compliance exception; its services are in `exception_services`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "exceptions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub title: String,
        pub scope: String,
        /// The linked risk, whose decision log records the exception's decisions.
        pub risk_id: Option<Uuid>,
        pub justification: String,
        pub compensating_controls: String,
        pub requester: String,
        pub approver: String,
        /// `ExceptionStatus` number.
        pub status: i32,
        pub expire_time: i64,
        pub approve_time: Option<i64>,
        pub revoke_time: Option<i64>,
        pub revoke_reason: String,
        pub decision_comment: String,
        /// When the expiry job moved it to EXPIRED.
        pub expiry_time: Option<i64>,
        pub version: i64,
        pub create_time: i64,
        pub update_time: i64,
    }

    assurance_runtime::entity_without_relations!();
}

pub mod exception_service {
    use sea_orm::entity::prelude::*;

    /// One service an exception exempts.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "exception_services")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub exception_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub service_id: String,
    }

    assurance_runtime::entity_without_relations!();
}

// ---- controls framework (store/controls.rs) ----

pub mod control {
    use sea_orm::entity::prelude::*;

    /// A control of the catalogue; `id` is its slug.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "controls")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub title: String,
        pub description: String,
        pub owner: String,
        /// `ControlEffectiveness` numbers.
        pub design_effectiveness: i32,
        pub operating_effectiveness: i32,
        pub last_test_time: Option<i64>,
        /// JSON array of `{framework, section}` (also indexed in `control_requirements`).
        pub requirements: String,
        pub version: i64,
        pub create_time: i64,
        pub update_time: i64,
    }

    assurance_runtime::entity_without_relations!();
}

pub mod control_requirement {
    use sea_orm::entity::prelude::*;

    /// One requirement of a control, for the `framework` filter.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "control_requirements")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub control_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub framework: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub section: String,
    }

    assurance_runtime::entity_without_relations!();
}

pub mod risk_control {
    use sea_orm::entity::prelude::*;

    /// A risk ↔ control link.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "risk_controls")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub risk_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub control_id: String,
        pub linked_by: String,
        pub create_time: i64,
    }

    assurance_runtime::entity_without_relations!();
}
