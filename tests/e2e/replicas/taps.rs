//! Taps in front of a server: a TCP relay counting the bytes callers send through it (which
//! replica carried the calls), and a gRPC relay recording the request ids of the CreateRisk
//! calls it passes on (what risk-service was asked, duplicates included).

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use assurance_proto::risk::v1 as pb;
use prost::Message;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use tonic::{client::GrpcService, transport::Endpoint};

pub struct Tap {
    pub addr: SocketAddr,
    sent: Arc<AtomicU64>,
}

impl Tap {
    /// Bytes sent to the server so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
}

/// A TCP relay to `upstream` on a port of its own.
pub async fn tap(upstream: SocketAddr) -> Tap {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind tap");
    let addr = listener.local_addr().expect("tap address");
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let Ok(outbound) = TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = outbound.set_nodelay(true);
                let _ = inbound.set_nodelay(true);
                let (mut from_client, mut to_client) = inbound.into_split();
                let (mut from_server, mut to_server) = outbound.into_split();
                let up = async {
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        match from_client.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                counter.fetch_add(n as u64, Ordering::Relaxed);
                                if to_server.write_all(&buf[..n]).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    let _ = to_server.shutdown().await;
                };
                let down = async {
                    let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
                    let _ = to_client.shutdown().await;
                };
                tokio::join!(up, down);
            });
        }
    });
    Tap { addr, sent }
}

/// The request ids of the CreateRisk calls a [`recorder`] passed on, and how often each.
pub type CreateCalls = Arc<Mutex<HashMap<String, usize>>>;

const CREATE_RISK: &str = "/assurance.risk.v1.RiskService/CreateRisk";

/// A gRPC relay to risk-service at `upstream` that records every CreateRisk's request id.
pub async fn recorder(upstream: SocketAddr) -> (SocketAddr, CreateCalls) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind recorder");
    let addr = listener.local_addr().expect("recorder address");
    let calls = CreateCalls::default();
    let channel = Endpoint::from_shared(format!("http://{upstream}"))
        .expect("endpoint")
        .connect_lazy();
    let seen = calls.clone();
    let router = axum::Router::new().fallback(move |request: axum::extract::Request| {
        let mut channel = channel.clone();
        let seen = seen.clone();
        async move {
            let (parts, body) = request.into_parts();
            let bytes = axum::body::to_bytes(body, 4 << 20)
                .await
                .unwrap_or_default();
            // One uncompressed gRPC message: a 5-byte prefix, then the protobuf.
            if parts.uri.path() == CREATE_RISK
                && let Some(message) = bytes.get(5..)
                && let Ok(create) = pb::CreateRiskRequest::decode(message)
            {
                *seen
                    .lock()
                    .expect("lock")
                    .entry(create.request_id)
                    .or_default() += 1;
            }
            let request = http::Request::from_parts(
                parts,
                tonic::body::Body::new(axum::body::Body::from(bytes)),
            );
            let sent = async {
                std::future::poll_fn(|cx| GrpcService::poll_ready(&mut channel, cx)).await?;
                GrpcService::call(&mut channel, request).await
            };
            match sent.await {
                Ok(response) => response.map(axum::body::Body::new),
                Err(e) => tonic::Status::unavailable(e.to_string()).into_http::<axum::body::Body>(),
            }
        }
    });
    tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_routes(tonic::service::Routes::from(router))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
            .await;
    });
    (addr, calls)
}
