//! End-to-end tests of Assurance: real servers on ephemeral ports, real gRPC clients, on
//! SQLite and (when `ASSURANCE_TEST_POSTGRES_URL` is set) PostgreSQL.

mod helpers;

mod appetite;
mod approvals;
mod auth;
mod bad_input;
mod concurrency;
mod contract;
mod controls;
mod credentials;
mod effectiveness;
mod exceptions;
mod gateway;
mod governance;
mod history;
mod incidents;
mod limits;
mod listing;
mod metrics;
mod org;
mod pg_tcp;
mod posture;
mod process;
mod python;
mod relay;
mod relay_crash;
mod replicas;
mod reports;
mod reviews;
mod risks;
mod server;
mod summary_incidents;
mod summary_risks;
mod sync_fixture;
mod tracing;
mod tracker_crash;
mod tracker_redmine_sync;
mod tracker_sync;
mod tracker_webhooks;
mod trackers_github;
mod trackers_redmine;
mod upgrade;
mod work_items;
