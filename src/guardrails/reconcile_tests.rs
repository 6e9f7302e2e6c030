//! Tests of the reconciliation memory: each check decides once, only after the other stream
//! had its chance, and the correspondence table names only real audit-log types.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::*;
use crate::normalize::{Target, audit_log_mapping};

const T0: i64 = 1_770_000_000;
const MIN: i64 = 60_000;

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).expect("time")
}

/// An event of `source` at `t` (seconds) that arrived at `arrived` (seconds).
fn event(source: Source, ty: &str, id: &str, t: i64, arrived: i64, target: Option<&str>, details: Value) -> Event {
    let mut e = Event::new(id.into(), source, Some("org-1".into()), ty.into(), at(t));
    e.ingested_at = at(arrived);
    e.target = target.map(|t| Target {
        target_type: "x".into(),
        id: Some(t.into()),
        name: None,
    });
    e.details = details;
    e
}

/// Runs are an hour apart from T0; their generation counts from 1.
fn generation(run: i64) -> u64 {
    u64::try_from((run - T0) / 3600 + 1).unwrap_or(0)
}

fn snapshot(kind: &str, run: i64) -> Event {
    event(
        Source::Inventory,
        "inventory.snapshot",
        &format!("snap-{kind}-{run}"),
        run,
        run,
        None,
        json!({"kind": kind, "complete": true, "generation": generation(run)}),
    )
}

fn role_changed(run: i64) -> Event {
    event(
        Source::Inventory,
        "user.changed",
        "inv-change-1",
        run,
        run,
        Some("user-1"),
        json!({"kind": "user", "change": "changed", "object_id": "user-1", "changed_fields": ["role"],
               "snapshot_id": generation(run).to_string()}),
    )
}

/// The `<kind>.<change>` event of the second run (an hour after T0) about `object`, with id
/// `inv-<object>`.
fn second_run(kind: &str, change: &str, object: &str, changed_fields: &[&str]) -> Event {
    let details = json!({"kind": kind, "change": change, "object_id": object,
                         "changed_fields": changed_fields, "snapshot_id": "2"});
    let (ty, id) = (format!("{kind}.{change}"), format!("inv-{object}"));
    event(Source::Inventory, &ty, &id, T0 + 3600, T0 + 3600, Some(object), details)
}

fn audit(ty: &str, id: &str, t: i64, target: &str) -> Event {
    event(Source::AuditLog, ty, id, t, t + 30, Some(target), json!({}))
}

/// Feeds `events` in order; the evidence ids of everything decided as unexplained.
fn run(memory: &mut Memory, check: Check, grace_ms: i64, events: &[Event]) -> Vec<String> {
    events
        .iter()
        .flat_map(|e| memory.observe(check, grace_ms, e))
        .map(|p| p.event_id)
        .collect()
}

#[test]
fn a_role_change_without_an_audit_event_is_reported_once_after_the_next_run() {
    let mut m = Memory::default();
    let (r1, r2, r3, r4) = (T0, T0 + 3600, T0 + 7200, T0 + 10_800);
    let early = run(
        &mut m,
        Check::InventoryChanges,
        5 * MIN,
        &[snapshot("user", r1), role_changed(r2)],
    );
    assert!(early.is_empty(), "not before the audit log had its grace: {early:?}");
    let snap2 = snapshot("user", r2);
    assert!(run(&mut m, Check::InventoryChanges, 5 * MIN, &[snap2]).is_empty());
    let found = run(&mut m, Check::InventoryChanges, 5 * MIN, &[snapshot("user", r3)]);
    assert_eq!(found, ["inv-change-1"]);
    assert!(run(&mut m, Check::InventoryChanges, 5 * MIN, &[snapshot("user", r4)]).is_empty());
}

