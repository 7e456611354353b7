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

/// The first second Assurance accepts: 0001-01-01T00:00:00Z (the range of RFC 3339 and of
/// `google.protobuf.Timestamp`).
pub const MIN_SECONDS: i64 = -62_135_596_800;
/// The last second Assurance accepts: 9999-12-31T23:59:59Z.
pub const MAX_SECONDS: i64 = 253_402_300_799;
/// [`MIN_SECONDS`] in microseconds.
pub const MIN_MICROS: i64 = MIN_SECONDS * 1_000_000;
/// The last microsecond Assurance accepts (9999-12-31T23:59:59.999999Z).
pub const MAX_MICROS: i64 = MAX_SECONDS * 1_000_000 + 999_999;
/// The widest span between two accepted times, in microseconds.
pub const MAX_SPAN_MICROS: i64 = MAX_MICROS - MIN_MICROS;

/// What is wrong with a timestamp [`from_timestamp`] refuses, as a field violation's
/// description; `None` when it is accepted.
pub fn timestamp_problem(ts: &Timestamp) -> Option<&'static str> {
    if !(0..1_000_000_000).contains(&ts.nanos) {
        Some("is not a valid timestamp (nanos must be 0 to 999,999,999)")
    } else if !(MIN_SECONDS..=MAX_SECONDS).contains(&ts.seconds) {
        Some("must be between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z")
    } else {
        None
    }
}

/// Microseconds since the epoch of `ts`, or `None` when it is not a valid timestamp or lies
/// outside 0001-01-01..9999-12-31 (see [`timestamp_problem`] for why).
pub fn from_timestamp(ts: &Timestamp) -> Option<i64> {
    if timestamp_problem(ts).is_some() {
        return None;
    }
    ts.seconds
        .checked_mul(1_000_000)?
        .checked_add(i64::from(ts.nanos / 1000))
}

/// True when `micros` lies within 0001-01-01..9999-12-31.
pub fn in_range(micros: i64) -> bool {
    (MIN_MICROS..=MAX_MICROS).contains(&micros)
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
    fn only_years_1_to_9999_are_accepted() {
        let at = |seconds, nanos| Timestamp { seconds, nanos };
        assert_eq!(from_timestamp(&at(MIN_SECONDS, 0)), Some(MIN_MICROS));
        assert_eq!(
            from_timestamp(&at(MAX_SECONDS, 999_999_999)),
            Some(MAX_MICROS)
        );
        assert_eq!(from_timestamp(&at(MIN_SECONDS - 1, 0)), None);
        assert_eq!(from_timestamp(&at(MAX_SECONDS + 1, 0)), None);
        // Year -289,000: what once broke the incident metrics.
        let ancient = at(-9_120_000_000_000, 0);
        assert_eq!(from_timestamp(&ancient), None);
        assert!(timestamp_problem(&ancient).is_some_and(|p| p.contains("0001-01-01")));
        assert!(timestamp_problem(&at(0, -1)).is_some_and(|p| p.contains("nanos")));
        assert_eq!(from_timestamp(&at(i64::MIN, 0)), None);
        assert_eq!(from_timestamp(&at(i64::MAX, 0)), None);
        assert_eq!(parse_rfc3339("0001-01-01T00:00:00Z"), Some(MIN_MICROS));
        assert_eq!(
            parse_rfc3339("9999-12-31T23:59:59.999999Z"),
            Some(MAX_MICROS)
        );
        assert!(in_range(0) && !in_range(MIN_MICROS - 1) && !in_range(MAX_MICROS + 1));
    }

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:01Z"), Some(1_000_000));
        assert_eq!(parse_rfc3339("yesterday"), None);
    }
}
