//! The resource kinds the inventory lists: name, endpoint, pagination family, and the typed
//! view whose fields are compared between snapshots.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::diff::Fields;
use crate::openai::wire::inventory as wire;

/// One kind of inventory object. Project- and group-scoped kinds are listed once per parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    User,
    Invite,
    Project,
    ProjectUser,
    ProjectServiceAccount,
    ProjectApiKey,
    ProjectRateLimit,
    AdminApiKey,
    Group,
    GroupUser,
    Role,
    Certificate,
    ExternalStorage,
}

/// How an endpoint pages (reference §B).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paging {
    /// `{first_id,last_id,has_more}`, `after=<last_id>`.
    Classic,
    /// `{has_more,next}`, `after=<next>`.
    NextCursor,
}

/// What an object is listed under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parent {
    Org,
    Project,
    Group,
}

impl Kind {
    /// Every kind, in the order their events are emitted.
    pub const ALL: [Kind; 13] = [
        Kind::User,
        Kind::Invite,
        Kind::Project,
        Kind::ProjectUser,
        Kind::ProjectServiceAccount,
        Kind::ProjectApiKey,
        Kind::ProjectRateLimit,
        Kind::AdminApiKey,
        Kind::Group,
        Kind::GroupUser,
        Kind::Role,
        Kind::Certificate,
        Kind::ExternalStorage,
    ];

    /// The kind's name: the prefix of its event types and its key in the state.
    pub fn name(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Invite => "invite",
            Kind::Project => "project",
            Kind::ProjectUser => "project.user",
            Kind::ProjectServiceAccount => "project.service_account",
            Kind::ProjectApiKey => "project.api_key",
            Kind::ProjectRateLimit => "project.rate_limit",
            Kind::AdminApiKey => "admin_api_key",
            Kind::Group => "group",
            Kind::GroupUser => "group.user",
            Kind::Role => "role",
            Kind::Certificate => "certificate",
            Kind::ExternalStorage => "external_storage",
        }
    }

    /// The kind named `name` ([`Kind::name`]).
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Route label for the rate limiter, metrics and logs.
    pub fn route(self) -> &'static str {
        match self {
            Kind::User => "inventory.users",
            Kind::Invite => "inventory.invites",
            Kind::Project => "inventory.projects",
            Kind::ProjectUser => "inventory.project_users",
            Kind::ProjectServiceAccount => "inventory.project_service_accounts",
            Kind::ProjectApiKey => "inventory.project_api_keys",
            Kind::ProjectRateLimit => "inventory.project_rate_limits",
            Kind::AdminApiKey => "inventory.admin_api_keys",
            Kind::Group => "inventory.groups",
            Kind::GroupUser => "inventory.group_users",
            Kind::Role => "inventory.roles",
            Kind::Certificate => "inventory.certificates",
            Kind::ExternalStorage => "inventory.external_storage",
        }
    }

    pub fn parent(self) -> Parent {
        match self {
            Kind::ProjectUser | Kind::ProjectServiceAccount | Kind::ProjectApiKey | Kind::ProjectRateLimit => {
                Parent::Project
            }
            Kind::GroupUser => Parent::Group,
            _ => Parent::Org,
        }
    }

    pub fn paging(self) -> Paging {
        match self {
            Kind::Group | Kind::GroupUser | Kind::Role => Paging::NextCursor,
            _ => Paging::Classic,
        }
    }

    /// The largest page each endpoint allows: fewer requests against the shared budget.
    pub fn limit(self) -> u32 {
        match self.paging() {
            Paging::NextCursor => 1000,
            Paging::Classic => 100,
        }
    }

    /// The path (relative to the API root) that lists this kind under `scope`.
    pub fn path(self, scope: Option<&str>) -> String {
        let s = scope.unwrap_or_default();
        match self {
            Kind::User => "organization/users".into(),
            Kind::Invite => "organization/invites".into(),
            Kind::Project => "organization/projects".into(),
            Kind::ProjectUser => format!("organization/projects/{s}/users"),
            Kind::ProjectServiceAccount => format!("organization/projects/{s}/service_accounts"),
            Kind::ProjectApiKey => format!("organization/projects/{s}/api_keys"),
            Kind::ProjectRateLimit => format!("organization/projects/{s}/rate_limits"),
            Kind::AdminApiKey => "organization/admin_api_keys".into(),
            Kind::Group => "organization/groups".into(),
            Kind::GroupUser => format!("organization/groups/{s}/users"),
            Kind::Role => "organization/roles".into(),
            Kind::Certificate => "organization/certificates".into(),
            Kind::ExternalStorage => "organization/external_storage".into(),
        }
    }

    /// Query parameters besides `limit` and `after`.
    pub fn extra_query(self) -> Vec<(&'static str, String)> {
        match self {
            // Archived projects are hidden by default; they are inventory too.
            Kind::Project => vec![("include_archived", "true".into())],
            // Keys whose owner lost project access are the interesting ones.
            Kind::ProjectApiKey => vec![("owner_project_access", "any".into())],
            _ => Vec::new(),
        }
    }

    /// The compared fields of `raw`, flattened to dotted paths (nulls left out), and the
    /// object's id; `None` when the item does not read as this kind (no string `id`).
    pub fn view(self, raw: &Value) -> Option<(String, Fields)> {
        match self {
            Kind::User => typed::<wire::User>(raw, |v| v.id.clone()),
            Kind::Invite => typed::<wire::Invite>(raw, |v| v.id.clone()),
            Kind::Project => typed::<wire::Project>(raw, |v| v.id.clone()),
            Kind::ProjectUser => typed::<wire::ProjectUser>(raw, |v| v.id.clone()),
            Kind::ProjectServiceAccount => typed::<wire::ProjectServiceAccount>(raw, |v| v.id.clone()),
            Kind::ProjectApiKey => typed::<wire::ProjectApiKey>(raw, |v| v.id.clone()),
            Kind::ProjectRateLimit => typed::<wire::ProjectRateLimit>(raw, |v| v.id.clone()),
            Kind::AdminApiKey => typed::<wire::AdminApiKey>(raw, |v| v.id.clone()),
            Kind::Group => typed::<wire::GroupResponse>(raw, |v| v.id.clone()),
            Kind::GroupUser => typed::<wire::GroupUser>(raw, |v| v.id.clone()),
            Kind::Role => typed::<wire::Role>(raw, |v| v.id.clone()),
            Kind::Certificate => typed::<wire::Certificate>(raw, |v| v.id.clone()),
            Kind::ExternalStorage => typed::<wire::ExternalStorage>(raw, |v| v.id.clone()),
        }
    }
}

