//! Tests of the built-in pack: for every rule a normalized event that fires it and a near
//! miss that does not, and the stateful rules across a restart.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::engine::Engine;
use super::rule::{Inputs, RuleSet};
use super::stateful::State;
use crate::normalize::{Actor, Event, Geo, Outcome, Source, Target};
use crate::state::StateDir;

const T0: i64 = 1_770_000_000;

fn engine_with(key_admins: &[String]) -> Engine {
    let rules = RuleSet::build(&Inputs {
        key_admins,
        ..Inputs::default()
    })
    .expect("built-in pack");
    Engine::new(Arc::new(rules), None)
}

fn engine() -> Engine {
    engine_with(&[])
}

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).expect("time")
}

/// An audit-log event as the normalizer makes it.
fn audit(ty: &str, n: u32, details: Value) -> Event {
    let mut e = Event::new(
        format!("openai.audit_log:org-1:audit_log-{ty}-{n}"),
        Source::AuditLog,
        Some("org-1".into()),
        ty.into(),
        at(T0 + i64::from(n)),
    );
    e.actor = Some(Actor {
        actor_type: "user".into(),
        id: Some("user-ann".into()),
        email: Some("ann@example.com".into()),
        ip: Some("198.51.100.7".into()),
        geo: Some(Geo {
            country: Some("US".into()),
            ..Geo::default()
        }),
        ..Actor::default()
    });
    e.details = details;
    e
}

fn login(ok: bool, n: u32, ip: &str, country: &str) -> Event {
    let mut e = audit(if ok { "login.succeeded" } else { "login.failed" }, n, json!({}));
    e.category = "authentication".into();
    e.outcome = if ok { Outcome::Success } else { Outcome::Failure };
    if let Some(a) = e.actor.as_mut() {
        a.ip = Some(ip.into());
        a.geo = Some(Geo {
            country: Some(country.into()),
            ..Geo::default()
        });
    }
    e
}

fn compliance(ty: &str, n: u32, raw: Value) -> Event {
    let mut e = Event::new(
        format!("chatgpt.compliance:ws-1:{ty}-{n}"),
        Source::Compliance,
        Some("ws-1".into()),
        ty.into(),
        at(T0 + i64::from(n)),
    );
    e.actor = Some(Actor {
        actor_type: "user".into(),
        email: Some("bob@example.com".into()),
        ..Actor::default()
    });
    e.raw = Some(raw);
    e
}

fn inventory(ty: &str, n: u32, raw: Value, details: Value) -> Event {
    let mut e = Event::new(
        format!("openai.inventory:org-1:{ty}-{n}"),
        Source::Inventory,
        Some("org-1".into()),
        ty.into(),
        at(T0 + i64::from(n)),
    );
    e.target = Some(Target {
        target_type: "user".into(),
        id: Some("user-x".into()),
        name: None,
    });
    e.raw = Some(raw);
    e.details = details;
    e
}

/// Rule ids that fired on `events`, inline and as finding events, in order.
fn fired(engine: &mut Engine, events: Vec<Event>) -> Vec<String> {
    let mut out = Vec::new();
    for mut e in events {
        let extra = engine.inspect(&mut e);
        out.extend(e.findings.iter().map(|f| f.rule.clone()));
        for f in extra {
            assert_eq!(f.source, Source::Guardrails);
            assert_eq!(f.category, "finding");
            out.push(format!("event:{}", f.event_type));
        }
    }
    out
}

fn one(ty: &str, details: Value) -> Vec<String> {
    fired(&mut engine(), vec![audit(ty, 1, details)])
}

