//! The operator's window: `/healthz` (the process is alive), `/readyz` (it is not stopping
//! and delivery is not paused) and `/metrics` (Prometheus text).

use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// The health and metrics endpoint (`[server]`).
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// `None` disables the server.
    pub listen: Option<SocketAddr>,
}

#[derive(Clone)]
struct AppState {
    metrics: Metrics,
    stopping: CancellationToken,
}

/// Binds `addr` and serves until the returned task is aborted.
pub async fn spawn(addr: SocketAddr, metrics: Metrics, stopping: CancellationToken) -> std::io::Result<JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics_text))
        .with_state(AppState { metrics, stopping });
    Ok(tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::error!(error = %err, "health/metrics server failed");
        }
    }))
}

async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    if state.stopping.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "stopping".to_string());
    }
    // The sink's pause gauge (`oai_ingest_sink_paused{reason}`) is the shared state: an
    // operator must act before anything more is delivered.
    match state.metrics.sink_paused() {
        Some(reason) => {
            let reason: &'static str = reason.into();
            (StatusCode::SERVICE_UNAVAILABLE, format!("delivery paused: {reason}"))
        }
        None => (StatusCode::OK, "ready".to_string()),
    }
}

async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::SinkPause;

    async fn readyz(state: &AppState) -> (StatusCode, String) {
        let response = ready(State(state.clone())).await.into_response();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1024).await.expect("body");
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn readyz_is_503_while_delivery_is_paused_or_the_daemon_stops() {
        let state = AppState {
            metrics: Metrics::new(),
            stopping: CancellationToken::new(),
        };
        assert_eq!(readyz(&state).await, (StatusCode::OK, "ready".to_string()));
        state.metrics.set_sink_paused(SinkPause::Refused, true);
        assert_eq!(
            readyz(&state).await,
            (StatusCode::SERVICE_UNAVAILABLE, "delivery paused: refused".to_string())
        );
        state.metrics.set_sink_paused(SinkPause::Refused, false);
        assert_eq!(readyz(&state).await.0, StatusCode::OK);
        state.stopping.cancel();
        assert_eq!(readyz(&state).await.0, StatusCode::SERVICE_UNAVAILABLE);
    }
}
