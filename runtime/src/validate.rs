//! Field validation helpers: collect every violation of a request, then fail once with all of
//! them, so a caller fixes a bad request in one round trip.

use crate::error::{ApiError, ApiResult, Violation};

/// Collects field violations of one request.
#[derive(Debug, Default)]
pub struct Violations(Vec<Violation>);

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(Violation {
            field: field.into(),
            description: description.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok` when nothing was wrong, else `INVALID_ARGUMENT` with every violation.
    pub fn finish(self) -> ApiResult<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::InvalidArgument(self.0))
        }
    }

    /// A required enum field: its typed value, or a violation when it is the `_UNSPECIFIED`
    /// zero or names no known value.
    pub fn enumeration<T: TryFrom<i32>>(&mut self, field: &str, raw: i32) -> Option<T> {
        let value = T::try_from(raw).ok();
        self.known(field, raw, value.is_some());
        value
    }

    /// A violation when the enum number `raw` is the `_UNSPECIFIED` zero, or is not `valid`.
    pub fn known(&mut self, field: &str, raw: i32, valid: bool) {
        if raw == 0 {
            self.add(
                field,
                "is required (the _UNSPECIFIED value is not accepted)",
            );
        } else if !valid {
            self.add(field, format!("{raw} is not a known value"));
        }
    }

    /// The value of a required field, or `INVALID_ARGUMENT` with every violation so far.
    pub fn require<T>(&mut self, field: &str, value: Option<T>) -> ApiResult<T> {
        match value {
            Some(v) => Ok(v),
            None => {
                self.add(field, "is required");
                Err(ApiError::InvalidArgument(std::mem::take(&mut self.0)))
            }
        }
    }

    /// A required message field: its value, or — with a violation recorded — its empty default,
    /// so validation goes on to the message's own fields and the caller learns every problem of
    /// the request in one answer (the descriptor test in `tests/contract` relies on this).
    pub fn message<T: Default>(&mut self, field: &str, value: Option<T>) -> T {
        value.unwrap_or_else(|| {
            self.add(field, "is required");
            T::default()
        })
    }

    /// Keeps the value of `result`, or records its field violations (other errors are
    /// recorded against `field`).
    pub fn absorb<T>(&mut self, field: &str, result: ApiResult<T>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(ApiError::InvalidArgument(list)) => {
                self.0.extend(list);
                None
            }
            Err(other) => {
                self.add(field, other.to_string());
                None
            }
        }
    }

    /// A single-line text: no control characters, at most `max` characters, and not blank
    /// when `required`.
    pub fn line(&mut self, field: &str, value: &str, required: bool, max: usize) {
        self.text(field, value, required, max, false);
    }

    /// A multi-line text: like [`Self::line`] but newlines and tabs are allowed.
    pub fn paragraph(&mut self, field: &str, value: &str, required: bool, max: usize) {
        self.text(field, value, required, max, true);
    }

    /// A work item's tracker link under `field` (`…tracker`): system, external key and an
    /// http(s) URL of bounded length, a known sync state (0 lets [`tracker_sync_state`]
    /// choose) and a valid sync time.
    pub fn tracker_link(&mut self, field: &str, t: &TrackerLink<'_>) {
        self.line(&format!("{field}.system"), t.system, false, 50);
        self.line(&format!("{field}.external_key"), t.external_key, false, 200);
        self.line(&format!("{field}.url"), t.url, false, 2000);
        let web = t.url.starts_with("https://") || t.url.starts_with("http://");
        if !t.url.is_empty() && !web {
            self.add(format!("{field}.url"), "must be an http(s) URL");
        }
        if t.sync_state != 0
            && assurance_proto::r#type::v1::SyncState::try_from(t.sync_state).is_err()
        {
            self.add(
                format!("{field}.sync_state"),
                format!("{} is not a known value", t.sync_state),
            );
        }
        if let Some(ts) = t.sync_time {
            self.timestamp(&format!("{field}.sync_time"), ts);
        }
    }

    /// A timestamp field: its microseconds, or a violation on `field` when it is not a valid
    /// timestamp or lies outside 0001-01-01..9999-12-31.
    pub fn timestamp(&mut self, field: &str, ts: &prost_types::Timestamp) -> Option<i64> {
        match crate::time::timestamp_problem(ts) {
            Some(problem) => {
                self.add(field, problem);
                None
            }
            None => crate::time::from_timestamp(ts),
        }
    }

    fn text(&mut self, field: &str, value: &str, required: bool, max: usize, multiline: bool) {
        if value.trim().is_empty() {
            if required {
                self.add(field, "is required");
            } else if !value.is_empty() {
                self.add(field, "must not be only white space");
            }
            return;
        }
        let chars = value.chars().count();
        if chars > max {
            self.add(
                field,
                format!("must be at most {max} characters (got {chars})"),
            );
        }
        let bad_control = value
            .chars()
            .any(|c| c.is_control() && !(multiline && matches!(c, '\n' | '\r' | '\t')));
        if bad_control {
            self.add(field, "must not contain control characters");
        }
    }

    /// A principal-valued field (an owner, an assessor, a participant): normalised in place as
    /// authentication normalises callers (trimmed, lower case), then checked: 1–254 visible
    /// characters, no inner spaces.
    pub fn principal(&mut self, field: &str, value: &mut String, required: bool) {
        if value.chars().any(|c| c.is_whitespace() || c.is_uppercase()) {
            *value = crate::auth::normalize_principal(value);
        }
        if value.is_empty() {
            if required {
                self.add(field, "is required");
            }
            return;
        }
        if value.chars().count() > 254 {
            self.add(field, "must be at most 254 characters");
        } else if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            self.add(field, "must not contain spaces or control characters");
        }
    }

    /// An integer in `lo..=hi`; zero counts as missing.
    pub fn in_range(&mut self, field: &str, value: i32, lo: i32, hi: i32) {
        if value == 0 && lo > 0 {
            self.add(field, format!("is required ({lo}–{hi})"));
        } else if !(lo..=hi).contains(&value) {
            self.add(
                field,
                format!("must be between {lo} and {hi} (got {value})"),
            );
        }
    }

    /// An optional idempotency key.
    pub fn request_id(&mut self, field: &str, value: &str) {
        if !value.is_empty() && !is_request_id(value) {
            self.add(
                field,
                "must be 1–128 characters of letters, digits and . _ : - (a UUID is a good choice)",
            );
        }
    }
}

/// A resource id slug per AIP-122: `[a-z]([a-z0-9-]{0,61}[a-z0-9])?`.
pub fn is_slug(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[b.len() - 1] != b'-'
}

pub fn is_request_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b':' | b'-'))
}

/// The id of a resource name `{collection}/{id}`, if `name` has that form.
pub fn name_id<'a>(name: &'a str, collection: &str) -> Option<&'a str> {
    let id = name.strip_prefix(collection)?.strip_prefix('/')?;
    (!id.is_empty() && !id.contains('/')).then_some(id)
}

/// Parses `{collection}/{slug}`, adding a violation for `field` when malformed.
pub fn slug_name<'a>(
    v: &mut Violations,
    field: &str,
    name: &'a str,
    collection: &str,
) -> Option<&'a str> {
    if name.is_empty() {
        v.add(field, "is required");
        return None;
    }
    match name_id(name, collection) {
        Some(id) if is_slug(id) => Some(id),
        _ => {
            v.add(
                field,
                format!("must be a resource name `{collection}/{{id}}` with a lowercase slug id"),
            );
            None
        }
    }
}

/// The paths of an update: the mask's, or when it is empty every populated field
/// (AIP-134). Unknown or repeated paths are `INVALID_ARGUMENT`.
pub fn update_paths(
    mask: Option<&prost_types::FieldMask>,
    updatable: &[&'static str],
    populated: impl Fn(&str) -> bool,
) -> ApiResult<Vec<&'static str>> {
    let requested: Vec<String> = mask.map(|m| m.paths.clone()).unwrap_or_default();
    if requested.is_empty() {
        return Ok(updatable.iter().copied().filter(|p| populated(p)).collect());
    }
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for path in &requested {
        let Some(known) = updatable.iter().find(|u| **u == path.as_str()) else {
            return Err(ApiError::invalid(
                "update_mask",
                format!(
                    "unknown or immutable path `{path}`; updatable: {}",
                    updatable.join(", ")
                ),
            ));
        };
        if !seen.insert(*known) {
            return Err(ApiError::invalid(
                "update_mask",
                format!("path `{path}` is repeated"),
            ));
        }
        out.push(*known);
    }
    Ok(out)
}

/// The fields of a tracker link (`assurance.type.v1.TrackerLink` of incident follow-ups and
/// `assurance.risk.v1.TrackerLink` of action items have the same shape and numbers).
pub struct TrackerLink<'a> {
    pub system: &'a str,
    pub external_key: &'a str,
    pub url: &'a str,
    pub sync_state: i32,
    pub sync_time: Option<&'a prost_types::Timestamp>,
}

/// The sync state to store for a link: the given one, or when unspecified NOT_LINKED without
/// a tracker system and PENDING with one.
pub fn tracker_sync_state(sync_state: i32, system: &str) -> i32 {
    use assurance_proto::r#type::v1::SyncState;
    match (sync_state, system.is_empty()) {
        (0, true) => SyncState::NotLinked as i32,
        (0, false) => SyncState::Pending as i32,
        (s, _) => s,
    }
}

#[cfg(test)]
mod enum_tests {
    use super::Violations;

    #[derive(Debug, PartialEq)]
    struct Colour;

    impl TryFrom<i32> for Colour {
        type Error = i32;
        fn try_from(n: i32) -> Result<Self, i32> {
            if n == 1 { Ok(Colour) } else { Err(n) }
        }
    }

    #[test]
    fn enumerations_refuse_unspecified_and_unknown_numbers() {
        let mut v = Violations::new();
        assert_eq!(v.enumeration::<Colour>("colour", 1), Some(Colour));
        assert!(v.is_empty());
        assert_eq!(v.enumeration::<Colour>("colour", 0), None);
        assert_eq!(v.enumeration::<Colour>("shade", 7), None);
        let Err(crate::ApiError::InvalidArgument(list)) = v.finish() else {
            panic!("violations expected")
        };
        let got: Vec<(&str, &str)> = list
            .iter()
            .map(|x| (x.field.as_str(), x.description.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "colour",
                    "is required (the _UNSPECIFIED value is not accepted)"
                ),
                ("shade", "7 is not a known value")
            ]
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn slugs() {
        for ok in ["a", "exchange-online", "a1", "x-y-z9"] {
            assert!(is_slug(ok), "{ok}");
        }
        for bad in ["", "A", "1a", "a-", "a_b", "ab/c", &"a".repeat(64), "é"] {
            assert!(!is_slug(bad), "{bad}");
        }
    }

    #[test]
    fn names() {
        assert_eq!(name_id("risks/abc", "risks"), Some("abc"));
        assert_eq!(name_id("risks/", "risks"), None);
        assert_eq!(name_id("risks/a/b", "risks"), None);
        assert_eq!(name_id("riskss/a", "risks"), None);
        assert_eq!(name_id("services/a", "risks"), None);
    }

    #[test]
    fn text_rules() {
        let mut v = Violations::new();
        v.line("a", "", true, 10);
        v.line("b", "   ", false, 10);
        v.line("c", "12345678901", false, 10);
        v.line("d", "x\ny", false, 10);
        v.paragraph("e", "x\ny", false, 10);
        v.line("f", "ok", true, 10);
        let Err(ApiError::InvalidArgument(list)) = v.finish() else {
            panic!("expected violations")
        };
        let fields: Vec<_> = list.iter().map(|x| x.field.as_str()).collect();
        assert_eq!(fields, ["a", "b", "c", "d"]);
    }

    #[test]
    fn timestamps_outside_years_1_to_9999_name_their_field() {
        let mut v = Violations::new();
        let ok = prost_types::Timestamp {
            seconds: 1,
            nanos: 0,
        };
        assert_eq!(v.timestamp("a", &ok), Some(1_000_000));
        let ancient = prost_types::Timestamp {
            seconds: -9_120_000_000_000,
            nanos: 0,
        };
        assert_eq!(v.timestamp("incident.occur_time", &ancient), None);
        let Err(ApiError::InvalidArgument(list)) = v.finish() else {
            panic!("expected violations")
        };
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].field, "incident.occur_time");
        assert!(list[0].description.contains("9999-12-31"));
    }

    #[test]
    fn ranges() {
        let mut v = Violations::new();
        v.in_range("zero", 0, 1, 5);
        v.in_range("six", 6, 1, 5);
        v.in_range("neg", -1, 1, 5);
        v.in_range("ok", 3, 1, 5);
        let Err(ApiError::InvalidArgument(list)) = v.finish() else {
            panic!("expected violations")
        };
        assert_eq!(list.len(), 3);
        assert!(list[0].description.contains("required"));
    }

    #[test]
    fn update_paths_rules() {
        let updatable = ["title", "owner"];
        let mask = prost_types::FieldMask {
            paths: vec!["owner".into()],
        };
        assert_eq!(
            update_paths(Some(&mask), &updatable, |_| false),
            Ok(vec!["owner"])
        );
        assert_eq!(
            update_paths(None, &updatable, |p| p == "title"),
            Ok(vec!["title"])
        );
        let bad = prost_types::FieldMask {
            paths: vec!["status".into()],
        };
        assert!(update_paths(Some(&bad), &updatable, |_| true).is_err());
        let twice = prost_types::FieldMask {
            paths: vec!["owner".into(), "owner".into()],
        };
        assert!(update_paths(Some(&twice), &updatable, |_| true).is_err());
    }

    proptest! {
        #[test]
        fn slug_check_never_panics_and_matches_pattern(s in "\\PC{0,70}") {
            let ok = is_slug(&s);
            let re_like = !s.is_empty() && s.len() <= 63
                && s.starts_with(|c: char| c.is_ascii_lowercase())
                && !s.ends_with('-')
                && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            prop_assert_eq!(ok, re_like);
        }

        #[test]
        fn generated_slugs_are_valid(s in "[a-z]([a-z0-9-]{0,61}[a-z0-9])?") {
            prop_assert!(is_slug(&s));
        }
    }
}
