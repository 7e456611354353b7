//! Evidence: an append-only chain of custody.

use assurance_proto::incident::v1 as pb;
use tonic::Code;

use super::*;

crate::on_both_backends!(evidence_keeps_an_append_only_chain_of_custody,);

async fn evidence_keeps_an_append_only_chain_of_custody(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;
    let declared = declare(&app, new_incident("Insider copying design files")).await;
    let other = declare(&app, new_incident("Unrelated")).await;
    let digest = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
    let item = app
        .incidents()
        .create_evidence(pb::CreateEvidenceRequest {
            parent: declared.name.clone(),
            evidence: Some(pb::Evidence {
                description: "Disk image of laptop LT-4411".into(),
                hash: digest.into(),
                location: "evidence-locker-2/shelf-b".into(),
                collector: "ana@example.com".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("add evidence")
        .into_inner();
    assert_eq!(item.hash, digest.to_ascii_lowercase());
    assert_eq!(item.custodian, "ana@example.com");

    let transfer = |to: &str, purpose: &str, location: &str, request_id: &str| {
        let mut client = app.incidents();
        let request = pb::CreateCustodyRecordRequest {
            evidence: item.name.clone(),
            custody_record: Some(pb::CustodyRecord {
                to_custodian: to.into(),
                purpose: purpose.into(),
                location: location.into(),
                ..Default::default()
            }),
            request_id: request_id.into(),
        };
        async move {
            client
                .create_custody_record(request)
                .await
                .map(|r| r.into_inner())
        }
    };
    let to_forensics = transfer("kim@example.com", "forensic imaging", "lab-1", "custody-1")
        .await
        .expect("transfer");
    assert_eq!(
        (to_forensics.sequence, to_forensics.from_custodian.as_str()),
        (2, "ana@example.com")
    );
    assert_eq!(
        transfer("kim@example.com", "forensic imaging", "lab-1", "custody-1")
            .await
            .expect("retry"),
        to_forensics
    );
    transfer("legal@example.com", "legal hold", "", "")
        .await
        .expect("second transfer");
    let err = transfer("", "", "", "").await.expect_err("invalid");
    let mut fields = violations(&err);
    fields.sort();
    assert_eq!(
        fields,
        ["custody_record.purpose", "custody_record.to_custodian"]
    );

    let log = app
        .incidents()
        .list_custody_records(pb::ListCustodyRecordsRequest {
            parent: item.name.clone(),
            ..Default::default()
        })
        .await
        .expect("custody")
        .into_inner()
        .custody_records;
    let paged = super::one_at_a_time(|page_token| {
        let mut client = app.incidents();
        let parent = item.name.clone();
        async move {
            let page = client
                .list_custody_records(pb::ListCustodyRecordsRequest {
                    parent,
                    page_size: 1,
                    page_token,
                    ..Default::default()
                })
                .await
                .expect("a page of custody")
                .into_inner();
            (page.custody_records, page.next_page_token)
        }
    })
    .await;
    assert_eq!(paged, log, "the chain of custody pages in order");
    let chain: Vec<(&str, &str)> = log
        .iter()
        .map(|e| (e.from_custodian.as_str(), e.to_custodian.as_str()))
        .collect();
    assert_eq!(
        chain,
        [
            ("", "ana@example.com"),
            ("ana@example.com", "kim@example.com"),
            ("kim@example.com", "legal@example.com"),
        ]
    );
    let now_held = app
        .incidents()
        .list_evidence(pb::ListEvidenceRequest {
            parent: declared.name.clone(),
            ..Default::default()
        })
        .await
        .expect("list evidence")
        .into_inner()
        .evidence;
    assert_eq!(now_held.len(), 1);
    assert_eq!(now_held[0].custodian, "legal@example.com");
    assert_eq!(now_held[0].location, "lab-1", "the last move's location");

    // Evidence belongs to its incident.
    let foreign = item.name.replace(&declared.name, &other.name);
    let err = app
        .incidents()
        .list_custody_records(pb::ListCustodyRecordsRequest {
            parent: foreign,
            ..Default::default()
        })
        .await
        .expect_err("wrong incident");
    assert_eq!(err.code(), Code::NotFound);
    let err = app
        .incidents()
        .create_evidence(pb::CreateEvidenceRequest {
            parent: declared.name.clone(),
            evidence: Some(pb::Evidence {
                hash: "abc".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect_err("invalid evidence");
    let mut fields = violations(&err);
    fields.sort();
    assert_eq!(
        fields,
        [
            "evidence.collector",
            "evidence.description",
            "evidence.hash",
            "evidence.location"
        ]
    );
}
