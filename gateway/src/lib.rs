//! The Assurance gateway: one authenticated entry point for the Assurance APIs.
//!
//! `--embedded` hosts risk-service and incident-service in this process (SQLite files in
//! `--data-dir`), for a laptop, a demo or a small team; otherwise the gateway forwards each API
//! to its service (`--risk-url`, `--incident-url`). Either way the same gRPC services, health
//! and reflection are served on the gateway's port, with the gateway's own: the ERM posture
//! (`posture/`) over its own store (`store/`) and that store's audit trail, and the lookup
//! across both kinds of work item (`work_items/`).

pub mod balance;
pub mod config;
mod forward;
pub mod posture;
mod relay;
pub mod reports;
pub mod store;
pub mod trackers;
pub mod work_items;

use std::sync::Arc;

use assurance_runtime::{
    auth::layer::AuthLayer,
    outbox::relay::Relay,
    serve::{self, Extras, ReadyCheck, Running, Shutdown, Starting},
};
use incident_service::IncidentServer;
use risk_service::RiskServer;
use tonic::service::Routes;

use assurance_proto::gateway::v1::{
    audit_service_server::AuditServiceServer, posture_service_server::PostureServiceServer,
    report_service_server::ReportServiceServer,
    tracker_sync_service_server::TrackerSyncServiceServer,
    work_item_service_server::WorkItemServiceServer,
};
use assurance_runtime::audit::AuditApi;

use crate::{
    config::Config,
    posture::{PostureApi, upstream::Upstreams},
    reports::ReportApi,
    store::Store,
    trackers::sync::{
        TrackerSync, TrackerSyncApi,
        wake::{self, ScanWake},
        webhook_routes,
    },
    work_items::WorkItemApi,
};
use balance::Balanced;

/// The APIs served on the gateway's port.
pub const SERVICE_NAMES: &[&str] = &[
    assurance_proto::service_names::RISK,
    assurance_proto::service_names::ORGANIZATION,
    assurance_proto::service_names::RISK_AUDIT,
    assurance_proto::service_names::CONTROL,
    assurance_proto::service_names::EXCEPTION,
    assurance_proto::service_names::REVIEW,
    assurance_proto::service_names::INCIDENT,
    assurance_proto::service_names::INCIDENT_AUDIT,
    assurance_proto::service_names::RISK_OUTBOX,
    assurance_proto::service_names::INCIDENT_OUTBOX,
    assurance_proto::service_names::RISK_SUMMARY,
    assurance_proto::service_names::INCIDENT_SUMMARY,
    assurance_proto::service_names::POSTURE,
    assurance_proto::service_names::GATEWAY_AUDIT,
    assurance_proto::service_names::REPORT,
    assurance_proto::service_names::WORK_ITEM,
    assurance_proto::service_names::TRACKER_SYNC,
];

