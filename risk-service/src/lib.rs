//! Assurance risk-service: the org registry (business units, services), the risk register
//! and its assessments with configurable scoring, over gRPC `assurance.risk.v1`.
//!
//! `RiskServer` is what both the `risk-service` binary and `gateway --embedded` host.

pub mod api;
pub mod config;
pub mod controls_import;
pub mod domain;
pub mod store;

use std::sync::Arc;

use assurance_proto::{
    risk::v1::{
        audit_service_server::AuditServiceServer, control_service_server::ControlServiceServer,
        exception_service_server::ExceptionServiceServer,
        organization_service_server::OrganizationServiceServer,
        outbox_service_server::OutboxServiceServer, review_service_server::ReviewServiceServer,
        risk_service_server::RiskServiceServer,
        risk_summary_service_server::RiskSummaryServiceServer,
    },
    service_names,
};
use assurance_runtime::{
    audit::AuditApi, auth::Caller, outbox::OutboxApi, serve::ReadyCheck, time::Clock,
};
use tonic::service::Routes;

use crate::{config::Settings, domain::scoring::ScoringPolicy, store::Store};

/// The gRPC services risk-service serves, for health and routing.
pub const SERVICE_NAMES: &[&str] = &[
    service_names::RISK,
    service_names::ORGANIZATION,
    service_names::RISK_AUDIT,
    service_names::CONTROL,
    service_names::EXCEPTION,
    service_names::REVIEW,
    service_names::RISK_SUMMARY,
    service_names::RISK_OUTBOX,
];

/// The risk services over an open, migrated store.
#[derive(Clone)]
pub struct RiskServer {
    store: Store,
    policy: Arc<ScoringPolicy>,
    clock: Clock,
}

impl RiskServer {
    /// Opens the database (migrating it) and records the scoring policy.
    pub async fn open(settings: &Settings) -> Result<Self, sea_orm::DbErr> {
        let store = Store::open(&settings.database_url, &settings.store).await?;
        store.register_policy(&settings.policy).await?;
        spawn_expiry(&store, settings.clock.clone(), settings.expiry_interval);
        Ok(RiskServer {
            store,
            policy: Arc::new(settings.policy.clone()),
            clock: settings.clock.clone(),
        })
    }

    /// Adds the risk services to `routes`.
    pub fn add_to(&self, routes: Routes, max_message_bytes: usize) -> Routes {
        let m = max_message_bytes;
        routes
            .add_service(RiskServiceServer::new(self.risk_api()).max_decoding_message_size(m))
            .add_service(
                OrganizationServiceServer::new(api::OrgApi::new(self.store.clone()))
                    .max_decoding_message_size(m),
            )
            .add_service(
                ExceptionServiceServer::new(api::exceptions::ExceptionApi::new(
                    self.store.clone(),
                    self.clock.clone(),
                ))
                .max_decoding_message_size(m),
            )
            .add_service(
                ReviewServiceServer::new(api::ReviewApi::new(
                    self.store.clone(),
                    self.policy.clone(),
                    self.clock.clone(),
                ))
                .max_decoding_message_size(m),
            )
            .add_service(
                ControlServiceServer::new(api::controls::ControlApi::new(
                    self.store.clone(),
                    self.clock.clone(),
                ))
                .max_decoding_message_size(m),
            )
            .add_service(
                RiskSummaryServiceServer::new(self.summary_api()).max_decoding_message_size(m),
            )
            .add_service(
                AuditServiceServer::new(AuditApi::new(
                    self.store.connection().clone(),
                    store::SERVICE,
                ))
                .max_decoding_message_size(m),
            )
            .add_service(
                OutboxServiceServer::new(OutboxApi::new(
                    self.store.connection().clone(),
                    store::SERVICE,
                ))
                .max_decoding_message_size(m),
            )
    }

