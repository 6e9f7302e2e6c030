//! The per-event rules of the built-in pack over ChatGPT workspace records: workspace
//! administration, compliance log files, sharing, apps, Codex, custom agents, and secrets in
//! any text. Records follow the public sample shapes and go through the real normalizer.

use serde_json::json;

use super::*;

/// A workspace admin action (`AUDIT_LOG`) by a person, with its result.
fn action(n: u32, action: &str, result: &str, action_data: serde_json::Value) -> Event {
    record(
        "AUDIT_LOG",
        n,
        json!({"action": action, "action_result": result, "action_privilege": "ADMIN", "action_data": action_data}),
    )
}

fn codex(n: u32, event_type: &str, details: serde_json::Value) -> Event {
    let mut details = details;
    details["detail_type"] = json!(event_type);
    record(
        "CODEX_LOG",
        n,
        json!({"event_type": event_type, "client_id": "CODEX_CLI", "workspace_id": "ws-1", "event_details": details}),
    )
}

fn agents(n: u32, event_type: &str, details: serde_json::Value) -> Event {
    let mut details = details;
    details["detail_type"] = json!(event_type);
    record(
        "CUSTOM_AGENTS_LOG",
        n,
        json!({"event_type": event_type, "client_id": "AGENT_BUILDER_WEB", "workspace_id": "ws-1", "event_details": details}),
    )
}

#[test]
fn a_person_reading_or_deleting_compliance_log_files_is_flagged_but_a_collectors_api_key_is_not() {
    let listed = action(1, "LIST_WORKSPACE_LOG_FILES", "SUCCESS", json!({"limit": "100"}));
    let downloaded = action(
        2,
        "DOWNLOAD_WORKSPACE_LOG_FILE",
        "SUCCESS",
        json!({"log_file_id": "lf-1"}),
    );
    let deleted = action(
        3,
        "DELETE_WORKSPACE_LOG_FILE",
        "SUCCESS",
        json!({"log_file_id": "lf-1"}),
    );
    assert_eq!(
        fresh(vec![listed, downloaded, deleted]),
        [
            "compliance_log_files_accessed",
            "compliance_log_files_accessed",
            "compliance_log_file_deleted"
        ]
    );
    // Elastic's own test record: a collector listing the files with its API key.
    let collector = record(
        "AUDIT_LOG",
        4,
        json!({"action": "LIST_WORKSPACE_LOG_FILES", "action_result": "SUCCESS", "action_privilege": "ADMIN",
               "actor": {"type": "API_KEY", "redacted_id": "sk-...RxIA"},
               "request_metadata": {"client_ip": "203.0.113.9", "client_user_agent": "python-requests/2.34.2",
                                    "destination_hostname": "api.chatgpt.com"},
               "action_data": {"limit": "100", "event_type": ["AUTH_LOG"]}}),
    );
    assert!(fresh(vec![collector]).is_empty());
}

#[test]
fn sharing_a_conversation_gpt_skill_or_project_is_flagged_but_a_reshare_or_a_removal_is_not() {
    let shares = vec![
        action(
            1,
            "CONVERSATION_SHARE",
            "SUCCESS",
            json!({"conversation_id": "c-1", "shared_conversation_id": "s-1", "already_exists": false}),
        ),
        action(2, "GPT_PUBLISH", "SUCCESS", json!({"gpt_id": "g-1"})),
        action(
            3,
            "UPDATE_SHARING",
            "SUCCESS",
            json!({"gpt_id": "g-1", "shared_to": {"recipient_type": "workspace"}}),
        ),
        action(
            4,
            "SKILL_SHARE",
            "SUCCESS",
            json!({"skill_id": "sk-1", "workspace_access_state": "enabled"}),
        ),
        action(
            5,
            "PROJECT_UPDATE_SHARING",
            "SUCCESS",
            json!({"project_id": "p-1", "requested_access_updates": [{"recipient_type": "user", "user_id": "user-x"}]}),
        ),
    ];
    assert_eq!(
        fresh(shares),
        [
            "conversation_shared",
            "resource_sharing_widened",
            "resource_sharing_widened",
            "resource_sharing_widened",
            "resource_sharing_widened"
        ]
    );
    let near = vec![
        action(
            6,
            "CONVERSATION_SHARE",
            "SUCCESS",
            json!({"conversation_id": "c-1", "already_exists": true}),
        ),
        action(
            7,
            "PROJECT_UPDATE_SHARING",
            "SUCCESS",
            json!({"project_id": "p-1", "requested_access_removals": [{"recipient_type": "user", "user_id": "user-x"}]}),
        ),
        action(8, "GPT_PUBLISH", "BLOCKED", json!({"gpt_id": "g-2"})),
    ];
    assert!(fresh(near).is_empty());
}

