//! The four exports of a report, rendered incrementally: a prologue from the report and its
//! frozen posture, then the risk rows paged from the store (a thousand at a time), each page
//! flushed in 64 KiB chunks to a [`Sink`] — the store at sign-off, a stream for a draft, a
//! byte counter for a draft's size. Memory stays flat whatever the number of rows.

use std::fmt::Write as _;

use assurance_proto::{
    gateway::v1::{NodeKind, Posture, PostureNode, Report, ReportFormat, ReportState},
    incident::v1::{DurationStats, IncidentSummary},
    risk::v1::{
        AppetiteStatus, ApprovalState, ReportRiskRow, ResponseDecision, ResponseStrategy,
        RiskStatus,
    },
    r#type::v1::Severity,
};
use assurance_runtime::{
    ApiError, ApiResult,
    text::{html_escape as esc, push_csv_field},
};
use prost::Message;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::store::report as store;

/// Bytes per chunk of an export.
pub const CHUNK: usize = 64 * 1024;
/// Rows read from the store at a time.
const ROWS_PER_PAGE: u64 = 1000;

/// Where rendered chunks go.
pub trait Sink: Send {
    fn put(&mut self, chunk: Vec<u8>) -> impl Future<Output = ApiResult<()>> + Send;
}

/// What is rendered: the report (its header fields and confirmations), its frozen posture,
/// and which rows.
pub struct Document {
    pub id: String,
    pub report: Report,
    pub posture: Posture,
    /// Rendered on the fly rather than from a signed report.
    pub draft: bool,
    /// Only the rows of these services (`services/{id}`), for a principal scoped to them.
    pub services: Option<Vec<String>>,
}

/// The media type of `format`.
pub fn content_type(format: ReportFormat) -> &'static str {
    match format {
        ReportFormat::Json => "application/json",
        ReportFormat::Csv => "text/csv; charset=utf-8; header=present",
        ReportFormat::Markdown => "text/markdown; charset=utf-8",
        ReportFormat::Html => "text/html; charset=utf-8",
        ReportFormat::Unspecified => "application/octet-stream",
    }
}

/// A buffer flushed to its sink in whole chunks (a chunk may end inside a character: chunks
/// are bytes).
struct Out<'a, S: Sink> {
    buf: Vec<u8>,
    sink: &'a mut S,
}

impl<S: Sink> Out<'_, S> {
    fn push(&mut self, s: &str) {
        self.buf.extend_from_slice(s.as_bytes());
    }

    /// Hands every whole chunk to the sink.
    async fn flush(&mut self) -> ApiResult<()> {
        while self.buf.len() >= CHUNK {
            let rest = self.buf.split_off(CHUNK);
            let full = std::mem::replace(&mut self.buf, rest);
            self.sink.put(full).await?;
        }
        Ok(())
    }

    async fn finish(mut self) -> ApiResult<()> {
        self.flush().await?;
        if !self.buf.is_empty() {
            self.sink.put(std::mem::take(&mut self.buf)).await?;
        }
        Ok(())
    }
}

/// Renders `doc` as `format` into `sink`, reading its rows through `conn`.
pub async fn render<S: Sink>(
    conn: &impl ConnectionTrait,
    doc: &Document,
    format: ReportFormat,
    sink: &mut S,
) -> ApiResult<()> {
    let mut out = Out {
        buf: Vec::with_capacity(CHUNK * 2),
        sink,
    };
    let style: &dyn Style = match format {
        ReportFormat::Json => &Json,
        ReportFormat::Csv => &Csv,
        ReportFormat::Markdown => &Markdown,
        ReportFormat::Html => &Html,
        ReportFormat::Unspecified => {
            return Err(ApiError::invalid("format", "is required"));
        }
    };
    out.push(&style.prologue(doc));
    let mut after = None;
    let mut first = true;
    loop {
        let page =
            store::rows(conn, &doc.id, after, doc.services.as_deref(), ROWS_PER_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.seq);
        for stored in &page {
            let row = ReportRiskRow::decode(stored.row.as_slice()).map_err(|e| {
                ApiError::Internal(format!("row {} of reports/{}: {e}", stored.seq, doc.id))
            })?;
            let mut line = String::new();
            style.row(&mut line, doc, &row, first);
            out.push(&line);
            first = false;
        }
        out.flush().await?;
    }
    out.push(&style.epilogue(doc));
    out.finish().await
}

/// One format.
trait Style: Sync {
    /// Everything before the rows.
    fn prologue(&self, doc: &Document) -> String;
    /// One row, appended to `buf`.
    fn row(&self, buf: &mut String, doc: &Document, row: &ReportRiskRow, first: bool);
    /// Everything after.
    fn epilogue(&self, doc: &Document) -> String;
}

/// An enum value's name without its prefix (`SEVERITY_HIGH` → `HIGH`), empty when unset.
fn short(name: &str, prefix: &str) -> String {
    if name.ends_with("_UNSPECIFIED") {
        return String::new();
    }
    name.trim_start_matches(prefix).to_string()
}

