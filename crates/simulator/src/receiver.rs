//! The ingestion service's stand-in: accepts the daemon's batches (NDJSON or JSON array,
//! gzip or not), records what arrived and how, and answers as scripted.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::auth;
use super::http::json_response;

/// One accepted batch.
#[derive(Debug, Clone)]
pub struct ReceivedBatch {
    pub events: usize,
    pub ids: Vec<String>,
    pub idempotency_key: Option<String>,
    pub content_encoding: Option<String>,
    pub content_type: Option<String>,
    pub authorization_present: bool,
    /// Bytes as they came over the wire (compressed when gzip).
    pub wire_bytes: usize,
}

/// Every request, accepted or not, with the status it got.
#[derive(Debug, Clone)]
pub struct ReceivedRequest {
    pub status: u16,
    pub idempotency_key: Option<String>,
    pub content_encoding: Option<String>,
    pub content_type: Option<String>,
    pub authorization_present: bool,
    pub wire_bytes: usize,
    pub events: usize,
}

/// Scripted answers, checked in this order: auth, `Next`, body size, rejected ids. Also the
/// body of `POST /_sim/receiver/script`, e.g. `{"kind":"next","status":503,"times":2}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReceiverScript {
    /// The next `times` requests get `status` (with `Retry-After` when given).
    Next {
        status: u16,
        #[serde(default)]
        retry_after_secs: Option<u64>,
        times: u32,
    },
    /// 413 for any body larger than this many wire bytes (until cleared).
    MaxBodyBytes { bytes: usize },
    /// `status` (e.g. 400) for any batch holding an event whose `id` contains `needle`.
    RejectIdContaining { needle: String, status: u16 },
    /// Back to accepting everything.
    Clear,
}

#[derive(Debug, Default)]
struct State_ {
    events: Vec<Value>,
    batches: Vec<ReceivedBatch>,
    requests: Vec<ReceivedRequest>,
    next: VecDeque<(u16, Option<u64>)>,
    max_body: Option<usize>,
    reject: Option<(String, u16)>,
}

/// What the sink delivered; shared with the handler.
#[derive(Debug)]
pub struct Receiver {
    token: Option<String>,
    file: Option<PathBuf>,
    state: Mutex<State_>,
    count: watch::Sender<usize>,
}

impl Receiver {
    pub(crate) fn new(token: Option<String>, file: Option<PathBuf>) -> Self {
        Receiver {
            token,
            file,
            state: Mutex::new(State_::default()),
            count: watch::Sender::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State_> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Every event received, in arrival order (duplicates kept).
    pub fn events(&self) -> Vec<Value> {
        self.lock().events.clone()
    }

    /// The `id` of every event received, in arrival order.
    pub fn ids(&self) -> Vec<String> {
        self.lock()
            .events
            .iter()
            .filter_map(|e| e["id"].as_str().map(str::to_owned))
            .collect()
    }

    pub fn batches(&self) -> Vec<ReceivedBatch> {
        self.lock().batches.clone()
    }

    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.lock().requests.clone()
    }

    /// Resolve once at least `n` events arrived (true) or `timeout` passed (false).
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        let mut rx = self.count.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|c| *c >= n))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    pub fn set_response(&self, script: ReceiverScript) {
        let mut st = self.lock();
        match script {
            ReceiverScript::Next {
                status,
                retry_after_secs,
                times,
            } => st
                .next
                .extend(std::iter::repeat_n((status, retry_after_secs), times as usize)),
            ReceiverScript::MaxBodyBytes { bytes } => st.max_body = Some(bytes),
            ReceiverScript::RejectIdContaining { needle, status } => st.reject = Some((needle, status)),
            ReceiverScript::Clear => {
                st.next.clear();
                st.max_body = None;
                st.reject = None;
            }
        }
    }

    /// Counts for `/_sim/receiver/stats`.
    pub fn stats(&self) -> Value {
        let st = self.lock();
        let unique: std::collections::HashSet<&str> = st.events.iter().filter_map(|e| e["id"].as_str()).collect();
        json!({"events": st.events.len(), "unique_ids": unique.len(),
               "batches": st.batches.len(), "requests": st.requests.len()})
    }
}

