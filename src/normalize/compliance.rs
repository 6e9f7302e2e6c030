//! One ChatGPT Compliance Logs Platform record (a JSONL line) → one normalized [`Event`].
//!
//! `type` stays the record type (`AUTH_LOG`); the record's own sub-type (`action_data.action`,
//! `action`, `event_type`) picks the row of `compliance_types.tsv` and is kept in
//! `details.sub_type`. Message and tool-call text is kept at the record's own paths inside
//! `details`, so the content policy (`content.rs`) finds it in `details` and `raw` alike.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::mapping::compliance_mapping;
use super::{Actor, Context, Event, Geo, NormalizeError, Outcome, Source, Target};

/// Normalizes one compliance record. A record without `event_id`, `type` or an ISO 8601
/// `timestamp` is an error; a record type the table does not know still becomes an event
/// (`other` / `unknown` / `unknown`).
pub fn compliance(record: &Value, ctx: &Context) -> Result<Event, NormalizeError> {
    let (event_id, record_type, occurred_at) = required(record)?;
    let id = super::event_id(Source::Compliance, ctx.org_id.as_deref(), event_id);
    let mut event = Event::new(
        id,
        Source::Compliance,
        ctx.org_id.clone(),
        record_type.to_string(),
        occurred_at,
    );
    let sub_type = sub_type(record, record_type);
    if let Some(mapping) = compliance_mapping(record_type, sub_type) {
        event.category = mapping.category.to_string();
        event.action = match (mapping.action, sub_type) {
            ("unknown", Some(sub)) => snake(sub),
            (action, _) => action.to_string(),
        };
        event.outcome = mapping.outcome;
        event.target = mapping.target_type.map(|t| Target {
            target_type: t.to_string(),
            ..Target::default()
        });
    }
    if let Some(outcome) = outcome(record, record_type) {
        event.outcome = outcome;
    }
    if let Some(target) = event.target.as_mut() {
        fill_target(target, record, record_type);
    }
    event.actor = actor(record);
    event.details = details(record, record_type, sub_type);
    event.raw = Some(record.clone());
    if event.category == "other" {
        event.mark_unmapped();
    }
    Ok(event)
}

fn required(record: &Value) -> Result<(&str, &str, DateTime<Utc>), NormalizeError> {
    let Some(object) = record.as_object() else {
        return Err(NormalizeError::NotAnObject);
    };
    let record_id = || object.get("event_id").and_then(Value::as_str).map(str::to_string);
    let text = |field: &'static str| match object.get(field) {
        None | Some(Value::Null) => Err(NormalizeError::MissingField {
            field,
            record_id: record_id(),
        }),
        Some(Value::String(s)) if !s.is_empty() => Ok(s.as_str()),
        Some(_) => Err(NormalizeError::WrongType {
            field,
            expected: "a non-empty string",
            record_id: record_id(),
        }),
    };
    let event_id = text("event_id")?;
    let record_type = text("type")?;
    let timestamp = text("timestamp")?;
    let occurred_at = DateTime::parse_from_rfc3339(timestamp)
        .map_err(|_| NormalizeError::WrongType {
            field: "timestamp",
            expected: "an ISO 8601 time with a timezone",
            record_id: record_id(),
        })?
        .with_timezone(&Utc);
    Ok((event_id, record_type, occurred_at))
}

fn text<'a>(record: &'a Value, pointer: &str) -> Option<&'a str> {
    record
        .pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

fn owned(record: &Value, pointer: &str) -> Option<String> {
    text(record, pointer).map(str::to_string)
}

/// The record's own kind within its type.
fn sub_type<'a>(record: &'a Value, record_type: &str) -> Option<&'a str> {
    match record_type {
        "AUTH_LOG" => text(record, "/action_data/action"),
        "AUDIT_LOG" | "APP_AUTH_LOG" => text(record, "/action"),
        "APP_LOG" => text(record, "/log_type"),
        _ => text(record, "/event_type"),
    }
}

/// `USER_ROLE_UPDATED` → `user_role_updated`, for sub-types the table does not list yet.
fn snake(sub: &str) -> String {
    let s: String = sub
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() { "unknown".to_string() } else { s }
}

/// Outcomes the record states itself, overriding the table.
fn outcome(record: &Value, record_type: &str) -> Option<Outcome> {
    match record_type {
        "AUDIT_LOG" => match text(record, "/action_result")?.to_ascii_uppercase().as_str() {
            "SUCCESS" => Some(Outcome::Success),
            "BLOCKED" | "ERROR" | "FAILURE" | "FAILED" => Some(Outcome::Failure),
            _ => None,
        },
        "APP_LOG" => {
            let errors: Vec<bool> = tool_results(record)
                .filter_map(|r| r.get("isError").and_then(Value::as_bool))
                .collect();
            if errors.is_empty() {
                None
            } else if errors.iter().any(|e| *e) {
                Some(Outcome::Failure)
            } else {
                Some(Outcome::Success)
            }
        }
        _ => None,
    }
}

