//! Tests of the compliance normalizer: every record type in the public shapes, targets, client context and errors.

use super::*;
use crate::normalize::content::{self, ContentMode};

const AUTH: &str = include_str!("../../../tests/fixtures/compliance/compliance_auth_log_record.json");
const AUDIT: &str = include_str!("../../../tests/fixtures/compliance/compliance_audit_log_record.json");
const CONVERSATION: &str =
    include_str!("../../../tests/fixtures/compliance/compliance_conversation_message_record.json");
const APP: &str = include_str!("../../../tests/fixtures/compliance/compliance_app_log_record.json");
const APP_AUTH: &str = include_str!("../../../tests/fixtures/compliance/compliance_app_auth_log_record.json");
const AGENTS: &str = include_str!("../../../tests/fixtures/compliance/compliance_custom_agents_log_record.json");
const CODEX: &str = include_str!("../../../tests/fixtures/compliance/compliance_codex_log_record.json");
const CODEX_SECURITY: &str =
    include_str!("../../../tests/fixtures/compliance/compliance_codex_security_log_record.json");

fn ctx() -> Context {
    Context {
        org_id: Some("11111111-2222-3333-4444-555555555555".into()),
    }
}

fn fixture(text: &str) -> Value {
    serde_json::from_str(text).expect("fixture is valid JSON")
}

fn normalize(text: &str) -> Event {
    compliance(&fixture(text), &ctx()).expect("record normalizes")
}

#[test]
fn a_failed_sign_in_is_an_authentication_failure_with_address_agent_and_geo() {
    let event = normalize(AUTH);
    assert_eq!(
        event.id,
        "chatgpt.compliance:11111111-2222-3333-4444-555555555555:9532e1b4-e44a-42c7-a52a-083c345e0001"
    );
    assert_eq!(event.source, Source::Compliance);
    assert_eq!(event.event_type, "AUTH_LOG");
    assert_eq!(
        (event.category.as_str(), event.action.as_str(), event.outcome),
        ("authentication", "login", Outcome::Failure)
    );
    assert_eq!(event.occurred_at.to_rfc3339(), "2026-07-15T10:53:18+00:00");
    let actor = event.actor.expect("actor");
    assert_eq!(actor.actor_type, "user");
    assert_eq!(actor.email.as_deref(), Some("alice.martin@example.org"));
    assert_eq!(actor.ip.as_deref(), Some("89.160.20.112"));
    assert!(actor.user_agent.as_deref().is_some_and(|ua| ua.contains("Chrome/144")));
    let geo = actor.geo.expect("geo");
    assert_eq!(
        (geo.country.as_deref(), geo.city.as_deref()),
        (Some("SE"), Some("Stockholm"))
    );
    assert_eq!(event.details["sub_type"], "login_failed");
    assert_eq!(event.details["role"], "standard-user");
    assert_eq!(event.details["session"]["ja3"], "0b85eb0d4981e69064e40753e4f0ac5f");
    assert_eq!(event.target, None);
}

#[test]
fn an_admin_role_change_targets_the_user_with_its_result() {
    let event = normalize(AUDIT);
    assert_eq!(
        (event.category.as_str(), event.action.as_str(), event.outcome),
        ("access_control", "role_updated", Outcome::Success)
    );
    assert_eq!(
        event.target,
        Some(Target {
            target_type: "user".into(),
            id: Some("user-Bb22AsDfGhJkLp".into()),
            name: None
        })
    );
    assert_eq!(event.details["sub_type"], "USER_ROLE_UPDATED");
    assert_eq!(event.details["action_privilege"], "ADMIN");
    assert_eq!(event.details["action_data"]["new_role"], "manager");
    assert!(
        event.details.get("session").is_none(),
        "empty fingerprints are no value"
    );
    let mut blocked = fixture(AUDIT);
    blocked["action_result"] = json!("BLOCKED");
    blocked["action"] = json!("WORKSPACE_SET_FEDRAMP_BANNER");
    let event = compliance(&blocked, &ctx()).expect("normalizes");
    assert_eq!(event.outcome, Outcome::Failure);
    assert_eq!(
        (event.category.as_str(), event.action.as_str()),
        ("organization", "workspace_set_fedramp_banner"),
        "an unlisted admin action keeps its name as the action"
    );
    let mut allowlist = fixture(AUDIT);
    allowlist["action"] = json!("WORKSPACE_SET_API_IP_ALLOWLIST");
    let event = compliance(&allowlist, &ctx()).expect("normalizes");
    assert_eq!(
        (event.category.as_str(), event.action.as_str()),
        ("network", "ip_allowlist_set"),
        "every surface's allowlist action is one row"
    );
}

