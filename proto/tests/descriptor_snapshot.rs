//! The wire contract is unchanged by refactors: the reflected descriptor set, with comments
//! and source locations removed, equals the snapshot committed in `proto/snapshot/`.
//!
//! A deliberate contract change replaces the snapshot in the same commit, saying why:
//! `ASSURANCE_UPDATE_DESCRIPTOR_SNAPSHOT=1 cargo test -p assurance-proto --test descriptor_snapshot`.

use prost::Message;
use prost_types::FileDescriptorSet;

const SNAPSHOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/snapshot/descriptor.binpb");

/// The descriptor set without what comments and formatting change.
fn contract(bytes: &[u8]) -> FileDescriptorSet {
    let mut set = FileDescriptorSet::decode(bytes).expect("a FileDescriptorSet");
    for file in &mut set.file {
        file.source_code_info = None;
    }
    set.file.sort_by(|a, b| a.name.cmp(&b.name));
    set
}

#[test]
fn reflected_contract_matches_the_snapshot() {
    let current = contract(assurance_proto::FILE_DESCRIPTOR_SET);
    if std::env::var_os("ASSURANCE_UPDATE_DESCRIPTOR_SNAPSHOT").is_some() {
        std::fs::write(SNAPSHOT, current.encode_to_vec()).expect("write the snapshot");
    }
    let snapshot = contract(&std::fs::read(SNAPSHOT).expect("the committed snapshot"));
    let names = |s: &FileDescriptorSet| {
        s.file
            .iter()
            .map(|f| f.name().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&current), names(&snapshot), "proto files differ");
    for (now, then) in current.file.iter().zip(&snapshot.file) {
        assert!(
            now == then,
            "{} differs from the committed contract snapshot (packages, services, methods, \
             messages and field numbers must not change in a refactor):\nnow: {now:#?}\nsnapshot: {then:#?}",
            now.name()
        );
    }
}
