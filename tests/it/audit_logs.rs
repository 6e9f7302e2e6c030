//! The audit-log streams against the simulator: paging, resuming, overlap, ties, late
//! events, the tenant pass, and cursors that do not advance.

use openai_audit_ingest::streams::Mode;
use openai_audit_simulator::{Family, Fault, is_tenant_scoped};
use serde_json::json;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{TestApp, poll_until};

#[tokio::test(flavor = "multi_thread")]
async fn a_window_spanning_many_pages_is_delivered_once_in_full() {
    let app = TestApp::builder()
        .history(250)
        .env("OAI_INGEST__AUDIT_LOGS__PAGE_SIZE", "7")
        .start()
        .await;
    let outcome = app.run_once().await;
    assert!(outcome.success(Mode::Once), "{outcome:?}");
    let expected = app.expected_audit_ids();
    assert!(
        expected.len() > 100,
        "the history holds many audit events: {}",
        expected.len()
    );
    let (got, dups) = app.received();
    assert_eq!(got, expected);
    assert_eq!(dups, 0);
    assert!(
        app.faults().requests(Family::AuditLogs) as usize > expected.len() / 7,
        "it really paged"
    );
    let saved = app.checkpoint("audit_logs").expect("checkpoint saved");
    assert!(saved["watermark"].is_i64(), "{saved}");
    assert!(saved["window"].is_null(), "the window is complete: {saved}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stop_between_pages_resumes_mid_window_without_loss() {
    let app = TestApp::builder()
        .history(200)
        .envs(&[
            ("OAI_INGEST__AUDIT_LOGS__PAGE_SIZE", "10"),
            ("OAI_INGEST__AUDIT_LOGS__TENANT_EVENTS", "false"),
            ("OAI_INGEST__SINK__MAX_BATCH_EVENTS", "10"),
        ])
        .start()
        .await;
    // Slow pages so the upstream can be broken part-way through the window.
    app.faults()
        .set_always(Family::AuditLogs, Some(Fault::LatencyMs { ms: 50 }));
    let running = app.spawn().await;
    poll_until(|| app.faults().requests(Family::AuditLogs) >= 5).await;
    app.faults()
        .set_always(Family::AuditLogs, Some(Fault::Status { status: 500 }));
    let served_before_outage = app.faults().requests(Family::AuditLogs);
    poll_until(|| app.receiver().ids().len() as u64 >= (served_before_outage - 1) * 10).await;
    running.stop().await;

    let saved = app.checkpoint("audit_logs").expect("a mid-window checkpoint");
    assert!(saved["watermark"].is_null(), "the window is not complete yet: {saved}");
    assert!(
        saved["window"]["after"].is_string(),
        "the in-window cursor is saved: {saved}"
    );
    let first_run = app.receiver().ids().len();

    app.faults().clear();
    let outcome = app.run_once().await;
    assert!(outcome.all_delivered, "{outcome:?}");
    let expected = app.normal_pass_ids();
    let (got, dups) = app.received();
    assert_eq!(got, expected, "every event arrives across the stop");
    assert_eq!(dups, 0, "acknowledged pages are not fetched again");
    assert!(first_run < expected.len(), "the first run really stopped mid-window");
}

#[tokio::test(flavor = "multi_thread")]
async fn repeats_from_the_overlap_are_dropped_by_id() {
    let app = TestApp::builder().history(20).start().await;
    for _ in 0..10 {
        app.org().add_audit_event("api_key.created", None);
    }
    app.run_once().await;
    let first = app.received().0.len();
    for _ in 0..3 {
        app.org().add_audit_event("project.created", None);
    }
    let (_, metrics) = app.run_once_with_metrics().await;
    let (got, dups) = app.received();
    assert_eq!(dups, 0, "the overlap's repeats must not be delivered again");
    assert_eq!(got.len(), first + 3);
    assert_eq!(got, app.expected_audit_ids());
    // A page whose repeats were dropped still gives each event its own record as `raw`.
    for event in app
        .receiver()
        .events()
        .iter()
        .filter(|e| e["source"] == "openai.audit_log")
    {
        let (id, raw_id) = (
            event["id"].as_str().unwrap_or(""),
            event["raw"]["id"].as_str().unwrap_or("-"),
        );
        assert!(
            id.ends_with(&format!(":{raw_id}")),
            "event {id} carries record {raw_id} as raw"
        );
    }
    let text = metrics.render();
    assert!(
        text.lines()
            .any(|l| l.starts_with("oai_ingest_duplicates_dropped_total{stream=\"audit_logs\"}")),
        "the second run re-read the overlap and dropped repeats:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn many_events_on_one_second_across_page_boundaries_arrive_once() {
    let app = TestApp::builder()
        .history(5)
        .env("OAI_INGEST__AUDIT_LOGS__PAGE_SIZE", "10")
        .start()
        .await;
    let second = chrono::Utc::now().timestamp() - 30;
    for _ in 0..45 {
        app.org().add_late_event("login.succeeded", second);
    }
    app.run_once().await;
    let (got, dups) = app.received();
    assert_eq!(got, app.expected_audit_ids());
    assert_eq!(dups, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn late_events_inside_the_overlap_are_still_delivered() {
    let app = TestApp::builder().history(10).start().await;
    app.run_once().await;
    let late = app
        .org()
        .add_late_event("api_key.deleted", chrono::Utc::now().timestamp() - 120);
    app.run_once().await;
    let (got, dups) = app.received();
    assert!(got.iter().any(|id| id.ends_with(&late)), "the late event arrives");
    assert_eq!(got, app.expected_audit_ids());
    assert_eq!(dups, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_tenant_pass_delivers_tenant_scoped_events_in_its_own_stream() {
    let app = TestApp::builder().history(100).start().await;
    app.run_once().await;
    let tenant_types: Vec<String> = app
        .receiver()
        .events()
        .iter()
        .filter_map(|e| e["type"].as_str().map(str::to_string))
        .filter(|t| is_tenant_scoped(t))
        .collect();
    assert!(!tenant_types.is_empty(), "tenant-scoped events arrive");
    assert!(app.checkpoint("audit_logs_tenant").is_some());
    assert_eq!(app.received().0, app.expected_audit_ids());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_tenant_pass_is_parked_and_the_normal_pass_keeps_running() {
    let api = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/organization/audit_logs"))
        .and(query_param("tenant_only", "true"))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({"error": {
            "message": "Tenant-scoped audit logs are not available for this organization.",
            "type": "invalid_request_error", "param": null, "code": null}})))
        .mount(&api)
        .await;
    let now = chrono::Utc::now().timestamp();
    Mock::given(method("GET"))
        .and(path("/v1/organization/audit_logs"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "list",
            "data": [{"object": "organization.audit_log", "id": "audit_log-only", "type": "login.succeeded", "effective_at": now - 5}],
            "first_id": "audit_log-only", "last_id": "audit_log-only", "has_more": false})))
        .mount(&api)
        .await;
    let app = TestApp::builder().history(0).upstream(&api.uri()).start().await;
    let outcome = app.run_once().await;
    assert!(
        outcome.streams_ok,
        "a refused tenant pass is not a failed run: {outcome:?}"
    );
    let ids = app.receiver().ids();
    assert_eq!(ids, vec![app.audit_event_id("audit_log-only")]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cursor_that_does_not_advance_is_an_error_not_a_spin() {
    let app = TestApp::builder()
        .history(60)
        .envs(&[
            ("OAI_INGEST__AUDIT_LOGS__PAGE_SIZE", "10"),
            ("OAI_INGEST__AUDIT_LOGS__TENANT_EVENTS", "false"),
        ])
        .start()
        .await;
    // The first page is fine, then the same page (same last_id) comes back forever.
    app.faults().inject(Family::AuditLogs, Fault::LatencyMs { ms: 0 }, 1);
    app.faults().set_always(Family::AuditLogs, Some(Fault::RepeatPage));
    let outcome = app.run_once().await;
    assert!(!outcome.streams_ok, "the stuck cursor fails the cycle");
    let requests = app.faults().requests(Family::AuditLogs);
    assert!(
        (2..10).contains(&requests),
        "no spinning on the repeated page: {requests} requests"
    );
    assert!(
        app.checkpoint("audit_logs")
            .and_then(|c| c["watermark"].as_i64())
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn raw_is_the_record_exactly_as_the_api_sent_it() {
    let api = MockServer::start().await;
    let now = chrono::Utc::now().timestamp();
    // Key order, spacing and number spelling no serializer here would produce.
    let record = format!(
        r#"{{"type" : "login.succeeded", "id": "audit_log-verbatim", "effective_at": {}, "object": "organization.audit_log", "login.succeeded": {{"weight": 1.50}}}}"#,
        now - 5
    );
    let page = format!(
        r#"{{"object": "list", "data": [ {record} ], "first_id": "audit_log-verbatim", "last_id": "audit_log-verbatim", "has_more": false}}"#
    );
    Mock::given(method("GET"))
        .and(path("/v1/organization/audit_logs"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(page, "application/json"))
        .mount(&api)
        .await;
    let app = TestApp::builder()
        .history(0)
        .upstream(&api.uri())
        .env("OAI_INGEST__AUDIT_LOGS__TENANT_EVENTS", "false")
        .start()
        .await;
    let outcome = app.run_once().await;
    assert!(outcome.success(Mode::Once), "{outcome:?}");
    let bodies: Vec<String> = app
        .receiver()
        .requests()
        .iter()
        .filter_map(|r| r.body.as_ref().map(|b| String::from_utf8_lossy(b).into_owned()))
        .collect();
    assert!(
        bodies.iter().any(|b| b.contains(&format!(r#""raw":{record}"#))),
        "the record travels byte for byte: {bodies:?}"
    );
}