/// Builds the routes, HTTP extras (webhooks, readiness notes) and readiness check of the
/// configured mode, with the gateway's own services over its store (`auth` is the server's auth
/// layer, which long streams check again), and starts the gateway's jobs, which stop on
/// `shutdown`.
pub async fn routes(
    config: &Config,
    auth: &AuthLayer,
    shutdown: &Shutdown,
) -> Result<(Routes, Extras, ReadyCheck), String> {
    let trackers = config.trackers()?;
    let store = Store::open(&config.database_url(), config.db_pool_size)
        .await
        .map_err(|e| format!("gateway database: {e}"))?;
    let Services {
        routes,
        upstreams,
        mut checks,
        outboxes,
        pools,
    } = service_routes(config, shutdown).await?;
    // Request records expire in the gateway's store and (embedded) the services' databases.
    let retention = config.security.settings().request_retention();
    for db in std::iter::once(store.connection()).chain(outboxes.iter().map(|o| &o.db)) {
        assurance_runtime::idempotency::spawn_cleanup(db.clone(), retention, shutdown.clone());
    }
    let sync = match trackers {
        Some(trackers) => {
            if !upstreams.has_own_credential() {
                return Err(
                    "--trackers-file needs --service-token-file in forwarding mode: \
                     the sync acts as the gateway, not as a caller"
                        .into(),
                );
            }
            let sync = TrackerSync::new(
                store.connection().clone(),
                upstreams.clone(),
                trackers,
                config.sync_settings(),
            )?;
            sync.spawn(shutdown);
            Some(sync)
        }
        None => None,
    };
    // Embedded: the services' work-item events are the sync's to take; they wake its scan
    // (without a sync there is nothing to wake, and the scan of a sync configured later reads
    // the items themselves, so nothing is lost).
    let scan_wake = sync.as_ref().map(|s| s.scan_wake()).unwrap_or_default();
    let mut observe = assurance_runtime::observe::Sources::new()
        .database(store::SERVICE, store.connection().clone());
    for outbox in &outboxes {
        observe = observe
            .database(outbox.service, outbox.db.clone())
            .outbox(outbox.service, outbox.db.clone());
    }
    for outbox in outboxes {
        Relay::new(
            outbox.db,
            outbox.service,
            ScanWake::new(outbox.kinds, scan_wake.clone()),
            config.relay.relay_settings(),
            outbox.wake,
        )
        .spawn(shutdown.clone());
    }
    let limits = config.limits.limit_settings();
    // Degraded but ready: a tracker that failed its check, an upstream endpoint ejected.
    let notes: Option<serve::ReadyNotes> = (sync.is_some() || !pools.is_empty()).then(|| {
        let sync = sync.clone();
        Arc::new(move || {
            let mut notes: Vec<String> = pools.iter().flat_map(Balanced::problems).collect();
            notes.extend(sync.iter().flat_map(|s| s.problems()));
            notes
        }) as serve::ReadyNotes
    });
    let extras = Extras {
        routes: sync.clone().map(webhook_routes).unwrap_or_default(),
        notes,
        limits,
        observe,
    };
    let settings = config.posture_settings();
    let top_n = settings.top_n;
    let posture = PostureApi::new(
        store.clone(),
        upstreams.clone(),
        settings,
        config.clock.clone(),
    )
    .with_auth(auth.clone());
    posture::history::spawn_snapshots(posture.clone(), config.snapshot_interval, shutdown.clone());
    let work_items = WorkItemApi::new(upstreams.clone());
    let reports = ReportApi::new(
        store.clone(),
        posture.clone(),
        upstreams,
        config.clock.clone(),
        top_n,
    );
    checks.push(assurance_runtime::db::ready_check(
        store.connection().clone(),
    ));
    let m = extras.limits.max_message_bytes;
    let routes = routes
        .add_service(PostureServiceServer::new(posture).max_decoding_message_size(m))
        .add_service(ReportServiceServer::new(reports).max_decoding_message_size(m))
        .add_service(WorkItemServiceServer::new(work_items).max_decoding_message_size(m))
        .add_service(
            TrackerSyncServiceServer::new(TrackerSyncApi::new(sync)).max_decoding_message_size(m),
        )
        .add_service(
            AuditServiceServer::new(AuditApi::new(store.connection().clone(), store::SERVICE))
                .max_decoding_message_size(m),
        );
    Ok((routes, extras, all_ready(checks)))
}

/// A hosted service's outbox, and the work-item events in it that the tracker sync takes.
struct Outbox {
    db: sea_orm::DatabaseConnection,
    service: &'static str,
    kinds: &'static [&'static str],
    wake: Arc<tokio::sync::Notify>,
}

/// The services' routes (hosted or forwarded), how the posture reaches them, their readiness
/// checks, (embedded) their outboxes and (forwarding) their balanced endpoints.
struct Services {
    routes: Routes,
    upstreams: Upstreams,
    checks: Vec<ReadyCheck>,
    outboxes: Vec<Outbox>,
    pools: Vec<Balanced>,
}

