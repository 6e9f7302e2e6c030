//! The operator's window: `/healthz` (200 unless a task stopped making progress),
//! `/readyz` (200 unless stopping, delivery is paused, or every stream is paused; a JSON body
//! says which and why), `/metrics` (Prometheus text), and the `health` command's probe of
//! `/readyz`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::liveness::Liveness;
use crate::metrics::{Metrics, SinkPause};

/// The health and metrics endpoint (`[server]`).
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// `None` disables the server.
    pub listen: Option<SocketAddr>,
}

#[derive(Clone)]
struct AppState {
    metrics: Metrics,
    liveness: Liveness,
    stopping: CancellationToken,
}

/// Binds `addr` and serves until the returned task is aborted.
pub async fn spawn(
    addr: SocketAddr,
    metrics: Metrics,
    liveness: Liveness,
    stopping: CancellationToken,
) -> std::io::Result<JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let app = Router::new()
        .route("/healthz", get(alive))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics_text))
        .with_state(AppState {
            metrics,
            liveness,
            stopping,
        });
    Ok(tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::error!(error.message = %err, "health/metrics server failed");
        }
    }))
}

async fn alive(State(state): State<AppState>) -> impl IntoResponse {
    let stalled = state.liveness.stalled();
    if stalled.is_empty() {
        return (StatusCode::OK, Json(json!({ "alive": true })));
    }
    let tasks: Vec<Value> = stalled
        .iter()
        .map(|s| json!({ "task": s.task, "no_progress_for_s": s.for_s }))
        .collect();
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({ "alive": false, "stalled": tasks })),
    )
}

/// What an operator must do about a delivery pause, in a few words.
fn sink_pause_detail(reason: SinkPause) -> &'static str {
    match reason {
        SinkPause::Auth => "the ingestion service refuses the credentials: check sink.auth_token",
        SinkPause::Config => {
            "the ingestion service cannot take batches as configured: check sink.url and sink.protocol"
        }
        SinkPause::Refused => "the ingestion service refused every event of several batches in a row",
        SinkPause::DeadLetterFull => "the dead-letter file is full: replay or move it",
        SinkPause::DeadLetterUnwritable => {
            "the dead-letter file cannot be written: check its permissions, the disk, and that it is a plain file"
        }
    }
}

/// The readiness verdict and its JSON body.
fn readiness(state: &AppState) -> (bool, Value) {
    let mut reasons = Vec::new();
    if state.stopping.is_cancelled() {
        reasons.push("stopping".to_string());
    }
    let sink = state.metrics.sink_paused();
    if let Some(reason) = sink {
        let label: &'static str = reason.into();
        reasons.push(format!("delivery paused ({label}): {}", sink_pause_detail(reason)));
    }
    let streams = state.metrics.stream_pauses();
    if !streams.is_empty() && streams.iter().all(|(_, paused)| paused.is_some()) {
        reasons.push("every stream is paused: the upstream refuses them (see streams)".to_string());
    }
    let per_stream: serde_json::Map<String, Value> = streams
        .into_iter()
        .map(|(stream, paused)| {
            let paused: Option<&'static str> = paused.map(Into::into);
            (stream, json!({ "paused": paused }))
        })
        .collect();
    let sink_label: Option<&'static str> = sink.map(Into::into);
    let ready = reasons.is_empty();
    let body = json!({
        "ready": ready,
        "reasons": reasons,
        "delivery": { "paused": sink_label },
        "streams": per_stream,
    });
    (ready, body)
}

async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let (ready, body) = readiness(&state);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        state.metrics.render(),
    )
}

/// Where to reach a server listening on `addr`: a wildcard address is probed on loopback.
fn probe_address(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}

/// GETs `/readyz` of the server configured at `addr`: whether it answered 200, and what to
/// print (its reasons, or why it could not be asked).
pub async fn probe(addr: SocketAddr) -> (bool, String) {
    let url = format!("http://{}/readyz", probe_address(addr));
    let client = match crate::upstream::http::client(Duration::from_secs(5), &Default::default()) {
        Ok(client) => client,
        Err(err) => return (false, format!("failed to build an HTTP client: {err}")),
    };
    let response = match client.get(&url).send().await {
        Ok(response) => response,
        Err(err) => return (false, format!("{url}: no answer: {}", crate::errors::chain(&err))),
    };
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let reasons: Vec<String> = body["reasons"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    if status == StatusCode::OK {
        (true, "ready".to_string())
    } else if reasons.is_empty() {
        (false, format!("not ready: {url} answered HTTP {status}"))
    } else {
        (false, format!("not ready: {}", reasons.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::StreamPause;

    fn state() -> AppState {
        AppState {
            metrics: Metrics::new(),
            liveness: Liveness::default(),
            stopping: CancellationToken::new(),
        }
    }

    #[test]
    fn readyz_is_503_while_delivery_is_paused_or_the_daemon_stops_and_says_why() {
        let state = state();
        state.metrics.register_stream("audit_logs");
        assert!(readiness(&state).0);
        state.metrics.set_sink_paused(SinkPause::Auth, true);
        let (ready, body) = readiness(&state);
        assert!(!ready);
        assert_eq!(body["delivery"]["paused"], "auth", "{body}");
        assert!(
            body["reasons"][0]
                .as_str()
                .unwrap_or_default()
                .contains("sink.auth_token"),
            "{body}"
        );
        state.metrics.set_sink_paused(SinkPause::Auth, false);
        assert!(readiness(&state).0);
        state.stopping.cancel();
        assert_eq!(readiness(&state).1["reasons"][0], "stopping");
    }

    #[test]
    fn readyz_is_503_only_once_every_stream_is_paused() {
        let state = state();
        state.metrics.register_stream("audit_logs");
        state.metrics.register_stream("inventory");
        state
            .metrics
            .set_stream_paused("audit_logs", Some(StreamPause::Unauthorized));
        let (ready, body) = readiness(&state);
        assert!(ready, "one stream of two: {body}");
        assert_eq!(body["streams"]["audit_logs"]["paused"], "unauthorized");
        state
            .metrics
            .set_stream_paused("inventory", Some(StreamPause::Forbidden));
        let (ready, body) = readiness(&state);
        assert!(!ready, "{body}");
        assert!(
            body["reasons"][0].as_str().unwrap_or_default().contains("every stream"),
            "{body}"
        );
    }

    #[test]
    fn a_wildcard_listen_address_is_probed_on_loopback() {
        let addr: SocketAddr = "0.0.0.0:9464".parse().expect("addr");
        assert_eq!(probe_address(addr).to_string(), "127.0.0.1:9464");
        let addr: SocketAddr = "[::]:9464".parse().expect("addr");
        assert_eq!(probe_address(addr).to_string(), "[::1]:9464");
    }
}
