//! A wrong clock: a checkpoint saved while the host's clock ran fast (its position in the
//! future) is reported and read again from a safe point, never taken as "done up to there".

use chrono::SecondsFormat;
use openai_audit_ingest::streams::Mode;
use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test(flavor = "multi_thread")]
async fn an_audit_log_watermark_in_the_future_is_read_again_from_the_lookback() {
    let app = TestApp::builder()
        .history(60)
        .env("OAI_INGEST__AUDIT_LOGS__TENANT_EVENTS", "false")
        .start()
        .await;
    let tomorrow = chrono::Utc::now().timestamp() + 86_400;
    app.write_checkpoint(
        "audit_logs",
        json!({"watermark": tomorrow, "window": null, "recent": []}),
    );
    let outcome = app.run_once().await;
    assert!(outcome.success(Mode::Once), "{outcome:?}");
    let (got, _) = app.received();
    let expected = app.normal_pass_ids();
    assert!(!expected.is_empty());
    assert_eq!(
        got, expected,
        "nothing between now and the future watermark was skipped"
    );
    let saved = app.checkpoint("audit_logs").expect("saved");
    let watermark = saved["watermark"].as_i64().expect("a watermark");
    assert!(
        watermark < tomorrow - 3_600,
        "the new watermark is the real time: {saved}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_compliance_cursor_in_the_future_is_listed_again_from_the_lookback() {
    let app = TestApp::builder().only_filed_compliance("AUTH_LOG", 15).start().await;
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339_opts(SecondsFormat::Secs, true);
    app.write_checkpoint(
        "compliance:AUTH_LOG",
        json!({"after": tomorrow, "file": null, "recent": [], "recent_files": []}),
    );
    let outcome = app.run_once().await;
    assert!(outcome.success(Mode::Once), "{outcome:?}");
    assert_eq!(app.received().0, app.expected_compliance(&["AUTH_LOG"]));
}
