//! Closed-loop load from tonic clients: `connections` HTTP/2 connections × `in_flight`
//! concurrent calls each, for a fixed time, counting gRPC status codes itself.

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use assurance_proto::{
    incident::v1::incident_service_client::IncidentServiceClient,
    risk::v1::{self as pb, risk_service_client::RiskServiceClient},
};
use assurance_tests::server::AuthChannel as Channel;
use tonic::Code;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use uuid::Uuid;

use crate::seed;

/// How hard and how long each measurement drives the server.
#[derive(clap::Args)]
pub struct LoadShape {
    /// Connections to the server.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Concurrent calls per connection.
    #[arg(long, default_value_t = 16)]
    pub in_flight: usize,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 3.0)]
    pub duration: f64,
    /// Rounds; each figure is the median over them (at least 5 for reported figures).
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Op {
    /// gRPC health Check: the transport baseline.
    Health,
    GetRisk,
    ListRisks,
    CreateRisk,
    AssessRisk,
    DeclareIncident,
    AddTimelineEvent,
    GetIncident,
    GetIncidentMetrics,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Health => "Health.Check",
            Op::GetRisk => "GetRisk",
            Op::ListRisks => "ListRisks",
            Op::CreateRisk => "CreateRisk",
            Op::AssessRisk => "AssessRisk",
            Op::DeclareIncident => "DeclareIncident",
            Op::AddTimelineEvent => "AddTimelineEvent",
            Op::GetIncident => "GetIncident",
            Op::GetIncidentMetrics => "GetIncidentMetrics",
        }
    }

    pub fn path(self) -> &'static str {
        match self {
            Op::Health => "/grpc.health.v1.Health/Check",
            Op::GetRisk => "/assurance.risk.v1.RiskService/GetRisk",
            Op::ListRisks => "/assurance.risk.v1.RiskService/ListRisks",
            Op::CreateRisk => "/assurance.risk.v1.RiskService/CreateRisk",
            Op::AssessRisk => "/assurance.risk.v1.RiskService/AssessRisk",
            Op::DeclareIncident => "/assurance.incident.v1.IncidentService/DeclareIncident",
            Op::AddTimelineEvent => "/assurance.incident.v1.IncidentService/CreateTimelineEvent",
            Op::GetIncident => "/assurance.incident.v1.IncidentService/GetIncident",
            Op::GetIncidentMetrics => "/assurance.incident.v1.IncidentService/GetIncidentMetrics",
        }
    }
}

/// What one timed run measured.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    pub ok: u64,
    pub codes: BTreeMap<String, u64>,
    pub elapsed: Duration,
    /// Latencies of successful calls, sorted, in microseconds.
    pub latencies_us: Vec<u32>,
    /// Mean latency when only that is known (h2load).
    pub mean_ms: Option<f64>,
}

impl Sample {
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Nearest-rank percentile in milliseconds.
    pub fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * self.latencies_us.len() as f64)
            .ceil()
            .max(1.0) as usize;
        f64::from(self.latencies_us[rank.min(self.latencies_us.len()) - 1]) / 1000.0
    }

    pub fn errors(&self) -> u64 {
        self.codes
            .iter()
            .filter(|(c, _)| !c.starts_with("Ok"))
            .map(|(_, n)| n)
            .sum()
    }
}

/// Inputs shared by the workers of a run.
pub struct Workload {
    pub risk_ids: Vec<Uuid>,
    pub incident_ids: Vec<Uuid>,
    /// GetRisk draws ids from the first `get_working_set` seeded risks.
    pub get_working_set: usize,
}

fn rand_index(state: &mut u64, n: usize) -> usize {
    // xorshift64*: cheap, and good enough to spread requests.
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    (state.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1) as u64) as usize
}