#[test]
fn a_new_domain_a_toggled_feature_and_a_deleted_memory_are_flagged_but_blocked_attempts_are_not() {
    let hits = vec![
        action(
            1,
            "DOMAIN_CREATE",
            "SUCCESS",
            json!({"domain_id": "d-1", "hostname": "corp-login.example"}),
        ),
        action(
            2,
            "WORKSPACE_TOGGLE_FEATURE",
            "SUCCESS",
            json!({"feature": "gpt_sharing", "value": true}),
        ),
        action(
            3,
            "DELETE_MEMORY",
            "SUCCESS",
            json!({"memory_id": "mem-1", "auth_user_id": "user-dana"}),
        ),
    ];
    assert_eq!(
        fresh(hits),
        [
            "workspace_domain_created",
            "workspace_feature_toggled",
            "memory_deleted"
        ]
    );
    let blocked = vec![
        action(4, "DOMAIN_CREATE", "BLOCKED", json!({"domain_id": "d-2"})),
        action(
            5,
            "WORKSPACE_TOGGLE_FEATURE",
            "BLOCKED",
            json!({"feature": "gpt_sharing", "value": true}),
        ),
        action(6, "DELETE_MEMORY", "ERROR", json!({"memory_id": "mem-2"})),
    ];
    assert!(fresh(blocked).is_empty());
}

#[test]
fn an_owner_or_admin_grant_in_the_workspace_is_flagged_and_a_manager_one_is_not() {
    let owner = action(
        1,
        "USER_ROLE_UPDATED",
        "SUCCESS",
        json!({"user_id": "user-x", "new_role": "account-owner", "previous_role": "standard-user"}),
    );
    let admin = action(
        2,
        "USER_ROLE_UPDATED",
        "SUCCESS",
        json!({"user_id": "user-y", "role": "account-admin"}),
    );
    let invited = action(
        3,
        "INVITE_SEND",
        "SUCCESS",
        json!({"email_addresses": ["new@example.net"], "role": "account-admin"}),
    );
    assert_eq!(fresh(vec![owner, admin, invited]), ["privileged_role_granted"; 3]);
    let manager = action(
        4,
        "USER_ROLE_UPDATED",
        "SUCCESS",
        json!({"user_id": "user-z", "new_role": "manager"}),
    );
    let blocked_invite = action(
        5,
        "INVITE_SEND",
        "BLOCKED",
        json!({"email_address": "x@example.net", "role": "account-admin"}),
    );
    let user_invite = action(
        6,
        "INVITE_SEND",
        "SUCCESS",
        json!({"email_address": "x@example.net", "role": "standard-user"}),
    );
    assert!(fresh(vec![manager, blocked_invite, user_invite]).is_empty());
}

#[test]
fn a_workspace_allowlist_opened_to_everyone_is_flagged_but_a_blocked_or_narrow_one_is_not() {
    let open = action(
        1,
        "WORKSPACE_SET_API_IP_ALLOWLIST",
        "SUCCESS",
        json!({"allowed_ips": ["0.0.0.0/0"]}),
    );
    assert_eq!(fresh(vec![open]), ["ip_allowlist_widened"]);
    let blocked = action(
        2,
        "WORKSPACE_SET_API_IP_ALLOWLIST",
        "BLOCKED",
        json!({"allowed_ips": ["0.0.0.0/0"]}),
    );
    let narrow = action(
        3,
        "WORKSPACE_SET_CHATGPT_IP_ALLOWLIST",
        "SUCCESS",
        json!({"allowed_ips": ["203.0.113.0/24"]}),
    );
    assert!(fresh(vec![blocked, narrow]).is_empty());
}

#[test]
fn a_codex_access_token_is_flagged_but_a_sign_in_token_is_not() {
    let token = codex(
        1,
        "ACCESS_TOKEN_CREATED",
        json!({"access_token_id": "cat-1", "access_token_name": "release-bot", "created_by_user_id": "user-dana"}),
    );
    assert_eq!(fresh(vec![token]), ["codex_access_token_created"]);
    let sso = record(
        "AUTH_LOG",
        2,
        json!({"action_data": {"action": "token_issued"},
               "request_metadata": {"client_ip": "198.51.100.23", "client_user_agent": "openid-client/5.4.0"}}),
    );
    assert!(fresh(vec![sso]).is_empty());
}

#[test]
fn linking_an_uncommon_app_is_flagged_but_a_common_one_or_an_unlink_is_not() {
    let link = |n: u32, app: serde_json::Value, what: &str| {
        record(
            "APP_AUTH_LOG",
            n,
            json!({"app_id": app, "link_id": "link-1", "action": what}),
        )
    };
    assert_eq!(
        fresh(vec![link(1, json!("asdk_app_5e6f7a8b9c0d1e2f3a4b"), "link")]),
        ["app_oauth_linked"]
    );
    let common = link(2, json!("connector_5f3c8c41a1e54ad7a76272c89e2554fa"), "link");
    let unlink = link(3, json!(null), "unlink");
    assert!(fresh(vec![common, unlink]).is_empty());
}

