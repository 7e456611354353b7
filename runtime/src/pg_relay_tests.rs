use super::*;
use sqlx::postgres::PgSslMode;
use tokio::net::TcpListener;

fn target(host: &str, port: u16) -> Option<Target> {
    Some(Target {
        host: host.to_string(),
        port,
    })
}

#[test]
fn tcp_urls_are_relayed_to_their_host_and_port() {
    for (url, expected) in [
        (
            "postgres://postgres@127.0.0.1:5432/test",
            target("127.0.0.1", 5432),
        ),
        (
            "postgres://app:pw@db.example/risk",
            target("db.example", 5432),
        ),
        (
            "postgresql://app@db.example:6543/risk",
            target("db.example", 6543),
        ),
        ("postgres://app@[::1]:5433/risk", target("::1", 5433)),
        (
            "postgres://app@localhost/risk?host=db.example&port=6432",
            target("db.example", 6432),
        ),
        (
            "postgres://app@db.example/risk?hostaddr=10.0.0.5",
            target("10.0.0.5", 5432),
        ),
        (
            "postgres://app@db.example/risk?sslmode=verify-full&sslrootcert=/ca.pem",
            target("db.example", 5432),
        ),
        (
            "postgres://app@db.example/risk?options=-c%20statement_timeout%3D5s",
            target("db.example", 5432),
        ),
    ] {
        assert_eq!(relay_target(url), expected, "{url}");
    }
}

#[test]
fn sockets_and_foreign_urls_are_not_relayed() {
    for url in [
        // Already a Unix socket: a percent-encoded path as host, or `host=/dir`.
        "postgres://app@%2Fvar%2Frun%2Fpostgresql/risk",
        "postgres://app@localhost/risk?host=/var/run/postgresql",
        // Several hosts: sqlx does not support them; it reports its own error.
        "postgres://app@a.example,b.example/risk",
        "postgres://app@a.example:5432,b.example:5433/risk",
        // Not PostgreSQL, or not a URL sqlx accepts.
        "sqlite://data/risk.db?mode=rwc",
        "sqlite::memory:",
        "postgres://app@db.example/risk?sslmode=bogus",
        "mysql://app@db.example/risk",
    ] {
        assert_eq!(relay_target(url), None, "{url}");
    }
}

#[test]
fn the_relay_changes_only_the_socket() {
    let url = "postgres://app:pw@db.example:6543/risk?sslmode=verify-full\
               &sslrootcert=/etc/ca.pem&application_name=risk&options=-c%20x%3Dy";
    let before: PgConnectOptions = url.parse().expect("url");
    let after = through_relay(before.clone(), Path::new("/tmp/assurance-pg-x"));
    assert_eq!(
        after.get_socket().map(PathBuf::as_path),
        Some(Path::new("/tmp/assurance-pg-x"))
    );
    // TLS is kept and verified against the URL's host, not the socket.
    assert_eq!(after.get_host(), "db.example");
    assert!(matches!(after.get_ssl_mode(), PgSslMode::VerifyFull));
    assert_eq!(after.get_port(), 6543);
    assert_eq!(after.get_username(), "app");
    assert_eq!(after.get_database(), Some("risk"));
    assert_eq!(after.get_application_name(), Some("risk"));
    assert_eq!(after.get_options(), before.get_options());
    for mode in ["disable", "prefer", "require", "verify-ca"] {
        let url = format!("postgres://app@db.example/risk?sslmode={mode}");
        let before: PgConnectOptions = url.parse().expect("url");
        let after = through_relay(before.clone(), Path::new("/tmp/x"));
        assert_eq!(
            format!("{:?}", after.get_ssl_mode()),
            format!("{:?}", before.get_ssl_mode()),
            "{mode}"
        );
        assert_eq!(after.get_host(), "db.example");
    }
}

#[test]
fn modes() {
    assert_eq!(RelayMode::parse("auto"), Ok(RelayMode::Auto));
    assert_eq!(RelayMode::parse(""), Ok(RelayMode::Auto));
    assert_eq!(RelayMode::parse("OFF"), Ok(RelayMode::Off));
    assert!(RelayMode::parse("sometimes").is_err());
    assert_eq!(
        target("::1", 5).map(|t| t.to_string()),
        Some("[::1]:5".into())
    );
}

#[test]
fn error_responses_are_well_formed() {
    let bytes = error_response("57P03", "down\0x");
    assert_eq!(bytes[0], b'E');
    let len = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
    assert_eq!(len, bytes.len() - 1);
    let fields = &bytes[5..];
    assert_eq!(fields, b"SFATAL\0VFATAL\0C57P03\0Mdownx\0\0");
}

fn socket_of(relay: &PgRelay) -> PathBuf {
    relay
        .dir()
        .join(format!(".s.PGSQL.{}", relay.target().port))
}

