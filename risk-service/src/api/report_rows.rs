//! `RiskSummaryService.ListReportRisks`: the open risks of some services as compact rows, in
//! keyset pages — what the gateway freezes into a formal report, so that each figure of the
//! report's posture can be recounted from its rows.

use std::collections::BTreeSet;

use assurance_proto::risk::v1 as pb;
use assurance_runtime::{
    ApiError, ApiResult,
    auth::Caller,
    page,
    time::{Clock, to_timestamp},
    validate::{Violations, slug_name},
};
use uuid::Uuid;

use super::summary::MAX_GROUP_SERVICES;
use crate::store::{
    Store,
    report_rows::{After, ReportRow},
};

/// Rows per page when the request says 0, and the most.
const MAX_ROWS: u64 = 1000;

fn row(r: ReportRow) -> pb::ReportRiskRow {
    pb::ReportRiskRow {
        risk: format!("risks/{}", r.id),
        title: r.title,
        service: format!("services/{}", r.service_id),
        owner: r.owner,
        status: r.status,
        assessed: r.assessed,
        impact: r.impact,
        likelihood: r.likelihood,
        score: r.score,
        severity: r.severity,
        strategy: r.strategy,
        scoring_policy: r.policy_id,
        assess_time: r.assess_time.map(to_timestamp),
        response_decision: r.response_decision.unwrap_or_default(),
        response_state: r.response_state.unwrap_or_default(),
        treated: r.treated,
        action_items: i32::try_from(r.action_items).unwrap_or(i32::MAX),
        action_items_closed: i32::try_from(r.action_items_closed).unwrap_or(i32::MAX),
        action_items_overdue: i32::try_from(r.action_items_overdue).unwrap_or(i32::MAX),
        next_review_time: r.next_review_time.map(to_timestamp),
        create_time: Some(to_timestamp(r.create_time)),
    }
}

/// `ListReportRisks` for `caller`.
pub(super) async fn list(
    store: &Store,
    clock: &Clock,
    caller: &Caller,
    req: &pb::ListReportRisksRequest,
) -> ApiResult<pb::ListReportRisksResponse> {
    let mut v = Violations::new();
    if req.services.is_empty() {
        v.add("services", "is required");
    } else if req.services.len() > MAX_GROUP_SERVICES {
        v.add(
            "services",
            format!(
                "must name at most {MAX_GROUP_SERVICES} services (got {})",
                req.services.len()
            ),
        );
    }
    let mut services = BTreeSet::new();
    for (i, name) in req.services.iter().enumerate().take(MAX_GROUP_SERVICES) {
        if let Some(id) = slug_name(&mut v, &format!("services[{i}]"), name, "services") {
            services.insert(id.to_string());
        }
    }
    if req.page_size < 0 {
        v.add("page_size", "must not be negative");
    }
    v.finish()?;
    if let Some(own) = &caller.principal.services
        && let Some(foreign) = services.iter().find(|s| !own.iter().any(|o| o == *s))
    {
        return Err(ApiError::PermissionDenied(format!(
            "{} may list only its own services' risks; not services/{foreign}",
            caller.principal.subject
        )));
    }
    let size = match u64::try_from(req.page_size).unwrap_or(0) {
        0 => MAX_ROWS,
        n => n.min(MAX_ROWS),
    };
    let services: Vec<String> = services.into_iter().collect();
    let mut parts = vec!["ListReportRisks"];
    parts.extend(services.iter().map(String::as_str));
    let fingerprint = page::query_fingerprint(&parts);
    let after: Option<After> =
        match page::decode("page_token", &req.page_token, &fingerprint, 3)?.as_deref() {
            None => None,
            Some(
                [
                    page::Key::Text(service),
                    page::Key::Int(time),
                    page::Key::Text(id),
                ],
            ) => {
                let id = Uuid::parse_str(id).map_err(|_| {
                    ApiError::invalid("page_token", "is not a page token issued by this service")
                })?;
                Some((service.clone(), *time, id))
            }
            Some(_) => {
                return Err(ApiError::invalid(
                    "page_token",
                    "is not a page token issued by this service",
                ));
            }
        };
    let mut rows = store
        .report_rows(&services, after.as_ref(), size + 1, clock.now_micros())
        .await?;
    let next_page_token = page::finish(&mut rows, size, &fingerprint, |r| {
        vec![
            page::Key::Text(r.service_id.clone()),
            page::Key::Int(r.create_time),
            page::Key::Text(r.id.to_string()),
        ]
    });
    Ok(pb::ListReportRisksResponse {
        rows: rows.into_iter().map(row).collect(),
        next_page_token,
    })
}
