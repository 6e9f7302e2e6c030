//! The pure comparison of one listed object with what the previous snapshot held of it: what
//! was observed, added, removed or changed (with a field-level diff).

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

/// What this run's listing of `item` (its content hash `hash`) says against what the previous
/// snapshot held of it (`before`): nothing when unchanged; otherwise, once the kind has a
/// complete baseline, an `added` or `changed` (with its field diff), and always an `observed`.
pub fn compare(before: Option<&Stored>, item: &Item, hash: &str, baselined: bool) -> Vec<Change> {
    if before.is_some_and(|b| b.hash == hash) {
        return Vec::new();
    }
    let mut changes = Vec::with_capacity(2);
    if baselined {
        changes.push(Change {
            change: if before.is_some() {
                ChangeKind::Changed
            } else {
                ChangeKind::Added
            },
            id: item.id.clone(),
            scope: item.scope.clone(),
            before_hash: before.map(|b| b.hash.clone()),
            after_hash: Some(hash.to_string()),
            diff: before.map(|b| field_diff(&b.fields, &item.fields)).unwrap_or_default(),
            fields: item.fields.clone(),
            raw: Some(item.raw.clone()),
        });
    }
    changes.push(Change {
        change: ChangeKind::Observed,
        id: item.id.clone(),
        scope: item.scope.clone(),
        before_hash: None,
        after_hash: Some(hash.to_string()),
        diff: Vec::new(),
        fields: item.fields.clone(),
        raw: Some(item.raw.clone()),
    });
    changes
}

/// The `removed` of object `id`, which the previous snapshot held as `stored` and a listing
/// that covered its scope no longer shows.
pub fn removal(id: String, stored: Stored) -> Change {
    Change {
        change: ChangeKind::Removed,
        id,
        scope: stored.scope,
        before_hash: Some(stored.hash),
        after_hash: None,
        diff: Vec::new(),
        fields: stored.fields,
        raw: None,
    }
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

    fn item(id: &str, fields: Value) -> Item {
        let fields: Fields = serde_json::from_value(fields).expect("fields");
        Item {
            id: id.into(),
            scope: None,
            fields,
            raw: json!({"id": id}),
        }
    }

    fn stored(i: &Item) -> Stored {
        Stored {
            hash: content_hash(&i.fields),
            scope: i.scope.clone(),
            fields: i.fields.clone(),
        }
    }

    fn kinds(changes: &[Change]) -> Vec<ChangeKind> {
        changes.iter().map(|c| c.change).collect()
    }

    #[test]
    fn a_new_object_is_observed_before_a_baseline_and_added_after_it() {
        let u = item("u1", json!({"role": "owner"}));
        let h = content_hash(&u.fields);
        assert_eq!(kinds(&compare(None, &u, &h, false)), vec![ChangeKind::Observed]);
        assert_eq!(
            kinds(&compare(None, &u, &h, true)),
            vec![ChangeKind::Added, ChangeKind::Observed]
        );
    }

    #[test]
    fn an_unchanged_object_has_no_changes() {
        let u = item("u1", json!({"role": "owner"}));
        let h = content_hash(&u.fields);
        assert!(compare(Some(&stored(&u)), &u, &h, true).is_empty());
    }

    #[test]
    fn a_change_carries_a_field_diff_and_both_hashes() {
        let before = item("u1", json!({"role": "reader", "name": "A"}));
        let after = item("u1", json!({"role": "owner", "name": "A"}));
        let h = content_hash(&after.fields);
        let changes = compare(Some(&stored(&before)), &after, &h, true);
        assert_eq!(kinds(&changes), vec![ChangeKind::Changed, ChangeKind::Observed]);
        assert_eq!(
            changes[0].diff,
            vec![FieldDiff {
                field: "role".into(),
                before: json!("reader"),
                after: json!("owner")
            }]
        );
        assert!(changes[0].before_hash.is_some() && changes[0].before_hash != changes[0].after_hash);
    }

    #[test]
    fn a_removal_says_what_the_object_was() {
        let mut k = item("k1", json!({"name": "key"}));
        k.scope = Some("p1".into());
        let r = removal("k1".into(), stored(&k));
        assert_eq!(r.change, ChangeKind::Removed);
        assert_eq!(r.key(), "p1/k1");
        assert_eq!(r.fields["name"], json!("key"));
        assert!(r.raw.is_none() && r.after_hash.is_none());
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
    fn the_hash_ignores_field_order() {
        let a: Fields = serde_json::from_value(json!({"a": 1, "b": 2})).expect("f");
        let mut b = Fields::new();
        b.insert("b".into(), json!(2));
        b.insert("a".into(), json!(1));
        assert_eq!(content_hash(&a), content_hash(&b));
    }
}
