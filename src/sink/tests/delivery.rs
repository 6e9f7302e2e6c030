//! The sink against a scripted ingestion service: batching, acknowledgements, retries,
//! pauses, splits and dead letters.

use super::*;

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
    let weight: Vec<usize> = events.iter().map(|e| e.json.capacity() + e.id.len()).collect();
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
