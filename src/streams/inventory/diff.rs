//! The pure comparison of one kind's listing with its previous snapshot: what was observed,
//! added, removed or changed (with a field-level diff), and the snapshot to keep next.
//! A scope that was not listed completely never loses objects.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Compared fields of one object, flattened to dotted paths.
pub type Fields = BTreeMap<String, Value>;

/// What the state remembers of one object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stored {
    /// Hash of `fields`: equal hashes mean nothing compared has changed.
    pub hash: String,
    /// The project or group it is listed under, for scoped kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Kept so a later change can say what each field was before.
    pub fields: Fields,
}

/// The previous snapshot of one kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KindSnapshot {
    /// A complete listing has been taken once. Until then a difference is an observation, not
    /// an addition: an object missing from a partial first listing was not "added" later.
    #[serde(default)]
    pub baselined: bool,
    /// Object key (`<id>` or `<scope>/<id>`) → what was seen.
    #[serde(default)]
    pub objects: BTreeMap<String, Stored>,
}

/// One listed object, read.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub id: String,
    pub scope: Option<String>,
    pub fields: Fields,
    pub raw: Value,
}

impl Item {
    /// Unique within its kind: the same user is listed once per project it belongs to.
    pub fn key(&self) -> String {
        key(self.scope.as_deref(), &self.id)
    }
}

/// The key of object `id` under `scope`.
pub fn key(scope: Option<&str>, id: &str) -> String {
    match scope {
        Some(s) => format!("{s}/{id}"),
        None => id.to_string(),
    }
}

/// Hex sha256 of the fields' canonical JSON (keys sorted).
pub fn content_hash(fields: &Fields) -> String {
    let text = serde_json::to_string(fields).unwrap_or_default();
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// How far a listing got.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Every page of every scope was listed.
    pub complete: bool,
    /// Scopes listed completely even when others failed.
    pub scopes: BTreeSet<String>,
}

impl Coverage {
    #[cfg(test)]
    pub fn complete() -> Self {
        Self {
            complete: true,
            scopes: BTreeSet::new(),
        }
    }

    /// Whether an object under `scope` that was not listed is really gone.
    fn covers(&self, scope: Option<&str>) -> bool {
        self.complete || scope.is_some_and(|s| self.scopes.contains(s))
    }
}

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// The object as it is now: on the first complete look, and after an addition or change.
    Observed,
    Added,
    Removed,
    Changed,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Observed => "observed",
            Self::Added => "added",
            Self::Removed => "removed",
            Self::Changed => "changed",
        }
    }
}

/// One field that differs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldDiff {
    pub field: String,
    /// `null` when the field was absent.
    pub before: Value,
    pub after: Value,
}

/// One event-worthy difference.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub change: ChangeKind,
    pub id: String,
    pub scope: Option<String>,
    pub before_hash: Option<String>,
    pub after_hash: Option<String>,
    /// For `changed`: what differs.
    pub diff: Vec<FieldDiff>,
    /// The object's fields now (before, for `removed`).
    pub fields: Fields,
    /// The listed record; `None` for `removed`.
    pub raw: Option<Value>,
}

impl Change {
    pub fn key(&self) -> String {
        key(self.scope.as_deref(), &self.id)
    }
}

/// Compares `items` (this run's listing of one kind) with `prev`; returns the changes, in a
/// stable order, and the snapshot to keep. Objects of scopes `coverage` does not cover stay.
pub fn diff(prev: &KindSnapshot, items: Vec<Item>, coverage: &Coverage) -> (Vec<Change>, KindSnapshot) {
    let mut next = KindSnapshot {
        baselined: prev.baselined || coverage.complete,
        objects: prev.objects.clone(),
    };
    // A repeated item (a page served twice) counts once; the later copy wins.
    let mut listed: BTreeMap<String, Item> = BTreeMap::new();
    for item in items {
        listed.insert(item.key(), item);
    }
    let mut changes = Vec::new();
    let mut observed = Vec::new();
    for (key, item) in &listed {
        let hash = content_hash(&item.fields);
        let before = prev.objects.get(key);
        if before.is_some_and(|b| b.hash == hash) {
            continue;
        }
        if prev.baselined {
            changes.push(Change {
                change: if before.is_some() {
                    ChangeKind::Changed
                } else {
                    ChangeKind::Added
                },
                id: item.id.clone(),
                scope: item.scope.clone(),
                before_hash: before.map(|b| b.hash.clone()),
                after_hash: Some(hash.clone()),
                diff: before.map(|b| field_diff(&b.fields, &item.fields)).unwrap_or_default(),
                fields: item.fields.clone(),
                raw: Some(item.raw.clone()),
            });
        }
        observed.push(Change {
            change: ChangeKind::Observed,
            id: item.id.clone(),
            scope: item.scope.clone(),
            before_hash: None,
            after_hash: Some(hash.clone()),
            diff: Vec::new(),
            fields: item.fields.clone(),
            raw: Some(item.raw.clone()),
        });
        next.objects.insert(
            key.clone(),
            Stored {
                hash,
                scope: item.scope.clone(),
                fields: item.fields.clone(),
            },
        );
    }
    for (key, stored) in &prev.objects {
        if listed.contains_key(key) || !coverage.covers(stored.scope.as_deref()) {
            continue;
        }
        next.objects.remove(key);
        if prev.baselined {
            let id = match &stored.scope {
                Some(s) => key.strip_prefix(&format!("{s}/")).unwrap_or(key).to_string(),
                None => key.clone(),
            };
            changes.push(Change {
                change: ChangeKind::Removed,
                id,
                scope: stored.scope.clone(),
                before_hash: Some(stored.hash.clone()),
                after_hash: None,
                diff: Vec::new(),
                fields: stored.fields.clone(),
                raw: None,
            });
        }
    }
    changes.extend(observed);
    (changes, next)
}

