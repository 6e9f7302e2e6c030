//! One ChatGPT Compliance Logs Platform record (a JSONL line) → one normalized [`Event`].
//!
//! `type` stays the record type (`AUTH_LOG`); the record's own sub-type (`action_data.action`,
//! `action`, `event_type`) picks the row of `compliance_types.tsv` and is kept in
//! `details.sub_type`. Message and tool-call text is kept at the record's own paths inside
//! `details`, so the content policy (`content.rs`) finds it in `details` and `raw` alike.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::mapping::compliance_mapping;
use super::tree::Tree;
use super::{Actor, Context, Event, Geo, NormalizeError, Outcome, Source, Target};

/// Normalizes one compliance record. A record without `event_id`, `type` or an ISO 8601
/// `timestamp` is an error; a record type the table does not know still becomes an event
/// (`other` / `unknown` / `unknown`).
pub fn compliance(record: &Value, ctx: &Context) -> Result<Event, NormalizeError> {
    let mut event = compliance_without_raw(record, ctx)?;
    event.raw = Some(record.clone().into());
    Ok(event)
}

/// [`compliance`] without `raw`, from either form of the record: the stream reads each
/// record as a tape ([`super::At`]) and keeps its text, and the tape, as `raw`.
pub fn compliance_without_raw<'a, T: Tree<'a>>(record: T, ctx: &Context) -> Result<Event, NormalizeError> {
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
    if let Some(mapping) = compliance_mapping(record_type, sub_type.map(table_key)) {
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
    if event.category == "other" {
        event.mark_unmapped();
    }
    Ok(event)
}

fn required<'a, T: Tree<'a>>(record: T) -> Result<(&'a str, &'a str, DateTime<Utc>), NormalizeError> {
    if !record.is_object() {
        return Err(NormalizeError::NotAnObject);
    }
    let record_id = || record.get("event_id").and_then(T::as_str).map(str::to_string);
    let text = |field: &'static str| match record.get(field) {
        None => Err(NormalizeError::MissingField {
            field,
            record_id: record_id(),
        }),
        Some(v) if v.is_null() => Err(NormalizeError::MissingField {
            field,
            record_id: record_id(),
        }),
        Some(v) => match v.as_str() {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(NormalizeError::WrongType {
                field,
                expected: "a non-empty string",
                record_id: record_id(),
            }),
        },
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

/// A place in a record: object keys, and array indices written as numbers.
type Path<'p> = &'p [&'p str];

fn text<'a, T: Tree<'a>>(record: T, path: Path<'_>) -> Option<&'a str> {
    record
        .at_path(path)
        .and_then(T::as_str)
        .filter(|s| !s.trim().is_empty())
}

fn owned<'a, T: Tree<'a>>(record: T, path: Path<'_>) -> Option<String> {
    text(record, path).map(str::to_string)
}

/// The record's own kind within its type.
fn sub_type<'a, T: Tree<'a>>(record: T, record_type: &str) -> Option<&'a str> {
    match record_type {
        "AUTH_LOG" => text(record, &["action_data", "action"]),
        "AUDIT_LOG" | "APP_AUTH_LOG" => text(record, &["action"]),
        "APP_LOG" => text(record, &["log_type"]),
        _ => text(record, &["event_type"]),
    }
}

/// The row a sub-type is listed under: the per-surface IP allowlist actions
/// (`WORKSPACE_SET_<surface>_IP_ALLOWLIST`, names unpublished) share one row.
fn table_key(sub: &str) -> &str {
    if sub.starts_with("WORKSPACE_SET_") && sub.ends_with("_IP_ALLOWLIST") {
        "WORKSPACE_SET_IP_ALLOWLIST"
    } else {
        sub
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
fn outcome<'a, T: Tree<'a>>(record: T, record_type: &str) -> Option<Outcome> {
    match record_type {
        "AUDIT_LOG" => match text(record, &["action_result"])?.to_ascii_uppercase().as_str() {
            "SUCCESS" => Some(Outcome::Success),
            "BLOCKED" | "ERROR" | "FAILURE" | "FAILED" => Some(Outcome::Failure),
            _ => None,
        },
        "APP_LOG" => {
            let errors: Vec<bool> = tool_results(record)
                .filter_map(|r| r.get("isError").and_then(T::as_bool))
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

fn tool_results<'a, T: Tree<'a>>(record: T) -> impl Iterator<Item = T> {
    record
        .get("output")
        .into_iter()
        .flat_map(T::items)
        .filter_map(|o| o.at_path(&["response", "result"]))
}

/// Where the target's id and name are, by record type and target type (the type comes from
/// `compliance_types.tsv`): the first path that holds a non-empty string wins. A Codex tool's
/// id is the connector that serves it (none for a local tool) and its name the tool's name.
// A table kept as data, one row per line: rustfmt would spread each row over five.
#[rustfmt::skip]
const TARGETS: &[(&str, &str, &[Path<'static>], &[Path<'static>])] = &[
    ("AUDIT_LOG", "user", &[&["action_data", "user_id"]], &[]),
    ("AUDIT_LOG", "conversation", &[&["action_data", "conversation_id"]], &[]),
    ("AUDIT_LOG", "file", &[&["action_data", "file_id"]], &[&["action_data", "file_name"]]),
    ("AUDIT_LOG", "gpt", &[&["action_data", "gpt_id"], &["action_data", "agent_id"], &["action_data", "third_party_gizmo_id"], &["action_data", "id"]], &[]),
    ("AUDIT_LOG", "skill", &[&["action_data", "skill_id"]], &[&["action_data", "skill_name"]]),
    ("AUDIT_LOG", "project", &[&["action_data", "project_id"]], &[]),
    // A log file is known by the kind of log it holds.
    ("AUDIT_LOG", "log_file", &[&["action_data", "log_file_id"]], &[&["action_data", "event_type"]]),
    ("AUDIT_LOG", "memory", &[&["action_data", "memory_id"]], &[]),
    ("AUDIT_LOG", "domain", &[&["action_data", "domain_id"]], &[&["action_data", "hostname"]]),
    ("AUDIT_LOG", "app", &[&["action_data", "app_id"]], &[&["action_data", "app_name"]]),
    ("AUDIT_LOG", "invite", &[], &[&["action_data", "email_address"], &["action_data", "email_addresses", "0"]]),
    ("AUDIT_LOG", "session", &[&["action_data", "session_id"]], &[]),
    ("AUDIT_LOG", "*", &[&["action_data", "id"]], &[&["action_data", "name"]]),
    ("CODEX_LOG", "tool", &[&["event_details", "tool_meta", "connector_id"]], &[&["event_details", "name"], &["event_details", "tool_name"]]),
    ("CODEX_LOG", "access_token", &[&["event_details", "access_token_id"]], &[&["event_details", "access_token_name"]]),
    ("CODEX_LOG", "plugin", &[&["event_details", "plugin_id"]], &[&["event_details", "plugin_display_name"], &["event_details", "plugin_name"]]),
    ("CONVERSATION_MESSAGE", "*", &[&["conversation", "id"]], &[&["conversation", "title"]]),
    ("APP_LOG", "*", &[&["app_id"]], &[&["app_name"]]),
    ("APP_AUTH_LOG", "*", &[&["app_id"]], &[&["app_name"]]),
    ("CUSTOM_AGENTS_LOG", "*", &[&["event_details", "agent_id"], &["actor", "product_id"]], &[&["actor", "name"]]),
];

fn fill_target<'a, T: Tree<'a>>(target: &mut Target, record: T, record_type: &str) {
    let first = |paths: &[Path<'_>]| paths.iter().find_map(|p| owned(record, p));
    let row = TARGETS
        .iter()
        .find(|(r, t, _, _)| *r == record_type && *t == target.target_type)
        .or_else(|| TARGETS.iter().find(|(r, t, _, _)| *r == record_type && *t == "*"));
    if let Some((_, _, id, name)) = row {
        target.id = first(id);
        target.name = first(name);
    }
}

/// Who acted, and from where (`request_metadata`).
fn actor<'a, T: Tree<'a>>(record: T) -> Option<Actor> {
    let mut actor = record.get("actor").filter(|a| a.is_object()).map(|a| {
        let kind = a.get("type").and_then(T::as_str).unwrap_or_default();
        match kind {
            "ACCOUNT_USER" => Actor {
                actor_type: "user".into(),
                id: owned(a, &["user_id"]),
                email: owned(a, &["user_email"]),
                ..Actor::default()
            },
            "EXTERNAL_COLLABORATION_USER" => Actor {
                actor_type: "external_user".into(),
                id: owned(a, &["user_id"]),
                email: owned(a, &["user_email"]),
                ..Actor::default()
            },
            "API_KEY" => Actor {
                actor_type: "api_key".into(),
                id: owned(a, &["user_id"]),
                email: owned(a, &["user_email"]),
                api_key_id: owned(a, &["credential_id"]).or_else(|| owned(a, &["redacted_id"])),
                ..Actor::default()
            },
            "AGENT" => Actor {
                actor_type: "agent".into(),
                id: owned(a, &["id"]).or_else(|| owned(a, &["product_id"])),
                ..Actor::default()
            },
            other => Actor {
                actor_type: if other.is_empty() {
                    "unknown".into()
                } else {
                    snake(other)
                },
                id: owned(a, &["user_id"]).or_else(|| owned(a, &["id"])),
                email: owned(a, &["user_email"]),
                ..Actor::default()
            },
        }
    });
    let unknown = || Actor {
        actor_type: "unknown".into(),
        ..Actor::default()
    };
    if let Some(meta) = record.get("request_metadata").filter(|m| m.is_object()) {
        let actor = actor.get_or_insert_with(unknown);
        actor.ip = owned(meta, &["client_ip"]);
        actor.user_agent = owned(meta, &["client_user_agent"]);
        actor.geo = geo(meta.get("client_ip_details"));
    }
    // APP_LOG has no `request_metadata`: the client reports itself in the tool call's
    // `input._meta`.
    if let Some(meta) = record.at_path(&["input", "_meta"]).filter(|m| m.is_object()) {
        let user_agent = owned(meta, &["openai/userAgent"]);
        let location = geo(meta.get("openai/userLocation"));
        if user_agent.is_some() || location.is_some() {
            let actor = actor.get_or_insert_with(unknown);
            actor.user_agent = actor.user_agent.take().or(user_agent);
            actor.geo = actor.geo.take().or(location);
        }
    }
    actor
}

/// Geo from an object of strings (`client_ip_details`, `openai/userLocation`): country, city,
/// region, ASN, and coordinates when both are numbers.
fn geo<'a, T: Tree<'a>>(details: Option<T>) -> Option<Geo> {
    let d = details.filter(|d| d.is_object())?;
    Geo {
        country: owned(d, &["country"]),
        city: owned(d, &["city"]),
        region: owned(d, &["region"]),
        asn: owned(d, &["asn"]),
        ..Geo::default()
    }
    .with_coordinates(text(d, &["latitude"]), text(d, &["longitude"]))
    .non_empty()
}

/// Inserts a copy of `value` under `key` unless it is null or absent.
fn put<'a, T: Tree<'a>>(map: &mut Map<String, Value>, key: &str, value: Option<T>) {
    if let Some(v) = value.filter(|v| !v.is_null()) {
        map.insert(key.to_string(), v.to_value());
    }
}

/// A copy of `value`, null when absent (a member of an object `details` always has).
fn copy<'a, T: Tree<'a>>(value: Option<T>) -> Value {
    value.map_or(Value::Null, T::to_value)
}

fn details<'a, T: Tree<'a>>(record: T, record_type: &str, sub_type: Option<&str>) -> Value {
    let mut d = Map::new();
    if let Some(sub) = sub_type {
        d.insert("sub_type".into(), json!(sub));
    }
    let field = |path: Path<'_>| record.at_path(path);
    match record_type {
        "AUTH_LOG" => put(&mut d, "role", field(&["action_data", "role"])),
        "AUDIT_LOG" => {
            put(&mut d, "action_result", field(&["action_result"]));
            put(&mut d, "action_privilege", field(&["action_privilege"]));
            put(&mut d, "action_data", field(&["action_data"]));
        }
        "CONVERSATION_MESSAGE" => {
            let mut conversation = Map::new();
            let upstream = record.get("conversation");
            for key in ["id", "title", "created_at", "is_temporary_chat", "gpt_id", "project_id"] {
                put(&mut conversation, key, upstream.and_then(|c| c.get(key)));
            }
            d.insert("conversation".into(), Value::Object(conversation));
            let mut message = Map::new();
            put(&mut message, "id", field(&["message", "id"]));
            let author = field(&["message", "author"]);
            for key in ["type", "client_type", "model", "tools_used", "skills_used"] {
                let target = if key == "type" { "author_type" } else { key };
                put(&mut message, target, author.and_then(|a| a.get(key)));
            }
            // The text stays at the record's path (`message.content.value`) so the content
            // policy finds it here as it does in `raw`.
            put(&mut message, "content", field(&["message", "content"]));
            d.insert("message".into(), Value::Object(message));
            put(&mut d, "previous_message_id", field(&["previous_message_id"]));
        }
        "APP_LOG" => {
            d.insert(
                "app".into(),
                json!({"id": copy(field(&["app_id"])), "name": copy(field(&["app_name"])), "type": copy(field(&["app_type"]))}),
            );
            put(&mut d, "conversation_id", field(&["conversation_id"]));
            put(&mut d, "log_type", field(&["log_type"]));
            let calls: Vec<Value> = record
                .get("output")
                .into_iter()
                .flat_map(T::items)
                .filter_map(|o| o.get("response"))
                .map(|r| {
                    json!({
                        "connector_id": copy(r.get("connector_id")),
                        "connector_name": copy(r.get("connector_name")),
                        "action": copy(r.get("action_name")),
                        "is_error": copy(r.at_path(&["result", "isError"])),
                        "is_sync": copy(r.get("is_sync")),
                        "external_call_time_ms": copy(r.at_path(&["internal", "external_call_time_ms"])),
                    })
                })
                .collect();
            if !calls.is_empty() {
                d.insert("calls".into(), Value::Array(calls));
            }
            // Tool-call text: the arguments as sent and the text the tool answered.
            put(&mut d, "input", field(&["input"]));
            let output_text: Vec<Value> = tool_results(record)
                .filter_map(|r| r.get("content").filter(|c| c.is_array()))
                .flat_map(T::items)
                .filter_map(|c| c.get("text").and_then(T::as_str))
                .map(|t| Value::String(t.to_string()))
                .collect();
            if !output_text.is_empty() {
                d.insert("output_text".into(), Value::Array(output_text));
            }
        }
        "APP_AUTH_LOG" => {
            d.insert(
                "app".into(),
                json!({"id": copy(field(&["app_id"])), "name": copy(field(&["app_name"]))}),
            );
            put(&mut d, "link_id", field(&["link_id"]));
        }
        "CUSTOM_AGENTS_LOG" | "CODEX_LOG" | "CODEX_SECURITY_LOG" => {
            put(&mut d, "client_id", field(&["client_id"]));
            put(&mut d, "workspace_id", field(&["workspace_id"]));
            put(&mut d, "event_details", field(&["event_details"]));
        }
        _ => {}
    }
    // An agent acting for someone: who delegated, and which agent it was.
    if let Some(actor) = record
        .get("actor")
        .filter(|a| a.get("type").and_then(T::as_str) == Some("AGENT"))
    {
        let mut agent = Map::new();
        for key in ["name", "product_id", "product_type"] {
            put(&mut agent, key, actor.get(key));
        }
        put(&mut agent, "runtime_id", actor.at_path(&["agent_runtime", "id"]));
        put(&mut agent, "task_id", actor.at_path(&["agent_task", "id"]));
        if let Some(delegator) = actor.at_path(&["agent_runtime", "delegator"]).filter(|v| v.is_object()) {
            agent.insert(
                "delegator".into(),
                json!({
                    "type": copy(delegator.get("type")),
                    "id": copy(delegator.get("user_id")),
                    "email": copy(delegator.get("user_email")),
                }),
            );
        }
        d.insert("agent".into(), Value::Object(agent));
    }
    let meta = record.get("request_metadata");
    let fingerprints: Map<String, Value> = [("ja3", "client_ja3"), ("ja4", "client_ja4")]
        .into_iter()
        .filter_map(|(k, member)| text(meta?, &[member]).map(|v| (k.to_string(), json!(v))))
        .collect();
    if !fingerprints.is_empty() {
        d.insert("session".into(), Value::Object(fingerprints));
    }
    Value::Object(d)
}

#[cfg(test)]
mod tests;
