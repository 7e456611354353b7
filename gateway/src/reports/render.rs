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
    cells.push(n(incidents.map(|i| i.open_incidents)));
    cells.push(n(incidents.and_then(|i| i.kpis.as_ref()).map(|k| k.count)));
    cells
}

const NODE_HEADERS: [&str; 14] = [
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
    "Open incidents",
    "Incidents in period",
    "",
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

const DRAFT_NOTICE: &str = "DRAFT: rendered on the fly, not a signed-off report.";

struct Json;

fn stats(s: Option<&DurationStats>) -> Value {
    let secs =
        |d: Option<&prost_types::Duration>| d.map(|d| d.seconds as f64 + f64::from(d.nanos) / 1e9);
    match s {
        None => Value::Null,
        Some(s) => json!({
            "count": s.count,
            "mean_seconds": secs(s.mean.as_ref()),
            "p90_seconds": secs(s.p90.as_ref()),
        }),
    }
}

fn incidents_json(i: &IncidentSummary) -> Value {
    let kpis = i.kpis.as_ref();
    json!({
        "open_incidents": i.open_incidents,
        "open_by_severity": i.open_by_severity.iter()
            .map(|c| (severity(c.severity), json!(c.count)))
            .collect::<serde_json::Map<_, _>>(),
        "kpis": {
            "count": kpis.map(|k| k.count),
            "time_to_detect": stats(kpis.and_then(|k| k.time_to_detect.as_ref())),
            "time_to_contain": stats(kpis.and_then(|k| k.time_to_contain.as_ref())),
            "time_to_recover": stats(kpis.and_then(|k| k.time_to_recover.as_ref())),
        },
    })
}

fn node_json(node: &PostureNode, parent: &str) -> Value {
    let risks = node.risks.as_ref().map(|r| {
        json!({
            "open_risks": r.open_risks,
            "unassessed": r.unassessed,
            "by_severity": r.by_severity.iter()
                .map(|c| (severity(c.severity), json!(c.count)))
                .collect::<serde_json::Map<_, _>>(),
            "by_status": r.by_status.iter()
                .map(|c| (status(c.status), json!(c.count)))
                .collect::<serde_json::Map<_, _>>(),
            "by_strategy": r.by_strategy.iter()
                .map(|c| (strategy(c.strategy), json!(c.count)))
                .collect::<serde_json::Map<_, _>>(),
            "heat_map": heat(node),
            "overdue_reviews": r.overdue_reviews,
            "overdue_action_items": r.overdue_action_items,
            "expiring_acceptances": r.expiring_acceptances,
            "expiring_exceptions": r.expiring_exceptions,
            "appetite": r.appetite.as_ref().map(|a| json!({
                "status": appetite_status(a.status),
                "within_appetite": a.within_appetite,
                "above_appetite": a.above_appetite,
                "outside_tolerance": a.outside_tolerance,
                "above_appetite_treated": a.above_appetite_treated,
            })),
        })
    });
    json!({
        "scope": node.scope,
        "kind": kind(node.kind),
        "display_name": node.display_name,
        "parent": parent,
        "risks": risks,
        "incidents": node.incidents.as_ref().map(incidents_json),
    })
}

impl Style for Json {
    fn prologue(&self, doc: &Document) -> String {
        let r = &doc.report;
        let report = json!({
            "name": r.name,
            "title": r.title,
            "scope": r.scope,
            "period_start": time(r.period_start.as_ref()),
            "period_end": time(r.period_end.as_ref()),
            "state": state(r.state),
            "draft": doc.draft,
            "content_hash": r.content_hash,
            "creator": r.creator,
            "create_time": time(r.create_time.as_ref()),
            "signed_off_by": r.signed_off_by,
            "sign_off_time": time(r.sign_off_time.as_ref()),
            "rejected_by": r.rejected_by,
            "reject_reason": r.reject_reason,
            "risk_count": r.risk_count,
            "scoring_policies": r.scoring_policies,
            "appetite_versions": doc.posture.appetite_versions.iter()
                .map(|v| json!({"risk_appetite": v.risk_appetite, "version": v.version}))
                .collect::<Vec<_>>(),
            "posture_compute_time": time(doc.posture.compute_time.as_ref()),
            "services_in_scope": r.services_in_scope,
            "confirmations": confirmations(doc).iter()
                .map(|[service, by, at, note]| json!({
                    "service": service, "confirmed_by": by, "confirm_time": at, "note": note,
                }))
                .collect::<Vec<_>>(),
            "rows_of": doc.services,
        });
        let nodes: Vec<Value> = nodes(&doc.posture)
            .into_iter()
            .map(|(node, parent)| node_json(node, parent))
            .collect();
        format!(
            "{{\"report\":{report},\"nodes\":{},\"risks\":[",
            Value::Array(nodes)
        )
    }

    fn row(&self, buf: &mut String, doc: &Document, r: &ReportRiskRow, first: bool) {
        if !first {
            buf.push(',');
        }
        let cells = row_cells(doc, r);
        let object: serde_json::Map<String, Value> = ROW_HEADERS
            .iter()
            .zip(cells)
            .skip(2)
            .map(|(k, v)| {
                let value = match *k {
                    "assessed" | "treated" => json!(v == "true"),
                    "impact"
                    | "likelihood"
                    | "score"
                    | "action_items"
                    | "action_items_closed"
                    | "action_items_overdue" => {
                        v.parse::<i64>().map(Value::from).unwrap_or(Value::Null)
                    }
                    _ => json!(v),
                };
                (k.to_string(), value)
            })
            .collect();
        buf.push_str(&Value::Object(object).to_string());
    }

    fn epilogue(&self, _: &Document) -> String {
        "]}\n".into()
    }
}

struct Csv;

/// One RFC 4180 field.
fn csv_line<I: IntoIterator<Item = S>, S: AsRef<str>>(buf: &mut String, fields: I) {
    for (i, f) in fields.into_iter().enumerate() {
        if i > 0 {
            buf.push(',');
        }
        push_csv_field(buf, f.as_ref());
    }
    buf.push_str("\r\n");
}

impl Style for Csv {
    fn prologue(&self, _: &Document) -> String {
        let mut buf = String::new();
        csv_line(&mut buf, ROW_HEADERS);
        buf
    }

    fn row(&self, buf: &mut String, doc: &Document, r: &ReportRiskRow, _: bool) {
        csv_line(buf, row_cells(doc, r));
    }

    fn epilogue(&self, _: &Document) -> String {
        String::new()
    }
}

struct Markdown;

/// A Markdown table cell: pipes escaped, line breaks flattened.
fn md(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\r', '\n'], " ")
}

fn md_line<I: IntoIterator<Item = S>, S: AsRef<str>>(buf: &mut String, cells: I) {
    buf.push('|');
    for c in cells {
        let _ = write!(buf, " {} |", md(c.as_ref()));
    }
    buf.push('\n');
}

fn md_rule(buf: &mut String, n: usize) {
    buf.push('|');
    for _ in 0..n {
        buf.push_str("---|");
    }
    buf.push('\n');
}

impl Style for Markdown {
    fn prologue(&self, doc: &Document) -> String {
        let mut b = String::new();
        let _ = writeln!(b, "# {}\n", md(&doc.report.title));
        if doc.draft {
            let _ = writeln!(b, "> **{DRAFT_NOTICE}**\n");
        }
        md_line(&mut b, ["Field", "Value"]);
        md_rule(&mut b, 2);
        for (label, value) in header(doc) {
            md_line(&mut b, [label.to_string(), value]);
        }
        b.push_str("\n## Confirmations\n\n");
        md_line(&mut b, ["Service", "Confirmed by", "Time", "Note"]);
        md_rule(&mut b, 4);
        for c in confirmations(doc) {
            md_line(&mut b, c);
        }
        b.push_str("\n## Posture\n\n");
        md_line(&mut b, &NODE_HEADERS[..13]);
        md_rule(&mut b, 13);
        for (node, _) in nodes(&doc.posture) {
            md_line(&mut b, node_cells(node));
        }
        if let Some(root) = &doc.posture.root {
            let _ = writeln!(
                b,
                "\n## Heat map of {}\n\nOpen assessed risks by impact (rows) and likelihood \
                 (columns).\n",
                root.scope
            );
            md_line(&mut b, ["Impact \\ Likelihood", "1", "2", "3", "4", "5"]);
            md_rule(&mut b, 6);
            let cells = heat(root);
            for impact in (1..=5).rev() {
                let mut line = vec![impact.to_string()];
                line.extend(cells[impact - 1].iter().map(ToString::to_string));
                md_line(&mut b, line);
            }
        }
        b.push_str("\n## Risks\n\n");
        md_line(&mut b, &ROW_HEADERS[2..]);
        md_rule(&mut b, ROW_HEADERS.len() - 2);
        b
    }

    fn row(&self, buf: &mut String, doc: &Document, r: &ReportRiskRow, _: bool) {
        md_line(buf, &row_cells(doc, r)[2..]);
    }

    fn epilogue(&self, _: &Document) -> String {
        String::new()
    }
}

struct Html;

fn html_row<I: IntoIterator<Item = S>, S: AsRef<str>>(buf: &mut String, cells: I, tag: &str) {
    buf.push_str("<tr>");
    for c in cells {
        let _ = write!(buf, "<{tag}>{}</{tag}>", esc(c.as_ref()));
    }
    buf.push_str("</tr>\n");
}

/// The heat map as an inline SVG: impact upwards, likelihood rightwards, each cell coloured by
/// impact × likelihood and labelled with its count.
fn heat_svg(node: &PostureNode) -> String {
    const CELL: i32 = 56;
    const LEFT: i32 = 40;
    let cells = heat(node);
    let size = LEFT + 5 * CELL;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{size}\" height=\"{size}\" \
         viewBox=\"0 0 {size} {size}\" role=\"img\" aria-label=\"Heat map of {}\">\n",
        esc(&node.scope)
    );
    for impact in 1..=5i32 {
        let y = (5 - impact) * CELL;
        for likelihood in 1..=5i32 {
            let x = LEFT + (likelihood - 1) * CELL;
            let product = impact * likelihood;
            let fill = match product {
                0..=4 => "#8bc34a",
                5..=9 => "#ffeb3b",
                10..=15 => "#ff9800",
                _ => "#f44336",
            };
            let count = cells[(impact - 1) as usize][(likelihood - 1) as usize];
            let _ = writeln!(
                svg,
                "<rect class=\"cell\" data-impact=\"{impact}\" data-likelihood=\"{likelihood}\" \
                 x=\"{x}\" y=\"{y}\" width=\"{CELL}\" height=\"{CELL}\" fill=\"{fill}\" \
                 stroke=\"#fff\"/><text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{count}</text>",
                x + CELL / 2,
                y + CELL / 2 + 5
            );
        }
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{impact}</text>",
            LEFT / 2,
            y + CELL / 2 + 5
        );
    }
    svg.push_str("</svg>");
    svg
}

