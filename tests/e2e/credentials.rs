//! Credential lifecycle and secrets, end to end: a deleted or broken tokens file, a JWKS file
//! reloaded on change, a JWKS URL fetched with a cache and refetched on an unknown `kid`
//! (rate-limited), the maximum JWT lifetime, request-record retention, and the modes of the
//! files the embedded gateway creates.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use assurance_proto::incident::v1 as ipb;
use assurance_proto::risk::v1 as pb;
use assurance_runtime::auth::client::Bearer;
use assurance_tests::jwt;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use tonic::{Code, transport::Channel};

use crate::helpers::*;

const ISSUER: &str = "https://login.example.com";
const AUDIENCE: &str = "assurance";

/// Lists business units with `token`.
async fn list_as(channel: &Channel, token: &str) -> Result<(), tonic::Status> {
    pb::organization_service_client::OrganizationServiceClient::new(
        Bearer::new(channel.clone(), token).expect("header"),
    )
    .list_business_units(pb::ListBusinessUnitsRequest::default())
    .await
    .map(|_| ())
}

/// Polls `check` until it holds, for at most `secs` seconds.
async fn eventually<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A tokens file with a typo keeps the last good tokens in force; a deleted one leaves none of
/// its tokens valid (cached or not); restored, its tokens work again.
async fn tokens_file_deleted_or_broken(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = risk_service(&db, risk_service::domain::scoring::Methodology::Standard).await;
    let viewer = app.tokens.token("viewer").to_string();
    list_as(&app.channel, &viewer).await.expect("valid token");
    let good = std::fs::read_to_string(&app.tokens.path).expect("tokens file");
    std::fs::write(&app.tokens.path, format!("{good}\n[[tokens]\nsha256 = ")).expect("typo");
    // Past two reload intervals: still accepted.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    list_as(&app.channel, &viewer)
        .await
        .expect("a broken file keeps the last good set");
    std::fs::remove_file(&app.tokens.path).expect("delete");
    eventually(10, "a deleted tokens file revokes its tokens", || async {
        matches!(list_as(&app.channel, &viewer).await, Err(e) if e.code() == Code::Unauthenticated)
    })
    .await;
    std::fs::write(&app.tokens.path, good).expect("restore");
    eventually(10, "a restored tokens file is read again", || async {
        list_as(&app.channel, &viewer).await.is_ok()
    })
    .await;
}

/// A request id is remembered for `--request-retention`, then forgotten: reusing it with
/// another payload is refused at first and creates the resource once the record expired. In
/// risk-service, incident-service and the embedded gateway (which cleans the services'
/// databases too).
async fn request_records_expire(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut config = risk_config(&db);
    config.security.request_retention = Some(Duration::from_secs(2));
    let running = risk_service::start(&config, assurance_runtime::serve::Shutdown::new())
        .await
        .expect("risk-service starts");
    let risk = App::connect(running, db.tokens.clone()).await;
    reuse_after_retention(&risk, "risk").await;
    risk.stop().await;

    let db = TestDb::new(backend).await;
    let mut config = incident_config(&db);
    config.security.request_retention = Some(Duration::from_secs(2));
    let running = incident_service::start(&config, assurance_runtime::serve::Shutdown::new())
        .await
        .expect("incident-service starts");
    let incidents = App::connect(running, db.tokens.clone()).await;
    let declare = |title: &str| {
        let incident = ipb::Incident {
            title: title.into(),
            ..phishing_wave()
        };
        declare_incident_as(&incidents, "admin", incident, "retained-1")
    };
    declare("First wave").await.expect("declared");
    let err = declare("Second wave").await.expect_err("remembered");
    assert_reason(&err, Code::InvalidArgument, "REQUEST_ID_REUSED");
    eventually(20, "the incident request record expires", || async {
        declare("Second wave").await.is_ok()
    })
    .await;
    incidents.stop().await;

    let db = TestDb::new(backend).await;
    let mut config = embedded_config(&db, backend);
    config.security.request_retention = Some(Duration::from_secs(2));
    let gateway = start_gateway(&db, config).await;
    reuse_after_retention(&gateway, "gw").await;
    gateway.stop().await;
}

