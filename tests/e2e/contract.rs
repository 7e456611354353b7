//! The server agrees with the contract's field behaviours (`google.api.field_behavior`), over
//! every unary RPC of the descriptor set, through the embedded gateway as `admin` (approvals,
//! which admin may not make, as the first role that may):
//! - an empty request is refused with INVALID_ARGUMENT naming every top-level `REQUIRED` field;
//! - with every `REQUIRED` message field present but empty (recursively), the violations name
//!   every `REQUIRED` field inside them (in `Update*` methods a resource field is required only
//!   when the mask names it, so only the top level is checked there);
//! - filling every `OUTPUT_ONLY` field of that request changes nothing: output-only fields are
//!   never validated, never satisfy a requirement.

use std::collections::BTreeSet;

use assurance_runtime::auth::client::Bearer;
use assurance_tests::raw::RawCodec;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor,
    ReflectMessage, Value,
};
use tonic::{Code, transport::Channel};

use crate::helpers::*;

const REQUIRED: i32 = 2;
const OUTPUT_ONLY: i32 = 3;

fn pool() -> DescriptorPool {
    DescriptorPool::decode(assurance_proto::FILE_DESCRIPTOR_SET).expect("descriptor set")
}

/// The `google.api.field_behavior` values of `field`.
fn behaviours(field: &FieldDescriptor) -> Vec<i32> {
    let options = field.options();
    options
        .extensions()
        .filter(|(ext, _)| ext.full_name() == "google.api.field_behavior")
        .flat_map(|(_, value)| match value {
            Value::List(list) => list.iter().filter_map(Value::as_enum_number).collect(),
            Value::EnumNumber(n) => vec![*n],
            _ => vec![],
        })
        .collect()
}

fn has(field: &FieldDescriptor, behaviour: i32) -> bool {
    behaviours(field).contains(&behaviour)
}

fn is_message(field: &FieldDescriptor) -> Option<MessageDescriptor> {
    match field.kind() {
        Kind::Message(m) if !field.is_list() && !field.is_map() && !is_well_known(&m) => Some(m),
        _ => None,
    }
}

fn is_well_known(m: &MessageDescriptor) -> bool {
    m.package_name() == "google.protobuf"
}

/// Every unary method of the Assurance services.
fn methods(pool: &DescriptorPool) -> Vec<MethodDescriptor> {
    pool.services()
        .filter(|s| s.package_name().starts_with("assurance."))
        .flat_map(|s| s.methods().collect::<Vec<_>>())
        .filter(|m| !m.is_server_streaming() && !m.is_client_streaming())
        .collect()
}

/// The request with every REQUIRED message field set to an empty message, recursively
/// (`deep`), and the REQUIRED paths it should be refused for.
fn skeleton(
    message: &MessageDescriptor,
    prefix: &str,
    deep: bool,
) -> (DynamicMessage, Vec<String>) {
    let mut msg = DynamicMessage::new(message.clone());
    let mut required = Vec::new();
    for field in message.fields() {
        if !has(&field, REQUIRED) {
            continue;
        }
        let path = format!("{prefix}{}", field.name());
        if let (Some(inner), true) = (is_message(&field), deep || prefix.is_empty()) {
            let (child, child_required) = if deep {
                skeleton(&inner, &format!("{path}."), deep)
            } else {
                (DynamicMessage::new(inner), vec![])
            };
            msg.set_field(&field, Value::Message(child));
            required.extend(child_required);
        } else {
            required.push(path);
        }
    }
    (msg, required)
}

/// `msg` with a value in every OUTPUT_ONLY field of it and of its set message fields.
fn fill_output_only(msg: &mut DynamicMessage) {
    let descriptor = msg.descriptor();
    for field in descriptor.fields() {
        if has(&field, OUTPUT_ONLY) {
            if let Some(value) = sample(&field) {
                msg.set_field(&field, value);
            }
        } else if is_message(&field).is_some()
            && msg.has_field(&field)
            && let Value::Message(inner) = msg.get_field_mut(&field)
        {
            fill_output_only(inner);
        }
    }
}