async fn call(
    op: Op,
    channel: &Channel,
    work: &Workload,
    rng: &mut u64,
) -> Result<(), tonic::Status> {
    match op {
        Op::Health => {
            HealthClient::new(channel.clone())
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await?;
        }
        Op::GetRisk => {
            let id = work.risk_ids[rand_index(rng, work.get_working_set.min(work.risk_ids.len()))];
            RiskServiceClient::new(channel.clone())
                .get_risk(pb::GetRiskRequest {
                    name: format!("risks/{id}"),
                })
                .await?;
        }
        Op::ListRisks => {
            let svc = seed::service_id(rand_index(rng, seed::SERVICES));
            RiskServiceClient::new(channel.clone())
                .list_risks(pb::ListRisksRequest {
                    page_size: 50,
                    filter: format!("service = services/{svc} AND severity >= HIGH"),
                    ..Default::default()
                })
                .await?;
        }
        Op::CreateRisk => {
            let svc = seed::service_id(rand_index(rng, seed::SERVICES));
            RiskServiceClient::new(channel.clone())
                .create_risk(pb::CreateRiskRequest {
                    risk: Some(pb::Risk {
                        title: "Load-test risk".into(),
                        description: "Created by assurance-bench.".into(),
                        service: format!("services/{svc}"),
                        threat: pb::Threat::External as i32,
                        identification_source: pb::IdentificationSource::ContinuousMonitoring
                            as i32,
                        owner: "bench@example.com".into(),
                        ..Default::default()
                    }),
                    request_id: Uuid::now_v7().to_string(),
                })
                .await?;
        }
        Op::AssessRisk => {
            let id = work.risk_ids[rand_index(rng, work.risk_ids.len())];
            let metric = |rng: &mut u64| rand_index(rng, 5) as i32 + 1;
            RiskServiceClient::new(channel.clone())
                .assess_risk(pb::AssessRiskRequest {
                    name: format!("risks/{id}"),
                    assessment: Some(pb::Assessment {
                        impact: metric(rng),
                        likelihood: metric(rng),
                        control_deficiency: metric(rng),
                        assessor: "bench@example.com".into(),
                        ..Default::default()
                    }),
                    request_id: Uuid::now_v7().to_string(),
                    derive_control_deficiency: false,
                })
                .await?;
        }
        Op::DeclareIncident => {
            use assurance_proto::incident::v1 as ipb;
            IncidentServiceClient::new(channel.clone())
                .declare_incident(ipb::DeclareIncidentRequest {
                    incident: Some(ipb::Incident {
                        title: "Load-test incident".into(),
                        classification: ipb::Classification::Event as i32,
                        functional_impact: ipb::FunctionalImpact::Low as i32,
                        information_impacts: vec![ipb::InformationImpact::None as i32],
                        recoverability: ipb::Recoverability::Regular as i32,
                        affected_services: vec![format!(
                            "services/{}",
                            seed::service_id(rand_index(rng, seed::SERVICES))
                        )],
                        ..Default::default()
                    }),
                    request_id: Uuid::now_v7().to_string(),
                })
                .await?;
        }
        Op::AddTimelineEvent => {
            let id = work.incident_ids[rand_index(rng, work.incident_ids.len())];
            IncidentServiceClient::new(channel.clone())
                .create_timeline_event(assurance_proto::incident::v1::CreateTimelineEventRequest {
                    parent: format!("incidents/{id}"),
                    summary: "Load-test note".into(),
                    request_id: Uuid::now_v7().to_string(),
                })
                .await?;
        }
        Op::GetIncident => {
            let id = work.incident_ids[rand_index(rng, work.incident_ids.len())];
            IncidentServiceClient::new(channel.clone())
                .get_incident(assurance_proto::incident::v1::GetIncidentRequest {
                    name: format!("incidents/{id}"),
                })
                .await?;
        }
        Op::GetIncidentMetrics => {
            IncidentServiceClient::new(channel.clone())
                .get_incident_metrics(
                    assurance_proto::incident::v1::GetIncidentMetricsRequest::default(),
                )
                .await?;
        }
    }
    Ok(())
}

/// Runs `op` on `channels` × `in_flight` workers for `duration`.
pub async fn run(
    op: Op,
    channels: &[Channel],
    in_flight: usize,
    duration: Duration,
    work: Arc<Workload>,
) -> Sample {
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for (c, channel) in channels.iter().enumerate() {
        for k in 0..in_flight {
            let channel = channel.clone();
            let work = work.clone();
            tasks.push(tokio::spawn(async move {
                let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (((c as u64) << 32) | (k as u64 + 1));
                let mut latencies = Vec::with_capacity(4096);
                let mut codes: BTreeMap<String, u64> = BTreeMap::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let code = match call(op, &channel, &work, &mut rng).await {
                        Ok(()) => {
                            latencies
                                .push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                            Code::Ok
                        }
                        Err(status) => status.code(),
                    };
                    *codes.entry(format!("{code:?}")).or_default() += 1;
                }
                (latencies, codes)
            }));
        }
    }
    let mut sample = Sample::default();
    for task in tasks {
        if let Ok((latencies, codes)) = task.await {
            sample.latencies_us.extend(latencies);
            for (code, n) in codes {
                *sample.codes.entry(code).or_default() += n;
            }
        }
    }
    sample.elapsed = started.elapsed();
    sample.ok = sample.codes.get("Ok").copied().unwrap_or(0);
    sample.latencies_us.sort_unstable();
    sample
}
