//! `assurance.gateway.v1.ReportService`: formal reports. CreateReport freezes a scope's
//! posture (`PostureApi::compute`) and every open risk it counts (risk-service's
//! `ListReportRisks`) into a DRAFT; each service in scope confirms; an ERM executive signs the
//! VERIFIED report off, which renders and stores its four exports; ExportReport streams them.

mod access;
mod export;
pub mod render;

use std::collections::{BTreeMap, BTreeSet};

use assurance_proto::{
    gateway::v1::{
        ConfirmReportRequest, CreateReportRequest, ExportReportRequest, GetReportRequest,
        ListReportsRequest, ListReportsResponse, NodeKind, Posture, PostureNode,
        RejectReportRequest, Report, ReportConfirmation, ReportExport, ReportFormat, ReportState,
        SignOffReportRequest, report_service_server::ReportService,
    },
    risk::v1::ListReportRisksRequest,
};
use assurance_runtime::{
    ApiError, ApiResult, Reason,
    auth::{Caller, Role, same_principal},
    etag,
    idempotency::{self, Outcome, RequestKey},
    page,
    time::{Clock, from_timestamp, to_timestamp},
    validate::{Violations, name_id, slug_name},
};
use prost::Message;
use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status};

use crate::{
    posture::{
        PostureApi,
        appetite::Scope,
        upstream::{OnBehalf, Upstreams},
    },
    store::{
        Store,
        report::{self as stored, ReportFilter, ReportService as InScope},
    },
};
use render::Document;

/// Rows asked of risk-service per page.
const ROWS_PER_CALL: i32 = 1000;
/// Services per `ListReportRisks` request (its limit).
const SERVICES_PER_CALL: usize = 5000;
/// Attempts at freezing a consistent posture and rows while the register changes.
const FREEZE_ATTEMPTS: usize = 3;
const MAX_TITLE: usize = 200;
const MAX_NOTE: usize = 2000;

/// Serves `ReportService` over the gateway's store.
#[derive(Clone)]
pub struct ReportApi {
    store: Store,
    posture: PostureApi,
    upstreams: Upstreams,
    clock: Clock,
    /// Top risks per node of the frozen posture.
    top_n: i32,
}

impl ReportApi {
    pub fn new(
        store: Store,
        posture: PostureApi,
        upstreams: Upstreams,
        clock: Clock,
        top_n: u32,
    ) -> ReportApi {
        ReportApi {
            store,
            posture,
            upstreams,
            clock,
            top_n: i32::try_from(top_n).unwrap_or(100).clamp(1, 100),
        }
    }
}

/// The caller and the credential it presented, for the calls made on its behalf.
fn on_behalf<T>(request: &Request<T>) -> ApiResult<OnBehalf> {
    Ok(OnBehalf {
        caller: Caller::of(request)?,
        authorization: request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    })
}

/// The id of a report name, or a violation of `field`.
fn report_id<'a>(v: &mut Violations, field: &str, name: &'a str) -> Option<&'a str> {
    if name.is_empty() {
        v.add(field, "is required");
        return None;
    }
    let id = name_id(name, "reports").filter(|id| uuid::Uuid::parse_str(id).is_ok());
    if id.is_none() {
        v.add(field, "must be `reports/{id}`, the name of a report");
    }
    id
}

fn state_name(state: i32) -> &'static str {
    ReportState::try_from(state)
        .map(|s| s.as_str_name().trim_start_matches("REPORT_STATE_"))
        .unwrap_or("UNKNOWN")
}

/// FAILED_PRECONDITION unless `report` is in one of `from` (a signed report never changes).
fn check_state(report: &stored::Report, action: &str, from: &[ReportState]) -> ApiResult<()> {
    if from.iter().any(|s| *s as i32 == report.state) {
        return Ok(());
    }
    let allowed: &[&str] = match ReportState::try_from(report.state) {
        Ok(ReportState::Draft) => &["ConfirmReport", "RejectReport"],
        Ok(ReportState::Verified) => &["SignOffReport", "RejectReport"],
        _ => &[],
    };
    Err(ApiError::illegal_move(
        Reason::IllegalTransition,
        format!(
            "{} is {}: cannot {action}",
            stored::name(&report.id),
            state_name(report.state)
        ),
        state_name(report.state),
        allowed,
    ))
}

