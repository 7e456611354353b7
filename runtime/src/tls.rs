//! TLS and mutual TLS for every listener and upstream link: rustls with the ring provider
//! (no aws-lc, no system OpenSSL).
//!
//! * [`TlsFiles`] turns the shared `--tls-cert`, `--tls-key` and `--tls-client-ca` flags into a
//!   [`ServerTls`], which configures both the gRPC server ([`ServerTls::grpc`]) and the HTTP
//!   listener ([`serve_router`]). With `--tls-client-ca` the gRPC server requires a client
//!   certificate signed by that CA; the HTTP listener keeps TLS but never asks for one, since
//!   what reaches it (orchestrator probes, tracker webhooks) cannot present one.
//! * [`ClientTlsFiles`] configures an upstream gRPC channel: the CA to trust and an optional
//!   client identity for mTLS.
//!
//! Every file is read and checked up front, so a bad flag fails at start-up with a message
//! naming the flag and the path (never key material), not at the first connection.

use std::{
    fmt,
    future::Future,
    path::{Path, PathBuf},
    sync::{Arc, Once},
    time::Duration,
};

use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto, graceful::GracefulShutdown},
    service::TowerToHyperService,
};
use tokio::{net::TcpListener, task::JoinSet};
use tokio_rustls::{
    TlsAcceptor,
    rustls::{
        self, RootCertStore,
        pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject},
        server::WebPkiClientVerifier,
    },
};
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

/// How long a client gets to complete the TLS handshake, on the gRPC and HTTP listeners and
/// on upstream links. Without it a client that opens a connection and stays silent would
/// hold a handshake task forever.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long [`serve_router`] lets open connections finish once shutdown starts.
const DRAIN_TIMEOUT: Duration = crate::serve::DRAIN_TIMEOUT;

/// Installs rustls' ring provider as the process-wide default. Idempotent and cheap after the
/// first call; if another provider was installed first, that one stays.
///
/// tonic's server-side acceptor (and rustls' `ServerConfig::builder()`) use the process
/// default. While ring is the only provider compiled into rustls it would be picked
/// automatically, but installing it explicitly keeps working if another dependency ever
/// enables a second provider. [`TlsFiles::server`] and [`ClientTlsFiles::grpc`] call this
/// themselves; binaries should still call it first thing in `main`, before building any
/// other rustls configuration (database TLS, for instance).
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Err means a provider is already installed: keep it.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// PEM file paths from the shared flags `--tls-cert`, `--tls-key` and `--tls-client-ca`.
#[derive(Debug, Clone, Default)]
pub struct TlsFiles {
    /// The server certificate chain (leaf first).
    pub cert: Option<PathBuf>,
    /// The server private key (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
    /// CA certificate(s) that client certificates must chain to; setting it turns on mTLS.
    pub client_ca: Option<PathBuf>,
}

