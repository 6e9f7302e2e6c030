//! Which lists an incremental inventory run reads again: the scopes named by the audit-log
//! events since the last run, plus what a creation or removal implies. Pure.
//!
//! Where an event does not say reliably which project it touched — no project, or an action
//! taken with an Admin API key, which the audit log files under the default project — the
//! kind is read again in every project: a list too many costs requests, a list too few
//! misses a change until the next full run.

use std::collections::BTreeSet;

use serde_json::Value;

use super::kind::{Kind, Parent};

/// Which parents a list is read under.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    /// An organization-level list.
    Org,
    /// One project's or group's list.
    One(String),
    /// The list of every project or group.
    Every,
}

/// The lists an incremental run reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    lists: BTreeSet<(Kind, Target)>,
    /// Audit events that named something the inventory holds.
    pub relevant: usize,
}

/// The kinds listed under a project.
const PROJECT_CHILDREN: [Kind; 4] = [
    Kind::ProjectUser,
    Kind::ProjectServiceAccount,
    Kind::ProjectApiKey,
    Kind::ProjectRateLimit,
];

impl Plan {
    /// Adds what `events` name.
    pub fn add<'a>(&mut self, events: impl IntoIterator<Item = &'a Value>) {
        for event in events {
            let lists = lists_for(event);
            if !lists.is_empty() {
                self.relevant += 1;
            }
            self.lists.extend(lists);
        }
    }

    /// Whether the list holding an object of `kind` under `scope` is named.
    pub fn names(&self, kind: Kind, scope: Option<&str>) -> bool {
        match scope {
            None => self.lists.contains(&(kind, Target::Org)),
            Some(s) => {
                self.lists.contains(&(kind, Target::Every)) || self.lists.contains(&(kind, Target::One(s.to_string())))
            }
        }
    }

    /// The organization-level lists, in [`Kind::ALL`] order (parents first).
    pub fn org_lists(&self) -> Vec<Kind> {
        Kind::ALL
            .into_iter()
            .filter(|k| self.lists.contains(&(*k, Target::Org)))
            .collect()
    }

    /// The scoped lists, in [`Kind::ALL`] order: `Every` expanded over `projects` / `groups`
    /// (the parents known once the organization-level lists are read), a list named twice
    /// read once.
    pub fn scoped_lists(&self, projects: &[String], groups: &[String]) -> Vec<(Kind, String)> {
        let mut out = Vec::new();
        for kind in Kind::ALL {
            let parents = match kind.parent() {
                Parent::Org => continue,
                Parent::Project => projects,
                Parent::Group => groups,
            };
            if self.lists.contains(&(kind, Target::Every)) {
                out.extend(parents.iter().map(|p| (kind, p.clone())));
                continue;
            }
            out.extend(self.lists.iter().filter_map(|(k, t)| match t {
                Target::One(id) if *k == kind => Some((kind, id.clone())),
                _ => None,
            }));
        }
        out
    }
}

/// The project an event touched, when the audit log says so reliably.
fn project_of(event: &Value) -> Target {
    let by_admin_key = event
        .pointer("/actor/type")
        .and_then(Value::as_str)
        .is_some_and(|t| t == "api_key");
    match event.pointer("/project/id").and_then(Value::as_str) {
        Some(id) if !by_admin_key => Target::One(id.to_string()),
        _ => Target::Every,
    }
}

/// The id of the event's payload object (`{"<type>": {"id": …}}`), if any.
fn payload_id(event: &Value, event_type: &str) -> Target {
    match event.get(event_type).and_then(|p| p.get("id")).and_then(Value::as_str) {
        Some(id) => Target::One(id.to_string()),
        None => Target::Every,
    }
}