fn tool_results(record: &Value) -> impl Iterator<Item = &Value> {
    record
        .get("output")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|o| o.pointer("/response/result"))
}

fn fill_target(target: &mut Target, record: &Value, record_type: &str) {
    let (id, name) = match (record_type, target.target_type.as_str()) {
        ("CONVERSATION_MESSAGE", _) => (owned(record, "/conversation/id"), owned(record, "/conversation/title")),
        ("APP_LOG" | "APP_AUTH_LOG", _) => (owned(record, "/app_id"), owned(record, "/app_name")),
        ("CUSTOM_AGENTS_LOG", _) => (
            owned(record, "/event_details/agent_id").or_else(|| owned(record, "/actor/product_id")),
            owned(record, "/actor/name"),
        ),
        ("AUDIT_LOG", "user") => (owned(record, "/action_data/user_id"), None),
        ("AUDIT_LOG", "conversation") => (owned(record, "/action_data/conversation_id"), None),
        ("AUDIT_LOG", _) => (owned(record, "/action_data/id"), owned(record, "/action_data/name")),
        _ => (None, None),
    };
    target.id = id;
    target.name = name;
}

/// Who acted, and from where (`request_metadata`).
fn actor(record: &Value) -> Option<Actor> {
    let mut actor = record.get("actor").filter(|a| a.is_object()).map(|a| {
        let kind = a.get("type").and_then(Value::as_str).unwrap_or_default();
        match kind {
            "ACCOUNT_USER" => Actor {
                actor_type: "user".into(),
                id: owned(a, "/user_id"),
                email: owned(a, "/user_email"),
                ..Actor::default()
            },
            "EXTERNAL_COLLABORATION_USER" => Actor {
                actor_type: "external_user".into(),
                id: owned(a, "/user_id"),
                email: owned(a, "/user_email"),
                ..Actor::default()
            },
            "API_KEY" => Actor {
                actor_type: "api_key".into(),
                id: owned(a, "/user_id"),
                email: owned(a, "/user_email"),
                api_key_id: owned(a, "/credential_id").or_else(|| owned(a, "/redacted_id")),
                ..Actor::default()
            },
            "AGENT" => Actor {
                actor_type: "agent".into(),
                id: owned(a, "/id").or_else(|| owned(a, "/product_id")),
                ..Actor::default()
            },
            other => Actor {
                actor_type: if other.is_empty() {
                    "unknown".into()
                } else {
                    snake(other)
                },
                id: owned(a, "/user_id").or_else(|| owned(a, "/id")),
                email: owned(a, "/user_email"),
                ..Actor::default()
            },
        }
    });
    if let Some(meta) = record.get("request_metadata").filter(|m| m.is_object()) {
        let actor = actor.get_or_insert_with(|| Actor {
            actor_type: "unknown".into(),
            ..Actor::default()
        });
        actor.ip = owned(meta, "/client_ip");
        actor.user_agent = owned(meta, "/client_user_agent");
        let geo = Geo {
            country: owned(meta, "/client_ip_details/country"),
            city: owned(meta, "/client_ip_details/city"),
            region: owned(meta, "/client_ip_details/region"),
            asn: owned(meta, "/client_ip_details/asn"),
        };
        actor.geo = (geo != Geo::default()).then_some(geo);
    }
    actor
}

/// Inserts `value` under `key` unless it is null or absent.
fn put(map: &mut Map<String, Value>, key: &str, value: Option<&Value>) {
    if let Some(v) = value.filter(|v| !v.is_null()) {
        map.insert(key.to_string(), v.clone());
    }
}

