//! The sink against a scripted ingestion service: body formats, secrets kept out of logs,
//! and shutdown.

use super::*;

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
    let report = aborted_after_first_request(&service.settings(), dir.path(), stream.page(3), &mut first_call).await;

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
    let report = aborted_after_first_request(&settings, dir.path(), stream.page(2), &mut first_call).await;

    assert!(report.aborted);
    assert_eq!(stream.acks.outstanding(), 2);
}

/// Runs the sink over `events`, aborts it once the service has seen its first request, and
/// returns its report (the sink must stop at once).
async fn aborted_after_first_request(
    settings: &SinkSettings,
    dir: &std::path::Path,
    events: Vec<Encoded>,
    first_call: &mut mpsc::UnboundedReceiver<()>,
) -> SinkReport {
    let (tx, rx) = queue(events).await;
    drop(tx);
    let abort = CancellationToken::new();
    let sink = Sink::new(settings, fast_retries(), dead_letter(dir), Metrics::new()).expect("sink");
    let running = tokio::spawn(sink.run(rx, abort.clone()));
    first_call.recv().await.expect("the batch was sent");
    abort.cancel();
    tokio::time::timeout(PATIENCE, running)
        .await
        .expect("stops at once")
        .expect("joined")
}
