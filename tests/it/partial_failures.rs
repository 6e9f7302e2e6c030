//! How each protocol's partial failures are met: only what the receiver asks for is sent
//! again, what it names is dead-lettered with its reason, nothing is retried that its
//! protocol says must not be — and a receiver that refuses everything pauses delivery
//! instead of swallowing the feed into the dead-letter file.

use std::collections::HashSet;
use std::time::Duration;

use openai_audit_ingest::metrics::SinkPause;
use openai_audit_simulator::ReceiverScript;
use serde_json::Value;

use crate::helpers::binary::text;
use crate::helpers::{Running, TestApp, poll_until, wait_until};

/// The event id of the audit event the simulator just added, for scripting against it.
fn victim(app: &TestApp) -> (String, String) {
    let raw = app.org().add_audit_event("api_key.created", None);
    let id = app.audit_event_id(&raw);
    (raw, id)
}

fn without(mut ids: HashSet<String>, id: &str) -> HashSet<String> {
    ids.remove(id);
    ids
}

/// Every idempotency key the receiver saw more than once, with the statuses it got.
fn repeated_keys(app: &TestApp) -> Vec<(String, Vec<u16>)> {
    let mut seen: std::collections::HashMap<String, Vec<u16>> = std::collections::HashMap::new();
    for r in app.receiver().requests() {
        if let Some(key) = r.idempotency_key {
            seen.entry(key).or_default().push(r.status);
        }
    }
    seen.into_iter().filter(|(_, s)| s.len() > 1).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn elasticsearch_resends_only_the_items_it_refused_with_429() {
    let app = TestApp::builder().history(40).protocol("elasticsearch").start().await;
    let (raw, id) = victim(&app);
    app.receiver().set_response(ReceiverScript::ItemStatus {
        needle: raw,
        status: 429,
        times: Some(2),
    });
    assert!(app.run_once().await.all_delivered);
    let (got, dups) = app.received();
    assert_eq!(got, app.expected_audit_ids());
    assert_eq!(dups, 0);
    let with_victim: Vec<Vec<String>> = app
        .receiver()
        .requests()
        .into_iter()
        .filter(|r| r.ids.contains(&id))
        .map(|r| r.ids)
        .collect();
    assert_eq!(with_victim.len(), 3, "refused twice, taken the third time");
    assert!(with_victim[0].len() > 1, "first sent in its batch");
    assert_eq!(with_victim[1], vec![id.clone()], "then alone");
    assert_eq!(with_victim[2], vec![id]);
    assert!(!app.state_path().join("dead-letter.ndjson").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn elasticsearch_409_on_a_resent_batch_counts_as_delivered() {
    let app = TestApp::builder().history(40).protocol("elasticsearch").start().await;
    // The first batch is stored but its answer is lost: the resend meets 409 for every item.
    app.receiver().set_response(ReceiverScript::LoseResponse { times: 1 });
    assert!(app.run_once().await.all_delivered);
    let (got, dups) = app.received();
    assert_eq!(got, app.expected_audit_ids());
    assert_eq!(dups, 0, "the store holds each document once");
    let requests = app.receiver().requests();
    assert_eq!(requests[0].status, 503);
    assert_eq!(
        requests[1].idempotency_key, requests[0].idempotency_key,
        "the same batch again"
    );
    assert_eq!(requests[1].status, 200);
    assert!(
        !app.state_path().join("dead-letter.ndjson").exists(),
        "409 is not a rejection"
    );
    assert!(app.checkpoint("audit_logs").is_some());
}

/// Runs one cycle speaking `protocol` while the receiver refuses one event with `status`,
/// and checks that exactly that event is dead-lettered and every other arrives once; returns
/// the app and the victim's dead-letter line.
async fn narrowed_to_one_event(protocol: &str, status: u16) -> (TestApp, Value) {
    let app = TestApp::builder().history(40).protocol(protocol).start().await;
    let (raw, id) = victim(&app);
    app.receiver()
        .set_response(ReceiverScript::RejectIdContaining { needle: raw, status });
    assert!(app.run_once().await.all_delivered, "{protocol}");
    let (got, dups) = app.received();
    assert_eq!(got, without(app.expected_audit_ids(), &id), "{protocol}");
    assert_eq!(dups, 0, "{protocol}");
    let dead = app.dead_letters();
    assert_eq!(dead.len(), 1, "{protocol}: only the bad event: {dead:?}");
    assert_eq!(dead[0]["id"], id.as_str());
    assert_eq!(dead[0]["event"]["id"], id.as_str(), "the v1 event is kept for replay");
    assert!(
        app.checkpoint("audit_logs").is_some(),
        "{protocol}: the checkpoint moved past it"
    );
    let line = dead[0].clone();
    (app, line)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_elasticsearch_item_refused_with_400_is_dead_lettered_with_its_reason() {
    let (_, dead) = narrowed_to_one_event("elasticsearch", 400).await;
    assert_eq!(dead["status"], 400);
    let reason = dead["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("document_parsing_exception"), "{dead}");
}

#[tokio::test(flavor = "multi_thread")]
async fn otlp_partial_success_is_counted_and_never_retried() {
    let app = TestApp::builder().history(40).protocol("otlp").start().await;
    app.receiver().set_response(ReceiverScript::PartialSuccess {
        rejected: 2,
        message: "two records refused by the pipeline".into(),
        times: 1,
    });
    let (outcome, metrics) = app.run_once_with_metrics().await;
    assert!(outcome.all_delivered, "{outcome:?}");
    assert!(repeated_keys(&app).is_empty(), "no batch was sent twice");
    let (got, dups) = app.received();
    assert_eq!(dups, 0);
    assert_eq!(
        got.len(),
        app.expected_audit_ids().len() - 2,
        "the receiver dropped two"
    );
    assert!(
        metrics
            .render()
            .contains("oai_ingest_events_dropped_by_receiver_total 2"),
        "{}",
        metrics.render()
    );
    assert!(!app.state_path().join("dead-letter.ndjson").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_loki_400_is_never_retried_as_is_and_narrows_to_the_refused_entry() {
    // No duplicates arrive although narrowing re-sends entries Loki already wrote: it drops
    // exact repeats.
    let (app, dead) = narrowed_to_one_event("loki", 400).await;
    for (key, statuses) in repeated_keys(&app) {
        assert!(
            !statuses.contains(&400),
            "a batch Loki answered 400 was sent again as is ({key}: {statuses:?})"
        );
    }
    let reason = dead["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("timestamp too old"), "{dead}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_akto_422_is_narrowed_to_the_one_bad_event() {
    let (_, dead) = narrowed_to_one_event("akto", 422).await;
    assert_eq!(dead["status"], 422);
}

#[tokio::test(flavor = "multi_thread")]
async fn splunk_ack_resends_an_unacknowledged_batch_and_checkpoints_only_acknowledged_ones() {
    let app = TestApp::builder()
        .history(30)
        .protocol("splunk_hec")
        .envs(&[
            ("OAI_INGEST__SINK__ACK", "true"),
            ("OAI_INGEST__SINK__ACK_TIMEOUT", "2s"),
            ("OAI_INGEST__AUDIT_LOGS__TENANT_EVENTS", "false"),
            ("OAI_INGEST__GUARDRAILS__ENABLED", "false"),
        ])
        .start()
        .await;
    app.receiver().set_response(ReceiverScript::WithholdAcks { times: 1 });
    let running = app.spawn().await;
    poll_until(|| !app.receiver().requests().is_empty()).await;
    // Splunk took the batch, but the indexer never confirms it.
    assert!(app.receiver().ids().is_empty());
    assert!(
        app.checkpoint("audit_logs").is_none(),
        "nothing confirmed, nothing checkpointed"
    );
    let expected = app.normal_pass_ids();
    wait_until(Duration::from_secs(30), "the batch is resent and confirmed", || {
        app.received().0 == expected && app.checkpoint("audit_logs").is_some()
    })
    .await;
    running.stop().await;
    let requests = app.receiver().requests();
    assert!(requests.len() >= 2);
    assert_eq!(
        requests[1].idempotency_key, requests[0].idempotency_key,
        "the same batch, sent again after sink.ack_timeout"
    );
    let (got, dups) = app.received();
    assert_eq!(got, expected);
    assert_eq!(dups, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_404_pauses_delivery_with_the_gauge_set_and_loses_nothing_once_fixed() {
    let app = TestApp::builder().history(60).protocol("otlp").start().await;
    app.receiver().set_response(ReceiverScript::Next {
        status: 404,
        retry_after_secs: None,
        times: 100_000,
    });
    let running = app.spawn().await;
    poll_until(|| app.receiver().requests().len() >= 3 && running.metrics().sink_paused() == Some(SinkPause::Config))
        .await;
    assert!(app.receiver().ids().is_empty());
    assert!(app.checkpoint("audit_logs").is_none(), "the checkpoint stays put");
    assert!(
        !app.state_path().join("dead-letter.ndjson").exists(),
        "nothing dead-lettered for a 404"
    );
    assert!(
        running
            .metrics()
            .render()
            .contains("oai_ingest_sink_paused{reason=\"config\"} 1")
    );

    app.receiver().set_response(ReceiverScript::Clear);
    let expected = app.expected_audit_ids();
    wait_until(
        Duration::from_secs(30),
        "everything arrives once the path is right",
        || app.received().0 == expected,
    )
    .await;
    // The receiver stores before it answers: the sink ends the pause once the answer is in.
    poll_until(|| running.metrics().sink_paused().is_none()).await;
    assert!(
        running
            .metrics()
            .render()
            .contains("oai_ingest_sink_paused{reason=\"config\"} 0")
    );
    running.stop().await;
    assert_eq!(app.received().1, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_404_is_logged_as_an_error_naming_the_path_and_the_fix() {
    let app = TestApp::builder().history(30).start().await;
    app.receiver().set_response(ReceiverScript::Next {
        status: 404,
        retry_after_secs: None,
        times: 100_000,
    });
    let run = app.start_binary(&["run"], &[("OAI_INGEST__LOG__FORMAT", "json")]);
    wait_until(Duration::from_secs(60), "an ERROR about the path", || {
        run.stderr_so_far()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .any(|l| {
                l["level"] == "ERROR"
                    && l["path"] == "/receiver/events"
                    && l["fix"].as_str().is_some_and(|f| f.contains("sink.url"))
            })
    })
    .await;
    app.receiver().set_response(ReceiverScript::Clear);
    let expected = app.expected_audit_ids();
    wait_until(Duration::from_secs(60), "everything arrives", || {
        app.received().0 == expected
    })
    .await;
    crate::helpers::binary::send_signal(run.pid(), "-TERM");
    let out = run.finish(Duration::from_secs(30)).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(app.received().1, 0);
}

/// The daemon running against a receiver that refuses every event with 400 (a
/// misconfigured service, not bad data): the normal pass of `history` events only, no
/// finding events, and `key` set.
async fn refusing_everything(history: usize, key: (&str, &str)) -> (TestApp, Running) {
    let app = TestApp::builder()
        .history(history)
        .envs(&[
            key,
            ("OAI_INGEST__AUDIT_LOGS__TENANT_EVENTS", "false"),
            ("OAI_INGEST__GUARDRAILS__ENABLED", "false"),
        ])
        .start()
        .await;
    app.receiver().set_response(ReceiverScript::RejectIdContaining {
        needle: "openai.audit_log".into(),
        status: 400,
    });
    let running = app.spawn().await;
    (app, running)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receiver_refusing_every_event_pauses_after_a_few_batches_and_replay_delivers_the_rest() {
    let (app, running) = refusing_everything(60, ("OAI_INGEST__SINK__MAX_BATCH_EVENTS", "4")).await;
    poll_until(|| running.metrics().sink_paused() == Some(SinkPause::Refused)).await;
    let dead_while_paused = app.dead_letters().len();
    assert_eq!(
        dead_while_paused, 8,
        "two batches of four were dead-lettered; the third pauses"
    );
    assert!(app.checkpoint("audit_logs").is_none());

    app.receiver().set_response(ReceiverScript::Clear);
    let expected = app.normal_pass_ids();
    wait_until(Duration::from_secs(30), "the rest is delivered", || {
        app.received().0.len() + dead_while_paused == expected.len()
    })
    .await;
    running.stop().await;
    assert_eq!(
        app.dead_letters().len(),
        dead_while_paused,
        "nothing more was dead-lettered"
    );

    // `replay` sends the dead letters again and empties the file of what was taken.
    let report = openai_audit_ingest::replay::replay(
        &app.settings(),
        Duration::from_secs(30),
        openai_audit_ingest::metrics::Metrics::new(),
    )
    .await
    .expect("replay runs");
    assert_eq!((report.events, report.delivered, report.left), (8, 8, 0));
    let (got, dups) = app.received();
    assert_eq!(got, expected, "nothing lost");
    assert_eq!(dups, 0);
    assert!(app.dead_letters().is_empty(), "the delivered lines are gone");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_dead_letter_file_pauses_delivery_instead_of_dropping() {
    let (app, running) = refusing_everything(120, ("OAI_INGEST__SINK__DEAD_LETTER_MAX_BYTES", "64KiB")).await;
    poll_until(|| running.metrics().sink_paused() == Some(SinkPause::DeadLetterFull)).await;
    let path = app.state_path().join("dead-letter.ndjson");
    let size = std::fs::metadata(&path).expect("dead-letter file").len();
    assert!(size <= 64 * 1024, "the file stays within its limit: {size}");
    assert!(
        app.checkpoint("audit_logs").is_none(),
        "nothing is acknowledged past the limit"
    );

    // The operator sets the file aside and fixes the receiver: nothing was lost meanwhile.
    let saved_path = app.state_path().join("dead-letter.saved");
    std::fs::rename(&path, &saved_path).expect("move the file away");
    app.receiver().set_response(ReceiverScript::Clear);
    let ids_in = |file: &std::path::Path| -> Vec<String> {
        std::fs::read_to_string(file)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|l| l["id"].as_str().map(str::to_string))
            .collect()
    };
    let accounted = || -> HashSet<String> {
        let mut all = app.received().0;
        all.extend(ids_in(&saved_path));
        all.extend(ids_in(&path));
        all
    };
    let expected = app.normal_pass_ids();
    wait_until(
        Duration::from_secs(30),
        "every event is delivered or dead-lettered",
        || accounted() == expected,
    )
    .await;
    running.stop().await;
    assert_eq!(app.received().1, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_replay_command_delivers_dead_letters_and_keeps_lines_that_never_were_events() {
    use crate::helpers::binary::describe;
    let app = TestApp::builder().history(5).start().await;
    let (_, id) = victim(&app);
    let event = serde_json::json!({"schema_version": 1, "id": id, "source": "openai.audit_log"});
    let lines = [
        serde_json::json!({"dead_lettered_at": "2026-01-01T00:00:00.000Z", "reason": "HTTP 400", "status": 400,
                           "stream": "audit_logs", "id": id, "event": event}),
        serde_json::json!({"dead_lettered_at": "2026-01-01T00:00:00.000Z", "reason": "not JSON", "stream": "compliance:AUTH_LOG",
                           "origin": {"file_id": "f", "line": 3}, "raw_line": "{oops"}),
    ];
    let file: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(app.state_path().join("dead-letter.ndjson"), file).expect("write the dead letters");

    let out = app.run_binary(&["replay"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("delivered and removed from the file:          1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("other lines kept (never were events):         1"),
        "{stdout}"
    );
    assert_eq!(app.receiver().ids(), vec![id]);
    let left = app.dead_letters();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["raw_line"], "{oops", "the malformed upstream line stays");
}
