//! The ingestion service's stand-in: plays each protocol the daemon speaks (generic NDJSON or
//! JSON, Akto, Splunk HEC with indexer acknowledgement, Elasticsearch bulk, OTLP/HTTP JSON,
//! Loki) at its standard path, checks the auth header's form, decompresses gzip, records
//! what arrived and how, and answers as scripted — including the partial failures each
//! service really gives (bulk item errors, OTLP partial success, Loki's partial 400, Akto's
//! silent 422, HEC acknowledgements withheld).

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::http::json_response;
use super::receiver_state::{ItemRule, ReceivedBatch, ReceivedRequest, State_, Tally, accept};
use super::receiver_wire::{Record, Wire, decode, event_id, plain, status_response};

/// Requests whose (decompressed) body is kept, newest last: enough for any test, bounded
/// for a long demo.
const KEPT_BODIES: usize = 1000;

/// Scripted answers. Also the body of `POST /_sim/receiver/script`, e.g.
/// `{"kind":"next","status":503,"times":2}` or
/// `{"kind":"item_status","needle":"abc","status":429,"times":1}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReceiverScript {
    /// The next `times` requests get `status` (with `Retry-After` when given), storing nothing.
    Next {
        status: u16,
        #[serde(default)]
        retry_after_secs: Option<u64>,
        times: u32,
    },
    /// 413 for any body larger than this many wire bytes (until cleared).
    MaxBodyBytes { bytes: usize },
    /// An event whose id contains `needle` is refused with `status`, as the protocol
    /// refuses one: the generic receiver and Akto refuse the whole batch (Akto with 422),
    /// Splunk stops at it (`invalid-event-number`), Elasticsearch fails that item, Loki
    /// stores the rest and answers 400 naming it, OTLP refuses the batch.
    RejectIdContaining { needle: String, status: u16 },
    /// Elasticsearch: items whose id contains `needle` get `status` (429, 400, 503, …)
    /// `times` times (forever when absent).
    ItemStatus {
        needle: String,
        status: u16,
        #[serde(default)]
        times: Option<u32>,
    },
    /// The next `times` requests are stored, but answered 503 as if the answer was lost.
    LoseResponse { times: u32 },
    /// OTLP: the next `times` requests store all but the first `rejected` records and
    /// answer 200 with `partialSuccess`.
    PartialSuccess {
        rejected: u32,
        #[serde(default)]
        message: String,
        times: u32,
    },
    /// Splunk HEC: the next `times` batches get an ackId that never becomes true, and are
    /// not indexed (lost by the indexer).
    WithholdAcks { times: u32 },
    /// Back to accepting everything.
    Clear,
}

