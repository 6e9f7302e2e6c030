//! Inventory observations, changes, snapshots and signals → normalized [`Event`]s (source
//! `openai.inventory`). Pure. Ids are derived from what the event says (kind, object, change,
//! content hashes, run generation), so a replayed run produces the same ids.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::diff::{Change, ChangeKind};
use super::kind::Kind;
use super::signals::Signal;
use crate::normalize::{Context, Event, Mapping, MappingTable, Outcome, Project, Source, Target, event_id};

const TSV: &str = include_str!("inventory_types.tsv");

static TABLE: LazyLock<MappingTable> = LazyLock::new(|| MappingTable::parse(TSV).0);

/// The mapping of an inventory event type.
pub fn inventory_mapping(event_type: &str) -> Option<&'static Mapping> {
    TABLE.get(event_type)
}

/// What one run saw of one kind: the body of its `inventory.snapshot` event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SnapshotSummary {
    pub kind: &'static str,
    /// The run generation; with the kind, identifies the snapshot.
    pub snapshot_id: String,
    pub generation: u64,
    /// Every page of every scope was listed; when false no `removed` was derived.
    pub complete: bool,
    /// Objects listed this run.
    pub count: usize,
    pub observed: usize,
    pub added: usize,
    pub removed: usize,
    pub changed: usize,
    /// `<scope or kind>: <error>` for every list that failed.
    pub failures: Vec<String>,
}

fn digest(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    hex::encode(h.finalize())[..32].to_string()
}

fn event(id: String, event_type: String, ctx: &Context, at: DateTime<Utc>) -> Event {
    let mut e = Event::new(id, Source::Inventory, ctx.org_id.clone(), event_type, at);
    if let Some(m) = inventory_mapping(&e.event_type) {
        e.category = m.category.to_string();
        e.action = m.action.to_string();
        e.outcome = m.outcome;
    } else {
        e.outcome = Outcome::Unknown;
    }
    e
}

fn field_text(change: &Change, field: &str) -> Option<String> {
    change.fields.get(field).and_then(Value::as_str).map(str::to_string)
}

/// One object observed, added, removed or changed. `project_name` names the project of a
/// project-scoped object when it is known.
pub fn inventory_change(
    kind: Kind,
    change: &Change,
    generation: u64,
    project_name: Option<&str>,
    ctx: &Context,
    at: DateTime<Utc>,
) -> Event {
    let key = change.key();
    let verb = change.change.as_str();
    let before = change.before_hash.as_deref().unwrap_or("");
    let after = change.after_hash.as_deref().unwrap_or("");
    let event_type = format!("{}.{verb}", kind.name());
    let local = format!(
        "{event_type}:{key}:{}",
        digest(&[kind.name(), &key, verb, before, after])
    );
    let id = event_id(Source::Inventory, ctx.org_id.as_deref(), &local);
    let mut e = event(id, event_type, ctx, at);
    let target_type = inventory_mapping(&e.event_type)
        .and_then(|m| m.target_type)
        .unwrap_or("object");
    e.target = Some(Target {
        target_type: target_type.to_string(),
        id: Some(change.id.clone()),
        name: field_text(change, "name")
            .or_else(|| field_text(change, "email"))
            .or_else(|| field_text(change, "model")),
    });
    e.project = match (kind, &change.scope) {
        (Kind::Project, _) => Some(Project {
            id: Some(change.id.clone()),
            name: field_text(change, "name"),
        }),
        (Kind::ProjectUser | Kind::ProjectServiceAccount | Kind::ProjectApiKey | Kind::ProjectRateLimit, Some(p)) => {
            Some(Project {
                id: Some(p.clone()),
                name: project_name.map(str::to_string),
            })
        }
        _ => None,
    };
    let mut details = json!({
        "kind": kind.name(),
        "change": verb,
        "object_id": change.id,
        "snapshot_id": generation.to_string(),
        "fields": change.fields,
    });
    if let Some(scope) = &change.scope {
        details["scope"] = json!(scope);
    }
    if change.change == ChangeKind::Changed {
        details["diff"] = json!(change.diff);
        details["changed_fields"] = json!(change.diff.iter().map(|d| d.field.as_str()).collect::<Vec<_>>());
    }
    if let Some(b) = &change.before_hash {
        details["before_hash"] = json!(b);
    }
    if let Some(a) = &change.after_hash {
        details["after_hash"] = json!(a);
    }
    e.details = details;
    e.raw = change.raw.clone().map(Into::into);
    e
}

/// The `inventory.snapshot` event of one kind in one run.
pub fn inventory_snapshot(summary: &SnapshotSummary, ctx: &Context, at: DateTime<Utc>) -> Event {
    let local = format!("inventory.snapshot:{}:{}", summary.kind, summary.generation);
    let id = event_id(Source::Inventory, ctx.org_id.as_deref(), &local);
    let mut e = event(id, "inventory.snapshot".to_string(), ctx, at);
    e.details = serde_json::to_value(summary).unwrap_or(Value::Null);
    e
}

