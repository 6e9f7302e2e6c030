//! OCSF 1.5.0 for `sink.schema = "ocsf"`: each normalized event becomes one OCSF event of the
//! closest class (DESIGN.md "Sink protocols"), with `class_uid`, `activity_id`, `type_uid`,
//! `category_uid`, `severity_id` and `status_id` consistent with the class, the actor, the
//! source endpoint, and what has no OCSF home under `unmapped`. Ids and delivery are
//! unchanged: `metadata.uid` is the v1 id.
//!
//! Which class and activity a type gets is data (`classes.tsv`, checked by a test over every
//! type the normalize tables know); `catalogue.rs` holds the seven classes' captions. Only
//! attributes that need no OCSF profile are written, and no value is ever `null` outside
//! `unmapped` (validators refuse it).

mod catalogue;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::LazyLock;

use serde_json::{Map, Value, json};

#[cfg(test)]
use catalogue::CLASSES;
use catalogue::{API_ACTIVITY, DETECTION_FINDING};

use crate::normalize::{Actor, Event, Outcome, Severity, Source, Target};

/// The OCSF schema version every event declares.
pub const VERSION: &str = "1.5.0";

/// Who wrote an event nobody else did (inventory snapshots, findings): this daemon.
const SELF: &str = "openai-audit-ingest";

const TABLE_TSV: &str = include_str!("classes.tsv");

/// The class and activity of one normalized type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    pub class: u32,
    pub activity: u32,
}

/// Parses the table, keeping every good row and reporting every bad one (a test insists
/// the shipped table reports nothing).
pub fn parse_table(text: &'static str) -> (HashMap<String, Row>, Vec<String>) {
    let mut rows = HashMap::new();
    let mut errors = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let n = index + 1;
        let cols: Vec<&'static str> = line.split('\t').collect();
        let [source, event_type, class, activity] = cols[..] else {
            errors.push(format!(
                "line {n}: expected 4 tab-separated columns, found {}",
                cols.len()
            ));
            continue;
        };
        let (Ok(class_uid), Ok(activity_id)) = (class.parse::<u32>(), activity.parse::<u32>()) else {
            errors.push(format!("line {n}: class_uid and activity_id must be numbers"));
            continue;
        };
        match catalogue::class(class_uid) {
            None => errors.push(format!("line {n}: class {class_uid} is not one the mapping writes")),
            Some(c) if c.activity(activity_id).is_none() => {
                errors.push(format!(
                    "line {n}: activity {activity_id} is not defined for {}",
                    c.name
                ));
            }
            Some(_) => {
                let row = Row {
                    class: class_uid,
                    activity: activity_id,
                };
                if rows.insert(key(source, event_type), row).is_some() {
                    errors.push(format!("line {n}: {source} {event_type} is mapped twice"));
                }
            }
        }
    }
    (rows, errors)
}

static TABLE: LazyLock<HashMap<String, Row>> = LazyLock::new(|| parse_table(TABLE_TSV).0);

/// The table's key for a source and a type.
fn key(source: &str, event_type: &str) -> String {
    format!("{source}\t{event_type}")
}

/// The row of `event`: compliance records by `TYPE:sub_type`, then by `TYPE`; finding
/// events all alike; a type nobody listed is API Activity, Other.
pub fn row_of(event: &Event) -> Row {
    let source = event.source.as_str();
    let found = match event.source {
        Source::Guardrails => TABLE.get(&key(source, "*")),
        Source::Compliance => {
            let with_sub = event
                .details
                .get("sub_type")
                .and_then(Value::as_str)
                .map(|sub| format!("{}:{sub}", event.event_type));
            with_sub
                .and_then(|sub| TABLE.get(&key(source, &sub)))
                .or_else(|| TABLE.get(&key(source, &event.event_type)))
        }
        Source::AuditLog | Source::Inventory => TABLE.get(&key(source, &event.event_type)),
    };
    found.copied().unwrap_or(Row {
        class: API_ACTIVITY.uid,
        activity: 99,
    })
}