impl TlsFiles {
    /// The server TLS configuration, or `None` when neither a certificate nor a key is given
    /// (plaintext).
    ///
    /// Errors when only one of cert/key is given, when the client CA is given without
    /// cert/key, or when a file is unreadable, holds no valid PEM, or the key does not match
    /// the certificate. Messages name the flag and the path, never key material.
    pub fn server(&self) -> Result<Option<ServerTls>, String> {
        let (cert_path, key_path) = match (&self.cert, &self.key) {
            (None, None) => {
                return match &self.client_ca {
                    None => Ok(None),
                    Some(_) => Err("--tls-client-ca needs --tls-cert and --tls-key".to_string()),
                };
            }
            (Some(_), None) => return Err("--tls-cert given without --tls-key".to_string()),
            (None, Some(_)) => return Err("--tls-key given without --tls-cert".to_string()),
            (Some(cert), Some(key)) => (cert, key),
        };
        install_crypto_provider();

        let cert_pem = read("--tls-cert", cert_path)?;
        let chain = parse_certs("--tls-cert", cert_path, &cert_pem)?;
        let key_pem = read("--tls-key", key_path)?;
        let key = parse_key("--tls-key", key_path, &key_pem)?;

        let mut grpc = ServerTlsConfig::new()
            .identity(Identity::from_pem(&cert_pem, &key_pem))
            .timeout(HANDSHAKE_TIMEOUT);

        if let Some(ca_path) = &self.client_ca {
            let ca_pem = read("--tls-client-ca", ca_path)?;
            let roots = root_store("--tls-client-ca", ca_path, &ca_pem)?;
            // Checks the CA as rustls (under tonic) will, so a bad file fails at start-up.
            WebPkiClientVerifier::builder(Arc::new(roots))
                .build()
                .map_err(|e| format!("--tls-client-ca {}: {e}", ca_path.display()))?;
            grpc = grpc
                .client_ca_root(Certificate::from_pem(&ca_pem))
                .client_auth_optional(false);
        }
        // The HTTP listener never requests a client certificate, mTLS or not: probes and
        // tracker webhooks reach it without one. It serves nothing but probes and webhooks
        // (each webhook authenticated by its own signature), never the API.
        let mut http = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| key_error("--tls-key", key_path, "--tls-cert", cert_path, &e))?;
        http.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];

        Ok(Some(ServerTls {
            grpc,
            http: Arc::new(http),
            mtls: self.client_ca.is_some(),
        }))
    }
}

/// A checked server TLS configuration for the gRPC server and the HTTP listener.
#[derive(Clone)]
pub struct ServerTls {
    grpc: ServerTlsConfig,
    http: Arc<rustls::ServerConfig>,
    mtls: bool,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("mtls", &self.mtls)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// For `tonic::transport::Server::builder().tls_config(..)`: the identity, the handshake
    /// timeout and, with a client CA, a required client certificate. tonic wraps whatever
    /// incoming stream is served (including `serve_with_incoming_shutdown` with a
    /// `TcpIncoming`) in the TLS acceptor; failed handshakes are logged at debug and do not
    /// stop the server.
    pub fn grpc(&self) -> ServerTlsConfig {
        self.grpc.clone()
    }

    /// Whether gRPC clients must present a certificate signed by the client CA (the HTTP
    /// listener never asks for one).
    pub fn mtls(&self) -> bool {
        self.mtls
    }

    /// The rustls configuration used by [`serve_router`] (ALPN `h2` and `http/1.1`; no
    /// client certificate requested).
    pub fn rustls_config(&self) -> Arc<rustls::ServerConfig> {
        self.http.clone()
    }
}

/// How the HTTP listener guards its connections ([`serve_router`]).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// HTTP/1: the longest a request head may take to arrive.
    pub header_timeout: Duration,
    /// A connection that moves no byte for this long is closed.
    pub idle_timeout: Duration,
}

/// Serves an axum `router` (HTTP/1.1 and HTTP/2; over TLS when `tls` is given) on `listener`
/// until `shutdown` resolves. One task per connection; a failed or timed-out handshake is
/// logged at debug and does not stop the loop; a request head slower than the header timeout,
/// or a connection idle past the idle timeout, is closed. On shutdown the listener closes,
/// open connections are asked to finish (HTTP/2 GOAWAY, HTTP/1 close after the current
/// response) and are cut after the drain timeout.
pub async fn serve_router(
    listener: TcpListener,
    router: axum::Router,
    tls: Option<&ServerTls>,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let acceptor = tls.map(|tls| TlsAcceptor::from(tls.http.clone()));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // hyper enforces its HTTP/1 header read timeout only when a timer is set.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    let mut conns = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);

    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) if is_connection_error(&e) => continue,
                    Err(e) => {
                        // Typically out of file descriptors: back off instead of spinning.
                        tracing::error!(error = %e, "HTTP accept failed");
                        tokio::select! {
                            () = &mut shutdown => break,
                            () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        }
                    }
                };
                let _ = tcp.set_nodelay(true);
                let tcp = crate::limits::IdleTimeout::new(tcp, limits.idle_timeout);
                let acceptor = acceptor.clone();
                let builder = builder.clone();
                let service = TowerToHyperService::new(router.clone());
                let watcher = graceful.watcher();
                conns.spawn(async move {
                    let Some(acceptor) = acceptor else {
                        let conn = builder.serve_connection_with_upgrades(TokioIo::new(tcp), service);
                        if let Err(e) = watcher.watch(conn.into_owned()).await {
                            tracing::debug!(%peer, error = %e, "HTTP connection ended with an error");
                        }
                        return;
                    };
                    let stream =
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                            Ok(Ok(stream)) => stream,
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake timed out");
                                return;
                            }
                        };
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    if let Err(e) = watcher.watch(conn.into_owned()).await {
                        tracing::debug!(%peer, error = %e, "HTTPS connection ended with an error");
                    }
                });
            },
            Some(done) = conns.join_next(), if !conns.is_empty() => log_panic(done),
        }
    }

    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("HTTP drain timeout: closing remaining connections");
    }
    // Cut whatever is left.
    conns.abort_all();
    while let Some(done) = conns.join_next().await {
        log_panic(done);
    }
    Ok(())
}

