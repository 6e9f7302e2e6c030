//! An upstream that misbehaves — slow bodies, a file briefly gone, redirects, cursors that
//! cycle, records that cannot be read, huge pages, pages that cannot be followed — never makes
//! the daemon lose, repeat without end, or report without OpenAI's request id.

use std::collections::HashSet;
use std::time::Duration;

use openai_audit_ingest::streams::Mode;
use openai_audit_simulator::{Family, Fault};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::helpers::binary::{describe, text};
use crate::helpers::{TestApp, poll_until, wait_until};

const AUDIT_LOGS: &str = "/v1/organization/audit_logs";

/// An audit-log record of `event_type`, `age` seconds old.
fn record(id: &str, event_type: &str, age: i64) -> Value {
    json!({"object": "organization.audit_log", "id": id, "type": event_type,
           "effective_at": chrono::Utc::now().timestamp() - age})
}

/// An audit-log page holding `data`.
fn page(data: Vec<Value>, last_id: Option<&str>, has_more: bool) -> Value {
    json!({"object": "list", "data": data, "first_id": null, "last_id": last_id, "has_more": has_more})
}

/// A daemon reading only the normal audit-log pass from `api`.
async fn against(api: &MockServer) -> TestApp {
    TestApp::builder()
        .history(0)
        .upstream(&api.uri())
        .env("OAI_INGEST__AUDIT_LOGS__TENANT_EVENTS", "false")
        .start()
        .await
}