    /// The risk API, for in-process callers (`gateway --embedded`: the incident relay, and
    /// `ListWorkItems` listing action items), which call its trait methods with a [`Caller`]
    /// in the request's extensions.
    pub fn risk_api(&self) -> api::RiskApi {
        api::RiskApi::new(self.store.clone(), self.policy.clone(), self.clock.clone())
    }

    /// The org registry API, for the gateway's in-process calls.
    pub fn org_api(&self) -> api::OrgApi {
        api::OrgApi::new(self.store.clone())
    }

    /// The `SummarizeRisks` handler, for in-process callers (`gateway --embedded`), which call
    /// its trait method with a [`Caller`] in the request's extensions.
    pub fn summary_api(&self) -> api::summary::SummaryApi {
        api::summary::SummaryApi::new(self.store.clone(), self.clock.clone())
    }

    /// The store, for tools that seed or inspect it (benchmarks).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Ready when the database answers.
    pub fn ready_check(&self) -> ReadyCheck {
        assurance_runtime::db::ready_check(self.store.connection().clone())
    }
}

/// Opens the store and serves risk-service on the configured addresses (port 0 picks a free
/// one) until `shutdown`: [`bind`], then [`serve`].
pub async fn start(
    config: &config::Config,
    shutdown: assurance_runtime::serve::Shutdown,
) -> Result<assurance_runtime::serve::Running, String> {
    let starting = bind(config, shutdown).await?;
    serve(starting, config).await
}

/// Binds the configured addresses and answers the probes at once (`/readyz` 503 until
/// [`serve`]).
pub async fn bind(
    config: &config::Config,
    shutdown: assurance_runtime::serve::Shutdown,
) -> Result<assurance_runtime::serve::Starting, String> {
    let security = config.security.settings().build()?;
    assurance_runtime::serve::Starting::bind(
        config.listen,
        config.http_listen,
        security,
        config.limits.limit_settings(),
        shutdown,
    )
    .await
}

/// Opens (and migrates) the store, then serves risk-service on `starting`'s listeners; a
/// failure stops the probes and is returned.
pub async fn serve(
    starting: assurance_runtime::serve::Starting,
    config: &config::Config,
) -> Result<assurance_runtime::serve::Running, String> {
    let settings = match config.settings() {
        Ok(settings) => settings,
        Err(e) => return Err(starting.fail(e).await),
    };
    tracing::info!(grpc = %starting.grpc_addr(), http = %starting.http_addr(), %settings, "starting risk-service");
    let opened = starting.step(async {
        RiskServer::open(&settings)
            .await
            .map_err(|e| format!("database: {e}"))
    });
    let server = match opened.await {
        Ok(server) => server,
        Err(e) => return Err(starting.fail(e).await),
    };
    let retention = config.security.settings().request_retention();
    let db = server.store().connection().clone();
    assurance_runtime::idempotency::spawn_cleanup(
        db.clone(),
        retention,
        starting.shutdown().clone(),
    );
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

/// Sweeps for expired acceptances and exceptions every `interval` while the store is open, each
/// as the service principal of its job (another replica sweeping too is harmless: each expiry is
/// applied once).
fn spawn_expiry(store: &Store, clock: Clock, interval: std::time::Duration) {
    let (alive, store) = store.for_job();
    tokio::spawn(async move {
        let acceptances = Caller::system("risk-service", "ExpireAcceptances");
        let exceptions = Caller::system("risk-service", "ExpireExceptions");
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if alive.strong_count() == 0 {
                return;
            }
            let now = clock.now_micros();
            match store.expire_acceptances(now, &acceptances).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(expired = n, "acceptances expired; risks back to ASSESSED"),
                Err(e) => {
                    tracing::warn!(error = %e, "acceptance expiry sweep failed; retrying next interval")
                }
            }
            match store.expire_exceptions(now, &exceptions).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(expired = n, "exceptions expired"),
                Err(e) => {
                    tracing::warn!(error = %e, "exception expiry sweep failed; retrying next interval")
                }
            }
        }
    });
}