async fn service_routes(config: &Config, shutdown: &Shutdown) -> Result<Services, String> {
    if config.embedded {
        let risk_settings = config.risk_settings()?;
        let incident_settings = config.incident_settings()?;
        tracing::info!(data_dir = %config.data_dir.display(), risk = %risk_settings, incident = %incident_settings, "embedded mode");
        let risk = RiskServer::open(&risk_settings)
            .await
            .map_err(|e| format!("risk database: {e}"))?;
        let (risk_api, org_api) = (Arc::new(risk.risk_api()), Arc::new(risk.org_api()));
        let incident = IncidentServer::open(&incident_settings)
            .await
            .map_err(|e| format!("incident database: {e}"))?
            .with_risks(Arc::new(relay::LocalRisks {
                risks: risk_api.clone(),
                org: org_api.clone(),
            }));
        incident.spawn_relay(config.relay.relay_settings(), shutdown.clone());
        let m = config.limits.limit_settings().max_message_bytes;
        let routes = incident.add_to(risk.add_to(Routes::default(), m), m);
        let upstreams = Upstreams::Local {
            org: org_api,
            risks: Arc::new(risk.summary_api()),
            incidents: Arc::new(incident.summary_api()),
            actions: risk_api,
            follow_ups: Arc::new(incident.incident_api()),
        };
        let (incident_db, incident_wake) = incident.outbox();
        let outboxes = vec![
            Outbox {
                db: risk.store().connection().clone(),
                service: risk_service::store::SERVICE,
                kinds: wake::ACTION_ITEM_EVENTS,
                // risk-service has no change notifier: its relay polls.
                wake: Arc::new(tokio::sync::Notify::new()),
            },
            Outbox {
                db: incident_db,
                service: incident_service::store::SERVICE,
                kinds: wake::FOLLOW_UP_EVENTS,
                wake: incident_wake,
            },
        ];
        Ok(Services {
            routes,
            upstreams,
            checks: vec![risk.ready_check(), incident.ready_check()],
            outboxes,
            pools: Vec::new(),
        })
    } else {
        let redact = |urls: &[String]| {
            urls.iter()
                .map(|u| assurance_runtime::db::redact_url(u))
                .collect::<Vec<_>>()
                .join(",")
        };
        tracing::info!(risk_url = %redact(&config.risk_url), incident_url = %redact(&config.incident_url), "forwarding mode");
        let upstream_tls = config.upstream_tls();
        let mut router = axum::Router::new();
        let mut checks = Vec::new();
        let mut pools = Vec::new();
        for (name, urls, services) in [
            (
                "risk-service",
                &config.risk_url,
                risk_service::SERVICE_NAMES,
            ),
            (
                "incident-service",
                &config.incident_url,
                incident_service::SERVICE_NAMES,
            ),
        ] {
            let pool = Balanced::new(name, urls, &upstream_tls)?;
            pool.spawn_checker(shutdown.clone());
            router = router.merge(forward::routes(
                services,
                forward::Upstream::new(name, pool.channel()),
            ));
            checks.push(pool.ready_check());
            pools.push(pool);
        }
        let (Some(incident), Some(risk)) = (pools.pop(), pools.pop()) else {
            return Err("internal: no upstream channels".into());
        };
        let upstreams = Upstreams::Remote {
            risk: risk.channel(),
            incident: incident.channel(),
            token: config.service_token()?.map(Into::into),
        };
        Ok(Services {
            routes: Routes::from(router),
            upstreams,
            checks,
            outboxes: Vec::new(),
            pools: vec![risk, incident],
        })
    }
}

/// Ready when every check passes.
fn all_ready(checks: Vec<ReadyCheck>) -> ReadyCheck {
    Arc::new(move || {
        let pending: Vec<_> = checks.iter().map(|c| c()).collect();
        Box::pin(async move {
            for check in pending {
                check.await?;
            }
            Ok(())
        })
    })
}

/// Serves the gateway on the configured addresses (port 0 picks a free one) until `shutdown`:
/// [`bind`], then [`serve`].
pub async fn start(config: &Config, shutdown: Shutdown) -> Result<Running, String> {
    let starting = bind(config, shutdown).await?;
    serve(starting, config).await
}

/// Binds the configured addresses and answers the probes at once (`/readyz` 503 until
/// [`serve`]).
pub async fn bind(config: &Config, shutdown: Shutdown) -> Result<Starting, String> {
    let security = config.security_settings()?.build()?;
    Starting::bind(
        config.listen,
        config.http_listen,
        security,
        config.limits.limit_settings(),
        shutdown,
    )
    .await
}

/// Opens (and migrates) the stores, starts the jobs, then serves the gateway on `starting`'s
/// listeners; a failure stops the probes and is returned.
pub async fn serve(starting: Starting, config: &Config) -> Result<Running, String> {
    let auth = starting.security().auth.clone();
    let shutdown = starting.shutdown().clone();
    match starting.step(routes(config, &auth, &shutdown)).await {
        Ok((routes, extras, ready)) => Ok(starting.serve(routes, extras, SERVICE_NAMES, ready)),
        Err(e) => Err(starting.fail(e).await),
    }
}
