//! Behaviour of the sink task against a scripted ingestion service (wiremock): batching,
//! retries, pauses, splits, dead-lettering, body formats, secrets and shutdown.

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

#[tokio::test]
async fn batches_are_cut_by_event_count_and_every_event_is_acknowledged() {
    let service = Service::start(|_, _, _| Reply::status(200)).await;
    let mut settings = service.settings();
    settings.max_batch_events = NonZeroUsize::new(3).expect("non-zero");
    let stream = Stream::new();
    let dir = tempfile::tempdir().expect("tempdir");

    let report = deliver_all(&settings, dir.path(), stream.page(7)).await;

    assert_eq!(service.accepted(), vec![ids(0..3), ids(3..6), ids(6..7)]);
    assert_eq!(
        report,
        SinkReport {
            delivered: 7,
            dead_lettered: 0,
            batches: 3,
            aborted: false
        }
    );
    assert!(stream.acks.is_settled());
    assert_eq!(stream.checkpoint(), Some(json!("after the page")));
}

#[tokio::test]
async fn batches_are_cut_by_encoded_bytes_and_never_exceed_them() {
    let service = Service::start(|_, _, _| Reply::status(200)).await;
    let stream = Stream::new();
    let events = stream.page(7);
    let line = events[0].json.len() + 1;
    assert!(events.iter().all(|e| e.json.len() + 1 == line), "equal sizes");
    let mut settings = service.settings();
    // Two NDJSON lines fit exactly, a third does not.
    settings.max_batch_bytes = 2 * line + line / 2;
    let dir = tempfile::tempdir().expect("tempdir");

    deliver_all(&settings, dir.path(), events).await;

    assert_eq!(service.accepted(), vec![ids(0..2), ids(2..4), ids(4..6), ids(6..7)]);
    for call in service.calls() {
        assert!(call.body.len() <= settings.max_batch_bytes);
    }
    assert!(stream.acks.is_settled());
}

#[tokio::test]
async fn a_partial_batch_is_sent_once_the_flush_interval_has_passed() {
    let service = Service::start(|_, _, _| Reply::status(200)).await;
    let mut settings = service.settings();
    settings.flush_interval = Duration::from_millis(20);
    let mut stream = Stream::new();
    let dir = tempfile::tempdir().expect("tempdir");
    // The sender stays open: only the interval can send this batch.
    let (tx, rx) = queue(stream.page(2)).await;
    let sink = Sink::new(&settings, fast_retries(), dead_letter(dir.path()), Metrics::new()).expect("sink");
    let running = tokio::spawn(sink.run(rx, CancellationToken::new()));

    tokio::time::timeout(PATIENCE, stream.committed.changed())
        .await
        .expect("the checkpoint moves without more input")
        .expect("tracker alive");
    assert_eq!(service.accepted(), vec![ids(0..2)]);

    drop(tx);
    let report = tokio::time::timeout(PATIENCE, running)
        .await
        .expect("finishes")
        .expect("joined");
    assert_eq!(report.batches, 1);
}

#[tokio::test]
async fn a_503_is_retried_with_the_same_body_and_key_and_each_event_is_delivered_once() {
    let service = Service::start(|_, _, n| match n {
        0 => Reply::status(503).body("overloaded"),
        _ => Reply::status(200),
    })
    .await;
    let mut settings = service.settings();
    settings.compression = Compression::Gzip;
    let stream = Stream::new();
    let dir = tempfile::tempdir().expect("tempdir");

    let report = deliver_all(&settings, dir.path(), stream.page(3)).await;

    let calls = service.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!((calls[0].status, calls[1].status), (503, 200));
    let key = |c: &Call| c.headers.get("idempotency-key").cloned();
    assert_eq!(key(&calls[0]), key(&calls[1]));
    let expected = encode::idempotency_key(["ev-0", "ev-1", "ev-2"]);
    assert_eq!(key(&calls[0]).expect("key sent").to_str().ok(), Some(expected.as_str()));
    assert_eq!(calls[0].body, calls[1].body, "the same bytes on every attempt");
    assert_eq!(service.accepted(), vec![ids(0..3)]);
    assert_eq!((report.delivered, report.batches), (3, 1));
    assert!(stream.acks.is_settled());
}

