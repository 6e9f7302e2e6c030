//! Tests of the built-in drift and reconciliation rules through the engine: each new event
//! type is one finding, across a restart too, and both reconciliation rules can be switched
//! off and retuned like any built-in rule.

use std::io::Write;
use std::sync::Arc;

use chrono::DateTime;
use serde_json::json;

use super::engine::Engine;
use super::rule::{Inputs, RuleSet, RuleSetError};
use super::stateful::State;
use crate::normalize::{Event, Source, Target};

const T0: i64 = 1_770_000_000;

fn unmapped(ty: &str, n: i64) -> Event {
    let at = DateTime::from_timestamp(T0 + n, 0).expect("time");
    let mut e = Event::new(
        format!("openai.audit_log:org-1:{ty}-{n}"),
        Source::AuditLog,
        Some("org-1".into()),
        ty.into(),
        at,
    );
    e.mark_unmapped();
    e
}

/// The finding events `events` yield, as (rule, evidence ids).
fn findings(engine: &mut Engine, events: Vec<Event>) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for mut e in events {
        for f in engine.inspect(&mut e) {
            let evidence = f.details["evidence"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
            out.push((f.event_type.clone(), evidence));
        }
    }
    out
}

fn pack() -> Arc<RuleSet> {
    Arc::new(RuleSet::build(&Inputs::default()).expect("pack"))
}

#[test]
fn each_new_event_type_is_one_finding_naming_its_first_event_even_after_a_restart() {
    let mut engine = Engine::new(pack(), None);
    // Newest first, as a backfill arrives: the evidence is still the earliest event.
    let events = vec![
        unmapped("widget.frobnicated", 9),
        unmapped("widget.frobnicated", 5),
        unmapped("gadget.twiddled", 7),
    ];
    let got = findings(&mut engine, events);
    assert_eq!(
        got,
        [
            (
                "unknown_event_type".to_string(),
                vec!["openai.audit_log:org-1:widget.frobnicated-9".to_string()]
            ),
            (
                "unknown_event_type".to_string(),
                vec!["openai.audit_log:org-1:gadget.twiddled-7".to_string()]
            ),
        ]
    );
    // A restart resumes from the saved state (as JSON, as the checkpoint holds it).
    let saved: State = serde_json::from_value(serde_json::to_value(engine.state()).expect("json")).expect("state");
    let mut restarted = Engine::new(pack(), Some(saved));
    let again = findings(
        &mut restarted,
        vec![unmapped("widget.frobnicated", 20), unmapped("gadget.twiddled", 21)],
    );
    assert!(again.is_empty(), "{again:?}");
}

#[test]
fn a_record_that_could_not_be_normalized_is_not_a_new_event_type() {
    let mut engine = Engine::new(pack(), None);
    let mut broken = unmapped("api_key.created", 1);
    broken.details = json!({"normalize_error": "id is not a string"});
    let mut known = unmapped("api_key.created", 2);
    known.details = json!({});
    assert!(findings(&mut engine, vec![broken, known]).is_empty());
}

#[test]
fn the_drift_and_reconciliation_rules_can_be_switched_off_and_retuned_from_a_rule_file() {
    let disabled = [
        "unknown_event_type".to_string(),
        "inventory_change_not_in_audit_log".to_string(),
        "audit_event_not_reflected".to_string(),
    ];
    let rules = RuleSet::build(&Inputs {
        disabled_rules: &disabled,
        ..Inputs::default()
    })
    .expect("pack");
    assert!(rules.rules.iter().all(|r| !disabled.contains(&r.id)));
    let mut engine = Engine::new(Arc::new(rules), None);
    assert!(findings(&mut engine, vec![unmapped("widget.frobnicated", 1)]).is_empty());

    let mut file = tempfile::NamedTempFile::new().expect("file");
    writeln!(
        file,
        "[[rule]]\nid = \"inventory_change_not_in_audit_log\"\ntitle = \"t\"\nseverity = \"high\"\n[rule.reconcile]\ncheck = \"inventory_changes\"\ngrace = \"2h\""
    )
    .expect("write");
    let rules = RuleSet::build(&Inputs {
        rules_file: Some(file.path()),
        ..Inputs::default()
    })
    .expect("rules");
    let rule = rules
        .rules
        .iter()
        .find(|r| r.id == "inventory_change_not_in_audit_log")
        .expect("replaced");
    assert!(format!("{:?}", rule.kind).contains("grace: 7200s"), "{:?}", rule.kind);

    let mut bad = tempfile::NamedTempFile::new().expect("file");
    writeln!(
        bad,
        "[[rule]]\nid = \"r\"\ntitle = \"t\"\nseverity = \"low\"\n[rule.reconcile]\ncheck = \"everything\""
    )
    .expect("write");
    let err = RuleSet::build(&Inputs {
        rules_file: Some(bad.path()),
        ..Inputs::default()
    })
    .expect_err("bad check");
    let RuleSetError::Rule(err) = err else {
        panic!("{err:?}")
    };
    assert_eq!(err.field, "reconcile.check");
    assert!(
        err.problem.contains("inventory_changes, audit_creations"),
        "{}",
        err.problem
    );
}

#[test]
fn a_reconciliation_finding_names_the_change_behind_it() {
    let mut engine = Engine::new(pack(), None);
    let at = |s: i64| DateTime::from_timestamp(s, 0).expect("time");
    let snapshot = |run: i64| {
        let mut e = Event::new(
            format!("snap-{run}"),
            Source::Inventory,
            Some("org-1".into()),
            "inventory.snapshot".into(),
            at(run),
        );
        e.ingested_at = at(run);
        e.details = json!({"kind": "user", "complete": true, "generation": (run - T0) / 3600 + 1});
        e
    };
    let mut change = Event::new(
        "inv-1".into(),
        Source::Inventory,
        Some("org-1".into()),
        "user.changed".into(),
        at(T0 + 3600),
    );
    change.ingested_at = at(T0 + 3600);
    change.target = Some(Target {
        target_type: "user".into(),
        id: Some("user-1".into()),
        name: None,
    });
    change.details = json!({"kind": "user", "change": "changed", "object_id": "user-1", "changed_fields": ["role"], "snapshot_id": "2"});
    let events = vec![snapshot(T0), change, snapshot(T0 + 3600), snapshot(T0 + 7200)];
    let mut out = Vec::new();
    for mut e in events {
        out.extend(engine.inspect(&mut e));
    }
    assert_eq!(out.len(), 1, "{out:?}");
    let f = &out[0];
    assert_eq!(f.event_type, "inventory_change_not_in_audit_log");
    assert_eq!(f.details["evidence"], json!(["inv-1"]));
    assert_eq!(
        f.details["group"],
        json!({"kind": "user", "object_id": "user-1", "change": "changed:role"})
    );
    assert!(
        f.findings[0].message.contains("user user-1: changed:role"),
        "{}",
        f.findings[0].message
    );
}
