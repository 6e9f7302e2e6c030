//! Derived security signals over one inventory run (pure): stale keys, keys whose owner is
//! gone, keys about to expire and keys that never expire, invites left pending, who the owners
//! are, and external storage that is unhealthy or was removed (a project back on the
//! organization's default retention).
//!
//! A signal is a *condition* (stable facts, hashed) on a *subject*. The stream emits a signal
//! when its condition appears or changes, not every run while it holds, so an hourly
//! inventory does not repeat the same finding 24 times a day.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::diff::{Fields, Item, KindSnapshot};
use super::kind::Kind;

const DAY: i64 = 86_400;
/// Keys expiring this close are reported.
pub const EXPIRY_WARNING_DAYS: i64 = 14;
/// Keys without an expiry listed by id in the `keys_without_expiry` details (the count and
/// the condition cover all of them).
const LISTED_KEYS: usize = 100;
/// Invites pending longer than this are reported.
pub const INVITE_PENDING_DAYS: i64 = 7;

/// The signals, by name (`inventory.<name>` is the event type).
#[cfg(test)]
pub const NAMES: [&str; 9] = [
    "stale_key",
    "orphaned_key",
    "admin_key_expiring",
    "key_expiring",
    "keys_without_expiry",
    "invite_pending",
    "owners",
    "external_storage_unhealthy",
    "external_storage_removed",
];

/// Whether the signals read field `field` of `kind`, whose fields are `fields`: the run keeps
/// only those of the objects it evaluates, so the whole user list costs little more than its
/// ids (of a user, only an owner's role and email are read).
pub fn reads(kind: Kind, field: &str, fields: &Fields) -> bool {
    if kind == Kind::User && fields.get("role").and_then(Value::as_str) != Some("owner") {
        return false;
    }
    match kind {
        Kind::User => matches!(field, "role" | "email"),
        Kind::Invite => matches!(field, "created_at" | "email" | "role" | "status"),
        Kind::ProjectApiKey | Kind::AdminApiKey => matches!(
            field,
            "created_at"
                | "expires_at"
                | "last_used_at"
                | "name"
                | "owner.id"
                | "owner.type"
                | "owner.user.email"
                | "owner.user.id"
        ),
        Kind::ExternalStorage => matches!(field, "geography" | "project_id" | "provider.type" | "status"),
        _ => false,
    }
}

/// One condition that holds now.
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    pub name: &'static str,
    /// What it is about, unique within the signal (`project.api_key:proj_1/key_1`, `org`).
    pub subject: String,
    pub target_type: &'static str,
    pub target_id: Option<String>,
    pub target_name: Option<String>,
    pub project_id: Option<String>,
    /// The stable facts; their hash decides whether the condition is new or changed.
    pub condition: Value,
    /// `condition` plus what helps a reader (ages in days, thresholds).
    pub details: Value,
}

impl Signal {
    pub fn condition_hash(&self) -> String {
        hex::encode(Sha256::digest(self.condition.to_string().as_bytes()))
    }
}

/// This run's listings; `None` for a kind that was not listed completely, which makes the
/// signals that need it unevaluable (their previous conditions are kept as they were).
#[derive(Debug, Clone, Copy, Default)]
pub struct Inputs<'a> {
    pub users: Option<&'a [Item]>,
    pub invites: Option<&'a [Item]>,
    pub project_keys: Option<&'a [Item]>,
    pub admin_keys: Option<&'a [Item]>,
    pub external_storage: Option<&'a [Item]>,
    /// The external storage of the previous snapshot, to tell which projects lost theirs.
    pub external_storage_before: Option<&'a KindSnapshot>,
}