#[tokio::test]
async fn a_429_with_retry_after_waits_as_long_as_the_service_asked() {
    let service = Service::start(|_, _, n| match n {
        0 => Reply::status(429).retry_after("1"),
        _ => Reply::status(200),
    })
    .await;
    let stream = Stream::new();
    let dir = tempfile::tempdir().expect("tempdir");

    // The schedule alone would retry within 5ms.
    deliver_all(&service.settings(), dir.path(), stream.page(1)).await;

    let calls = service.calls();
    assert_eq!(calls.len(), 2);
    let waited = calls[1].at.duration_since(calls[0].at);
    assert!(waited >= Duration::from_millis(950), "waited only {waited:?}");
    assert!(stream.acks.is_settled());
}

#[tokio::test]
async fn a_401_pauses_delivery_with_everything_queued_and_unacknowledged_until_accepted() {
    let stream = Stream::new();
    let events = stream.page(5);
    let weight: Vec<usize> = events.iter().map(|e| e.json.len() + e.id.len()).collect();
    let (tx, rx) = queue(events).await;
    // The service sees, at each refusal, what is acknowledged and what is still queued.
    let sender = Arc::new(Mutex::new(Some(tx)));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let service = {
        let (acks, sender, seen) = (Arc::clone(&stream.acks), Arc::clone(&sender), Arc::clone(&seen));
        Service::start(move |_, _, n| {
            let mut sender = sender.lock().expect("sender");
            if n < 3 {
                let queued = sender.as_ref().map_or(0, ByteSender::queued_bytes);
                seen.lock().expect("seen").push((acks.outstanding(), queued));
                Reply::status(401).body("bad token")
            } else {
                // Accepting: the producer is done, so the sink can drain and finish.
                sender.take();
                Reply::status(200)
            }
        })
        .await
    };
    let mut settings = service.settings();
    settings.max_batch_events = NonZeroUsize::new(2).expect("non-zero");
    settings.credentials.token = Some(Rotating::fixed("sink.auth_token", SecretString::from("wrong-token")));
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = Sink::new(&settings, fast_retries(), dead_letter(dir.path()), Metrics::new()).expect("sink");

    let report = tokio::time::timeout(PATIENCE, sink.run(rx, CancellationToken::new()))
        .await
        .expect("the sink finishes");

    // The sink held its batch of two and left the other three in the queue, so a full
    // queue holds the pollers back.
    let three_queued: usize = weight[2..].iter().sum();
    assert_eq!(*seen.lock().expect("seen"), vec![(5, three_queued); 3]);
    let calls = service.calls();
    assert_eq!(calls[0].ids, calls[3].ids, "the same batch is retried");
    assert_eq!(service.accepted(), vec![ids(0..2), ids(2..4), ids(4..5)]);
    assert_eq!(report.delivered, 5);
    assert!(stream.acks.is_settled());
    assert_eq!(stream.checkpoint(), Some(json!("after the page")));
}

#[tokio::test]
async fn a_413_splits_the_batch_until_the_halves_are_accepted() {
    let service = Service::start(|_, ids, _| match ids.len() {
        0..=2 => Reply::status(200),
        _ => Reply::status(413),
    })
    .await;
    let stream = Stream::new();
    let dir = tempfile::tempdir().expect("tempdir");

    let report = deliver_all(&service.settings(), dir.path(), stream.page(8)).await;

    assert_eq!(
        service.accepted(),
        vec![ids(0..2), ids(2..4), ids(4..6), ids(6..8)],
        "halves go out in order, each event once"
    );
    assert_eq!(report.delivered, 8);
    assert!(dead_letters(dir.path()).is_empty());
    assert!(stream.acks.is_settled());
}

#[tokio::test]
async fn a_single_event_still_too_large_is_dead_lettered_and_the_rest_delivered() {
    let service = Service::start(|request, _, _| {
        if contains(request, "huge") {
            Reply::status(413).body("payload too large")
        } else {
            Reply::status(200)
        }
    })
    .await;
    let stream = Stream::new();
    let events = vec![stream.event(0, ""), stream.event(1, "huge"), stream.event(2, "")];
    stream.acks.mark(json!("after the page"));
    let dir = tempfile::tempdir().expect("tempdir");

    let report = deliver_all(&service.settings(), dir.path(), events).await;

    let dead = dead_letters(dir.path());
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (dead[0]["id"].as_str(), dead[0]["status"].as_u64()),
        (Some("ev-1"), Some(413))
    );
    assert_eq!(service.accepted().concat(), vec!["ev-0", "ev-2"]);
    assert_eq!((report.delivered, report.dead_lettered), (2, 1));
    assert!(stream.acks.is_settled());
    assert_eq!(stream.checkpoint(), Some(json!("after the page")));
}

