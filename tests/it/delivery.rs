//! Delivery to the ingestion service through outages and refusals: nothing lost, nothing
//! twice, checkpoints held back until acknowledged, memory bounded by backpressure.

use std::time::{Duration, Instant};

use openai_audit_ingest::streams::Mode;
use openai_audit_simulator::{Family, Fault, ReceiverScript};

use crate::helpers::{TestApp, poll_until};

#[tokio::test(flavor = "multi_thread")]
async fn a_sink_answering_503_and_429_then_200_gets_each_event_once() {
    let app = TestApp::builder().history(80).start().await;
    app.receiver().set_response(ReceiverScript::Next {
        status: 503,
        retry_after_secs: None,
        times: 2,
    });
    app.receiver().set_response(ReceiverScript::Next {
        status: 429,
        retry_after_secs: Some(1),
        times: 1,
    });
    let started = Instant::now();
    let outcome = app.run_once().await;
    assert!(outcome.all_delivered, "{outcome:?}");
    let (got, dups) = app.received();
    assert_eq!(got, app.expected_audit_ids());
    assert_eq!(dups, 0);
    let requests = app.receiver().requests();
    assert_eq!(requests.iter().filter(|r| r.status == 503).count(), 2);
    assert_eq!(requests.iter().filter(|r| r.status == 429).count(), 1);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was honoured"
    );
    // The refused batch and its successful retry carry the same Idempotency-Key.
    let first_key = requests[0].idempotency_key.clone().expect("key");
    assert!(
        requests
            .iter()
            .filter(|r| r.status == 200)
            .any(|r| r.idempotency_key.as_ref() == Some(&first_key))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn while_the_sink_is_down_the_checkpoint_stays_and_fetching_stops() {
    let app = TestApp::builder()
        .history(3000)
        .envs(&[
            ("OAI_INGEST__AUDIT_LOGS__PAGE_SIZE", "50"),
            ("OAI_INGEST__AUDIT_LOGS__TENANT_EVENTS", "false"),
            ("OAI_INGEST__SINK__MAX_BATCH_BYTES", "8KiB"),
            ("OAI_INGEST__SINK__MAX_QUEUE_BYTES", "32KiB"),
            ("OAI_INGEST__RETRY__MAX_BACKOFF", "20ms"),
        ])
        .start()
        .await;
    app.receiver().set_response(ReceiverScript::Next {
        status: 503,
        retry_after_secs: None,
        times: 100_000,
    });
    let running = app.spawn().await;
    poll_until(|| app.receiver().requests().len() >= 30).await;
    let pages_while_down = app.faults().requests(Family::AuditLogs);
    poll_until(|| app.receiver().requests().len() >= 60).await;
    assert_eq!(
        app.faults().requests(Family::AuditLogs),
        pages_while_down,
        "backpressure: no more pages are fetched while the sink refuses"
    );
    let expected = app.normal_pass_ids();
    let total_pages = expected.len() as u64 / 50;
    assert!(pages_while_down > 0);
    assert!(
        pages_while_down < total_pages / 2,
        "only a bounded backlog is held ({pages_while_down} of {total_pages} pages)"
    );
    assert!(
        app.checkpoint("audit_logs").is_none(),
        "nothing acknowledged, nothing checkpointed"
    );

    app.receiver().set_response(ReceiverScript::Clear);
    assert!(app.receiver().wait_for(expected.len(), Duration::from_secs(60)).await);
    running.stop().await;
    let (got, dups) = app.received();
    assert_eq!(got, expected);
    assert_eq!(dups, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sink_refusing_the_token_loses_nothing_once_it_is_fixed() {
    let app = TestApp::builder().history(60).start().await;
    app.receiver().set_response(ReceiverScript::Next {
        status: 401,
        retry_after_secs: None,
        times: 4,
    });
    let running = app.spawn().await;
    poll_until(|| app.receiver().requests().iter().filter(|r| r.status == 401).count() >= 2).await;
    assert!(app.receiver().ids().is_empty());
    assert!(
        app.checkpoint("audit_logs").is_none(),
        "the checkpoint stays put while refused"
    );
    let expected = app.expected_audit_ids();
    assert!(app.receiver().wait_for(expected.len(), Duration::from_secs(30)).await);
    running.stop().await;
    let (got, dups) = app.received();
    assert_eq!(got, expected);
    assert_eq!(dups, 0);
    assert!(app.checkpoint("audit_logs").is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_the_service_finds_too_large_is_split() {
    let app = TestApp::builder()
        .history(60)
        .env("OAI_INGEST__SINK__COMPRESSION", "none")
        .start()
        .await;
    app.receiver()
        .set_response(ReceiverScript::MaxBodyBytes { bytes: 12_000 });
    let outcome = app.run_once().await;
    assert!(outcome.all_delivered, "{outcome:?}");
    let requests = app.receiver().requests();
    assert!(requests.iter().any(|r| r.status == 413), "the limit was hit");
    assert!(app.receiver().batches().iter().all(|b| b.wire_bytes <= 12_000));
    let (got, dups) = app.received();
    assert_eq!(got, app.expected_audit_ids());
    assert_eq!(dups, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_event_goes_to_the_dead_letter_file_and_the_rest_is_delivered() {
    let app = TestApp::builder().history(40).start().await;
    let victim = app.org().add_audit_event("api_key.created", None);
    app.receiver().set_response(ReceiverScript::RejectIdContaining {
        needle: victim.clone(),
        status: 422,
    });
    let outcome = app.run_once().await;
    assert!(
        outcome.all_delivered,
        "a dead-lettered event counts as handled: {outcome:?}"
    );
    let (got, dups) = app.received();
    let mut expected = app.expected_audit_ids();
    expected.retain(|id| !id.ends_with(&victim));
    assert_eq!(got, expected);
    assert_eq!(dups, 0);
    let lines = app.dead_letters();
    assert_eq!(lines.len(), 1);
    assert!(lines[0]["id"].as_str().is_some_and(|id| id.ends_with(&victim)));
    assert_eq!(lines[0]["status"], 422);
    assert!(app.checkpoint("audit_logs").is_some_and(|c| c["watermark"].is_i64()));
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_after_from_the_admin_api_is_honoured() {
    let app = TestApp::builder()
        .history(10)
        .env("OAI_INGEST__AUDIT_LOGS__TENANT_EVENTS", "false")
        .start()
        .await;
    app.faults()
        .inject(Family::AuditLogs, Fault::TooManyRequests { retry_after_secs: 2 }, 1);
    let started = Instant::now();
    let outcome = app.run_once().await;
    assert!(outcome.success(Mode::Once), "{outcome:?}");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "waited as Retry-After asked"
    );
    assert_eq!(app.received().0, app.normal_pass_ids());
    assert_eq!(app.faults().served(Family::AuditLogs), 1, "the 429 was met");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stop_while_the_sink_refuses_ends_within_the_deadline_and_keeps_the_checkpoint() {
    let app = TestApp::builder()
        .history(400)
        // A small queue, so the processing stage is blocked on a full queue when the stop comes.
        .envs(&[
            ("OAI_INGEST__SHUTDOWN__TIMEOUT", "1s"),
            ("OAI_INGEST__SINK__MAX_BATCH_BYTES", "8KiB"),
            ("OAI_INGEST__SINK__MAX_QUEUE_BYTES", "16KiB"),
        ])
        .start()
        .await;
    app.receiver().set_response(ReceiverScript::Next {
        status: 401,
        retry_after_secs: None,
        times: 100_000,
    });
    let running = app.spawn().await;
    poll_until(|| app.receiver().requests().len() >= 3).await;
    let outcome = running.stop().await;
    assert!(outcome.aborted, "the drain gave up at its deadline: {outcome:?}");
    assert!(!outcome.all_delivered);
    assert!(app.receiver().ids().is_empty());
    assert!(app.checkpoint("audit_logs").is_none(), "nothing was acknowledged");
}