/// What the sink delivered; shared with the handlers.
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

    /// From now on keep only the [`Tally`] and each request's status: events, batches,
    /// their ids and bodies are dropped once counted (a benchmark's million events).
    pub fn keep_counts_only(&self) {
        self.lock().counts_only = true;
    }

    /// Totals over every event stored so far.
    pub fn tally(&self) -> Tally {
        self.lock().tally
    }

    /// Every event received, in arrival order (duplicates kept).
    pub fn events(&self) -> Vec<Value> {
        self.lock().events.clone()
    }

    /// The id of every event received (v1 `id`, or OCSF `metadata.uid`), in arrival order.
    pub fn ids(&self) -> Vec<String> {
        self.lock()
            .events
            .iter()
            .filter_map(|e| event_id(e).map(str::to_owned))
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
            ReceiverScript::ItemStatus { needle, status, times } => st.item_rules.push(ItemRule {
                needle,
                status,
                left: times,
            }),
            ReceiverScript::LoseResponse { times } => st.lose += times,
            ReceiverScript::PartialSuccess {
                rejected,
                message,
                times,
            } => st
                .partial
                .extend(std::iter::repeat_n((rejected, message), times as usize)),
            ReceiverScript::WithholdAcks { times } => st.withhold += times,
            ReceiverScript::Clear => {
                st.next.clear();
                st.max_body = None;
                st.reject = None;
                st.item_rules.clear();
                st.lose = 0;
                st.partial.clear();
                st.withhold = 0;
            }
        }
    }

    /// Counts for `/_sim/receiver/stats`.
    pub fn stats(&self) -> Value {
        let st = self.lock();
        let unique: HashSet<&str> = st.events.iter().filter_map(event_id).collect();
        json!({"events": st.events.len(), "unique_ids": unique.len(),
               "batches": st.batches.len(), "requests": st.requests.len()})
    }

    /// Stores `records` from a request and returns the new total.
    fn store(
        &self,
        st: &mut State_,
        wire: Wire,
        req: &ReceivedRequest,
        channel: Option<String>,
        records: Vec<Record>,
        plain_bytes: usize,
    ) {
        if records.is_empty() {
            return;
        }
        st.tally.events += records.len();
        st.tally.plain_bytes += plain_bytes;
        st.tally.wire_bytes += req.wire_bytes;
        for id in records.iter().filter_map(|r| event_id(&r.event)) {
            if !st.seen_ids.contains(id) {
                st.seen_ids.insert(id.into());
            }
        }
        st.tally.unique_ids = st.seen_ids.len();
        if st.counts_only {
            self.count.send_replace(st.tally.events);
            return;
        }
        if let Some(path) = &self.file {
            // Small synchronous appends: a demo-sized file, written before the answer.
            let _ = append(path, records.iter().map(|r| &r.event));
        }
        st.batches.push(ReceivedBatch {
            protocol: wire.name(),
            events: records.len(),
            ids: records
                .iter()
                .filter_map(|r| event_id(&r.event).map(str::to_owned))
                .collect(),
            envelopes: records.iter().map(|r| r.envelope.clone()).collect(),
            idempotency_key: req.idempotency_key.clone(),
            content_encoding: req.content_encoding.clone(),
            content_type: req.content_type.clone(),
            authorization_present: req.authorization_present,
            channel,
            wire_bytes: req.wire_bytes,
        });
        st.events.extend(records.into_iter().map(|r| r.event));
        self.count.send_replace(st.tally.events);
    }
}

fn header_str(h: &HeaderMap, name: impl header::AsHeaderName) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// Every protocol's endpoint and the `/_sim/receiver/…` control endpoints.
pub(crate) fn routes<S: Clone + Send + Sync + 'static>(receiver: Arc<Receiver>) -> Router<S> {
    let mut router = Router::new();
    for wire in Wire::ALL {
        let handler = move |State(rx): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes| async move {
            ingest(wire, &rx, &headers, &body)
        };
        router = router.route(
            wire.path(),
            post(handler).layer(DefaultBodyLimit::max(256 * 1024 * 1024)),
        );
    }
    router
        .route("/services/collector", post(splunk_event))
        .route("/services/collector/ack", post(splunk_ack))
        .route("/services/collector/health", get(splunk_health))
        .route("/_security/_authenticate", get(es_authenticate))
        .route("/_security/user/_has_privileges", post(es_privileges))
        .route("/ready", get(|| async { "ready" }))
        .route("/_sim/receiver/stats", get(stats))
        .route("/_sim/receiver/script", post(script))
        .with_state(receiver)
}