/// The lists one audit event names (none for events about nothing the inventory holds, such
/// as logins).
pub fn lists_for(event: &Value) -> Vec<(Kind, Target)> {
    let Some(event_type) = event.get("type").and_then(Value::as_str) else {
        return Vec::new();
    };
    let family = event_type.split('.').next().unwrap_or_default();
    match (family, event_type) {
        (_, "user.deleted") => vec![
            (Kind::User, Target::Org),
            (Kind::ProjectUser, Target::Every),
            (Kind::GroupUser, Target::Every),
        ],
        ("user", _) => {
            let mut lists = vec![(Kind::User, Target::Org)];
            // A member added to or changed in a project is logged under that project.
            if event.get("project").is_some_and(|p| !p.is_null()) {
                lists.push((Kind::ProjectUser, project_of(event)));
            }
            lists
        }
        (_, "invite.accepted") => vec![(Kind::Invite, Target::Org), (Kind::User, Target::Org)],
        ("invite", _) => vec![(Kind::Invite, Target::Org)],
        ("project", _) => {
            let project = payload_id(event, event_type);
            let mut lists = vec![(Kind::Project, Target::Org)];
            lists.extend(PROJECT_CHILDREN.map(|k| (k, project.clone())));
            lists
        }
        // A service account comes and goes with its key.
        ("service_account", _) => {
            let project = project_of(event);
            vec![
                (Kind::ProjectServiceAccount, project.clone()),
                (Kind::ProjectApiKey, project),
            ]
        }
        // `api_key.*` names project keys and admin keys alike; the admin keys are one list.
        ("api_key", _) => vec![
            (Kind::ProjectApiKey, project_of(event)),
            (Kind::AdminApiKey, Target::Org),
        ],
        ("rate_limit", _) => vec![(Kind::ProjectRateLimit, project_of(event))],
        ("group", _) => vec![
            (Kind::Group, Target::Org),
            (Kind::GroupUser, payload_id(event, event_type)),
        ],
        // Roles and their assignments to members and groups.
        ("role", _) => vec![
            (Kind::Role, Target::Org),
            (Kind::ProjectUser, Target::Every),
            (Kind::GroupUser, Target::Every),
        ],
        ("certificate" | "certificates", _) => vec![(Kind::Certificate, Target::Org)],
        ("external_storage", _) => vec![(Kind::ExternalStorage, Target::Org)],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn plan(events: &[Value]) -> Plan {
        let mut plan = Plan::default();
        plan.add(events);
        plan
    }

    fn session(event_type: &str, project: Option<&str>) -> Value {
        let mut e = json!({"id": "audit_1", "type": event_type, "effective_at": 1, "actor": {"type": "session"}});
        if let Some(p) = project {
            e["project"] = json!({"id": p, "name": p});
        }
        e
    }

    #[test]
    fn a_changed_user_reads_only_the_users_list() {
        let p = plan(&[session("user.updated", None)]);
        assert_eq!(p.org_lists(), vec![Kind::User]);
        assert!(p.scoped_lists(&["proj_a".into()], &["g".into()]).is_empty());
        assert_eq!(p.relevant, 1);
    }

    #[test]
    fn an_archived_project_reads_the_projects_and_that_projects_lists() {
        let mut e = session("project.archived", Some("proj_default"));
        e["project.archived"] = json!({"id": "proj_b"});
        let p = plan(&[e]);
        assert_eq!(p.org_lists(), vec![Kind::Project]);
        let scoped = p.scoped_lists(&["proj_a".into(), "proj_b".into()], &[]);
        assert_eq!(scoped, PROJECT_CHILDREN.map(|k| (k, "proj_b".to_string())).to_vec());
    }

    #[test]
    fn a_key_created_in_a_session_reads_that_projects_keys_and_the_admin_keys() {
        let p = plan(&[session("api_key.created", Some("proj_a"))]);
        assert_eq!(p.org_lists(), vec![Kind::AdminApiKey]);
        assert_eq!(
            p.scoped_lists(&["proj_a".into(), "proj_b".into()], &[]),
            vec![(Kind::ProjectApiKey, "proj_a".to_string())]
        );
    }

    #[test]
    fn an_admin_key_action_filed_under_the_default_project_reads_every_project() {
        let mut e = session("service_account.created", Some("proj_default"));
        e["actor"] = json!({"type": "api_key"});
        let p = plan(&[e]);
        let scoped = p.scoped_lists(&["proj_a".into(), "proj_b".into()], &[]);
        assert_eq!(scoped.len(), 4, "{scoped:?}");
        assert!(
            scoped
                .iter()
                .all(|(k, _)| matches!(k, Kind::ProjectServiceAccount | Kind::ProjectApiKey))
        );
    }

    #[test]
    fn a_deleted_user_reads_every_membership_once() {
        let p = plan(&[session("user.deleted", None), session("user.added", Some("proj_a"))]);
        assert_eq!(p.org_lists(), vec![Kind::User]);
        let scoped = p.scoped_lists(&["proj_a".into(), "proj_b".into()], &["g1".into()]);
        assert_eq!(
            scoped,
            vec![
                (Kind::ProjectUser, "proj_a".to_string()),
                (Kind::ProjectUser, "proj_b".to_string()),
                (Kind::GroupUser, "g1".to_string()),
            ]
        );
    }

    #[test]
    fn logins_and_unknown_types_read_nothing() {
        let p = plan(&[session("login.succeeded", None), json!({"no": "type"})]);
        assert_eq!(p, Plan::default());
        assert_eq!(p.relevant, 0);
    }
}
