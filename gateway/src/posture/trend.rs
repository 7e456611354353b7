//! GetPostureTrend: a scope's figures over the snapshots of a time range, one series per
//! figure and label set.

use assurance_proto::{
    gateway::v1::{
        GetPostureTrendRequest, GetPostureTrendResponse, PostureNode, TrendMetric, TrendPoint,
        TrendSeries,
    },
    incident::v1::DurationStats,
    risk::v1::AppetiteStatus,
    r#type::v1::Severity,
};
use assurance_runtime::{ApiError, ApiResult, time::to_timestamp, validate::Violations};
use prost::Message;
use tonic::Request;

use super::{PostureApi, authorize_scope, on_behalf, posture_scope, time_field};

/// The most snapshots one trend reads.
const MAX_POINTS: u64 = 400;

/// Reads one figure of a node, if the node has it.
type Figure = Box<dyn Fn(&PostureNode) -> Option<f64> + Send>;

/// One series to build: its metric, labels and figure.
struct Wanted {
    metric: TrendMetric,
    labels: Vec<(&'static str, &'static str)>,
    figure: Figure,
}

fn wanted(
    metric: TrendMetric,
    labels: &[(&'static str, &'static str)],
    figure: impl Fn(&PostureNode) -> Option<f64> + Send + 'static,
) -> Wanted {
    Wanted {
        metric,
        labels: labels.to_vec(),
        figure: Box::new(figure),
    }
}

const SEVERITIES: [(Severity, &str); 4] = [
    (Severity::Critical, "CRITICAL"),
    (Severity::High, "HIGH"),
    (Severity::Medium, "MEDIUM"),
    (Severity::Low, "LOW"),
];

const STATUSES: [(AppetiteStatus, &str); 3] = [
    (AppetiteStatus::WithinAppetite, "WITHIN_APPETITE"),
    (AppetiteStatus::AboveAppetite, "ABOVE_APPETITE"),
    (AppetiteStatus::OutsideTolerance, "OUTSIDE_TOLERANCE"),
];

/// Seconds of a duration statistic.
fn seconds(stats: Option<&DurationStats>, p90: bool) -> Option<f64> {
    let stats = stats?;
    let d = if p90 { stats.p90 } else { stats.mean }?;
    Some(d.seconds as f64 + f64::from(d.nanos) / 1e9)
}

/// The series of `metric`.
fn series_of(metric: TrendMetric) -> Vec<Wanted> {
    use TrendMetric as M;
    let count = |n: i64| Some(n as f64);
    match metric {
        M::Unspecified => Vec::new(),
        M::OpenRisks => {
            let mut out = vec![
                wanted(metric, &[("figure", "open")], move |n| {
                    count(n.risks.as_ref()?.open_risks)
                }),
                wanted(metric, &[("figure", "unassessed")], move |n| {
                    count(n.risks.as_ref()?.unassessed)
                }),
            ];
            for (severity, label) in SEVERITIES {
                out.push(wanted(metric, &[("severity", label)], move |n| {
                    let risks = n.risks.as_ref()?;
                    count(
                        risks
                            .by_severity
                            .iter()
                            .filter(|c| c.severity == severity as i32)
                            .map(|c| c.count)
                            .sum(),
                    )
                }));
            }
            out
        }
        M::Appetite => {
            let mut out = vec![
                wanted(metric, &[("status", "WITHIN_APPETITE")], move |n| {
                    count(n.risks.as_ref()?.appetite.as_ref()?.within_appetite)
                }),
                wanted(metric, &[("status", "ABOVE_APPETITE")], move |n| {
                    count(n.risks.as_ref()?.appetite.as_ref()?.above_appetite)
                }),
                wanted(metric, &[("status", "OUTSIDE_TOLERANCE")], move |n| {
                    count(n.risks.as_ref()?.appetite.as_ref()?.outside_tolerance)
                }),
                wanted(metric, &[("status", "ABOVE_APPETITE_TREATED")], move |n| {
                    count(n.risks.as_ref()?.appetite.as_ref()?.above_appetite_treated)
                }),
            ];
            for (status, label) in STATUSES {
                out.push(wanted(metric, &[("node_status", label)], move |n| {
                    let now = n.risks.as_ref()?.appetite.as_ref()?.status;
                    Some(if now == status as i32 { 1.0 } else { 0.0 })
                }));
            }
            out
        }
        M::OverdueActionItems => vec![wanted(metric, &[], move |n| {
            count(n.risks.as_ref()?.overdue_action_items)
        })],
        M::OverdueReviews => vec![wanted(metric, &[], move |n| {
            count(n.risks.as_ref()?.overdue_reviews)
        })],
        M::ResponseFailures => vec![
            wanted(metric, &[("figure", "realizations")], move |n| {
                count(n.risks.as_ref()?.realizations)
            }),
            wanted(metric, &[("figure", "failed_control_tests")], move |n| {
                count(n.risks.as_ref()?.failed_control_tests)
            }),
            wanted(
                metric,
                &[("figure", "risks_with_failed_response")],
                move |n| count(n.risks.as_ref()?.risks_with_failed_response),
            ),
        ],
        M::IncidentKpis => {
            let mut out = vec![wanted(metric, &[("kpi", "count")], move |n| {
                count(n.incidents.as_ref()?.kpis.as_ref()?.count)
            })];
            for kpi in ["time_to_detect", "time_to_contain", "time_to_recover"] {
                for (stat, p90) in [("mean", false), ("p90", true)] {
                    out.push(wanted(metric, &[("kpi", kpi), ("stat", stat)], move |n| {
                        let kpis = n.incidents.as_ref()?.kpis.as_ref()?;
                        let stats = match kpi {
                            "time_to_detect" => kpis.time_to_detect.as_ref(),
                            "time_to_contain" => kpis.time_to_contain.as_ref(),
                            _ => kpis.time_to_recover.as_ref(),
                        };
                        seconds(stats, p90)
                    }));
                }
            }
            out
        }
    }
}

