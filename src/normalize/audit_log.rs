//! One OpenAI Admin API audit-log record → one normalized [`Event`].

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::mapping::audit_log_mapping;
use super::{Actor, Context, Event, Geo, NormalizeError, Project, Source, Target};
use crate::openai::wire::{AuditLogActor, AuditLogActorApiKey, AuditLogActorSession, AuditLogProject};

/// Normalizes one audit-log record as received (an item of `ListAuditLogsResponse.data`).
///
/// A record without `id`, `type` or an integer `effective_at` is an error; an event type the
/// mapping table does not know still becomes an event (`other` / `unknown` / `unknown`).
pub fn audit_log(record: &Value, ctx: &Context) -> Result<Event, NormalizeError> {
    let (record_id, event_type, effective_at) = required(record)?;
    let occurred_at = DateTime::<Utc>::from_timestamp(effective_at, 0).ok_or_else(|| NormalizeError::OutOfRange {
        field: "effective_at",
        value: effective_at.to_string(),
        record_id: Some(record_id.to_string()),
    })?;
    // Optional parts are read leniently: an off-spec actor or project costs that field, not
    // the event, and `raw` still carries it.
    let actor_view = record.get("actor").and_then(|a| AuditLogActor::deserialize(a).ok());
    let project_view = record.get("project").and_then(|p| AuditLogProject::deserialize(p).ok());

    let id = super::event_id(Source::AuditLog, ctx.org_id.as_deref(), record_id);
    let mut event = Event::new(
        id,
        Source::AuditLog,
        ctx.org_id.clone(),
        event_type.to_string(),
        occurred_at,
    );

    // The payload sits under a key spelled exactly like the type; `null` means the same as
    // absent.
    let payload = record.get(event_type).filter(|p| !p.is_null());
    let mapping = audit_log_mapping(event_type);
    if let Some(mapping) = mapping {
        event.category = mapping.category.to_string();
        event.action = mapping.action.to_string();
        event.outcome = mapping.outcome;
        event.target = mapping.target_type.map(|target_type| target(target_type, payload));
    }

    let session = actor_view.as_ref().and_then(|a| match a.actor_type.as_deref() {
        Some("api_key") => None,
        _ => a.session.as_ref(),
    });
    event.actor = actor_view.as_ref().and_then(actor);
    event.project = project_view.and_then(|p| {
        let project = Project {
            id: non_empty(p.id),
            name: non_empty(p.name),
        };
        (project.id.is_some() || project.name.is_some()).then_some(project)
    });
    event.details = details(payload, session);
    event.raw = Some(record.clone());
    if mapping.is_none() {
        event.mark_unmapped();
    }
    Ok(event)
}

/// The three fields the spec requires, read directly so the error names the field instead of
/// quoting a parser message.
fn required(record: &Value) -> Result<(&str, &str, i64), NormalizeError> {
    let Some(object) = record.as_object() else {
        return Err(NormalizeError::NotAnObject);
    };
    let text = |field: &'static str| match object.get(field) {
        None | Some(Value::Null) => Err(NormalizeError::MissingField {
            field,
            record_id: record_id(record),
        }),
        Some(Value::String(s)) if !s.is_empty() => Ok(s.as_str()),
        Some(_) => Err(NormalizeError::WrongType {
            field,
            expected: "a non-empty string",
            record_id: record_id(record),
        }),
    };
    let id = text("id")?;
    let event_type = text("type")?;
    let effective_at = match object.get("effective_at") {
        None | Some(Value::Null) => Err(NormalizeError::MissingField {
            field: "effective_at",
            record_id: Some(id.to_string()),
        }),
        Some(Value::Number(n)) => n.as_i64().ok_or_else(|| match n.as_u64() {
            Some(big) => NormalizeError::OutOfRange {
                field: "effective_at",
                value: big.to_string(),
                record_id: Some(id.to_string()),
            },
            None => NormalizeError::WrongType {
                field: "effective_at",
                expected: "an integer (unix seconds)",
                record_id: Some(id.to_string()),
            },
        }),
        Some(_) => Err(NormalizeError::WrongType {
            field: "effective_at",
            expected: "an integer (unix seconds)",
            record_id: Some(id.to_string()),
        }),
    }?;
    Ok((id, event_type, effective_at))
}

