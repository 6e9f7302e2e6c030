//! Stop signals on the real binary: a second SIGTERM during a drain stops it at once, with
//! the checkpoints still behind everything undelivered.

use std::time::{Duration, Instant};

use openai_audit_simulator::ReceiverScript;

use crate::helpers::binary::{describe, send_signal, text};
use crate::helpers::{TestApp, wait_until};

#[tokio::test(flavor = "multi_thread")]
async fn a_second_sigterm_during_the_drain_stops_at_once_without_moving_checkpoints() {
    let app = TestApp::builder().history(100).start().await;
    // The sink never accepts, so the drain would wait the whole (long) shutdown timeout.
    app.receiver().set_response(ReceiverScript::Next {
        status: 503,
        retry_after_secs: None,
        times: 1_000_000,
    });
    let run = app.start_binary(
        &["run"],
        &[
            ("OAI_INGEST__SHUTDOWN__TIMEOUT", "120s"),
            ("OAI_INGEST__LOG__FORMAT", "json"),
        ],
    );
    wait_until(Duration::from_secs(30), "the sink has been tried", || {
        !app.receiver().requests().is_empty()
    })
    .await;
    send_signal(run.pid(), "-TERM");
    wait_until(Duration::from_secs(30), "the first stop is logged", || {
        run.stderr_so_far().contains("stop requested")
    })
    .await;
    let second = Instant::now();
    send_signal(run.pid(), "-TERM");
    let out = run.finish(Duration::from_secs(20)).await;
    assert!(
        second.elapsed() < Duration::from_secs(20),
        "stopped long before the 120 s shutdown timeout: {}",
        describe(&out)
    );
    let stderr = text(&out.stderr);
    assert!(stderr.contains("second stop request"), "{stderr}");
    assert!(out.status.code().is_some(), "it exited, not killed: {}", describe(&out));
    assert!(app.receiver().ids().is_empty(), "nothing was delivered");
    for stream in ["audit_logs", "audit_logs_tenant"] {
        assert!(
            !app.checkpoint_path(stream).exists(),
            "no checkpoint for {stream}: nothing was acknowledged"
        );
    }
}
