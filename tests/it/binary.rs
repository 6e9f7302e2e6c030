//! The real binary, as an operator runs it: signals, exit codes, what it prints and what it
//! never prints, against an in-process simulator.

use std::collections::HashSet;
use std::time::Duration;

use openai_audit_simulator::{Family, Fault, ReceiverScript};
use serde_json::Value;

use crate::helpers::binary::{RunningBinary, bare, describe, output, send_signal, text};
use crate::helpers::{SINK_TOKEN, TestApp, wait_until};

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_flushes_saves_checkpoints_and_exits_zero() {
    let app = TestApp::builder().history(200).start().await;
    let run = app.start_binary(&["run"], &[("OAI_INGEST__LOG__FORMAT", "json")]);
    let pid = run.pid();

    let expected = app.expected_audit_ids();
    assert!(!expected.is_empty());
    wait_until(Duration::from_secs(60), "the receiver holds the whole history", || {
        app.received().0.is_superset(&expected)
    })
    .await;

    send_signal(pid, "-TERM");
    let out = run.finish(Duration::from_secs(30)).await;
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));

    let path = app.checkpoint_path("audit_logs");
    assert!(path.is_file(), "{} exists after a graceful stop", path.display());
    let saved = app.checkpoint("audit_logs").expect("the checkpoint parses");
    assert!(
        !saved["watermark"].is_null(),
        "the finished window was promoted to the watermark: {saved}"
    );

    let (got, dups) = app.received();
    assert_eq!(got, expected, "exactly the simulator's history arrived");
    assert_eq!(dups, 0, "no event arrived twice");

    // The JSON log format is honoured and the stop was logged as such.
    let stderr = text(&out.stderr);
    let lines: Vec<Value> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["signal"] == "SIGTERM"),
        "the stop request is logged with its signal:\n{stderr}"
    );
    assert!(
        lines.iter().any(|l| l["message"] == "stopped"),
        "the final `stopped` line is logged:\n{stderr}"
    );
}

