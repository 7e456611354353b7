//! Assurance incident-service: security incidents through the NIST SP 800-61 life cycle
//! (`assurance.incident.v1`).
//!
//! Declaring, reading, listing and updating incidents with NIST SP 800-61 Rev.2 prioritisation
//! and a configurable severity rule; phase moves and closing per the phase machine; the
//! append-only timeline and its watch stream; response tasks seeded from the preparation's
//! templates; roles; indicators of compromise; evidence and its chain of custody; stakeholder
//! notifications and their deadline; the post-incident review and its outbox; metrics and
//! reports; the incident half of the ERM posture (`IncidentSummaryService`). `domain/` holds
//! the pure rules, `store/` the repository (one file per aggregate), `api/` the handlers (one
//! file per area, conversions in `api/convert.rs`). `IncidentServer` is what both the
//! `incident-service` binary and `gateway --embedded` host.

pub mod api;
pub mod config;
pub mod domain;
pub mod relay;
pub mod store;

use std::sync::Arc;

use assurance_proto::{
    incident::v1::{
        audit_service_server::AuditServiceServer, incident_service_server::IncidentServiceServer,
        incident_summary_service_server::IncidentSummaryServiceServer,
        outbox_service_server::OutboxServiceServer,
    },
    service_names,
};
use assurance_runtime::{
    audit::AuditApi,
    outbox::{
        OutboxApi,
        relay::{Relay, RelaySettings},
    },
    serve::{ReadyCheck, Running, Shutdown, Starting},
};
use tonic::service::Routes;

use crate::{
    config::Settings,
    domain::{preparation::Preparation, priority::SeverityRule},
    relay::{RiskReceiver, RiskRegister},
    store::Store,
};

/// The gRPC services incident-service serves.
pub const SERVICE_NAMES: &[&str] = &[
    service_names::INCIDENT,
    service_names::INCIDENT_AUDIT,
    service_names::INCIDENT_SUMMARY,
    service_names::INCIDENT_OUTBOX,
];

#[derive(Clone)]
pub struct IncidentServer {
    store: Store,
    rule: Arc<SeverityRule>,
    preparation: Arc<Preparation>,
    /// risk-service, when this server can reach it.
    risks: Option<Arc<dyn RiskRegister>>,
}

impl IncidentServer {
    /// Opens the database (migrating it).
    pub async fn open(settings: &Settings) -> Result<Self, sea_orm::DbErr> {
        Ok(IncidentServer {
            store: Store::open(&settings.database_url, settings.db_pool_size).await?,
            rule: Arc::new(settings.severity_rule.clone()),
            preparation: Arc::new(settings.preparation.clone()),
            risks: None,
        })
    }

    /// Reaches risk-service through `risks`: the relay delivers the events for it, and
    /// incidents' `affected_services` are checked against its org registry.
    pub fn with_risks(mut self, risks: Arc<dyn RiskRegister>) -> Self {
        self.risks = Some(risks);
        self
    }

    /// Starts the outbox relay (until `shutdown`) when risk-service is reachable; without it
    /// the events for risk-service stay queued.
    pub fn spawn_relay(&self, settings: RelaySettings, shutdown: Shutdown) {
        let Some(risks) = &self.risks else {
            tracing::warn!(
                "no risk-service: identified risks and realisations stay queued in the outbox"
            );
            return;
        };
        Relay::new(
            self.store.connection().clone(),
            store::SERVICE,
            RiskReceiver::new(self.store.clone(), risks.clone()),
            settings,
            self.store.change_notifier(),
        )
        .spawn(shutdown);
    }

    /// Its outbox, for a consumer hosted in this process (the embedded gateway's tracker
    /// sync): the database, and the notifier of committed changes.
    pub fn outbox(
        &self,
    ) -> (
        sea_orm::DatabaseConnection,
        std::sync::Arc<tokio::sync::Notify>,
    ) {
        (
            self.store.connection().clone(),
            self.store.change_notifier(),
        )
    }

