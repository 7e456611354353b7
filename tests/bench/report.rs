//! `assurance-bench report`: ExportReport CSV of a report over a seeded register (by default
//! 100k risks in 20 services), through an embedded gateway on SQLite in its own process. The
//! report is created, confirmed by every service in scope and signed off (which renders and
//! stores its four exports); then its stored CSV is exported `--exports` times, and a second
//! report's draft CSV (rendered on the fly) as many times. Each export's rows per second, and
//! the gateway process's resident memory (VmRSS) before and at its peak while exporting.

use std::time::{Duration, Instant};

use assurance_proto::gateway::v1::{
    ConfirmReportRequest, CreateReportRequest, ExportReportRequest, Report, ReportFormat,
    SignOffReportRequest, report_service_client::ReportServiceClient,
};
use assurance_runtime::{auth::client::Bearer, time::to_timestamp};
use assurance_tests::{auth::SHARED, server};
use tonic::transport::Channel;

#[derive(clap::Parser)]
pub struct ReportArgs {
    #[arg(long, default_value_t = 100_000)]
    risks: usize,
    /// Exports measured of each kind (signed, draft).
    #[arg(long, default_value_t = 3)]
    exports: usize,
}

type Client = ReportServiceClient<Bearer<Channel>>;

/// The resident memory of process `pid`, in KiB: (VmRSS, RssAnon). VmRSS includes the pages
/// of the database file SQLite maps (`mmap_size`) and reads; RssAnon is the heap and stacks.
fn rss_kib(pid: u32) -> Result<(u64, u64), String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| format!("no {name} in /proc/{pid}/status"))
    };
    Ok((field("VmRSS:")?, field("RssAnon:")?))
}

/// The larger of each.
fn peak(a: (u64, u64), b: (u64, u64)) -> (u64, u64) {
    (a.0.max(b.0), a.1.max(b.1))
}

/// One export's figures.
struct Measured {
    rows: u64,
    bytes: u64,
    took: Duration,
    /// (VmRSS, RssAnon).
    peak_kib: (u64, u64),
    draft: bool,
}

/// Exports `report` as CSV, counting rows and bytes (nothing kept), checking a signed
/// export's SHA-256, sampling the gateway's VmRSS.
async fn export_csv(client: &Client, report: &Report, pid: u32) -> Result<Measured, String> {
    let started = Instant::now();
    let mut stream = client
        .clone()
        .export_report(ExportReportRequest {
            name: report.name.clone(),
            format: ReportFormat::Csv as i32,
        })
        .await
        .map_err(|e| format!("ExportReport: {e:?}"))?
        .into_inner();
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    let (mut bytes, mut lines, mut chunks) = (0u64, 0u64, 0u64);
    let mut highest = rss_kib(pid)?;
    let mut header = None;
    while let Some(chunk) = stream
        .message()
        .await
        .map_err(|e| format!("export stream: {e:?}"))?
    {
        if header.is_none() {
            header = Some((chunk.total_size, chunk.sha256.clone(), chunk.draft));
        }
        digest.update(&chunk.data);
        bytes += chunk.data.len() as u64;
        lines += chunk.data.iter().filter(|b| **b == b'\n').count() as u64;
        chunks += 1;
        if chunks % 16 == 0 {
            highest = peak(highest, rss_kib(pid)?);
        }
    }
    let took = started.elapsed();
    highest = peak(highest, rss_kib(pid)?);
    let (size, sha, draft) = header.ok_or("an empty stream")?;
    if size != bytes as i64 {
        return Err(format!("announced {size} bytes, received {bytes}"));
    }
    let hex: String = digest
        .finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if !draft && hex != sha {
        return Err(format!("SHA-256 {hex} is not the stored {sha}"));
    }
    Ok(Measured {
        rows: lines.saturating_sub(1),
        bytes,
        took,
        peak_kib: highest,
        draft,
    })
}