impl Style for Html {
    fn prologue(&self, doc: &Document) -> String {
        let mut b = String::new();
        let _ = write!(
            b,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <title>{}</title>\n<style>\nbody{{font-family:sans-serif;margin:2em}}\
             table{{border-collapse:collapse;margin-bottom:1.5em}}\
             td,th{{border:1px solid #ccc;padding:2px 6px;text-align:left}}\
             .draft{{background:#fff3cd;border:2px solid #e0a800;padding:.5em}}\n</style>\n\
             </head>\n<body>\n<h1>{}</h1>\n",
            esc(&doc.report.title),
            esc(&doc.report.title)
        );
        if doc.draft {
            let _ = writeln!(
                b,
                "<p class=\"draft\" id=\"draft\"><strong>{DRAFT_NOTICE}</strong></p>"
            );
        }
        b.push_str("<table id=\"report\">\n");
        for (label, value) in header(doc) {
            let _ = writeln!(
                b,
                "<tr><th>{}</th><td>{}</td></tr>",
                esc(label),
                esc(&value)
            );
        }
        b.push_str("</table>\n<h2>Confirmations</h2>\n<table id=\"confirmations\">\n");
        html_row(&mut b, ["Service", "Confirmed by", "Time", "Note"], "th");
        for c in confirmations(doc) {
            html_row(&mut b, c, "td");
        }
        b.push_str("</table>\n<h2>Posture</h2>\n<table id=\"posture\">\n");
        html_row(&mut b, &NODE_HEADERS[..13], "th");
        for (node, _) in nodes(&doc.posture) {
            html_row(&mut b, node_cells(node), "td");
        }
        b.push_str("</table>\n");
        if let Some(root) = &doc.posture.root {
            let _ = writeln!(
                b,
                "<h2>Heat map of {}</h2>\n<p>Open assessed risks by impact (up) and likelihood \
                 (right).</p>\n{}",
                esc(&root.scope),
                heat_svg(root)
            );
        }
        b.push_str("<h2>Risks</h2>\n<table id=\"risks\">\n");
        html_row(&mut b, &ROW_HEADERS[2..], "th");
        b
    }

    fn row(&self, buf: &mut String, doc: &Document, r: &ReportRiskRow, _: bool) {
        html_row(buf, &row_cells(doc, r)[2..], "td");
    }

    fn epilogue(&self, _: &Document) -> String {
        "</table>\n</body>\n</html>\n".into()
    }
}

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
