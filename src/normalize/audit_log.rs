//! One OpenAI Admin API audit-log record → one normalized [`Event`].

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::mapping::audit_log_mapping;
use super::{Actor, Context, Event, Geo, NormalizeError, Project, Source, Target};
use crate::openai::wire::{
    AuditLogActor, AuditLogActorApiKey, AuditLogActorSession, AuditLogProject, Integer, Members, WrongType,
};

/// Normalizes one audit-log record as received (an item of `ListAuditLogsResponse.data`),
/// read through its [`Members`]: the fields it uses are parsed from the record's text, the
/// rest is not touched.
///
/// A record without `id`, `type` or an integer `effective_at` is an error; an event type the
/// mapping table does not know still becomes an event (`other` / `unknown` / `unknown`).
/// `raw` is left to the caller, which holds the record's text as received.
pub fn audit_log(record: &Members<'_>, ctx: &Context) -> Result<Event, NormalizeError> {
    audit_log_with(record, None, ctx)
}

/// [`audit_log`], given the record's `actor` when the reader of its page parsed it already
/// ([`Record::take_actor`](crate::openai::wire::Record::take_actor)); without one, the actor
/// is read from `record`.
pub fn audit_log_with(
    record: &Members<'_>,
    parsed_actor: Option<AuditLogActor>,
    ctx: &Context,
) -> Result<Event, NormalizeError> {
    let (record_id, event_type, effective_at) = required(record)?;
    let occurred_at = DateTime::<Utc>::from_timestamp(effective_at, 0).ok_or_else(|| NormalizeError::OutOfRange {
        field: "effective_at",
        value: effective_at.to_string(),
        record_id: Some(record_id.to_string()),
    })?;
    // Optional parts are read leniently: an off-spec actor or project costs that field, not
    // the event, and `raw` still carries it.
    let mut actor_view = parsed_actor.or_else(|| record.parse::<AuditLogActor>("actor"));
    let project_view = record.parse::<AuditLogProject>("project");

    let id = super::event_id(Source::AuditLog, ctx.org_id.as_deref(), &record_id);
    // The payload sits under a key spelled exactly like the type; `null` means the same as
    // absent.
    let payload = record.parse::<Value>(&event_type);
    let mapping = audit_log_mapping(&event_type);
    let mut event = Event::new(
        id,
        Source::AuditLog,
        ctx.org_id.clone(),
        event_type.into_owned(),
        occurred_at,
    );
    if let Some(mapping) = mapping {
        event.category = mapping.category.to_string();
        event.action = mapping.action.to_string();
        event.outcome = mapping.outcome;
        event.target = mapping
            .target_type
            .map(|target_type| target(target_type, payload.as_ref()));
    }

    let session = actor_view.as_mut().and_then(|a| match a.actor_type.as_deref() {
        Some("api_key") => None,
        _ => a.session.as_mut(),
    });
    let fingerprints = fingerprints(session);
    // The view is ours: its strings move into the event instead of being copied.
    event.actor = actor_view.and_then(actor);
    event.project = project_view.and_then(|p| {
        let project = Project {
            id: non_empty(p.id),
            name: non_empty(p.name),
        };
        (project.id.is_some() || project.name.is_some()).then_some(project)
    });
    event.details = details(payload, fingerprints);
    // A role assignment names its role only inside its id; say it plainly so rules and
    // people need not parse the id.
    if let Some(role) = event
        .target
        .as_ref()
        .and_then(|t| t.id.as_deref())
        .and_then(assigned_role)
        .map(str::to_string)
    {
        if let Value::Object(details) = &mut event.details {
            details
                .entry("role_name")
                .or_insert_with(|| Value::String(role.clone()));
        }
        if let Some(target) = event.target.as_mut() {
            target.name.get_or_insert(role);
        }
    }
    if mapping.is_none() {
        event.mark_unmapped();
    }
    Ok(event)
}

/// The role of a role-assignment id, `role_assignment_role-<role>__<resource type>__…`
/// (`role_assignment_role-api-organization-owner__api-organization__org-abc_user-x` →
/// `api-organization-owner`); `None` for any other id.
fn assigned_role(id: &str) -> Option<&str> {
    let rest = id.strip_prefix("role_assignment_role-")?;
    let role = rest.split("__").next()?;
    (!role.is_empty()).then_some(role)
}

/// The three fields the spec requires, read directly so the error names the field instead of
/// quoting a parser message.
fn required<'a>(record: &Members<'a>) -> Result<(Cow<'a, str>, Cow<'a, str>, i64), NormalizeError> {
    if !record.is_object() {
        return Err(NormalizeError::NotAnObject);
    }
    let record_id = || record.str("id").ok().flatten().map(Cow::into_owned);
    let text = |field: &'static str| match record.str(field) {
        Ok(None) => Err(NormalizeError::MissingField {
            field,
            record_id: record_id(),
        }),
        Ok(Some(s)) if !s.is_empty() => Ok(s),
        _ => Err(NormalizeError::WrongType {
            field,
            expected: "a non-empty string",
            record_id: record_id(),
        }),
    };
    let id = text("id")?;
    let event_type = text("type")?;
    let effective_at = match record.integer("effective_at") {
        Ok(Some(Integer::Fits(at))) => Ok(at),
        Ok(None) => Err(NormalizeError::MissingField {
            field: "effective_at",
            record_id: Some(id.to_string()),
        }),
        Ok(Some(Integer::TooLarge(big))) => Err(NormalizeError::OutOfRange {
            field: "effective_at",
            value: big.to_string(),
            record_id: Some(id.to_string()),
        }),
        Err(WrongType) => Err(NormalizeError::WrongType {
            field: "effective_at",
            expected: "an integer (unix seconds)",
            record_id: Some(id.to_string()),
        }),
    }?;
    Ok((id, event_type, effective_at))
}

