//! The inventory reconciled against the audit log, end to end: a role changed with no
//! audit event is one `inventory_change_not_in_audit_log` finding (none when the audit event
//! is there), and a key the audit log says was created but no inventory shows is one
//! `audit_event_not_reflected` finding. Both rules run with a zero grace (a rule file
//! replacing the built-in ones, as an operator would retune them), so the next inventory run
//! decides.

use serde_json::{Value, json};
use tempfile::NamedTempFile;

use crate::helpers::TestApp;

const ZERO_GRACE: &str = r#"
[[rule]]
id = "inventory_change_not_in_audit_log"
title = "Inventory changed with no audit-log event"
severity = "medium"
[rule.reconcile]
check = "inventory_changes"
grace = "0s"

[[rule]]
id = "audit_event_not_reflected"
title = "Audit log says an object was created; the inventory never shows it"
severity = "medium"
[rule.reconcile]
check = "audit_creations"
grace = "0s"
"#;

/// Audit logs and inventory together, with the zero-grace rules; the rule file lives as
/// long as the returned handle.
async fn start() -> (TestApp, NamedTempFile) {
    let rules = NamedTempFile::new().expect("rules file");
    std::fs::write(rules.path(), ZERO_GRACE).expect("write rules");
    let app = TestApp::builder()
        .history(0)
        .env("OAI_INGEST__INVENTORY__ENABLED", "true")
        // Every run full: an incremental run reads only what the audit log named, so it
        // cannot see the unaudited change these rules are about.
        .env("OAI_INGEST__INVENTORY__FULL_INTERVAL", "0s")
        .env(
            "OAI_INGEST__GUARDRAILS__RULES_FILE",
            &rules.path().display().to_string(),
        )
        .start()
        .await;
    (app, rules)
}

async fn cycle(app: &TestApp) {
    let outcome = app.run_once().await;
    assert!(outcome.all_delivered, "{outcome:?}");
}

fn findings(app: &TestApp, rule: &str) -> Vec<Value> {
    app.receiver()
        .events()
        .into_iter()
        .filter(|e| e["source"] == "guardrails" && e["type"] == rule)
        .collect()
}

/// A member who is not an owner, to promote.
fn a_reader(app: &TestApp) -> String {
    app.org()
        .users()
        .iter()
        .find(|u| u["role"] != "owner")
        .and_then(|u| u["id"].as_str().map(str::to_string))
        .expect("a non-owner member")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_role_changed_without_an_audit_event_is_reported_exactly_once() {
    let (app, _rules) = start().await;
    cycle(&app).await;
    let user = a_reader(&app);
    assert!(app.org().change_role_unaudited(&user, "owner"));
    cycle(&app).await;
    let change = app
        .receiver()
        .events()
        .into_iter()
        .find(|e| e["type"] == "user.changed" && e["target"]["id"] == user.as_str())
        .expect("the inventory saw the change");
    cycle(&app).await;
    cycle(&app).await;
    let found = findings(&app, "inventory_change_not_in_audit_log");
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0]["details"]["evidence"], json!([change["id"]]));
    assert_eq!(found[0]["details"]["group"]["object_id"], user.as_str());
    assert_eq!(found[0]["details"]["group"]["change"], "changed:role");
    assert!(findings(&app, "audit_event_not_reflected").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_role_changed_with_its_audit_event_is_not_reported() {
    let (app, _rules) = start().await;
    cycle(&app).await;
    let user = a_reader(&app);
    assert!(app.org().change_role(&user, "owner"));
    cycle(&app).await;
    assert!(
        app.receiver()
            .events()
            .iter()
            .any(|e| e["type"] == "user.changed" && e["target"]["id"] == user.as_str()),
        "the inventory saw the change"
    );
    cycle(&app).await;
    cycle(&app).await;
    let found = findings(&app, "inventory_change_not_in_audit_log");
    assert!(found.is_empty(), "{found:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_the_audit_log_says_was_created_but_no_inventory_shows_is_reported_once() {
    let (app, _rules) = start().await;
    let project = app.org().default_project_id();
    let real = app.org().create_key(&project).expect("a real key");
    let ghost = app.org().add_audit_event(
        "api_key.created",
        Some(json!({"id": "key_neverlisted01", "data": {"scopes": ["api.model.request"]}})),
    );
    cycle(&app).await;
    cycle(&app).await;
    cycle(&app).await;
    let found = findings(&app, "audit_event_not_reflected");
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0]["details"]["evidence"], json!([app.audit_event_id(&ghost)]));
    assert_eq!(found[0]["details"]["group"]["object_id"], "key_neverlisted01");
    assert!(
        !found
            .iter()
            .any(|f| f["details"]["group"]["object_id"] == real.as_str()),
        "a key the inventory lists is reflected"
    );
}