fn audit_action(action: &str, action_data: Value) -> Event {
    let mut record = fixture(AUDIT);
    record["action"] = json!(action);
    record["action_data"] = action_data;
    compliance(&record, &ctx()).expect("normalizes")
}

#[test]
fn workspace_actions_have_real_categories_and_target_what_they_act_on() {
    let cases = [
        (
            "CONVERSATION_DELETE",
            json!({"conversation_id": "c-1"}),
            "conversation",
            "deleted",
            "conversation",
            Some("c-1"),
            None,
        ),
        (
            "FILE_DOWNLOAD",
            json!({"file_id": "file-1", "file_name": "q3.xlsx", "file_format": "xlsx"}),
            "conversation",
            "file_downloaded",
            "file",
            Some("file-1"),
            Some("q3.xlsx"),
        ),
        (
            "GPT_PUBLISH",
            json!({"gpt_id": "g-1"}),
            "agent",
            "gpt_published",
            "gpt",
            Some("g-1"),
            None,
        ),
        (
            "UPDATE_SHARING",
            json!({"agent_id": "g-2", "shared_to": {"recipient_type": "workspace"}}),
            "agent",
            "sharing_updated",
            "gpt",
            Some("g-2"),
            None,
        ),
        (
            "SKILL_SHARE",
            json!({"skill_id": "sk-1", "skill_name": "ledger-guide"}),
            "agent",
            "skill_shared",
            "skill",
            Some("sk-1"),
            Some("ledger-guide"),
        ),
        (
            "PROJECT_UPDATE_SHARING",
            json!({"project_id": "p-1"}),
            "conversation",
            "project_sharing_updated",
            "project",
            Some("p-1"),
            None,
        ),
        (
            "LIST_WORKSPACE_LOG_FILES",
            json!({"limit": "100"}),
            "organization",
            "log_files_listed",
            "log_file",
            None,
            None,
        ),
        (
            "DOWNLOAD_WORKSPACE_LOG_FILE",
            json!({"log_file_id": "lf-1", "event_type": "CONVERSATION_MESSAGE"}),
            "organization",
            "log_file_downloaded",
            "log_file",
            Some("lf-1"),
            Some("CONVERSATION_MESSAGE"),
        ),
        (
            "DELETE_WORKSPACE_LOG_FILE",
            json!({"log_file_id": "lf-2"}),
            "organization",
            "log_file_deleted",
            "log_file",
            Some("lf-2"),
            None,
        ),
        (
            "DELETE_MEMORY",
            json!({"memory_id": "mem-1", "auth_user_id": "user-1"}),
            "agent",
            "memory_deleted",
            "memory",
            Some("mem-1"),
            None,
        ),
        (
            "DOMAIN_CREATE",
            json!({"domain_id": "d-1", "hostname": "evil.example"}),
            "organization",
            "domain_created",
            "domain",
            Some("d-1"),
            Some("evil.example"),
        ),
        (
            "INVITE_SEND",
            json!({"email_addresses": ["new@example.net"], "role": "account-admin"}),
            "identity",
            "invite_sent",
            "invite",
            None,
            Some("new@example.net"),
        ),
    ];
    for (action, data, category, verb, target_type, id, name) in cases {
        let event = audit_action(action, data);
        assert_eq!(
            (event.category.as_str(), event.action.as_str()),
            (category, verb),
            "{action}"
        );
        let target = event.target.unwrap_or_else(|| panic!("{action} has a target"));
        assert_eq!(
            (
                target.target_type.as_str(),
                target.id.as_deref(),
                target.name.as_deref()
            ),
            (target_type, id, name),
            "{action}"
        );
    }
}

#[test]
fn a_native_sign_in_is_a_successful_login_with_coordinates() {
    let mut record = fixture(AUTH);
    record["action_data"]["action"] = json!("native_login_success");
    record["request_metadata"]["client_ip_details"]["latitude"] = json!("59.32938");
    record["request_metadata"]["client_ip_details"]["longitude"] = json!("18.06871");
    let event = compliance(&record, &ctx()).expect("normalizes");
    assert_eq!(
        (event.category.as_str(), event.action.as_str(), event.outcome),
        ("authentication", "login", Outcome::Success)
    );
    let geo = event.actor.and_then(|a| a.geo).expect("geo");
    assert_eq!((geo.latitude, geo.longitude), (Some(59.32938), Some(18.06871)));
}

