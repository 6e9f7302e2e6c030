//! The daemon as an operator runs it beside Vector or the OTel Collector (issue 11): a
//! visible backfill, health that means something, signals, and configuration hygiene — all
//! on the real binary.

use std::process::Stdio;
use std::time::{Duration, Instant};

use openai_audit_simulator::{Family, Fault, ReceiverScript};
use serde_json::Value;

use crate::helpers::binary::{describe, free_listen_address, get, send_signal, text, wait_for_status};
use crate::helpers::{SINK_TOKEN, TestApp, wait_until};

/// The JSON log lines of `stderr`.
fn json_lines(stderr: &str) -> Vec<Value> {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backfill_prints_progress_lines_a_caught_up_line_and_the_start_up_line() {
    let app = TestApp::builder().history(300).start().await;
    let out = app
        .run_binary(
            &["once"],
            &[
                ("OAI_INGEST__LOG__FORMAT", "json"),
                ("OAI_INGEST__LOG__PROGRESS_INTERVAL", "1ms"),
                ("OAI_INGEST__AUDIT_LOGS__PAGE_SIZE", "20"),
                ("OAI_INGEST__AUDIT_LOGS__TENANT_EVENTS", "false"),
            ],
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let lines = json_lines(&text(&out.stderr));
    let progress: Vec<&Value> = lines.iter().filter(|l| l["message"] == "backfill progress").collect();
    assert!(progress.len() >= 2, "several progress lines:\n{}", text(&out.stderr));
    for line in &progress {
        assert_eq!(line["stream"], "audit_logs", "{line}");
        for field in [
            "events",
            "percent",
            "events_per_s",
            "covered_start",
            "covered_end",
            "window_start",
            "window_end",
        ] {
            assert!(!line[field].is_null(), "{field} in {line}");
        }
    }
    let last = progress.last().expect("a progress line");
    assert!(
        last["percent"].as_f64().is_some_and(|p| p > 0.0 && p <= 100.0),
        "{last}"
    );
    let done = lines
        .iter()
        .find(|l| l["message"] == "backfill complete; the stream is caught up")
        .unwrap_or_else(|| panic!("a caught-up line:\n{}", text(&out.stderr)));
    assert_eq!(done["stream"], "audit_logs");
    let cycle = lines
        .iter()
        .find(|l| l["message"] == "stream cycle complete" && l["stream"] == "audit_logs")
        .expect("the cycle's line");
    assert!(done["events"].as_u64().is_some_and(|n| n > 0), "{done}");
    assert_eq!(
        done["events"], cycle["events"],
        "the backfill counted every event of the window"
    );

    let start = lines
        .iter()
        .find(|l| l["message"] == "openai-audit-ingest started")
        .unwrap_or_else(|| panic!("a start-up line:\n{}", text(&out.stderr)));
    assert_eq!(start["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(start["streams"], "audit_logs");
    assert_eq!(start["sink_protocol"], "ndjson");
    assert_eq!(start["sink_host"], "127.0.0.1");
    assert_eq!(start["org_id"], app.sim().org_id());
    // One convention: no line carries a Rust Debug rendering.
    for line in &lines {
        let text = line.to_string();
        assert!(!text.contains("Some(") && !text.contains("\"[]\""), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_turns_503_while_the_sink_answers_401_or_404_and_200_again_after() {
    let app = TestApp::builder().history(20).start().await;
    let listen = free_listen_address();
    let run = app.start_binary(
        &["run"],
        &[
            ("OAI_INGEST__SERVER__LISTEN", &listen),
            ("OAI_INGEST__LOG__FORMAT", "json"),
        ],
    );
    let expected = app.expected_audit_ids();
    wait_until(Duration::from_secs(60), "the history is delivered", || {
        app.received().0.is_superset(&expected)
    })
    .await;
    wait_for_status(&listen, "/readyz", 200, Duration::from_secs(30)).await;

    for (status, reason) in [(401, "auth"), (404, "config")] {
        app.receiver().set_response(ReceiverScript::Next {
            status,
            retry_after_secs: None,
            times: 1_000_000,
        });
        app.org().add_audit_event("login.failed", None);
        // One pause interval is retry.max_backoff (200 ms here): well within 20 s.
        let body = wait_for_status(&listen, "/readyz", 503, Duration::from_secs(20)).await;
        let json: Value = serde_json::from_str(&body).expect("a JSON body");
        assert_eq!(json["ready"], false, "{json}");
        assert_eq!(json["delivery"]["paused"], reason, "HTTP {status}: {json}");
        assert!(
            json["reasons"][0]
                .as_str()
                .is_some_and(|r| r.contains("delivery paused")),
            "{json}"
        );
        app.receiver().set_response(ReceiverScript::Clear);
        wait_for_status(&listen, "/readyz", 200, Duration::from_secs(20)).await;
    }
    let (status, alive) = get(&listen, "/healthz").await.expect("/healthz answers");
    assert_eq!(status, 200, "{alive}");
    send_signal(run.pid(), "-TERM");
    let out = run.finish(Duration::from_secs(30)).await;
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_is_503_when_every_stream_is_paused_and_names_them() {
    let app = TestApp::builder().history(5).start().await;
    let listen = free_listen_address();
    let run = app.start_binary(
        &["run"],
        &[
            ("OAI_INGEST__SERVER__LISTEN", &listen),
            ("OPENAI_ADMIN_KEY", "sk-admin-revoked-0000"),
        ],
    );
    let body = wait_for_status(&listen, "/readyz", 503, Duration::from_secs(30)).await;
    let json: Value = serde_json::from_str(&body).expect("a JSON body");
    assert_eq!(json["streams"]["audit_logs"]["paused"], "unauthorized", "{json}");
    assert_eq!(json["streams"]["audit_logs_tenant"]["paused"], "unauthorized", "{json}");
    assert!(
        json["reasons"][0]
            .as_str()
            .is_some_and(|r| r.contains("every stream is paused")),
        "{json}"
    );
    let (_, metrics) = get(&listen, "/metrics").await.expect("/metrics answers");
    assert!(
        metrics.contains("oai_ingest_stream_paused{stream=\"audit_logs\",reason=\"unauthorized\"} 1"),
        "{metrics}"
    );
    drop(run);
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_have_every_series_from_the_start_and_pass_promtool() {
    let app = TestApp::builder().history(30).start().await;
    let listen = free_listen_address();
    let run = app.start_binary(&["run"], &[("OAI_INGEST__SERVER__LISTEN", &listen)]);
    let metrics = wait_for_status(&listen, "/metrics", 200, Duration::from_secs(30)).await;
    for series in [
        "# TYPE oai_ingest_events_dead_lettered_total counter",
        "oai_ingest_build_info{version=\"",
        "oai_ingest_stream_watermark_timestamp_seconds{stream=\"audit_logs\"}",
        "oai_ingest_stream_lag_seconds{stream=\"audit_logs_tenant\"}",
        "oai_ingest_backfill_remaining_seconds{stream=\"audit_logs\"}",
        "oai_ingest_stream_paused{stream=\"audit_logs\",reason=\"refused\"} 0",
        "oai_ingest_sink_paused{reason=\"auth\"} 0",
        "oai_ingest_events_dead_lettered_total{reason=\"rejected_4xx\"} 0",
        "oai_ingest_sink_request_duration_seconds_bucket{le=\"",
        "process_resident_memory_bytes ",
        "process_cpu_seconds_total ",
        "process_open_fds ",
        "process_max_fds ",
        "process_start_time_seconds ",
    ] {
        assert!(metrics.contains(series), "`{series}` in:\n{metrics}");
    }
    assert!(!metrics.contains("# EOF"), "classic text format");
    // `promtool check metrics` when Prometheus is installed (`.ci/run` installs it).
    match std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(mut promtool) => {
            use std::io::Write;
            promtool
                .stdin
                .take()
                .expect("stdin")
                .write_all(metrics.as_bytes())
                .expect("written");
            let out = promtool.wait_with_output().expect("promtool runs");
            assert!(out.status.success(), "promtool check metrics: {}", describe(&out));
        }
        Err(err) => eprintln!("promtool not installed ({err}); `.ci/run` installs it"),
    }
    drop(run);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_with_the_sink_down_exits_zero_within_the_default_shutdown_timeout() {
    let app = TestApp::builder().history(50).start().await;
    app.receiver().set_response(ReceiverScript::Next {
        status: 503,
        retry_after_secs: None,
        times: 1_000_000,
    });
    // The default, not the tests' own value.
    let run = app.start_binary_without(&["run"], &[], &["OAI_INGEST__SHUTDOWN__TIMEOUT"]);
    wait_until(Duration::from_secs(30), "the sink has been tried", || {
        !app.receiver().requests().is_empty()
    })
    .await;
    let asked = Instant::now();
    send_signal(run.pid(), "-TERM");
    let out = run.finish(Duration::from_secs(20)).await;
    let took = asked.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    // Docker stops with SIGKILL 10 s after SIGTERM.
    assert!(took < Duration::from_secs(10), "exited {took:?} after SIGTERM");
    assert!(
        took >= Duration::from_secs(7),
        "it tried to flush for the 8 s default: {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_re_reads_a_rotated_sink_token_file_and_keeps_running() {
    let app = TestApp::builder().history(40).start().await;
    let token_path = app.secret_file("sink-token", "stale-token-1234567\n");
    let run = app.start_binary_without(
        &["run"],
        &[
            ("OAI_INGEST__SINK__AUTH_TOKEN_FILE", &token_path),
            ("OAI_INGEST__LOG__FORMAT", "json"),
        ],
        &["OAI_INGEST__SINK__AUTH_TOKEN"],
    );
    wait_until(Duration::from_secs(30), "the stale token is refused", || {
        app.receiver().requests().iter().any(|r| r.status == 401)
    })
    .await;
    // A SIGHUP before the rotation changes nothing and stops nothing.
    send_signal(run.pid(), "-HUP");
    wait_until(Duration::from_secs(30), "the first reload is logged", || {
        run.stderr_so_far().contains("secret files re-read")
    })
    .await;
    assert!(app.receiver().ids().is_empty());

    app.secret_file("sink-token", &format!("{SINK_TOKEN}\n"));
    send_signal(run.pid(), "-HUP");
    let expected = app.expected_audit_ids();
    wait_until(Duration::from_secs(30), "everything arrives with the new token", || {
        app.received().0.is_superset(&expected)
    })
    .await;
    send_signal(run.pid(), "-TERM");
    let out = run.finish(Duration::from_secs(30)).await;
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let stderr = text(&out.stderr);
    let reloads: Vec<Value> = json_lines(&stderr)
        .into_iter()
        .filter(|l| l["message"] == "secret files re-read")
        .collect();
    assert_eq!(reloads.len(), 2, "{stderr}");
    assert_eq!(reloads[0]["unchanged"], "sink.auth_token", "{stderr}");
    assert_eq!(reloads[1]["changed"], "sink.auth_token", "{stderr}");
    assert!(
        !stderr.contains(SINK_TOKEN) && !stderr.contains("stale-token-1234567"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upstream_401_re_reads_the_admin_key_file_before_giving_up() {
    let app = TestApp::builder().history(30).start().await;
    let key_path = app.secret_file("admin-key", "sk-admin-stale-000000000000");
    let run = app.start_binary_without(
        &["run"],
        &[("OAI_INGEST__OPENAI__ADMIN_KEY_FILE", &key_path)],
        &["OPENAI_ADMIN_KEY"],
    );
    wait_until(Duration::from_secs(30), "the stale key is refused", || {
        run.stderr_so_far().contains("stream cycle failed")
    })
    .await;
    // Rotated on disk, no signal: the next 401 finds the new key.
    app.secret_file("admin-key", app.sim().admin_key());
    let expected = app.expected_audit_ids();
    wait_until(Duration::from_secs(30), "everything arrives with the new key", || {
        app.received().0.is_superset(&expected)
    })
    .await;
    assert!(
        run.stderr_so_far().contains("its file holds a new one"),
        "{}",
        run.stderr_so_far()
    );
    drop(run);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_closed_stderr_does_not_panic() {
    let app = TestApp::builder().history(30).start().await;
    let mut cmd = app.binary(&["once"], &[("OAI_INGEST__LOG__LEVEL", "debug")]);
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("starts");
    // Whatever read the log went away before the first line.
    drop(child.stderr.take());
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "once finishes");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status.code(), Some(0), "not 101 (a panic): {status:?}");
    assert_eq!(app.received().0, app.expected_audit_ids(), "and it did its work");
}

#[tokio::test(flavor = "multi_thread")]
async fn configuration_hygiene_stray_variables_bad_levels_and_url_credentials() {
    let app = TestApp::builder().history(0).start().await;
    let out = app
        .run_binary(&["run"], &[("OAI_INGEST_SINK_URL", "https://ingest.example.com/")])
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("OAI_INGEST_SINK_URL"), "{stderr}");
    assert!(
        stderr.contains("OAI_INGEST__SINK__URL"),
        "the fix is suggested: {stderr}"
    );

    let out = app.run_binary(&["run"], &[("OAI_INGEST__LOG__LEVEL", "verbose")]).await;
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(text(&out.stderr).contains("log.level"), "{}", describe(&out));

    let url = "http://operator:pa55-in-url@127.0.0.1:9/in?token=query-token-98765";
    for command in ["config", "check"] {
        let out = app.run_binary(&[command], &[("OAI_INGEST__SINK__URL", url)]).await;
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(
            out.status.code().is_some_and(|c| c < 2),
            "{command}: {}",
            describe(&out)
        );
        assert!(!all.contains("query-token-98765"), "{command}: {all}");
        assert!(
            !all.contains("pa55-in-url") && !all.contains("operator"),
            "{command}: {all}"
        );
        assert!(all.contains("token=[redacted]"), "{command}: {all}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn check_fails_on_a_wrong_organization_a_forbidden_inventory_and_a_bad_sink_token() {
    let app = TestApp::builder().history(5).inventory().start().await;
    let out = app.run_binary(&["check"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!("the admin key belongs to {}", app.sim().org_id())),
        "{stdout}"
    );
    assert!(
        stdout.lines().any(|l| l.starts_with("ok") && l.contains("inventory")),
        "{stdout}"
    );

    let out = app
        .run_binary(
            &["check"],
            &[("OAI_INGEST__OPENAI__ORGANIZATION_ID", "org-someone-else")],
        )
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        text(&out.stdout)
            .lines()
            .any(|l| l.starts_with("FAIL organization") && l.contains("org-someone-else")),
        "{}",
        describe(&out)
    );

    app.faults()
        .set_always(Family::Inventory, Some(Fault::Status { status: 403 }));
    let out = app.run_binary(&["check"], &[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        text(&out.stdout)
            .lines()
            .any(|l| l.starts_with("FAIL inventory") && l.contains("403")),
        "{}",
        describe(&out)
    );
    app.faults().clear();

    let out = app
        .run_binary(&["check"], &[("OAI_INGEST__SINK__AUTH_TOKEN", "not-the-sink-token")])
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        text(&out.stdout)
            .lines()
            .any(|l| l.starts_with("FAIL sink") && l.contains("credentials were refused")),
        "{}",
        describe(&out)
    );
    assert!(app.receiver().ids().is_empty(), "check wrote nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn health_exits_zero_when_ready_and_one_when_nothing_answers() {
    let app = TestApp::builder().history(5).start().await;
    let listen = free_listen_address();
    let run = app.start_binary(&["run"], &[("OAI_INGEST__SERVER__LISTEN", &listen)]);
    wait_for_status(&listen, "/readyz", 200, Duration::from_secs(30)).await;
    // As the image's HEALTHCHECK runs it: no config file, no keys, only the address.
    let mut cmd = crate::helpers::binary::bare(&["health"]);
    cmd.env("OAI_INGEST__SERVER__LISTEN", &listen);
    let out = crate::helpers::binary::output(cmd).await;
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    drop(run);
    let mut cmd = crate::helpers::binary::bare(&["health"]);
    cmd.env("OAI_INGEST__SERVER__LISTEN", free_listen_address());
    let out = crate::helpers::binary::output(cmd).await;
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
}
