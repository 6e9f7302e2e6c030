//! Compliance Logs Platform records (one JSONL line each), shaped like the live samples of
//! reference §D.5: a common envelope plus each event type's own fields.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::clock::iso_micros;
use super::geo::{LOCATIONS, USER_AGENTS};
use super::ids::{alnum, uuid};
use super::org::{OrgState, Person};

fn request_metadata(loc: usize, agent: usize) -> Value {
    let l = &LOCATIONS[loc % LOCATIONS.len()];
    let (ua, ja3, ja4) = USER_AGENTS[agent % USER_AGENTS.len()];
    json!({"client_ip": l.ip, "client_ip_details": l.details(), "client_user_agent": ua,
           "client_ja3": ja3, "client_ja4": ja4})
}

fn envelope(rng: &mut ChaCha8Rng, ws: &str, event_type: &str, person: &Person, at_us: i64) -> Value {
    json!({
        "event_id": uuid(rng),
        "type": event_type,
        "timestamp": iso_micros(at_us),
        "principal": {"id": ws, "type": "CHATGPT_WORKSPACE"},
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
    let env = envelope(&mut st.rng, &st.workspace_id, "AUTH_LOG", person, at_us);
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
    build_with(&mut st.rng, &st.workspace_id, event_type, person, at_us)
}

/// The id of workspace `ws`'s Slack app (an MCP app): the same in every record of `ws`,
/// derived from the workspace's id alone.
fn slack_app_id(ws: &str) -> String {
    format!("asdk_app_{}", &hex::encode(Sha256::digest(ws.as_bytes()))[..28])
}

/// [`build`] from its own random source, for workspace `ws` (a file generated on request
/// draws each line from a source of its own).
pub(crate) fn build_with(
    rng: &mut ChaCha8Rng,
    ws: &str,
    event_type: &str,
    person: &Person,
    at_us: i64,
) -> Option<Value> {
    let env = envelope(rng, ws, event_type, person, at_us);
    let pick = |rng: &mut ChaCha8Rng, n: usize| rng.random_range(0..n);
    let extra = match event_type {
        "AUTH_LOG" => {
            let action = ["login_success", "logout_success", "token_issued"][pick(rng, 3)];
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
            ][pick(rng, 5)];
            json!({"action": action, "action_result": "SUCCESS", "action_privilege": "ADMIN",
                "request_metadata": request_metadata(person.home, person.agent),
                "action_data": {"user_id": person.id}})
        }
        "CONVERSATION_MESSAGE" => {
            let assistant = rng.random_bool(0.5);
            let author = if assistant {
                json!({"type": "assistant", "model": "gpt-5-6-thinking", "tools_used": ["browser"],
                       "skills_used": []})
            } else {
                json!({"type": "user", "client_type": "desktop_web"})
            };
            json!({"previous_message_id": uuid(rng),
                "message": {"id": uuid(rng), "created_at": iso_micros(at_us), "author": author,
                    "content": {"type": "text", "value": if assistant {
                        "Here is a summary of the quarterly numbers."
                    } else { "Summarize the Q3 numbers for me." }, "annotations": []}},
                "conversation": {"id": uuid(rng), "title": "Quarterly numbers",
                    "created_at": iso_micros(at_us - 60_000_000), "is_pinned": false,
                    "is_temporary_chat": false}})
        }
        "APP_LOG" => {
            // A tool call is a request (arguments, client context in `input._meta`) and a
            // response (what the tool answered), as in the public samples.
            // A workspace installs an app once: every call names the same app id (a new one
            // per call made each call someone's first use of an MCP app).
            let app = slack_app_id(ws);
            let conversation = uuid(rng);
            if rng.random_bool(0.5) {
                let l = &LOCATIONS[person.home % LOCATIONS.len()];
                json!({"app_id": app, "app_name": "Slack", "app_type": "MCP",
                    "conversation_id": conversation, "log_type": "request",
                    "input": {"query": "in:general quarterly planning", "limit": 20,
                        "_meta": {"openai/userAgent": "ChatGPT/1.2026.320 (Mac OS X 26.1; arm64)",
                            "openai/locale": "en-GB",
                            "openai/userLocation": {"city": l.city, "region": l.region,
                                "country": l.country, "latitude": l.latitude, "longitude": l.longitude},
                            "openai/subject": format!("v1/{}", alnum(rng, 16)),
                            "openai/session": format!("v1/{}", alnum(rng, 16))}}})
            } else {
                json!({"app_id": app, "app_name": "Slack", "app_type": "MCP",
                    "conversation_id": conversation, "log_type": "response",
                    "output": [{"response": {"result": {"content": [{"type": "text",
                        "text": "Search Results for: in:general (20 results)"}], "isError": false},
                        "connector_id": app, "connector_name": "Slack",
                        "action_name": "slack_search_public", "is_sync": false,
                        "internal": {"external_call_time_ms": pick(rng, 900) + 50}}}]})
            }
        }
        "APP_AUTH_LOG" => {
            json!({"app_id": format!("asdk_app_{}", alnum(rng, 12).to_lowercase()),
            "app_name": "Google Drive", "link_id": format!("link-{}", alnum(rng, 8)),
            "action": if rng.random_bool(0.8) { "link" } else { "unlink" }})
        }
        "CUSTOM_AGENTS_LOG" => {
            let kind = [
                "AGENT_RUN_CREATED",
                "SKILL_USED",
                "CONNECTOR_CALL_REQUESTED",
                "AGENT_PUBLISHED",
            ][pick(rng, 4)];
            let run_id = format!("thread_{}", uuid(rng));
            let mut details = json!({"detail_type": kind, "agent_id": "agent-123",
                "version_id": "version-7", "run_id": run_id});
            let extra = match kind {
                "AGENT_RUN_CREATED" => json!({"conversation_id": uuid(rng),
                    "invoker": {"type": "chatgpt", "initiator": {"kind": "account_user", "auth_user_id": person.id},
                        "user_message_text": "Summarize the open opportunities for this week.",
                        "is_shared_invocation": false}}),
                "SKILL_USED" => json!({"skill_id": "skill-1", "skill_name": "crm-guide",
                    "skill_type": "uploaded_skill"}),
                "CONNECTOR_CALL_REQUESTED" => json!({"tool_call_id": format!("call_{}", alnum(rng, 8)),
                    "connector_id": "salesforce", "connector_name": "Salesforce", "action_name": "read",
                    "requires_elicitation": false}),
                _ => json!({"publish_type": "changes", "release_name": "v2",
                    "release_description": "Workflow and connector updates",
                    "agent_fields": {"name": "Sales Ops Agent",
                        "prompt": "Summarize CRM activity and next actions.",
                        "description": "Workspace sales assistant", "category": "operations"}}),
            };
            details = merge(details, extra);
            json!({"event_type": kind, "client_id": "CHATGPT_WEB", "workspace_id": ws,
                "event_details": details})
        }
        "CODEX_LOG" => {
            let kind = [
                "PROMPT_RESPONSE_RECEIVED",
                "TOOL_CALL_COMPLETED",
                "ACCESS_TOKEN_CREATED",
                "APP_MCP_CALL",
            ][pick(rng, 4)];
            let client = ["CODEX_CLI", "CODEX_WEB", "CODEX_IDE_VSCODE"][pick(rng, 3)];
            let session = uuid(rng);
            let details = match kind {
                "PROMPT_RESPONSE_RECEIVED" => json!({"session_id": session, "model": "gpt-5.1-codex-max",
                    "prompt_text": "Fix the failing payments job and add a regression test.",
                    "response_text": "Fixed the rounding bug in the payments job and added a test.",
                    "status": "success", "turn_id": "turn-1"}),
                "TOOL_CALL_COMPLETED" => json!({"session_id": session, "model": "gpt-5.1-codex-max",
                    "tool_name": "apply_patch", "tool_type": "filesystem",
                    "tool_input": "src/payments/rounding.rs", "status": "success"}),
                "ACCESS_TOKEN_CREATED" => json!({"access_token_id": format!("cat-{}", alnum(rng, 6)),
                    "access_token_name": "ci-runner-token", "created_by_user_id": person.id}),
                _ => json!({"call_id": format!("mcp-{}", alnum(rng, 6)), "name": "search_issues",
                    "arguments": {"jql": "project = PAY AND status = Open"},
                    "tool_meta": {"connector_id": "conn-jira01", "resource_id": "jira-cloud"}}),
            };
            json!({"event_type": kind, "client_id": client, "workspace_id": ws,
                "event_details": merge(json!({"detail_type": kind}), details)})
        }
        "CODEX_SECURITY_LOG" => {
            let kind = [
                "SCAN_CONFIGURATION_CREATED",
                "SCAN_FINDING_UPDATED",
                "PROPOSED_PATCH_PR_CREATED",
            ][pick(rng, 3)];
            json!({"event_type": kind, "client_id": "CODEX_WEB", "workspace_id": ws,
                "event_details": {"detail_type": kind, "repository": "example/payments"}})
        }
        _ => return None,
    };
    Some(merge(env, extra))
}