/// Every service node of the tree, with whether it has a contributing risk or incident.
fn service_nodes(posture: &Posture) -> Vec<(String, bool, i64)> {
    fn walk(node: &PostureNode, out: &mut Vec<(String, bool, i64)>) {
        if node.kind == NodeKind::Service as i32 {
            let risks = node.risks.as_ref().map(|r| r.open_risks).unwrap_or(0);
            let incidents = node
                .incidents
                .as_ref()
                .map(|i| i.open_incidents + i.kpis.as_ref().map(|k| k.count).unwrap_or(0))
                .unwrap_or(0);
            out.push((node.scope.clone(), risks > 0 || incidents > 0, risks));
        }
        node.children.iter().for_each(|c| walk(c, out));
    }
    let mut out = Vec::new();
    if let Some(root) = &posture.root {
        walk(root, &mut out);
    }
    out.sort();
    out
}

/// The rows of a frozen report as they will be stored, and what they add up to.
struct Frozen {
    rows: Vec<(String, Vec<u8>)>,
    hash: String,
    policies: BTreeSet<String>,
}

/// A stored report as its resource: its services in scope with their confirmations, its
/// exports; with its posture when `posture` is set.
fn resource(
    report: &stored::Report,
    services: &[InScope],
    exports: &[stored::report_export::Model],
    posture: bool,
) -> ApiResult<Report> {
    let frozen = if posture {
        Some(
            Posture::decode(report.posture.as_slice())
                .map_err(|e| ApiError::Internal(format!("stored posture: {e}")))?,
        )
    } else {
        None
    };
    Ok(Report {
        name: stored::name(&report.id),
        scope: report.scope.clone(),
        title: report.title.clone(),
        period_start: Some(to_timestamp(report.period_start)),
        period_end: Some(to_timestamp(report.period_end)),
        state: report.state,
        content_hash: report.content_hash.clone(),
        posture: frozen,
        risk_count: report.risk_count,
        scoring_policies: report
            .scoring_policies
            .lines()
            .map(str::to_string)
            .collect(),
        services_in_scope: services.iter().map(|s| s.service.clone()).collect(),
        confirmations: services
            .iter()
            .filter_map(|s| {
                s.confirm_time.map(|t| ReportConfirmation {
                    service: s.service.clone(),
                    confirmed_by: s.confirmed_by.clone(),
                    note: s.note.clone(),
                    confirm_time: Some(to_timestamp(t)),
                })
            })
            .collect(),
        creator: report.creator.clone(),
        create_time: Some(to_timestamp(report.create_time)),
        update_time: Some(to_timestamp(report.update_time)),
        rejected_by: report.rejected_by.clone(),
        reject_reason: report.reject_reason.clone(),
        reject_time: report.reject_time.map(to_timestamp),
        signed_off_by: report.signed_off_by.clone(),
        sign_off_time: report.sign_off_time.map(to_timestamp),
        exports: exports
            .iter()
            .map(|e| ReportExport {
                format: e.format,
                size_bytes: e.size,
                sha256: e.sha256.clone(),
            })
            .collect(),
        etag: etag::etag(report.version),
    })
}

/// The formats stored at sign-off.
const FORMATS: [ReportFormat; 4] = [
    ReportFormat::Json,
    ReportFormat::Csv,
    ReportFormat::Markdown,
    ReportFormat::Html,
];

impl ReportApi {
    /// The stored report `id`, or NOT_FOUND.
    async fn stored(&self, id: &str) -> ApiResult<stored::Report> {
        self.store
            .report(id)
            .await?
            .ok_or_else(|| ApiError::not_found(stored::name(id)))
    }

    /// The resource of `report` as `caller` sees it.
    async fn view(
        &self,
        caller: &Caller,
        report: &stored::Report,
        posture: bool,
    ) -> ApiResult<Report> {
        let services = self.store.report_services(&report.id).await?;
        let exports = self.store.report_exports(&report.id).await?;
        let mut out = resource(report, &services, &exports, posture)?;
        access::redact(caller, &mut out);
        Ok(out)
    }

