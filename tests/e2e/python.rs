//! A Python `grpcio` client that knows Assurance only through server reflection runs the risk
//! workflow end to end against the embedded gateway (`tests/python/risk_workflow.py`). Ignored
//! when python3 cannot import grpcio (tests/build.rs); CI installs it.

use std::process::Command;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(assurance_python),
    ignore = "needs python3 with grpcio, grpcio-reflection and protobuf"
)]
async fn a_reflection_only_python_client_runs_the_risk_workflow() {
    let db = TestDb::new(Backend::Sqlite).await;
    let app = embedded_gateway(&db, Backend::Sqlite).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/risk_workflow.py");
    let python = std::env::var("ASSURANCE_PYTHON").unwrap_or_else(|_| "python3".into());
    let target = app.grpc_addr.to_string();
    let tokens = app.tokens.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .arg(target)
            .env("ASSURANCE_TOKEN_ADMIN", tokens.token("admin"))
            .env("ASSURANCE_TOKEN_OWNER", tokens.token("risk_owner"))
            .env("ASSURANCE_TOKEN_TRUST", tokens.token("trust_team"))
            .output()
    })
    .await
    .expect("join")
    .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the Python client failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("risk workflow ok"), "{stdout}");
}
