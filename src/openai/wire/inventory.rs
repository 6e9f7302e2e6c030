//! Inventory wire types (`openai-openapi.yaml`, reference §B): the two list envelopes and
//! typed views of the item fields the inventory stream compares. Items themselves stay JSON
//! so `raw` is exactly what was listed; a view reads only what it names and ignores the rest.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The classic envelope `{object, data, first_id, last_id, has_more}` (users, invites,
/// projects and their children, admin keys, certificates). The next page is `after=last_id`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ClassicList {
    pub object: String,
    pub data: Vec<Value>,
    #[serde(default)]
    pub first_id: Option<String>,
    #[serde(default)]
    pub last_id: Option<String>,
    pub has_more: bool,
}

/// The next-cursor envelope `{object, data, has_more, next}` (groups, group users, roles):
/// no `first_id`/`last_id`; the next page is `after=next`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct CursorList {
    pub object: String,
    pub data: Vec<Value>,
    pub has_more: bool,
    #[serde(default)]
    pub next: Option<String>,
}

/// `User` (`organization.user`).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct User {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    /// `owner` or `reader`.
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub added_at: Option<i64>,
    #[serde(default)]
    pub is_scim_managed: Option<bool>,
    #[serde(default)]
    pub is_service_account: Option<bool>,
}

/// `Invite` (`organization.invite`).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Invite {
    pub id: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub role: Option<String>,
    /// `accepted`, `expired` or `pending`.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub created_at: Option<i64>,
    #[serde(default)]
    pub expires_at: Option<i64>,
    #[serde(default)]
    pub accepted_at: Option<i64>,
    #[serde(default)]
    pub projects: Option<Value>,
}

/// `Project` (`organization.project`), archived ones included.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Project {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub created_at: Option<i64>,
    #[serde(default)]
    pub archived_at: Option<i64>,
    /// `active` or `archived`.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub external_key_id: Option<String>,
    #[serde(default)]
    pub residency: Option<String>,
}

/// `ProjectUser` (`organization.project.user`).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ProjectUser {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    /// `owner` or `member`.
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub added_at: Option<i64>,
}

/// `ProjectServiceAccount` (`organization.project.service_account`).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ProjectServiceAccount {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    /// `owner`, `member` or `none`.
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub created_at: Option<i64>,
}

/// `ProjectApiKey` (`organization.project.api_key`).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ProjectApiKey {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub redacted_value: Option<String>,
    #[serde(default)]
    pub created_at: Option<i64>,
    #[serde(default)]
    pub last_used_at: Option<i64>,
    /// `active` or `inactive` (the owner lost access to the project).
    #[serde(default)]
    pub owner_project_access: Option<String>,
    #[serde(default)]
    pub owner: Option<ProjectApiKeyOwner>,
    /// When the key stops working; `null` for a key created without an expiry (service-account
    /// keys may be created with `expires_in_seconds` since late 2026).
    #[serde(default)]
    pub expires_at: Option<i64>,
}

/// Owner of a project key: a user or a service account.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ProjectApiKeyOwner {
    /// `user` or `service_account`.
    #[serde(rename = "type", default)]
    pub owner_type: Option<String>,
    #[serde(default)]
    pub user: Option<KeyOwnerRef>,
    #[serde(default)]
    pub service_account: Option<KeyOwnerRef>,
}

/// The owner fields a key's diff and signals use (`ProjectUser`-like or service account).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct KeyOwnerRef {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub role: Option<String>,
}

/// `AdminApiKey` (`organization.admin_api_key`).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AdminApiKey {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub redacted_value: Option<String>,
    #[serde(default)]
    pub created_at: Option<i64>,
    #[serde(default)]
    pub expires_at: Option<i64>,
    #[serde(default)]
    pub last_used_at: Option<i64>,
    #[serde(default)]
    pub owner: Option<AdminApiKeyOwner>,
}

/// Owner of an admin key.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AdminApiKeyOwner {
    #[serde(rename = "type", default)]
    pub owner_type: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub role: Option<String>,
}

