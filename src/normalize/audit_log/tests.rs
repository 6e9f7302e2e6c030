//! Tests of the audit-log normalizer: actors, targets, payloads, coordinates and errors.

use super::*;
use crate::normalize::{CATEGORIES, Outcome};
use crate::openai::wire::Record;
use serde_json::json;

const API_KEY_CREATED: &str = include_str!("../../../tests/fixtures/openai/audit_log_api_key_created.json");
const INVITE_SENT: &str = include_str!("../../../tests/fixtures/openai/audit_log_invite_sent.json");
const LOGIN_FAILED: &str = include_str!("../../../tests/fixtures/openai/audit_log_login_failed.json");
const ROLE_BOUND: &str = include_str!("../../../tests/fixtures/openai/audit_log_role_bound_to_resource.json");
const PAGE: &str = include_str!("../../../tests/fixtures/openai/audit_logs_page.json");
const DOCUMENTED_TYPES: &str = include_str!("../../../tests/fixtures/audit_log_event_types.txt");

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

/// The normalizer on a record given as a tree, read through its text as the stream reads it.
fn audit_log(record: &Value, ctx: &Context) -> Result<Event, NormalizeError> {
    super::audit_log(&Record::from(record.clone()).members(), ctx)
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
                latitude: Some(51.50853),
                longitude: Some(-0.12574),
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
    assert_eq!(
        event.raw, None,
        "raw is the caller's: the stream sets it from the text as received"
    );
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
    assert_eq!(
        event.raw, None,
        "raw is the caller's: the stream sets it from the text as received"
    );
}

#[test]
fn a_role_assignment_names_the_role_its_id_carries() {
    let id = "role_assignment_role-api-organization-owner__api-organization__org-abc123_user-newadmin456";
    let event = normalize(&json!({
        "id": "a1", "type": "role.assignment.created", "effective_at": 1,
        "role.assignment.created": {"id": id, "principal_id": "user-newadmin456", "principal_type": "user",
                                    "resource_id": "org-abc123", "resource_type": "api.organization"}
    }));
    assert_eq!(event.details["role_name"], "api-organization-owner");
    assert_eq!(event.details["resource_type"], "api.organization");
    assert_eq!(
        event.target,
        Some(Target {
            target_type: "role_assignment".into(),
            id: Some(id.into()),
            name: Some("api-organization-owner".into()),
        })
    );
    let other = normalize(&json!({
        "id": "a2", "type": "role.assignment.created", "effective_at": 1,
        "role.assignment.created": {"id": "ra_123", "principal_id": "user-x"}
    }));
    assert!(other.details.get("role_name").is_none());
    assert_eq!(assigned_role("role_assignment_role-__x"), None);
}

#[test]
fn coordinates_are_kept_as_numbers_and_dropped_when_empty_or_alone() {
    let mut record = fixture(API_KEY_CREATED);
    let details = "/actor/session/ip_address_details";
    let geo = |record: &Value| normalize(record).actor.and_then(|a| a.geo).expect("geo");
    assert_eq!(
        (geo(&record).latitude, geo(&record).longitude),
        (Some(51.50853), Some(-0.12574))
    );
    record.pointer_mut(details).expect("details")["latitude"] = json!("");
    let half = geo(&record);
    assert_eq!((half.latitude, half.longitude), (None, None));
    assert_eq!(half.country.as_deref(), Some("GB"), "the rest stays");
    let text = serde_json::to_string(&half).expect("json");
    assert!(!text.contains("latitude"), "absent coordinates are left out: {text}");
    record.pointer_mut(details).expect("details")["latitude"] = json!("95.0");
    assert_eq!(geo(&record).latitude, None, "out of range");
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

#[test]
fn a_record_nested_past_the_parsers_depth_limit_still_becomes_its_event() {
    // `serde_json` builds no tree deeper than 128 levels; the page is read as text, and the
    // normalizer reads only the members it needs, so such a payload costs its details only.
    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    let page = format!(
        r#"{{"object": "list", "has_more": false, "data": [{{"id": "audit_log-deep", "type": "api_key.created", "effective_at": 1770000000, "api_key.created": {{"id": "key_1", "data": {deep}}}}}]}}"#
    );
    let page: crate::openai::wire::ListAuditLogsResponse = serde_json::from_str(&page).expect("the page reads");
    let record = &page.data[0];
    let event = super::audit_log(&record.members(), &org()).expect("the record normalizes");
    assert_eq!(event.event_type, "api_key.created");
    assert_eq!(event.id, "openai.audit_log:org-abc:audit_log-deep");
    assert_eq!(event.details, json!({}));
    assert!(record.text().get().contains(&deep), "the record's text is whole");
}

#[test]
fn an_actor_parsed_by_the_page_reader_gives_the_event_the_text_gives() {
    let single = [API_KEY_CREATED, INVITE_SENT, LOGIN_FAILED, ROLE_BOUND].map(|r| fixture(r).to_string());
    let mut bodies = vec![PAGE.to_string()];
    bodies.push(format!(
        r#"{{"object":"list","data":[{}],"has_more":false}}"#,
        single.join(",")
    ));
    let mut compared = 0;
    for body in bodies {
        let page = crate::openai::wire::read_audit_log_page(body.as_bytes()).expect("a page");
        for mut record in page.data {
            let parsed = record.take_actor();
            assert!(
                parsed.is_some(),
                "the page reader parsed the actor: {}",
                record.text().get()
            );
            let members = record.members();
            let with = audit_log_with(&members, parsed, &org()).expect("normalizes");
            let mut without = super::audit_log(&members, &org()).expect("normalizes");
            without.ingested_at = with.ingested_at;
            assert!(with.actor.is_some());
            assert_eq!(with, without);
            compared += 1;
        }
    }
    assert!(compared >= 6, "{compared}");
}
