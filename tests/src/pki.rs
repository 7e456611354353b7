//! A throw-away PKI for TLS tests: a CA with a server and a client certificate, and a second
//! CA that signed only a "rogue" client certificate. ECDSA P-256 keys, generated with rcgen
//! and written as PEM files into a temporary directory that lives as long as the value.

use std::path::{Path, PathBuf};

use assurance_runtime::tls::{ClientTlsFiles, TlsFiles};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};

/// PEM files of a test PKI; see the module documentation.
pub struct TestPki {
    /// Holds the files; they are deleted when this is dropped.
    pub dir: tempfile::TempDir,
    /// The CA that signed the server and client certificates.
    pub ca: PathBuf,
    /// Server certificate for `localhost` and `127.0.0.1`, signed by `ca`.
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// Client certificate signed by `ca`.
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A CA that signed nothing the servers trust.
    pub other_ca: PathBuf,
    /// Client certificate signed by `other_ca`.
    pub rogue_client_cert: PathBuf,
    pub rogue_client_key: PathBuf,
}

impl TestPki {
    /// Generates the keys and certificates and writes them into a new temporary directory.
    pub fn generate() -> Self {
        let dir = tempfile::tempdir().expect("create a temporary directory for the test PKI");
        let write = |name: &str, pem: String| -> PathBuf {
            let path = dir.path().join(name);
            std::fs::write(&path, pem).expect("write a test PKI file");
            path
        };

        let ca = new_ca("Assurance Test CA");
        let other_ca = new_ca("Assurance Other Test CA");
        let (server_cert, server_key) = new_leaf(
            &ca,
            "localhost",
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (client_cert, client_key) = new_leaf(
            &ca,
            "assurance-test-client",
            &[],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        let (rogue_cert, rogue_key) = new_leaf(
            &other_ca,
            "assurance-rogue-client",
            &[],
            ExtendedKeyUsagePurpose::ClientAuth,
        );

        let ca_path = write("ca.pem", ca.pem());
        let other_ca_path = write("other-ca.pem", other_ca.pem());
        let server_cert = write("server.pem", server_cert);
        let server_key = write("server-key.pem", server_key);
        let client_cert = write("client.pem", client_cert);
        let client_key = write("client-key.pem", client_key);
        let rogue_client_cert = write("rogue-client.pem", rogue_cert);
        let rogue_client_key = write("rogue-client-key.pem", rogue_key);
        Self {
            dir,
            ca: ca_path,
            server_cert,
            server_key,
            client_cert,
            client_key,
            other_ca: other_ca_path,
            rogue_client_cert,
            rogue_client_key,
        }
    }

    /// Server flags: the server certificate, plus `ca` as client CA when `mtls`.
    pub fn server_files(&self, mtls: bool) -> TlsFiles {
        TlsFiles {
            cert: Some(self.server_cert.clone()),
            key: Some(self.server_key.clone()),
            client_ca: mtls.then(|| self.ca.clone()),
        }
    }

    /// Upstream client files trusting `ca`, with an optional client identity.
    pub fn client_files(&self, identity: Option<(&Path, &Path)>) -> ClientTlsFiles {
        ClientTlsFiles {
            ca: Some(self.ca.clone()),
            cert: identity.map(|(cert, _)| cert.to_path_buf()),
            key: identity.map(|(_, key)| key.to_path_buf()),
        }
    }
}

fn new_key() -> KeyPair {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("generate a P-256 key")
}

fn common_name(name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn
}

fn new_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name(name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    CertifiedIssuer::self_signed(params, new_key()).expect("self-sign a test CA")
}

/// A certificate signed by `issuer`: (certificate PEM, private key PEM).
fn new_leaf(
    issuer: &Issuer<'_, KeyPair>,
    name: &str,
    sans: &[&str],
    usage: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let key = new_key();
    let sans: Vec<String> = sans.iter().map(|s| (*s).to_string()).collect();
    let mut params = CertificateParams::new(sans).expect("valid subject alternative names");
    params.distinguished_name = common_name(name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    params.use_authority_key_identifier_extension = true;
    let cert = params
        .signed_by(&key, issuer)
        .expect("sign a test certificate");
    (cert.pem(), key.serialize_pem())
}

#[cfg(test)]
mod tests {
    use std::{net::SocketAddr, sync::Arc, time::Duration};

    use assurance_runtime::tls::{
        ClientTlsFiles, ConnectionLimits, ServerTls, install_crypto_provider, serve_router,
    };
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::{TcpListener, TcpStream},
        sync::oneshot,
    };
    use tokio_rustls::{
        TlsConnector,
        rustls::{
            self, RootCertStore,
            pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject},
        },
    };
    use tonic::transport::{Endpoint, Server, server::TcpIncoming};
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };

