//! Times are stored as microseconds since the Unix epoch (BIGINT on every backend), so
//! durations and ranges compute identically on SQLite and PostgreSQL.

use std::time::{SystemTime, UNIX_EPOCH};

use prost_types::Timestamp;

pub fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The clock of time-driven rules (expiries, overdue items): real time plus an offset that
/// tests can move forward. Clones share the offset.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_micros: std::sync::Arc<std::sync::atomic::AtomicI64>,
}

impl Clock {
    pub fn now_micros(&self) -> i64 {
        now_micros().saturating_add(
            self.offset_micros
                .load(std::sync::atomic::Ordering::Relaxed),
        )
    }

    /// Moves this clock (and its clones) forward by `by`.
    pub fn advance(&self, by: std::time::Duration) {
        let micros = i64::try_from(by.as_micros()).unwrap_or(i64::MAX);
        self.offset_micros
            .fetch_add(micros, std::sync::atomic::Ordering::Relaxed);
    }
}

pub fn to_timestamp(micros: i64) -> Timestamp {
    Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1000) as i32,
    }
}

pub fn from_timestamp(ts: &Timestamp) -> Option<i64> {
    if !(0..1_000_000_000).contains(&ts.nanos) {
        return None;
    }
    ts.seconds
        .checked_mul(1_000_000)?
        .checked_add(i64::from(ts.nanos / 1000))
}

/// Parses an RFC 3339 time such as `2026-11-23T10:00:00Z` into microseconds.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let ts: Timestamp = text.parse().ok()?;
    from_timestamp(&ts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for m in [0, 1, 999_999, 1_700_000_000_123_456, -1] {
            assert_eq!(from_timestamp(&to_timestamp(m)), Some(m));
        }
    }

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:01Z"), Some(1_000_000));
        assert_eq!(parse_rfc3339("yesterday"), None);
    }
}
