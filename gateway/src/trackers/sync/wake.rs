//! The services' work-item events (`risk.action_item`, `incident.follow_up`) as the sync's
//! wake-up: in embedded mode the gateway hosts the services, so it relays their outbox events of
//! these kinds itself. Each delivered event starts a scan at once (the scan, not the event, says
//! what changed: it reads the items by `update_time`, so a lost or repeated event changes
//! nothing), and the events do not pile up undelivered.

use std::sync::Arc;

use assurance_runtime::outbox::{
    outbox_event,
    relay::{Outcome, Receiver},
};
use tokio::sync::Notify;

/// The event type risk-service queues for each change of an action item.
pub const ACTION_ITEM_EVENTS: &[&str] = &["risk.action_item"];
/// The event type incident-service queues for each follow-up a review creates.
pub const FOLLOW_UP_EVENTS: &[&str] = &["incident.follow_up"];

/// Delivers `kinds` by waking the scan.
pub struct ScanWake {
    kinds: &'static [&'static str],
    scan: Arc<Notify>,
}

impl ScanWake {
    pub fn new(kinds: &'static [&'static str], scan: Arc<Notify>) -> Self {
        ScanWake { kinds, scan }
    }
}

impl Receiver for ScanWake {
    fn kinds(&self) -> &'static [&'static str] {
        self.kinds
    }

    async fn deliver(&self, _event: &outbox_event::Model) -> Outcome {
        self.scan.notify_one();
        Outcome::Delivered
    }
}
