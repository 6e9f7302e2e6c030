//! Tests of the built-in pack: for every rule an event that fires it and a near miss that does
//! not, and the stateful rules across a restart. Events are built the way the normalizers
//! build them, or by the normalizers themselves from records in the public shapes.
//!
//! - `admin`: Admin API audit-log and inventory rules.
//! - `workspace`: per-event ChatGPT workspace, app, Codex and agent rules, and secrets.
//! - `stateful`: sign-in attacks, travel, bursts and first-seen rules.

mod admin;
mod stateful;
mod workspace;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::engine::Engine;
use super::rule::{Inputs, RuleSet};
use super::stateful::State;
use crate::normalize::{self, Actor, Context, Event, Geo, Outcome, Source, Target};
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
    e.raw = Some(raw.into());
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
    e.raw = Some(raw.into());
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

/// A Compliance Logs Platform record in the public shape (the samples' envelope, a person as
/// the actor, from Berlin), with `fields` set on top, normalized by the real normalizer.
fn record(ty: &str, n: u32, fields: Value) -> Event {
    let mut record = json!({
        "event_id": format!("{ty}-{n}"),
        "type": ty,
        "timestamp": at(T0 + i64::from(n)).to_rfc3339(),
        "principal": {"id": "ws-1", "type": "CHATGPT_WORKSPACE"},
        "actor": {"type": "ACCOUNT_USER", "user_id": "user-dana", "user_email": "dana@example.net"},
        "request_metadata": {"client_ip": "198.51.100.23", "client_user_agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/146.0",
                             "client_ip_details": {"country": "DE", "city": "Berlin", "latitude": "52.52437", "longitude": "13.41053"}},
    });
    if let (Some(r), Value::Object(extra)) = (record.as_object_mut(), fields) {
        r.extend(extra);
    }
    normalize::compliance(
        &record,
        &Context {
            org_id: Some("ws-1".into()),
        },
    )
    .expect("record normalizes")
}

/// An Admin API audit-log record, normalized by the real normalizer.
fn admin_record(ty: &str, n: u32, payload: Value) -> Event {
    let record = json!({
        "id": format!("audit_log-{ty}-{n}"), "type": ty, "effective_at": T0 + i64::from(n),
        "actor": {"type": "session", "session": {"user": {"id": "user-ann", "email": "ann@example.com"},
                  "ip_address": "198.51.100.7"}},
        ty: payload,
    });
    normalize::audit_log(
        &crate::openai::wire::Record::from(record).members(),
        &Context {
            org_id: Some("org-1".into()),
        },
    )
    .expect("record normalizes")
}

fn stuffing(from: u32, ips: &[&str]) -> Vec<Event> {
    ips.iter()
        .enumerate()
        .map(|(i, ip)| login(false, from + i as u32, ip, "CN"))
        .collect()
}

/// The rules that fired on `events` (inline and as finding events) in a fresh engine.
fn fresh(events: Vec<Event>) -> Vec<String> {
    fired(&mut engine(), events)
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
