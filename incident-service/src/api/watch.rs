//! `WatchIncident`: one shared feed per watched incident, however many watch it.
//!
//! A feed wakes on every change committed in this process (and every few seconds, for changes
//! made by another replica — less often when many incidents are watched), reads the incident's new timeline events once and broadcasts them
//! to its watchers; it stops when its last watcher leaves. A watcher subscribes first, then
//! catches up from its `after_sequence` on its own, then takes the feed's batches (skipping
//! what it has sent), so no event is missed or repeated. A watcher that falls behind the feed
//! catches up again from its last sequence. The stream ends after the `CLOSED` event; a watch
//! of a closed incident resumed at or past that event ends at once.
//!
//! The caps on open streams, their lifetime and the checks of the caller's credential before
//! each message are the server's ([`assurance_runtime::limits`]).

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};

use assurance_proto::incident::v1 as pb;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tokio::sync::broadcast;
use tonic::Status;
use uuid::Uuid;

use crate::{
    domain::{phase::Phase, timeline::TimelineKind},
    store::{Store, entities::timeline_event},
};

use super::convert;

/// A feed reads again at least this often (changes made by another replica)…
const FEED_POLL: Duration = Duration::from_secs(2);
/// …unless there are so many feeds that together they would read more than this a second.
const FEED_READS_PER_SEC: f64 = 50.0;
/// Events read per query.
const BATCH: u64 = 100;
/// Batches a feed keeps for a slow watcher before it must catch up on its own.
const FEED_CAPACITY: usize = 64;

type Batch = Arc<[timeline_event::Model]>;

/// The feeds of the incidents being watched.
#[derive(Clone)]
pub struct WatchHub {
    store: Store,
    feeds: Arc<Mutex<HashMap<Uuid, broadcast::Sender<Batch>>>>,
}

pub type EventStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<pb::TimelineEvent, Status>> + Send>>;

/// The events of incident `id` after `after`, oldest first.
async fn events_after(
    store: &Store,
    id: Uuid,
    after: i64,
) -> Result<Vec<timeline_event::Model>, Status> {
    timeline_event::Entity::find()
        .filter(timeline_event::Column::IncidentId.eq(id))
        .filter(timeline_event::Column::Seq.gt(after))
        .order_by_asc(timeline_event::Column::Seq)
        .limit(BATCH)
        .all(store.connection())
        .await
        .map_err(|e| Status::from(assurance_runtime::ApiError::from(e)))
}

impl WatchHub {
    pub fn new(store: Store) -> Self {
        WatchHub {
            store,
            feeds: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// A receiver of incident `id`'s feed, started when none runs.
    fn subscribe(&self, id: Uuid) -> broadcast::Receiver<Batch> {
        let mut feeds = self.feeds.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(feed) = feeds.get(&id) {
            return feed.subscribe();
        }
        let (tx, rx) = broadcast::channel(FEED_CAPACITY);
        feeds.insert(id, tx.clone());
        let hub = self.clone();
        tokio::spawn(async move { hub.run_feed(id, tx).await });
        rx
    }

    /// Incident `id`'s feed: new events broadcast as they are committed, until no one watches.
    async fn run_feed(self, id: Uuid, tx: broadcast::Sender<Batch>) {
        let changed = self.store.change_notifier();
        // From the start of the timeline: a watcher may have caught up (and be waiting for the
        // feed) before this task first reads, and events committed in between must reach it.
        // Watchers skip what they have sent.
        let mut last = 0;
        loop {
            let notified = changed.notified();
            tokio::pin!(notified);
            // Registered before the read: a change committed during it wakes the next wait.
            notified.as_mut().enable();
            loop {
                match events_after(&self.store, id, last).await {
                    Ok(rows) if rows.is_empty() => break,
                    Ok(rows) => {
                        let full = rows.len() as u64 >= BATCH;
                        last = rows.last().map_or(last, |r| r.seq);
                        // No receiver left: the check below ends the feed.
                        let _ = tx.send(Arc::from(rows));
                        if !full {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(incident = %id, error = %e, "WatchIncident: the feed's read failed; retrying");
                        break;
                    }
                }
            }
            if tx.receiver_count() == 0 && self.end_feed(id, &tx) {
                return;
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep(self.poll_interval()) => {}
            }
        }
    }

    /// How long a feed waits for a change before it reads anyway (another replica's change):
    /// `FEED_POLL`, stretched so that all feeds together read at most `FEED_READS_PER_SEC`
    /// times a second (a thousand watched incidents are read every 20 s each). Changes made
    /// through this process wake their feeds at once.
    fn poll_interval(&self) -> Duration {
        let feeds = self.feeds.lock().map_or(1, |f| f.len()).max(1);
        FEED_POLL.max(Duration::from_secs_f64(feeds as f64 / FEED_READS_PER_SEC))
    }

    /// Removes incident `id`'s feed when no one watches it (checked under the lock watchers
    /// subscribe under); true when it ended.
    fn end_feed(&self, id: Uuid, tx: &broadcast::Sender<Batch>) -> bool {
        let mut feeds = self.feeds.lock().unwrap_or_else(|e| e.into_inner());
        if tx.receiver_count() > 0 {
            return false;
        }
        feeds.remove(&id);
        true
    }

    /// The stream of incident `id`'s events after `after` (the incident exists; `phase` is its
    /// phase now).
    pub fn watch(&self, id: Uuid, after: i64, phase: i32) -> EventStream {
        struct Watcher {
            hub: WatchHub,
            id: Uuid,
            rx: broadcast::Receiver<Batch>,
            after: i64,
            buffered: VecDeque<timeline_event::Model>,
            catching_up: bool,
            closed: bool,
            done: bool,
        }
        let start = Watcher {
            rx: self.subscribe(id),
            hub: self.clone(),
            id,
            after,
            buffered: VecDeque::new(),
            catching_up: true,
            closed: phase == Phase::Closed as i32,
            done: false,
        };
        let stream = futures::stream::unfold(start, |mut w| async move {
            loop {
                if let Some(e) = w.buffered.pop_front() {
                    if e.seq <= w.after {
                        continue;
                    }
                    w.after = e.seq;
                    // The stream ends after the CLOSED event (and anything buffered with it).
                    w.done |= e.kind == TimelineKind::Closed as i32;
                    return Some((Ok(convert::timeline_event(&e)), w));
                }
                if w.done {
                    return None;
                }
                if w.catching_up {
                    match events_after(&w.hub.store, w.id, w.after).await {
                        Ok(rows) if !rows.is_empty() => {
                            w.buffered.extend(rows);
                            continue;
                        }
                        Ok(_) => {
                            w.catching_up = false;
                            // Closed, and nothing after the watcher's place: the CLOSED event is
                            // behind it, nothing can follow.
                            if w.closed {
                                return None;
                            }
                        }
                        Err(e) => {
                            w.done = true;
                            return Some((Err(e), w));
                        }
                    }
                }
                match w.rx.recv().await {
                    Ok(batch) => w.buffered.extend(batch.iter().cloned()),
                    Err(broadcast::error::RecvError::Lagged(_)) => w.catching_up = true,
                    Err(broadcast::error::RecvError::Closed) => {
                        // The feed stopped (it cannot while we listen; defensively): again.
                        w.rx = w.hub.subscribe(w.id);
                        w.catching_up = true;
                        tokio::time::sleep(FEED_POLL).await;
                    }
                }
            }
        });
        Box::pin(stream)
    }
}