async fn reuse_after_retention(app: &App, prefix: &str) {
    let create = |id: String| {
        let mut org = app.org();
        async move {
            org.create_business_unit(pb::CreateBusinessUnitRequest {
                business_unit_id: id,
                business_unit: Some(pb::BusinessUnit {
                    display_name: "Unit".into(),
                    ..Default::default()
                }),
                request_id: "retained-1".into(),
            })
            .await
        }
    };
    create(format!("{prefix}-first")).await.expect("created");
    let err = create(format!("{prefix}-second"))
        .await
        .expect_err("the request id is remembered");
    assert_reason(&err, Code::InvalidArgument, "REQUEST_ID_REUSED");
    let started = Instant::now();
    eventually(20, "the request record expires", || async {
        create(format!("{prefix}-second")).await.is_ok()
    })
    .await;
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "kept for about the retention"
    );
}

crate::on_both_backends!(tokens_file_deleted_or_broken, request_records_expire);

/// `jwks` without its ES256 key.
fn rsa_only(jwks: &str) -> String {
    let mut doc: serde_json::Value = serde_json::from_str(jwks).expect("jwks");
    if let Some(keys) = doc["keys"].as_array_mut() {
        keys.retain(|k| k["kty"] == "RSA");
    }
    doc.to_string()
}

/// `token` with its header's `kid` replaced (the signature no longer matters: the key is
/// looked up first).
fn with_kid(token: &str, kid: &str) -> String {
    let mut parts = token.splitn(2, '.');
    let header = parts.next().expect("header");
    let rest = parts.next().expect("rest");
    let mut header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("b64")).expect("json");
    header["kid"] = serde_json::json!(kid);
    format!("{}.{rest}", URL_SAFE_NO_PAD.encode(header.to_string()))
}

/// An embedded gateway accepting JWTs of `keys` from `security`.
async fn jwt_gateway(db: &TestDb, security: gateway::config::Security) -> App {
    let mut config = gateway_config(db);
    config.embedded = true;
    config.security = security;
    start_gateway(db, config).await
}

/// The JWKS file is re-read when it changes; the maximum lifetime refuses a token valid until
/// the year 33658, and `--max-token-lifetime` lowers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_file_reload_and_token_lifetime() {
    let db = TestDb::new(Backend::Sqlite).await;
    let keys = jwt::TestKeys::new();
    let path = db.dir.path().join("jwks.json");
    std::fs::write(&path, rsa_only(&keys.jwks_json())).expect("write jwks");
    let app = jwt_gateway(
        &db,
        gateway::config::Security {
            jwks_file: Some(path.clone()),
            jwt_issuer: Some(ISSUER.into()),
            jwt_audience: Some(AUDIENCE.into()),
            max_token_lifetime: Some(Duration::from_secs(2 * 3600)),
            ..Default::default()
        },
    )
    .await;
    let good = jwt::claims("alice@example.com", &["viewer"], ISSUER, AUDIENCE, 300);
    list_as(&app.channel, &keys.sign_rs256(&good))
        .await
        .expect("RS256 key loaded");
    let es = keys.sign_es256(&good);
    let err = list_as(&app.channel, &es)
        .await
        .expect_err("no ES256 key yet");
    assert_eq!(err.code(), Code::Unauthenticated);
    std::fs::write(&path, keys.jwks_json()).expect("add the ES256 key");
    eventually(10, "the JWKS file is reloaded", || async {
        list_as(&app.channel, &es).await.is_ok()
    })
    .await;

    // Lifetime: the year 33658, and 3 h against a 2 h maximum; 1 h passes.
    let mut forever = good.clone();
    forever["exp"] = serde_json::json!(1_000_000_000_000_i64);
    let mut no_iat = forever.clone();
    no_iat.as_object_mut().map(|o| o.remove("iat"));
    for (what, claims) in [
        ("year 33658", forever),
        ("year 33658 without iat", no_iat),
        (
            "3 h",
            jwt::claims("alice@example.com", &["viewer"], ISSUER, AUDIENCE, 3 * 3600),
        ),
    ] {
        let err = list_as(&app.channel, &keys.sign_rs256(&claims))
            .await
            .expect_err(what);
        assert_eq!(err.code(), Code::Unauthenticated, "{what}");
        assert!(
            err.message().contains("lifetime"),
            "{what}: {}",
            err.message()
        );
    }
    let hour = jwt::claims("alice@example.com", &["viewer"], ISSUER, AUDIENCE, 3600);
    list_as(&app.channel, &keys.sign_rs256(&hour))
        .await
        .expect("1 h is within the maximum");
    app.stop().await;
}

