//! The outbox relay itself, against a receiver that records what it was handed: two relays on
//! one database never deliver an event twice or out of order, a failing event backs off (or
//! waits for the receiver's Retry-After) and is parked after its last attempt, and a parked
//! event holds back its aggregate while the others flow.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use assurance_runtime::{
    outbox::{
        NewEvent, State, outbox_event,
        relay::{Outcome, Receiver, Relay, RelaySettings},
    },
    serve::Shutdown,
};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};
use tokio::sync::Notify;

use crate::helpers::*;

crate::on_both_backends!(
    two_relays_deliver_each_event_once_in_order,
    failures_back_off_park_and_hold_back_their_aggregate,
);

const SERVICE: &str = "incident-service";
const KIND: &str = "test.event";

/// What the receiver saw: each delivery's (aggregate, payload sequence), and the aggregates
/// being delivered right now (a second concurrent delivery of one is a failure).
#[derive(Default)]
struct Seen {
    delivered: Vec<(String, u64)>,
    in_flight: HashSet<String>,
    overlaps: usize,
    attempts: HashMap<String, usize>,
}

#[derive(Clone, Default)]
struct Recorder {
    seen: Arc<Mutex<Seen>>,
}

impl Receiver for Recorder {
    fn kinds(&self) -> &'static [&'static str] {
        &[KIND]
    }

    async fn deliver(&self, event: &outbox_event::Model) -> Outcome {
        let payload: serde_json::Value = serde_json::from_str(&event.payload).unwrap_or_default();
        let n = payload["n"].as_u64().unwrap_or(u64::MAX);
        let attempt = {
            let mut seen = self.seen.lock().expect("lock");
            if !seen.in_flight.insert(event.aggregate.clone()) {
                seen.overlaps += 1;
            }
            let attempt = seen.attempts.entry(event.aggregate.clone()).or_default();
            *attempt += 1;
            *attempt
        };
        tokio::time::sleep(Duration::from_millis(2)).await;
        let outcome = match event.aggregate.as_str() {
            // Always unavailable: backs off until parked.
            "poison" => Outcome::Retry {
                error: "Unavailable: down".into(),
                after: None,
            },
            // Asks for a pause the first time.
            "slow" if attempt == 1 => Outcome::Retry {
                error: "ResourceExhausted: later".into(),
                after: Some(Duration::from_millis(700)),
            },
            _ => Outcome::Delivered,
        };
        let mut seen = self.seen.lock().expect("lock");
        seen.in_flight.remove(&event.aggregate);
        if outcome == Outcome::Delivered {
            seen.delivered.push((event.aggregate.clone(), n));
        }
        outcome
    }
}

/// A migrated incident database of `db`, over a pool of its own.
async fn open(db: &TestDb) -> DatabaseConnection {
    incident_service::store::Store::open(&db.incident_url(), 4)
        .await
        .expect("open store")
        .connection()
        .clone()
}

async fn queue(conn: &DatabaseConnection, aggregate: &str, n: u64) {
    assurance_runtime::outbox::queue(
        conn,
        SERVICE,
        [NewEvent {
            kind: KIND,
            aggregate: aggregate.into(),
            payload: serde_json::json!({ "n": n }),
        }],
    )
    .await
    .expect("queue");
}

fn settings(max_attempts: i32) -> RelaySettings {
    RelaySettings {
        poll: Duration::from_millis(20),
        batch: 16,
        max_attempts,
        base_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(80),
        ..RelaySettings::default()
    }
}

async fn rows(conn: &DatabaseConnection) -> Vec<outbox_event::Model> {
    outbox_event::Entity::find()
        .filter(outbox_event::Column::Kind.eq(KIND))
        .order_by_asc(outbox_event::Column::Seq)
        .all(conn)
        .await
        .expect("rows")
}

