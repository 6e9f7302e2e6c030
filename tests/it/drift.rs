//! Drift made visible: a type no mapping table knows is delivered, counted, warned about
//! once per process and reported as one `unknown_event_type` finding that a restart does not
//! repeat; fields our wire types do not know travel in `raw` and `details`.

use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::helpers::binary::describe;

fn of_type<'a>(events: &'a [Value], ty: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == ty).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invented_type_is_delivered_counted_warned_once_and_one_finding_that_a_restart_does_not_repeat() {
    let app = TestApp::builder().history(0).start().await;
    let org = app.org();
    let first = org.add_audit_event(
        "widget.frobnicated",
        Some(json!({"id": "widget_1", "spin": "left", "gears": {"teeth": 12}})),
    );
    let second = org.add_audit_event("widget.frobnicated", Some(json!({"id": "widget_2"})));

    let (outcome, metrics) = app.run_once_with_metrics().await;
    assert!(outcome.all_delivered, "{outcome:?}");
    let events = app.receiver().events();
    let widgets = of_type(&events, "widget.frobnicated");
    assert_eq!(widgets.len(), 2, "both delivered");
    for w in &widgets {
        assert_eq!(
            (w["category"].as_str(), w["action"].as_str()),
            (Some("other"), Some("unknown"))
        );
        assert_eq!(w["details"]["unmapped_type"], true);
    }
    let text = metrics.render();
    assert!(
        text.lines()
            .any(|l| l == "oai_ingest_unknown_event_types_total{stream=\"audit_logs\",type=\"widget.frobnicated\"} 2"),
        "counted per type:\n{}",
        text.lines()
            .filter(|l| l.contains("unknown_event"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let findings = of_type(&events, "unknown_event_type");
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0]["details"]["value"]["value"], "widget.frobnicated");
    // The evidence is the earliest of the type (the two share a second: either).
    let evidence = &findings[0]["details"]["evidence"];
    assert!(
        [&first, &second]
            .iter()
            .any(|raw| *evidence == json!([app.audit_event_id(raw)])),
        "{evidence}"
    );
    assert_eq!(findings[0]["findings"][0]["severity"], "low");

    // A real restart of the daemon (the binary, on the same state directory) meets the type
    // again, twice: it warns once, with an example id, and reports nothing new.
    org.add_audit_event("widget.frobnicated", Some(json!({"id": "widget_3"})));
    org.add_audit_event("widget.frobnicated", Some(json!({"id": "widget_4"})));
    let out = app.run_binary(&["once"], &[("OAI_INGEST__LOG__FORMAT", "json")]).await;
    assert!(out.status.success(), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let warnings: Vec<Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["event_type"] == "widget.frobnicated")
        .collect();
    assert_eq!(warnings.len(), 1, "{}", describe(&out));
    assert_eq!(warnings[0]["level"], "WARN");
    let example = warnings[0]["example_event_id"].as_str().unwrap_or_default();
    assert!(example.starts_with("openai.audit_log:"), "{}", warnings[0]);
    let events = app.receiver().events();
    assert_eq!(
        of_type(&events, "widget.frobnicated").len(),
        4,
        "the new ones arrived too"
    );
    assert_eq!(of_type(&events, "unknown_event_type").len(), 1, "not reported again");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_known_audit_log_type_keeps_fields_our_wire_types_do_not_know_in_raw_and_details() {
    let app = TestApp::builder().history(0).start().await;
    let raw_id = app.org().add_audit_event(
        "api_key.created",
        Some(
            json!({"id": "key_drift", "data": {"scopes": ["api.model.request"], "quota_hint": 7},
                    "issued_via": {"channel": "console", "beta": true}}),
        ),
    );
    let outcome = app.run_once().await;
    assert!(outcome.all_delivered, "{outcome:?}");
    let id = app.audit_event_id(&raw_id);
    let events = app.receiver().events();
    let event = events.iter().find(|e| e["id"] == id.as_str()).expect("delivered");
    assert_eq!(event["category"], "credential", "still mapped");
    assert_eq!(event["raw"]["api_key.created"]["issued_via"]["channel"], "console");
    assert_eq!(
        event["details"]["issued_via"],
        json!({"channel": "console", "beta": true})
    );
    assert_eq!(event["details"]["data"]["quota_hint"], 7);
    assert!(event["details"].get("unmapped_type").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_known_compliance_type_keeps_fields_our_wire_types_do_not_know_in_raw_and_details() {
    let app = TestApp::builder().compliance(&["AUDIT_LOG"]).history(0).start().await;
    let record = json!({
        "event_id": "7a7a7a7a-0000-4000-8000-000000000001",
        "type": "AUDIT_LOG",
        "timestamp": "2026-11-30T10:00:00.000000Z",
        "principal": {"id": app.sim().workspace_id(), "type": "CHATGPT_WORKSPACE"},
        "actor": {"type": "ACCOUNT_USER", "user_id": "user-1", "user_email": "ann@example.com"},
        "action": "USER_ROLE_UPDATED",
        "action_result": "SUCCESS",
        "action_data": {"new_role": "member", "approval_ticket": "CHG-42"},
        "residency_hint": {"region": "eu"}
    });
    app.org().add_compliance_raw_line("AUDIT_LOG", &record.to_string());
    app.org().cut_compliance_files();
    let outcome = app.run_once().await;
    assert!(outcome.all_delivered, "{outcome:?}");
    let events = app.receiver().events();
    let event = events
        .iter()
        .find(|e| e["raw"]["event_id"] == record["event_id"])
        .expect("delivered");
    assert_ne!(event["category"], "other", "still mapped");
    assert_eq!(event["raw"]["residency_hint"]["region"], "eu");
    assert_eq!(event["raw"]["action_data"]["approval_ticket"], "CHG-42");
    assert_eq!(event["details"]["action_data"]["approval_ticket"], "CHG-42");
}
