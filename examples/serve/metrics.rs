//! `--metrics HOST:PORT`: the download metrics (`tower_range_serve::lifecycle::Metrics`)
//! served at `/metrics` in the Prometheus text format, by
//! `metrics-exporter-prometheus`.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tower_range_serve::lifecycle::Metrics;

/// Buckets of the download durations, in seconds: a download lasts from
/// milliseconds to hours.
const DURATIONS: &[f64] = &[
    0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];

/// Buckets of the throttle waits, in seconds.
const WAITS: &[f64] = &[0.0, 0.1, 1.0, 10.0, 60.0, 600.0, 3600.0];

/// Installs the Prometheus recorder as the global one: to do before the layer
/// is built (the Redis limits report their state as they are made).
pub(crate) fn install() -> Result<PrometheusHandle, String> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(Metrics::DURATION.to_owned()), DURATIONS)
        .and_then(|b| b.set_buckets_for_metric(Matcher::Full(Metrics::THROTTLED.to_owned()), WAITS))
        .map_err(|e| e.to_string())?
        .install_recorder()
        .map_err(|e| e.to_string())?;
    // Histograms are kept in windows that upkeep rolls over.
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}

/// The `/metrics` endpoint.
pub(crate) fn router(handle: PrometheusHandle) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let text = handle.render();
            async move { ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response() }
        }),
    )
}

/// Serves `/metrics` on `addr`, in a task; fails if it cannot listen there.
pub(crate) async fn serve(
    addr: SocketAddr,
    handle: PrometheusHandle,
) -> Result<SocketAddr, String> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("--metrics {addr}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, router(handle)).await;
    });
    Ok(bound)
}
