//! ExportReport and the exports stored at sign-off. A signed report's export streams its stored
//! chunks a few at a time; any other report is rendered on the fly, once, into a spool file —
//! which gives the total size the first chunk carries — then streamed from it. A bounded
//! channel keeps at most a few chunks in flight, so memory stays flat whatever the report's
//! size.

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
    render::{self, Document, Sink},
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

/// A draft's rendering, spooled to a temporary file only this process can read: created
/// owner-only and unlinked at once, so nothing is left behind, whatever happens.
struct Spool {
    file: tokio::fs::File,
    size: u64,
}

/// Bytes read from the spool per chunk sent.
const SPOOL_CHUNK: usize = 64 * 1024;

fn spool_error(e: std::io::Error) -> ApiError {
    ApiError::Internal(format!("export spool: {e}"))
}

impl Spool {
    fn new() -> ApiResult<Spool> {
        let path = std::env::temp_dir().join(format!("assurance-export-{}", uuid::Uuid::now_v7()));
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&path).map_err(spool_error)?;
        std::fs::remove_file(&path).map_err(spool_error)?;
        Ok(Spool {
            file: tokio::fs::File::from_std(file),
            size: 0,
        })
    }

    /// Sends the spooled bytes to `sink`, from the start.
    async fn replay(mut self, sink: &mut Streamed) -> ApiResult<()> {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        self.file
            .seek(std::io::SeekFrom::Start(0))
            .await
            .map_err(spool_error)?;
        loop {
            let mut chunk = Vec::with_capacity(SPOOL_CHUNK);
            let read = (&mut self.file)
                .take(SPOOL_CHUNK as u64)
                .read_to_end(&mut chunk)
                .await
                .map_err(spool_error)?;
            if read == 0 {
                return Ok(());
            }
            sink.put(chunk).await?;
        }
    }
}

impl Sink for Spool {
    async fn put(&mut self, chunk: Vec<u8>) -> ApiResult<()> {
        use tokio::io::AsyncWriteExt;
        self.file.write_all(&chunk).await.map_err(spool_error)?;
        self.size += chunk.len() as u64;
        Ok(())
    }
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
        let mut spool = Spool::new()?;
        render::render(&conn, &doc, format, &mut spool).await?;
        {
            use tokio::io::AsyncWriteExt;
            spool.file.flush().await.map_err(spool_error)?;
        }
        let first = ExportReportResponse {
            total_size: i64::try_from(spool.size).unwrap_or(i64::MAX),
            content_type: render::content_type(format).into(),
            draft: true,
            ..Default::default()
        };
        tokio::spawn(async move {
            let mut sink = Streamed {
                tx: tx.clone(),
                first: Some(first),
            };
            if let Err(e) = spool.replay(&mut sink).await {
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