/// Every signal name with the conditions that hold now, or `None` when its inputs are
/// incomplete.
#[cfg(test)]
pub fn evaluate(inputs: &Inputs<'_>, now: i64, stale_key_days: u32) -> BTreeMap<&'static str, Option<Vec<Signal>>> {
    let mut out = evaluate_keys(inputs, now, stale_key_days);
    out.extend(evaluate_org(inputs, now));
    out
}

/// The signals about single keys (stale, orphaned, expiring). Each key's conditions depend on
/// the key and the member list only, so `inputs` may hold any slice of the keys: a large
/// organization's are evaluated a slice at a time.
pub fn evaluate_keys(
    inputs: &Inputs<'_>,
    now: i64,
    stale_key_days: u32,
) -> BTreeMap<&'static str, Option<Vec<Signal>>> {
    let mut out = BTreeMap::new();
    let keys = inputs.project_keys.zip(inputs.admin_keys);
    out.insert(
        "stale_key",
        keys.map(|(p, a)| stale_keys(p, a, now, i64::from(stale_key_days))),
    );
    out.insert(
        "orphaned_key",
        keys.zip(inputs.users).map(|((p, a), u)| orphaned_keys(p, a, u)),
    );
    out.insert("admin_key_expiring", inputs.admin_keys.map(|a| expiring(a, now)));
    out.insert(
        "key_expiring",
        inputs.project_keys.map(|p| project_keys_expiring(p, now)),
    );
    out
}

/// The organization-wide signals. Of the keys they need only those without an expiry.
pub fn evaluate_org(inputs: &Inputs<'_>, now: i64) -> BTreeMap<&'static str, Option<Vec<Signal>>> {
    let mut out = BTreeMap::new();
    let keys = inputs.project_keys.zip(inputs.admin_keys);
    out.insert(
        "keys_without_expiry",
        keys.map(|(p, a)| keys_without_expiry(p, a).into_iter().collect()),
    );
    out.insert(
        "external_storage_unhealthy",
        inputs.external_storage.map(unhealthy_storage),
    );
    // No previous snapshot of the kind is the same as an empty one: nothing was removed.
    let nothing_before = KindSnapshot::default();
    out.insert(
        "external_storage_removed",
        inputs
            .external_storage
            .map(|now| removed_storage(now, inputs.external_storage_before.unwrap_or(&nothing_before))),
    );
    out.insert("invite_pending", inputs.invites.map(|i| pending_invites(i, now)));
    out.insert("owners", inputs.users.map(|u| vec![owners(u)]));
    out
}

fn int(item: &Item, field: &str) -> Option<i64> {
    item.fields.get(field).and_then(Value::as_i64)
}

fn text(item: &Item, field: &str) -> Option<String> {
    item.fields.get(field).and_then(Value::as_str).map(str::to_string)
}

fn key_signal(name: &'static str, kind: &'static str, key: &Item, condition: Value, extra: Value) -> Signal {
    let mut details = condition.clone();
    if let (Some(d), Value::Object(e)) = (details.as_object_mut(), extra) {
        d.extend(e);
    }
    Signal {
        name,
        subject: format!("{kind}:{}", super::diff::key(key.scope.as_deref(), &key.id)),
        target_type: if kind == "admin_api_key" {
            "admin_api_key"
        } else {
            "api_key"
        },
        target_id: Some(key.id.clone()),
        target_name: text(key, "name"),
        project_id: key.scope.clone(),
        condition,
        details,
    }
}

fn all_keys<'a>(project: &'a [Item], admin: &'a [Item]) -> impl Iterator<Item = (&'static str, &'a Item)> {
    project
        .iter()
        .map(|k| ("project.api_key", k))
        .chain(admin.iter().map(|k| ("admin_api_key", k)))
}

/// Keys unused (or, never used, created) more than `days` ago.
fn stale_keys(project: &[Item], admin: &[Item], now: i64, days: i64) -> Vec<Signal> {
    let threshold = now - days * DAY;
    all_keys(project, admin)
        .filter_map(|(kind, key)| {
            let last_used = int(key, "last_used_at");
            let since = last_used.or_else(|| int(key, "created_at"))?;
            (since < threshold).then(|| {
                key_signal(
                    "stale_key",
                    kind,
                    key,
                    json!({"key_id": key.id, "last_used_at": last_used, "created_at": int(key, "created_at")}),
                    json!({"never_used": last_used.is_none(), "days_unused": (now - since) / DAY,
                           "stale_key_days": days}),
                )
            })
        })
        .collect()
}