/// The OCSF event for `event`.
pub fn map(event: &Event) -> Value {
    let row = row_of(event);
    let class = catalogue::class(row.class).unwrap_or(API_ACTIVITY);
    let activity = if class.activity(row.activity).is_some() {
        row.activity
    } else {
        99
    };
    let severity_id = severity_id(event);
    let status_id = if class.is_finding() {
        1
    } else {
        match event.outcome {
            Outcome::Success => 1,
            Outcome::Failure => 2,
            Outcome::Unknown => 0,
        }
    };
    let mut out = Map::new();
    out.insert("class_uid".into(), json!(class.uid));
    out.insert("class_name".into(), json!(class.name));
    out.insert("category_uid".into(), json!(class.category_uid));
    out.insert("category_name".into(), json!(class.category_name));
    out.insert("activity_id".into(), json!(activity));
    let caption = class.activity(activity).unwrap_or("Other");
    // For Other, OCSF wants the activity's own name, not the word "Other".
    let activity_name = if activity == 99 { event.action.as_str() } else { caption };
    out.insert("activity_name".into(), json!(activity_name));
    out.insert(
        "type_uid".into(),
        json!(u64::from(class.uid) * 100 + u64::from(activity)),
    );
    out.insert("type_name".into(), json!(format!("{}: {caption}", class.name)));
    out.insert("severity_id".into(), json!(severity_id));
    out.insert("severity".into(), json!(catalogue::severity(severity_id)));
    out.insert("status_id".into(), json!(status_id));
    out.insert("status".into(), json!(catalogue::status(&class, status_id)));
    out.insert("time".into(), json!(event.occurred_at.timestamp_millis()));
    out.insert("message".into(), json!(message(event)));
    out.insert("metadata".into(), metadata(event));
    let actor = event.actor.as_ref();
    let endpoint = actor.and_then(src_endpoint);
    let user_agent = actor.and_then(|a| a.user_agent.as_deref()).filter(|s| !s.is_empty());
    if class.uid == DETECTION_FINDING.uid {
        finding(event, &mut out, endpoint);
    } else {
        out.insert("actor".into(), actor_of(event));
        if let Some(endpoint) = endpoint {
            out.insert("src_endpoint".into(), endpoint);
        }
        if let Some(agent) = user_agent {
            out.insert("http_request".into(), json!({ "user_agent": agent }));
        }
        class_specific(class.uid, event, &mut out);
    }
    out.insert("unmapped".into(), unmapped(event));
    if let Some(raw) = &event.raw {
        out.insert("raw_data".into(), json!(raw.json()));
    }
    Value::Object(out)
}

/// The attributes each class requires, and the ones it is best read with.
fn class_specific(class_uid: u32, event: &Event, out: &mut Map<String, Value>) {
    let target = event.target.as_ref();
    let actor_user = event.actor.as_ref().and_then(user_of_actor);
    let target_user = target.and_then(user_of_target);
    let unknown_user = || json!({ "name": "unknown" });
    match class_uid {
        // Authentication: who signed in or out, to which service.
        3002 => {
            out.insert("user".into(), actor_user.or(target_user).unwrap_or_else(unknown_user));
            out.insert("service".into(), json!({ "name": product_name(event.source) }));
        }
        // Account Change: the account changed (the target when it is one).
        3001 => {
            out.insert("user".into(), target_user.or(actor_user).unwrap_or_else(unknown_user));
        }
        // User Access Management: whose access changed, and to what.
        3005 => {
            let is_user = target.is_some_and(|t| matches!(t.target_type.as_str(), "user" | "project_user"));
            let user = if is_user { target_user } else { None };
            out.insert("user".into(), user.or(actor_user).unwrap_or_else(unknown_user));
            let privilege = target
                .and_then(|t| t.name.clone().or(t.id.clone()))
                .unwrap_or_else(|| event.action.clone());
            out.insert("privileges".into(), json!([privilege]));
            if let Some(resource) = target.and_then(resource_of) {
                out.insert("resources".into(), json!([resource]));
            }
        }
        // Group Management: the group, and the member when the event names one.
        3006 => {
            let group = target
                .and_then(|t| named(t.id.as_deref(), t.name.as_deref()))
                .unwrap_or_else(|| json!({ "name": "unknown" }));
            out.insert("group".into(), group);
        }
        // Entity Management: the project, key, account, certificate or setting.
        3004 => {
            out.insert("entity".into(), entity_of(event));
        }
        // API Activity: the operation, and what it touched.
        _ => {
            out.insert(
                "api".into(),
                json!({ "operation": event.event_type, "service": { "name": product_name(event.source) } }),
            );
            if !out.contains_key("src_endpoint") {
                out.insert("src_endpoint".into(), json!({ "name": "unknown" }));
            }
            if let Some(resource) = target.and_then(resource_of) {
                out.insert("resources".into(), json!([resource]));
            }
        }
    }
}

