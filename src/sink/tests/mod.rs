//! Behaviour of the sink task against a scripted ingestion service (wiremock): the service,
//! the events and the helpers here; batching, retries, pauses, splits and dead letters in
//! `delivery`; body formats, secrets and shutdown in `bodies`.

mod bodies;
mod delivery;

use std::io::{self, Read};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flate2::read::GzDecoder;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use secrecy::SecretString;

use crate::secrets::Rotating;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use url::Url;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::*;
use crate::pipeline::StreamAcks;
use crate::pipeline::ack::Committable;
use crate::pipeline::queue::{ByteSender, byte_channel};
use crate::retry::RetrySettings;
use crate::sink::auth::{AuthScheme, Credentials};
use crate::sink::settings::ProtocolOptions;

/// The dead-letter file of the state directory `dir`.
fn dead_letter(dir: &std::path::Path) -> DeadLetter {
    crate::state::StateDir::open(dir).expect("state dir").dead_letter()
}

/// Generous bound so a broken sink fails its test instead of hanging the suite.
const PATIENCE: Duration = Duration::from_secs(30);

/// What the scripted service answers.
#[derive(Debug, Clone)]
struct Reply {
    status: u16,
    body: String,
    retry_after: Option<&'static str>,
    delay: Option<Duration>,
}

impl Reply {
    fn status(status: u16) -> Self {
        Self {
            status,
            body: String::new(),
            retry_after: None,
            delay: None,
        }
    }

    fn body(mut self, body: &str) -> Self {
        self.body = body.to_string();
        self
    }

    fn retry_after(mut self, value: &'static str) -> Self {
        self.retry_after = Some(value);
        self
    }

    fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }
}

/// One request the service saw and how it answered.
#[derive(Debug, Clone)]
struct Call {
    at: std::time::Instant,
    status: u16,
    ids: Vec<String>,
    headers: HeaderMap,
    body: Vec<u8>,
}

type Rule = dyn Fn(&Request, &[String], usize) -> Reply + Send + Sync;

struct Scripted {
    calls: AtomicUsize,
    rule: Box<Rule>,
    log: Arc<Mutex<Vec<Call>>>,
}

impl Respond for Scripted {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        let ids = ids_in(request);
        let reply = (self.rule)(request, &ids, n);
        self.log.lock().expect("log").push(Call {
            at: std::time::Instant::now(),
            status: reply.status,
            ids,
            headers: request.headers.clone(),
            body: request.body.clone(),
        });
        let mut template = ResponseTemplate::new(reply.status).set_body_string(reply.body);
        if let Some(value) = reply.retry_after {
            template = template.insert_header("retry-after", value);
        }
        if let Some(delay) = reply.delay {
            template = template.set_delay(delay);
        }
        template
    }
}

struct Service {
    server: MockServer,
    log: Arc<Mutex<Vec<Call>>>,
}

impl Service {
    async fn start(rule: impl Fn(&Request, &[String], usize) -> Reply + Send + Sync + 'static) -> Self {
        let server = MockServer::start().await;
        let log = Arc::new(Mutex::new(Vec::new()));
        Mock::given(method("POST"))
            .respond_with(Scripted {
                calls: AtomicUsize::new(0),
                rule: Box::new(rule),
                log: Arc::clone(&log),
            })
            .mount(&server)
            .await;
        Self { server, log }
    }

    fn calls(&self) -> Vec<Call> {
        self.log.lock().expect("log").clone()
    }

    /// Ids of the batches the service took, in the order it took them.
    fn accepted(&self) -> Vec<Vec<String>> {
        self.calls()
            .into_iter()
            .filter(|c| (200..300).contains(&c.status))
            .map(|c| c.ids)
            .collect()
    }