#[test]
fn a_tool_call_takes_its_user_agent_and_location_from_the_client_context() {
    let line = include_str!("../../../tests/fixtures/compliance/samples/APP_LOG.jsonl")
        .lines()
        .next()
        .expect("a request line");
    let event = compliance(&serde_json::from_str(line).expect("json"), &ctx()).expect("normalizes");
    let actor = event.actor.expect("actor");
    assert_eq!(actor.email.as_deref(), Some("dana.ortiz@example.net"));
    assert!(
        actor
            .user_agent
            .as_deref()
            .is_some_and(|ua| ua.starts_with("ChatGPT/1.2026"))
    );
    let geo = actor.geo.expect("geo");
    assert_eq!(
        (geo.country.as_deref(), geo.city.as_deref(), geo.latitude, geo.longitude),
        (Some("DE"), Some("Berlin"), Some(52.52437), Some(13.41053))
    );
    // A response carries no client context.
    let event = normalize(APP);
    assert_eq!(event.actor.and_then(|a| a.geo), None);
}

#[test]
fn codex_tool_calls_plugins_and_tokens_target_what_they_touch() {
    let lines: Vec<Event> = include_str!("../../../tests/fixtures/compliance/samples/CODEX_LOG.jsonl")
        .lines()
        .map(|l| compliance(&serde_json::from_str(l).expect("json"), &ctx()).expect("normalizes"))
        .collect();
    let target = |i: usize| {
        let t = lines[i].target.clone().unwrap_or_default();
        (t.target_type, t.id, t.name)
    };
    assert_eq!(target(1), ("tool".into(), None, Some("shell".into())));
    assert_eq!(
        target(2),
        ("tool".into(), Some("conn-github77".into()), Some("create_issue".into()))
    );
    assert_eq!(
        target(3),
        (
            "access_token".into(),
            Some("cat-2044".into()),
            Some("release-bot".into())
        )
    );
    assert_eq!(
        target(5),
        ("plugin".into(), Some("plg-771".into()), Some("Terraform Helper".into()))
    );
    assert_eq!(lines[0].target, None, "a prompt acts on nothing");
}

#[test]
fn a_conversation_message_names_the_model_tools_skills_and_conversation() {
    let event = normalize(CONVERSATION);
    assert_eq!(
        (event.category.as_str(), event.action.as_str(), event.outcome),
        ("conversation", "message", Outcome::Success)
    );
    assert_eq!(
        event.target,
        Some(Target {
            target_type: "conversation".into(),
            id: Some("6a57a893-07c8-8328-af5e-cf89c45e37d8".into()),
            name: Some("CI failure".into())
        })
    );
    let d = &event.details;
    assert_eq!(d["conversation"]["title"], "CI failure");
    assert_eq!(d["conversation"]["is_temporary_chat"], true);
    assert_eq!(d["message"]["author_type"], "assistant");
    assert_eq!(d["message"]["model"], "gpt-5-6-thinking");
    assert_eq!(d["message"]["tools_used"], json!(["browser"]));
    assert_eq!(d["message"]["skills_used"], json!(["skill-778"]));
    assert!(
        d["message"]["content"]["value"]
            .as_str()
            .is_some_and(|t| t.contains("lockfile"))
    );
    assert_eq!(
        event.actor.and_then(|a| a.email).as_deref(),
        Some("bob.turner@example.com")
    );
}

#[test]
fn an_mcp_tool_call_names_the_app_connector_action_and_error_state() {
    let event = normalize(APP);
    assert_eq!(
        (event.category.as_str(), event.action.as_str(), event.outcome),
        ("app", "tool_call", Outcome::Success)
    );
    assert_eq!(event.target.as_ref().and_then(|t| t.name.as_deref()), Some("Slack"));
    let d = &event.details;
    assert_eq!(d["app"]["type"], "MCP");
    assert_eq!(d["calls"][0]["connector_name"], "Slack");
    assert_eq!(d["calls"][0]["action"], "slack_search_public");
    assert_eq!(d["calls"][0]["is_error"], false);
    assert_eq!(d["output_text"][0], "Search Results for: in:general (20 results)");
    let mut failed = fixture(APP);
    failed["output"][0]["response"]["result"]["isError"] = json!(true);
    assert_eq!(
        compliance(&failed, &ctx()).expect("normalizes").outcome,
        Outcome::Failure
    );
}