/// `GroupResponse` (groups list).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct GroupResponse {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub created_at: Option<i64>,
    #[serde(default)]
    pub is_scim_managed: Option<bool>,
    /// `group` or `tenant_group`.
    #[serde(default)]
    pub group_type: Option<String>,
}

/// `GroupUser`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct GroupUser {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}

/// `Role`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Role {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub permissions: Option<Vec<String>>,
    #[serde(default)]
    pub resource_type: Option<String>,
    #[serde(default)]
    pub predefined_role: Option<bool>,
}

/// `Certificate` (`organization.certificate`); the PEM `content` is left out of the view.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Certificate {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub created_at: Option<i64>,
    #[serde(default)]
    pub active: Option<bool>,
    #[serde(default)]
    pub certificate_details: Option<CertificateDetails>,
}

/// Validity of a certificate.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct CertificateDetails {
    #[serde(default)]
    pub valid_at: Option<i64>,
    #[serde(default)]
    pub expires_at: Option<i64>,
}

/// `organization.external_storage`: where a project's data is stored and how long it is kept
/// (listed by `GET /organization/external_storage`, classic envelope; newer than our spec
/// copy, see the reference's "Changes since the spec copy").
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ExternalStorage {
    pub id: String,
    #[serde(default)]
    pub created_at: Option<i64>,
    #[serde(default)]
    pub geography: Option<String>,
    #[serde(default)]
    pub project_id: Option<String>,
    /// `{type: aws | azure | gcp, …bucket and role fields}`; compared field by field.
    #[serde(default)]
    pub provider: Option<Value>,
    /// `pending`, `validated` or `unhealthy`.
    #[serde(default)]
    pub status: Option<String>,
}

/// `ProjectRateLimit` (`project.rate_limit`).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ProjectRateLimit {
    pub id: String,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub max_requests_per_1_minute: Option<i64>,
    #[serde(default)]
    pub max_tokens_per_1_minute: Option<i64>,
    #[serde(default)]
    pub max_images_per_1_minute: Option<i64>,
    #[serde(default)]
    pub max_audio_megabytes_per_1_minute: Option<f64>,
    #[serde(default)]
    pub max_requests_per_1_day: Option<i64>,
    #[serde(default)]
    pub batch_1_day_max_input_tokens: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const USERS: &str = include_str!("../../../tests/fixtures/openai/users_page.json");
    const PROJECTS: &str = include_str!("../../../tests/fixtures/openai/projects_page.json");
    const KEYS: &str = include_str!("../../../tests/fixtures/openai/project_api_keys_page.json");

    #[test]
    fn the_reference_examples_read_with_the_classic_envelope_and_item_views() {
        let users: ClassicList = serde_json::from_str(USERS).expect("users page");
        assert_eq!(users.last_id.as_deref(), Some("user-Rb71Mx2Kq9Lw4Tz6Pv8Nc3Hd"));
        let sam: User = serde_json::from_value(users.data[1].clone()).expect("user");
        assert_eq!(sam.is_scim_managed, Some(true));
        let projects: ClassicList = serde_json::from_str(PROJECTS).expect("projects page");
        let legacy: Project = serde_json::from_value(projects.data[1].clone()).expect("project");
        assert_eq!(legacy.status.as_deref(), Some("archived"));
        let keys: ClassicList = serde_json::from_str(KEYS).expect("keys page");
        let sa: ProjectApiKey = serde_json::from_value(keys.data[0].clone()).expect("key");
        let owner = sa.owner.expect("owner");
        assert_eq!(owner.owner_type.as_deref(), Some("service_account"));
        assert_eq!(
            owner.service_account.and_then(|s| s.id).as_deref(),
            Some("svc_acct_Jd83Kq0Lm2Rt")
        );
        let user_key: ProjectApiKey = serde_json::from_value(keys.data[1].clone()).expect("key");
        assert_eq!(user_key.last_used_at, None);
    }

    #[test]
    fn the_next_cursor_envelope_has_no_first_or_last_id() {
        let page: CursorList =
            serde_json::from_str(r#"{"object":"list","data":[{"id":"group_1"}],"has_more":true,"next":"group_1"}"#)
                .expect("cursor page");
        assert_eq!(page.next.as_deref(), Some("group_1"));
    }
}
