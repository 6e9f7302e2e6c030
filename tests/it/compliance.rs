//! The `compliance:<TYPE>` streams against the simulated Compliance Logs Platform: paging,
//! at-least-once repeats, the keyless signed-URL download, checksum retries and quarantine,
//! a large file, a stop mid-file, the content policy, malformed lines and `check`.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use openai_audit_ingest::streams::Mode;
use openai_audit_ingest::streams::compliance::files::CHECKSUM_ATTEMPTS;
use openai_audit_simulator::{COMPLIANCE_EVENT_TYPES, Family, Fault, ReceiverScript};
use serde_json::Value;

use crate::helpers::{TestApp, poll_until, wait_until};

#[tokio::test(flavor = "multi_thread")]
async fn every_event_type_is_delivered_once_across_many_files_and_pages() {
    let app = TestApp::builder()
        .compliance(COMPLIANCE_EVENT_TYPES)
        .compliance_repeats(0.03)
        .cut_compliance_files()
        .start()
        .await;
    // More than one page (limit 100) of AUTH_LOG files: one event per file.
    for _ in 0..110 {
        app.org().add_compliance_events("AUTH_LOG", 1);
        app.org().cut_compliance_files();
    }
    let outcome = app.run_once().await;
    assert!(outcome.success(Mode::Once), "{outcome:?}");
    let expected = app.expected_compliance(COMPLIANCE_EVENT_TYPES);
    let (got, dups) = app.received();
    assert_eq!(got, expected);
    assert_eq!(dups, 0);
    assert!(
        app.faults().requests(Family::ComplianceList) as usize > COMPLIANCE_EVENT_TYPES.len(),
        "AUTH_LOG needed a second page"
    );
    // Guardrail findings the simulated activity triggers travel beside the records.
    let events: Vec<_> = app
        .receiver()
        .events()
        .into_iter()
        .filter(|e| e["source"] != "guardrails")
        .collect();
    let sources: HashSet<&str> = events.iter().filter_map(|e| e["source"].as_str()).collect();
    assert_eq!(sources, HashSet::from(["chatgpt.compliance"]));
    let types: HashSet<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(types, COMPLIANCE_EVENT_TYPES.iter().copied().collect());
    assert!(events.iter().all(|e| e["category"] != "other"), "every type is mapped");
    let saved = app.checkpoint("compliance:AUTH_LOG").expect("checkpoint saved");
    assert!(saved["after"].is_string(), "{saved}");
    assert!(saved["file"].is_null(), "no file in progress: {saved}");

    // A second run finds nothing new and ships nothing again.
    let before = app.receiver().ids().len();
    let outcome = app.run_once().await;
    assert!(outcome.success(Mode::Once), "{outcome:?}");
    assert_eq!(app.receiver().ids().len(), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_repeated_in_a_later_file_is_delivered_once() {
    // Every file repeats one event of the file before it.
    let app = TestApp::builder()
        .compliance(&["CONVERSATION_MESSAGE"])
        .compliance_repeats(1.0)
        .cut_compliance_files()
        .start()
        .await;
    for _ in 0..5 {
        app.org().add_compliance_events("CONVERSATION_MESSAGE", 3);
        app.org().cut_compliance_files();
    }
    let outcome = app.run_once().await;
    assert!(outcome.success(Mode::Once), "{outcome:?}");
    let (got, dups) = app.received();
    assert_eq!(got, app.expected_compliance(&["CONVERSATION_MESSAGE"]));
    assert_eq!(dups, 0, "repeats across files are dropped by event_id");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_download_follows_the_redirect_without_the_bearer_key() {
    // The simulator's signed URL answers 403 to any request carrying Authorization, like a
    // pre-signed storage URL: delivering the files proves the key was not sent there.
    let app = TestApp::builder()
        .compliance(&["APP_LOG"])
        .compliance_repeats(0.0)
        .cut_compliance_files()
        .start()
        .await;
    let outcome = app.run_once().await;
    assert!(outcome.success(Mode::Once), "{outcome:?}");
    let downloads = app.faults().requests(Family::SignedUrl);
    assert!(downloads > 0, "files were fetched from the signed URL");
    assert_eq!(
        app.faults().requests(Family::ComplianceDownload),
        downloads,
        "each signed-URL fetch succeeded first time (a 403 would have meant a retry)"
    );
    let (got, _) = app.received();
    assert_eq!(got, app.expected_compliance(&["APP_LOG"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_checksum_mismatch_is_downloaded_again_and_then_delivered() {
    let app = TestApp::builder()
        .compliance(&["AUDIT_LOG"])
        .compliance_repeats(0.0)
        .cut_compliance_files()
        .start()
        .await;
    app.faults().inject(Family::SignedUrl, Fault::CorruptFile, 1);
    let outcome = app.run_once().await;
    assert!(outcome.success(Mode::Once), "{outcome:?}");
    assert_eq!(
        app.faults().served(Family::SignedUrl),
        1,
        "the corrupt download happened"
    );
    let (got, dups) = app.received();
    assert_eq!(got, app.expected_compliance(&["AUDIT_LOG"]));
    assert_eq!(dups, 0);
    assert!(app.quarantined().is_empty());
    let bad = app
        .receiver()
        .events()
        .iter()
        .filter(|e| e["raw"]["corrupted"] == true)
        .count();
    assert_eq!(bad, 0, "nothing of the corrupt download was shipped");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_that_stays_corrupt_is_quarantined_and_the_rest_of_the_stream_flows() {
    let app = TestApp::builder()
        .compliance(&["CODEX_LOG"])
        .compliance_repeats(0.0)
        .cut_compliance_files()
        .start()
        .await;
    for _ in 0..3 {
        app.org().add_compliance_events("CODEX_LOG", 2);
        app.org().cut_compliance_files();
    }
    // Every attempt at the first file is corrupt; later files are fine.
    app.faults()
        .inject(Family::SignedUrl, Fault::CorruptFile, CHECKSUM_ATTEMPTS);
    let outcome = app.run_once().await;
    assert!(outcome.success(Mode::Once), "{outcome:?}");

    let files = app.quarantined();
    let data = files
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .expect("the corrupt file's bytes are kept");
    let reason = files
        .iter()
        .find(|p| p.to_string_lossy().ends_with(".reason.json"))
        .expect("with the reason beside them");
    assert_eq!(files.len(), 2, "{files:?}");
    let reason: Value = serde_json::from_slice(&std::fs::read(reason).expect("read")).expect("json");
    assert!(
        reason["reason"].as_str().is_some_and(|r| r.contains("SHA-256")),
        "{reason}"
    );
    assert!(reason["file"]["id"].is_string());

    let in_quarantine: HashSet<String> = std::fs::read_to_string(data)
        .expect("read")
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["event_id"].as_str().map(str::to_string))
        .map(|id| app.compliance_event_id(&id))
        .collect();
    assert!(!in_quarantine.is_empty());
    let (got, dups) = app.received();
    assert_eq!(dups, 0);
    assert!(got.is_disjoint(&in_quarantine));
    let accounted: HashSet<String> = got.union(&in_quarantine).cloned().collect();
    assert_eq!(
        accounted,
        app.expected_compliance(&["CODEX_LOG"]),
        "every event is shipped or quarantined"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_twenty_megabyte_file_is_streamed_from_disk_and_delivered_in_full() {
    let _turn = crate::helpers::heavy().await;
    let app = TestApp::builder()
        .compliance(&["CONVERSATION_MESSAGE"])
        .compliance_repeats(0.0)
        .compliance_file_max_events(100_000)
        .cut_compliance_files()
        .envs(&[
            ("OAI_INGEST__SINK__MAX_BATCH_BYTES", "4MiB"),
            ("OAI_INGEST__SINK__MAX_BATCH_EVENTS", "2000"),
        ])
        .start()
        .await;
    let generated = Instant::now();
    app.org().add_compliance_events("CONVERSATION_MESSAGE", 26_000);
    app.org().cut_compliance_files();
    let generated = generated.elapsed();
    let started = Instant::now();
    let outcome = app.run_once().await;
    let took = started.elapsed();
    assert!(outcome.success(Mode::Once), "{outcome:?}");
    let (got, dups) = app.received();
    assert_eq!(got, app.expected_compliance(&["CONVERSATION_MESSAGE"]));
    assert_eq!(dups, 0);
    let largest = app.org().compliance_largest_file_bytes("CONVERSATION_MESSAGE");
    assert!(largest >= 20 * 1024 * 1024, "the file is ~20 MB: {largest} bytes");
    // The file went to disk, not memory, and the spool is cleaned up afterwards.
    let spool = std::fs::read_dir(app.state_path().join("spool")).expect("a spool directory was used");
    assert_eq!(spool.count(), 0, "no spooled file is left behind");
    eprintln!(
        "20 MB file: {largest} bytes, {} events, generated in {generated:?}, shipped in {took:?}",
        got.len()
    );
}

/// The daemon's memory does not grow with a file: a file larger than the whole daemon's peak
/// resident memory (which it reports in its `stopped` line) is read from the spool and
/// shipped, every line once. Each line carries 16 KiB of attachment metadata outside the
/// message (so the file is large, but nothing extra is scanned or hashed, which a debug
/// build does slowly) and the batches go uncompressed, so the test stays within a minute.
#[tokio::test(flavor = "multi_thread")]
async fn a_file_larger_than_the_daemons_peak_memory_is_shipped_every_line_once() {
    let _turn = crate::helpers::heavy().await;
    const LINES: usize = 6_000;
    let app = TestApp::builder()
        .compliance(&["CONVERSATION_MESSAGE"])
        .history(0)
        .compliance_repeats(0.0)
        .compliance_file_max_events(100_000)
        .start()
        .await;
    let padding: String = "0123456789abcdef".repeat(1024);
    let mut expected = HashSet::new();
    for i in 0..LINES {
        let event_id = format!("9d6bb4e9-3882-4dbe-9d4c-{i:012}");
        let record = serde_json::json!({
            "event_id": event_id,
            "type": "CONVERSATION_MESSAGE",
            "timestamp": chrono::Utc::now().to_rfc3339(),
            "actor": {"type": "ACCOUNT_USER", "user_id": "user-1", "user_email": "bob@example.com"},
            "message": {"id": format!("m-{i}"), "author": {"type": "user"}, "content": {"type": "text", "value": format!("line {i}")}},
            "conversation": {"id": "c-1", "title": "a long chat"},
            "attachment_metadata": padding,
        });
        app.org()
            .add_compliance_raw_line("CONVERSATION_MESSAGE", &record.to_string());
        expected.insert(app.compliance_event_id(&event_id));
    }
    app.org().cut_compliance_files();
    let file_bytes = app.org().compliance_largest_file_bytes("CONVERSATION_MESSAGE");
    let out = app
        .run_binary(&["once"], &[("OAI_INGEST__SINK__COMPRESSION", "none")])
        .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let peak_rss = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["message"] == "stopped")
        .and_then(|l| l["peak_rss_bytes"].as_u64())
        .unwrap_or_else(|| panic!("the `stopped` line reports the peak RSS:\n{stderr}"));
    eprintln!("a {file_bytes}-byte file shipped with a peak RSS of {peak_rss} bytes");
    assert!(
        file_bytes as u64 > peak_rss,
        "the file ({file_bytes} bytes) is larger than the daemon's peak memory ({peak_rss} bytes)"
    );
    let (got, dups) = app.received();
    assert_eq!(got, expected, "every line arrived");
    assert_eq!(dups, 0, "and only once");
}

/// An `AUDIT_LOG` stream whose events come in one file each time it is cut, shipped in small
/// batches through a short queue: the queue keeps the stream close to the sink, so positions
/// inside the file are acknowledged (and checkpointed) as it goes.
async fn one_file_at_a_time() -> TestApp {
    TestApp::builder()
        .compliance(&["AUDIT_LOG"])
        .compliance_repeats(0.0)
        .compliance_file_max_events(100_000)
        .cut_compliance_files()
        .envs(&[
            ("OAI_INGEST__SINK__MAX_BATCH_EVENTS", "50"),
            ("OAI_INGEST__SINK__MAX_BATCH_BYTES", "32KiB"),
            ("OAI_INGEST__SINK__MAX_QUEUE_BYTES", "64KiB"),
            ("OAI_INGEST__SHUTDOWN__TIMEOUT", "1s"),
        ])
        .start()
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stop_mid_file_resumes_at_the_next_line_without_loss() {
    let app = one_file_at_a_time().await;
    app.org().add_compliance_events("AUDIT_LOG", 6000);
    app.org().cut_compliance_files();
    let running = app.spawn().await;
    poll_until(|| app.receiver().ids().len() >= 1500).await;
    app.receiver().set_response(ReceiverScript::Next {
        status: 503,
        retry_after_secs: None,
        times: 1_000_000,
    });
    let in_file = || {
        app.checkpoint("compliance:AUDIT_LOG")
            .and_then(|c| c["file"]["lines_done"].as_u64())
            .unwrap_or(0)
    };
    poll_until(|| in_file() >= 1000).await;
    running.stop().await;
    let saved = app.checkpoint("compliance:AUDIT_LOG").expect("checkpoint");
    let lines_done = saved["file"]["lines_done"].as_u64().expect("a file in progress");
    assert!((1000..6000).contains(&lines_done), "{saved}");
    assert!(saved["file"]["file"]["id"].is_string(), "{saved}");
    let first_run = app.receiver().ids().len();
    assert!(first_run < 6000, "the first run really stopped mid-file");

    app.receiver().set_response(ReceiverScript::Clear);
    let outcome = app.run_once().await;
    assert!(outcome.success(Mode::Once), "{outcome:?}");
    let (got, dups) = app.received();
    eprintln!(
        "stop mid-file: {first_run} delivered before the stop, {lines_done} lines checkpointed, {dups} repeats after resuming"
    );
    assert_eq!(
        got,
        app.expected_compliance(&["AUDIT_LOG"]),
        "every event arrives across the stop"
    );
    assert!(
        dups as u64 <= first_run as u64 - lines_done,
        "only lines after the checkpoint are read again: {dups} repeats, {first_run} delivered, {lines_done} checkpointed"
    );
    let saved = app.checkpoint("compliance:AUDIT_LOG").expect("checkpoint");
    assert!(saved["file"].is_null(), "the file is finished: {saved}");
}

/// The recent event ids kept beside `stream`'s checkpoint (the file its `recent_in` names).
fn recent_ids_on_disk(app: &TestApp, stream: &str) -> HashSet<String> {
    let saved = app.checkpoint(stream).expect("checkpoint");
    let number = saved["recent_in"]
        .as_u64()
        .unwrap_or_else(|| panic!("names its ids: {saved}"));
    let path = app
        .state_path()
        .join("checkpoints")
        .join(format!("{}-recent-{number}.json", stream.replace(':', "-")));
    let file: Value = serde_json::from_slice(&std::fs::read(&path).expect("the ids' file")).expect("JSON");
    file["state"]["recent"]
        .as_array()
        .expect("[[id, time], …]")
        .iter()
        .map(|pair| pair[0].as_str().expect("an id").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn marks_inside_a_file_leave_the_ids_file_alone_and_a_resume_remembers_the_lines_before_the_mark() {
    let stream = "compliance:AUDIT_LOG";
    let app = one_file_at_a_time().await;
    let earlier: HashSet<String> = app.org().compliance_event_ids("AUDIT_LOG").into_iter().collect();
    app.org().add_compliance_events("AUDIT_LOG", 3000);
    app.org().cut_compliance_files();
    let running = app.spawn().await;
    let lines_done = || {
        app.checkpoint(stream)
            .and_then(|c| c["file"]["lines_done"].as_u64())
            .unwrap_or(0)
    };
    poll_until(|| lines_done() >= 1000).await;
    app.receiver().set_response(ReceiverScript::Next {
        status: 503,
        retry_after_secs: None,
        times: 1_000_000,
    });
    running.stop().await;
    let stopped_at = lines_done();
    assert!(
        (1000..3000).contains(&stopped_at),
        "stopped mid-file at line {stopped_at}"
    );
    // The ids as the file began (the earlier files'), none of its own: the marks inside it
    // did not write them.
    assert_eq!(recent_ids_on_disk(&app, stream), earlier);

    app.receiver().set_response(ReceiverScript::Clear);
    let outcome = app.run_once().await;
    assert!(outcome.success(Mode::Once), "{outcome:?}");
    let (got, _) = app.received();
    assert_eq!(got, app.expected_compliance(&["AUDIT_LOG"]));
    // Finished: every id of the file is remembered, those of the lines read again before the
    // mark included (else a repeat of one in the next file would be shipped again).
    let every: HashSet<String> = app.org().compliance_event_ids("AUDIT_LOG").into_iter().collect();
    assert_eq!(recent_ids_on_disk(&app, stream), every);
}

#[tokio::test(flavor = "multi_thread")]
async fn with_content_hash_no_message_or_tool_text_reaches_the_receiver() {
    let app = TestApp::builder()
        .compliance(&["CONVERSATION_MESSAGE", "APP_LOG"])
        .compliance_repeats(0.0)
        .cut_compliance_files()
        .env("OAI_INGEST__COMPLIANCE__CONTENT", "hash")
        .start()
        .await;
    let outcome = app.run_once().await;
    assert!(outcome.success(Mode::Once), "{outcome:?}");
    let events = app.receiver().events();
    // Finding events (a user's first MCP app, say) travel beside the records, and are checked
    // for text below like everything else.
    let records = events.iter().filter(|e| e["source"] != "guardrails").count();
    assert_eq!(
        records,
        app.expected_compliance(&["CONVERSATION_MESSAGE", "APP_LOG"]).len()
    );
    let everything = serde_json::to_string(&events).expect("json");
    for text in [
        "Summarize the Q3 numbers",
        "Here is a summary of the quarterly numbers",
        "Search Results for",
    ] {
        assert!(!everything.contains(text), "`{text}` was shipped");
    }
    let message = events
        .iter()
        .find(|e| e["type"] == "CONVERSATION_MESSAGE")
        .expect("a message");
    assert!(
        message["details"]["message"]["content"]["value"]["sha256"].is_string(),
        "{message}"
    );
    assert!(
        message["raw"]["message"]["content"]["value"]["sha256"].is_string(),
        "{message}"
    );
    assert!(
        message["details"]["conversation"]["title"]["sha256"].is_string(),
        "the title is written from the messages, so it is text too: {message}"
    );
    assert!(message["details"]["conversation"]["id"].is_string(), "ids stay");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_line_is_dead_lettered_with_its_place_and_the_rest_of_the_file_flows() {
    let app = TestApp::builder()
        .compliance(&["APP_AUTH_LOG"])
        .compliance_repeats(0.0)
        .cut_compliance_files()
        .start()
        .await;
    app.org().add_compliance_events("APP_AUTH_LOG", 2);
    app.org()
        .add_compliance_raw_line("APP_AUTH_LOG", "{\"event_id\": \"broken");
    app.org().add_compliance_events("APP_AUTH_LOG", 2);
    app.org().cut_compliance_files();
    let outcome = app.run_once().await;
    assert!(outcome.success(Mode::Once), "{outcome:?}");
    let (got, dups) = app.received();
    assert_eq!(
        got,
        app.expected_compliance(&["APP_AUTH_LOG"]),
        "the lines around it flow"
    );
    assert_eq!(dups, 0);
    let lines = app.dead_letters();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["stream"], "compliance:APP_AUTH_LOG");
    assert_eq!(lines[0]["raw_line"], "{\"event_id\": \"broken");
    assert!(lines[0]["origin"]["file_id"].is_string());
    assert_eq!(lines[0]["origin"]["line"], 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn check_names_a_bad_key_and_a_wrong_workspace() {
    let app = TestApp::builder()
        .compliance(&["AUTH_LOG"])
        .compliance_repeats(0.0)
        .cut_compliance_files()
        .start()
        .await;
    let compliance = |findings: &[openai_audit_ingest::check::Finding]| {
        findings
            .iter()
            .find(|f| f.what.starts_with("compliance"))
            .cloned()
            .expect("a compliance finding")
    };
    let good = app.settings();
    let found = compliance(&openai_audit_ingest::check::run(&good).await);
    assert!(found.ok, "{found:?}");

    let bad_key = app.settings_with(&[("OAI_INGEST__COMPLIANCE__API_KEY", "sk-wrong-key")]);
    let found = compliance(&openai_audit_ingest::check::run(&bad_key).await);
    assert!(!found.ok);
    assert!(
        found.detail.contains("HTTP 401") && found.detail.contains("invalid"),
        "{found:?}"
    );
    assert!(!found.detail.contains("sk-wrong-key"), "the key is never printed");

    let wrong_workspace = app.settings_with(&[(
        "OAI_INGEST__COMPLIANCE__PRINCIPAL_ID",
        "00000000-0000-4000-8000-000000000000",
    )]);
    let found = compliance(&openai_audit_ingest::check::run(&wrong_workspace).await);
    assert!(!found.ok);
    assert!(
        found.detail.contains("HTTP 404") && found.detail.contains("principal_id"),
        "{found:?}"
    );
    assert!(found.what.contains("workspaces/00000000"), "{found:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_organization_principal_uses_the_organizations_path() {
    let mut app = TestApp::builder()
        .compliance(&["CUSTOM_AGENTS_LOG"])
        .compliance_repeats(0.0)
        .cut_compliance_files()
        .start()
        .await;
    let org_id = app.sim().org_id().to_string();
    app.set_env("OAI_INGEST__COMPLIANCE__PRINCIPAL_ID", &org_id);
    let outcome = app.run_once().await;
    assert!(outcome.success(Mode::Once), "{outcome:?}");
    let want: HashSet<String> = app
        .org()
        .compliance_event_ids("CUSTOM_AGENTS_LOG")
        .into_iter()
        .map(|id| format!("chatgpt.compliance:{org_id}:{id}"))
        .collect();
    assert_eq!(app.received().0, want);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chat_containing_an_api_key_is_flagged_and_with_content_hash_neither_text_nor_key_is_shipped() {
    let app = TestApp::builder()
        .compliance(&["CONVERSATION_MESSAGE"])
        .history(0)
        .env("OAI_INGEST__COMPLIANCE__CONTENT", "hash")
        .start()
        .await;
    let secret = "sk-proj-Zq8XbV3nT6wR1yP4kL7mJ2hG5fD9sA0cE3uI6oK";
    let sentence = "please deploy with this key";
    let record = serde_json::json!({
        "event_id": "9d6bb4e9-3882-4dbe-9d4c-000000000042",
        "type": "CONVERSATION_MESSAGE",
        "timestamp": chrono::Utc::now().to_rfc3339(),
        "principal": {"id": app.sim().workspace_id(), "type": "CHATGPT_WORKSPACE"},
        "actor": {"type": "ACCOUNT_USER", "user_id": "user-1", "user_email": "bob@example.com"},
        "message": {
            "id": "m-1",
            "author": {"type": "user"},
            "content": {"type": "text", "value": format!("{sentence}: {secret}")}
        },
        "conversation": {"id": "c-1", "title": "deploy"}
    });
    app.org()
        .add_compliance_raw_line("CONVERSATION_MESSAGE", &record.to_string());
    app.org().cut_compliance_files();
    let outcome = app.run_once().await;
    assert!(outcome.success(Mode::Once), "{outcome:?}");
    let events = app.receiver().events();
    let message = events
        .iter()
        .find(|e| e["id"].as_str().is_some_and(|id| id.ends_with("000000000042")))
        .expect("the message arrived");
    let rules: Vec<&str> = message["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["rule"].as_str())
        .collect();
    assert!(rules.contains(&"sensitive_data_in_content"), "flagged: {message}");
    let shipped = serde_json::to_string(&events).expect("json");
    assert!(!shipped.contains(secret), "the key is never shipped");
    assert!(!shipped.contains(&secret[8..]), "not even part of it");
    assert!(
        !shipped.contains(sentence),
        "with content = hash the text is not shipped"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_type_the_daemon_has_never_heard_of_is_collected_as_other() {
    let app = TestApp::builder()
        .compliance(&["CHATGPT_PLUGIN_SPREADSHEET_LOG"])
        .start()
        .await;
    let record = serde_json::json!({
        "event_id": "5e5e5e5e-0000-4000-8000-000000000001",
        "type": "CHATGPT_PLUGIN_SPREADSHEET_LOG",
        "timestamp": "2026-11-30T10:00:00.000000Z",
        "principal": {"id": app.sim().workspace_id(), "type": "CHATGPT_WORKSPACE"},
        "actor": {"type": "ACCOUNT_USER", "user_id": "user-1", "user_email": "ann@example.com"},
        "sheet": {"rows": 3}
    });
    app.org()
        .add_compliance_raw_line("CHATGPT_PLUGIN_SPREADSHEET_LOG", &record.to_string());
    app.org().cut_compliance_files();
    let outcome = app.run_once().await;
    assert!(outcome.success(Mode::Once), "{outcome:?}");
    let events = app.receiver().events();
    let event = events
        .iter()
        .find(|e| e["type"] == "CHATGPT_PLUGIN_SPREADSHEET_LOG")
        .expect("the new type's record arrived");
    assert_eq!(
        (event["category"].as_str(), event["action"].as_str()),
        (Some("other"), Some("unknown"))
    );
    assert_eq!(event["raw"]["sheet"]["rows"], 3, "its fields travel in raw");
}

#[tokio::test(flavor = "multi_thread")]
async fn list_pages_and_files_of_concatenated_pretty_printed_json_are_read_in_full() {
    let app = TestApp::builder()
        .history(0)
        .compliance(&["AUTH_LOG"])
        .compliance_repeats(0.0)
        .compliance_file_max_events(4)
        .start()
        .await;
    app.org().set_compliance_concatenated_json(true);
    app.org().add_compliance_events("AUTH_LOG", 15);
    app.org().cut_compliance_files();
    let outcome = app.run_once().await;
    assert!(outcome.success(Mode::Once), "{outcome:?}");
    let expected = app.expected_compliance(&["AUTH_LOG"]);
    assert!(expected.len() >= 15, "several files: {}", expected.len());
    let (received, _) = app.received();
    assert_eq!(
        received, expected,
        "every event of every file, from every list document"
    );
    assert!(
        !app.state_path().join("dead-letter.ndjson").exists(),
        "nothing was malformed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_freshness_lag_per_event_type_comes_from_the_platforms_max_event_time() {
    let app = TestApp::builder().only_filed_compliance("AUTH_LOG", 5).start().await;
    let (outcome, metrics) = app.run_once_with_metrics().await;
    assert!(outcome.success(Mode::Once), "{outcome:?}");
    let text = metrics.render();
    assert!(
        text.lines()
            .any(|l| l == "oai_ingest_compliance_freshness_lag_seconds{event_type=\"AUTH_LOG\"} 0"),
        "caught up with the platform's newest event:\n{}",
        text.lines()
            .filter(|l| l.contains("freshness"))
            .collect::<Vec<_>>()
            .join("\n")
    );

    // The clock moves on two seconds (the figure is in seconds), the platform files newer
    // events, and the stream is stuck behind a file that answers 404: the figure says how far
    // behind it is.
    let caught_up_at = chrono::Utc::now().timestamp();
    wait_until(Duration::from_secs(5), "two seconds to pass", || {
        chrono::Utc::now().timestamp() >= caught_up_at + 2
    })
    .await;
    app.org().add_compliance_events("AUTH_LOG", 3);
    app.org().cut_compliance_files();
    app.faults()
        .set_always(Family::ComplianceDownload, Some(Fault::Status { status: 404 }));
    let (_, metrics) = app.run_once_with_metrics().await;
    let lag: i64 = metrics
        .render()
        .lines()
        .find_map(|l| l.strip_prefix("oai_ingest_compliance_freshness_lag_seconds{event_type=\"AUTH_LOG\"} "))
        .and_then(|v| v.parse().ok())
        .expect("the figure");
    assert!(lag >= 2, "behind by the new file: {lag}");
}
