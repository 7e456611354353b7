//! Pure rules of the risk-management program: scoring, the status machines (risks,
//! exceptions), approvals, reviews and the shape of labels. Nothing here knows about gRPC or
//! SQL.

/// Gives a domain enum numbered like its `assurance.risk.v1` counterpart — the number is what
/// the database stores — `ALL`, `NAMES`, `as_str` (the proto name without its prefix), `TryFrom<i32>`
/// (refusing 0 and unknown numbers) and `From<_> for i32`.
macro_rules! numbered {
    ($name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        assurance_runtime::enum_names!($name { $($variant => $text),+ });

        impl TryFrom<i32> for $name {
            type Error = i32;

            fn try_from(number: i32) -> Result<Self, i32> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|v| *v as i32 == number)
                    .ok_or(number)
            }
        }

        impl From<$name> for i32 {
            fn from(v: $name) -> i32 {
                v as i32
            }
        }
    };
}

pub mod appetite;
pub mod controls;
pub mod effectiveness;
pub mod exceptions;
pub mod governance;
pub mod register;
pub mod reviews;
pub mod scoring;
pub mod status;

use std::collections::BTreeMap;

use assurance_runtime::validate::Violations;

pub const MAX_LABELS: usize = 64;

/// Labels: at most 64; keys `[a-z][a-z0-9_-]{0,62}`; values up to 63 of `[a-z0-9_-]`.
pub fn check_labels(v: &mut Violations, field: &str, labels: &BTreeMap<String, String>) {
    if labels.len() > MAX_LABELS {
        v.add(field, format!("must have at most {MAX_LABELS} entries"));
    }
    for (key, value) in labels {
        let key_ok = key.len() <= 63
            && key.starts_with(|c: char| c.is_ascii_lowercase())
            && key
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-');
        if !key_ok {
            v.add(
                format!("{field}[{key}]"),
                "key must start with a lowercase letter and hold at most 63 of a-z 0-9 _ -",
            );
        }
        let value_ok = value.len() <= 63
            && value
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-');
        if !value_ok {
            v.add(
                format!("{field}[{key}]"),
                "value must hold at most 63 of a-z 0-9 _ -",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use assurance_runtime::ApiError;

    #[test]
    fn labels() {
        let mut ok = BTreeMap::new();
        ok.insert("env".to_string(), "prod".to_string());
        ok.insert("team_x".to_string(), String::new());
        let mut v = Violations::new();
        check_labels(&mut v, "risk.labels", &ok);
        assert!(v.is_empty());

        let mut bad = BTreeMap::new();
        bad.insert("Env".to_string(), "prod".to_string());
        bad.insert("env".to_string(), "Prod Value".to_string());
        let mut v = Violations::new();
        check_labels(&mut v, "risk.labels", &bad);
        let Err(ApiError::InvalidArgument(list)) = v.finish() else {
            panic!("expected violations")
        };
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].field, "risk.labels[Env]");
    }
}