    fn settings(&self) -> SinkSettings {
        SinkSettings {
            url: Url::parse(&self.server.uri()).expect("url"),
            protocol: Protocol::Ndjson,
            schema: Schema::V1,
            credentials: Credentials::none(AuthScheme::Bearer),
            headers: HeaderMap::new(),
            compression: Compression::None,
            compression_level: 6,
            options: ProtocolOptions::default(),
            max_batch_events: NonZeroUsize::new(100).expect("non-zero"),
            max_batch_bytes: 1 << 20,
            // Long, so only count, bytes or the end of input cut a batch unless a test says.
            flush_interval: Duration::from_secs(3600),
            timeout: Duration::from_secs(10),
            max_queue_bytes: 1 << 22,
            dead_letter_max_bytes: 1 << 30,
            tls: Default::default(),
        }
    }
}

/// The body as text, decompressed when it says it is gzip.
fn plain_body(headers: &HeaderMap, body: &[u8]) -> Vec<u8> {
    let gz = headers.get("content-encoding").is_some_and(|v| v.as_bytes() == b"gzip");
    if !gz {
        return body.to_vec();
    }
    let mut out = Vec::new();
    GzDecoder::new(body).read_to_end(&mut out).expect("gzip body");
    out
}

fn events_in(request: &Request) -> Vec<Value> {
    let body = plain_body(&request.headers, &request.body);
    let json = request
        .headers
        .get("content-type")
        .is_some_and(|v| v.as_bytes() == b"application/json");
    if json {
        serde_json::from_slice(&body).expect("json array body")
    } else {
        body.split(|b| *b == b'\n')
            .filter(|line| !line.is_empty())
            .map(|line| serde_json::from_slice(line).expect("ndjson line"))
            .collect()
    }
}

fn ids_in(request: &Request) -> Vec<String> {
    events_in(request)
        .iter()
        .map(|e| e["id"].as_str().expect("id").to_string())
        .collect()
}

fn contains(request: &Request, needle: &str) -> bool {
    let body = plain_body(&request.headers, &request.body);
    String::from_utf8_lossy(&body).contains(needle)
}

/// One stream's events and the view of its checkpoint.
struct Stream {
    acks: Arc<StreamAcks<Value>>,
    committed: watch::Receiver<Option<Committable<Value>>>,
}

impl Stream {
    fn new() -> Self {
        let (acks, committed) = StreamAcks::new("s");
        Self { acks, committed }
    }

    fn event(&self, n: usize, extra: &str) -> Encoded {
        let id = format!("ev-{n}");
        Encoded {
            json: serde_json::to_vec(&json!({"id": id, "n": n, "extra": extra})).expect("json"),
            id,
            ack: self.acks.next_token(),
        }
    }

    /// `n` events of equal size, then a checkpoint mark behind them.
    fn page(&self, n: usize) -> Vec<Encoded> {
        let events = (0..n).map(|i| self.event(i, "")).collect();
        self.acks.mark(json!("after the page"));
        events
    }

    fn checkpoint(&self) -> Option<Value> {
        self.committed.borrow().as_ref().map(|c| c.state.clone())
    }
}

fn ids(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("ev-{i}")).collect()
}

fn fast_retries() -> Schedule {
    Schedule::new(RetrySettings {
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
    })
}

async fn queue(events: Vec<Encoded>) -> (ByteSender<Encoded>, ByteReceiver<Encoded>) {
    let (tx, rx) = byte_channel(1 << 22);
    for event in events {
        tx.send(event).await.expect("queued");
    }
    (tx, rx)
}

/// Runs the sink over `events` until it has drained them, with fast retries.
async fn deliver_all(settings: &SinkSettings, dir: &std::path::Path, events: Vec<Encoded>) -> SinkReport {
    let (tx, rx) = queue(events).await;
    drop(tx);
    let sink = Sink::new(settings, fast_retries(), dead_letter(dir), Metrics::new()).expect("sink");
    tokio::time::timeout(PATIENCE, sink.run(rx, CancellationToken::new()))
        .await
        .expect("the sink finishes")
}

fn dead_letters(dir: &std::path::Path) -> Vec<Value> {
    match std::fs::read_to_string(dead_letter(dir).path()) {
        Ok(text) => text
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect(),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(err) => panic!("read dead letters: {err}"),
    }
}