#[test]
fn simple_audit_rules_fire_on_their_type_and_not_on_a_neighbour() {
    let cases = [
        (
            "tenant_admin_api_key_created",
            "tenant.admin_api_key.created",
            "tenant.admin_api_key.deleted",
        ),
        (
            "service_account_created",
            "service_account.created",
            "service_account.updated",
        ),
        ("ip_allowlist_removed", "ip_allowlist.deleted", "ip_allowlist.created"),
        (
            "ip_allowlist_removed",
            "ip_allowlist.config.deactivated",
            "ip_allowlist.config.activated",
        ),
        ("scim_disabled", "scim.disabled", "scim.enabled"),
        (
            "certificates_deactivated",
            "certificates.deactivated",
            "certificates.activated",
        ),
        (
            "tenant_sso_connection_deleted",
            "tenant.sso_connection.deleted",
            "tenant.sso_connection.updated",
        ),
        (
            "tenant_session_revocation_started",
            "tenant.session_revocation.started",
            "tenant.session_policy.updated",
        ),
        (
            "tenant_policy_detached",
            "tenant.policy.detached",
            "tenant.policy.attached",
        ),
    ];
    for (rule, hit, miss) in cases {
        assert_eq!(one(hit, json!({})), [rule], "{hit}");
        assert!(one(miss, json!({})).is_empty(), "{miss}");
    }
}

#[test]
fn a_high_scope_key_is_flagged_and_an_ordinary_one_is_not() {
    for scopes in [
        json!(["api.all"]),
        json!(["*"]),
        json!(["api.model.request", "api.organization.admin"]),
    ] {
        assert_eq!(
            one("api_key.created", json!({"data": {"scopes": scopes}})),
            ["high_scope_api_key_created"],
            "{scopes}"
        );
    }
    assert!(
        one(
            "api_key.created",
            json!({"data": {"scopes": ["api.model.request", "api.files.write"]}})
        )
        .is_empty()
    );
    // No scope list at all is the dashboard's "All" permission: unrestricted.
    for data in [json!({"data": {"scopes": []}}), json!({"data": {}}), json!({})] {
        assert_eq!(
            one("api_key.created", data.clone()),
            ["high_scope_api_key_created"],
            "{data}"
        );
    }
}

#[test]
fn a_key_created_outside_key_admins_is_flagged_only_when_key_admins_is_set() {
    let admins = ["ADMIN@example.com".to_string(), "user-svc".to_string()];
    let mut e = engine_with(&admins);
    let by_ann = audit("tenant.admin_api_key.created", 1, json!({}));
    assert_eq!(
        fired(&mut e, vec![by_ann.clone()]),
        ["api_key_created_by_non_admin", "tenant_admin_api_key_created"]
    );
    let restricted = json!({"data": {"scopes": ["api.model.request"]}});
    let mut by_admin = audit("api_key.created", 2, restricted.clone());
    by_admin.actor.as_mut().expect("actor").email = Some("admin@example.com".into());
    let mut by_admin_id = audit("api_key.created", 3, restricted);
    by_admin_id.actor.as_mut().expect("actor").id = Some("user-svc".into());
    assert!(fired(&mut e, vec![by_admin, by_admin_id]).is_empty());
    // Without the list the rule has nothing to compare with and stays off.
    assert_eq!(fired(&mut engine(), vec![by_ann]), ["tenant_admin_api_key_created"]);
}

#[test]
fn an_owner_role_grant_is_flagged_and_a_reader_grant_is_not() {
    assert_eq!(
        one("user.updated", json!({"changes_requested": {"role": "owner"}})),
        ["privileged_role_granted"]
    );
    assert_eq!(
        one("invite.sent", json!({"data": {"email": "x@y.z", "role": "owner"}})),
        ["privileged_role_granted"]
    );
    assert!(one("user.updated", json!({"changes_requested": {"role": "reader"}})).is_empty());
    let admin = compliance(
        "AUDIT_LOG",
        1,
        json!({"action": "USER_ROLE_UPDATED", "action_data": {"new_role": "admin"}}),
    );
    let manager = compliance(
        "AUDIT_LOG",
        2,
        json!({"action": "USER_ROLE_UPDATED", "action_data": {"new_role": "manager"}}),
    );
    assert_eq!(fired(&mut engine(), vec![admin, manager]), ["privileged_role_granted"]);
}