#[tokio::test]
async fn a_400_for_one_event_dead_letters_only_that_event_with_its_reason() {
    let service = Service::start(|request, _, _| {
        if contains(request, "poison") {
            Reply::status(400).body(r#"{"error":"field extra must not be poison"}"#)
        } else {
            Reply::status(200)
        }
    })
    .await;
    let stream = Stream::new();
    let events: Vec<Encoded> = (0..8)
        .map(|i| stream.event(i, if i == 5 { "poison" } else { "" }))
        .collect();
    let poison: Value = serde_json::from_slice(&events[5].json).expect("json");
    stream.acks.mark(json!("after the page"));
    let dir = tempfile::tempdir().expect("tempdir");

    let report = deliver_all(&service.settings(), dir.path(), events).await;

    let dead = dead_letters(dir.path());
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["id"], "ev-5");
    assert_eq!(dead[0]["stream"], "s");
    assert_eq!(dead[0]["status"], 400);
    assert_eq!(dead[0]["event"], poison, "the event as an object");
    let reason = dead[0]["reason"].as_str().expect("reason");
    assert!(reason.contains("400"), "{reason}");
    assert!(reason.contains("field extra must not be poison"), "{reason}");
    let mut delivered = service.accepted().concat();
    delivered.sort();
    let mut expected: Vec<String> = ids(0..8).into_iter().filter(|id| id != "ev-5").collect();
    expected.sort();
    assert_eq!(delivered, expected, "every other event exactly once");
    assert_eq!((report.delivered, report.dead_lettered), (7, 1));
    assert!(stream.acks.is_settled());
    assert_eq!(stream.checkpoint(), Some(json!("after the page")));
}

#[tokio::test]
async fn a_redirect_pauses_delivery_instead_of_dead_lettering_everything() {
    let service = Service::start(|_, _, n| match n {
        0 => Reply::status(301),
        _ => Reply::status(200),
    })
    .await;
    let stream = Stream::new();
    let dir = tempfile::tempdir().expect("tempdir");

    let report = deliver_all(&service.settings(), dir.path(), stream.page(4)).await;

    assert_eq!(service.accepted(), vec![ids(0..4)], "the whole batch, retried");
    assert_eq!(report.dead_lettered, 0);
    assert!(dead_letters(dir.path()).is_empty());
}

#[tokio::test]
async fn gzip_bodies_decode_to_the_ndjson_of_the_batch() {
    let service = Service::start(|_, _, _| Reply::status(200)).await;
    let mut settings = service.settings();
    settings.compression = Compression::Gzip;
    let stream = Stream::new();
    let events = stream.page(3);
    let mut expected = Vec::new();
    for e in &events {
        expected.extend_from_slice(&e.json);
        expected.push(b'\n');
    }
    let dir = tempfile::tempdir().expect("tempdir");

    deliver_all(&settings, dir.path(), events).await;

    let calls = service.calls();
    assert_eq!(calls.len(), 1);
    let header = |name: &str| {
        calls[0]
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(header("content-encoding").as_deref(), Some("gzip"));
    assert_eq!(header("content-type").as_deref(), Some("application/x-ndjson"));
    assert_ne!(calls[0].body, expected, "the wire body is compressed");
    let mut plain = Vec::new();
    GzDecoder::new(&calls[0].body[..])
        .read_to_end(&mut plain)
        .expect("gzip");
    assert_eq!(plain, expected);
}

#[tokio::test]
async fn the_json_format_sends_one_array_of_the_events() {
    let service = Service::start(|_, _, _| Reply::status(200)).await;
    let mut settings = service.settings();
    settings.protocol = Protocol::Json;
    let stream = Stream::new();
    let events = stream.page(3);
    let expected: Vec<Value> = events
        .iter()
        .map(|e| serde_json::from_slice(&e.json).expect("json"))
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");

    deliver_all(&settings, dir.path(), events).await;

    let calls = service.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0].headers.get("content-type").map(HeaderValue::as_bytes),
        Some(&b"application/json"[..])
    );
    assert!(calls[0].headers.get("content-encoding").is_none());
    let body: Value = serde_json::from_slice(&calls[0].body).expect("json array");
    assert_eq!(body, Value::Array(expected));
}

