//! Page sizes and opaque page tokens for keyset pagination (AIP-158).
//!
//! A token holds the sort-key values of the last row returned and a fingerprint of the query
//! it belongs to; reusing it with another filter, order or parent is `INVALID_ARGUMENT`.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ApiResult};

pub const DEFAULT_PAGE_SIZE: u64 = 50;
pub const MAX_PAGE_SIZE: u64 = 1000;

/// The effective page size: 0 means the default, above the maximum is lowered to it,
/// negative is an error.
pub fn page_size(field: &str, requested: i32) -> ApiResult<u64> {
    match requested {
        n if n < 0 => Err(ApiError::invalid(field, "must not be negative")),
        0 => Ok(DEFAULT_PAGE_SIZE),
        n => Ok((n as u64).min(MAX_PAGE_SIZE)),
    }
}

/// One sort-key value of the last row of a page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Key {
    Int(i64),
    Text(String),
}

#[derive(Serialize, Deserialize)]
struct Token {
    /// Fingerprint of the query the token belongs to.
    q: String,
    /// Sort-key values of the last row returned.
    k: Vec<Key>,
}

/// Fingerprint of the parts of a list request that must not change between pages.
pub fn query_fingerprint(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    URL_SAFE_NO_PAD.encode(&h.finalize()[..12])
}

pub fn encode(fingerprint: &str, keys: Vec<Key>) -> String {
    let token = Token {
        q: fingerprint.to_string(),
        k: keys,
    };
    // Serialising plain strings and integers cannot fail.
    let json = serde_json::to_vec(&token).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

/// Decodes `page_token` (empty means the first page) into the keys to continue after,
/// checking it belongs to this query and has `arity` keys.
pub fn decode(
    field: &str,
    page_token: &str,
    fingerprint: &str,
    arity: usize,
) -> ApiResult<Option<Vec<Key>>> {
    if page_token.is_empty() {
        return Ok(None);
    }
    let malformed = || ApiError::invalid(field, "is not a page token issued by this service");
    if page_token.len() > 4096 {
        return Err(malformed());
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(page_token)
        .map_err(|_| malformed())?;
    let token: Token = serde_json::from_slice(&bytes).map_err(|_| malformed())?;
    if token.q != fingerprint {
        return Err(ApiError::invalid(
            field,
            "belongs to a different query: keep filter, order_by and parent unchanged between pages",
        ));
    }
    if token.k.len() != arity {
        return Err(malformed());
    }
    Ok(Some(token.k))
}

/// Ends a page fetched with `limit = size + 1`: drops the extra row and returns the token of
/// the next page (empty when this was the last).
pub fn finish<T>(
    rows: &mut Vec<T>,
    size: u64,
    fingerprint: &str,
    keys: impl Fn(&T) -> Vec<Key>,
) -> String {
    if rows.len() as u64 <= size {
        return String::new();
    }
    rows.truncate(size as usize);
    rows.last()
        .map(|r| encode(fingerprint, keys(r)))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sizes() {
        assert_eq!(page_size("page_size", 0), Ok(50));
        assert_eq!(page_size("page_size", 7), Ok(7));
        assert_eq!(page_size("page_size", 5000), Ok(1000));
        assert!(page_size("page_size", -1).is_err());
    }

    #[test]
    fn token_bound_to_query() {
        let fp = query_fingerprint(&["status = ASSESSED", ""]);
        let token = encode(&fp, vec![Key::Int(5), Key::Text("x".into())]);
        assert_eq!(
            decode("page_token", &token, &fp, 2),
            Ok(Some(vec![Key::Int(5), Key::Text("x".into())]))
        );
        let other = query_fingerprint(&["status = CLOSED", ""]);
        assert!(decode("page_token", &token, &other, 2).is_err());
        assert!(decode("page_token", &token, &fp, 3).is_err());
        assert_eq!(decode("page_token", "", &fp, 2), Ok(None));
    }

    #[test]
    fn finishing_a_page() {
        let fp = query_fingerprint(&["x"]);
        let mut rows = vec![1i64, 2, 3];
        let token = finish(&mut rows, 2, &fp, |r| vec![Key::Int(*r)]);
        assert_eq!(rows, [1, 2]);
        assert_eq!(
            decode("page_token", &token, &fp, 1),
            Ok(Some(vec![Key::Int(2)]))
        );
        let mut last = vec![1i64];
        assert_eq!(finish(&mut last, 2, &fp, |r| vec![Key::Int(*r)]), "");
    }

    #[test]
    fn fingerprint_separates_parts() {
        assert_ne!(
            query_fingerprint(&["ab", "c"]),
            query_fingerprint(&["a", "bc"])
        );
    }

    proptest! {
        #[test]
        fn garbage_tokens_are_rejected_not_panics(s in "\\PC{1,200}") {
            let fp = query_fingerprint(&[""]);
            let r = decode("page_token", &s, &fp, 1);
            prop_assert!(r.is_err() || r == Ok(None));
        }

        #[test]
        fn tokens_round_trip(a in any::<i64>(), b in "\\PC{0,40}") {
            let fp = query_fingerprint(&["q"]);
            let keys = vec![Key::Int(a), Key::Text(b)];
            let t = encode(&fp, keys.clone());
            prop_assert_eq!(decode("page_token", &t, &fp, 2), Ok(Some(keys)));
        }
    }
}