#[test]
fn a_role_change_explained_by_a_late_audit_event_in_its_window_is_not_reported() {
    let mut m = Memory::default();
    let (r1, r2, r3) = (T0, T0 + 3600, T0 + 7200);
    let events = [
        snapshot("user", r1),
        role_changed(r2),
        snapshot("user", r2),
        // Happened between the runs; arrives only after the second run.
        audit("user.updated", "aud-1", r1 + 600, "user-1"),
        snapshot("user", r3),
    ];
    assert!(run(&mut m, Check::InventoryChanges, 5 * MIN, &events).is_empty());
}

#[test]
fn an_audit_event_for_another_object_or_outside_the_window_does_not_explain_a_change() {
    let mut m = Memory::default();
    let (r1, r2, r3) = (T0, T0 + 3600, T0 + 7200);
    let events = [
        audit("user.updated", "aud-old", r1 - 3600, "user-1"),
        audit("user.updated", "aud-other", r1 + 600, "user-2"),
        snapshot("user", r1),
        role_changed(r2),
        snapshot("user", r3),
    ];
    assert_eq!(run(&mut m, Check::InventoryChanges, 5 * MIN, &events), ["inv-change-1"]);
}

#[test]
fn changes_of_fields_and_kinds_without_audit_coverage_are_skipped() {
    let mut m = Memory::default();
    let storage = second_run("external_storage", "removed", "extstor_1", &[]);
    let renamed = second_run("user", "changed", "user-1", &["name"]);
    let events = [snapshot("user", T0), storage, renamed, snapshot("user", T0 + 7200)];
    assert!(run(&mut m, Check::InventoryChanges, 0, &events).is_empty());
    assert!(m.pending.is_empty());
}

#[test]
fn a_created_key_the_next_complete_inventory_does_not_show_is_reported_once() {
    let mut m = Memory::default();
    let created = audit("api_key.created", "aud-ghost", T0, "key_ghost");
    let real = audit("api_key.created", "aud-real", T0, "key_real");
    let gone = audit("api_key.created", "aud-gone", T0, "key_gone");
    let removed = audit("api_key.deleted", "aud-gone-del", T0 + 60, "key_gone");
    let listed = second_run("project.api_key", "added", "key_real", &[]);
    let found = run(
        &mut m,
        Check::AuditCreations,
        5 * MIN,
        &[created, real, gone, removed, listed],
    );
    assert!(found.is_empty(), "no complete listing yet: {found:?}");
    let found = run(
        &mut m,
        Check::AuditCreations,
        5 * MIN,
        &[snapshot("project.api_key", T0 + 3600)],
    );
    assert_eq!(found, ["aud-ghost"]);
    let again = run(
        &mut m,
        Check::AuditCreations,
        5 * MIN,
        &[snapshot("project.api_key", T0 + 7200)],
    );
    assert!(again.is_empty());
}

#[test]
fn a_creation_that_arrives_after_a_listing_waits_for_the_next_one() {
    let mut m = Memory::default();
    // The listing ran before the (backfilled) creation arrived: a removal later in the
    // backfill may still explain it, so only a listing after its arrival decides.
    let mut late = audit("api_key.created", "aud-late", T0, "key_late");
    late.ingested_at = at(T0 + 4000);
    let events = [
        snapshot("project.api_key", T0),
        snapshot("project.api_key", T0 + 3600),
        late,
    ];
    assert!(run(&mut m, Check::AuditCreations, 0, &events).is_empty());
    let removed = audit("api_key.deleted", "aud-late-del", T0 + 10, "key_late");
    let events = [removed, snapshot("project.api_key", T0 + 7200)];
    assert!(run(&mut m, Check::AuditCreations, 0, &events).is_empty());
    assert!(m.pending.is_empty());
}

#[test]
fn an_incomplete_listing_decides_nothing() {
    let mut m = Memory::default();
    let mut partial = snapshot("project.api_key", T0 + 3600);
    partial.details["complete"] = json!(false);
    let events = [audit("api_key.created", "aud-1", T0, "key_1"), partial];
    assert!(run(&mut m, Check::AuditCreations, 0, &events).is_empty());
    assert_eq!(m.pending.len(), 1);
}