fn severity(n: i32) -> String {
    Severity::try_from(n)
        .map(|s| short(s.as_str_name(), "SEVERITY_"))
        .unwrap_or_default()
}

fn status(n: i32) -> String {
    RiskStatus::try_from(n)
        .map(|s| short(s.as_str_name(), "RISK_STATUS_"))
        .unwrap_or_default()
}

fn strategy(n: i32) -> String {
    ResponseStrategy::try_from(n)
        .map(|s| short(s.as_str_name(), "RESPONSE_STRATEGY_"))
        .unwrap_or_default()
}

fn decision(n: i32) -> String {
    ResponseDecision::try_from(n)
        .map(|s| short(s.as_str_name(), "RESPONSE_DECISION_"))
        .unwrap_or_default()
}

fn approval(n: i32) -> String {
    ApprovalState::try_from(n)
        .map(|s| short(s.as_str_name(), "APPROVAL_STATE_"))
        .unwrap_or_default()
}

fn state(n: i32) -> String {
    ReportState::try_from(n)
        .map(|s| short(s.as_str_name(), "REPORT_STATE_"))
        .unwrap_or_default()
}

fn appetite_status(n: i32) -> String {
    AppetiteStatus::try_from(n)
        .map(|s| short(s.as_str_name(), "APPETITE_STATUS_"))
        .unwrap_or_default()
}

fn kind(n: i32) -> String {
    NodeKind::try_from(n)
        .map(|s| short(s.as_str_name(), "NODE_KIND_"))
        .unwrap_or_default()
}

/// RFC 3339, empty when unset.
fn time(ts: Option<&prost_types::Timestamp>) -> String {
    ts.map(ToString::to_string).unwrap_or_default()
}

/// Every node of the tree, parents first, with its parent's scope.
fn nodes(posture: &Posture) -> Vec<(&PostureNode, &str)> {
    fn walk<'a>(node: &'a PostureNode, parent: &'a str, out: &mut Vec<(&'a PostureNode, &'a str)>) {
        out.push((node, parent));
        for child in &node.children {
            walk(child, &node.scope, out);
        }
    }
    let mut out = Vec::new();
    if let Some(root) = &posture.root {
        walk(root, "", &mut out);
    }
    out
}

/// The heat map of `node`: `[impact - 1][likelihood - 1]`.
fn heat(node: &PostureNode) -> [[i64; 5]; 5] {
    let mut cells = [[0; 5]; 5];
    for c in node.risks.iter().flat_map(|r| &r.heat_map) {
        if let (Ok(i), Ok(l)) = (
            usize::try_from(c.impact - 1),
            usize::try_from(c.likelihood - 1),
        ) && i < 5
            && l < 5
        {
            cells[i][l] = c.count;
        }
    }
    cells
}

/// The count of severity `s` in `node`.
fn severity_count(node: &PostureNode, s: Severity) -> i64 {
    node.risks
        .iter()
        .flat_map(|r| &r.by_severity)
        .filter(|c| c.severity == s as i32)
        .map(|c| c.count)
        .sum()
}

const SEVERITIES: [Severity; 4] = [
    Severity::Low,
    Severity::Medium,
    Severity::High,
    Severity::Critical,
];

/// The columns of a node in the Markdown and HTML tables.
fn node_cells(node: &PostureNode) -> Vec<String> {
    let risks = node.risks.as_ref();
    let incidents = node.incidents.as_ref();
    let n = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_else(|| "–".into());
    let mut cells = vec![
        node.scope.clone(),
        node.display_name.clone(),
        n(risks.map(|r| r.open_risks)),
        n(risks.map(|r| r.unassessed)),
    ];
    for s in SEVERITIES {
        cells.push(n(risks.map(|_| severity_count(node, s))));
    }
    cells.push(
        risks
            .and_then(|r| r.appetite.as_ref())
            .map(|a| appetite_status(a.status))
            .unwrap_or_else(|| "–".into()),
    );
    cells.push(n(risks.map(|r| r.overdue_reviews)));
    cells.push(n(risks.map(|r| r.overdue_action_items)));
    cells.push(n(risks.map(|r| r.realizations)));
    cells.push(n(risks.map(|r| r.failed_control_tests)));
    cells.push(n(risks.map(|r| r.risks_with_failed_response)));
    cells.push(n(incidents.map(|i| i.open_incidents)));
    cells.push(n(incidents.and_then(|i| i.kpis.as_ref()).map(|k| k.count)));
    cells
}

const NODE_HEADERS: [&str; 16] = [
    "Node",
    "Name",
    "Open risks",
    "Unassessed",
    "Low",
    "Medium",
    "High",
    "Critical",
    "Appetite",
    "Overdue reviews",
    "Overdue action items",
    "Realisations (12 months)",
    "Failed control tests (12 months)",
    "Risks with a failed response",
    "Open incidents",
    "Incidents in period",
];