#[test]
fn publishing_an_agent_or_changing_its_trigger_is_flagged_but_running_it_or_deleting_a_trigger_is_not() {
    let published = agents(
        1,
        "AGENT_PUBLISHED",
        json!({"agent_id": "agent-77", "publish_type": "changes", "agent_fields": {"store_visible": true}}),
    );
    let trigger = agents(
        2,
        "TRIGGER_UPDATED",
        json!({"agent_id": "agent-77", "trigger_id": "t-5", "trigger_type": "connector",
                                                       "trigger_fields": {"required_actions": ["read", "write"]}}),
    );
    let got = fresh(vec![published, trigger]);
    assert_eq!(got, ["custom_agent_published", "custom_agent_trigger_changed"]);
    let run = agents(3, "AGENT_RUN_CREATED", json!({"agent_id": "agent-77", "run_id": "r-1"}));
    let removed = agents(
        4,
        "TRIGGER_DELETED",
        json!({"agent_id": "agent-77", "trigger_id": "t-5"}),
    );
    assert!(fresh(vec![run, removed]).is_empty());
}

#[test]
fn an_agent_event_names_the_user_who_delegated_to_the_agent() {
    let mut e = engine();
    let mut by_agent = record(
        "CUSTOM_AGENTS_LOG",
        1,
        json!({"event_type": "AGENT_UPDATED",
               "actor": {"type": "AGENT", "id": "agent-harness-77", "name": "Finance Close Agent", "product_id": "agent-77",
                         "agent_runtime": {"id": "rt-1", "delegator": {"type": "ACCOUNT_USER", "user_id": "user-dana", "user_email": "dana@example.net"}}},
               "event_details": {"detail_type": "AGENT_UPDATED", "agent_id": "agent-77"}}),
    );
    e.inspect(&mut by_agent);
    let finding = by_agent.findings.first().expect("finding");
    assert_eq!(finding.rule, "custom_agent_published");
    assert!(
        finding
            .message
            .starts_with("dana@example.net changed custom agent agent-77"),
        "{}",
        finding.message
    );
    assert_eq!(finding.attack, ["T1543"]);
}

#[test]
fn weakening_codex_security_scanning_is_flagged_but_adding_a_scan_is_not() {
    let scan = |n: u32, event_type: &str| {
        record(
            "CODEX_SECURITY_LOG",
            n,
            json!({"event_type": event_type, "client_id": "CODEX_WEB", "workspace_id": "ws-1",
                   "event_details": {"detail_type": event_type, "scan_configuration_id": "scfg-88",
                                     "scan_configuration_fields": {"scan_type": "secrets", "state": "paused"}}}),
        )
    };
    assert_eq!(
        fresh(vec![
            scan(1, "SCAN_CONFIGURATION_UPDATED"),
            scan(2, "SCAN_CONFIGURATION_DELETED")
        ]),
        ["codex_security_scan_changed"; 2]
    );
    assert!(fresh(vec![scan(3, "SCAN_CONFIGURATION_CREATED")]).is_empty());
}

#[test]
fn an_email_sent_through_the_gmail_connector_is_flagged_but_a_search_is_not() {
    let gmail = |n: u32, input: serde_json::Value| {
        record(
            "APP_LOG",
            n,
            json!({"app_id": "asdk_app_gmail", "app_name": "Gmail", "app_type": "SERVICE", "log_type": "request", "input": input}),
        )
    };
    assert_eq!(
        fresh(vec![gmail(
            1,
            json!({"to": ["outside@example.org"], "subject": "numbers", "body": "attached"})
        )]),
        ["gmail_message_sent_via_connector"]
    );
    assert!(fresh(vec![gmail(2, json!({"query": "from:cfo has:attachment"}))]).is_empty());
}