async fn create(client: &Client, title: &str) -> Result<(Report, Duration), String> {
    let now = assurance_runtime::time::now_micros();
    let started = Instant::now();
    let report = client
        .clone()
        .create_report(CreateReportRequest {
            report: Some(Report {
                scope: "enterprise".into(),
                title: title.into(),
                period_start: Some(to_timestamp(now - 90 * 86_400_000_000)),
                period_end: Some(to_timestamp(now)),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .map_err(|e| format!("CreateReport: {e:?}"))?
        .into_inner();
    Ok((report, started.elapsed()))
}

pub async fn run(args: ReportArgs) -> Result<(), String> {
    println!(
        "# assurance-bench report: ExportReport CSV over {} risks in {} services, embedded gateway on SQLite",
        args.risks,
        crate::seed::SERVICES
    );
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let url = assurance_runtime::db::sqlite_url(&dir.path().join("risk.db"));
    crate::seed::seed(&url, args.risks).await?;
    let store = risk_service::store::Store::open(
        &url,
        &risk_service::store::StoreOptions {
            max_connections: 1,
            cache_size: 0,
            ..Default::default()
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    store
        .refresh_summary_counters()
        .await
        .map_err(|e| format!("posture counters: {e}"))?;
    store.connection().clone().close().await.ok();

    let addr = server::free_addr()?;
    let gateway = crate::posture::start(
        "serve-gateway",
        addr,
        &[
            "--embedded".into(),
            "--data-dir".into(),
            dir.path().display().to_string(),
        ],
    )
    .await?;
    let pid = gateway.0.id();
    let channel = server::plain_channel(addr).await?;
    let as_ = |who: &str| -> Result<Client, String> {
        Ok(
            ReportServiceClient::new(Bearer::new(channel.clone(), SHARED.token(who))?)
                .max_decoding_message_size(64 << 20),
        )
    };
    let (trust, erm, reporter) = (as_("trust_team")?, as_("erm_executive")?, as_("reporter")?);

    let (report, took) = create(&trust, "Benchmark report").await?;
    println!(
        "# CreateReport: {} rows frozen in {:.1} s",
        report.risk_count,
        took.as_secs_f64()
    );
    let started = Instant::now();
    let mut etag = report.etag.clone();
    for service in &report.services_in_scope {
        etag = trust
            .clone()
            .confirm_report(ConfirmReportRequest {
                name: report.name.clone(),
                service: service.clone(),
                note: "benchmark".into(),
                etag: etag.clone(),
                request_id: String::new(),
            })
            .await
            .map_err(|e| format!("ConfirmReport: {e:?}"))?
            .into_inner()
            .etag;
    }
    println!(
        "# ConfirmReport × {}: {:.2} s",
        report.services_in_scope.len(),
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let signed = erm
        .clone()
        .sign_off_report(SignOffReportRequest {
            name: report.name.clone(),
            etag,
            request_id: String::new(),
        })
        .await
        .map_err(|e| format!("SignOffReport: {e:?}"))?
        .into_inner();
    println!(
        "# SignOffReport (renders and stores the 4 exports): {:.1} s; sizes: {}",
        started.elapsed().as_secs_f64(),
        signed
            .exports
            .iter()
            .map(|e| format!(
                "{} {} bytes",
                ReportFormat::try_from(e.format)
                    .map(|f| f.as_str_name())
                    .unwrap_or("?"),
                e.size_bytes
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let (draft, _) = create(&trust, "Benchmark draft").await?;

    let baseline = rss_kib(pid)?;
    let mb = |kib: u64| kib as f64 / 1024.0;
    println!(
        "# gateway before the exports: VmRSS {:.1} MB, RssAnon {:.1} MB",
        mb(baseline.0),
        mb(baseline.1)
    );
    println!(
        "| export | rows | bytes | seconds | rows/s | peak VmRSS MB | VmRSS growth MB | RssAnon growth MB |"
    );
    println!("|---|--:|--:|--:|--:|--:|--:|--:|");
    for (label, subject) in [("signed (stored)", &signed), ("draft (on the fly)", &draft)] {
        for _ in 0..args.exports {
            let m = export_csv(&reporter, subject, pid).await?;
            if m.rows as i64 != subject.risk_count {
                return Err(format!(
                    "{} rows exported of {}",
                    m.rows, subject.risk_count
                ));
            }
            println!(
                "| {label}{} | {} | {} | {:.2} | {:.0} | {:.1} | {:.1} | {:.1} |",
                if m.draft { ", marked draft" } else { "" },
                m.rows,
                m.bytes,
                m.took.as_secs_f64(),
                m.rows as f64 / m.took.as_secs_f64(),
                mb(m.peak_kib.0),
                mb(m.peak_kib.0.saturating_sub(baseline.0)),
                mb(m.peak_kib.1.saturating_sub(baseline.1)),
            );
        }
    }
    Ok(())
}
