//! GitHub's webhook deliveries: the `X-Hub-Signature-256` check (HMAC-SHA256 over the raw
//! body, compared in constant time) and the reading of an `issues` event into a hint. A payload
//! is only a hint of which issue to fetch again; nothing in it is applied as is.

use ring::hmac;
use serde::Deserialize;

/// The header carrying `sha256=<hex HMAC of the body>`.
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";
/// The header naming the event (`issues`, `ping`, …).
pub const EVENT_HEADER: &str = "x-github-event";
/// The header carrying the delivery's unique id (a GUID), the key of replay detection.
pub const DELIVERY_HEADER: &str = "x-github-delivery";

/// The longest delivery id accepted (GitHub's are 36-character GUIDs).
const MAX_DELIVERY_ID: usize = 100;

/// Whether `header` (the `X-Hub-Signature-256` value) is the HMAC-SHA256 of `body` under
/// `secret`. A missing or malformed header, or an empty secret, is refused. The comparison is
/// constant-time ([`ring::hmac::verify`]).
pub fn verify_signature(secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    let Some(hex) = header.and_then(|h| h.trim().strip_prefix("sha256=")) else {
        return false;
    };
    let Some(tag) = decode_hex(hex) else {
        return false;
    };
    if secret.is_empty() || tag.len() != 32 {
        return false;
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    hmac::verify(&key, body, &tag).is_ok()
}

/// The `X-Hub-Signature-256` value of `body` under `secret`, as GitHub sends it.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let tag = hmac::sign(&key, body);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// The delivery id of a request (`X-GitHub-Delivery`), when present and plausible.
pub fn delivery_id(headers: &http::HeaderMap) -> Option<&str> {
    let id = headers.get(DELIVERY_HEADER)?.to_str().ok()?.trim();
    let plausible = !id.is_empty()
        && id.len() <= MAX_DELIVERY_ID
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    plausible.then_some(id)
}

/// Which issue an `issues` delivery is about: the issue to fetch again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueHint {
    /// `opened`, `edited`, `closed`, `reopened`, `deleted`, `transferred`, …
    pub action: String,
    /// The repository's `owner/repo`.
    pub repository: String,
    pub number: u64,
    /// The issue's page.
    pub html_url: String,
}

impl IssueHint {
    /// The issue's key as the connector names it (`owner/repo#N`).
    pub fn key(&self) -> String {
        format!("{}#{}", self.repository, self.number)
    }
}

#[derive(Deserialize)]
struct IssuesEvent {
    action: String,
    issue: EventIssue,
    repository: EventRepository,
}

#[derive(Deserialize)]
struct EventIssue {
    number: u64,
    html_url: String,
}

#[derive(Deserialize)]
struct EventRepository {
    full_name: String,
}

/// Reads an `issues` event's payload (the verified raw body); an error says what is wrong.
pub fn parse_issues_event(body: &[u8]) -> Result<IssueHint, String> {
    let event: IssuesEvent =
        serde_json::from_slice(body).map_err(|e| format!("not an issues event: {e}"))?;
    Ok(IssueHint {
        action: event.action,
        repository: event.repository.full_name,
        number: event.issue.number,
        html_url: event.issue.html_url,
    })
}

/// Lowercase or uppercase hex to bytes; `None` on odd length or a non-hex character.
fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GitHub's documented test vector, byte for byte.
    const SECRET: &[u8] = b"It's a Secret to Everybody";
    const PAYLOAD: &[u8] = b"Hello, World!";
    const EXPECTED: &str =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn githubs_documented_vector() {
        assert_eq!(sign(SECRET, PAYLOAD), EXPECTED);
        assert!(verify_signature(SECRET, PAYLOAD, Some(EXPECTED)));
    }

    #[test]
    fn wrong_missing_or_malformed_signatures_are_refused() {
        assert!(!verify_signature(SECRET, b"Hello, World?", Some(EXPECTED)));
        assert!(!verify_signature(
            b"another secret",
            PAYLOAD,
            Some(EXPECTED)
        ));
        assert!(!verify_signature(SECRET, PAYLOAD, None));
        assert!(!verify_signature(SECRET, PAYLOAD, Some("")));
        assert!(!verify_signature(SECRET, PAYLOAD, Some(&EXPECTED[7..])));
        assert!(!verify_signature(SECRET, PAYLOAD, Some("sha1=757107ea")));
        assert!(!verify_signature(
            SECRET,
            PAYLOAD,
            Some(&EXPECTED[..EXPECTED.len() - 2])
        ));
        assert!(!verify_signature(SECRET, PAYLOAD, Some("sha256=zz")));
        assert!(!verify_signature(b"", PAYLOAD, Some(&sign(b"", PAYLOAD))));
    }

    #[test]
    fn an_issues_event_is_a_hint() {
        let body = br#"{"action":"closed","issue":{"number":7,"html_url":"https://github.com/o/r/issues/7","state":"closed"},"repository":{"full_name":"o/r"},"sender":{"login":"u"}}"#;
        let hint = parse_issues_event(body).expect("issues event");
        assert_eq!(hint.action, "closed");
        assert_eq!(hint.key(), "o/r#7");
        assert_eq!(hint.html_url, "https://github.com/o/r/issues/7");
        assert!(parse_issues_event(b"{\"zen\":\"ping\"}").is_err());
    }

    #[test]
    fn delivery_ids_are_read() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(delivery_id(&headers), None);
        headers.insert(
            DELIVERY_HEADER,
            http::HeaderValue::from_static("72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        );
        assert_eq!(
            delivery_id(&headers),
            Some("72d3162e-cc78-11e3-81ab-4c9367dc0958")
        );
        headers.insert(DELIVERY_HEADER, http::HeaderValue::from_static("a b"));
        assert_eq!(delivery_id(&headers), None);
    }
}
