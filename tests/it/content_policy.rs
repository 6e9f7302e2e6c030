//! The content policy over the public record shapes of every compliance type
//! (`tests/fixtures/compliance/samples/`): with `content = hash` or `drop`, the receiver gets
//! no free text and no secret anywhere in what it is sent, and every secret is flagged.

use std::collections::HashSet;
use std::path::Path;

use openai_audit_ingest::streams::Mode;
use serde_json::Value;

use crate::helpers::TestApp;

/// The secrets planted in the samples' text fields, and how many fields carry each.
const SECRETS: &[(&str, &str, usize)] = &[
    ("openai_api_key", "sk-proj-Xy7Lm2Qw9Er4Ty6Ui8Op1As3Df5Gh7Jk9Lz", 4),
    ("aws_access_key_id", "AKIAZ7QW3ERT5YU2IOP4", 3),
    ("github_token", "ghp_R4nD0mT0k3nV4lu3F0rT3st1ngPurp0s3sXYZ", 1),
];

/// Every sample file: the record type and its lines.
fn samples() -> Vec<(String, Vec<String>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/compliance/samples");
    let mut out: Vec<(String, Vec<String>)> = std::fs::read_dir(&dir)
        .expect("samples directory")
        .filter_map(Result::ok)
        .map(|entry| {
            let path = entry.path();
            let record_type = path.file_stem().and_then(|s| s.to_str()).expect("name").to_string();
            let text = std::fs::read_to_string(&path).expect("sample file");
            (record_type, text.lines().map(str::to_string).collect())
        })
        .collect();
    out.sort();
    out
}

/// Keys whose values may hold several words without being anyone's text: user agents and
/// display names, which the README lists as kept.
const WORDY_KEYS: &[&str] = &[
    "client_user_agent",
    "user_agent",
    "openai/userAgent",
    "name",
    "display_name",
    "agent_name",
    "app_name",
    "connector_name",
    "plugin_display_name",
];

/// Every string in `v` that reads like free text (three or more words), with its path.
/// Findings are the daemon's own words and are checked separately.
fn free_text(v: &Value, path: &mut Vec<String>, out: &mut Vec<String>) {
    match v {
        Value::String(s) => {
            let key = path.last().map(String::as_str).unwrap_or_default();
            if s.split_whitespace().count() >= 3 && !WORDY_KEYS.contains(&key) {
                out.push(format!("{}: {s}", path.join(".")));
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(i.to_string());
                free_text(item, path, out);
                path.pop();
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                if path.is_empty() && k == "findings" {
                    continue;
                }
                path.push(k.clone());
                free_text(item, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

/// Files every sample, streams them all with `content = mode` and returns the app and what
/// the receiver got.
async fn run_with_content(mode: &str) -> (TestApp, Vec<Value>) {
    let samples = samples();
    let types: Vec<&str> = samples.iter().map(|(record_type, _)| record_type.as_str()).collect();
    let app = TestApp::builder()
        .history(0)
        .compliance(&types)
        .env("OAI_INGEST__COMPLIANCE__CONTENT", mode)
        .start()
        .await;
    let mut want = HashSet::new();
    for (record_type, lines) in &samples {
        for line in lines {
            app.org().add_compliance_raw_line(record_type, line);
            let record: Value = serde_json::from_str(line).expect("sample line is JSON");
            let event_id = record["event_id"].as_str().expect("event_id");
            want.insert(app.compliance_event_id(event_id));
        }
    }
    app.org().cut_compliance_files();
    let outcome = app.run_once().await;
    assert!(outcome.success(Mode::Once), "{outcome:?}");
    // The simulator's own records of these types travel too, and must obey the policy alike.
    want.extend(app.expected_compliance(&types));
    assert_eq!(app.received().0, want, "every sample arrives");
    let events = app.receiver().events();
    (app, events)
}

fn assert_no_text_and_every_secret_flagged(events: &[Value]) {
    let body = serde_json::to_string(events).expect("json");
    for (_, secret, _) in SECRETS {
        assert!(!body.contains(secret), "{secret} was shipped");
        assert!(!body.contains(&secret[6..]), "part of {secret} was shipped");
    }
    let mut leaks = Vec::new();
    for event in events.iter().filter(|e| e["source"] == "chatgpt.compliance") {
        free_text(event, &mut Vec::new(), &mut leaks);
    }
    assert!(leaks.is_empty(), "free text shipped:\n{}", leaks.join("\n"));
    for (detector, _, fields) in SECRETS {
        let flagged = events
            .iter()
            .flat_map(|e| e["findings"].as_array().into_iter().flatten())
            .filter(|f| {
                f["rule"] == "sensitive_data_in_content"
                    && f["message"].as_str().is_some_and(|m| m.starts_with(detector))
            })
            .count();
        assert_eq!(flagged, *fields, "{detector}: one finding per text field carrying it");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn with_content_hash_no_sample_of_any_type_ships_free_text_or_a_secret() {
    let (_app, events) = run_with_content("hash").await;
    assert_no_text_and_every_secret_flagged(&events);
    let by_id = |suffix: &str| {
        events
            .iter()
            .find(|e| e["id"].as_str().is_some_and(|id| id.ends_with(suffix)))
            .unwrap_or_else(|| panic!("event {suffix}"))
    };
    // Text became digests; structure, client context and tool identity stayed.
    let prompt = by_id("000000000301");
    assert!(prompt["raw"]["event_details"]["prompt_text"]["sha256"].is_string());
    assert_eq!(prompt["raw"]["event_details"]["model"], "gpt-5.1-codex-max");
    let call = by_id("000000000303");
    assert_eq!(call["raw"]["event_details"]["name"], "create_issue");
    assert_eq!(call["raw"]["event_details"]["arguments"]["labels"][0]["length"], 8);
    let request = by_id("000000000201");
    assert_eq!(request["raw"]["input"]["limit"], 25);
    assert_eq!(
        request["raw"]["input"]["_meta"]["openai/userLocation"]["city"],
        "Berlin"
    );
    let agent = by_id("000000000501");
    assert_eq!(
        agent["details"]["event_details"]["agent_fields"]["name"],
        "Finance Close Agent"
    );
    assert!(agent["details"]["event_details"]["agent_fields"]["prompt"]["sha256"].is_string());
    let message = by_id("000000000101");
    assert!(
        message["target"]["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("sha256:")),
        "the conversation title is text: {message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_content_drop_no_sample_of_any_type_ships_free_text_or_a_secret() {
    let (_app, events) = run_with_content("drop").await;
    assert_no_text_and_every_secret_flagged(&events);
    let body = serde_json::to_string(&events).expect("json");
    assert!(!body.contains("\"sha256\""), "drop leaves no digests");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_content_keep_the_text_is_shipped_but_every_secret_is_redacted() {
    let (_app, events) = run_with_content("keep").await;
    let body = serde_json::to_string(&events).expect("json");
    for (_, secret, _) in SECRETS {
        assert!(!body.contains(secret), "{secret} was shipped");
    }
    assert!(body.contains("Run when a period closes"), "keep ships the text");
    assert!(body.contains("[REDACTED:github_token]"));
}
