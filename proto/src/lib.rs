//! The Assurance gRPC contracts, generated from `proto/assurance/**`.

/// Types both services share (`assurance.type.v1`).
pub mod r#type {
    pub mod v1 {
        // prost escapes the keyword in the file name too.
        tonic::include_proto!("assurance.r#type.v1");
    }
}

pub mod audit {
    pub mod v1 {
        tonic::include_proto!("assurance.audit.v1");
    }
}

pub mod outbox {
    pub mod v1 {
        tonic::include_proto!("assurance.outbox.v1");
    }
}

pub mod risk {
    pub mod v1 {
        tonic::include_proto!("assurance.risk.v1");
    }
}

pub mod incident {
    pub mod v1 {
        tonic::include_proto!("assurance.incident.v1");
    }
}

pub mod gateway {
    pub mod v1 {
        tonic::include_proto!("assurance.gateway.v1");
    }
}

/// Encoded `FileDescriptorSet` of every Assurance package, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("assurance_descriptor");

/// Fully-qualified names of the public gRPC services, for health and reflection.
pub mod service_names {
    pub const RISK: &str = "assurance.risk.v1.RiskService";
    pub const ORGANIZATION: &str = "assurance.risk.v1.OrganizationService";
    pub const INCIDENT: &str = "assurance.incident.v1.IncidentService";
    pub const RISK_AUDIT: &str = "assurance.risk.v1.AuditService";
    pub const RISK_OUTBOX: &str = "assurance.risk.v1.OutboxService";
    pub const CONTROL: &str = "assurance.risk.v1.ControlService";
    pub const EXCEPTION: &str = "assurance.risk.v1.ExceptionService";
    pub const REVIEW: &str = "assurance.risk.v1.ReviewService";
    pub const INCIDENT_AUDIT: &str = "assurance.incident.v1.AuditService";
    pub const INCIDENT_OUTBOX: &str = "assurance.incident.v1.OutboxService";
    pub const RISK_SUMMARY: &str = "assurance.risk.v1.RiskSummaryService";
    pub const INCIDENT_SUMMARY: &str = "assurance.incident.v1.IncidentSummaryService";
    pub const POSTURE: &str = "assurance.gateway.v1.PostureService";
    pub const GATEWAY_AUDIT: &str = "assurance.gateway.v1.AuditService";
    pub const REPORT: &str = "assurance.gateway.v1.ReportService";
    pub const WORK_ITEM: &str = "assurance.gateway.v1.WorkItemService";
    pub const TRACKER_SYNC: &str = "assurance.gateway.v1.TrackerSyncService";
}
