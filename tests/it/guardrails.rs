//! Guardrails end to end: crafted activity in the simulated organization goes through the
//! real pipeline and arrives at the receiver flagged, with finding events for the stateful
//! rules, and the rule state is a checkpoint that survives a restart.

use serde_json::{Value, json};

use crate::helpers::TestApp;

fn findings_of(event: &Value) -> Vec<String> {
    event["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["rule"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn crafted_risky_activity_arrives_flagged_and_stateful_rules_emit_finding_events() {
    let app = TestApp::builder().history(40).start().await;
    let org = app.org();
    let crafted = [
        (org.add_audit_event("scim.disabled", None), "scim_disabled"),
        (
            org.add_audit_event("ip_allowlist.deleted", Some(json!({"id": "ipal_1"}))),
            "ip_allowlist_removed",
        ),
        (
            org.add_audit_event("tenant.admin_api_key.created", None),
            "tenant_admin_api_key_created",
        ),
        (
            org.add_audit_event(
                "api_key.created",
                Some(json!({"id": "key_all", "data": {"scopes": ["api.all"]}})),
            ),
            "high_scope_api_key_created",
        ),
    ];
    let ordinary = org.add_audit_event(
        "api_key.created",
        Some(json!({"id": "key_small", "data": {"scopes": ["api.model.request"]}})),
    );

    let outcome = app.run_once().await;
    assert!(outcome.all_delivered, "{outcome:?}");
    let events = app.receiver().events();
    let by_id = |raw_id: &str| {
        let id = app.audit_event_id(raw_id);
        events
            .iter()
            .find(|e| e["id"] == id.as_str())
            .cloned()
            .unwrap_or_else(|| panic!("{id} was not delivered"))
    };
    for (raw_id, rule) in &crafted {
        let rules = findings_of(&by_id(raw_id));
        assert!(rules.contains(&rule.to_string()), "{raw_id}: {rules:?}");
    }
    assert!(findings_of(&by_id(&ordinary)).is_empty());

    // The simulated history holds a burst of failed sign-ins followed by a success.
    let finding_events: Vec<&Value> = events.iter().filter(|e| e["source"] == "guardrails").collect();
    let rules: Vec<&str> = finding_events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert!(rules.contains(&"brute_force_then_success"), "{rules:?}");
    assert!(rules.contains(&"credential_stuffing"), "{rules:?}");
    for f in &finding_events {
        assert_eq!(f["category"], "finding");
        let evidence = f["details"]["evidence"].as_array().expect("evidence");
        assert!(!evidence.is_empty());
        for id in evidence {
            assert!(events.iter().any(|e| &e["id"] == id), "evidence {id} was delivered too");
        }
    }

    // The rule state is saved once its finding events are acknowledged; a second run resumes
    // from it and does not report the same sequences again.
    let saved = app.checkpoint("guardrails").expect("guardrails state saved");
    assert!(saved["processed"].as_u64().unwrap_or(0) > 0);
    let before = app.receiver().events().len();
    org.add_audit_event("scim.disabled", None);
    let outcome = app.run_once().await;
    assert!(outcome.all_delivered);
    let new: Vec<Value> = app.receiver().events().into_iter().skip(before).collect();
    assert!(
        new.iter()
            .any(|e| findings_of(e).contains(&"scim_disabled".to_string())),
        "the new event is checked after the restart"
    );
    assert!(
        !new.iter().any(|e| e["type"] == "brute_force_then_success"),
        "a restart does not repeat a reported sequence"
    );
}

#[tokio::test]
async fn disabled_rules_stay_silent() {
    let app = TestApp::builder()
        .history(0)
        .env("OAI_INGEST__GUARDRAILS__DISABLED_RULES", "scim_disabled")
        .start()
        .await;
    let id = app.org().add_audit_event("scim.disabled", None);
    assert!(app.run_once().await.all_delivered);
    let wanted = app.audit_event_id(&id);
    let event = app
        .receiver()
        .events()
        .into_iter()
        .find(|e| e["id"] == wanted.as_str())
        .expect("delivered");
    assert!(findings_of(&event).is_empty());
}