fn log_panic(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done
        && e.is_panic()
    {
        tracing::error!(error = %e, "HTTPS connection task panicked");
    }
}

fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// Client side of an upstream link (gateway → services): the CA to trust and an optional
/// client identity (certificate and key) for mTLS. All paths point at PEM files.
#[derive(Debug, Clone, Default)]
pub struct ClientTlsFiles {
    /// CA certificate(s) the upstream's server certificate must chain to.
    pub ca: Option<PathBuf>,
    /// Client certificate chain presented to the upstream (mTLS).
    pub cert: Option<PathBuf>,
    /// Private key of the client certificate.
    pub key: Option<PathBuf>,
}

impl ClientTlsFiles {
    /// The channel TLS configuration for `Endpoint::tls_config`, or `None` when nothing is
    /// set (plaintext). `domain` is the name checked against the server certificate (a DNS
    /// name or an IP address); empty means the host of the endpoint URI.
    ///
    /// Errors when only one of cert/key is given, when cert/key are given without a CA (no
    /// system roots are built in, so nothing could be trusted), or when a file is unreadable,
    /// holds no valid PEM, or the key does not match the certificate.
    pub fn grpc(&self, domain: &str) -> Result<Option<ClientTlsConfig>, String> {
        if self.ca.is_none() && self.cert.is_none() && self.key.is_none() {
            return Ok(None);
        }
        let Some(ca_path) = &self.ca else {
            return Err(
                "a client TLS certificate needs a CA to trust (no system roots are built in)"
                    .to_string(),
            );
        };
        install_crypto_provider();

        let ca_pem = read("TLS CA", ca_path)?;
        let roots = root_store("TLS CA", ca_path, &ca_pem)?;
        let mut config = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&ca_pem))
            .timeout(HANDSHAKE_TIMEOUT);
        if !domain.is_empty() {
            ServerName::try_from(domain)
                .map_err(|_| format!("invalid TLS server name {domain:?}"))?;
            config = config.domain_name(domain);
        }

        match (&self.cert, &self.key) {
            (None, None) => {}
            (Some(_), None) => {
                return Err("a client TLS certificate was given without its key".to_string());
            }
            (None, Some(_)) => {
                return Err("a client TLS key was given without its certificate".to_string());
            }
            (Some(cert_path), Some(key_path)) => {
                let cert_pem = read("client TLS certificate", cert_path)?;
                let chain = parse_certs("client TLS certificate", cert_path, &cert_pem)?;
                let key_pem = read("client TLS key", key_path)?;
                let key = parse_key("client TLS key", key_path, &key_pem)?;
                // Loads the key and checks it against the certificate, as tonic will.
                rustls::ClientConfig::builder()
                    .with_root_certificates(roots)
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| {
                        key_error(
                            "client TLS key",
                            key_path,
                            "client TLS certificate",
                            cert_path,
                            &e,
                        )
                    })?;
                config = config.identity(Identity::from_pem(&cert_pem, &key_pem));
            }
        }
        Ok(Some(config))
    }
}

