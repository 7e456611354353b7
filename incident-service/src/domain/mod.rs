//! Pure rules of incident response; nothing here knows about gRPC or SQL.

/// Declares a domain enum numbered like its `assurance.incident.v1` counterpart — the number is
/// what the database stores — and gives it `ALL`, `NAMES` and `as_str` (the proto name without
/// its prefix). `TryFrom<i32>` (refusing 0 and unknown numbers) comes from `api::convert`.
macro_rules! numbered {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $($(#[$doc:meta])* $variant:ident = $number:literal => $text:literal),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        pub enum $name {
            $($(#[$doc])* $variant = $number),+
        }

        assurance_runtime::enum_names!($name { $($variant => $text),+ });
    };
}

pub mod indicator;
pub mod metrics;
pub mod notification;
pub mod phase;
pub mod preparation;
pub mod priority;
pub mod role;
pub mod task;
pub mod timeline;