#[test]
fn compliance_audit_actions_flag_log_deletion_and_sharing() {
    let cases = [
        ("compliance_log_file_deleted", "DELETE_WORKSPACE_LOG_FILE"),
        ("conversation_shared", "CONVERSATION_SHARE"),
    ];
    for (rule, action) in cases {
        let e = compliance("AUDIT_LOG", 1, json!({"action": action, "action_result": "SUCCESS"}));
        assert_eq!(fired(&mut engine(), vec![e]), [rule], "{action}");
    }
    for action in ["LIST_WORKSPACE_LOG_FILES", "INVITE_SEND"] {
        let e = compliance("AUDIT_LOG", 1, json!({"action": action}));
        assert!(fired(&mut engine(), vec![e]).is_empty(), "{action}");
    }
}

#[test]
fn secrets_in_chats_and_tool_calls_are_flagged_by_position_and_never_shipped() {
    let key = "sk-proj-Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0Pp";
    let aws = "AKIAIOSFODNN7EXAMPLE";
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

#[test]
fn inventory_rules_flag_new_owners_and_stale_or_orphaned_keys() {
    // Shapes as the inventory normalizer makes them: `fields` is the object's tracked
    // fields, `changed_fields`/`diff` what a change touched.
    let owner = inventory(
        "user.added",
        1,
        json!({"id": "user-x", "role": "owner"}),
        json!({"kind": "user", "change": "added", "fields": {"email": "x@example.com", "role": "owner"}}),
    );
    let reader = inventory(
        "user.added",
        2,
        json!({"id": "user-y", "role": "reader"}),
        json!({"kind": "user", "change": "added", "fields": {"role": "reader"}}),
    );
    let promoted = inventory(
        "user.changed",
        3,
        json!({"role": "owner"}),
        json!({"fields": {"role": "owner"}, "changed_fields": ["role"],
               "diff": [{"field": "role", "before": "reader", "after": "owner"}]}),
    );
    let renamed = inventory(
        "user.changed",
        4,
        json!({"role": "owner"}),
        json!({"fields": {"role": "owner", "name": "b"}, "changed_fields": ["name"],
               "diff": [{"field": "name", "before": "a", "after": "b"}]}),
    );
    let observed = inventory(
        "user.observed",
        5,
        json!({"role": "owner"}),
        json!({"fields": {"role": "owner"}}),
    );
    assert_eq!(
        fired(&mut engine(), vec![owner, reader, promoted, renamed, observed]),
        ["inventory_new_owner", "inventory_new_owner"]
    );
    let stale = inventory("inventory.stale_key", 5, json!({}), json!({}));
    let orphaned = inventory("inventory.orphaned_key", 6, json!({}), json!({}));
    assert_eq!(
        fired(&mut engine(), vec![stale, orphaned]),
        ["inventory_stale_key", "inventory_orphaned_key"]
    );
    // The same type from another source is not inventory's.
    let mut imposter = inventory("inventory.stale_key", 7, json!({}), json!({}));
    imposter.source = Source::AuditLog;
    assert!(fired(&mut engine(), vec![imposter]).is_empty());
}

fn stuffing(from: u32, ips: &[&str]) -> Vec<Event> {
    ips.iter()
        .enumerate()
        .map(|(i, ip)| login(false, from + i as u32, ip, "CN"))
        .collect()
}

#[test]
fn credential_stuffing_needs_five_distinct_addresses() {
    let ips = [
        "203.0.113.1",
        "203.0.113.2",
        "203.0.113.3",
        "203.0.113.4",
        "203.0.113.5",
    ];
    let got = fired(&mut engine(), stuffing(0, &ips));
    assert_eq!(got, ["credential_stuffing", "event:credential_stuffing"]);
    let two = [
        "203.0.113.1",
        "203.0.113.2",
        "203.0.113.1",
        "203.0.113.2",
        "203.0.113.1",
    ];
    assert!(fired(&mut engine(), stuffing(0, &two)).is_empty());
}

#[test]
fn compliance_sign_in_failures_count_as_stuffing_too() {
    let events: Vec<Event> = (0..5)
        .map(|i| {
            let mut e = compliance("AUTH_LOG", i, json!({"action_data": {"action": "login_failed"}}));
            e.actor.as_mut().expect("actor").ip = Some(format!("192.0.2.{i}"));
            e
        })
        .collect();
    let got = fired(&mut engine(), events);
    assert!(got.contains(&"event:credential_stuffing".to_string()), "{got:?}");
}

#[test]
fn brute_force_then_success_needs_five_failures_before_the_success() {
    let ips = ["203.0.113.1"; 5];
    let mut events = stuffing(0, &ips);
    events.push(login(true, 10, "198.51.100.7", "US"));
    let got = fired(&mut engine(), events);
    assert!(got.contains(&"event:brute_force_then_success".to_string()), "{got:?}");
    assert!(
        got.contains(&"brute_force_then_success".to_string()),
        "the success carries the finding"
    );

    let mut four = stuffing(0, &ips[..4]);
    four.push(login(true, 10, "198.51.100.7", "US"));
    let got = fired(&mut engine(), four);
    assert!(!got.iter().any(|r| r.contains("brute_force")), "{got:?}");
}

#[test]
fn a_sign_in_from_a_new_country_is_flagged_but_not_the_first_or_a_repeat() {
    let home = [
        login(true, 1, "198.51.100.7", "US"),
        login(true, 2, "198.51.100.7", "US"),
    ];
    let got = fired(&mut engine(), home.to_vec());
    assert!(got.is_empty(), "{got:?}");
    let mut e = engine();
    let mut events = home.to_vec();
    events.push(login(true, 3, "177.0.0.1", "BR"));
    events.push(login(true, 4, "177.0.0.1", "BR"));
    assert_eq!(
        fired(&mut e, events),
        ["login_from_new_country", "event:login_from_new_country"]
    );
}

/// Saves the engine's state through the checkpoint store and loads it into a new engine,
/// as a restart does.
fn restart(engine: &Engine, dir: &std::path::Path) -> Engine {
    let store = StateDir::open(dir).expect("state dir").checkpoints().expect("store");
    store.save("guardrails", engine.state()).expect("save");
    let loaded: Option<State> = store.load("guardrails").expect("load");
    assert!(loaded.is_some());
    Engine::new(Arc::new(RuleSet::build(&Inputs::default()).expect("pack")), loaded)
}

#[test]
fn threshold_sequence_and_first_seen_state_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut before = engine();
    let ips = [
        "203.0.113.1",
        "203.0.113.2",
        "203.0.113.3",
        "203.0.113.4",
        "203.0.113.5",
    ];
    let mut events = vec![login(true, 0, "198.51.100.7", "US")];
    events.extend(stuffing(1, &ips[..3]));
    assert!(fired(&mut before, events).is_empty());

    let mut after = restart(&before, dir.path());
    let mut rest = stuffing(4, &ips[3..]);
    rest.push(login(true, 10, "177.0.0.1", "BR"));
    let got = fired(&mut after, rest);
    assert!(got.contains(&"event:credential_stuffing".to_string()), "{got:?}");
    assert!(got.contains(&"event:brute_force_then_success".to_string()), "{got:?}");
    assert!(got.contains(&"event:login_from_new_country".to_string()), "{got:?}");

    // And without the saved state none of them would have fired.
    let mut fresh = engine();
    let mut rest = stuffing(4, &ips[3..]);
    rest.push(login(true, 10, "177.0.0.1", "BR"));
    assert!(fired(&mut fresh, rest).is_empty());
}

#[test]
fn finding_events_name_their_evidence_and_have_deterministic_ids() {
    let ips = [
        "203.0.113.1",
        "203.0.113.2",
        "203.0.113.3",
        "203.0.113.4",
        "203.0.113.5",
    ];
    let run = || {
        let mut e = engine();
        let mut out = Vec::new();
        for mut ev in stuffing(0, &ips) {
            out.extend(e.inspect(&mut ev));
        }
        out
    };
    let (a, b) = (run(), run());
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].id, b[0].id);
    assert!(a[0].id.starts_with("guardrails:org-1:credential_stuffing:"));
    let evidence = a[0].details["evidence"].as_array().expect("evidence");
    assert_eq!(evidence.len(), 5);
    assert_eq!(a[0].details["group"]["actor.email"], "ann@example.com");
    assert_eq!(a[0].findings[0].rule, "credential_stuffing");
}