/// Keys owned by a user who is no longer a member of the organization.
fn orphaned_keys(project: &[Item], admin: &[Item], users: &[Item]) -> Vec<Signal> {
    let members: BTreeSet<&str> = users.iter().map(|u| u.id.as_str()).collect();
    all_keys(project, admin)
        .filter_map(|(kind, key)| {
            let owner = if kind == "admin_api_key" {
                text(key, "owner.id")
            } else if text(key, "owner.type").as_deref() == Some("user") {
                text(key, "owner.user.id")
            } else {
                None
            }?;
            (!members.contains(owner.as_str())).then(|| {
                key_signal(
                    "orphaned_key",
                    kind,
                    key,
                    json!({"key_id": key.id, "owner_id": owner}),
                    json!({"owner_email": text(key, "owner.user.email")}),
                )
            })
        })
        .collect()
}

/// Admin keys that expire within [`EXPIRY_WARNING_DAYS`] (or already have).
fn expiring(admin: &[Item], now: i64) -> Vec<Signal> {
    keys_expiring(admin, now, "admin_key_expiring", "admin_api_key", |_| json!({}))
}

/// Project and service-account keys that expire within [`EXPIRY_WARNING_DAYS`] (or already
/// have), from the `expires_at` the API reports.
fn project_keys_expiring(project: &[Item], now: i64) -> Vec<Signal> {
    keys_expiring(
        project,
        now,
        "key_expiring",
        "project.api_key",
        |key| json!({"owner_type": text(key, "owner.type")}),
    )
}

/// One `signal` per key of `kind` whose `expires_at` is within the warning, with the
/// kind's own `extra` details.
fn keys_expiring(
    keys: &[Item],
    now: i64,
    signal: &'static str,
    kind: &'static str,
    extra: impl Fn(&Item) -> Value,
) -> Vec<Signal> {
    keys.iter()
        .filter_map(|key| {
            let expires_at = int(key, "expires_at")?;
            (expires_at <= now + EXPIRY_WARNING_DAYS * DAY).then(|| {
                let mut details = json!({"expired": expires_at <= now, "warning_days": EXPIRY_WARNING_DAYS});
                if let (Some(d), Value::Object(e)) = (details.as_object_mut(), extra(key)) {
                    d.extend(e);
                }
                key_signal(
                    signal,
                    kind,
                    key,
                    json!({"key_id": key.id, "expires_at": expires_at}),
                    details,
                )
            })
        })
        .collect()
}

/// Every key created without an expiry, counted for an auditor: one organization-wide
/// condition that changes when the set does (none while every key expires).
fn keys_without_expiry(project: &[Item], admin: &[Item]) -> Option<Signal> {
    let ids: BTreeSet<String> = all_keys(project, admin)
        .filter(|(_, key)| int(key, "expires_at").is_none())
        .map(|(kind, key)| format!("{kind}:{}", super::diff::key(key.scope.as_deref(), &key.id)))
        .collect();
    if ids.is_empty() {
        return None;
    }
    let digest = hex::encode(Sha256::digest(serde_json::to_string(&ids).unwrap_or_default()));
    let count_of = |kind: &str| ids.iter().filter(|id| id.starts_with(kind)).count();
    let condition = json!({"count": ids.len(), "keys_sha256": digest});
    let mut details = condition.clone();
    details["project_keys"] = json!(count_of("project.api_key:"));
    details["admin_keys"] = json!(count_of("admin_api_key:"));
    details["keys"] = json!(ids.iter().take(LISTED_KEYS).collect::<Vec<_>>());
    details["keys_listed"] = json!(ids.len().min(LISTED_KEYS));
    Some(Signal {
        name: "keys_without_expiry",
        subject: "org".into(),
        target_type: "organization",
        target_id: None,
        target_name: None,
        project_id: None,
        condition,
        details,
    })
}