fn record_id(record: &Value) -> Option<String> {
    record.get("id").and_then(Value::as_str).map(str::to_string)
}

/// Who acted: the signed-in user of a browser session, or the owner of the API key used.
fn actor(actor: &AuditLogActor) -> Option<Actor> {
    // `type` says which branch is meant; fall back to whichever is present when it is
    // missing or new.
    match (actor.actor_type.as_deref(), &actor.session, &actor.api_key) {
        (Some("api_key"), _, Some(key)) => Some(api_key_actor(key)),
        (Some("session"), Some(session), _) => Some(session_actor(session)),
        (_, Some(session), _) => Some(session_actor(session)),
        (_, None, Some(key)) => Some(api_key_actor(key)),
        (_, None, None) => None,
    }
}

fn session_actor(session: &AuditLogActorSession) -> Actor {
    let user = session.user.as_ref();
    let geo = session.ip_address_details.as_ref().and_then(|d| {
        let geo = Geo {
            country: non_empty(d.country.clone()),
            city: non_empty(d.city.clone()),
            region: non_empty(d.region.clone()),
            asn: non_empty(d.asn.clone()),
        };
        (geo != Geo::default()).then_some(geo)
    });
    Actor {
        actor_type: "user".to_string(),
        id: non_empty(user.and_then(|u| u.id.clone())),
        email: non_empty(user.and_then(|u| u.email.clone())),
        api_key_id: None,
        ip: non_empty(session.ip_address.clone()),
        user_agent: non_empty(session.user_agent.clone()),
        geo,
    }
}

fn api_key_actor(key: &AuditLogActorApiKey) -> Actor {
    let kind = match key.key_type.as_deref() {
        Some(kind @ ("user" | "service_account")) => Some(kind),
        _ if key.service_account.is_some() => Some("service_account"),
        _ if key.user.is_some() => Some("user"),
        _ => None,
    };
    let (actor_type, id, email) = match kind {
        Some("service_account") => (
            "service_account",
            key.service_account.as_ref().and_then(|s| s.id.clone()),
            None,
        ),
        Some(_) => (
            "user",
            key.user.as_ref().and_then(|u| u.id.clone()),
            key.user.as_ref().and_then(|u| u.email.clone()),
        ),
        // An owner we cannot tell: the key itself is all we know.
        None => ("api_key", None, None),
    };
    Actor {
        actor_type: actor_type.to_string(),
        id: non_empty(id),
        email: non_empty(email),
        api_key_id: non_empty(key.id.clone()),
        ..Actor::default()
    }
}