/// Every string of `secrets` (and its part after `sk-`, if any) is absent from `haystack`.
fn assert_no_secret(what: &str, haystack: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(
            !haystack.contains(secret),
            "{what} contains the secret `{secret}`:\n{haystack}"
        );
        if let Some(rest) = secret.strip_prefix("sk-") {
            assert!(
                !haystack.contains(rest),
                "{what} contains the body of the secret `{secret}`:\n{haystack}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_never_contain_the_admin_key_or_the_sink_token() {
    let app = TestApp::builder().history(120).start().await;
    let admin_key = app.sim().admin_key().to_string();
    assert!(
        admin_key.starts_with("sk-"),
        "the simulator's key looks like a real one: {admin_key}"
    );

    for format in ["json", "pretty"] {
        // Each run meets upstream 503s and sink 401s, so errors and retries are logged: the
        // test is only meaningful if the lines most likely to carry a secret were written.
        app.faults().inject(Family::AuditLogs, Fault::Status { status: 503 }, 2);
        app.receiver().set_response(ReceiverScript::Next {
            status: 401,
            retry_after_secs: None,
            times: 2,
        });
        let served_before = app.faults().served(Family::AuditLogs);
        let refused_before = app.receiver().requests().iter().filter(|r| r.status == 401).count();
        // Each format starts from a state directory of its own.
        let fresh_state = app.state_path().join(format).display().to_string();
        let out = app
            .run_binary(
                &["once", "--deadline", "45s"],
                &[
                    ("OAI_INGEST__STATE__DIR", &fresh_state),
                    ("OAI_INGEST__LOG__LEVEL", "debug"),
                    ("RUST_LOG", "debug"),
                    ("OAI_INGEST__LOG__FORMAT", format),
                ],
            )
            .await;
        assert_eq!(out.status.code(), Some(0), "{format}: {}", describe(&out));
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert_no_secret(
            &format!("`once` output ({format} logs)"),
            &all,
            &[&admin_key, SINK_TOKEN],
        );
        assert_eq!(
            app.faults().served(Family::AuditLogs) - served_before,
            2,
            "{format}: the upstream 503s were met"
        );
        assert_eq!(
            app.receiver().requests().iter().filter(|r| r.status == 401).count() - refused_before,
            2,
            "{format}: the sink refusals were met"
        );
        assert!(all.contains("ERROR"), "{format}: an ERROR line was logged:\n{all}");
        assert!(
            all.contains("refused the credentials"),
            "{format}: the sink credential error was logged:\n{all}"
        );
        assert!(all.contains("WARN"), "{format}: a WARN line was logged:\n{all}");
        assert!(
            all.contains("retrying API request"),
            "{format}: the audit-log retry was logged:\n{all}"
        );
        assert!(all.contains("DEBUG"), "{format}: debug logging was on:\n{all}");
    }
    // Despite the refusals, everything arrived.
    assert_eq!(app.received().0, app.expected_audit_ids());

    // `config` shows that secrets are set, never what they are.
    let compliance_key = app.sim().compliance_key().to_string();
    let out = app
        .run_binary(&["config"], &[("OPENAI_COMPLIANCE_API_KEY", &compliance_key)])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        text(&out.stdout).contains("[redacted]"),
        "secrets are shown as redacted:\n{all}"
    );
    assert!(text(&out.stdout).contains("admin_key = \"[redacted]\""), "{all}");
    assert!(text(&out.stdout).contains("auth_token = \"[redacted]\""), "{all}");
    assert_no_secret("`config` output", &all, &[&admin_key, SINK_TOKEN, &compliance_key]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupt_checkpoint_stops_start_up_with_how_to_reset_it() {
    let app = TestApp::builder().history(20).start().await;
    let path = app.checkpoint_path("audit_logs");
    std::fs::create_dir_all(path.parent().expect("parent")).expect("checkpoint dir");
    let garbage = b"{\"version\": 1, \"stream\": \"audit_logs\", \"state\": {trunc\x00\xff";
    std::fs::write(&path, garbage).expect("garbage written");

    let out = app.run_binary(&["once", "--deadline", "20s"], &[]).await;
    assert_ne!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        out.status.code().is_some(),
        "it exits rather than dying on a signal: {}",
        describe(&out)
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&path.display().to_string()),
        "stderr names the file:\n{stderr}"
    );
    assert!(stderr.contains("corrupt"), "stderr says what is wrong:\n{stderr}");
    assert!(
        stderr.contains("delete or move that file"),
        "stderr says how to reset the stream:\n{stderr}"
    );
    assert_eq!(
        std::fs::read(&path).expect("still there"),
        garbage,
        "the file is left untouched"
    );
    assert!(
        app.receiver().requests().is_empty(),
        "nothing was delivered from a guessed position"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_configuration_exits_2_naming_the_key() {
    let app = TestApp::builder().history(0).start().await;

    let cases: [(&str, &str, &str, &str); 8] = [
        ("OAI_INGEST__SINK__URL", "http://10.0.0.1/x", "sink.url", "loopback"),
        (
            "OAI_INGEST__OPENAI__BASE_URL",
            "http://10.0.0.2",
            "openai.base_url",
            "openai.allow_insecure_http",
        ),
        (
            "OAI_INGEST__COMPLIANCE__BASE_URL",
            "http://proxy.internal:8080",
            "compliance.base_url",
            "compliance.allow_insecure_http",
        ),
        (
            "OAI_INGEST__AUDIT_LOGS__PAGE_SIZE",
            "500",
            "audit_logs.page_size",
            "between 1 and 100",
        ),
        ("OAI_INGEST__LOG__FORMAT", "xml", "log.format", "xml"),
        (
            "OAI_INGEST__RETRY__INITIAL_BACKOFF",
            "soon",
            "retry.initial_backoff",
            "soon",
        ),
        ("OAI_INGEST__SINK__PROTOCOL", "kafka", "sink.protocol", "splunk_hec"),
        // A key of another protocol: ndjson would ignore a Splunk index.
        (
            "OAI_INGEST__SINK__INDEX",
            "openai",
            "sink.index",
            "splunk_hec and elasticsearch",
        ),
    ];
    for (var, value, key, problem) in cases {
        for command in ["once", "run", "check"] {
            let out = app.run_binary(&[command], &[(var, value)]).await;
            let stderr = text(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{command} with {var}={value}: {}",
                describe(&out)
            );
            assert!(
                stderr.contains(key),
                "{command} with {var}={value}: stderr names `{key}`:\n{stderr}"
            );
            assert!(
                stderr.contains(problem),
                "{command} with {var}={value}: stderr says `{problem}`:\n{stderr}"
            );
        }
    }

    // A missing required credential names the key and where to set it.
    let out = app.run_binary(&["once"], &[("OPENAI_ADMIN_KEY", "")]).await;
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(text(&out.stderr).contains("openai.admin_key"), "{}", describe(&out));

    // A config file with a key the daemon does not know.
    let file = app.state_path().join("config.toml");
    std::fs::write(&file, "[sink]\nflush_intervall = \"1s\"\n").expect("config written");
    let file_arg = file.display().to_string();
    let out = app.run_binary(&["--config", &file_arg, "once"], &[]).await;
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains("flush_intervall"),
        "stderr names the unknown key: {}",
        describe(&out)
    );

    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("`sink.flush_intervall`") && stderr.contains("unknown field"),
        "as a dotted key: {}",
        describe(&out)
    );

    // An unknown section, and an unknown key set through the environment.
    let sections = app.state_path().join("sections.toml");
    std::fs::write(&sections, "[sinks]\nurl = \"https://example.com\"\n").expect("config written");
    let sections_arg = sections.display().to_string();
    let out = app.run_binary(&["--config", &sections_arg, "config"], &[]).await;
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains("`sinks`"),
        "stderr names the unknown section: {}",
        describe(&out)
    );
    let out = app.run_binary(&["config"], &[("OAI_INGEST__SINK__BOGUS", "1")]).await;
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains("bogus"),
        "stderr names the unknown variable's key: {}",
        describe(&out)
    );

    // The same file through OAI_INGEST_CONFIG.
    let out = app.run_binary(&["config"], &[("OAI_INGEST_CONFIG", &file_arg)]).await;
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(text(&out.stderr).contains("flush_intervall"), "{}", describe(&out));

    // A config file that does not exist.
    let missing = app.state_path().join("nope.toml").display().to_string();
    let out = app.run_binary(&["--config", &missing, "once"], &[]).await;
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(text(&out.stderr).contains(&missing), "{}", describe(&out));

    assert!(app.receiver().requests().is_empty(), "nothing ran");
    assert!(!app.state_path().join("checkpoints").exists(), "no state was created");
}