#[test]
fn an_app_unlink_is_an_app_event_on_the_app() {
    let event = normalize(APP_AUTH);
    assert_eq!((event.category.as_str(), event.action.as_str()), ("app", "unlinked"));
    assert_eq!(
        event.target.and_then(|t| t.id).as_deref(),
        Some("asdk_app_2222222222222222bbbb")
    );
    assert_eq!(event.details["link_id"], "link-7Hq2Lm9X");
}

#[test]
fn an_agent_actor_carries_its_delegator() {
    let event = normalize(AGENTS);
    assert_eq!(
        (event.category.as_str(), event.action.as_str()),
        ("agent", "connector_call_requested")
    );
    let actor = event.actor.expect("actor");
    assert_eq!(
        (actor.actor_type.as_str(), actor.id.as_deref()),
        ("agent", Some("agent-harness-123"))
    );
    let agent = &event.details["agent"];
    assert_eq!(agent["name"], "Sales Ops Agent");
    assert_eq!(agent["delegator"]["email"], "alice.martin@example.com");
    assert_eq!(event.details["event_details"]["connector_name"], "Salesforce");
    assert_eq!(event.target.and_then(|t| t.id).as_deref(), Some("agent-123"));
}

#[test]
fn codex_events_are_codex_with_their_event_type_as_action() {
    let event = normalize(CODEX);
    assert_eq!(
        (event.category.as_str(), event.action.as_str()),
        ("codex", "app_mcp_call")
    );
    let actor = event.actor.expect("actor");
    assert_eq!(actor.actor_type, "api_key");
    assert_eq!(actor.api_key_id.as_deref(), Some("cred_9Xk2Lm"));
    assert_eq!(actor.geo.and_then(|g| g.country).as_deref(), Some("US"));
    assert_eq!(event.details["client_id"], "CODEX_CLI");
    let security = normalize(CODEX_SECURITY);
    assert_eq!(
        (security.category.as_str(), security.action.as_str()),
        ("codex", "scan_finding_updated")
    );
    assert_eq!(security.details["event_details"]["finding_id"], "finding-42");
}

#[test]
fn an_unknown_record_type_passes_through_as_other() {
    let record = json!({"event_id": "e1", "type": "COSTS", "timestamp": "2026-07-01T00:00:00Z", "amount": 3});
    let event = compliance(&record, &ctx()).expect("normalizes");
    assert_eq!(
        (event.category.as_str(), event.action.as_str(), event.outcome),
        ("other", "unknown", Outcome::Unknown)
    );
    assert_eq!(event.event_type, "COSTS");
    assert_eq!(event.details["unmapped_type"], true);
    assert_eq!(event.raw, Some(record.into()));
}

#[test]
fn a_record_without_event_id_or_with_a_bad_timestamp_is_an_error_naming_the_field() {
    let no_id = compliance(
        &json!({"type": "AUTH_LOG", "timestamp": "2026-07-01T00:00:00Z"}),
        &ctx(),
    );
    assert_eq!(no_id.map_err(|e| e.field()), Err(Some("event_id")));
    let bad_time = compliance(
        &json!({"event_id": "e", "type": "AUTH_LOG", "timestamp": "yesterday"}),
        &ctx(),
    );
    assert_eq!(bad_time.map_err(|e| e.field()), Err(Some("timestamp")));
}

#[test]
fn with_hash_no_message_or_tool_text_survives_in_any_fixture() {
    for (fixture_text, secret) in [
        (CONVERSATION, "required dependency"),
        (APP, "Search Results"),
        (CODEX, "failing payments job"),
    ] {
        let mut event = normalize(fixture_text);
        content::apply(ContentMode::Hash, &mut event);
        let shipped = serde_json::to_string(&event).expect("json");
        assert!(!shipped.contains(secret), "{shipped}");
        assert!(shipped.contains("sha256"), "{shipped}");
    }
}

proptest::proptest! {
    /// `at` finds what `Value::pointer` finds for the same steps written as a JSON pointer
    /// (for the indices these paths use: no leading zeros), keys holding `/` and `~` and
    /// empty keys included.
    #[test]
    fn at_finds_what_value_pointer_finds(
        steps in proptest::collection::vec(
            proptest::sample::select(vec!["a", "b", "", "0", "1", "2", "a/b", "~", "c~/", "x"]),
            0..5,
        ),
    ) {
        let tree = serde_json::json!({
            "a": {"b": [1, {"a": "deep"}, [true]], "": {"": 0}, "0": "key"},
            "b": [{"x": 1}, {"~": "tilde", "a/b": "slash"}, null],
            "": {"a": "empty key"},
            "a/b": {"c~/": 5},
            "~": [0, 1],
        });
        let pointer: String = steps
            .iter()
            .map(|step| format!("/{}", step.replace('~', "~0").replace('/', "~1")))
            .collect();
        proptest::prop_assert_eq!((&tree).at_path(&steps), tree.pointer(&pointer), "pointer {:?}", pointer);
    }
}

