//! AIP rules buf's lint does not check, over the reflected descriptor set:
//! - every `List*` method pages (AIP-158): `page_size` and `page_token` in, `next_page_token` out;
//! - every create-like method takes a `request_id` (AIP-155);
//! - every resource (a message whose first field is its `name`) has a standard `Get` (AIP-131).
//!   The resources that do not have one yet are listed below; issue #11 empties the list, and
//!   a new resource without a `Get` fails this test.

use std::collections::BTreeSet;

use prost::Message;
use prost_types::{
    DescriptorProto, FileDescriptorSet, MethodDescriptorProto,
    field_descriptor_proto::{Label, Type},
};

/// Resources without a standard Get today (issue #11, "Complete resources").
const WITHOUT_GET_YET: &[&str] = &[];

/// Messages named like resources that are not: a rendered export is not stored or addressable.
/// A notification rule is configuration from the preparation file: its `name` is a label.
/// A work item is the gateway's view of an action item or a follow-up: its `name` is theirs.
const NOT_RESOURCES: &[&str] = &[
    "assurance.gateway.v1.WorkItem",
    "assurance.incident.v1.IncidentReport",
    "assurance.incident.v1.NotificationRule",
];

/// Verbs of methods that create a resource (the names issue #11 renames to `Create*` included).
const CREATE_VERBS: &[&str] = &[
    "Create", "Declare", "Add", "Record", "Set", "Request", "Open",
];

struct Contract {
    messages: Vec<(String, DescriptorProto)>,
    methods: Vec<(String, MethodDescriptorProto)>,
}

fn contract() -> Contract {
    let set = FileDescriptorSet::decode(assurance_proto::FILE_DESCRIPTOR_SET).expect("descriptors");
    let mut messages = Vec::new();
    let mut methods = Vec::new();
    for file in set.file {
        let package = file.package().to_string();
        // Only our contract: imported google.* files (descriptor.proto comes with the
        // google.api annotations) are not subject to these rules.
        if !package.starts_with("assurance.") {
            continue;
        }
        for m in file.message_type {
            messages.push((format!("{package}.{}", m.name()), m));
        }
        for service in file.service {
            let name = format!("{package}.{}", service.name());
            for method in service.method {
                methods.push((name.clone(), method));
            }
        }
    }
    Contract { messages, methods }
}

impl Contract {
    fn message(&self, type_name: &str) -> &DescriptorProto {
        let name = type_name.trim_start_matches('.');
        self.messages
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, m)| m)
            .unwrap_or_else(|| panic!("no message {name}"))
    }

    fn has_field(&self, type_name: &str, field: &str, kind: Type) -> bool {
        self.message(type_name)
            .field
            .iter()
            .any(|f| f.name() == field && f.r#type() == kind && f.label() != Label::Repeated)
    }
}

#[test]
fn every_list_pages() {
    let c = contract();
    let mut missing = Vec::new();
    for (service, m) in &c.methods {
        if !m.name().starts_with("List") {
            continue;
        }
        let input = m.input_type();
        let output = m.output_type();
        if !c.has_field(input, "page_size", Type::Int32)
            || !c.has_field(input, "page_token", Type::String)
            || !c.has_field(output, "next_page_token", Type::String)
        {
            missing.push(format!("{service}/{}", m.name()));
        }
    }
    assert!(
        missing.is_empty(),
        "lists without page_size/page_token/next_page_token: {missing:?}"
    );
}

#[test]
fn every_create_like_method_takes_a_request_id() {
    let c = contract();
    let mut missing = Vec::new();
    for (service, m) in &c.methods {
        let creates = CREATE_VERBS.iter().any(|verb| {
            m.name()
                .strip_prefix(verb)
                .is_some_and(|rest| rest.starts_with(|ch: char| ch.is_ascii_uppercase()))
        });
        if creates && !c.has_field(m.input_type(), "request_id", Type::String) {
            missing.push(format!("{service}/{}", m.name()));
        }
    }
    assert!(
        missing.is_empty(),
        "create-like methods without request_id: {missing:?}"
    );
}

#[test]
fn every_resource_has_a_standard_get_or_is_listed_as_missing_one() {
    let c = contract();
    let resources: BTreeSet<&str> = c
        .messages
        .iter()
        .filter(|(n, m)| {
            // Google's own protos (descriptor.proto comes in with the google.api annotations)
            // are not Assurance resources.
            !n.starts_with("google.")
                && !n.ends_with("Request")
                && !n.ends_with("Response")
                && !NOT_RESOURCES.contains(&n.as_str())
                && m.field.first().is_some_and(|f| {
                    f.name() == "name" && f.number() == 1 && f.r#type() == Type::String
                })
        })
        .map(|(n, _)| n.as_str())
        .collect();
    let with_get: BTreeSet<&str> = c
        .methods
        .iter()
        .filter(|(_, m)| m.name().starts_with("Get"))
        .map(|(_, m)| m.output_type().trim_start_matches('.'))
        .collect();
    let without: BTreeSet<&str> = resources.difference(&with_get).copied().collect();
    let listed: BTreeSet<&str> = WITHOUT_GET_YET.iter().copied().collect();
    assert_eq!(
        without, listed,
        "resources without a standard Get differ from WITHOUT_GET_YET: add the Get (and remove the \
         resource from the list), never a new resource without one"
    );
}