/// Detection Finding: the finding, and what it rests on as evidence (this class has no
/// actor or source endpoint of its own without a profile).
fn finding(event: &Event, out: &mut Map<String, Value>, endpoint: Option<Value>) {
    let first = event.findings.first();
    let rule = first
        .map(|f| f.rule.clone())
        .unwrap_or_else(|| event.event_type.clone());
    let mut info = Map::new();
    info.insert("uid".into(), json!(event.id));
    info.insert(
        "title".into(),
        json!(
            first
                .map(|f| f.title.clone())
                .unwrap_or_else(|| event.event_type.clone())
        ),
    );
    info.insert("types".into(), json!([event.event_type]));
    info.insert(
        "analytic".into(),
        json!({ "type_id": 1, "type": "Rule", "name": rule, "uid": rule }),
    );
    if let Some(f) = first.filter(|f| !f.message.is_empty()) {
        info.insert("desc".into(), json!(f.message));
    }
    if let Some(f) = first.filter(|f| !f.attack.is_empty()) {
        info.insert("attacks".into(), f.attack.iter().map(|id| attack(id)).collect());
    }
    out.insert("finding_info".into(), Value::Object(info));
    let mut evidence = Map::new();
    evidence.insert("data".into(), strip_nulls(event.details.clone()));
    if let Some(user) = event.actor.as_ref().and_then(user_of_actor) {
        evidence.insert("actor".into(), json!({ "user": user }));
    }
    if let Some(endpoint) = endpoint {
        evidence.insert("src_endpoint".into(), endpoint);
    }
    out.insert("evidences".into(), json!([Value::Object(evidence)]));
}

/// An ATT&CK technique id as OCSF's `attack`: a sub-technique (`T1110.001`) names its
/// technique too.
fn attack(id: &str) -> Value {
    match id.split_once('.') {
        Some((technique, _)) => json!({ "technique": { "uid": technique }, "sub_technique": { "uid": id } }),
        None => json!({ "technique": { "uid": id } }),
    }
}

fn message(event: &Event) -> String {
    match event
        .target
        .as_ref()
        .and_then(|t| t.name.as_deref().or(t.id.as_deref()))
    {
        Some(what) => format!("{} {what}", event.event_type),
        None => event.event_type.clone(),
    }
}

fn metadata(event: &Event) -> Value {
    let (vendor, feature) = match event.source {
        Source::AuditLog => ("OpenAI", "Audit Logs"),
        Source::Inventory => ("OpenAI", "Organization Inventory"),
        Source::Compliance => ("OpenAI", "Compliance Logs Platform"),
        Source::Guardrails => (SELF, "Guardrails"),
    };
    let mut meta = Map::new();
    meta.insert("version".into(), json!(VERSION));
    meta.insert(
        "product".into(),
        json!({ "name": product_name(event.source), "vendor_name": vendor, "feature": { "name": feature } }),
    );
    meta.insert("uid".into(), json!(event.id));
    meta.insert("event_code".into(), json!(event.event_type));
    meta.insert("log_name".into(), json!(event.source.as_str()));
    meta.insert("log_provider".into(), json!(SELF));
    meta.insert(
        "original_time".into(),
        json!(event.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
    );
    meta.insert("logged_time".into(), json!(event.ingested_at.timestamp_millis()));
    if let Some(org) = event.org_id.as_deref().filter(|o| !o.is_empty()) {
        meta.insert("tenant_uid".into(), json!(org));
    }
    Value::Object(meta)
}

fn product_name(source: Source) -> &'static str {
    match source {
        Source::AuditLog | Source::Inventory => "OpenAI Platform",
        Source::Compliance => "ChatGPT",
        Source::Guardrails => SELF,
    }
}

/// The highest finding severity, else Informational.
fn severity_id(event: &Event) -> u32 {
    match event.findings.iter().map(|f| f.severity).max() {
        Some(Severity::Critical) => 5,
        Some(Severity::High) => 4,
        Some(Severity::Medium) => 3,
        Some(Severity::Low) => 2,
        Some(Severity::Info) | None => 1,
    }
}

/// The actor as OCSF's: the user, or this daemon when nobody acted (inventory snapshots).
fn actor_of(event: &Event) -> Value {
    match event.actor.as_ref().and_then(user_of_actor) {
        Some(user) => json!({ "user": user }),
        None => json!({ "app_name": SELF }),
    }
}

fn user_of_actor(actor: &Actor) -> Option<Value> {
    let id = actor.id.as_deref().filter(|s| !s.is_empty());
    let email = actor.email.as_deref().filter(|e| is_email(e));
    let name = email.or(id)?;
    let mut user = Map::new();
    user.insert("name".into(), json!(name));
    if let Some(id) = id {
        user.insert("uid".into(), json!(id));
    }
    if let Some(email) = email {
        user.insert("email_addr".into(), json!(email));
    }
    if let Some(key) = actor.api_key_id.as_deref().filter(|s| !s.is_empty()) {
        user.insert("credential_uid".into(), json!(key));
    }
    let (type_id, caption) = match actor.actor_type.as_str() {
        "user" => (1, "User"),
        "system" => (3, "System"),
        _ => (99, "Other"),
    };
    user.insert("type_id".into(), json!(type_id));
    user.insert(
        "type".into(),
        json!(if type_id == 99 {
            actor.actor_type.as_str()
        } else {
            caption
        }),
    );
    Some(Value::Object(user))
}