/// External storage whose status is `unhealthy`: the project's data may not be landing where
/// the organization decided.
fn unhealthy_storage(storage: &[Item]) -> Vec<Signal> {
    storage
        .iter()
        .filter(|s| text(s, "status").as_deref() == Some("unhealthy"))
        .map(|s| {
            let condition = json!({"external_storage_id": s.id, "status": "unhealthy",
                                   "project_id": text(s, "project_id")});
            let mut details = condition.clone();
            details["provider"] = json!(text(s, "provider.type"));
            details["geography"] = json!(text(s, "geography"));
            Signal {
                name: "external_storage_unhealthy",
                subject: format!("external_storage:{}", s.id),
                target_type: "external_storage",
                target_id: Some(s.id.clone()),
                target_name: None,
                project_id: text(s, "project_id"),
                condition,
                details,
            }
        })
        .collect()
}

/// Projects that had external storage in the previous snapshot and have none now: their data
/// falls back to the organization's default retention.
fn removed_storage(now: &[Item], before: &KindSnapshot) -> Vec<Signal> {
    let still: BTreeSet<String> = now.iter().filter_map(|s| text(s, "project_id")).collect();
    let mut lost: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for (id, stored) in &before.objects {
        let project = stored.fields.get("project_id").and_then(Value::as_str);
        if let Some(project) = project.filter(|p| !still.contains(*p)) {
            lost.entry(project.to_string()).or_default().push(id);
        }
    }
    lost.into_iter()
        .map(|(project, ids)| {
            let condition = json!({"project_id": project, "removed_external_storage_ids": ids});
            Signal {
                name: "external_storage_removed",
                subject: format!("project:{project}"),
                target_type: "project",
                target_id: Some(project.clone()),
                target_name: None,
                project_id: Some(project),
                details: condition.clone(),
                condition,
            }
        })
        .collect()
}

/// Invites still pending more than [`INVITE_PENDING_DAYS`] after they were sent.
fn pending_invites(invites: &[Item], now: i64) -> Vec<Signal> {
    invites
        .iter()
        .filter_map(|invite| {
            let created = int(invite, "created_at")?;
            let pending = text(invite, "status").as_deref() == Some("pending");
            (pending && created < now - INVITE_PENDING_DAYS * DAY).then(|| {
                let condition = json!({"invite_id": invite.id, "email": text(invite, "email"), "created_at": created});
                let mut details = condition.clone();
                details["days_pending"] = json!((now - created) / DAY);
                details["role"] = json!(text(invite, "role"));
                Signal {
                    name: "invite_pending",
                    subject: format!("invite:{}", invite.id),
                    target_type: "invite",
                    target_id: Some(invite.id.clone()),
                    target_name: text(invite, "email"),
                    project_id: None,
                    condition,
                    details,
                }
            })
        })
        .collect()
}

/// Who the organization owners are; reported when the set changes.
fn owners(users: &[Item]) -> Signal {
    let owners: Vec<&Item> = users
        .iter()
        .filter(|u| text(u, "role").as_deref() == Some("owner"))
        .collect();
    let ids: BTreeSet<&str> = owners.iter().map(|u| u.id.as_str()).collect();
    let condition = json!({"count": ids.len(), "owner_ids": ids});
    let mut details = condition.clone();
    details["owner_emails"] = json!(owners.iter().filter_map(|u| text(u, "email")).collect::<Vec<_>>());
    Signal {
        name: "owners",
        subject: "org".into(),
        target_type: "organization",
        target_id: None,
        target_name: None,
        project_id: None,
        condition,
        details,
    }
}

#[cfg(test)]
mod tests {
    use super::super::diff::Fields;
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn item(id: &str, scope: Option<&str>, fields: Value) -> Item {
        let fields: Fields = serde_json::from_value(fields).expect("fields");
        Item {
            id: id.into(),
            scope: scope.map(str::to_string),
            fields,
            raw: json!({"id": id}),
        }
    }

