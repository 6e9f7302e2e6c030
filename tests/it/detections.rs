//! The classic attack scenarios, crafted on the public record shapes and sent through the
//! real pipeline (simulated Compliance Logs Platform and Admin API, the receiver): each one
//! arrives flagged, with its ATT&CK ids, and the activity just short of it does not.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use openai_audit_ingest::streams::Mode;
use serde_json::{Value, json};

use crate::helpers::TestApp;

const TYPES: &[&str] = &["AUTH_LOG", "AUDIT_LOG", "CODEX_LOG", "CUSTOM_AGENTS_LOG"];
const WORKSPACE: &str = "7c0f6a52-3e1b-4d7a-9b2c-5a4e8f1d2c3b";
const OPENAI_KEY: &str = "sk-proj-Xy7Lm2Qw9Er4Ty6Ui8Op1As3Df5Gh7Jk9Lz";
const AWS_KEY: &str = "AKIAZ7QW3ERT5YU2IOP4";
const GITHUB_TOKEN: &str = "ghp_R4nD0mT0k3nV4lu3F0rT3st1ngPurp0s3sXYZ";

/// Crafted compliance records, queued in the simulated platform, by event id.
struct Crafted<'a> {
    app: &'a TestApp,
    start: DateTime<Utc>,
    count: usize,
}

impl Crafted<'_> {
    /// Queues a record of `ty` at `minutes` after the start, by `who`, with `fields` on top of
    /// the envelope; returns its event id.
    fn add(&mut self, ty: &str, minutes: i64, who: &str, fields: Value) -> String {
        self.count += 1;
        let event_id = format!("crafted-{:04}", self.count);
        let mut record = json!({
            "event_id": event_id,
            "type": ty,
            "timestamp": (self.start + Duration::minutes(minutes)).to_rfc3339(),
            "principal": {"id": WORKSPACE, "type": "CHATGPT_WORKSPACE"},
            "actor": {"type": "ACCOUNT_USER", "user_id": format!("user-{who}"), "user_email": format!("{who}@example.net")},
        });
        if let (Some(r), Value::Object(extra)) = (record.as_object_mut(), fields) {
            r.extend(extra);
        }
        self.app
            .org()
            .add_compliance_raw_line(ty, &serde_json::to_string(&record).expect("json"));
        event_id
    }
}

fn from(ip: &str, agent: &str) -> Value {
    json!({"client_ip": ip, "client_user_agent": agent,
           "client_ip_details": {"country": "DE", "city": "Berlin", "latitude": "52.52437", "longitude": "13.41053"}})
}

fn sign_in(action: &str, ip: &str, agent: &str) -> Value {
    json!({"request_metadata": from(ip, agent), "action_data": {"action": action, "role": "standard-user"}})
}

fn admin_action(action: &str, data: Value) -> Value {
    json!({"action": action, "action_result": "SUCCESS", "action_privilege": "ADMIN",
           "request_metadata": from("198.51.100.23", "Mozilla/5.0 (X11; Linux x86_64) Chrome/146.0"),
           "action_data": data})
}

