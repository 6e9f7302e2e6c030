//! Delivery to the ingestion service through outages and refusals: nothing lost, nothing
//! twice, checkpoints held back until acknowledged, memory bounded by backpressure.

use std::time::{Duration, Instant};

use openai_audit_simulator::{Family, Fault, ReceiverScript};

use crate::helpers::{
    self, checkpoint, expected_audit_ids, normal_pass_ids, poll_until, quiet_sim, received, settings,
};

#[tokio::test(flavor = "multi_thread")]
async fn a_sink_answering_503_and_429_then_200_gets_each_event_once() {
    let sim = quiet_sim(80).await;
    sim.receiver().set_response(ReceiverScript::Next {
        status: 503,
        retry_after_secs: None,
        times: 2,
    });
    sim.receiver().set_response(ReceiverScript::Next {
        status: 429,
        retry_after_secs: Some(1),
        times: 1,
    });
    let state = tempfile::tempdir().expect("tempdir");
    let s = settings(&sim, state.path(), &[]);
    let started = Instant::now();
    let outcome = helpers::run_once(&s).await;
    assert!(outcome.all_delivered, "{outcome:?}");
    let (got, dups) = received(&sim);
    assert_eq!(got, expected_audit_ids(&sim));
    assert_eq!(dups, 0);
    let requests = sim.receiver().requests();
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
    let sim = quiet_sim(3000).await;
    sim.receiver().set_response(ReceiverScript::Next {
        status: 503,
        retry_after_secs: None,
        times: 100_000,
    });
    let state = tempfile::tempdir().expect("tempdir");
    let s = settings(
        &sim,
        state.path(),
        &[
            ("OAI_INGEST__AUDIT_LOGS__PAGE_SIZE", "50"),
            ("OAI_INGEST__AUDIT_LOGS__TENANT_EVENTS", "false"),
            ("OAI_INGEST__SINK__MAX_BATCH_BYTES", "8KiB"),
            ("OAI_INGEST__SINK__MAX_QUEUE_BYTES", "32KiB"),
            ("OAI_INGEST__RETRY__MAX_BACKOFF", "20ms"),
        ],
    );
    let running = helpers::spawn_run(&s).await;
    poll_until(|| sim.receiver().requests().len() >= 30).await;
    let pages_while_down = sim.faults().requests(Family::AuditLogs);
    poll_until(|| sim.receiver().requests().len() >= 60).await;
    assert_eq!(
        sim.faults().requests(Family::AuditLogs),
        pages_while_down,
        "backpressure: no more pages are fetched while the sink refuses"
    );
    let expected = normal_pass_ids(&sim);
    let total_pages = expected.len() as u64 / 50;
    assert!(pages_while_down > 0);
    assert!(
        pages_while_down < total_pages / 2,
        "only a bounded backlog is held ({pages_while_down} of {total_pages} pages)"
    );
    assert!(
        checkpoint(state.path(), "audit_logs").is_none(),
        "nothing acknowledged, nothing checkpointed"
    );

    sim.receiver().set_response(ReceiverScript::Clear);
    assert!(sim.receiver().wait_for(expected.len(), Duration::from_secs(60)).await);
    running.stop().await;
    let (got, dups) = received(&sim);
    assert_eq!(got, expected);
    assert_eq!(dups, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sink_refusing_the_token_loses_nothing_once_it_is_fixed() {
    let sim = quiet_sim(60).await;
    sim.receiver().set_response(ReceiverScript::Next {
        status: 401,
        retry_after_secs: None,
        times: 4,
    });
    let state = tempfile::tempdir().expect("tempdir");
    let s = settings(&sim, state.path(), &[]);
    let running = helpers::spawn_run(&s).await;
    poll_until(|| sim.receiver().requests().iter().filter(|r| r.status == 401).count() >= 2).await;
    assert!(sim.receiver().ids().is_empty());
    assert!(
        checkpoint(state.path(), "audit_logs").is_none(),
        "the checkpoint stays put while refused"
    );
    let expected = expected_audit_ids(&sim);
    assert!(sim.receiver().wait_for(expected.len(), Duration::from_secs(30)).await);
    running.stop().await;
    let (got, dups) = received(&sim);
    assert_eq!(got, expected);
    assert_eq!(dups, 0);
    assert!(checkpoint(state.path(), "audit_logs").is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_the_service_finds_too_large_is_split() {
    let sim = quiet_sim(60).await;
    sim.receiver()
        .set_response(ReceiverScript::MaxBodyBytes { bytes: 12_000 });
    let state = tempfile::tempdir().expect("tempdir");
    let s = settings(&sim, state.path(), &[("OAI_INGEST__SINK__COMPRESSION", "none")]);
    let outcome = helpers::run_once(&s).await;
    assert!(outcome.all_delivered, "{outcome:?}");
    let requests = sim.receiver().requests();
    assert!(requests.iter().any(|r| r.status == 413), "the limit was hit");
    assert!(sim.receiver().batches().iter().all(|b| b.wire_bytes <= 12_000));
    let (got, dups) = received(&sim);
    assert_eq!(got, expected_audit_ids(&sim));
    assert_eq!(dups, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_event_goes_to_the_dead_letter_file_and_the_rest_is_delivered() {
    let sim = quiet_sim(40).await;
    let victim = sim.org().add_audit_event("api_key.created", None);
    sim.receiver().set_response(ReceiverScript::RejectIdContaining {
        needle: victim.clone(),
        status: 422,
    });
    let state = tempfile::tempdir().expect("tempdir");
    let s = settings(&sim, state.path(), &[]);
    let outcome = helpers::run_once(&s).await;
    assert!(
        outcome.all_delivered,
        "a dead-lettered event counts as handled: {outcome:?}"
    );
    let (got, dups) = received(&sim);
    let mut expected = expected_audit_ids(&sim);
    expected.retain(|id| !id.ends_with(&victim));
    assert_eq!(got, expected);
    assert_eq!(dups, 0);
    let dead = std::fs::read_to_string(state.path().join("dead-letter.ndjson")).expect("dead-letter file");
    let lines: Vec<serde_json::Value> = dead
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 1);
    assert!(lines[0]["id"].as_str().is_some_and(|id| id.ends_with(&victim)));
    assert_eq!(lines[0]["status"], 422);
    assert!(checkpoint(state.path(), "audit_logs").is_some_and(|c| c["watermark"].is_i64()));
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_after_from_the_admin_api_is_honoured() {
    let sim = quiet_sim(10).await;
    sim.faults()
        .inject(Family::AuditLogs, Fault::TooManyRequests { retry_after_secs: 2 }, 1);
    let state = tempfile::tempdir().expect("tempdir");
    let s = settings(
        &sim,
        state.path(),
        &[("OAI_INGEST__AUDIT_LOGS__TENANT_EVENTS", "false")],
    );
    let started = Instant::now();
    let outcome = helpers::run_once(&s).await;
    assert!(outcome.success(openai_audit_ingest::streams::Mode::Once), "{outcome:?}");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "waited as Retry-After asked"
    );
    assert_eq!(received(&sim).0, normal_pass_ids(&sim));
    assert_eq!(sim.faults().served(Family::AuditLogs), 1, "the 429 was met");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stop_while_the_sink_refuses_ends_within_the_deadline_and_keeps_the_checkpoint() {
    let sim = quiet_sim(400).await;
    sim.receiver().set_response(ReceiverScript::Next {
        status: 401,
        retry_after_secs: None,
        times: 100_000,
    });
    let state = tempfile::tempdir().expect("tempdir");
    let s = settings(
        &sim,
        state.path(),
        // A small queue, so the processing stage is blocked on a full queue when the stop comes.
        &[
            ("OAI_INGEST__SHUTDOWN__TIMEOUT", "1s"),
            ("OAI_INGEST__SINK__MAX_BATCH_BYTES", "8KiB"),
            ("OAI_INGEST__SINK__MAX_QUEUE_BYTES", "16KiB"),
        ],
    );
    let running = helpers::spawn_run(&s).await;
    poll_until(|| sim.receiver().requests().len() >= 3).await;
    let outcome = running.stop().await;
    assert!(outcome.aborted, "the drain gave up at its deadline: {outcome:?}");
    assert!(!outcome.all_delivered);
    assert!(sim.receiver().ids().is_empty());
    assert!(
        checkpoint(state.path(), "audit_logs").is_none(),
        "nothing was acknowledged"
    );
}