async fn splunk_event(State(rx): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> Response {
    ingest(Wire::SplunkHec, &rx, &headers, &body)
}

/// Handles one envelope of `wire`.
fn ingest(wire: Wire, rx: &Receiver, headers: &HeaderMap, body: &Bytes) -> Response {
    let encoding = header_str(headers, header::CONTENT_ENCODING);
    let ctype = header_str(headers, header::CONTENT_TYPE);
    let channel = header_str(headers, "x-splunk-request-channel");
    let mut req = ReceivedRequest {
        protocol: wire.name(),
        status: 200,
        idempotency_key: header_str(headers, "idempotency-key"),
        content_encoding: encoding.clone(),
        content_type: ctype.clone(),
        authorization_present: headers.contains_key(header::AUTHORIZATION),
        wire_bytes: body.len(),
        events: 0,
        ids: Vec::new(),
        body: None,
    };
    let refusal = refused(rx, wire, headers);
    let mut st = rx.lock();
    let answer = |st: &mut State_, mut req: ReceivedRequest, response: Response| {
        req.status = response.status().as_u16();
        st.requests.push(req);
        let keep_from = st.requests.len().saturating_sub(KEPT_BODIES);
        if keep_from > 0 {
            st.requests[keep_from - 1].body = None;
        }
        response
    };
    if let Some(refusal) = refusal {
        return answer(&mut st, req, refusal);
    }
    if let Some((status, retry)) = st.next.pop_front() {
        return answer(&mut st, req, status_response(wire, status, retry, "scripted response"));
    }
    if st.max_body.is_some_and(|max| body.len() > max) {
        return answer(&mut st, req, status_response(wire, 413, None, "payload too large"));
    }
    let plain = match plain(body, encoding.as_deref()) {
        Ok(plain) => plain,
        Err(msg) => return answer(&mut st, req, status_response(wire, 415, None, &msg)),
    };
    if !st.counts_only {
        req.body = Some(Bytes::from(plain.clone()));
    }
    let records = match decode(wire, &plain, ctype.as_deref()) {
        Ok(records) => records,
        Err(msg) => {
            let status = if wire == Wire::Akto { 422 } else { 400 };
            return answer(&mut st, req, status_response(wire, status, None, &msg));
        }
    };
    req.events = records.len();
    if !st.counts_only {
        req.ids = records
            .iter()
            .filter_map(|r| event_id(&r.event).map(str::to_owned))
            .collect();
    }
    if let Some(response) = wire.empty_answer(records.len(), plain.len()) {
        return answer(&mut st, req, response);
    }
    let (stored, response) = accept(wire, &mut st, channel.as_deref(), records);
    rx.store(&mut st, wire, &req, channel, stored, plain.len());
    let response = if st.lose > 0 {
        st.lose -= 1;
        status_response(wire, 503, None, "scripted: stored, but the answer was lost")
    } else {
        response
    };
    answer(&mut st, req, response)
}

/// `POST /services/collector/ack`: `{"acks":[ids]}` → `{"acks":{"id":bool}}`; a true is
/// reported once and then forgotten, as Splunk does.
async fn splunk_ack(State(rx): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refusal) = refused(&rx, Wire::SplunkHec, &headers) {
        return refusal;
    }
    let Some(channel) = header_str(&headers, "x-splunk-request-channel") else {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"text": "Data channel is missing", "code": 10}),
        );
    };
    let ids: Vec<u64> = match plain(&body, header_str(&headers, header::CONTENT_ENCODING).as_deref())
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| serde_json::from_value(v["acks"].clone()).ok())
    {
        Some(ids) => ids,
        None => {
            return json_response(
                StatusCode::BAD_REQUEST,
                &json!({"text": "Invalid data format", "code": 6}),
            );
        }
    };
    let mut st = rx.lock();
    let mut acks = serde_json::Map::new();
    for id in ids {
        let key = (channel.clone(), id);
        let done = st.hec_acks.get(&key).copied().unwrap_or(false);
        if done {
            st.hec_acks.remove(&key);
        }
        acks.insert(id.to_string(), json!(done));
    }
    json_response(StatusCode::OK, &json!({ "acks": acks }))
}

async fn splunk_health() -> Response {
    json_response(StatusCode::OK, &json!({"text": "HEC is healthy", "code": 17}))
}

/// The service's refusal when the request does not carry the receiver's token in `wire`'s
/// auth header form.
fn refused(rx: &Receiver, wire: Wire, headers: &HeaderMap) -> Option<Response> {
    let token = rx.token.as_deref()?;
    (!wire.authorized(headers, token)).then(|| wire.unauthorized())
}

async fn es_authenticate(State(rx): State<Arc<Receiver>>, headers: HeaderMap) -> Response {
    if let Some(refusal) = refused(&rx, Wire::Elasticsearch, &headers) {
        return refusal;
    }
    json_response(
        StatusCode::OK,
        &json!({"username": "sim-writer", "authentication_type": "api_key"}),
    )
}

async fn es_privileges(State(rx): State<Arc<Receiver>>, headers: HeaderMap) -> Response {
    if let Some(refusal) = refused(&rx, Wire::Elasticsearch, &headers) {
        return refusal;
    }
    json_response(
        StatusCode::OK,
        &json!({"username": "sim-writer", "has_all_requested": true}),
    )
}

/// Small synchronous appends: a demo-sized file, written before the batch is acknowledged.
fn append<'a>(path: &PathBuf, events: impl Iterator<Item = &'a Value>) -> std::io::Result<()> {
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