/// Sets `value` at `path` under `tree`, making objects on the way (an array step replaces
/// what is there with an array of one element).
fn set_at(tree: &mut Value, path: &[&str], value: Value) {
    let Some((first, rest)) = path.split_first() else {
        *tree = value;
        return;
    };
    if *first == "0" {
        if !tree.is_array() || tree.as_array().is_some_and(Vec::is_empty) {
            *tree = Value::Array(vec![Value::Null]);
        }
        set_at(&mut tree[0], rest, value);
    } else {
        if !tree.is_object() {
            *tree = Value::Object(Map::new());
        }
        set_at(
            tree.as_object_mut()
                .expect("an object")
                .entry(*first)
                .or_insert(Value::Null),
            rest,
            value,
        );
    }
}

/// Normalizes a tape of `tree`'s text and the tree parsed from that text (serde_json does not
/// round-trip every float), with the clock-given `ingested_at` set aside.
fn both_ways(tree: &Value) -> (Result<Event, String>, Result<Event, String>) {
    let text = tree.to_string();
    let tape = crate::normalize::tape(&text).expect("a tree's text reads");
    let view = crate::normalize::At::root(&text, &tape);
    let tree: Value = serde_json::from_str(&text).expect("a tree's text parses");
    let at = |r: Result<Event, NormalizeError>| {
        r.map(|mut e| {
            e.ingested_at = DateTime::<Utc>::UNIX_EPOCH;
            e
        })
        .map_err(|e| e.to_string())
    };
    (
        at(compliance_without_raw(view, &ctx())),
        at(compliance_without_raw(&tree, &ctx())),
    )
}

#[test]
fn a_record_read_in_place_normalizes_as_its_tree_does() {
    for text in [AUTH, AUDIT, CONVERSATION, APP, APP_AUTH, AGENTS, CODEX, CODEX_SECURITY] {
        let (in_place, from_tree) = both_ways(&fixture(text));
        assert!(in_place.is_ok(), "{in_place:?}");
        assert_eq!(in_place, from_tree);
    }
    // A repeated key counts once, its last value, as serde_json keeps it.
    let text = AUTH.replacen('{', r#"{"type": "AUDIT_LOG", "event_id": 7,"#, 1);
    let tape = crate::normalize::tape(&text).expect("tape");
    let view = crate::normalize::At::root(&text, &tape);
    let tree: Value = serde_json::from_str(&text).expect("json");
    let (in_place, from_tree) = (
        compliance_without_raw(view, &ctx()),
        compliance_without_raw(&tree, &ctx()),
    );
    assert_eq!(in_place.expect("normalizes").event_type, "AUTH_LOG");
    assert_eq!(from_tree.expect("normalizes").event_type, "AUTH_LOG");
}

proptest::proptest! {
    #![proptest_config(crate::props::config())]
    /// Whatever JSON stands where the normalizer looks, a record read as a tape becomes the
    /// event (or the error) its own tree does.
    #[test]
    fn any_json_where_the_normalizer_looks_reads_the_same_in_place(
        base in proptest::sample::select(vec![AUTH, AUDIT, CONVERSATION, APP, APP_AUTH, AGENTS, CODEX, CODEX_SECURITY]),
        path in proptest::sample::select(vec![
            "event_id", "type", "timestamp", "action", "action_result", "action_data", "action_data.action",
            "action_data.user_id", "action_data.email_addresses.0", "actor", "actor.type", "actor.user_email",
            "actor.agent_runtime.delegator", "request_metadata", "request_metadata.client_ip_details",
            "request_metadata.client_ip_details.latitude", "input._meta", "output", "output.0.response",
            "output.0.response.result.content", "message.author", "message.content", "conversation",
            "event_details", "event_details.tool_meta", "log_type", "event_type", "app_id",
        ]),
        value in crate::props::json(),
    ) {
        let mut tree = fixture(base);
        let steps: Vec<&str> = path.split('.').collect();
        set_at(&mut tree, &steps, value);
        let (in_place, from_tree) = both_ways(&tree);
        proptest::prop_assert_eq!(in_place, from_tree);
    }
}