/// Log output captured for one test.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("capture").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_token_and_header_values_are_sent_but_never_logged() {
    const TOKEN: &str = "tok-s3cret-123";
    const TENANT: &str = "hdr-s3cret-456";
    // A careless service echoes the credentials back in its error pages.
    let service = Service::start(|_, _, n| match n {
        0 => Reply::status(401).body(&format!("bad Authorization: Bearer {TOKEN}")),
        1 => Reply::status(503).body(&format!("Bearer {TOKEN} for x-tenant {TENANT} unknown")),
        _ => Reply::status(200),
    })
    .await;
    let mut settings = service.settings();
    settings.credentials.token = Some(Rotating::fixed("sink.auth_token", SecretString::from(TOKEN)));
    let mut tenant = HeaderValue::from_static(TENANT);
    tenant.set_sensitive(true);
    settings.headers.insert(HeaderName::from_static("x-tenant"), tenant);
    let stream = Stream::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer({
            let capture = capture.clone();
            move || capture.clone()
        })
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    deliver_all(&settings, dir.path(), stream.page(2)).await;

    let calls = service.calls();
    assert_eq!(calls.len(), 3);
    for call in &calls {
        let auth = call.headers.get("authorization").and_then(|v| v.to_str().ok());
        assert_eq!(auth, Some(format!("Bearer {TOKEN}").as_str()));
        let tenant = call.headers.get("x-tenant").and_then(|v| v.to_str().ok());
        assert_eq!(tenant, Some(TENANT));
    }
    let logs = String::from_utf8(capture.0.lock().expect("capture").clone()).expect("utf-8");
    assert!(logs.contains("refused the credentials"), "{logs}");
    assert!(logs.contains("check sink.auth_token"), "{logs}");
    assert!(logs.contains("retrying the batch"), "{logs}");
    assert!(!logs.contains(TOKEN), "{logs}");
    assert!(!logs.contains(TENANT), "{logs}");
}

#[tokio::test]
async fn abort_stops_a_sink_waiting_out_a_backoff_and_acknowledges_nothing() {
    let (called, mut first_call) = mpsc::unbounded_channel();
    let service = Service::start(move |_, _, _| {
        let _ = called.send(());
        // Ten minutes: only the abort can end this wait in time.
        Reply::status(503).retry_after("600")
    })
    .await;
    let stream = Stream::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let (tx, rx) = queue(stream.page(3)).await;
    drop(tx);
    let abort = CancellationToken::new();
    let sink = Sink::new(
        &service.settings(),
        fast_retries(),
        dead_letter(dir.path()),
        Metrics::new(),
    )
    .expect("sink");
    let running = tokio::spawn(sink.run(rx, abort.clone()));

    first_call.recv().await.expect("the batch was sent");
    abort.cancel();
    let report = tokio::time::timeout(PATIENCE, running)
        .await
        .expect("stops at once")
        .expect("joined");

    assert!(report.aborted);
    assert_eq!(report.delivered, 0);
    assert_eq!(stream.acks.outstanding(), 3);
    assert_eq!(stream.checkpoint(), None, "the checkpoint stays behind the batch");
}

#[tokio::test]
async fn abort_interrupts_a_request_in_flight() {
    let (called, mut first_call) = mpsc::unbounded_channel();
    let service = Service::start(move |_, _, _| {
        let _ = called.send(());
        Reply::status(200).delay(Duration::from_secs(600))
    })
    .await;
    let mut settings = service.settings();
    settings.timeout = Duration::from_secs(900);
    let stream = Stream::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let (tx, rx) = queue(stream.page(2)).await;
    drop(tx);
    let abort = CancellationToken::new();
    let sink = Sink::new(&settings, fast_retries(), dead_letter(dir.path()), Metrics::new()).expect("sink");
    let running = tokio::spawn(sink.run(rx, abort.clone()));

    first_call.recv().await.expect("the batch was sent");
    abort.cancel();
    let report = tokio::time::timeout(PATIENCE, running)
        .await
        .expect("stops at once")
        .expect("joined");

    assert!(report.aborted);
    assert_eq!(stream.acks.outstanding(), 2);
}