    fn names(signals: &[Signal]) -> Vec<&str> {
        signals.iter().map(|s| s.target_id.as_deref().unwrap_or("-")).collect()
    }

    #[test]
    fn keys_unused_past_the_threshold_are_stale_and_fresh_ones_are_not() {
        let project = [
            item(
                "old",
                Some("p"),
                json!({"last_used_at": NOW - 100 * DAY, "created_at": NOW - 300 * DAY}),
            ),
            item(
                "fresh",
                Some("p"),
                json!({"last_used_at": NOW - 60, "created_at": NOW - 300 * DAY}),
            ),
            item("never", Some("p"), json!({"created_at": NOW - 91 * DAY})),
            item("new", Some("p"), json!({"created_at": NOW - DAY})),
        ];
        let admin = [item("adm", None, json!({"last_used_at": NOW - 95 * DAY}))];
        let s = stale_keys(&project, &admin, NOW, 90);
        assert_eq!(names(&s), vec!["old", "never", "adm"]);
        assert_eq!(s[0].subject, "project.api_key:p/old");
        assert_eq!(s[0].project_id.as_deref(), Some("p"));
        assert_eq!(s[1].details["never_used"], true);
        assert_eq!(s[2].target_type, "admin_api_key");
    }

    #[test]
    fn the_stale_condition_hash_does_not_move_with_the_clock() {
        let project = [item("old", Some("p"), json!({"last_used_at": NOW - 100 * DAY}))];
        let a = stale_keys(&project, &[], NOW, 90);
        let b = stale_keys(&project, &[], NOW + 3600, 90);
        assert_eq!(a[0].condition_hash(), b[0].condition_hash());
    }

    #[test]
    fn keys_whose_user_owner_left_are_orphaned_and_service_account_keys_are_not() {
        let users = [item("user-a", None, json!({"role": "owner"}))];
        let project = [
            item(
                "k1",
                Some("p"),
                json!({"owner.type": "user", "owner.user.id": "user-a"}),
            ),
            item(
                "k2",
                Some("p"),
                json!({"owner.type": "user", "owner.user.id": "user-gone"}),
            ),
            item(
                "k3",
                Some("p"),
                json!({"owner.type": "service_account", "owner.service_account.id": "sa"}),
            ),
        ];
        let admin = [item("a1", None, json!({"owner.id": "user-gone2"}))];
        let s = orphaned_keys(&project, &admin, &users);
        assert_eq!(names(&s), vec!["k2", "a1"]);
        assert_eq!(s[0].condition["owner_id"], "user-gone");
    }

    #[test]
    fn admin_keys_expiring_within_two_weeks_are_reported() {
        let admin = [
            item("soon", None, json!({"expires_at": NOW + 10 * DAY})),
            item("later", None, json!({"expires_at": NOW + 30 * DAY})),
            item("never", None, json!({})),
        ];
        assert_eq!(names(&expiring(&admin, NOW)), vec!["soon"]);
    }

    #[test]
    fn only_invites_pending_over_a_week_are_reported() {
        let invites = [
            item("i1", None, json!({"status": "pending", "created_at": NOW - 10 * DAY})),
            item("i2", None, json!({"status": "pending", "created_at": NOW - DAY})),
            item("i3", None, json!({"status": "accepted", "created_at": NOW - 20 * DAY})),
        ];
        assert_eq!(names(&pending_invites(&invites, NOW)), vec!["i1"]);
    }

    #[test]
    fn the_owners_condition_changes_only_when_the_set_of_owners_does() {
        let before = [
            item("u1", None, json!({"role": "owner"})),
            item("u2", None, json!({"role": "reader"})),
        ];
        let renamed = [
            item("u1", None, json!({"role": "owner", "name": "x"})),
            item("u2", None, json!({"role": "reader"})),
        ];
        let promoted = [
            item("u1", None, json!({"role": "owner"})),
            item("u2", None, json!({"role": "owner"})),
        ];
        assert_eq!(owners(&before).condition_hash(), owners(&renamed).condition_hash());
        assert_ne!(owners(&before).condition_hash(), owners(&promoted).condition_hash());
        assert_eq!(owners(&promoted).details["count"], 2);
    }

