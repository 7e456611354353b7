//! `docs/resources.md` is generated from the descriptor set: every resource of the v1 contract
//! with its type, name pattern, methods and fields with their behaviours. This test fails when
//! the page differs from what the protos say; regenerate it with
//! `ASSURANCE_UPDATE_DOCS=1 cargo test -p assurance-tests --test resources`.

use std::{collections::BTreeMap, fmt::Write, path::PathBuf};

use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor,
    Value,
};

fn pool() -> DescriptorPool {
    DescriptorPool::decode(assurance_proto::FILE_DESCRIPTOR_SET).expect("descriptor set")
}

fn extension<'a>(options: &'a DynamicMessage, name: &str) -> Option<&'a Value> {
    options
        .extensions()
        .find(|(ext, _)| ext.full_name() == name)
        .map(|(_, v)| v)
}

/// `(type, patterns)` of a message's `google.api.resource` option.
fn resource(message: &MessageDescriptor) -> Option<(String, Vec<String>)> {
    let options = message.options();
    let Value::Message(r) = extension(&options, "google.api.resource")? else {
        return None;
    };
    let kind = r.get_field_by_name("type")?.as_str()?.to_string();
    let patterns = match r.get_field_by_name("pattern")?.as_ref() {
        Value::List(list) => list
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => vec![],
    };
    Some((kind, patterns))
}

fn behaviours(field: &FieldDescriptor) -> Vec<String> {
    let options = field.options();
    let Some(Value::List(list)) = extension(&options, "google.api.field_behavior") else {
        return vec![];
    };
    let Some(enum_type) = pool().get_enum_by_name("google.api.FieldBehavior") else {
        return vec![];
    };
    list.iter()
        .filter_map(Value::as_enum_number)
        .filter_map(|n| enum_type.get_value(n).map(|v| v.name().to_string()))
        .collect()
}

fn reference(field: &FieldDescriptor) -> Option<String> {
    let options = field.options();
    let Value::Message(r) = extension(&options, "google.api.resource_reference")? else {
        return None;
    };
    for (key, label) in [("type", ""), ("child_type", "parent of ")] {
        if let Some(t) = r
            .get_field_by_name(key)
            .and_then(|v| v.as_str().map(str::to_string))
            && !t.is_empty()
        {
            return Some(format!("{label}{t}"));
        }
    }
    None
}

fn type_name(field: &FieldDescriptor) -> String {
    let base = match field.kind() {
        Kind::Message(m) => m.name().to_string(),
        Kind::Enum(e) => e.name().to_string(),
        other => format!("{other:?}").to_lowercase(),
    };
    if field.is_map() {
        "map".into()
    } else if field.is_list() {
        format!("repeated {base}")
    } else {
        base
    }
}

/// Methods that act on `message`: those returning it, and the List/Delete ones of its
/// collection (by the AIP naming convention).
fn methods_of(pool: &DescriptorPool, message: &MessageDescriptor) -> Vec<MethodDescriptor> {
    let name = message.name();
    pool.services()
        .filter(|s| s.package_name().starts_with("assurance."))
        .flat_map(|s| s.methods().collect::<Vec<_>>())
        .filter(|m| {
            m.output().full_name() == message.full_name() || m.output().fields().any(|f| {
                f.is_list()
                    && matches!(f.kind(), Kind::Message(k) if k.full_name() == message.full_name())
            }) && m.name().starts_with("List") || m.name() == format!("Delete{name}")
        })
        .collect()
}

fn render() -> String {
    let pool = pool();
    let mut by_package: BTreeMap<String, Vec<MessageDescriptor>> = BTreeMap::new();
    for message in pool.all_messages() {
        if message.package_name().starts_with("assurance.") && resource(&message).is_some() {
            by_package
                .entry(message.package_name().to_string())
                .or_default()
                .push(message);
        }
    }
    let mut out = String::from(
        "# Resources of the v1 contract\n\n\
         Generated from the descriptor set by `tests/docs/resources.rs` — do not edit by hand; \
         regenerate with `ASSURANCE_UPDATE_DOCS=1 cargo test -p assurance-tests --test resources`. \
         Every resource with its resource type, name pattern, the methods that return or list \
         it, and its fields with their `google.api.field_behavior` (`REQUIRED`: refused when \
         empty on create; `OUTPUT_ONLY`: set by the server, ignored on input; `IMMUTABLE`: \
         fixed once created; `IDENTIFIER`: the resource's name). The API pages \
         ([risk](api-risk.md), [incident](api-incident.md)) describe the behaviour.\n",
    );
    for (package, mut messages) in by_package {
        messages.sort_by(|a, b| a.name().cmp(b.name()));
        let _ = write!(out, "\n## `{package}`\n");
        for message in messages {
            let Some((kind, patterns)) = resource(&message) else {
                continue;
            };
            let _ = write!(out, "\n### {}\n\n", message.name());
            let patterns: Vec<_> = patterns.iter().map(|p| format!("`{p}`")).collect();
            let _ = writeln!(out, "- type `{kind}`, name {}", patterns.join(", "));
            let methods: Vec<_> = methods_of(&pool, &message)
                .iter()
                .map(|m| {
                    // A service of another package (each serves the audit contract) is named
                    // with its package.
                    let service = m.parent_service();
                    if service.package_name() == message.package_name() {
                        format!("`{}.{}`", service.name(), m.name())
                    } else {
                        let package = service.package_name().trim_start_matches("assurance.");
                        format!("`{package}.{}.{}`", service.name(), m.name())
                    }
                })
                .collect();
            if !methods.is_empty() {
                let _ = writeln!(out, "- methods: {}", methods.join(", "));
            }
            out.push_str("\n| field | type | behaviour | references |\n|---|---|---|---|\n");
            for field in message.fields() {
                let _ = writeln!(
                    out,
                    "| `{}` | {} | {} | {} |",
                    field.name(),
                    type_name(&field),
                    behaviours(&field).join(", "),
                    reference(&field)
                        .map(|r| format!("`{r}`"))
                        .unwrap_or_default()
                );
            }
        }
    }
    out
}

#[test]
fn resources_page_is_generated_from_the_descriptors() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/resources.md");
    let expected = render();
    if std::env::var_os("ASSURANCE_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &expected).expect("write docs/resources.md");
        return;
    }
    let actual = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        actual == expected,
        "docs/resources.md is not what the protos say; regenerate it with \
         ASSURANCE_UPDATE_DOCS=1 cargo test -p assurance-tests --test resources"
    );
}