fn rules_of(event: &Value) -> Vec<String> {
    event["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["rule"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_classic_workspace_attacks_are_each_flagged_and_their_near_misses_are_not() {
    let app = TestApp::builder().history(0).compliance(TYPES).start().await;
    let mut crafted = Crafted {
        app: &app,
        start: Utc::now() - Duration::hours(3),
        count: 0,
    };
    let browser = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

    // 1. A scripted sign-in, beside a browser on Ubuntu.
    let scripted = crafted.add(
        "AUTH_LOG",
        0,
        "dana",
        sign_in("login_success", "198.51.100.23", "python-requests/2.32.3"),
    );
    let ubuntu = crafted.add(
        "AUTH_LOG",
        1,
        "dana",
        sign_in("login_success", "198.51.100.23", browser),
    );
    // 2. Password guessing from one address, then the right password.
    let mut guesses = Vec::new();
    for i in 0..10 {
        guesses.push(crafted.add(
            "AUTH_LOG",
            10 + i,
            "eli",
            sign_in("login_failed", "203.0.113.66", browser),
        ));
    }
    let broke_in = crafted.add("AUTH_LOG", 21, "eli", sign_in("login_success", "203.0.113.66", browser));
    // 3. 25 conversations deleted within an hour.
    let mut deletions = Vec::new();
    for i in 0..25 {
        deletions.push(crafted.add(
            "AUDIT_LOG",
            30 + i * 2,
            "fay",
            admin_action("CONVERSATION_DELETE", json!({"conversation_id": format!("conv-{i}")})),
        ));
    }
    // 4. A person listing the compliance log files, and a collector's API key doing the same.
    let person_lists = crafted.add(
        "AUDIT_LOG",
        90,
        "dana",
        admin_action("LIST_WORKSPACE_LOG_FILES", json!({"limit": "100"})),
    );
    let mut collector = admin_action("LIST_WORKSPACE_LOG_FILES", json!({"limit": "100"}));
    collector["actor"] = json!({"type": "API_KEY", "redacted_id": "sk-...RxIA"});
    collector["request_metadata"]["client_user_agent"] = json!("python-requests/2.34.2");
    let collector_lists = crafted.add("AUDIT_LOG", 91, "dana", collector);
    // 5. An owner role granted in the workspace, and a manager one.
    let owner = crafted.add(
        "AUDIT_LOG",
        92,
        "dana",
        admin_action(
            "USER_ROLE_UPDATED",
            json!({"user_id": "user-gus", "new_role": "account-owner", "previous_role": "standard-user"}),
        ),
    );
    let manager = crafted.add(
        "AUDIT_LOG",
        93,
        "dana",
        admin_action(
            "USER_ROLE_UPDATED",
            json!({"user_id": "user-hal", "new_role": "manager"}),
        ),
    );
    // 6. Secrets in Codex text and in custom-agent text.
    let codex_prompt = crafted.add(
        "CODEX_LOG",
        100,
        "dana",
        json!({"event_type": "PROMPT_RESPONSE_RECEIVED", "client_id": "CODEX_CLI", "workspace_id": WORKSPACE,
               "event_details": {"detail_type": "PROMPT_RESPONSE_RECEIVED", "session_id": "s-1", "model": "gpt-5.1-codex-max",
                                 "prompt_text": format!("Add the deploy key {GITHUB_TOKEN} to the CI settings"),
                                 "response_text": "I moved the token into the repository secrets."}}),
    );
    let codex_tool = crafted.add(
        "CODEX_LOG",
        101,
        "dana",
        json!({"event_type": "TOOL_CALL_COMPLETED", "client_id": "CODEX_IDE_VSCODE", "workspace_id": WORKSPACE,
               "event_details": {"detail_type": "TOOL_CALL_COMPLETED", "tool_name": "shell", "tool_type": "local_shell",
                                 "tool_input": format!("export AWS_ACCESS_KEY_ID={AWS_KEY} && make deploy"), "status": "success"}}),
    );
    let agent_prompt = crafted.add(
        "CUSTOM_AGENTS_LOG",
        102,
        "dana",
        json!({"event_type": "AGENT_CREATED", "client_id": "AGENT_BUILDER_WEB", "workspace_id": WORKSPACE,
               "event_details": {"detail_type": "AGENT_CREATED", "agent_id": "agent-77", "version_id": "v1",
                                 "agent_fields": {"name": "Finance Close Agent",
                                                  "prompt": format!("You reconcile ledgers. Use the API key {OPENAI_KEY}.")}}}),
    );
    let agent_message = crafted.add(
        "CUSTOM_AGENTS_LOG",
        103,
        "dana",
        json!({"event_type": "AGENT_RUN_CREATED", "client_id": "CHATGPT_WEB", "workspace_id": WORKSPACE,
               "event_details": {"detail_type": "AGENT_RUN_CREATED", "agent_id": "agent-77", "run_id": "run-1",
                                 "invoker": {"type": "chatgpt", "user_message_text": format!("the AWS key is {AWS_KEY}")}}}),
    );
    app.org().cut_compliance_files();

    let outcome = app.run_once().await;
    assert!(outcome.success(Mode::Once), "{outcome:?}");
    let events = app.receiver().events();
    let by_id: HashMap<String, &Value> = events
        .iter()
        .filter_map(|e| e["id"].as_str().map(|id| (id.to_string(), e)))
        .collect();
    let rules = |event_id: &str| {
        let id = app.compliance_event_id(event_id);
        rules_of(by_id.get(&id).unwrap_or_else(|| panic!("{id} was not delivered")))
    };
    let flagged = |event_id: &str, rule: &str| {
        let got = rules(event_id);
        assert!(
            got.iter().any(|r| r == rule),
            "{event_id}: expected {rule}, got {got:?}"
        );
    };
    let finding_events: Vec<&Value> = events.iter().filter(|e| e["source"] == "guardrails").collect();
    let finding_event = |rule: &str| {
        finding_events
            .iter()
            .find(|e| e["type"] == rule)
            .copied()
            .unwrap_or_else(|| {
                panic!(
                    "no {rule} finding event among {:?}",
                    finding_events.iter().map(|e| &e["type"]).collect::<Vec<_>>()
                )
            })
    };

    flagged(&scripted, "scripted_sign_in");
    assert!(rules(&ubuntu).is_empty(), "a browser on Ubuntu is no script");

    flagged(guesses.last().expect("guesses"), "password_guessing_from_one_ip");
    flagged(&broke_in, "brute_force_then_success");
    let guessing = finding_event("password_guessing_from_one_ip");
    assert_eq!(guessing["details"]["evidence"].as_array().map(Vec::len), Some(10));
    assert_eq!(guessing["details"]["attack"], json!(["T1110.001"]));
    finding_event("brute_force_then_success");

    let mass = finding_event("mass_conversation_deletion");
    assert_eq!(mass["details"]["evidence"].as_array().map(Vec::len), Some(20));
    assert_eq!(mass["details"]["group"]["user.id"], "user-fay");
    flagged(&deletions[19], "mass_conversation_deletion");
    assert!(
        rules(&deletions[18]).is_empty(),
        "nineteen deletions are not yet mass deletion"
    );

    flagged(&person_lists, "compliance_log_files_accessed");
    assert!(
        rules(&collector_lists).is_empty(),
        "a collector's API key reading the files stays silent"
    );

    flagged(&owner, "privileged_role_granted");
    let owner_event = by_id[&app.compliance_event_id(&owner)];
    let finding = owner_event["findings"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["rule"] == "privileged_role_granted"))
        .expect("finding");
    assert_eq!(finding["attack"], json!(["T1098.003", "T1078"]));
    assert!(rules(&manager).is_empty());

    for secret_holder in [&codex_prompt, &codex_tool, &agent_prompt, &agent_message] {
        flagged(secret_holder, "sensitive_data_in_content");
    }
    let body = serde_json::to_string(&events).expect("json");
    for secret in [OPENAI_KEY, AWS_KEY, GITHUB_TOKEN] {
        assert!(!body.contains(secret), "{secret} was shipped");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_api_role_assignments_and_key_scopes_are_flagged_on_the_spec_shapes() {
    let app = TestApp::builder().history(0).start().await;
    let org = app.org();
    let owner = org.add_audit_event(
        "role.assignment.created",
        Some(
            json!({"id": "role_assignment_role-api-organization-owner__api-organization__org-abc123_user-newadmin456",
                    "principal_id": "user-newadmin456", "principal_type": "user",
                    "resource_id": "org-abc123", "resource_type": "api.organization"}),
        ),
    );
    let reader = org.add_audit_event(
        "role.assignment.created",
        Some(
            json!({"id": "role_assignment_role-api-organization-reader__api-organization__org-abc123_user-x",
                    "principal_id": "user-x", "principal_type": "user"}),
        ),
    );
    let raised = org.add_audit_event(
        "api_key.updated",
        Some(json!({"id": "key_1", "changes_requested": {"scopes": ["api.model.request", "api_keys:write"]}})),
    );
    let renamed = org.add_audit_event(
        "api_key.updated",
        Some(json!({"id": "key_2", "changes_requested": {"name": "ci"}})),
    );
    let opened = org.add_audit_event(
        "ip_allowlist.updated",
        Some(json!({"id": "ipal_1", "allowed_ips": ["203.0.113.0/24", "0.0.0.0/0"]})),
    );

    assert!(app.run_once().await.all_delivered);
    let events = app.receiver().events();
    let rules = |raw_id: &str| {
        let id = app.audit_event_id(raw_id);
        rules_of(
            events
                .iter()
                .find(|e| e["id"] == id.as_str())
                .unwrap_or_else(|| panic!("{id} was not delivered")),
        )
    };
    assert_eq!(rules(&owner), ["privileged_role_granted"]);
    let owner_event = events
        .iter()
        .find(|e| e["id"] == app.audit_event_id(&owner).as_str())
        .expect("delivered");
    assert_eq!(owner_event["details"]["role_name"], "api-organization-owner");
    assert!(rules(&reader).is_empty());
    assert_eq!(rules(&raised), ["high_scope_api_key_created"]);
    assert!(rules(&renamed).is_empty());
    assert_eq!(rules(&opened), ["ip_allowlist_widened"]);
}