fn user_of_target(target: &Target) -> Option<Value> {
    let id = target.id.as_deref().filter(|s| !s.is_empty());
    let name = target.name.as_deref().filter(|s| !s.is_empty());
    let mut user = Map::new();
    user.insert("name".into(), json!(name.or(id)?));
    if let Some(id) = id {
        user.insert("uid".into(), json!(id));
    }
    if let Some(email) = name.filter(|n| is_email(n)) {
        user.insert("email_addr".into(), json!(email));
    }
    Some(Value::Object(user))
}

/// `{uid, name}` with whichever is known; `None` when neither.
fn named(id: Option<&str>, name: Option<&str>) -> Option<Value> {
    let id = id.filter(|s| !s.is_empty());
    let name = name.filter(|s| !s.is_empty());
    let mut out = Map::new();
    if let Some(id) = id {
        out.insert("uid".into(), json!(id));
    }
    if let Some(name) = name.or(id) {
        out.insert("name".into(), json!(name));
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

fn resource_of(target: &Target) -> Option<Value> {
    let mut resource = named(target.id.as_deref(), target.name.as_deref())?;
    if let Value::Object(map) = &mut resource {
        map.insert("type".into(), json!(target.target_type));
    }
    Some(resource)
}

/// The managed entity: the target, typed where OCSF has a type for it.
fn entity_of(event: &Event) -> Value {
    let target = event.target.as_ref();
    let kind = target
        .map(|t| t.target_type.as_str())
        .unwrap_or(event.category.as_str());
    let mut entity = target
        .and_then(|t| named(t.id.as_deref(), t.name.as_deref()))
        .unwrap_or_else(|| json!({ "name": kind }));
    // OCSF's own types carry its caption; everything else is Other, named by its kind.
    let (type_id, caption) = match kind {
        "user" => (2, "User"),
        "group" => (3, "Group"),
        "organization" | "tenant" => (4, "Organization"),
        k if k == "policy" || k.ends_with("_policy") => (5, "Policy"),
        k => (99, k),
    };
    if let Value::Object(map) = &mut entity {
        map.insert("type_id".into(), json!(type_id));
        map.insert("type".into(), json!(caption));
    }
    entity
}

fn src_endpoint(actor: &Actor) -> Option<Value> {
    let ip = actor
        .ip
        .as_deref()
        .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok())?;
    let mut endpoint = Map::new();
    endpoint.insert("ip".into(), json!(ip));
    if let Some(geo) = &actor.geo {
        let mut location = Map::new();
        for (key, value) in [("country", &geo.country), ("city", &geo.city), ("region", &geo.region)] {
            if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
                location.insert(key.into(), json!(value));
            }
        }
        if !location.is_empty() {
            if let (Some(lat), Some(long)) = (geo.latitude, geo.longitude) {
                location.insert("lat".into(), json!(lat));
                location.insert("long".into(), json!(long));
            }
            endpoint.insert("location".into(), Value::Object(location));
        }
    }
    Some(Value::Object(endpoint))
}

/// What has no OCSF home: the v1 fields the class did not take, under `unmapped.openai`.
fn unmapped(event: &Event) -> Value {
    let mut openai = Map::new();
    openai.insert("source".into(), json!(event.source.as_str()));
    openai.insert("type".into(), json!(event.event_type));
    openai.insert("category".into(), json!(event.category));
    openai.insert("action".into(), json!(event.action));
    openai.insert("outcome".into(), json!(event.outcome));
    for (key, value) in [
        ("actor", serde_json::to_value(&event.actor)),
        ("target", serde_json::to_value(&event.target)),
        ("project", serde_json::to_value(&event.project)),
        ("findings", serde_json::to_value(&event.findings)),
    ] {
        if let Ok(value) = value {
            openai.insert(key.into(), value);
        }
    }
    openai.insert("details".into(), event.details.clone());
    json!({ "openai": strip_nulls(Value::Object(openai)) })
}

/// `value` without `null` members (validators refuse them; absent means the same).
fn strip_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().filter(|v| !v.is_null()).map(strip_nulls).collect()),
        other => other,
    }
}

/// Whether `text` passes OCSF's `email_t` check: `local@domain.tld` in plain characters.
fn is_email(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
    let domain_ok = domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && domain
            .split('.')
            .all(|label| !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    local_ok && domain_ok
}