fn details(record: &Value, record_type: &str, sub_type: Option<&str>) -> Value {
    let mut d = Map::new();
    if let Some(sub) = sub_type {
        d.insert("sub_type".into(), json!(sub));
    }
    let field = |pointer: &str| record.pointer(pointer);
    match record_type {
        "AUTH_LOG" => put(&mut d, "role", field("/action_data/role")),
        "AUDIT_LOG" => {
            put(&mut d, "action_result", field("/action_result"));
            put(&mut d, "action_privilege", field("/action_privilege"));
            put(&mut d, "action_data", field("/action_data"));
        }
        "CONVERSATION_MESSAGE" => {
            let mut conversation = Map::new();
            for key in ["id", "title", "created_at", "is_temporary_chat", "gpt_id", "project_id"] {
                put(&mut conversation, key, record.pointer(&format!("/conversation/{key}")));
            }
            d.insert("conversation".into(), Value::Object(conversation));
            let mut message = Map::new();
            put(&mut message, "id", field("/message/id"));
            for key in ["type", "client_type", "model", "tools_used", "skills_used"] {
                let target = if key == "type" { "author_type" } else { key };
                put(&mut message, target, record.pointer(&format!("/message/author/{key}")));
            }
            // The text stays at the record's path (`message.content.value`) so the content
            // policy finds it here as it does in `raw`.
            put(&mut message, "content", field("/message/content"));
            d.insert("message".into(), Value::Object(message));
            put(&mut d, "previous_message_id", field("/previous_message_id"));
        }
        "APP_LOG" => {
            d.insert(
                "app".into(),
                json!({"id": field("/app_id"), "name": field("/app_name"), "type": field("/app_type")}),
            );
            put(&mut d, "conversation_id", field("/conversation_id"));
            put(&mut d, "log_type", field("/log_type"));
            let calls: Vec<Value> = record
                .get("output")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|o| o.get("response"))
                .map(|r| {
                    json!({
                        "connector_id": r.get("connector_id"),
                        "connector_name": r.get("connector_name"),
                        "action": r.get("action_name"),
                        "is_error": r.pointer("/result/isError"),
                        "is_sync": r.get("is_sync"),
                        "external_call_time_ms": r.pointer("/internal/external_call_time_ms"),
                    })
                })
                .collect();
            if !calls.is_empty() {
                d.insert("calls".into(), Value::Array(calls));
            }
            // Tool-call text: the arguments as sent and the text the tool answered.
            put(&mut d, "input", field("/input"));
            let output_text: Vec<Value> = tool_results(record)
                .filter_map(|r| r.get("content").and_then(Value::as_array))
                .flatten()
                .filter_map(|c| c.get("text").filter(|t| t.is_string()).cloned())
                .collect();
            if !output_text.is_empty() {
                d.insert("output_text".into(), Value::Array(output_text));
            }
        }
        "APP_AUTH_LOG" => {
            d.insert(
                "app".into(),
                json!({"id": field("/app_id"), "name": field("/app_name")}),
            );
            put(&mut d, "link_id", field("/link_id"));
        }
        "CUSTOM_AGENTS_LOG" | "CODEX_LOG" | "CODEX_SECURITY_LOG" => {
            put(&mut d, "client_id", field("/client_id"));
            put(&mut d, "workspace_id", field("/workspace_id"));
            put(&mut d, "event_details", field("/event_details"));
        }
        _ => {}
    }
    // An agent acting for someone: who delegated, and which agent it was.
    if field("/actor/type").and_then(Value::as_str) == Some("AGENT") {
        let mut agent = Map::new();
        for key in ["name", "product_id", "product_type"] {
            put(&mut agent, key, record.pointer(&format!("/actor/{key}")));
        }
        put(&mut agent, "runtime_id", field("/actor/agent_runtime/id"));
        put(&mut agent, "task_id", field("/actor/agent_task/id"));
        if let Some(delegator) = field("/actor/agent_runtime/delegator").filter(|v| v.is_object()) {
            agent.insert(
                "delegator".into(),
                json!({
                    "type": delegator.get("type"),
                    "id": delegator.get("user_id"),
                    "email": delegator.get("user_email"),
                }),
            );
        }
        d.insert("agent".into(), Value::Object(agent));
    }
    let fingerprints: Map<String, Value> = [
        ("ja3", "/request_metadata/client_ja3"),
        ("ja4", "/request_metadata/client_ja4"),
    ]
    .into_iter()
    .filter_map(|(k, p)| text(record, p).map(|v| (k.to_string(), json!(v))))
    .collect();
    if !fingerprints.is_empty() {
        d.insert("session".into(), Value::Object(fingerprints));
    }
    Value::Object(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::content::{self, ContentMode};

    const AUTH: &str = include_str!("../../tests/fixtures/compliance/compliance_auth_log_record.json");
    const AUDIT: &str = include_str!("../../tests/fixtures/compliance/compliance_audit_log_record.json");
    const CONVERSATION: &str =
        include_str!("../../tests/fixtures/compliance/compliance_conversation_message_record.json");
    const APP: &str = include_str!("../../tests/fixtures/compliance/compliance_app_log_record.json");
    const APP_AUTH: &str = include_str!("../../tests/fixtures/compliance/compliance_app_auth_log_record.json");
    const AGENTS: &str = include_str!("../../tests/fixtures/compliance/compliance_custom_agents_log_record.json");
    const CODEX: &str = include_str!("../../tests/fixtures/compliance/compliance_codex_log_record.json");
    const CODEX_SECURITY: &str =
        include_str!("../../tests/fixtures/compliance/compliance_codex_security_log_record.json");

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
        blocked["action"] = json!("WORKSPACE_SET_API_IP_ALLOWLIST");
        let event = compliance(&blocked, &ctx()).expect("normalizes");
        assert_eq!(event.outcome, Outcome::Failure);
        assert_eq!(
            (event.category.as_str(), event.action.as_str()),
            ("organization", "workspace_set_api_ip_allowlist"),
            "an unlisted admin action keeps its name as the action"
        );
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
        assert_eq!(event.raw, Some(record));
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
}
