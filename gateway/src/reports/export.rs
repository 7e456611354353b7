//! ExportReport and the exports stored at sign-off. A signed report's export streams its stored
//! chunks a few at a time; any other report is rendered on the fly — once into a byte counter
//! for the total size the first chunk carries, then into the stream. A bounded channel keeps
//! at most a few chunks in flight, so memory stays flat whatever the report's size.

use assurance_proto::gateway::v1::{
    ExportReportRequest, ExportReportResponse, Posture, ReportFormat, ReportState,
};
use assurance_runtime::{ApiError, ApiResult, auth::Caller, validate::Violations};
use prost::Message;
use sea_orm::{ConnectionTrait, DatabaseTransaction};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tonic::{Request, Status};

use super::{
    ReportApi, access,
    render::{self, Counter, Document, Sink},
    report_id, resource,
};
use crate::store::report as stored;

/// The stream of an export's chunks.
pub type Chunks =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<ExportReportResponse, Status>> + Send>>;

/// Chunks in flight between the reader or renderer and the client.
const IN_FLIGHT: usize = 4;
/// Stored chunks read at a time.
const CHUNKS_PER_READ: u64 = 4;

/// Writes chunks to the store, hashing and counting them.
struct Stored<'a> {
    tx: &'a DatabaseTransaction,
    id: &'a str,
    format: i32,
    seq: i64,
    size: i64,
    hash: Sha256,
}

impl Sink for Stored<'_> {
    async fn put(&mut self, chunk: Vec<u8>) -> ApiResult<()> {
        self.hash.update(&chunk);
        self.size += i64::try_from(chunk.len()).unwrap_or(i64::MAX);
        stored::put_chunk(self.tx, self.id, self.format, self.seq, chunk).await?;
        self.seq += 1;
        Ok(())
    }
}

/// Renders `doc` as `format` into the store (inside the sign-off's transaction `tx`), with its
/// size and SHA-256.
pub(super) async fn store(
    tx: &DatabaseTransaction,
    doc: &Document,
    format: ReportFormat,
) -> ApiResult<()> {
    let mut sink = Stored {
        tx,
        id: &doc.id,
        format: format as i32,
        seq: 0,
        size: 0,
        hash: Sha256::new(),
    };
    render::render(tx, doc, format, &mut sink).await?;
    let sha256 = sink
        .hash
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    stored::put_export(
        tx,
        stored::report_export::Model {
            report_id: doc.id.clone(),
            format: format as i32,
            size: sink.size,
            sha256,
        },
    )
    .await
}

/// Sends rendered chunks to the client; the first carries `first`'s header fields.
struct Streamed {
    tx: mpsc::Sender<Result<ExportReportResponse, Status>>,
    first: Option<ExportReportResponse>,
}

impl Sink for Streamed {
    async fn put(&mut self, chunk: Vec<u8>) -> ApiResult<()> {
        let mut message = self.first.take().unwrap_or_default();
        message.data = chunk;
        self.tx
            .send(Ok(message))
            .await
            .map_err(|_| ApiError::Unavailable("the client went away".into()))
    }
}

impl Streamed {
    /// An empty export still sends its header.
    async fn close(mut self) {
        if let Some(first) = self.first.take() {
            let _ = self.tx.send(Ok(first)).await;
        }
    }
}

fn stream(rx: mpsc::Receiver<Result<ExportReportResponse, Status>>) -> Chunks {
    Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

impl ReportApi {
    pub(super) async fn export(&self, request: Request<ExportReportRequest>) -> ApiResult<Chunks> {
        let caller = Caller::of(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let id = report_id(&mut v, "name", &req.name);
        let format = match ReportFormat::try_from(req.format) {
            Ok(ReportFormat::Unspecified) => {
                v.add("format", "is required: JSON, CSV, MARKDOWN or HTML");
                None
            }
            Ok(format) => Some(format),
            Err(_) => {
                v.add("format", format!("{} is not a report format", req.format));
                None
            }
        };
        v.finish()?;
        let (Some(id), Some(format)) = (id, format) else {
            return Err(ApiError::Internal("request validated but absent".into()));
        };
        let report = self.stored(id).await?;
        let services = self.store.report_services(id).await?;
        access::check_read(&caller, &req.name, &report.scope, &services)?;
        let own = access::own_services(&caller);
        let covers_all = own.as_ref().is_none_or(|own| {
            own.contains(&report.scope) || services.iter().all(|s| own.contains(&s.service))
        });
        let (tx, rx) = mpsc::channel(IN_FLIGHT);
        if report.state == ReportState::SignedOff as i32 {
            if !covers_all {
                return Err(ApiError::PermissionDenied(format!(
                    "{} is scoped to its services, and the signed exports of {} cover others; \
                     the trust team shares them",
                    caller.principal.subject, req.name
                )));
            }
            let export = self
                .store
                .report_exports(id)
                .await?
                .into_iter()
                .find(|e| e.format == format as i32)
                .ok_or_else(|| {
                    ApiError::Internal(format!("{} has no stored {format:?} export", req.name))
                })?;
            let first = ExportReportResponse {
                total_size: export.size,
                content_type: render::content_type(format).into(),
                sha256: export.sha256,
                draft: false,
                ..Default::default()
            };
            let conn = self.store.connection().clone();
            let id = id.to_string();
            tokio::spawn(async move {
                let mut sink = Streamed {
                    tx: tx.clone(),
                    first: Some(first),
                };
                if let Err(e) = send_stored(&conn, &id, format as i32, &mut sink).await {
                    let _ = tx.send(Err(e.into())).await;
                }
                sink.close().await;
            });
            return Ok(stream(rx));
        }
        let services_in_scope = services.clone();
        let mut header = resource(&report, &services_in_scope, &[], false)?;
        let mut posture = Posture::decode(report.posture.as_slice())
            .map_err(|e| ApiError::Internal(format!("stored posture: {e}")))?;
        header.posture = Some(posture);
        access::redact(&caller, &mut header);
        posture = header.posture.take().unwrap_or_default();
        let doc = Document {
            id: id.to_string(),
            report: header,
            posture,
            draft: true,
            services: own,
        };
        let conn = self.store.connection().clone();
        let mut counter = Counter::default();
        render::render(&conn, &doc, format, &mut counter).await?;
        let first = ExportReportResponse {
            total_size: i64::try_from(counter.0).unwrap_or(i64::MAX),
            content_type: render::content_type(format).into(),
            draft: true,
            ..Default::default()
        };
        tokio::spawn(async move {
            let mut sink = Streamed {
                tx: tx.clone(),
                first: Some(first),
            };
            if let Err(e) = render::render(&conn, &doc, format, &mut sink).await {
                let _ = tx.send(Err(e.into())).await;
            }
            sink.close().await;
        });
        Ok(stream(rx))
    }
}

/// Streams the stored chunks of an export, a few at a time.
async fn send_stored(
    conn: &impl ConnectionTrait,
    id: &str,
    format: i32,
    sink: &mut Streamed,
) -> ApiResult<()> {
    let mut from = 0;
    loop {
        let chunks = stored::chunks(conn, id, format, from, CHUNKS_PER_READ).await?;
        let Some(last) = chunks.last() else {
            return Ok(());
        };
        from = last.seq + 1;
        for chunk in chunks {
            sink.put(chunk.data).await?;
        }
    }
}