    /// Reads every open risk of `services` through risk-service, in pages, hashing them after
    /// the posture's bytes.
    async fn freeze_rows(
        &self,
        on: &OnBehalf,
        posture: &[u8],
        services: &[String],
    ) -> ApiResult<Frozen> {
        let mut hash = Sha256::new();
        hash.update((posture.len() as u64).to_be_bytes());
        hash.update(posture);
        let mut frozen = Frozen {
            rows: Vec::new(),
            hash: String::new(),
            policies: BTreeSet::new(),
        };
        for chunk in services.chunks(SERVICES_PER_CALL) {
            let mut page_token = String::new();
            loop {
                let page = self
                    .upstreams
                    .list_report_risks(
                        on,
                        ListReportRisksRequest {
                            services: chunk.to_vec(),
                            page_size: ROWS_PER_CALL,
                            page_token,
                        },
                    )
                    .await
                    .map_err(|s| {
                        ApiError::Unavailable(format!(
                            "risk-service did not list the report's risks ({:?}: {}); retry later",
                            s.code(),
                            s.message()
                        ))
                    })?;
                for row in page.rows {
                    if row.assessed && !row.scoring_policy.is_empty() {
                        frozen.policies.insert(row.scoring_policy.clone());
                    }
                    let bytes = row.encode_to_vec();
                    hash.update((bytes.len() as u64).to_be_bytes());
                    hash.update(&bytes);
                    frozen.rows.push((row.service, bytes));
                }
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
        }
        frozen.hash = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Ok(frozen)
    }

    async fn create(&self, request: Request<CreateReportRequest>) -> ApiResult<Report> {
        let on = on_behalf(&request)?;
        let caller = on.caller.clone();
        let req = request.into_inner();
        let key = RequestKey::for_request("CreateReport", &caller, &req, |r| &mut r.request_id);
        let mut v = Violations::new();
        v.request_id("request_id", &req.request_id);
        let body = v.message("report", req.report.clone());
        let scope = if body.scope.is_empty() {
            v.add("report.scope", "is required");
            None
        } else {
            let scope = Scope::parse(&body.scope);
            if scope.is_none() {
                v.add(
                    "report.scope",
                    "must be `enterprise`, `businessUnits/{id}` or `services/{id}`",
                );
            }
            scope
        };
        v.line("report.title", &body.title, true, MAX_TITLE);
        let mut period = [None, None];
        for (i, (field, ts)) in [
            ("report.period_start", body.period_start.as_ref()),
            ("report.period_end", body.period_end.as_ref()),
        ]
        .into_iter()
        .enumerate()
        {
            match ts {
                None => v.add(field, "is required"),
                Some(ts) => {
                    period[i] = from_timestamp(ts);
                    if period[i].is_none() {
                        v.add(field, "is not a valid timestamp");
                    }
                }
            }
        }
        if let [Some(start), Some(end)] = period
            && start >= end
        {
            v.add("report.period_start", "must be before report.period_end");
        }
        v.finish()?;
        let (Some(scope), [Some(start), Some(end)]) = (scope, period) else {
            return Err(ApiError::Internal("report validated but absent".into()));
        };
        let roles = caller.principal.roles;
        if !roles.contains(Role::TrustTeam) && !roles.contains(Role::ErmExecutive) {
            return Err(ApiError::PermissionDenied(format!(
                "{} may not create a report: it needs the trust_team or erm_executive role",
                caller.principal.subject
            )));
        }
        if let Some(own) = access::own_services(&caller)
            && !own.contains(&scope.name())
        {
            return Err(ApiError::PermissionDenied(format!(
                "{} is scoped to its services and may not report on {}",
                caller.principal.subject,
                scope.name()
            )));
        }
        // A retry answers with the report the first attempt created, without freezing again.
        if let Some(key) = &key
            && let Some(seen) = idempotency::find(self.store.connection(), key).await?
            && let Outcome::Replayed(resource) = idempotency::replay::<()>(key, seen)?
        {
            let report = self.stored(resource.trim_start_matches("reports/")).await?;
            return self.view(&caller, &report, true).await;
        }
        let (posture, frozen) = self.freeze(&on, &scope, (start, end)).await?;
        let nodes = service_nodes(&posture);
        let in_scope: Vec<String> = nodes
            .iter()
            .filter(|(_, contributes, _)| *contributes)
            .map(|(s, _, _)| s.clone())
            .collect();
        let now = self.clock.now_micros();
        let report = stored::Report {
            id: uuid::Uuid::now_v7().to_string(),
            scope: scope.name(),
            title: body.title.trim().to_string(),
            period_start: start,
            period_end: end,
            state: if in_scope.is_empty() {
                ReportState::Verified
            } else {
                ReportState::Draft
            } as i32,
            content_hash: frozen.hash,
            posture: posture.encode_to_vec(),
            risk_count: i64::try_from(frozen.rows.len()).unwrap_or(i64::MAX),
            scoring_policies: frozen.policies.into_iter().collect::<Vec<_>>().join("\n"),
            creator: caller.person().to_string(),
            creator_principal: caller.principal.subject.clone(),
            version: 1,
            create_time: now,
            update_time: now,
            rejected_by: String::new(),
            reject_reason: String::new(),
            reject_time: None,
            signed_off_by: String::new(),
            sign_off_time: None,
        };
        let report = self
            .store
            .create_report(report, &in_scope, &frozen.rows, key, &caller)
            .await?;
        self.store.fold_wal().await;
        tracing::info!(report = %report.id, scope = %report.scope, rows = report.risk_count, "report created");
        self.view(&caller, &report, true).await
    }

    /// The posture of `scope` and its rows, consistent with each other: the rows of each
    /// service number its open risks (retried while the register changes in between).
    async fn freeze(
        &self,
        on: &OnBehalf,
        scope: &Scope,
        period: (i64, i64),
    ) -> ApiResult<(Posture, Frozen)> {
        let mut last = String::new();
        for _ in 0..FREEZE_ATTEMPTS {
            let now = self.clock.now_micros();
            let posture = self
                .posture
                .compute(on, scope, period, self.top_n, now)
                .await?;
            if !posture.missing.is_empty() {
                let reasons: Vec<&str> =
                    posture.missing.iter().map(|m| m.reason.as_str()).collect();
                return Err(ApiError::Unavailable(format!(
                    "a report freezes a complete posture, and a half is missing ({}); retry later",
                    reasons.join("; ")
                )));
            }
            let nodes = service_nodes(&posture);
            let services: Vec<String> = nodes.iter().map(|(s, _, _)| s.clone()).collect();
            let frozen = self
                .freeze_rows(on, &posture.encode_to_vec(), &services)
                .await?;
            let mut counted: BTreeMap<&str, i64> = BTreeMap::new();
            for (service, _) in &frozen.rows {
                *counted.entry(service.as_str()).or_default() += 1;
            }
            let differs = nodes.iter().find_map(|(s, _, open)| {
                let rows = counted.get(s.as_str()).copied().unwrap_or(0);
                (rows != *open).then(|| format!("{s}: {open} open risks counted, {rows} rows"))
            });
            match differs {
                None => return Ok((posture, frozen)),
                Some(d) => {
                    tracing::info!(scope = %scope.name(), differs = %d, "the register changed while a report was frozen; again");
                    last = d;
                }
            }
        }
        Err(ApiError::Unavailable(format!(
            "the risk register of {} kept changing while the report was frozen ({last}); retry \
             later",
            scope.name()
        )))
    }

    async fn get(&self, request: Request<GetReportRequest>) -> ApiResult<Report> {
        let caller = Caller::of(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let id = report_id(&mut v, "name", &req.name);
        v.finish()?;
        let id = id.ok_or_else(|| ApiError::Internal("name validated but absent".into()))?;
        let report = self.stored(id).await?;
        let services = self.store.report_services(id).await?;
        access::check_read(&caller, &req.name, &report.scope, &services)?;
        self.view(&caller, &report, true).await
    }

    async fn list(&self, request: Request<ListReportsRequest>) -> ApiResult<ListReportsResponse> {
        let caller = Caller::of(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        if !req.scope.is_empty() && Scope::parse(&req.scope).is_none() {
            v.add(
                "scope",
                "must be `enterprise`, `businessUnits/{id}` or `services/{id}`",
            );
        }
        if req.state != 0 && ReportState::try_from(req.state).is_err() {
            v.add("state", format!("{} is not a report state", req.state));
        }
        let mut times = [None, None];
        for (i, (field, ts)) in [
            ("period_start", req.period_start.as_ref()),
            ("period_end", req.period_end.as_ref()),
        ]
        .into_iter()
        .enumerate()
        {
            if let Some(ts) = ts {
                times[i] = from_timestamp(ts);
                if times[i].is_none() {
                    v.add(field, "is not a valid timestamp");
                }
            }
        }
        let size = v.absorb("page_size", page::page_size("page_size", req.page_size));
        v.finish()?;
        let size = size.ok_or_else(|| ApiError::Internal("page size validated".into()))?;
        let filter = ReportFilter {
            scope: (!req.scope.is_empty()).then(|| req.scope.clone()),
            state: (req.state != 0).then_some(req.state),
            period_start: times[0],
            period_end: times[1],
            services: access::own_services(&caller),
        };
        let fingerprint = page::query_fingerprint(&[
            "ListReports",
            &req.scope,
            &req.state.to_string(),
            &format!("{:?}", times),
        ]);
        let after = match page::decode("page_token", &req.page_token, &fingerprint, 2)?.as_deref() {
            None => None,
            Some([page::Key::Int(time), page::Key::Text(id)]) => Some((*time, id.clone())),
            Some(_) => {
                return Err(ApiError::invalid(
                    "page_token",
                    "is not a page token issued by this service",
                ));
            }
        };
        let mut rows = self.store.list_reports(&filter, after, size + 1).await?;
        let next_page_token = page::finish(&mut rows, size, &fingerprint, |r| {
            vec![page::Key::Int(r.create_time), page::Key::Text(r.id.clone())]
        });
        let mut reports = Vec::with_capacity(rows.len());
        for row in &rows {
            reports.push(self.view(&caller, row, false).await?);
        }
        Ok(ListReportsResponse {
            reports,
            next_page_token,
        })
    }

    async fn confirm(&self, request: Request<ConfirmReportRequest>) -> ApiResult<Report> {
        let caller = Caller::of(&request)?;
        let req = request.into_inner();
        let key = RequestKey::for_request("ConfirmReport", &caller, &req, |r| &mut r.request_id);
        let mut v = Violations::new();
        v.request_id("request_id", &req.request_id);
        let id = report_id(&mut v, "name", &req.name);
        // Checked against the report's services in scope below.
        let _ = slug_name(&mut v, "service", &req.service, "services");
        v.paragraph("note", &req.note, false, MAX_NOTE);
        let expected = v.absorb("etag", etag::parse_etag("etag", &req.etag));
        v.finish()?;
        let id = id.ok_or_else(|| ApiError::Internal("name validated but absent".into()))?;
        access::check_confirmer(&caller, &req.service)?;
        let services = self.store.report_services(id).await?;
        let Some(entry) = services.iter().find(|s| s.service == req.service) else {
            let listed: Vec<&str> = services.iter().map(|s| s.service.as_str()).collect();
            return Err(ApiError::invalid(
                "service",
                format!(
                    "{} is not in the scope of {}; in scope: {}",
                    req.service,
                    req.name,
                    if listed.is_empty() {
                        "none".to_string()
                    } else {
                        listed.join(", ")
                    }
                ),
            ));
        };
        let mut entry = entry.clone();
        let now = self.clock.now_micros();
        let person = caller.person().to_string();
        let subject = caller.principal.subject.clone();
        let note = req.note.trim().to_string();
        let report = self
            .store
            .change_report(id, expected.flatten(), key, &caller, async |tx, report| {
                check_state(report, "be confirmed", &[ReportState::Draft])?;
                let current = stored::services_of(tx, id).await?;
                if let Some(done) = current
                    .iter()
                    .find(|s| s.service == entry.service && s.confirm_time.is_some())
                {
                    return Err(ApiError::precondition(
                        Reason::IllegalTransition,
                        format!(
                            "{} was already confirmed for {} by {}",
                            entry.service,
                            stored::name(id),
                            done.confirmed_by
                        ),
                    ));
                }
                entry.confirmed_by = person;
                entry.principal = subject;
                entry.note = note;
                entry.confirm_time = Some(now);
                let service = entry.service.clone();
                stored::confirm(tx, entry).await?;
                let all = current
                    .iter()
                    .all(|s| s.confirm_time.is_some() || s.service == service);
                if all {
                    report.state = ReportState::Verified as i32;
                }
                report.update_time = now;
                Ok(())
            })
            .await?;
        self.view(&caller, &report, true).await
    }

    async fn reject(&self, request: Request<RejectReportRequest>) -> ApiResult<Report> {
        let caller = Caller::of(&request)?;
        let req = request.into_inner();
        let key = RequestKey::for_request("RejectReport", &caller, &req, |r| &mut r.request_id);
        let mut v = Violations::new();
        v.request_id("request_id", &req.request_id);
        let id = report_id(&mut v, "name", &req.name);
        v.paragraph("reason", &req.reason, true, MAX_NOTE);
        let expected = v.absorb("etag", etag::parse_etag("etag", &req.etag));
        v.finish()?;
        let id = id.ok_or_else(|| ApiError::Internal("name validated but absent".into()))?;
        let services = self.store.report_services(id).await?;
        if services.is_empty() {
            // NOT_FOUND before PERMISSION_DENIED for a report that does not exist.
            self.stored(id).await?;
        }
        access::check_rejecter(&caller, &req.name, &services)?;
        let now = self.clock.now_micros();
        let person = caller.person().to_string();
        let reason = req.reason.trim().to_string();
        let report = self
            .store
            .change_report(id, expected.flatten(), key, &caller, async |_, report| {
                check_state(
                    report,
                    "be rejected",
                    &[ReportState::Draft, ReportState::Verified],
                )?;
                report.state = ReportState::Rejected as i32;
                report.rejected_by = person;
                report.reject_reason = reason;
                report.reject_time = Some(now);
                report.update_time = now;
                Ok(())
            })
            .await?;
        self.view(&caller, &report, true).await
    }

    async fn sign_off(&self, request: Request<SignOffReportRequest>) -> ApiResult<Report> {
        let caller = Caller::of(&request)?;
        let req = request.into_inner();
        let key = RequestKey::for_request("SignOffReport", &caller, &req, |r| &mut r.request_id);
        let mut v = Violations::new();
        v.request_id("request_id", &req.request_id);
        let id = report_id(&mut v, "name", &req.name);
        let expected = v.absorb("etag", etag::parse_etag("etag", &req.etag));
        v.finish()?;
        let id = id.ok_or_else(|| ApiError::Internal("name validated but absent".into()))?;
        if !caller.principal.roles.contains(Role::ErmExecutive) {
            return Err(ApiError::PermissionDenied(format!(
                "{} may not sign off {}: it needs the erm_executive role",
                caller.principal.subject, req.name
            )));
        }
        caller.must_be_unscoped(&format!("sign off {}", req.name))?;
        let now = self.clock.now_micros();
        let person = caller.person().to_string();
        let report = self
            .store
            .change_report(id, expected.flatten(), key, &caller, async |tx, report| {
                check_state(report, "be signed off", &[ReportState::Verified])?;
                if same_principal(&report.creator, &person)
                    || same_principal(&report.creator_principal, &caller.principal.subject)
                {
                    return Err(ApiError::precondition(
                        Reason::SelfApproval,
                        format!(
                            "{person} created {} and may not sign it off: another ERM executive \
                             signs it",
                            stored::name(id)
                        ),
                    ));
                }
                report.state = ReportState::SignedOff as i32;
                report.signed_off_by = person;
                report.sign_off_time = Some(now);
                report.update_time = now;
                let services = stored::services_of(tx, id).await?;
                let doc = Document {
                    id: id.to_string(),
                    report: resource(report, &services, &[], false)?,
                    posture: Posture::decode(report.posture.as_slice())
                        .map_err(|e| ApiError::Internal(format!("stored posture: {e}")))?,
                    draft: false,
                    services: None,
                };
                for format in FORMATS {
                    export::store(tx, &doc, format).await?;
                }
                Ok(())
            })
            .await?;
        self.store.fold_wal().await;
        tracing::info!(report = %report.id, "report signed off");
        self.view(&caller, &report, true).await
    }
}

#[tonic::async_trait]
impl ReportService for ReportApi {
    async fn create_report(
        &self,
        request: Request<CreateReportRequest>,
    ) -> Result<Response<Report>, Status> {
        Ok(Response::new(self.create(request).await?))
    }

    async fn get_report(
        &self,
        request: Request<GetReportRequest>,
    ) -> Result<Response<Report>, Status> {
        Ok(Response::new(self.get(request).await?))
    }

    async fn list_reports(
        &self,
        request: Request<ListReportsRequest>,
    ) -> Result<Response<ListReportsResponse>, Status> {
        Ok(Response::new(self.list(request).await?))
    }

    async fn confirm_report(
        &self,
        request: Request<ConfirmReportRequest>,
    ) -> Result<Response<Report>, Status> {
        Ok(Response::new(self.confirm(request).await?))
    }

    async fn reject_report(
        &self,
        request: Request<RejectReportRequest>,
    ) -> Result<Response<Report>, Status> {
        Ok(Response::new(self.reject(request).await?))
    }

    async fn sign_off_report(
        &self,
        request: Request<SignOffReportRequest>,
    ) -> Result<Response<Report>, Status> {
        Ok(Response::new(self.sign_off(request).await?))
    }

    type ExportReportStream = export::Chunks;

    async fn export_report(
        &self,
        request: Request<ExportReportRequest>,
    ) -> Result<Response<Self::ExportReportStream>, Status> {
        Ok(Response::new(self.export(request).await?))
    }
}