fn typed<T: DeserializeOwned + Serialize>(raw: &Value, id: impl Fn(&T) -> String) -> Option<(String, Fields)> {
    let view = T::deserialize(raw).ok()?;
    let value = serde_json::to_value(&view).ok()?;
    let mut fields = Fields::new();
    if let Value::Object(map) = value {
        flatten("", &map, &mut fields);
    }
    fields.remove("id");
    Some((id(&view), fields))
}

/// `{"owner": {"user": {"id": 1}}}` → `owner.user.id = 1`; arrays stay whole values.
fn flatten(prefix: &str, map: &Map<String, Value>, out: &mut Fields) {
    for (k, v) in map {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Null => {}
            Value::Object(inner) => flatten(&path, inner, out),
            other => {
                out.insert(path, other.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_view_flattens_nested_owners_and_drops_nulls_and_unknown_fields() {
        let raw = json!({"object": "organization.project.api_key", "id": "key_1", "name": "k",
            "last_used_at": null, "extra": 5,
            "owner": {"type": "user", "user": {"id": "user-1", "role": "member", "created_at": 3}}});
        let (id, fields) = Kind::ProjectApiKey.view(&raw).expect("reads");
        assert_eq!(id, "key_1");
        assert_eq!(fields["owner.user.id"], json!("user-1"));
        assert_eq!(fields["owner.type"], json!("user"));
        assert!(!fields.contains_key("last_used_at"));
        assert!(!fields.contains_key("extra") && !fields.contains_key("id"));
    }

    #[test]
    fn an_item_without_an_id_does_not_read() {
        assert!(Kind::User.view(&json!({"name": "x"})).is_none());
    }
}