#[tokio::test]
async fn bytes_cross_both_ways_and_the_folder_is_private_and_removed() {
    let server = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = server.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = server.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = conn.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    let relay = PgRelay::start(Target {
        host: "127.0.0.1".into(),
        port,
    })
    .expect("relay");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(relay.dir())
            .expect("dir")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }
    let before = relayed_connections();
    let mut client = UnixStream::connect(socket_of(&relay))
        .await
        .expect("connect");
    client.write_all(b"hello relay").await.expect("write");
    let mut echoed = [0u8; 11];
    client.read_exact(&mut echoed).await.expect("read");
    assert_eq!(&echoed, b"hello relay");
    assert!(relayed_connections() > before);
    // A relayed connection outlives the relay's listener; new ones are refused.
    let dir = relay.dir().to_path_buf();
    let socket = socket_of(&relay);
    drop(relay);
    assert!(!dir.exists());
    assert!(UnixStream::connect(&socket).await.is_err());
    client.write_all(b"still").await.expect("write");
    let mut again = [0u8; 5];
    client.read_exact(&mut again).await.expect("read");
    assert_eq!(&again, b"still");
}

/// A closed port: bound, then released.
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("addr").port()
}

fn startup_message() -> Vec<u8> {
    let mut body = 196_608u32.to_be_bytes().to_vec(); // protocol 3.0
    body.extend(b"user\0app\0\0");
    let mut out = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    out.extend(body);
    out
}

#[tokio::test]
async fn an_unreachable_server_is_answered_with_a_postgres_error() {
    let port = closed_port().await;
    let relay = PgRelay::start(Target {
        host: "127.0.0.1".into(),
        port,
    })
    .expect("relay");
    let mut client = UnixStream::connect(socket_of(&relay))
        .await
        .expect("connect");
    // sqlx's default `sslmode=prefer` asks for TLS first.
    client.write_all(&8u32.to_be_bytes()).await.expect("write");
    client
        .write_all(&SSL_REQUEST.to_be_bytes())
        .await
        .expect("write");
    let mut answer = [0u8; 1];
    client.read_exact(&mut answer).await.expect("read");
    assert_eq!(&answer, b"N");
    client.write_all(&startup_message()).await.expect("write");
    let mut response = Vec::new();
    client.read_to_end(&mut response).await.expect("read");
    assert_eq!(response.first(), Some(&b'E'));
    let text = String::from_utf8_lossy(&response);
    // Refused: "cannot connect now", which sqlx retries as it retries a refused connection.
    assert!(text.contains("C57P03"), "{text}");
    assert!(
        text.contains(&format!("127.0.0.1:{port} is unreachable")),
        "{text}"
    );
    assert!(relay.last_error().is_some());
}

/// The PostgreSQL server of the tests, if any (`ASSURANCE_TEST_POSTGRES_URL`).
fn postgres_url() -> Option<String> {
    std::env::var("ASSURANCE_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| relay_target(u).is_some())
}

fn with_sslmode(url: &str, mode: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}sslmode={mode}")
}

#[tokio::test]
async fn tls_is_negotiated_end_to_end_through_the_relay() {
    use sea_orm::{ConnectionTrait, Statement};
    let Some(url) = postgres_url() else {
        eprintln!("skipped: ASSURANCE_TEST_POSTGRES_URL is not a TCP PostgreSQL URL");
        return;
    };
    let ssl_of = |db: sea_orm::DatabaseConnection| async move {
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            ))
            .await
            .expect("query")
            .expect("row");
        let ssl: bool = row.try_get("", "ssl").expect("ssl");
        db.close().await.ok();
        ssl
    };
    let server_has_tls = {
        let db = crate::db::connect(&url, 1).await.expect("connect");
        db.query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SHOW ssl",
        ))
        .await
        .expect("show ssl")
        .and_then(|row| row.try_get::<String>("", "ssl").ok())
            == Some("on".into())
    };
    let before = relayed_connections();
    let plain = crate::db::connect(&with_sslmode(&url, "disable"), 1)
        .await
        .expect("connect without TLS");
    assert!(!ssl_of(plain).await);
    assert!(relayed_connections() > before, "the relay carried it");
    if !server_has_tls {
        eprintln!("the server has no TLS: sslmode=require not tried");
        return;
    }
    let tls = crate::db::connect(&with_sslmode(&url, "require"), 1)
        .await
        .expect("connect with TLS through the relay");
    assert!(ssl_of(tls).await, "TLS end to end");
    // The certificate is still checked: the test server's self-signed one fails
    // `verify-full`, through the relay as it would without it.
    let before = relayed_connections();
    let refused = crate::db::connect(&with_sslmode(&url, "verify-full"), 1).await;
    assert!(
        refused.is_err(),
        "verify-full accepted an unverifiable certificate"
    );
    assert!(relayed_connections() > before);
}

#[tokio::test]
async fn folders_of_dead_processes_are_removed() {
    assert_eq!(dead_owner("assurance-pg-123-abcdef"), Some(123));
    assert_eq!(dead_owner("assurance-pg-abcdef"), None);
    assert_eq!(dead_owner("other-123-x"), None);
    if !Path::new("/proc/self").exists() {
        return;
    }
    // A process id above the kernel's maximum never runs.
    let dead = std::env::temp_dir().join("assurance-pg-4294967294-test");
    std::fs::create_dir_all(&dead).expect("dead folder");
    let relay = PgRelay::start(Target {
        host: "127.0.0.1".into(),
        port: 1,
    })
    .expect("relay");
    assert!(!dead.exists(), "the dead process's folder was removed");
    assert!(relay.dir().exists(), "a live one stays");
}