fn read(flag: &str, path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{flag} {}: cannot read: {e}", path.display()))
}

/// Every certificate in `pem` (other PEM sections are ignored); at least one.
fn parse_certs(
    flag: &str,
    path: &Path,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{flag} {}: invalid PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{flag} {}: no PEM certificate found",
            path.display()
        ));
    }
    Ok(certs)
}

/// The first private key in `pem`. The underlying PEM error is not shown: it may quote
/// parts of the file.
fn parse_key(flag: &str, path: &Path, pem: &[u8]) -> Result<PrivateKeyDer<'static>, String> {
    use rustls::pki_types::pem::Error;
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        Error::NoItemsFound => format!(
            "{flag} {}: no PEM private key found (expected PKCS#8, PKCS#1 or SEC1)",
            path.display()
        ),
        _ => format!("{flag} {}: malformed PEM private key", path.display()),
    })
}

/// A trust store of every certificate in `pem`; each must be a usable trust anchor.
fn root_store(flag: &str, path: &Path, pem: &[u8]) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for cert in parse_certs(flag, path, pem)? {
        roots
            .add(cert)
            .map_err(|e| format!("{flag} {}: unusable CA certificate: {e}", path.display()))?;
    }
    Ok(roots)
}

fn key_error(
    key_flag: &str,
    key_path: &Path,
    cert_flag: &str,
    cert_path: &Path,
    e: &rustls::Error,
) -> String {
    match e {
        rustls::Error::InconsistentKeys(_) => format!(
            "{key_flag} {} does not match the certificate in {cert_flag} {}",
            key_path.display(),
            cert_path.display()
        ),
        _ => format!(
            "{key_flag} {}: unusable private key: {e}",
            key_path.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_set_is_plaintext() {
        assert!(matches!(TlsFiles::default().server(), Ok(None)));
        assert!(matches!(
            ClientTlsFiles::default().grpc("localhost"),
            Ok(None)
        ));
    }

    #[test]
    fn tls_files_half_pairs_are_rejected() {
        let only_cert = TlsFiles {
            cert: Some("/nonexistent/cert.pem".into()),
            ..Default::default()
        };
        let err = only_cert.server().err().unwrap_or_default();
        assert!(err.contains("--tls-cert given without --tls-key"), "{err}");

        let only_key = TlsFiles {
            key: Some("/nonexistent/key.pem".into()),
            ..Default::default()
        };
        let err = only_key.server().err().unwrap_or_default();
        assert!(err.contains("--tls-key given without --tls-cert"), "{err}");

        let only_ca = TlsFiles {
            client_ca: Some("/nonexistent/ca.pem".into()),
            ..Default::default()
        };
        let err = only_ca.server().err().unwrap_or_default();
        assert!(err.contains("--tls-client-ca needs"), "{err}");
    }

    #[test]
    fn tls_files_missing_file_names_flag_and_path() {
        let files = TlsFiles {
            cert: Some("/nonexistent/cert.pem".into()),
            key: Some("/nonexistent/key.pem".into()),
            client_ca: None,
        };
        let err = files.server().err().unwrap_or_default();
        assert!(
            err.starts_with("--tls-cert /nonexistent/cert.pem: cannot read"),
            "{err}"
        );
    }

    #[test]
    fn client_tls_files_need_a_ca() {
        let files = ClientTlsFiles {
            ca: None,
            cert: Some("/nonexistent/cert.pem".into()),
            key: Some("/nonexistent/key.pem".into()),
        };
        let err = files.grpc("localhost").err().unwrap_or_default();
        assert!(err.contains("needs a CA"), "{err}");
    }

    #[test]
    fn install_crypto_provider_is_idempotent() {
        install_crypto_provider();
        install_crypto_provider();
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }
}