async fn two_relays_deliver_each_event_once_in_order(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (a, b) = (open(&db).await, open(&db).await);
    const AGGREGATES: u64 = 25;
    const PER_AGGREGATE: u64 = 12;
    for n in 0..PER_AGGREGATE {
        for g in 0..AGGREGATES {
            queue(&a, &format!("incidents/{g}"), n).await;
        }
    }
    let recorder = Recorder::default();
    let shutdown = Shutdown::new();
    for conn in [a.clone(), b.clone()] {
        Relay::new(
            conn,
            SERVICE,
            recorder.clone(),
            settings(5),
            Arc::new(Notify::new()),
        )
        .spawn(shutdown.clone());
    }
    let total = (AGGREGATES * PER_AGGREGATE) as usize;
    eventually("every event delivered", || async {
        let delivered = recorder.seen.lock().expect("lock").delivered.len();
        if delivered >= total {
            Ok(())
        } else {
            Err(format!("{delivered} of {total}"))
        }
    })
    .await;
    // Settle: nothing more arrives.
    tokio::time::sleep(Duration::from_millis(300)).await;
    shutdown.trigger();
    {
        let seen = recorder.seen.lock().expect("lock");
        assert_eq!(seen.delivered.len(), total, "no event twice");
        assert_eq!(seen.overlaps, 0, "one aggregate delivered concurrently");
        let mut per: HashMap<&str, Vec<u64>> = HashMap::new();
        for (aggregate, n) in &seen.delivered {
            per.entry(aggregate).or_default().push(*n);
        }
        assert_eq!(per.len(), AGGREGATES as usize);
        for (aggregate, order) in per {
            assert_eq!(
                order,
                (0..PER_AGGREGATE).collect::<Vec<_>>(),
                "{aggregate} out of order"
            );
        }
    }
    let rows = rows(&b).await;
    assert!(
        rows.iter()
            .all(|r| r.state == State::Delivered as i32 && r.attempts == 1)
    );
}

async fn failures_back_off_park_and_hold_back_their_aggregate(backend: Backend) {
    let db = TestDb::new(backend).await;
    let conn = open(&db).await;
    queue(&conn, "poison", 1).await;
    queue(&conn, "poison", 2).await;
    queue(&conn, "slow", 1).await;
    queue(&conn, "fine", 1).await;
    let recorder = Recorder::default();
    let shutdown = Shutdown::new();
    Relay::new(
        conn.clone(),
        SERVICE,
        recorder.clone(),
        settings(3),
        Arc::new(Notify::new()),
    )
    .spawn(shutdown.clone());

    // The receiver's Retry-After is honoured: "slow" waits ~700 ms, not the 20 ms backoff.
    let slow = eventually("slow's first attempt", || async {
        let row = rows(&conn)
            .await
            .into_iter()
            .find(|r| r.aggregate == "slow")
            .expect("slow");
        if row.attempts == 1 {
            Ok(row)
        } else {
            Err(format!("{row:?}"))
        }
    })
    .await;
    if slow.state == State::Pending as i32 {
        let wait = slow.next_attempt_time - assurance_runtime::time::now_micros();
        assert!(
            wait > 300_000,
            "Retry-After ignored: next attempt in {wait} µs"
        );
        assert!(slow.last_error.contains("later"));
    }

    let parked = eventually("poison parked, the rest delivered", || async {
        let rows = rows(&conn).await;
        let state = |aggregate: &str, n: usize| {
            rows.iter()
                .filter(|r| r.aggregate == aggregate)
                .nth(n)
                .map(|r| r.state)
        };
        if state("poison", 0) == Some(State::Dead as i32)
            && state("slow", 0) == Some(State::Delivered as i32)
            && state("fine", 0) == Some(State::Delivered as i32)
        {
            Ok(rows)
        } else {
            Err(format!("{rows:?}"))
        }
    })
    .await;
    shutdown.trigger();
    let poison: Vec<_> = parked.iter().filter(|r| r.aggregate == "poison").collect();
    assert_eq!(poison[0].attempts, 3, "parked after its last attempt");
    assert!(poison[0].dead_time.is_some());
    assert!(poison[0].last_error.contains("down"));
    // The later event of the parked aggregate was never tried.
    assert_eq!(poison[1].state, State::Pending as i32);
    assert_eq!(poison[1].attempts, 0);
    let seen = recorder.seen.lock().expect("lock");
    assert_eq!(seen.attempts["poison"], 3);
    assert_eq!(seen.attempts["slow"], 2);
    assert_eq!(seen.attempts["fine"], 1);
}