    use super::*;

    const LIMIT: Duration = Duration::from_secs(10);

    /// A gRPC server with only the health service, over TLS, on an ephemeral port.
    struct GrpcServer {
        addr: SocketAddr,
        stop: Option<oneshot::Sender<()>>,
        task: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
    }

    impl GrpcServer {
        async fn start(tls: &ServerTls) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("local address");
            let (_reporter, health) = tonic_health::server::health_reporter();
            let (stop, stopped) = oneshot::channel::<()>();
            let server = Server::builder()
                .tls_config(tls.grpc())
                .expect("tonic accepts the TLS configuration")
                .add_service(health)
                .serve_with_incoming_shutdown(
                    TcpIncoming::from(listener).with_nodelay(Some(true)),
                    async {
                        let _ = stopped.await;
                    },
                );
            Self {
                addr,
                stop: Some(stop),
                task: tokio::spawn(server),
            }
        }

        async fn stop(mut self) {
            if let Some(stop) = self.stop.take() {
                let _ = stop.send(());
            }
            let result = tokio::time::timeout(LIMIT, self.task)
                .await
                .expect("the server stops");
            result.expect("server task").expect("server result");
        }
    }

    /// Connects with `files` (plaintext when `None`) and runs a health check.
    async fn check(
        addr: SocketAddr,
        files: Option<&ClientTlsFiles>,
        domain: &str,
    ) -> Result<ServingStatus, String> {
        let call = async {
            let mut endpoint = match files {
                None => Endpoint::from_shared(format!("http://{addr}")),
                Some(_) => Endpoint::from_shared(format!("https://{addr}")),
            }
            .map_err(|e| e.to_string())?;
            if let Some(files) = files {
                let tls = files.grpc(domain)?.ok_or("client TLS configured")?;
                endpoint = endpoint.tls_config(tls).map_err(|e| e.to_string())?;
            }
            let channel = endpoint
                .connect()
                .await
                .map_err(|e| format!("connect: {e:?}"))?;
            let response = HealthClient::new(channel)
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .map_err(|e| format!("check: {e:?}"))?;
            Ok(response.into_inner().status())
        };
        tokio::time::timeout(LIMIT, call)
            .await
            .map_err(|_| "timed out".to_string())?
    }

    #[tokio::test]
    async fn pki_grpc_tls_server() {
        let pki = TestPki::generate();
        let tls = pki
            .server_files(false)
            .server()
            .expect("valid files")
            .expect("TLS on");
        assert!(!tls.mtls());
        let server = GrpcServer::start(&tls).await;

        // (a) A client trusting the CA succeeds, by DNS name and by IP address SAN.
        let trusting = pki.client_files(None);
        assert_eq!(
            check(server.addr, Some(&trusting), "localhost").await,
            Ok(ServingStatus::Serving)
        );
        assert_eq!(
            check(server.addr, Some(&trusting), "").await,
            Ok(ServingStatus::Serving)
        );
        // Without mTLS a client certificate is simply not asked for.
        let with_identity = pki.client_files(Some((&pki.client_cert, &pki.client_key)));
        assert_eq!(
            check(server.addr, Some(&with_identity), "localhost").await,
            Ok(ServingStatus::Serving)
        );

        // (b) A plaintext client fails; so does one trusting another CA or a wrong name.
        let plain = check(server.addr, None, "").await;
        assert!(plain.is_err(), "{plain:?}");
        let other = ClientTlsFiles {
            ca: Some(pki.other_ca.clone()),
            ..Default::default()
        };
        let untrusted = check(server.addr, Some(&other), "localhost").await;
        assert!(untrusted.is_err(), "{untrusted:?}");
        let wrong_name = check(server.addr, Some(&trusting), "example.com").await;
        assert!(wrong_name.is_err(), "{wrong_name:?}");

        // Failed handshakes did not stop the server.
        assert_eq!(
            check(server.addr, Some(&trusting), "localhost").await,
            Ok(ServingStatus::Serving)
        );
        server.stop().await;
    }

    #[tokio::test]
    async fn pki_grpc_mtls_server() {
        let pki = TestPki::generate();
        let tls = pki
            .server_files(true)
            .server()
            .expect("valid files")
            .expect("TLS on");
        assert!(tls.mtls());
        let server = GrpcServer::start(&tls).await;

        // (c) No client certificate: rejected.
        // With TLS 1.3 the client finishes its side of the handshake before the server
        // checks the client certificate, so the refusal surfaces on the first call.
        let anonymous = check(server.addr, Some(&pki.client_files(None)), "localhost").await;
        assert!(
            anonymous
                .as_ref()
                .is_err_and(|e| e.contains("CertificateRequired")),
            "{anonymous:?}"
        );
        // A certificate signed by another CA: rejected.
        let rogue = pki.client_files(Some((&pki.rogue_client_cert, &pki.rogue_client_key)));
        let rogue = check(server.addr, Some(&rogue), "localhost").await;
        assert!(
            rogue.as_ref().is_err_and(|e| e.contains("UnknownCA")),
            "{rogue:?}"
        );
        // The CA-signed client certificate: accepted.
        let trusted = pki.client_files(Some((&pki.client_cert, &pki.client_key)));
        assert_eq!(
            check(server.addr, Some(&trusted), "localhost").await,
            Ok(ServingStatus::Serving)
        );
        server.stop().await;
    }

    fn client_config(pki: &TestPki, identity: Option<(&Path, &Path)>) -> Arc<rustls::ClientConfig> {
        install_crypto_provider();
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&pki.ca).expect("read CA") {
            roots.add(cert.expect("CA PEM")).expect("CA certificate");
        }
        let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
        let config = match identity {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .expect("read client certificate")
                    .collect::<Result<Vec<_>, _>>()
                    .expect("client certificate PEM");
                let key = PrivateKeyDer::from_pem_file(key).expect("client key PEM");
                builder
                    .with_client_auth_cert(chain, key)
                    .expect("client identity")
            }
        };
        Arc::new(config)
    }

    /// A raw HTTP/1.1 GET over TLS; returns the whole response.
    async fn https_get(
        addr: SocketAddr,
        config: Arc<rustls::ClientConfig>,
        path: &str,
    ) -> Result<String, String> {
        let call = async {
            let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
            let name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
            let mut tls = TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(|e| format!("handshake: {e}"))?;
            let request =
                format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
            tls.write_all(request.as_bytes())
                .await
                .map_err(|e| format!("write: {e}"))?;
            let mut response = Vec::new();
            tls.read_to_end(&mut response)
                .await
                .map_err(|e| format!("read: {e}"))?;
            String::from_utf8(response).map_err(|e| e.to_string())
        };
        tokio::time::timeout(LIMIT, call)
            .await
            .map_err(|_| "timed out".to_string())?
    }

    async fn start_https(
        tls: &ServerTls,
    ) -> (
        SocketAddr,
        oneshot::Sender<()>,
        tokio::task::JoinHandle<std::io::Result<()>>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        let router = axum::Router::new().route("/hello", axum::routing::get(|| async { "hi\n" }));
        let (stop, stopped) = oneshot::channel::<()>();
        let tls = tls.clone();
        let task = tokio::spawn(async move {
            let limits = ConnectionLimits {
                header_timeout: Duration::from_secs(10),
                idle_timeout: Duration::from_secs(60),
            };
            serve_router(listener, router, Some(&tls), limits, async {
                let _ = stopped.await;
            })
            .await
        });
        (addr, stop, task)
    }

    async fn stop_https(
        stop: oneshot::Sender<()>,
        task: tokio::task::JoinHandle<std::io::Result<()>>,
    ) {
        let _ = stop.send(());
        tokio::time::timeout(LIMIT, task)
            .await
            .expect("serve_router stops")
            .expect("task")
            .expect("serve_router result");
    }

    #[tokio::test]
    async fn pki_https_serves_axum() {
        let pki = TestPki::generate();
        let tls = pki
            .server_files(false)
            .server()
            .expect("valid files")
            .expect("TLS on");
        let (addr, stop, task) = start_https(&tls).await;

        // (d) Plaintext first: the handshake fails and the loop goes on.
        let mut plain = TcpStream::connect(addr).await.expect("connect");
        plain
            .write_all(b"GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .expect("write");
        let mut junk = Vec::new();
        let _ = tokio::time::timeout(LIMIT, plain.read_to_end(&mut junk)).await;
        assert!(!String::from_utf8_lossy(&junk).contains("hi"));

        let response = https_get(addr, client_config(&pki, None), "/hello")
            .await
            .expect("HTTPS GET");
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.ends_with("hi\n"), "{response}");
        let missing = https_get(addr, client_config(&pki, None), "/nope")
            .await
            .expect("HTTPS GET");
        assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");

        stop_https(stop, task).await;
        assert!(TcpStream::connect(addr).await.is_err(), "listener closed");
    }

    /// With `--tls-client-ca` the gRPC server requires a client certificate, but the HTTP
    /// listener keeps TLS and never asks for one: probes and tracker webhooks cannot present
    /// one.
    #[tokio::test]
    async fn pki_https_never_requires_a_client_certificate() {
        let pki = TestPki::generate();
        let tls = pki
            .server_files(true)
            .server()
            .expect("valid files")
            .expect("TLS on");
        assert!(tls.mtls());
        let (addr, stop, task) = start_https(&tls).await;

        // No client certificate: served over TLS.
        let anonymous = https_get(addr, client_config(&pki, None), "/hello")
            .await
            .expect("HTTPS GET without a client certificate");
        assert!(anonymous.starts_with("HTTP/1.1 200"), "{anonymous}");
        assert!(anonymous.ends_with("hi\n"), "{anonymous}");
        // A client holding a certificate is not asked for it, whoever signed it.
        for (cert, key) in [
            (&pki.client_cert, &pki.client_key),
            (&pki.rogue_client_cert, &pki.rogue_client_key),
        ] {
            let config = client_config(&pki, Some((cert, key)));
            let response = https_get(addr, config, "/hello").await.expect("HTTPS GET");
            assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        }
        // Still TLS: plaintext gets no answer.
        let mut plain = TcpStream::connect(addr).await.expect("connect");
        plain
            .write_all(b"GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .expect("write");
        let mut junk = Vec::new();
        let _ = tokio::time::timeout(LIMIT, plain.read_to_end(&mut junk)).await;
        assert!(!String::from_utf8_lossy(&junk).contains("hi"));
        stop_https(stop, task).await;

        // The same configuration on the gRPC server still requires a CA-signed certificate.
        let server = GrpcServer::start(&tls).await;
        let anonymous = check(server.addr, Some(&pki.client_files(None)), "localhost").await;
        assert!(
            anonymous
                .as_ref()
                .is_err_and(|e| e.contains("CertificateRequired")),
            "{anonymous:?}"
        );
        let trusted = pki.client_files(Some((&pki.client_cert, &pki.client_key)));
        assert_eq!(
            check(server.addr, Some(&trusted), "localhost").await,
            Ok(ServingStatus::Serving)
        );
        server.stop().await;
    }

    #[test]
    fn pki_tls_files_errors() {
        let pki = TestPki::generate();
        let server_error = |files: TlsFiles| files.server().err().unwrap_or_default();
        let key_pem = std::fs::read_to_string(&pki.server_key).expect("read key");
        let key_body = key_pem.lines().nth(1).unwrap_or_default().to_string();
        assert!(!key_body.is_empty());

        // (e) Cert without key, key without cert.
        let err = server_error(TlsFiles {
            key: None,
            ..pki.server_files(false)
        });
        assert!(err.contains("--tls-cert given without --tls-key"), "{err}");
        let err = server_error(TlsFiles {
            cert: None,
            client_ca: None,
            ..pki.server_files(false)
        });
        assert!(err.contains("--tls-key given without --tls-cert"), "{err}");

        // Missing files name the flag and the path.
        let missing = pki.dir.path().join("missing.pem");
        let err = server_error(TlsFiles {
            key: Some(missing.clone()),
            ..pki.server_files(false)
        });
        assert!(
            err.starts_with(&format!("--tls-key {}: cannot read", missing.display())),
            "{err}"
        );
        let err = server_error(TlsFiles {
            client_ca: Some(missing.clone()),
            ..pki.server_files(false)
        });
        assert!(err.starts_with("--tls-client-ca "), "{err}");

        // Wrong contents: never echo key material.
        let garbled = pki.dir.path().join("garbled-key.pem");
        std::fs::write(
            &garbled,
            key_pem.replace("-----END PRIVATE KEY-----", "-----END"),
        )
        .expect("write");
        let wrong_contents = [
            (
                Some(pki.server_key.clone()),
                None,
                "no PEM certificate found",
            ),
            (
                None,
                Some(pki.server_cert.clone()),
                "no PEM private key found",
            ),
            (None, Some(pki.client_key.clone()), "does not match"),
            (None, Some(garbled), "malformed PEM private key"),
        ];
        for (cert, key, expected) in wrong_contents {
            let defaults = pki.server_files(false);
            let err = server_error(TlsFiles {
                cert: cert.or(defaults.cert),
                key: key.or(defaults.key),
                ..defaults
            });
            assert!(err.contains(expected), "{err}");
            assert!(!err.contains(&key_body), "{err}");
        }

        // Client side: half an identity, a key that does not match.
        let client_error =
            |files: ClientTlsFiles| files.grpc("localhost").err().unwrap_or_default();
        let err = client_error(ClientTlsFiles {
            key: None,
            ..pki.client_files(Some((&pki.client_cert, &pki.client_key)))
        });
        assert!(err.contains("without its key"), "{err}");
        let err = client_error(pki.client_files(Some((&pki.client_cert, &pki.server_key))));
        assert!(err.contains("does not match"), "{err}");
        let err = client_error(ClientTlsFiles {
            ca: Some(missing),
            ..Default::default()
        });
        assert!(err.contains("cannot read"), "{err}");
        assert!(pki.client_files(None).grpc("localhost").is_ok());
    }
}