#[tokio::test(flavor = "multi_thread")]
async fn once_delivers_everything_and_exits_zero() {
    let app = TestApp::builder().history(150).start().await;
    let out = app.run_binary(&["once"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let (got, dups) = app.received();
    assert_eq!(got, app.expected_audit_ids(), "every audit event arrived");
    assert_eq!(dups, 0, "none twice");
    let saved = app.checkpoint("audit_logs").expect("a checkpoint was saved");
    assert!(!saved["watermark"].is_null(), "{saved}");
    assert!(
        app.checkpoint("audit_logs_tenant").is_some(),
        "the tenant pass saved its checkpoint too"
    );

    // A second cycle from the saved checkpoints finds nothing new and sends nothing again.
    let before = app.receiver().ids().len();
    let out = app.run_binary(&["once"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(
        app.receiver().ids().len(),
        before,
        "the overlap re-read is deduplicated"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_worker_thread_count_comes_from_tokio_worker_threads_and_a_bad_one_is_refused() {
    let app = TestApp::builder().history(120).start().await;
    let out = app.run_binary(&["once"], &[("TOKIO_WORKER_THREADS", "0")]).await;
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains("TOKIO_WORKER_THREADS must be a positive whole number"),
        "{}",
        describe(&out)
    );
    assert!(app.receiver().requests().is_empty(), "nothing ran");

    // More workers than the default one deliver the same.
    let out = app.run_binary(&["once"], &[("TOKIO_WORKER_THREADS", "3")]).await;
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let (got, dups) = app.received();
    assert_eq!(got, app.expected_audit_ids(), "every audit event arrived");
    assert_eq!(dups, 0, "none twice");
}

#[tokio::test(flavor = "multi_thread")]
async fn once_exits_one_when_the_sink_never_accepts() {
    let app = TestApp::builder().history(100).start().await;
    app.receiver().set_response(ReceiverScript::Next {
        status: 503,
        retry_after_secs: None,
        times: 100_000,
    });
    let started = std::time::Instant::now();
    let out = app.run_binary(&["once", "--deadline", "3s"], &[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the deadline was kept: {:?}",
        started.elapsed()
    );
    assert!(
        app.receiver().requests().iter().any(|r| r.status == 503),
        "the sink was really tried"
    );
    assert!(app.receiver().ids().is_empty(), "nothing was accepted");
    for stream in ["audit_logs", "audit_logs_tenant"] {
        assert!(
            !app.checkpoint_path(stream).exists(),
            "no checkpoint for {stream}: nothing was acknowledged"
        );
    }

    // With a checkpoint in place, a failed run leaves it exactly as it was.
    app.receiver().set_response(ReceiverScript::Clear);
    let out = app.run_binary(&["once"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let path = app.checkpoint_path("audit_logs");
    let saved = std::fs::read(&path).expect("checkpoint saved");
    app.org().add_audit_event("login.failed", None);
    app.receiver().set_response(ReceiverScript::Next {
        status: 503,
        retry_after_secs: None,
        times: 100_000,
    });
    let out = app.run_binary(&["once", "--deadline", "3s"], &[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_eq!(
        std::fs::read(&path).expect("still there"),
        saved,
        "the checkpoint did not move"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn check_reports_an_invalid_admin_key_with_the_operator_action() {
    let app = TestApp::builder().history(5).start().await;

    let out = app
        .run_binary(&["check"], &[("OPENAI_ADMIN_KEY", "sk-admin-wrong")])
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("FAIL"), "{}", describe(&out));
    assert!(
        stdout.contains("Admin keys"),
        "the action names where to make a new key: {}",
        describe(&out)
    );
    assert!(stdout.contains("OPENAI_ADMIN_KEY"), "{}", describe(&out));
    assert_no_secret(
        "`check` output",
        &format!("{stdout}{}", text(&out.stderr)),
        &["sk-admin-wrong", SINK_TOKEN],
    );

    let out = app.run_binary(&["check"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let stdout = text(&out.stdout);
    assert!(
        stdout.lines().any(|l| l.starts_with("ok") && l.contains("sink")),
        "an ok line for the sink: {}",
        describe(&out)
    );
    assert!(
        stdout.lines().any(|l| l.starts_with("ok") && l.contains("audit logs")),
        "an ok line for the audit logs: {}",
        describe(&out)
    );
    assert!(!stdout.contains("FAIL"), "{}", describe(&out));
    assert_no_secret(
        "`check` output",
        &format!("{stdout}{}", text(&out.stderr)),
        &[app.sim().admin_key(), SINK_TOKEN],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn simulate_prints_its_urls_and_keys() {
    let mut cmd = bare(&["simulate", "--listen", "127.0.0.1:0", "--events-per-second", "0"]);
    cmd.env("OAI_INGEST__LOG__LEVEL", "warn");
    let sim = RunningBinary::start(cmd);
    let banner_done = |out: &str| out.ends_with('\n') && out.lines().any(|l| l.trim_start().starts_with("receiver:"));
    wait_until(Duration::from_secs(30), "the banner is printed", || {
        banner_done(&sim.stdout_so_far())
    })
    .await;
    let banner = sim.stdout_so_far();
    assert!(banner.contains("/v1"), "the admin API URL is printed:\n{banner}");
    assert!(banner.contains("receiver"), "the receiver URL is printed:\n{banner}");
    assert!(
        banner.contains("Bearer sk-admin-"),
        "the simulator's admin key is printed:\n{banner}"
    );
    assert!(
        !banner.contains("127.0.0.1:0/"),
        "the bound port is printed, not port 0:\n{banner}"
    );

    // The printed URL and key really work.
    let admin_line = banner
        .lines()
        .find(|l| l.contains("admin api:"))
        .expect("an admin api line");
    let words: Vec<&str> = admin_line.split_whitespace().collect();
    let url = words.iter().find(|w| w.starts_with("http://")).expect("a URL");
    let key = words
        .iter()
        .find(|w| w.starts_with("sk-admin-"))
        .expect("a key")
        .trim_end_matches(')');
    let resp = reqwest::Client::new()
        .get(format!("{}/organization/audit_logs?limit=1", url.trim_end_matches('/')))
        .bearer_auth(key)
        .send()
        .await
        .expect("the simulator answers");
    assert_eq!(resp.status().as_u16(), 200, "the printed key opens the printed URL");

    send_signal(sim.pid(), "-TERM");
    let out = sim.finish(Duration::from_secs(30)).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "simulate exits 0 on SIGTERM: {}",
        describe(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_runs_for_a_few_seconds_and_the_receiver_gets_audit_events_without_duplicates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = bare(&["demo", "--duration", "6s"]);
    cmd.current_dir(dir.path());
    let out = output(cmd).await;
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("0 duplicates"), "{}", describe(&out));
    assert!(stdout.contains("openai.audit_log"), "{}", describe(&out));

    let file = dir.path().join("demo-output").join("received.ndjson");
    let body = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let events: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(!events.is_empty(), "the receiver got events");
    let ids: Vec<&str> = events
        .iter()
        .map(|e| e["id"].as_str().expect("every event has an id"))
        .collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "no id arrived twice");
    assert!(
        events.iter().any(|e| e["source"] == "openai.inventory"),
        "the inventory stream delivered too"
    );
    let types: Vec<&str> = events
        .iter()
        .filter(|e| e["source"] == "openai.audit_log")
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert!(
        types
            .iter()
            .any(|t| t.starts_with("tenant.") || *t == "role.bound_to_resource"),
        "the tenant-scoped pass delivered events too"
    );
    assert!(
        types
            .iter()
            .any(|t| !t.starts_with("tenant.") && !t.starts_with("role.")),
        "the normal pass delivered events"
    );
    assert!(
        stdout.contains(&format!("received {} events (0 duplicates)", events.len())),
        "the final summary matches the file ({} events):\n{stdout}",
        events.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_at_any_moment_loses_nothing_across_restarts() {
    let _turn = crate::helpers::heavy().await;
    let app = TestApp::builder().history(1500).start().await;
    // Slow pages and small batches, so the kills land mid-window with batches in flight.
    app.faults()
        .set_always(Family::AuditLogs, Some(Fault::LatencyMs { ms: 15 }));
    let extra = [
        ("OAI_INGEST__AUDIT_LOGS__PAGE_SIZE", "20"),
        ("OAI_INGEST__SINK__MAX_BATCH_EVENTS", "25"),
        ("OAI_INGEST__LOG__LEVEL", "warn"),
    ];
    for round in 1..=3u32 {
        let run = app.start_binary(&["run"], &extra);
        let target = app.receiver().ids().len() + 150;
        wait_until(Duration::from_secs(60), "some progress before the kill", || {
            app.receiver().ids().len() >= target
        })
        .await;
        send_signal(run.pid(), "-KILL");
        let out = run.finish(Duration::from_secs(10)).await;
        assert_eq!(out.status.code(), None, "round {round}: killed by a signal");
        // New activity, and a late event with an older effective_at, while it is down.
        app.org().add_audit_event("api_key.created", None);
        app.org()
            .add_late_event("user.added", chrono::Utc::now().timestamp() - 90);
    }
    app.faults().clear();
    let run = app.start_binary(&["run"], &extra);
    let expected = app.expected_audit_ids();
    wait_until(
        Duration::from_secs(60),
        "every event arrives after the last restart",
        || app.received().0.is_superset(&expected),
    )
    .await;
    send_signal(run.pid(), "-TERM");
    let out = run.finish(Duration::from_secs(30)).await;
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let (got, dups) = app.received();
    assert_eq!(got, expected, "nothing lost, nothing invented");
    // Repeats are bounded by what was in flight at each kill (deliveries not yet
    // checkpointed), never the whole history.
    assert!(dups <= 3 * 300, "{dups} repeats after three kills");
}