    #[test]
    fn a_signal_whose_inputs_are_incomplete_is_not_evaluated() {
        let users = [item("u1", None, json!({"role": "owner"}))];
        let out = evaluate(
            &Inputs {
                users: Some(&users),
                invites: None,
                project_keys: None,
                admin_keys: Some(&[]),
                external_storage: Some(&[]),
                external_storage_before: None,
            },
            NOW,
            90,
        );
        assert!(out["stale_key"].is_none() && out["orphaned_key"].is_none() && out["invite_pending"].is_none());
        assert!(out["key_expiring"].is_none() && out["keys_without_expiry"].is_none());
        assert!(out["admin_key_expiring"].is_some() && out["owners"].is_some());
        assert!(out["external_storage_unhealthy"].is_some());
        assert_eq!(
            out["external_storage_removed"],
            Some(Vec::new()),
            "no previous snapshot: nothing was removed"
        );
        assert_eq!(out.len(), NAMES.len());
    }

    #[test]
    fn project_keys_expiring_within_two_weeks_are_reported_from_their_expires_at() {
        let keys = [
            item(
                "in_5_days",
                Some("proj_1"),
                json!({"expires_at": NOW + 5 * DAY, "owner.type": "service_account"}),
            ),
            item("in_60_days", Some("proj_1"), json!({"expires_at": NOW + 60 * DAY})),
            item("no_expiry", Some("proj_1"), json!({})),
        ];
        let found = project_keys_expiring(&keys, NOW);
        assert_eq!(names(&found), vec!["in_5_days"]);
        assert_eq!(found[0].details["owner_type"], "service_account");
        assert_eq!(found[0].project_id.as_deref(), Some("proj_1"));
    }

    #[test]
    fn keys_created_without_an_expiry_are_counted_in_one_signal_that_changes_with_the_set() {
        let project = [
            item("k1", Some("p"), json!({})),
            item("k2", Some("p"), json!({"expires_at": NOW + DAY})),
        ];
        let admin = [item("a1", None, json!({}))];
        let signal = keys_without_expiry(&project, &admin).expect("two keys never expire");
        assert_eq!(signal.details["count"], 2);
        assert_eq!(
            (
                signal.details["project_keys"].clone(),
                signal.details["admin_keys"].clone()
            ),
            (json!(1), json!(1))
        );
        let fewer = keys_without_expiry(&project, &[]).expect("one key never expires");
        assert_ne!(signal.condition_hash(), fewer.condition_hash());
        let again = keys_without_expiry(&project, &admin).expect("the same keys");
        assert_eq!(again.condition_hash(), signal.condition_hash());
        assert!(keys_without_expiry(&project[1..], &[]).is_none(), "every key expires");
    }

    #[test]
    fn unhealthy_external_storage_and_a_project_that_lost_its_storage_are_reported() {
        let now = [
            item(
                "es1",
                None,
                json!({"status": "unhealthy", "project_id": "proj_a", "provider.type": "aws"}),
            ),
            item("es2", None, json!({"status": "validated", "project_id": "proj_b"})),
        ];
        assert_eq!(names(&unhealthy_storage(&now)), vec!["es1"]);
        let mut before = KindSnapshot::default();
        for (id, project) in [("es1", "proj_a"), ("es2", "proj_b"), ("es3", "proj_c")] {
            before.objects.insert(
                id.into(),
                super::super::diff::Stored {
                    hash: String::new(),
                    scope: None,
                    fields: [("project_id".to_string(), json!(project))].into_iter().collect(),
                },
            );
        }
        let removed = removed_storage(&now, &before);
        assert_eq!(names(&removed), vec!["proj_c"]);
        assert_eq!(removed[0].details["removed_external_storage_ids"], json!(["es3"]));
    }
}
