//! A parallel backfill — a long window cut into time slices paged at once, each with its own
//! cursor in the checkpoint — SIGKILLed half-way: the checkpoint holds the slices' cursors,
//! the restart resumes them instead of reading the window again, and every event arrives.

use std::time::Duration;

use openai_audit_simulator::{Family, Fault};

use crate::helpers::binary::{describe, send_signal};
use crate::helpers::{TestApp, wait_until};

/// The slices of the normal pass's saved window that have read at least one page.
fn slices_under_way(app: &TestApp) -> usize {
    app.checkpoint("audit_logs")
        .and_then(|state| state["slices"].as_array().cloned())
        .map_or(0, |slices| slices.iter().filter(|s| s["after"].is_string()).count())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kill_mid_parallel_backfill_resumes_every_slice_and_loses_nothing() {
    let _turn = crate::helpers::heavy().await;
    // 3,000 activities over 12 hours, read back 13 hours: twelve slices of about an hour. The
    // kill waits for a saved checkpoint with two slices part-read (slow on a loaded machine:
    // the limits are generous, the condition is what synchronizes).
    let app = TestApp::builder()
        .history(3_000)
        .history_span(Duration::from_secs(12 * 3_600))
        .start()
        .await;
    let extra = [
        ("OAI_INGEST__AUDIT_LOGS__INITIAL_LOOKBACK", "13h"),
        ("OAI_INGEST__AUDIT_LOGS__BACKFILL_CONCURRENCY", "4"),
        ("OAI_INGEST__AUDIT_LOGS__PAGE_SIZE", "10"),
        ("OAI_INGEST__LOG__LEVEL", "error"),
    ];
    let expected = app.expected_audit_ids();
    // Slow pages, so the kill lands with slices part-read and pages in flight.
    app.faults()
        .set_always(Family::AuditLogs, Some(Fault::LatencyMs { ms: 15 }));

    let run = app.start_binary(&["run"], &extra);
    wait_until(
        Duration::from_secs(240),
        "a sixth of the history delivered with several slices under way",
        || slices_under_way(&app) >= 2 && app.received().0.len() * 6 >= expected.len(),
    )
    .await;
    send_signal(run.pid(), "-KILL");
    let out = run.finish(Duration::from_secs(10)).await;
    assert_eq!(out.status.code(), None, "killed by the signal: {}", describe(&out));

    let saved = app.checkpoint("audit_logs").expect("a checkpoint");
    let slices = saved["slices"].as_array().expect("the window's slices are saved");
    assert!(slices.len() >= 2, "{saved}");
    assert!(
        saved["window"].is_object(),
        "the whole window is saved beside its slices: {saved}"
    );
    assert!(
        saved["watermark"].is_null(),
        "no watermark before every slice is read: {saved}"
    );
    let (before, _) = app.received();
    assert!(before.len() < expected.len(), "killed before the end");

    app.faults().clear();
    let run = app.start_binary(&["run"], &extra);
    wait_until(
        Duration::from_secs(120),
        "every event arrives after the restart",
        || app.received().0.is_superset(&expected),
    )
    .await;
    send_signal(run.pid(), "-TERM");
    let out = run.finish(Duration::from_secs(30)).await;
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));

    let (got, repeats) = app.received();
    assert_eq!(got, expected, "nothing lost, nothing invented");
    // Resumed, not read again: read from scratch, every event delivered before the kill would
    // arrive again; resumed, the pages behind the saved cursors (two slices at least) do not.
    // What does repeat is what was delivered after the last checkpoint was saved.
    assert!(
        repeats < before.len(),
        "{repeats} repeats of {} events delivered before the kill: the window was read again",
        before.len()
    );
    let done = app.checkpoint("audit_logs").expect("a checkpoint");
    assert!(done["watermark"].is_i64(), "{done}");
    assert!(done.get("slices").is_none(), "no slice left: {done}");
}