const ALL: [TrendMetric; 6] = [
    TrendMetric::OpenRisks,
    TrendMetric::Appetite,
    TrendMetric::OverdueActionItems,
    TrendMetric::OverdueReviews,
    TrendMetric::IncidentKpis,
    TrendMetric::ResponseFailures,
];

impl PostureApi {
    pub(super) async fn trend(
        &self,
        request: Request<GetPostureTrendRequest>,
    ) -> ApiResult<GetPostureTrendResponse> {
        let on = on_behalf(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let scope = posture_scope(&mut v, "scope", &req.scope);
        let mut metrics = Vec::new();
        for (i, raw) in req.metrics.iter().enumerate() {
            match TrendMetric::try_from(*raw) {
                Ok(TrendMetric::Unspecified) | Err(_) => v.add(
                    format!("metrics[{i}]"),
                    format!("{raw} is not a trend metric"),
                ),
                Ok(m) if !metrics.contains(&m) => metrics.push(m),
                Ok(_) => {}
            }
        }
        if req.metrics.is_empty() {
            metrics = ALL.to_vec();
        }
        let start = time_field(&mut v, "start_time", req.start_time.as_ref());
        let end = time_field(&mut v, "end_time", req.end_time.as_ref());
        match (start, end) {
            (Some(start), Some(end)) if start >= end => {
                v.add("start_time", "must be before end_time");
            }
            (Some(_), Some(_)) => {}
            _ => {
                if req.start_time.is_none() {
                    v.add("start_time", "is required");
                }
                if req.end_time.is_none() {
                    v.add("end_time", "is required");
                }
            }
        }
        v.finish()?;
        let (Some(scope), Some(start), Some(end)) = (scope, start, end) else {
            return Err(ApiError::Internal("request validated but absent".into()));
        };
        authorize_scope(&on.caller, &scope)?;
        let rows = self
            .store
            .trend(&scope.name(), (start, end), MAX_POINTS + 1)
            .await?;
        if rows.len() as u64 > MAX_POINTS {
            return Err(ApiError::invalid(
                "start_time",
                format!(
                    "the range holds more than {MAX_POINTS} snapshots: narrow it to at most \
                     {MAX_POINTS} points"
                ),
            ));
        }
        let mut nodes = Vec::with_capacity(rows.len());
        for (snapshot, node) in rows {
            let Some(node) = node else { continue };
            let decoded = PostureNode::decode(node.figures.as_slice()).map_err(|e| {
                ApiError::Internal(format!("snapshot {} node {}: {e}", snapshot.id, node.scope))
            })?;
            nodes.push((snapshot, decoded));
        }
        let series = metrics
            .into_iter()
            .flat_map(series_of)
            .map(|w| TrendSeries {
                metric: w.metric as i32,
                labels: w
                    .labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                points: nodes
                    .iter()
                    .filter_map(|(snapshot, node)| {
                        Some(TrendPoint {
                            time: Some(to_timestamp(snapshot.take_time)),
                            value: (w.figure)(node)?,
                            snapshot: format!("postureSnapshots/{}", snapshot.id),
                        })
                    })
                    .collect(),
            })
            .collect();
        Ok(GetPostureTrendResponse {
            scope: scope.name(),
            series,
        })
    }
}
