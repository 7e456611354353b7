//! `assurance-bench observe`: what the outermost layer of every gRPC server costs per call —
//! the request id, the per-method metrics and the access-log line (`runtime/src/observe/`).
//! A trivial inner service answers each call (`grpc-status: 0` in its headers); the layer's
//! cost is the difference to calling that service bare, without and with a subscriber that
//! formats the access line (into a sink, so no I/O is measured).

use std::{convert::Infallible, pin::Pin, time::Instant};

use assurance_runtime::observe::ObserveLayer;
use http::HeaderValue;
use tower::{Layer, Service};

#[derive(clap::Parser)]
pub struct ObserveArgs {
    /// Calls per measurement.
    #[arg(long, default_value_t = 1_000_000)]
    calls: u32,
}

fn request() -> http::Request<()> {
    http::Request::builder()
        .uri("/assurance.risk.v1.RiskService/GetRisk")
        .header("x-request-id", "bench-1")
        .body(())
        .unwrap_or_default()
}

async fn drain<B: http_body::Body + Unpin>(mut body: B) {
    while std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx))
        .await
        .is_some()
    {}
}

/// Nanoseconds per call of `service`.
async fn per_call<S, R>(service: &mut S, calls: u32) -> u128
where
    S: Service<http::Request<()>, Response = http::Response<R>, Error = Infallible>,
    R: http_body::Body + Unpin,
{
    let start = Instant::now();
    for _ in 0..calls {
        let Ok(response) = service.call(request()).await;
        drain(response.into_body()).await;
    }
    start.elapsed().as_nanos() / u128::from(calls.max(1))
}

pub async fn run(args: ObserveArgs) -> Result<(), String> {
    let inner = tower::service_fn(|_: http::Request<()>| {
        let mut response = http::Response::new(tonic::body::Body::empty());
        response
            .headers_mut()
            .insert("grpc-status", HeaderValue::from_static("0"));
        std::future::ready(Ok::<_, Infallible>(response))
    });
    let mut bare = inner;
    let mut observed = ObserveLayer.layer(inner);
    // Warm-up: the metric handles, the allocator.
    per_call(&mut observed, args.calls / 10).await;
    let bare_ns = per_call(&mut bare, args.calls).await;
    let quiet_ns = per_call(&mut observed, args.calls).await;
    let subscriber = tracing_subscriber::fmt()
        .with_writer(std::io::sink)
        .with_ansi(false)
        .finish();
    let logged_ns = {
        let _guard = tracing::subscriber::set_default(subscriber);
        per_call(&mut observed, args.calls).await
    };
    println!(
        "# assurance-bench observe: {} calls per measurement, one thread",
        args.calls
    );
    println!("| per call | ns | added by the layer |");
    println!("|---|---:|---:|");
    println!("| bare service | {bare_ns} | — |");
    println!(
        "| observed, access log off | {quiet_ns} | +{} |",
        quiet_ns.saturating_sub(bare_ns)
    );
    println!(
        "| observed, access line formatted | {logged_ns} | +{} |",
        logged_ns.saturating_sub(bare_ns)
    );
    Ok(())
}
