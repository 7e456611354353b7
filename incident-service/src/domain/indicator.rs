//! Indicators of compromise: types, Traffic Light Protocol labels, and normalisation so that
//! one indicator has one spelling and a cross-incident lookup finds it however it was pasted
//! (upper case, trailing dot, "defanged" as `hxxp://evil[.]example`).

use std::net::IpAddr;

numbered! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum IndicatorType {
        Ip = 1 => "IP",
        Domain = 2 => "DOMAIN",
        Url = 3 => "URL",
        /// MD5, SHA-1, SHA-256 or SHA-512, told apart by length.
        FileHash = 4 => "FILE_HASH",
        Email = 5 => "EMAIL",
        FileName = 6 => "FILE_NAME",
        Other = 7 => "OTHER",
    }
}

numbered! {
    /// TLP 2.0 sharing labels.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub enum Tlp {
        Clear = 1 => "CLEAR",
        Green = 2 => "GREEN",
        Amber = 3 => "AMBER",
        AmberStrict = 4 => "AMBER_STRICT",
        Red = 5 => "RED",
    }
}

const MAX_VALUE: usize = 2048;

/// Undoes the usual defanging: `[.]`, `(.)`, `[dot]`, `[@]`, `[at]`, `hxxp`, `[:]`.
fn refang(value: &str) -> String {
    let mut v = value.trim().to_string();
    for (from, to) in [
        ("[.]", "."),
        ("(.)", "."),
        ("[dot]", "."),
        ("[@]", "@"),
        ("[at]", "@"),
        ("[:]", ":"),
        ("[://]", "://"),
    ] {
        v = v.replace(from, to);
    }
    for (from, to) in [
        ("hxxps://", "https://"),
        ("hxxp://", "http://"),
        ("fxp://", "ftp://"),
    ] {
        if v.to_ascii_lowercase().starts_with(from) {
            v = format!("{to}{}", &v[from.len()..]);
        }
    }
    v
}

fn domain(value: &str) -> Result<String, String> {
    let d = value.trim_end_matches('.').to_ascii_lowercase();
    let labels_ok = !d.is_empty()
        && d.len() <= 253
        && d.contains('.')
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        });
    if labels_ok {
        Ok(d)
    } else {
        Err(format!(
            "`{value}` is not a domain name (use punycode for international names)"
        ))
    }
}

/// The canonical form of an indicator value of `kind`, or why it is not one.
pub fn normalize(kind: IndicatorType, value: &str) -> Result<String, String> {
    if value.trim().is_empty() {
        return Err("is required".into());
    }
    if value.len() > MAX_VALUE {
        return Err(format!("must be at most {MAX_VALUE} bytes"));
    }
    if value.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    let v = refang(value);
    match kind {
        IndicatorType::Ip => v
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .map(|ip| ip.to_string())
            .map_err(|_| format!("`{value}` is not an IPv4 or IPv6 address")),
        IndicatorType::Domain => domain(&v),
        IndicatorType::Url => {
            let (scheme, rest) = v
                .split_once("://")
                .ok_or_else(|| format!("`{value}` is not a URL (scheme://host/…)"))?;
            let scheme = scheme.to_ascii_lowercase();
            if scheme.is_empty()
                || !scheme
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
            {
                return Err(format!("`{value}` has no valid URL scheme"));
            }
            let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let (authority, path) = rest.split_at(split);
            let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            if host_port.is_empty() {
                return Err(format!("`{value}` has no host"));
            }
            let userinfo = &authority[..authority.len() - host_port.len()];
            // Hosts are case-insensitive; paths and queries are not.
            Ok(format!(
                "{scheme}://{userinfo}{}{path}",
                host_port.to_ascii_lowercase()
            ))
        }
        IndicatorType::FileHash => {
            let h = v.to_ascii_lowercase();
            let hex = h.bytes().all(|c| c.is_ascii_hexdigit());
            if hex && matches!(h.len(), 32 | 40 | 64 | 128) {
                Ok(h)
            } else {
                Err(format!(
                    "`{value}` is not an MD5, SHA-1, SHA-256 or SHA-512 hex digest"
                ))
            }
        }
        IndicatorType::Email => {
            let (local, host) = v
                .rsplit_once('@')
                .ok_or_else(|| format!("`{value}` is not an email address"))?;
            if local.is_empty() || local.chars().any(char::is_whitespace) {
                return Err(format!("`{value}` is not an email address"));
            }
            Ok(format!("{}@{}", local.to_lowercase(), domain(host)?))
        }
        IndicatorType::FileName | IndicatorType::Other => Ok(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use IndicatorType as T;
    use proptest::prelude::*;

    #[test]
    fn canonical_forms() {
        assert_eq!(normalize(T::Ip, " 10.0.0.1 "), Ok("10.0.0.1".into()));
        assert_eq!(
            normalize(T::Ip, "2001:DB8:0:0::1"),
            Ok("2001:db8::1".into())
        );
        assert_eq!(
            normalize(T::Ip, "198.51.100[.]7"),
            Ok("198.51.100.7".into())
        );
        assert!(normalize(T::Ip, "300.1.1.1").is_err());
        assert_eq!(
            normalize(T::Domain, "Evil.Example.COM."),
            Ok("evil.example.com".into())
        );
        assert_eq!(
            normalize(T::Domain, "evil[.]example[.]com"),
            Ok("evil.example.com".into())
        );
        assert!(normalize(T::Domain, "localhost").is_err());
        assert!(normalize(T::Domain, "-bad.example").is_err());
        assert_eq!(
            normalize(T::Url, "hxxps://Evil.Example[.]com/Path?Q=1"),
            Ok("https://evil.example.com/Path?Q=1".into())
        );
        assert_eq!(
            normalize(T::Url, "HTTP://User@Host.Example:8080"),
            Ok("http://User@host.example:8080".into())
        );
        assert!(normalize(T::Url, "evil.example.com/x").is_err());
        assert_eq!(
            normalize(T::FileHash, "D41D8CD98F00B204E9800998ECF8427E"),
            Ok("d41d8cd98f00b204e9800998ecf8427e".into())
        );
        assert!(normalize(T::FileHash, "abc").is_err());
        assert_eq!(
            normalize(T::Email, "Phisher[@]Evil[.]Example"),
            Ok("phisher@evil.example".into())
        );
        assert!(normalize(T::Email, "nobody").is_err());
        assert_eq!(
            normalize(T::FileName, "  Invoice.PDF.exe "),
            Ok("Invoice.PDF.exe".into())
        );
        assert!(normalize(T::Other, "   ").is_err());
        assert!(normalize(T::Other, "a\u{0}b").is_err());
    }

    proptest! {
        #[test]
        fn normalising_twice_changes_nothing(s in "\\PC{0,80}", k in 0usize..7) {
            let kind = [T::Ip, T::Domain, T::Url, T::FileHash, T::Email, T::FileName, T::Other][k];
            if let Ok(once) = normalize(kind, &s) {
                prop_assert_eq!(normalize(kind, &once), Ok(once.clone()));
            }
        }

        #[test]
        fn any_ipv4_round_trips(a in any::<[u8; 4]>()) {
            let text = format!("{}.{}.{}.{}", a[0], a[1], a[2], a[3]);
            prop_assert_eq!(normalize(T::Ip, &text), Ok(text.clone()));
        }
    }
}