/// A JWKS served over HTTP on 127.0.0.1, counting its fetches.
struct JwksServer {
    url: String,
    body: Arc<Mutex<String>>,
    fetches: Arc<AtomicUsize>,
}

async fn jwks_server(body: String) -> JwksServer {
    let body = Arc::new(Mutex::new(body));
    let fetches = Arc::new(AtomicUsize::new(0));
    let (served, counted) = (body.clone(), fetches.clone());
    let router = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let (served, counted) = (served.clone(), counted.clone());
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                served.lock().expect("lock").clone()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    JwksServer {
        url: format!("http://{addr}/jwks.json"),
        body,
        fetches,
    }
}

/// `--jwks-url`: keys fetched at start and cached (one fetch serves many tokens); a token
/// naming a key the cache lacks triggers a refetch that picks up a rotated-in key; another
/// unknown key within 30 s does not fetch again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_url_is_fetched_cached_and_refetched_on_unknown_kid() {
    let db = TestDb::new(Backend::Sqlite).await;
    let keys = jwt::TestKeys::new();
    let server = jwks_server(rsa_only(&keys.jwks_json())).await;
    let app = jwt_gateway(
        &db,
        gateway::config::Security {
            jwks_url: Some(server.url.clone()),
            jwt_issuer: Some(ISSUER.into()),
            jwt_audience: Some(AUDIENCE.into()),
            ..Default::default()
        },
    )
    .await;
    let good = jwt::claims("alice@example.com", &["viewer"], ISSUER, AUDIENCE, 300);
    let rs = keys.sign_rs256(&good);
    eventually(10, "the JWKS is fetched at start", || async {
        list_as(&app.channel, &rs).await.is_ok()
    })
    .await;
    for n in 0..5 {
        let other = jwt::claims(
            &format!("u{n}@example.com"),
            &["viewer"],
            ISSUER,
            AUDIENCE,
            300,
        );
        list_as(&app.channel, &keys.sign_rs256(&other))
            .await
            .expect("cached keys");
    }
    assert_eq!(
        server.fetches.load(Ordering::SeqCst),
        1,
        "one fetch at start"
    );

    // The provider rotates in an ES256 key: its first token triggers a refetch.
    *server.body.lock().expect("lock") = keys.jwks_json();
    let es = keys.sign_es256(&good);
    eventually(10, "an unknown kid triggers a refetch", || async {
        list_as(&app.channel, &es).await.is_ok()
    })
    .await;
    assert_eq!(server.fetches.load(Ordering::SeqCst), 2);

    // Another unknown kid within 30 s: refused, and no third fetch.
    let unknown = with_kid(&rs, "never-published");
    for _ in 0..5 {
        let err = list_as(&app.channel, &unknown)
            .await
            .expect_err("unknown kid");
        assert_eq!(err.code(), Code::Unauthenticated);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        server.fetches.load(Ordering::SeqCst),
        2,
        "refetches are rate-limited"
    );
    app.stop().await;
}

/// The embedded gateway creates its data directory `0700` and the tokens file, the admin token
/// and the database files `0600`.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_gateway_creates_private_files() {
    use std::os::unix::fs::PermissionsExt;
    let db = TestDb::new(Backend::Sqlite).await;
    let data = db.dir.path().join("state").join("data");
    let mut config = gateway_config(&db);
    config.embedded = true;
    config.data_dir = data.clone();
    config.security = gateway::config::Security::default();
    let app = start_gateway(&db, config).await;
    let mode = |name: &str| {
        std::fs::metadata(data.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(""), 0o700, "data directory");
    for file in [
        "tokens.toml",
        "admin-token",
        "risk.db",
        "incident.db",
        "gateway.db",
    ] {
        assert_eq!(mode(file), 0o600, "{file}");
    }
    app.stop().await;
}