/// What the event acted on. Payloads that list several objects (`certificates.activated`,
/// `ip_allowlist.config.*`) have no single id; their lists stay in `details`.
fn target(target_type: &str, payload: Option<&Value>) -> Target {
    let text = |pointer: &str| {
        payload
            .and_then(|p| p.pointer(pointer))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    Target {
        target_type: target_type.to_string(),
        id: text("/id"),
        // The first label a person would recognise: most payloads carry `name`; groups say
        // `group_name`, roles `role_name`, connector bindings `connector_name`, and an invite
        // is known by the address it went to.
        name: [
            "/name",
            "/data/name",
            "/data/group_name",
            "/role_name",
            "/connector_name",
            "/data/email",
        ]
        .into_iter()
        .find_map(text),
    }
}

/// The payload minus its `id` (already the target id), plus the session's TLS fingerprints,
/// which the schema omits but which analysts match on.
fn details(payload: Option<&Value>, session: Option<&AuditLogActorSession>) -> Value {
    let mut details = match payload {
        Some(Value::Object(object)) => {
            let mut object = object.clone();
            object.remove("id");
            object
        }
        // A payload that is not an object is off-spec; keep it rather than guess.
        Some(other) => Map::from_iter([("payload".to_string(), other.clone())]),
        None => Map::new(),
    };
    let fingerprints: Map<String, Value> = session
        .into_iter()
        .flat_map(|s| [("ja3", &s.ja3), ("ja4", &s.ja4)])
        .filter_map(|(key, value)| non_empty(value.clone()).map(|v| (key.to_string(), Value::String(v))))
        .collect();
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
mod tests {
    use super::*;
    use crate::normalize::{CATEGORIES, Outcome};
    use serde_json::json;

    const API_KEY_CREATED: &str = include_str!("../../tests/fixtures/openai/audit_log_api_key_created.json");
    const INVITE_SENT: &str = include_str!("../../tests/fixtures/openai/audit_log_invite_sent.json");
    const LOGIN_FAILED: &str = include_str!("../../tests/fixtures/openai/audit_log_login_failed.json");
    const ROLE_BOUND: &str = include_str!("../../tests/fixtures/openai/audit_log_role_bound_to_resource.json");
    const PAGE: &str = include_str!("../../tests/fixtures/openai/audit_logs_page.json");
    const DOCUMENTED_TYPES: &str = include_str!("../../tests/fixtures/audit_log_event_types.txt");

    fn fixture(text: &str) -> Value {
        serde_json::from_str(text).expect("fixture is valid JSON")
    }

    fn page_item(index: usize) -> Value {
        fixture(PAGE)["data"][index].clone()
    }

    fn org() -> Context {
        Context {
            org_id: Some("org-abc".into()),
        }
    }

    fn normalize(record: &Value) -> Event {
        audit_log(record, &org()).expect("record normalizes")
    }

    #[test]
    fn a_session_actor_carries_the_user_address_agent_and_geo() {
        let event = normalize(&fixture(API_KEY_CREATED));
        assert_eq!(
            event.actor,
            Some(Actor {
                actor_type: "user".into(),
                id: Some("user-Rb71Mx2Kq9Lw4Tz6Pv8Nc3Hd".into()),
                email: Some("sam.patel@example.com".into()),
                api_key_id: None,
                ip: Some("81.2.69.142".into()),
                user_agent: Some(
                    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 \
                     (KHTML, like Gecko) Version/18.2 Safari/605.1.15"
                        .into()
                ),
                geo: Some(Geo {
                    country: Some("GB".into()),
                    city: Some("London".into()),
                    region: Some("England".into()),
                    asn: Some("20712".into()),
                }),
            })
        );
    }

    #[test]
    fn an_api_key_creation_becomes_a_credential_event_on_the_key() {
        let record = fixture(API_KEY_CREATED);
        let event = normalize(&record);
        assert_eq!(event.id, "openai.audit_log:org-abc:audit_log-Ck4Lm5Nn6Op7Qq8Rr9Ss0Tt1");
        assert_eq!(event.source, Source::AuditLog);
        assert_eq!(event.org_id.as_deref(), Some("org-abc"));
        assert_eq!(event.event_type, "api_key.created");
        assert_eq!(
            (event.category.as_str(), event.action.as_str(), event.outcome),
            ("credential", "created", Outcome::Success)
        );
        assert_eq!(event.occurred_at.to_rfc3339(), "2026-02-12T13:18:31+00:00");
        assert_eq!(
            event.target,
            Some(Target {
                target_type: "api_key".into(),
                id: Some("key_9VkLp2Ws7Qe4".into()),
                name: None,
            })
        );
        assert_eq!(
            event.project,
            Some(Project {
                id: Some("proj_Ab12Cd34Ef56Gh78".into()),
                name: Some("Billing service".into()),
            })
        );
        assert_eq!(
            event.details,
            json!({
                "data": {"scopes": ["api.model.request"]},
                "session": {
                    "ja3": "f90ffded875933863a95a1a84285c922",
                    "ja4": "q13d0311h3_55b375c5d22e_653d80c3fe9d"
                }
            })
        );
        assert!(event.findings.is_empty());
        assert_eq!(event.raw, Some(record));
    }

    #[test]
    fn a_service_account_key_actor_is_the_service_account() {
        let event = normalize(&page_item(1));
        assert_eq!(
            event.actor,
            Some(Actor {
                actor_type: "service_account".into(),
                id: Some("svc_acct_Jd83Kq0Lm2Rt".into()),
                api_key_id: Some("key_7TqZr2WmXc9Ls4Np".into()),
                ..Actor::default()
            })
        );
        assert_eq!(
            (event.category.as_str(), event.action.as_str()),
            ("organization", "archived")
        );
        assert_eq!(
            event.target.and_then(|t| t.id).as_deref(),
            Some("proj_Zx81Yw72Vu63Ts54")
        );
    }

    #[test]
    fn an_admin_key_invite_names_the_key_owner_the_default_project_and_the_invited_address() {
        let event = normalize(&fixture(INVITE_SENT));
        assert_eq!(
            event.actor,
            Some(Actor {
                actor_type: "user".into(),
                id: Some("user-Hk28sLq9ZxWv3mPn7RtY1cBd".into()),
                email: Some("dana.ortiz@example.com".into()),
                api_key_id: Some("key_Adm1nTr4ck1ng".into()),
                ..Actor::default()
            })
        );
        assert_eq!(
            event.project,
            Some(Project {
                id: Some("proj_default0000000000000001".into()),
                name: Some("Default project".into()),
            })
        );
        assert_eq!(
            event.target,
            Some(Target {
                target_type: "invite".into(),
                id: Some("invite-Qm3Nr8Ls2Kt7".into()),
                name: Some("new.hire@example.com".into()),
            })
        );
        assert_eq!((event.category.as_str(), event.action.as_str()), ("identity", "sent"));
        assert_eq!(
            event.details,
            json!({"data": {"email": "new.hire@example.com", "role": "member"}})
        );
    }

    #[test]
    fn a_tenant_role_binding_targets_the_connector_and_keeps_the_binding_in_details() {
        let event = normalize(&fixture(ROLE_BOUND));
        let resource = "9f1c2e3a-0b1d-4c2e-8a3f-1122334455aa__connector_6a1f0c2d9e8b7a65";
        assert_eq!(
            (event.category.as_str(), event.action.as_str()),
            ("access_control", "bound")
        );
        assert_eq!(
            event.target,
            Some(Target {
                target_type: "resource".into(),
                id: Some(resource.into()),
                name: Some("Google Drive".into()),
            })
        );
        assert_eq!(event.project, None);
        assert_eq!(event.details["role_id"], "role_01J9XK7M2QWERTY");
        assert_eq!(event.details["resource_type"], "workspace_connector");
        assert_eq!(event.details["permissions"], json!(["connector.use"]));
        assert!(event.details.get("id").is_none());
        let actor = event.actor.expect("session actor");
        assert_eq!(actor.ip.as_deref(), Some("89.160.20.128"));
        assert_eq!((actor.user_agent, actor.geo), (None, None));
    }

    #[test]
    fn a_failed_login_is_a_failure_with_the_error_in_details_and_no_target() {
        let event = normalize(&fixture(LOGIN_FAILED));
        assert_eq!(
            (event.category.as_str(), event.action.as_str(), event.outcome),
            ("authentication", "login", Outcome::Failure)
        );
        assert_eq!(event.target, None);
        // Empty fingerprints and an empty asn are absent values, not values.
        assert_eq!(
            event.details,
            json!({
                "error_code": "invalid_credentials",
                "error_message": "The username or password provided is incorrect."
            })
        );
        let geo = event.actor.and_then(|a| a.geo).expect("geo");
        assert_eq!(geo.country.as_deref(), Some("CN"));
        assert_eq!(geo.asn, None);
    }

    #[test]
    fn a_login_without_a_payload_keeps_only_the_session_fingerprints() {
        let event = normalize(&page_item(0));
        assert_eq!(event.outcome, Outcome::Success);
        assert_eq!(event.target, None);
        assert_eq!(
            event.details,
            json!({"session": {
                "ja3": "353a03072e841d5004dfaa78561ccc70",
                "ja4": "t13d691100_8b2139ff7677_f0e8fcc46740"
            }})
        );
    }

    #[test]
    fn every_record_of_the_example_page_normalizes() {
        for record in fixture(PAGE)["data"].as_array().expect("data array") {
            let event = normalize(record);
            assert_ne!(event.category, "other", "{}", event.event_type);
        }
    }

    #[test]
    fn a_documented_type_without_a_payload_still_gets_its_target_type() {
        let event = normalize(&json!({"id": "a1", "type": "tunnel.created", "effective_at": 0}));
        assert_eq!(
            event.target,
            Some(Target {
                target_type: "tunnel".into(),
                ..Target::default()
            })
        );
        assert_eq!(event.details, json!({}));
        assert_eq!(event.actor, None);
    }

    #[test]
    fn every_documented_type_normalizes_with_its_table_category() {
        for event_type in DOCUMENTED_TYPES.lines().filter(|l| !l.is_empty()) {
            let event = normalize(&json!({"id": "a1", "type": event_type, "effective_at": 1}));
            assert!(
                CATEGORIES.contains(&event.category.as_str()) && event.category != "other",
                "{event_type}"
            );
        }
    }

    #[test]
    fn activating_certificates_has_no_single_target_id_and_keeps_the_list() {
        let certificates = json!([{"id": "cert_1", "name": "a"}, {"id": "cert_2", "name": "b"}]);
        let event = normalize(&json!({
            "id": "a1", "type": "certificates.activated", "effective_at": 1,
            "certificates.activated": {"certificates": certificates}
        }));
        assert_eq!(
            event.target,
            Some(Target {
                target_type: "certificate".into(),
                ..Target::default()
            })
        );
        assert_eq!(event.details, json!({"certificates": certificates}));
    }

    #[test]
    fn an_unknown_type_passes_through_as_other_unknown_unknown() {
        let event = normalize(&json!({
            "id": "a1", "type": "spaceship.launched", "effective_at": 1,
            "spaceship.launched": {"id": "ship_1", "fuel": "full"}
        }));
        assert_eq!(event.event_type, "spaceship.launched");
        assert_eq!(
            (event.category.as_str(), event.action.as_str(), event.outcome),
            ("other", "unknown", Outcome::Unknown)
        );
        assert_eq!(event.target, None);
        assert_eq!(event.details, json!({"fuel": "full", "unmapped_type": true}));
    }

    #[test]
    fn the_id_is_the_same_every_time_and_differs_between_organizations() {
        let record = fixture(API_KEY_CREATED);
        let first = normalize(&record);
        let again = normalize(&record);
        let other_org = audit_log(
            &record,
            &Context {
                org_id: Some("org-xyz".into()),
            },
        )
        .expect("normalizes");
        let no_org = audit_log(&record, &Context::default()).expect("normalizes");
        assert_eq!(first.id, again.id);
        assert_ne!(first.id, other_org.id);
        assert_eq!(no_org.id, "openai.audit_log:_:audit_log-Ck4Lm5Nn6Op7Qq8Rr9Ss0Tt1");
    }

    #[test]
    fn a_record_without_effective_at_is_an_error_naming_the_field_and_record() {
        let mut record = fixture(API_KEY_CREATED);
        record.as_object_mut().map(|o| o.remove("effective_at"));
        let error = audit_log(&record, &org()).expect_err("must fail");
        assert_eq!(error.field(), Some("effective_at"));
        assert_eq!(error.kind(), "missing_field");
        assert_eq!(
            error.to_string(),
            "record `audit_log-Ck4Lm5Nn6Op7Qq8Rr9Ss0Tt1` has no `effective_at`"
        );
    }

    #[test]
    fn a_non_numeric_effective_at_is_a_wrong_type_error() {
        let error = audit_log(
            &json!({"id": "a1", "type": "api_key.created", "effective_at": "yesterday"}),
            &org(),
        )
        .expect_err("must fail");
        assert_eq!(error.kind(), "wrong_type");
        assert_eq!(error.field(), Some("effective_at"));
    }

    #[test]
    fn a_record_without_id_or_type_is_an_error_naming_the_field() {
        let no_id = audit_log(&json!({"type": "api_key.created", "effective_at": 1}), &org());
        let no_type = audit_log(&json!({"id": "a1", "effective_at": 1}), &org());
        let not_object = audit_log(&json!([1, 2]), &org());
        assert_eq!(no_id.map_err(|e| e.field()), Err(Some("id")));
        assert_eq!(no_type.map_err(|e| e.field()), Err(Some("type")));
        assert_eq!(not_object, Err(NormalizeError::NotAnObject));
    }

    #[test]
    fn an_off_spec_actor_or_project_costs_only_that_field() {
        let record = json!({
            "id": "a1", "type": "login.succeeded", "effective_at": 1,
            "actor": "me", "project": "proj_1"
        });
        let event = normalize(&record);
        assert_eq!((event.actor, event.project), (None, None));
        assert_eq!(event.raw, Some(record));
    }

    #[test]
    fn a_fractional_effective_at_is_a_wrong_type_error() {
        let error = audit_log(
            &json!({"id": "a1", "type": "api_key.created", "effective_at": 1.5}),
            &org(),
        )
        .expect_err("must fail");
        assert_eq!(error.kind(), "wrong_type");
    }
}