fn header_str(h: &HeaderMap, name: impl header::AsHeaderName) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// Decode the body into events: gunzip when asked, then an array or NDJSON lines.
fn decode(body: &[u8], encoding: Option<&str>, content_type: Option<&str>) -> Result<Vec<Value>, String> {
    let raw = if encoding.is_some_and(|e| e.eq_ignore_ascii_case("gzip")) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(body)
            .read_to_end(&mut out)
            .map_err(|e| format!("bad gzip body: {e}"))?;
        out
    } else {
        body.to_vec()
    };
    let text = std::str::from_utf8(&raw).map_err(|_| "body is not UTF-8".to_owned())?;
    // A JSON array is recognised by its content type, or by its shape when none was sent.
    let is_array = match content_type {
        Some(c) => c.starts_with("application/json"),
        None => text.trim_start().starts_with('['),
    };
    if is_array {
        return serde_json::from_str::<Vec<Value>>(text).map_err(|e| format!("bad JSON array: {e}"));
    }
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(|e| format!("bad NDJSON line: {e}")))
        .collect()
}

fn status_response(status: u16, retry_after: Option<u64>, message: &str) -> Response {
    let mut r = json_response(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &json!({"error": message}),
    );
    if let Some(secs) = retry_after
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// `POST /receiver/events` and the `/_sim/receiver/…` control endpoints, on the receiver alone.
pub(crate) fn routes<S: Clone + Send + Sync + 'static>(receiver: Arc<Receiver>) -> Router<S> {
    Router::new()
        .route(
            "/receiver/events",
            post(ingest).layer(DefaultBodyLimit::max(256 * 1024 * 1024)),
        )
        .route("/_sim/receiver/stats", get(stats))
        .route("/_sim/receiver/script", post(script))
        .with_state(receiver)
}

async fn ingest(State(rx): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> Response {
    let encoding = header_str(&headers, header::CONTENT_ENCODING);
    let ctype = header_str(&headers, header::CONTENT_TYPE);
    let mut req = ReceivedRequest {
        status: 200,
        idempotency_key: header_str(&headers, "idempotency-key"),
        content_encoding: encoding.clone(),
        content_type: ctype.clone(),
        authorization_present: headers.contains_key(header::AUTHORIZATION),
        wire_bytes: body.len(),
        events: 0,
    };
    let answer = |req: ReceivedRequest, status: u16, retry: Option<u64>, msg: &str| {
        let mut st = rx.lock();
        st.requests.push(ReceivedRequest { status, ..req });
        status_response(status, retry, msg)
    };
    if let Some(token) = &rx.token
        && auth::bearer(&headers) != Some(token.as_str())
    {
        return answer(req, 401, None, "missing or wrong bearer token");
    }
    let scripted = rx.lock().next.pop_front();
    if let Some((status, retry)) = scripted {
        return answer(req, status, retry, "scripted response");
    }
    if rx.lock().max_body.is_some_and(|max| body.len() > max) {
        return answer(req, 413, None, "payload too large");
    }
    let events = match decode(&body, encoding.as_deref(), ctype.as_deref()) {
        Ok(e) => e,
        Err(msg) => return answer(req, 400, None, &msg),
    };
    req.events = events.len();
    let reject = rx.lock().reject.clone();
    if let Some((needle, status)) = reject
        && events
            .iter()
            .any(|e| e["id"].as_str().is_some_and(|id| id.contains(&needle)))
    {
        return answer(req, status, None, "batch holds a rejected event");
    }
    if let Some(path) = &rx.file
        && let Err(e) = append(path, &events)
    {
        return answer(req, 500, None, &format!("failed to persist: {e}"));
    }
    let total = {
        let mut st = rx.lock();
        st.batches.push(ReceivedBatch {
            events: events.len(),
            ids: events
                .iter()
                .filter_map(|e| e["id"].as_str().map(str::to_owned))
                .collect(),
            idempotency_key: req.idempotency_key.clone(),
            content_encoding: req.content_encoding.clone(),
            content_type: req.content_type.clone(),
            authorization_present: req.authorization_present,
            wire_bytes: req.wire_bytes,
        });
        st.requests.push(req);
        st.events.extend(events);
        st.events.len()
    };
    rx.count.send_replace(total);
    json_response(StatusCode::OK, &json!({"accepted": true}))
}

/// Small synchronous appends: a demo-sized file, written before the batch is acknowledged.
fn append(path: &PathBuf, events: &[Value]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    let mut buf = Vec::new();
    for e in events {
        buf.extend_from_slice(e.to_string().as_bytes());
        buf.push(b'\n');
    }
    f.write_all(&buf)
}

async fn script(State(rx): State<Arc<Receiver>>, axum::Json(script): axum::Json<ReceiverScript>) -> Response {
    rx.set_response(script);
    json_response(StatusCode::OK, &json!({"ok": true}))
}

async fn stats(State(rx): State<Arc<Receiver>>) -> Response {
    json_response(StatusCode::OK, &rx.stats())
}