#[test]
fn secrets_in_codex_prompts_tool_input_and_mcp_arguments_are_flagged_and_redacted() {
    let key = "sk-proj-Xy7Lm2Qw9Er4Ty6Ui8Op1As3Df5Gh7Jk9Lz";
    let github = "ghp_R4nD0mT0k3nV4lu3F0rT3st1ngPurp0s3sXYZ";
    let aws = "AKIAZ7QW3ERT5YU2IOP4";
    let cases = [
        (
            codex(
                1,
                "PROMPT_RESPONSE_RECEIVED",
                json!({"prompt_text": format!("Add the deploy key {github} to CI"), "response_text": "done"}),
            ),
            "github_token",
            "raw.event_details.prompt_text",
        ),
        (
            codex(
                2,
                "TOOL_CALL_COMPLETED",
                json!({"tool_name": "shell", "tool_input": format!("export AWS_ACCESS_KEY_ID={aws} && make deploy")}),
            ),
            "aws_access_key_id",
            "raw.event_details.tool_input",
        ),
        (
            codex(
                3,
                "APP_MCP_CALL",
                json!({"name": "create_issue", "arguments": {"body": format!("token {key} was pasted")}, "tool_meta": {"connector_id": "conn-1"}}),
            ),
            "openai_api_key",
            "raw.event_details.arguments.body",
        ),
    ];
    for (mut event, detector, at) in cases {
        let mut e = engine();
        e.inspect(&mut event);
        let secrets: Vec<&crate::normalize::Finding> = event
            .findings
            .iter()
            .filter(|f| f.rule == "sensitive_data_in_content")
            .collect();
        assert_eq!(secrets.len(), 1, "{:?}", event.findings);
        assert!(
            secrets[0].message.starts_with(&format!("{detector} detected at {at}[")),
            "{}",
            secrets[0].message
        );
        let shipped = serde_json::to_string(&event).expect("json");
        for secret in [key, github, aws] {
            assert!(!shipped.contains(secret), "{shipped}");
        }
    }
    let clean = codex(
        4,
        "PROMPT_RESPONSE_RECEIVED",
        json!({"prompt_text": "Use AKIAIOSFODNN7EXAMPLE in the docs", "response_text": "ok"}),
    );
    assert!(
        fresh(vec![clean]).is_empty(),
        "AWS's documented example key is nobody's secret"
    );
}

#[test]
fn secrets_in_agent_prompts_user_messages_and_trigger_instructions_are_flagged() {
    let key = "sk-proj-Xy7Lm2Qw9Er4Ty6Ui8Op1As3Df5Gh7Jk9Lz";
    let aws = "AKIAZ7QW3ERT5YU2IOP4";
    let cases = [
        agents(
            1,
            "AGENT_CREATED",
            json!({"agent_id": "agent-77", "agent_fields": {"name": "Finance", "prompt": format!("Use the API key {key} for the ledger.")}}),
        ),
        agents(
            2,
            "AGENT_RUN_CREATED",
            json!({"agent_id": "agent-77", "invoker": {"type": "chatgpt", "user_message_text": format!("the AWS key is {aws}")}}),
        ),
        agents(
            3,
            "TRIGGER_CREATED",
            json!({"agent_id": "agent-77", "trigger_type": "schedule", "trigger_fields": {"instructions": format!("call with {key}")}}),
        ),
    ];
    for mut event in cases {
        engine().inspect(&mut event);
        assert!(
            event.findings.iter().any(|f| f.rule == "sensitive_data_in_content"),
            "{:?}",
            event.findings
        );
        let shipped = serde_json::to_string(&event).expect("json");
        assert!(!shipped.contains(key) && !shipped.contains(aws), "{shipped}");
    }
    let clean = agents(
        4,
        "AGENT_RUN_CREATED",
        json!({"agent_id": "agent-77", "invoker": {"user_message_text": "Post the month-end totals"}}),
    );
    assert!(fresh(vec![clean]).is_empty());
}

#[test]
fn secrets_in_chats_and_tool_calls_are_flagged_by_position_and_never_shipped() {
    let key = "sk-proj-Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0Pp";
    let aws = "AKIAZ7QW3ERT5YU2IOP4";
    let mut e = engine();
    let mut chat = compliance(
        "CONVERSATION_MESSAGE",
        1,
        json!({"message": {"content": {"type": "text", "value": format!("deploy with {key} now")}},
               "conversation": {"title": format!("about {key}")}}),
    );
    let extra = e.inspect(&mut chat);
    assert!(extra.is_empty());
    // The title is written from the messages, so it is text and scanned too.
    assert_eq!(chat.findings.len(), 2);
    assert!(chat.findings.iter().all(|f| f.rule == "sensitive_data_in_content"));
    assert!(chat.findings[0].message.contains("openai_api_key"));
    assert!(chat.findings[0].message.contains("raw.conversation.title[6.."));
    assert!(chat.findings[1].message.contains("raw.message.content.value[12.."));
    let shipped = serde_json::to_string(&chat).expect("json");
    assert!(!shipped.contains(key), "{shipped}");

    let mut tool = compliance(
        "APP_LOG",
        2,
        json!({"input": {"args": format!("aws {aws}")}, "output": [{"response": {"result": {"content": []}}}]}),
    );
    e.inspect(&mut tool);
    assert_eq!(tool.findings.len(), 1);
    assert!(!serde_json::to_string(&tool).expect("json").contains(aws));

    let clean = compliance(
        "CONVERSATION_MESSAGE",
        3,
        json!({"message": {"content": {"type": "text", "value": "Summarize the Q3 numbers"}}}),
    );
    assert!(fired(&mut e, vec![clean]).is_empty());
}
