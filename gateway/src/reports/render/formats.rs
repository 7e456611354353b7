//! The four renderings of a report, each a [`Style`](super::Style): JSON, CSV (RFC 4180),
//! Markdown, and a self-contained HTML document with the heat map as inline SVG.

use super::*;

pub(super) struct Json;

pub(super) fn stats(s: Option<&DurationStats>) -> Value {
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

pub(super) fn incidents_json(i: &IncidentSummary) -> Value {
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

pub(super) fn node_json(node: &PostureNode, parent: &str) -> Value {
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
            "realizations": r.realizations,
            "failed_control_tests": r.failed_control_tests,
            "risks_with_failed_response": r.risks_with_failed_response,
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

pub(super) struct Csv;

/// One RFC 4180 field.
pub(super) fn csv_line<I: IntoIterator<Item = S>, S: AsRef<str>>(buf: &mut String, fields: I) {
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

pub(super) struct Markdown;

/// A Markdown table cell: pipes escaped, line breaks flattened.
pub(super) fn md(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\r', '\n'], " ")
}

pub(super) fn md_line<I: IntoIterator<Item = S>, S: AsRef<str>>(buf: &mut String, cells: I) {
    buf.push('|');
    for c in cells {
        let _ = write!(buf, " {} |", md(c.as_ref()));
    }
    buf.push('\n');
}

pub(super) fn md_rule(buf: &mut String, n: usize) {
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
        md_line(&mut b, NODE_HEADERS);
        md_rule(&mut b, NODE_HEADERS.len());
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

pub(super) struct Html;

pub(super) fn html_row<I: IntoIterator<Item = S>, S: AsRef<str>>(
    buf: &mut String,
    cells: I,
    tag: &str,
) {
    buf.push_str("<tr>");
    for c in cells {
        let _ = write!(buf, "<{tag}>{}</{tag}>", esc(c.as_ref()));
    }
    buf.push_str("</tr>\n");
}

/// The heat map as an inline SVG: impact upwards, likelihood rightwards, each cell coloured by
/// impact × likelihood and labelled with its count.
pub(super) fn heat_svg(node: &PostureNode) -> String {
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
        html_row(&mut b, NODE_HEADERS, "th");
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
