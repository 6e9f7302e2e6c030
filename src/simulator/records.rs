//! Compliance Logs Platform records (one JSONL line each), shaped like the live samples of
//! reference §D.5: a common envelope plus each event type's own fields.

use chrono::{DateTime, SecondsFormat, Utc};
use rand::Rng;
use serde_json::{Value, json};

use super::geo::{LOCATIONS, USER_AGENTS};
use super::org::{OrgState, Person, alnum, uuid};

/// ISO 8601 UTC with microseconds, as the platform writes timestamps.
pub(crate) fn iso_micros(us: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(us)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// ISO 8601 UTC, seconds unless the instant has a fraction (file `end_time`s).
pub(crate) fn iso_auto(us: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(us)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn request_metadata(loc: usize, agent: usize) -> Value {
    let l = &LOCATIONS[loc % LOCATIONS.len()];
    let (ua, ja3, ja4) = USER_AGENTS[agent % USER_AGENTS.len()];
    json!({"client_ip": l.ip, "client_ip_details": l.details(), "client_user_agent": ua,
           "client_ja3": ja3, "client_ja4": ja4})
}

fn envelope(st: &mut OrgState, event_type: &str, person: &Person, at_us: i64) -> Value {
    json!({
        "event_id": uuid(&mut st.rng),
        "type": event_type,
        "timestamp": iso_micros(at_us),
        "principal": {"id": st.workspace_id, "type": "CHATGPT_WORKSPACE"},
        "actor": {"type": "ACCOUNT_USER", "user_id": person.id, "user_email": person.email},
    })
}

/// Set every key of `extra` on `v` (both objects).
fn merge(mut v: Value, extra: Value) -> Value {
    if let (Some(dst), Value::Object(src)) = (v.as_object_mut(), extra) {
        dst.extend(src);
    }
    v
}

/// A ChatGPT sign-in record (`action` login_success, login_failed, …) appended to AUTH_LOG.
pub(crate) fn auth_log(st: &mut OrgState, person: &Person, loc: usize, agent: usize, action: &str, at_us: i64) {
    let env = envelope(st, "AUTH_LOG", person, at_us);
    let rec = merge(
        env,
        json!({"request_metadata": request_metadata(loc, agent),
               "action_data": {"action": action, "role": "standard-user"}}),
    );
    st.compliance.push("AUTH_LOG", at_us, rec);
}

/// A record of `event_type` by `person` at `at_us`; `None` for a type the simulator does not
/// generate.
pub(crate) fn build(st: &mut OrgState, event_type: &str, person: &Person, at_us: i64) -> Option<Value> {
    let env = envelope(st, event_type, person, at_us);
    let ws = st.workspace_id.clone();
    let pick = |st: &mut OrgState, n: usize| st.rng.random_range(0..n);
    let extra = match event_type {
        "AUTH_LOG" => {
            let action = ["login_success", "logout_success", "token_issued"][pick(st, 3)];
            json!({"request_metadata": request_metadata(person.home, person.agent),
                "action_data": {"action": action, "role": "standard-user"}})
        }
        "AUDIT_LOG" => {
            let action = [
                "USER_ROLE_UPDATED",
                "INVITE_SEND",
                "WORKSPACE_TOGGLE_FEATURE",
                "CONVERSATION_SHARE",
                "LIST_WORKSPACE_LOG_FILES",
            ][pick(st, 5)];
            json!({"action": action, "action_result": "SUCCESS", "action_privilege": "ADMIN",
                "request_metadata": request_metadata(person.home, person.agent),
                "action_data": {"user_id": person.id}})
        }
        "CONVERSATION_MESSAGE" => {
            let assistant = st.rng.random_bool(0.5);
            let author = if assistant {
                json!({"type": "assistant", "model": "gpt-5-6-thinking", "tools_used": ["browser"],
                       "skills_used": []})
            } else {
                json!({"type": "user", "client_type": "desktop_web"})
            };
            json!({"previous_message_id": uuid(&mut st.rng),
                "message": {"id": uuid(&mut st.rng), "created_at": iso_micros(at_us), "author": author,
                    "content": {"type": "text", "value": if assistant {
                        "Here is a summary of the quarterly numbers."
                    } else { "Summarize the Q3 numbers for me." }, "annotations": []}},
                "conversation": {"id": uuid(&mut st.rng), "title": "Quarterly numbers",
                    "created_at": iso_micros(at_us - 60_000_000), "is_pinned": false,
                    "is_temporary_chat": false}})
        }
        "APP_LOG" => {
            let app = format!("asdk_app_{}", alnum(&mut st.rng, 28).to_lowercase());
            json!({"app_id": app, "app_name": "Slack", "app_type": "MCP",
                "conversation_id": uuid(&mut st.rng), "log_type": "response",
                "output": [{"response": {"result": {"content": [{"type": "text",
                    "text": "Search Results for: in:general (20 results)"}], "isError": false},
                    "connector_id": app, "connector_name": "Slack",
                    "action_name": "slack_search_public", "is_sync": false,
                    "internal": {"external_call_time_ms": pick(st, 900) + 50}}}]})
        }
        "APP_AUTH_LOG" => {
            json!({"app_id": format!("asdk_app_{}", alnum(&mut st.rng, 12).to_lowercase()),
            "app_name": "Google Drive", "link_id": format!("link-{}", alnum(&mut st.rng, 8)),
            "action": if st.rng.random_bool(0.8) { "link" } else { "unlink" }})
        }
        "CUSTOM_AGENTS_LOG" => {
            let kind = [
                "AGENT_RUN_CREATED",
                "SKILL_USED",
                "CONNECTOR_CALL_REQUESTED",
                "AGENT_PUBLISHED",
            ][pick(st, 4)];
            json!({"event_type": kind, "client_id": "CHATGPT_WEB", "workspace_id": ws,
                "event_details": {"detail_type": kind, "agent_id": "agent-123",
                    "version_id": "version-7", "run_id": format!("thread_{}", uuid(&mut st.rng))}})
        }
        "CODEX_LOG" => {
            let kind = [
                "PROMPT_RESPONSE_RECEIVED",
                "TOOL_CALL_COMPLETED",
                "ACCESS_TOKEN_CREATED",
                "APP_MCP_CALL",
            ][pick(st, 4)];
            let client = ["CODEX_CLI", "CODEX_WEB", "CODEX_IDE_VSCODE"][pick(st, 3)];
            json!({"event_type": kind, "client_id": client, "workspace_id": ws,
                "event_details": {"detail_type": kind, "model": "gpt-5-codex",
                    "session_id": uuid(&mut st.rng)}})
        }
        "CODEX_SECURITY_LOG" => {
            let kind = [
                "SCAN_CONFIGURATION_CREATED",
                "SCAN_FINDING_UPDATED",
                "PROPOSED_PATCH_PR_CREATED",
            ][pick(st, 3)];
            json!({"event_type": kind, "client_id": "CODEX_WEB", "workspace_id": ws,
                "event_details": {"detail_type": kind, "repository": "example/payments"}})
        }
        _ => return None,
    };
    Some(merge(env, extra))
}