/// An `inventory.<signal>` event for a condition that appeared or changed.
pub fn inventory_signal(signal: &Signal, generation: u64, ctx: &Context, at: DateTime<Utc>) -> Event {
    let event_type = format!("inventory.{}", signal.name);
    let local = format!("{event_type}:{}:{}", signal.subject, &signal.condition_hash()[..32]);
    let id = event_id(Source::Inventory, ctx.org_id.as_deref(), &local);
    let mut e = event(id, event_type, ctx, at);
    e.target = Some(Target {
        target_type: signal.target_type.to_string(),
        id: signal.target_id.clone(),
        name: signal.target_name.clone(),
    });
    e.project = signal.project_id.as_ref().map(|p| Project {
        id: Some(p.clone()),
        name: None,
    });
    let mut details = signal.details.clone();
    if let Some(d) = details.as_object_mut() {
        d.insert("signal".into(), json!(signal.name));
        d.insert("subject".into(), json!(signal.subject));
        d.insert("snapshot_id".into(), json!(generation.to_string()));
    }
    e.details = details;
    e
}

#[cfg(test)]
mod tests {
    use super::super::diff::{Fields, Item, Stored, compare, content_hash};
    use super::super::signals;
    use super::*;
    use crate::normalize::CATEGORIES;

    fn ctx() -> Context {
        Context {
            org_id: Some("org-1".into()),
        }
    }

    fn changes() -> Vec<Change> {
        let item = |role: &str| Item {
            id: "user-1".into(),
            scope: None,
            fields: serde_json::from_value::<Fields>(json!({"role": role, "email": "a@b.c"})).expect("f"),
            raw: json!({"id": "user-1", "role": role}),
        };
        let before = item("reader");
        let stored = Stored {
            hash: content_hash(&before.fields),
            scope: None,
            fields: before.fields,
        };
        let after = item("owner");
        compare(Some(&stored), &after, &content_hash(&after.fields), true)
    }

    #[test]
    fn the_table_parses_cleanly_and_uses_the_inventory_categories() {
        let (table, errors) = MappingTable::parse(TSV);
        assert!(errors.is_empty(), "{errors:?}");
        for kind in Kind::ALL {
            for verb in ["observed", "added", "removed", "changed"] {
                let m = table.get(&format!("{}.{verb}", kind.name())).expect("mapped");
                assert!(CATEGORIES.contains(&m.category));
            }
        }
        assert_eq!(table.get("user.added").map(|m| m.category), Some("identity"));
        assert_eq!(
            table.get("project.api_key.removed").map(|m| m.category),
            Some("credential")
        );
        assert_eq!(table.get("role.changed").map(|m| m.category), Some("access_control"));
        assert_eq!(
            table.get("certificate.observed").map(|m| m.category),
            Some("certificate")
        );
        assert_eq!(
            table.get("project.rate_limit.added").map(|m| m.category),
            Some("organization")
        );
        for s in signals::NAMES {
            assert_eq!(
                table.get(&format!("inventory.{s}")).map(|m| m.category),
                Some("inventory")
            );
        }
        assert_eq!(table.get("inventory.snapshot").map(|m| m.category), Some("inventory"));
    }

    #[test]
    fn a_change_event_carries_the_field_diff_and_a_stable_id() {
        let changed = &changes()[0];
        let a = inventory_change(Kind::User, changed, 2, None, &ctx(), Utc::now());
        let b = inventory_change(Kind::User, changed, 3, None, &ctx(), Utc::now());
        assert_eq!(a.id, b.id, "the id depends on the change, not the run");
        assert!(
            a.id.starts_with("openai.inventory:org-1:user.changed:user-1:"),
            "{}",
            a.id
        );
        assert_eq!(a.source, Source::Inventory);
        assert_eq!(a.category, "identity");
        assert_eq!(
            a.details["diff"][0],
            json!({"field": "role", "before": "reader", "after": "owner"})
        );
        assert_eq!(a.target.as_ref().and_then(|t| t.name.as_deref()), Some("a@b.c"));
        let observed = inventory_change(Kind::User, &changes()[1], 2, None, &ctx(), Utc::now());
        assert_ne!(observed.id, a.id);
        assert_eq!(observed.event_type, "user.observed");
    }

    #[test]
    fn a_snapshot_event_is_identified_by_kind_and_generation() {
        let s = SnapshotSummary {
            kind: "user",
            snapshot_id: "7".into(),
            generation: 7,
            complete: false,
            count: 3,
            observed: 0,
            added: 0,
            removed: 0,
            changed: 0,
            failures: vec!["user: boom".into()],
        };
        let e = inventory_snapshot(&s, &ctx(), Utc::now());
        assert_eq!(e.id, "openai.inventory:org-1:inventory.snapshot:user:7");
        assert_eq!(e.category, "inventory");
        assert_eq!(e.details["complete"], false);
    }
}