fn sample(field: &FieldDescriptor) -> Option<Value> {
    let one = match field.kind() {
        Kind::String => Value::String("output-only".into()),
        Kind::Bool => Value::Bool(true),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(7),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(7),
        Kind::Uint32 | Kind::Fixed32 => Value::U32(7),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(7),
        Kind::Double => Value::F64(7.0),
        Kind::Float => Value::F32(7.0),
        Kind::Enum(e) => Value::EnumNumber(e.values().map(|v| v.number()).max().unwrap_or(0)),
        Kind::Message(m) if m.full_name() == "google.protobuf.Timestamp" => {
            let mut ts = DynamicMessage::new(m.clone());
            ts.set_field_by_name("seconds", Value::I64(1_700_000_000));
            Value::Message(ts)
        }
        Kind::Message(m) => Value::Message(DynamicMessage::new(m)),
        Kind::Bytes => Value::Bytes(bytes::Bytes::from_static(b"x")),
    };
    if field.is_map() {
        return None;
    }
    Some(if field.is_list() {
        Value::List(vec![one])
    } else {
        one
    })
}

/// Sends `msg` to `method`: the violations' field paths, or why the answer is not a refusal.
async fn refused_fields(
    channel: &Bearer<Channel>,
    method: &MethodDescriptor,
    msg: &DynamicMessage,
) -> Result<BTreeSet<String>, String> {
    use prost::Message;
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.map_err(|e| e.to_string())?;
    let path = format!("/{}/{}", method.parent_service().full_name(), method.name());
    let path = http::uri::PathAndQuery::try_from(path).map_err(|e| e.to_string())?;
    let body = bytes::Bytes::from(msg.encode_to_vec());
    match grpc
        .unary::<_, bytes::Bytes, _>(tonic::Request::new(body), path, RawCodec)
        .await
    {
        Ok(_) => Err("accepted".into()),
        Err(s) if s.code() == Code::InvalidArgument => Ok(violations(&s).into_iter().collect()),
        Err(s) => Err(format!("{:?}: {}", s.code(), s.message())),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_agrees_with_the_field_behaviours() {
    let db = TestDb::new(Backend::Sqlite).await;
    let app = embedded_gateway(&db, Backend::Sqlite).await;
    let pool = pool();
    let mut failures = Vec::new();
    let mut checked = 0;
    for method in methods(&pool) {
        let input = method.input();
        let name = format!("{}/{}", method.parent_service().name(), method.name());
        let top: Vec<String> = input
            .fields()
            .filter(|f| has(f, REQUIRED))
            .map(|f| f.name().to_string())
            .collect();
        if top.is_empty() {
            continue;
        }
        checked += 1;
        // As `admin`, or where admin may not call (approvals), as the first role that may.
        let path = format!("/{}/{}", method.parent_service().full_name(), method.name());
        let allowed = assurance_runtime::auth::matrix::allowed(&path);
        let who = assurance_runtime::auth::Role::ALL
            .into_iter()
            .find(|r| allowed.contains(*r))
            .filter(|_| !allowed.contains(assurance_runtime::auth::Role::Admin))
            .map_or("admin", |r| r.as_str());
        let admin = app.channel_as(who);
        // (a) empty
        match refused_fields(&admin, &method, &DynamicMessage::new(input.clone())).await {
            Ok(seen) => {
                let missing: Vec<_> = top.iter().filter(|f| !seen.contains(*f)).collect();
                if !missing.is_empty() {
                    failures.push(format!(
                        "{name}: empty request: REQUIRED {missing:?} not named (named {seen:?})"
                    ));
                }
            }
            Err(why) => failures.push(format!("{name}: empty request: {why}")),
        }
        // (b) REQUIRED messages present but empty
        let deep = !method.name().starts_with("Update");
        let (skeleton, required) = skeleton(&input, "", deep);
        let seen = match refused_fields(&admin, &method, &skeleton).await {
            Ok(seen) => seen,
            Err(why) => {
                failures.push(format!("{name}: skeleton request: {why}"));
                continue;
            }
        };
        let missing: Vec<_> = required.iter().filter(|f| !seen.contains(*f)).collect();
        if !missing.is_empty() {
            failures.push(format!(
                "{name}: REQUIRED {missing:?} not named (named {seen:?})"
            ));
        }
        // (c) plus every OUTPUT_ONLY field
        let mut filled = skeleton.clone();
        fill_output_only(&mut filled);
        match refused_fields(&admin, &method, &filled).await {
            Ok(with_output) if with_output == seen => {}
            Ok(with_output) => failures.push(format!(
                "{name}: OUTPUT_ONLY fields changed the violations: {seen:?} -> {with_output:?}"
            )),
            Err(why) => failures.push(format!("{name}: with OUTPUT_ONLY fields: {why}")),
        }
    }
    eprintln!("field behaviours checked on {checked} methods");
    assert!(checked >= 1, "no method has a REQUIRED field");
    assert!(
        failures.is_empty(),
        "{} of {checked} methods disagree with their field behaviours:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