/// Every AUTH_LOG file trickles out in about `tenths` tenths of a second (the largest one).
fn trickle(app: &TestApp, tenths: usize) {
    let size = app.org().compliance_largest_file_bytes("AUTH_LOG");
    app.faults().set_always(
        Family::SignedUrl,
        Some(Fault::SlowBody {
            chunk_bytes: size.div_ceil(tenths),
            every_ms: 100,
        }),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_compliance_file_slower_than_the_request_timeout_still_arrives_in_full() {
    let app = TestApp::builder()
        .only_filed_compliance("AUTH_LOG", 30)
        .env("OAI_INGEST__OPENAI__TIMEOUT", "1s")
        .start()
        .await;
    // The file trickles out over about 2.5 s: every read is quick, the whole transfer takes
    // well over the 1 s timeout, as a large file on a slow link would.
    trickle(&app, 25);
    let outcome = app.run_once().await;
    assert!(outcome.success(Mode::Once), "{outcome:?}");
    let (got, dups) = app.received();
    assert_eq!(got, app.expected_compliance(&["AUTH_LOG"]));
    assert_eq!(dups, 0);
    assert_eq!(
        app.faults().served(Family::SignedUrl),
        app.faults().requests(Family::ComplianceDownload),
        "every file was downloaded once, slowly, without a retry"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_download_over_its_budget_is_reported_as_a_timeout_naming_the_setting() {
    let app = TestApp::builder()
        .only_filed_compliance("AUTH_LOG", 30)
        .env("OAI_INGEST__COMPLIANCE__DOWNLOAD_TIMEOUT", "1s")
        .start()
        .await;
    trickle(&app, 40);
    let out = app.run_binary(&["once", "--deadline", "6s"], &[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("timeout") && stderr.contains("compliance.download_timeout"),
        "the log says it was a timeout and which setting to raise:\n{stderr}"
    );
    assert_ne!(
        app.received().0,
        app.expected_compliance(&["AUTH_LOG"]),
        "the largest file did not make it"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_compliance_file_that_answers_404_once_is_fetched_again_not_skipped() {
    let app = TestApp::builder().only_filed_compliance("AUTH_LOG", 20).start().await;
    app.faults()
        .inject(Family::ComplianceDownload, Fault::Status { status: 404 }, 1);
    let running = app.spawn().await;
    let expected = app.expected_compliance(&["AUTH_LOG"]);
    poll_until(|| app.received().0 == expected).await;
    running.stop().await;
    assert_eq!(app.faults().served(Family::ComplianceDownload), 1, "the 404 was met");
    assert_eq!(app.received().1, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_compliance_file_missing_past_the_grace_period_is_given_up_with_an_error_naming_it() {
    let app = TestApp::builder()
        .only_filed_compliance("AUTH_LOG", 5)
        .env("OAI_INGEST__COMPLIANCE__MISSING_FILE_GRACE", "2s")
        .start()
        .await;
    app.faults()
        .set_always(Family::ComplianceDownload, Some(Fault::Status { status: 404 }));
    let run = app.start_binary(&["run"], &[("OAI_INGEST__LOG__FORMAT", "json")]);
    wait_until(Duration::from_secs(30), "the file is given up", || {
        app.checkpoint("compliance:AUTH_LOG")
            .is_some_and(|c| c["recent_files"].as_array().is_some_and(|f| !f.is_empty()))
    })
    .await;
    crate::helpers::binary::send_signal(run.pid(), "-TERM");
    let out = run.finish(Duration::from_secs(30)).await;
    let stderr = text(&out.stderr);
    let lines: Vec<Value> = stderr.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let waits = lines
        .iter()
        .filter(|l| l["level"] == "WARN" && l["error.kind"] == "waiting")
        .count();
    assert!(waits >= 2, "the 404 was retried with backoff first:\n{stderr}");
    let lost = lines
        .iter()
        .find(|l| l["level"] == "ERROR" && l["file_id"].is_string() && l["events_until"].is_string())
        .unwrap_or_else(|| panic!("an ERROR names the lost file and its time span:\n{stderr}"));
    assert!(lost["events_after"].is_string(), "{lost}");
    assert!(lost["message"].as_str().is_some_and(|m| m.contains("lost")), "{lost}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_from_the_admin_api_is_an_error_even_when_its_body_reads_as_a_page() {
    let api = MockServer::start().await;
    let body = page(vec![record("audit_log-redirected", "login.succeeded", 5)], None, false);
    Mock::given(method("GET"))
        .and(path(AUDIT_LOGS))
        .respond_with(
            ResponseTemplate::new(302)
                .insert_header("location", "https://elsewhere.example/v1/organization/audit_logs")
                .set_body_json(body),
        )
        .mount(&api)
        .await;
    let app = against(&api).await;
    let outcome = app.run_once().await;
    assert!(!outcome.streams_ok, "a redirect is not an answer: {outcome:?}");
    assert!(app.receiver().ids().is_empty(), "the redirect's body was not shipped");
    assert!(
        app.checkpoint("audit_logs")
            .and_then(|c| c["watermark"].as_i64())
            .is_none(),
        "the watermark did not move"
    );
}

/// Pages that repeat the same two sets of records forever, each time under a new cursor.
struct CyclingPages;

impl Respond for CyclingPages {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let n: u64 = request
            .url
            .query_pairs()
            .find(|(k, _)| k == "after")
            .and_then(|(_, v)| v.trim_start_matches("cursor-").parse().ok())
            .unwrap_or(0);
        let ids = if n.is_multiple_of(2) {
            ["audit_log-a1", "audit_log-a2"]
        } else {
            ["audit_log-b1", "audit_log-b2"]
        };
        let data = ids.iter().map(|id| record(id, "login.succeeded", 30)).collect();
        let next = format!("cursor-{}", n + 1);
        ResponseTemplate::new(200).set_body_json(page(data, Some(&next), true))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn records_that_come_back_under_new_cursors_stop_the_pass_instead_of_looping() {
    let api = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(AUDIT_LOGS))
        .respond_with(CyclingPages)
        .mount(&api)
        .await;
    let app = against(&api).await;
    let outcome = app.run_once().await;
    assert!(!outcome.streams_ok, "the cycle fails the pass: {outcome:?}");
    let requests = api.received_requests().await.unwrap_or_default().len();
    assert!(requests < 10, "no endless paging: {requests} requests");
    let ids = app.receiver().ids();
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(ids.len(), unique.len(), "nothing was shipped twice: {ids:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cursor_that_cycles_a_to_b_to_a_stops_the_pass() {
    let api = MockServer::start().await;
    let pages = [
        (None, "audit_log-1", "A"),
        (Some("A"), "audit_log-2", "B"),
        (Some("B"), "audit_log-3", "A"),
    ];
    for (after, id, next) in pages {
        let mut mock = Mock::given(method("GET")).and(path(AUDIT_LOGS));
        mock = match after {
            Some(a) => mock.and(wiremock::matchers::query_param("after", a)),
            None => mock.and(wiremock::matchers::query_param_is_missing("after")),
        };
        mock.respond_with(ResponseTemplate::new(200).set_body_json(page(
            vec![record(id, "login.succeeded", 30)],
            Some(next),
            true,
        )))
        .mount(&api)
        .await;
    }
    let app = against(&api).await;
    let outcome = app.run_once().await;
    assert!(!outcome.streams_ok, "{outcome:?}");
    let requests = api.received_requests().await.unwrap_or_default().len();
    assert!(requests < 10, "no endless paging: {requests} requests");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_that_cannot_be_read_is_shipped_once_however_often_the_overlap_is_read() {
    let api = MockServer::start().await;
    let broken = json!({"object": "organization.audit_log", "id": 7, "type": "login.succeeded",
                        "effective_at": chrono::Utc::now().timestamp() - 20});
    let body = page(
        vec![broken, record("audit_log-fine", "login.succeeded", 20)],
        None,
        false,
    );
    Mock::given(method("GET"))
        .and(path(AUDIT_LOGS))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .mount(&api)
        .await;
    let app = against(&api).await;
    for _ in 0..4 {
        let outcome = app.run_once().await;
        assert!(outcome.success(Mode::Once), "{outcome:?}");
    }
    let ids = app.receiver().ids();
    assert_eq!(ids.len(), 2, "each record once across four re-reads: {ids:?}");
    assert!(ids.iter().any(|id| id.contains(":sha256-")), "{ids:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_page_larger_than_the_response_cap_fails_the_request_naming_the_setting() {
    let api = MockServer::start().await;
    let mut huge = record("audit_log-huge", "login.succeeded", 5);
    huge["padding"] = json!("x".repeat(2 * 1024 * 1024));
    Mock::given(method("GET"))
        .and(path(AUDIT_LOGS))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(vec![huge], None, false)))
        .mount(&api)
        .await;
    let app = against(&api).await;
    let capped = [
        ("OAI_INGEST__OPENAI__MAX_RESPONSE_BYTES", "1MiB"),
        ("OAI_INGEST__LOG__FORMAT", "json"),
    ];
    let out = app.run_binary(&["once", "--deadline", "5s"], &capped).await;
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = text(&out.stderr);
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("\"error.kind\":\"too_large\"") && l.contains("openai.max_response_bytes")),
        "the failure names the setting:\n{stderr}"
    );
    assert!(app.receiver().ids().is_empty());
    // The default cap lets the same page through.
    let out = app.run_binary(&["once"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(app.receiver().ids().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_page_that_cannot_be_followed_is_logged_with_openais_request_id() {
    let api = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(AUDIT_LOGS))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("x-request-id", "req_7d1c0ffee")
                .set_body_json(page(vec![record("audit_log-1", "login.succeeded", 5)], None, true)),
        )
        .mount(&api)
        .await;
    let app = against(&api).await;
    let out = app.run_binary(&["once", "--deadline", "5s"], &[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = text(&out.stderr);
    let line = stderr
        .lines()
        .find(|l| l.contains("has_more but gives no cursor"))
        .unwrap_or_else(|| panic!("the paging error is logged:\n{stderr}"));
    assert!(line.contains("req_7d1c0ffee"), "with the request id: {line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn invented_event_types_from_upstream_stay_within_the_metric_label_cap() {
    let api = MockServer::start().await;
    let data = (0..150)
        .map(|n| record(&format!("audit_log-{n}"), &format!("invented.type_{n}"), 5))
        .collect();
    Mock::given(method("GET"))
        .and(path(AUDIT_LOGS))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(data, None, false)))
        .mount(&api)
        .await;
    let app = against(&api).await;
    let (outcome, metrics) = app.run_once_with_metrics().await;
    assert!(outcome.success(Mode::Once), "{outcome:?}");
    let ids = app.receiver().ids();
    let upstream = ids.iter().filter(|id| !id.starts_with("guardrails:")).count();
    assert_eq!(upstream, 150, "every event still travels");
    assert_eq!(
        ids.len() - upstream,
        150,
        "and each new type is one unknown_event_type finding"
    );
    let text = metrics.render();
    let series: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("oai_ingest_unknown_event_types_total{"))
        .collect();
    assert!(series.len() <= 101, "{} series:\n{}", series.len(), series.join("\n"));
    assert!(
        series.iter().any(|l| l.contains("type=\"other\"")),
        "{}",
        series.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_answer_that_stalls_is_reported_as_a_timeout_naming_openai_timeout() {
    let api = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(AUDIT_LOGS))
        .respond_with(
            ResponseTemplate::new(200)
                .set_delay(Duration::from_secs(3))
                .set_body_json(page(vec![], None, false)),
        )
        .mount(&api)
        .await;
    let app = against(&api).await;
    let out = app
        .run_binary(&["once", "--deadline", "5s"], &[("OAI_INGEST__OPENAI__TIMEOUT", "1s")])
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = text(&out.stderr);
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("timeout") && l.contains("openai.timeout")),
        "the stall is called a timeout and the setting named:\n{stderr}"
    );
}
