//! The audit-log streams against the simulator: paging, resuming, overlap, ties, late
//! events, the tenant pass, and cursors that do not advance.

use std::time::Duration;

use openai_audit_ingest::metrics::Metrics;
use openai_audit_simulator::{Family, Fault};
use serde_json::json;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{self, checkpoint, expected_audit_ids, poll_until, quiet_sim, received, settings};

#[tokio::test(flavor = "multi_thread")]
async fn a_window_spanning_many_pages_is_delivered_once_in_full() {
    let sim = quiet_sim(250).await;
    let state = tempfile::tempdir().expect("tempdir");
    let s = settings(&sim, state.path(), &[("OAI_INGEST__AUDIT_LOGS__PAGE_SIZE", "7")]);
    let outcome = helpers::run_once(&s).await;
    assert!(outcome.success(openai_audit_ingest::streams::Mode::Once), "{outcome:?}");
    let expected = expected_audit_ids(&sim);
    assert!(
        expected.len() > 100,
        "the history holds many audit events: {}",
        expected.len()
    );
    let (got, dups) = received(&sim);
    assert_eq!(got, expected);
    assert_eq!(dups, 0);
    assert!(
        sim.faults().requests(Family::AuditLogs) as usize > expected.len() / 7,
        "it really paged"
    );
    let saved = checkpoint(state.path(), "audit_logs").expect("checkpoint saved");
    assert!(saved["watermark"].is_i64(), "{saved}");
    assert!(saved["window"].is_null(), "the window is complete: {saved}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stop_between_pages_resumes_mid_window_without_loss() {
    let sim = quiet_sim(200).await;
    let state = tempfile::tempdir().expect("tempdir");
    let s = settings(
        &sim,
        state.path(),
        &[
            ("OAI_INGEST__AUDIT_LOGS__PAGE_SIZE", "10"),
            ("OAI_INGEST__AUDIT_LOGS__TENANT_EVENTS", "false"),
            ("OAI_INGEST__SINK__MAX_BATCH_EVENTS", "10"),
        ],
    );
    // Slow pages so the upstream can be broken part-way through the window.
    sim.faults()
        .set_always(Family::AuditLogs, Some(Fault::LatencyMs { ms: 50 }));
    let running = helpers::spawn_run(&s).await;
    poll_until(|| sim.faults().requests(Family::AuditLogs) >= 5).await;
    sim.faults()
        .set_always(Family::AuditLogs, Some(Fault::Status { status: 500 }));
    let served_before_outage = sim.faults().requests(Family::AuditLogs);
    poll_until(|| sim.receiver().ids().len() as u64 >= (served_before_outage - 1) * 10).await;
    running.stop().await;

    let saved = checkpoint(state.path(), "audit_logs").expect("a mid-window checkpoint");
    assert!(saved["watermark"].is_null(), "the window is not complete yet: {saved}");
    assert!(
        saved["window"]["after"].is_string(),
        "the in-window cursor is saved: {saved}"
    );
    let first_run = sim.receiver().ids().len();

    sim.faults().clear();
    let outcome = helpers::run_once(&s).await;
    assert!(outcome.all_delivered, "{outcome:?}");
    let expected = helpers::normal_pass_ids(&sim);
    let (got, dups) = received(&sim);
    assert_eq!(got, expected, "every event arrives across the stop");
    assert_eq!(dups, 0, "acknowledged pages are not fetched again");
    assert!(first_run < expected.len(), "the first run really stopped mid-window");
}

#[tokio::test(flavor = "multi_thread")]
async fn repeats_from_the_overlap_are_dropped_by_id() {
    let sim = quiet_sim(20).await;
    for _ in 0..10 {
        sim.org().add_audit_event("api_key.created", None);
    }
    let state = tempfile::tempdir().expect("tempdir");
    let s = settings(&sim, state.path(), &[]);
    helpers::run_once(&s).await;
    let first = received(&sim).0.len();
    for _ in 0..3 {
        sim.org().add_audit_event("project.created", None);
    }
    let metrics = Metrics::new();
    let app = openai_audit_ingest::app::App::build(&s, openai_audit_ingest::streams::Mode::Once, metrics.clone())
        .await
        .expect("app");
    app.run_until_stopped(Some(Duration::from_secs(30))).await;
    let (got, dups) = received(&sim);
    assert_eq!(dups, 0, "the overlap's repeats must not be delivered again");
    assert_eq!(got.len(), first + 3);
    assert_eq!(got, expected_audit_ids(&sim));
    let text = metrics.render();
    assert!(
        text.lines()
            .any(|l| l.starts_with("oai_ingest_duplicates_dropped_total{stream=\"audit_logs\"}")),
        "the second run re-read the overlap and dropped repeats:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn many_events_on_one_second_across_page_boundaries_arrive_once() {
    let sim = quiet_sim(5).await;
    let second = chrono::Utc::now().timestamp() - 30;
    for _ in 0..45 {
        sim.org().add_late_event("login.succeeded", second);
    }
    let state = tempfile::tempdir().expect("tempdir");
    let s = settings(&sim, state.path(), &[("OAI_INGEST__AUDIT_LOGS__PAGE_SIZE", "10")]);
    helpers::run_once(&s).await;
    let (got, dups) = received(&sim);
    assert_eq!(got, expected_audit_ids(&sim));
    assert_eq!(dups, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn late_events_inside_the_overlap_are_still_delivered() {
    let sim = quiet_sim(10).await;
    let state = tempfile::tempdir().expect("tempdir");
    let s = settings(&sim, state.path(), &[]);
    helpers::run_once(&s).await;
    let late = sim
        .org()
        .add_late_event("api_key.deleted", chrono::Utc::now().timestamp() - 120);
    helpers::run_once(&s).await;
    let (got, dups) = received(&sim);
    assert!(got.iter().any(|id| id.ends_with(&late)), "the late event arrives");
    assert_eq!(got, expected_audit_ids(&sim));
    assert_eq!(dups, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_tenant_pass_delivers_tenant_scoped_events_in_its_own_stream() {
    let sim = quiet_sim(100).await;
    let state = tempfile::tempdir().expect("tempdir");
    let s = settings(&sim, state.path(), &[]);
    helpers::run_once(&s).await;
    let tenant_types: Vec<String> = sim
        .receiver()
        .events()
        .iter()
        .filter_map(|e| e["type"].as_str().map(str::to_string))
        .filter(|t| openai_audit_simulator::is_tenant_scoped(t))
        .collect();
    assert!(!tenant_types.is_empty(), "tenant-scoped events arrive");
    assert!(checkpoint(state.path(), "audit_logs_tenant").is_some());
    assert_eq!(received(&sim).0, expected_audit_ids(&sim));
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
    let sim = quiet_sim(0).await;
    let state = tempfile::tempdir().expect("tempdir");
    let s = settings(&sim, state.path(), &[("OAI_INGEST__OPENAI__BASE_URL", &api.uri())]);
    let outcome = helpers::run_once(&s).await;
    assert!(
        outcome.streams_ok,
        "a refused tenant pass is not a failed run: {outcome:?}"
    );
    let ids = sim.receiver().ids();
    assert_eq!(ids, vec![format!("openai.audit_log:{}:audit_log-only", sim.org_id())]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cursor_that_does_not_advance_is_an_error_not_a_spin() {
    let sim = quiet_sim(60).await;
    let state = tempfile::tempdir().expect("tempdir");
    let s = settings(
        &sim,
        state.path(),
        &[
            ("OAI_INGEST__AUDIT_LOGS__PAGE_SIZE", "10"),
            ("OAI_INGEST__AUDIT_LOGS__TENANT_EVENTS", "false"),
        ],
    );
    // The first page is fine, then the same page (same last_id) comes back forever.
    sim.faults().inject(Family::AuditLogs, Fault::LatencyMs { ms: 0 }, 1);
    sim.faults().set_always(Family::AuditLogs, Some(Fault::RepeatPage));
    let outcome = helpers::run_once(&s).await;
    assert!(!outcome.streams_ok, "the stuck cursor fails the cycle");
    let requests = sim.faults().requests(Family::AuditLogs);
    assert!(
        (2..10).contains(&requests),
        "no spinning on the repeated page: {requests} requests"
    );
    assert!(
        checkpoint(state.path(), "audit_logs")
            .and_then(|c| c["watermark"].as_i64())
            .is_none()
    );
}
