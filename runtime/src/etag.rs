//! Etags for optimistic concurrency: a resource's version, quoted (`"3"`).

use crate::error::{ApiError, ApiResult};

/// The etag of a version.
pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// Parses an etag sent by a client (quoted or not); empty means "no precondition".
pub fn parse_etag(field: &str, etag: &str) -> ApiResult<Option<i64>> {
    if etag.is_empty() {
        return Ok(None);
    }
    let inner = etag
        .strip_prefix('"')
        .and_then(|e| e.strip_suffix('"'))
        .unwrap_or(etag);
    inner
        .parse::<i64>()
        .ok()
        .filter(|v| *v > 0)
        .map(Some)
        .ok_or_else(|| ApiError::invalid(field, "is not an etag issued by this service"))
}

/// `ABORTED` when the client's expected version is not the stored one.
pub fn check_version(resource: &str, expected: Option<i64>, current: i64) -> ApiResult<()> {
    match expected {
        Some(v) if v != current => Err(ApiError::StaleEtag {
            resource: resource.to_string(),
            sent: etag(v),
            current: etag(current),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags() {
        assert_eq!(etag(3), "\"3\"");
        assert_eq!(parse_etag("etag", "\"3\""), Ok(Some(3)));
        assert_eq!(parse_etag("etag", "3"), Ok(Some(3)));
        assert_eq!(parse_etag("etag", ""), Ok(None));
        assert!(parse_etag("etag", "\"x\"").is_err());
        assert!(parse_etag("etag", "\"-1\"").is_err());
    }

    #[test]
    fn version_check() {
        assert!(check_version("risks/x", None, 4).is_ok());
        assert!(check_version("risks/x", Some(4), 4).is_ok());
        assert!(matches!(
            check_version("risks/x", Some(3), 4),
            Err(ApiError::StaleEtag { .. })
        ));
    }
}