/// Every field whose value differs, absent counting as `null`.
pub fn field_diff(before: &Fields, after: &Fields) -> Vec<FieldDiff> {
    let names: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    names
        .into_iter()
        .filter_map(|name| {
            let b = before.get(name).cloned().unwrap_or(Value::Null);
            let a = after.get(name).cloned().unwrap_or(Value::Null);
            (a != b).then(|| FieldDiff {
                field: name.clone(),
                before: b,
                after: a,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(id: &str, scope: Option<&str>, fields: Value) -> Item {
        let fields: Fields = serde_json::from_value(fields).expect("fields");
        Item {
            id: id.into(),
            scope: scope.map(str::to_string),
            fields,
            raw: json!({"id": id}),
        }
    }

    fn kinds(changes: &[Change]) -> Vec<(ChangeKind, String)> {
        changes.iter().map(|c| (c.change, c.key())).collect()
    }

    fn baseline(items: Vec<Item>) -> KindSnapshot {
        diff(&KindSnapshot::default(), items, &Coverage::complete()).1
    }

    #[test]
    fn the_first_complete_listing_observes_everything_and_adds_nothing() {
        let (changes, next) = diff(
            &KindSnapshot::default(),
            vec![item("u1", None, json!({"role": "owner"})), item("u2", None, json!({}))],
            &Coverage::complete(),
        );
        assert_eq!(
            kinds(&changes),
            vec![(ChangeKind::Observed, "u1".into()), (ChangeKind::Observed, "u2".into())]
        );
        assert!(next.baselined);
        assert_eq!(next.objects.len(), 2);
    }

    #[test]
    fn an_unchanged_listing_has_no_changes() {
        let prev = baseline(vec![item("u1", None, json!({"role": "owner"}))]);
        let (changes, next) = diff(
            &prev,
            vec![item("u1", None, json!({"role": "owner"}))],
            &Coverage::complete(),
        );
        assert!(changes.is_empty());
        assert_eq!(next, prev);
    }

    #[test]
    fn additions_removals_and_changes_carry_a_field_diff_and_an_observation() {
        let prev = baseline(vec![
            item("u1", None, json!({"role": "reader", "name": "A"})),
            item("u2", None, json!({})),
        ]);
        let (changes, next) = diff(
            &prev,
            vec![
                item("u1", None, json!({"role": "owner", "name": "A"})),
                item("u3", None, json!({})),
            ],
            &Coverage::complete(),
        );
        assert_eq!(
            kinds(&changes),
            vec![
                (ChangeKind::Changed, "u1".into()),
                (ChangeKind::Added, "u3".into()),
                (ChangeKind::Removed, "u2".into()),
                (ChangeKind::Observed, "u1".into()),
                (ChangeKind::Observed, "u3".into()),
            ]
        );
        assert_eq!(
            changes[0].diff,
            vec![FieldDiff {
                field: "role".into(),
                before: json!("reader"),
                after: json!("owner")
            }]
        );
        assert!(changes[0].before_hash.is_some() && changes[0].before_hash != changes[0].after_hash);
        assert_eq!(next.objects.keys().collect::<Vec<_>>(), vec!["u1", "u3"]);
    }

    #[test]
    fn a_field_that_disappears_diffs_against_null() {
        let d = field_diff(
            &serde_json::from_value(json!({"last_used_at": 5})).expect("f"),
            &Fields::new(),
        );
        assert_eq!(d[0].after, Value::Null);
    }

    #[test]
    fn an_incomplete_listing_removes_nothing_but_still_reports_what_it_saw() {
        let prev = baseline(vec![
            item("u1", None, json!({})),
            item("u2", None, json!({"role": "reader"})),
        ]);
        let (changes, next) = diff(
            &prev,
            vec![item("u2", None, json!({"role": "owner"}))],
            &Coverage::default(),
        );
        assert_eq!(
            kinds(&changes),
            vec![(ChangeKind::Changed, "u2".into()), (ChangeKind::Observed, "u2".into())]
        );
        assert!(next.objects.contains_key("u1"), "what was not listed is kept");
    }

    #[test]
    fn only_scopes_listed_completely_lose_objects() {
        let prev = baseline(vec![
            item("k1", Some("p1"), json!({})),
            item("k2", Some("p2"), json!({})),
        ]);
        let coverage = Coverage {
            complete: false,
            scopes: ["p1".to_string()].into(),
        };
        let (changes, next) = diff(&prev, Vec::new(), &coverage);
        assert_eq!(kinds(&changes), vec![(ChangeKind::Removed, "p1/k1".into())]);
        assert_eq!(changes[0].id, "k1");
        assert!(next.objects.contains_key("p2/k2"));
    }

    #[test]
    fn before_a_complete_baseline_new_objects_are_observed_not_added() {
        let partial = diff(
            &KindSnapshot::default(),
            vec![item("u1", None, json!({}))],
            &Coverage::default(),
        )
        .1;
        assert!(!partial.baselined);
        let (changes, next) = diff(
            &partial,
            vec![item("u1", None, json!({})), item("u2", None, json!({}))],
            &Coverage::complete(),
        );
        assert_eq!(kinds(&changes), vec![(ChangeKind::Observed, "u2".into())]);
        assert!(next.baselined);
    }

    #[test]
    fn the_hash_ignores_field_order() {
        let a: Fields = serde_json::from_value(json!({"a": 1, "b": 2})).expect("f");
        let mut b = Fields::new();
        b.insert("b".into(), json!(2));
        b.insert("a".into(), json!(1));
        assert_eq!(content_hash(&a), content_hash(&b));
    }
}