const ROW_HEADERS: [&str; 23] = [
    "report",
    "report_state",
    "risk",
    "title",
    "service",
    "owner",
    "status",
    "assessed",
    "impact",
    "likelihood",
    "score",
    "severity",
    "strategy",
    "scoring_policy",
    "assess_time",
    "response_decision",
    "response_state",
    "treated",
    "action_items",
    "action_items_closed",
    "action_items_overdue",
    "next_review_time",
    "create_time",
];

/// A row's fields, in `ROW_HEADERS` order.
fn row_cells(doc: &Document, r: &ReportRiskRow) -> [String; 23] {
    let n = |v: i32| {
        if r.assessed {
            v.to_string()
        } else {
            String::new()
        }
    };
    [
        doc.report.name.clone(),
        state(doc.report.state),
        r.risk.clone(),
        r.title.clone(),
        r.service.clone(),
        r.owner.clone(),
        status(r.status),
        r.assessed.to_string(),
        n(r.impact),
        n(r.likelihood),
        n(r.score),
        severity(r.severity),
        strategy(r.strategy),
        r.scoring_policy.clone(),
        time(r.assess_time.as_ref()),
        decision(r.response_decision),
        approval(r.response_state),
        r.treated.to_string(),
        r.action_items.to_string(),
        r.action_items_closed.to_string(),
        r.action_items_overdue.to_string(),
        time(r.next_review_time.as_ref()),
        time(r.create_time.as_ref()),
    ]
}

/// The report's header lines: (label, value).
fn header(doc: &Document) -> Vec<(&'static str, String)> {
    let r = &doc.report;
    let mut lines = vec![
        ("Report", r.name.clone()),
        ("Scope", r.scope.clone()),
        (
            "Period",
            format!(
                "{} – {}",
                time(r.period_start.as_ref()),
                time(r.period_end.as_ref())
            ),
        ),
        ("State", state(r.state)),
        ("Content hash (SHA-256)", r.content_hash.clone()),
        (
            "Created by",
            format!("{} at {}", r.creator, time(r.create_time.as_ref())),
        ),
        ("Risks", r.risk_count.to_string()),
        ("Scoring policies", r.scoring_policies.join(", ")),
        (
            "Appetite versions",
            doc.posture
                .appetite_versions
                .iter()
                .map(|v| format!("{}@{}", v.risk_appetite, v.version))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        (
            "Posture computed at",
            time(doc.posture.compute_time.as_ref()),
        ),
    ];
    if !r.signed_off_by.is_empty() {
        lines.push((
            "Signed off by",
            format!("{} at {}", r.signed_off_by, time(r.sign_off_time.as_ref())),
        ));
    }
    if !r.rejected_by.is_empty() {
        lines.push((
            "Rejected by",
            format!(
                "{} at {}: {}",
                r.rejected_by,
                time(r.reject_time.as_ref()),
                r.reject_reason
            ),
        ));
    }
    if let Some(services) = &doc.services {
        lines.push(("Rows of", services.join(", ")));
    }
    lines
}

/// The confirmation of each service in scope: (service, by, time, note).
fn confirmations(doc: &Document) -> Vec<[String; 4]> {
    doc.report
        .services_in_scope
        .iter()
        .map(|service| {
            match doc
                .report
                .confirmations
                .iter()
                .find(|c| &c.service == service)
            {
                Some(c) => [
                    service.clone(),
                    c.confirmed_by.clone(),
                    time(c.confirm_time.as_ref()),
                    c.note.clone(),
                ],
                None => [service.clone(), String::new(), String::new(), String::new()],
            }
        })
        .collect()
}

mod formats;

use formats::{Csv, Html, Json, Markdown};
#[cfg(test)]
use formats::{csv_line, md};

const DRAFT_NOTICE: &str = "DRAFT: rendered on the fly, not a signed-off report.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_follow_rfc_4180() {
        let mut line = String::new();
        csv_line(&mut line, ["plain", "a,b", "say \"hi\"", "two\nlines", ""]);
        assert_eq!(line, "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\r\n");
    }

    #[test]
    fn markdown_escapes_its_syntax() {
        assert_eq!(md("a|b\nc\\"), "a\\|b c\\\\");
    }

    #[test]
    fn chunks_are_whole_until_the_last() {
        struct Collect(Vec<usize>);
        impl Sink for Collect {
            async fn put(&mut self, chunk: Vec<u8>) -> ApiResult<()> {
                self.0.push(chunk.len());
                Ok(())
            }
        }
        let mut sink = Collect(Vec::new());
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let mut out = Out {
                buf: Vec::new(),
                sink: &mut sink,
            };
            out.push(&"é".repeat(CHUNK));
            out.flush().await.expect("flush");
            out.finish().await.expect("finish");
        });
        assert_eq!(sink.0, [CHUNK, CHUNK]);
    }
}