/// Who acted: the signed-in user of a browser session, or the owner of the API key used.
fn actor(actor: AuditLogActor) -> Option<Actor> {
    // `type` says which branch is meant; fall back to whichever is present when it is
    // missing or new.
    match (actor.actor_type.as_deref(), actor.session, actor.api_key) {
        (Some("api_key"), _, Some(key)) => Some(api_key_actor(key)),
        (Some("session"), Some(session), _) => Some(session_actor(session)),
        (_, Some(session), _) => Some(session_actor(session)),
        (_, None, Some(key)) => Some(api_key_actor(key)),
        (_, None, None) => None,
    }
}

fn session_actor(session: AuditLogActorSession) -> Actor {
    let (id, email) = session.user.map_or((None, None), |u| (u.id, u.email));
    let geo = session.ip_address_details.and_then(|d| {
        Geo {
            country: non_empty(d.country),
            city: non_empty(d.city),
            region: non_empty(d.region),
            asn: non_empty(d.asn),
            ..Geo::default()
        }
        .with_coordinates(d.latitude.as_deref(), d.longitude.as_deref())
        .non_empty()
    });
    Actor {
        actor_type: "user".to_string(),
        id: non_empty(id),
        email: non_empty(email),
        api_key_id: None,
        ip: non_empty(session.ip_address),
        user_agent: non_empty(session.user_agent),
        geo,
    }
}

fn api_key_actor(key: AuditLogActorApiKey) -> Actor {
    let kind = match key.key_type.as_deref() {
        Some("service_account") => Some(true),
        Some("user") => Some(false),
        _ if key.service_account.is_some() => Some(true),
        _ if key.user.is_some() => Some(false),
        _ => None,
    };
    let (actor_type, id, email) = match kind {
        Some(true) => ("service_account", key.service_account.and_then(|s| s.id), None),
        Some(false) => {
            let (id, email) = key.user.map_or((None, None), |u| (u.id, u.email));
            ("user", id, email)
        }
        // An owner we cannot tell: the key itself is all we know.
        None => ("api_key", None, None),
    };
    Actor {
        actor_type: actor_type.to_string(),
        id: non_empty(id),
        email: non_empty(email),
        api_key_id: non_empty(key.id),
        ..Actor::default()
    }
}

/// What the event acted on. Payloads that list several objects (`certificates.activated`,
/// `ip_allowlist.config.*`) have no single id; their lists stay in `details`.
fn target(target_type: &str, payload: Option<&Value>) -> Target {
    // Key paths, walked with map lookups (a JSON pointer is split and unescaped per call).
    let text = |path: &[&str]| {
        path.iter()
            .try_fold(payload?, |v, key| v.get(key))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    Target {
        target_type: target_type.to_string(),
        id: text(&["id"]),
        // The first label a person would recognise: most payloads carry `name`; groups say
        // `group_name`, roles `role_name`, connector bindings `connector_name`, and an invite
        // is known by the address it went to.
        name: [
            &["name"][..],
            &["data", "name"],
            &["data", "group_name"],
            &["role_name"],
            &["connector_name"],
            &["data", "email"],
        ]
        .into_iter()
        .find_map(text),
    }
}

/// The session's TLS fingerprints (`ja3`, `ja4`), which the schema omits but which analysts
/// match on.
/// They are taken out of the session (the actor built from it has no place for them).
fn fingerprints(session: Option<&mut AuditLogActorSession>) -> Map<String, Value> {
    session
        .into_iter()
        .flat_map(|s| [("ja3", s.ja3.take()), ("ja4", s.ja4.take())])
        .filter_map(|(key, value)| non_empty(value).map(|v| (key.to_string(), Value::String(v))))
        .collect()
}

/// The payload minus its `id` (already the target id), plus the session's fingerprints.
fn details(payload: Option<Value>, fingerprints: Map<String, Value>) -> Value {
    let mut details = match payload {
        Some(Value::Object(mut object)) => {
            object.remove("id");
            object
        }
        // A payload that is not an object is off-spec; keep it rather than guess.
        Some(other) => Map::from_iter([("payload".to_string(), other)]),
        None => Map::new(),
    };
    if !fingerprints.is_empty() && !details.contains_key("session") {
        details.insert("session".to_string(), Value::Object(fingerprints));
    }
    Value::Object(details)
}

/// Live data sends `""` for unknown values; an empty string is no value.
fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|s| !s.trim().is_empty())
}

#[cfg(test)]
mod tests;