    pub fn add_to(&self, routes: Routes, max_message_bytes: usize) -> Routes {
        let m = max_message_bytes;
        routes
            .add_service(
                IncidentServiceServer::new(self.incident_api()).max_decoding_message_size(m),
            )
            .add_service(
                AuditServiceServer::new(AuditApi::new(
                    self.store.connection().clone(),
                    store::SERVICE,
                ))
                .max_decoding_message_size(m),
            )
            .add_service(
                IncidentSummaryServiceServer::new(self.summary_api()).max_decoding_message_size(m),
            )
            .add_service(
                OutboxServiceServer::new(OutboxApi::new(
                    self.store.connection().clone(),
                    store::SERVICE,
                ))
                .max_decoding_message_size(m),
            )
    }

    /// The incident API, for the gateway's in-process calls (`ListWorkItems` lists
    /// follow-ups).
    pub fn incident_api(&self) -> api::IncidentApi {
        api::IncidentApi::new(
            self.store.clone(),
            self.rule.clone(),
            self.preparation.clone(),
            self.risks.clone(),
        )
    }

    /// The posture's incident half (`SummarizeIncidents`), for the gateway to call in-process.
    pub fn summary_api(&self) -> api::summary::SummaryApi {
        api::summary::SummaryApi::new(self.store.clone())
    }

    pub fn ready_check(&self) -> ReadyCheck {
        assurance_runtime::db::ready_check(self.store.connection().clone())
    }
}

/// Opens the store and serves incident-service on the configured addresses until `shutdown`:
/// [`bind`], then [`serve`].
pub async fn start(config: &config::Config, shutdown: Shutdown) -> Result<Running, String> {
    let starting = bind(config, shutdown).await?;
    serve(starting, config).await
}

/// Binds the configured addresses and answers the probes at once (`/readyz` 503 until
/// [`serve`]).
pub async fn bind(config: &config::Config, shutdown: Shutdown) -> Result<Starting, String> {
    let security = config.security.settings().build()?;
    Starting::bind(
        config.listen,
        config.http_listen,
        security,
        config.limits.limit_settings(),
        shutdown,
    )
    .await
}

/// Opens (and migrates) the store, starts the relay, then serves incident-service on
/// `starting`'s listeners; a failure stops the probes and is returned.
pub async fn serve(starting: Starting, config: &config::Config) -> Result<Running, String> {
    let (settings, risks) = match config
        .settings()
        .and_then(|s| Ok((s, config.remote_risks()?)))
    {
        Ok(found) => found,
        Err(e) => return Err(starting.fail(e).await),
    };
    tracing::info!(grpc = %starting.grpc_addr(), http = %starting.http_addr(), %settings, "starting incident-service");
    let opened = starting.step(async {
        IncidentServer::open(&settings)
            .await
            .map_err(|e| format!("database: {e}"))
    });
    let mut server = match opened.await {
        Ok(server) => server,
        Err(e) => return Err(starting.fail(e).await),
    };
    if let Some(risks) = risks {
        server = server.with_risks(risks);
    }
    let shutdown = starting.shutdown().clone();
    server.spawn_relay(config.relay.relay_settings(), shutdown.clone());
    let retention = config.security.settings().request_retention();
    let db = server.outbox().0;
    assurance_runtime::idempotency::spawn_cleanup(db.clone(), retention, shutdown);
    Ok(starting.serve(
        server.add_to(
            Routes::default(),
            config.limits.limit_settings().max_message_bytes,
        ),
        assurance_runtime::serve::Extras {
            limits: config.limits.limit_settings(),
            observe: assurance_runtime::observe::Sources::new()
                .database(store::SERVICE, db.clone())
                .outbox(store::SERVICE, db),
            ..Default::default()
        },
        SERVICE_NAMES,
        server.ready_check(),
    ))
}