#[test]
fn the_table_parses_and_names_only_documented_audit_log_types() {
    let rows = parse(TSV).expect("table");
    assert_eq!(rows.len(), TABLE.len());
    assert!(rows.iter().any(|r| r.kind == "user" && r.change == "changed:role"));
    for row in &rows {
        for ty in &row.audit_types {
            assert!(
                audit_log_mapping(ty).is_some(),
                "`{ty}` ({}) is not an audit-log type",
                row.kind
            );
        }
    }
    assert!(parse("user\tgrew\tuser.added\n").is_err());
    assert!(parse("user\tadded\n").is_err());
}

#[test]
fn memory_forgets_old_facts() {
    let mut m = Memory::default();
    m.facts.record(super::fact_key(&["org-1", "user", "user-1"]), 0);
    m.now = 30 * 86_400_000;
    m.prune();
    assert!(m.facts.is_empty());
}

#[test]
fn an_item_whose_run_came_is_decided_when_the_clock_reaches_its_grace_whatever_event_brings_it() {
    let grace = 120 * MIN;
    let (r1, r2, r3) = (T0, T0 + 3600, T0 + 7200);
    let chat = |arrived: i64| {
        event(
            Source::Compliance,
            "CONVERSATION_MESSAGE",
            &format!("chat-{arrived}"),
            arrived,
            arrived,
            None,
            json!({}),
        )
    };
    let mut m = Memory::default();
    // The next run is seen an hour after the change, inside the two-hour grace.
    let events = [
        snapshot("user", r1),
        role_changed(r2),
        snapshot("user", r3),
        chat(r2 + 7100),
    ];
    assert!(run(&mut m, Check::InventoryChanges, grace, &events).is_empty());
    // A restart forgets when to look again, and looks at once.
    let mut restored: Memory = serde_json::from_value(serde_json::to_value(&m).expect("json")).expect("memory");
    assert_eq!(restored, m);
    // Any event whose arrival passes the grace decides it, even one about something else.
    assert_eq!(
        run(&mut m, Check::InventoryChanges, grace, &[chat(r2 + 7200)]),
        ["inv-change-1"]
    );
    assert_eq!(
        run(&mut restored, Check::InventoryChanges, grace, &[chat(r2 + 7300)]),
        ["inv-change-1"]
    );
    assert!(
        run(&mut m, Check::InventoryChanges, grace, &[chat(r2 + 9000)]).is_empty(),
        "once"
    );
}

#[test]
fn a_repeated_creation_waits_once_even_after_a_restore_and_again_once_decided() {
    let mut m = Memory::default();
    let created = audit("api_key.created", "aud-ghost", T0, "key_ghost");
    assert!(
        run(
            &mut m,
            Check::AuditCreations,
            5 * MIN,
            &[created.clone(), created.clone()]
        )
        .is_empty()
    );
    assert_eq!(m.pending.len(), 1, "a repeat of the same event is not a second item");

    let saved = serde_json::to_string(&m).expect("saves");
    let mut m: Memory = serde_json::from_str(&saved).expect("restores");
    assert!(run(&mut m, Check::AuditCreations, 5 * MIN, std::slice::from_ref(&created)).is_empty());
    assert_eq!(m.pending.len(), 1, "the restored memory still knows it");
    let other = audit("api_key.created", "aud-other", T0, "key_other");
    assert!(run(&mut m, Check::AuditCreations, 5 * MIN, &[other]).is_empty());
    assert_eq!(m.pending.len(), 2, "another event at the same time is its own item");

    let found = run(
        &mut m,
        Check::AuditCreations,
        5 * MIN,
        &[snapshot("project.api_key", T0 + 3600)],
    );
    assert_eq!(found, ["aud-ghost", "aud-other"]);
    assert!(m.pending.is_empty());
    // Decided items leave what identifies them: the same event read again waits again.
    assert!(run(&mut m, Check::AuditCreations, 5 * MIN, &[created]).is_empty());
    assert_eq!(m.pending.len(), 1);
}
