//! `[[orgs]]`: several organizations in one daemon. Each block names an organization and its
//! keys, and may override the request budgets and the stream switches; every other setting
//! comes from the sections (`[openai]`, `[audit_logs]`, `[inventory]`, `[compliance]`).
//! Without a block, those sections are the one organization, exactly as before, and
//! [`Settings::organizations`] says so with an organization of no scope.

use std::num::NonZeroU32;

use serde::{Deserialize, Deserializer};

use super::validate::{at_least_one, secret, upstream_root_at};
use super::{ComplianceSettings, ConfigError, Requirements, Settings, de};
use crate::openai::admin::OpenAiSettings;
use crate::streams::audit_logs::AuditLogSettings;
use crate::streams::inventory::InventorySettings;

/// One `[[orgs]]` block, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOrg {
    organization_id: String,
    #[serde(default)]
    admin_key: String,
    #[serde(default)]
    admin_key_file: String,
    /// An Admin API root of this organization's own (a proxy per tenant), over `openai.base_url`.
    #[serde(default)]
    base_url: String,
    #[serde(default)]
    requests_per_minute: Option<u32>,
    #[serde(default)]
    compliance_principal_id: String,
    #[serde(default)]
    compliance_api_key: String,
    #[serde(default)]
    compliance_api_key_file: String,
    #[serde(default)]
    compliance_base_url: String,
    #[serde(default)]
    compliance_requests_per_minute: Option<u32>,
    #[serde(default, deserialize_with = "switch")]
    audit_logs: Option<bool>,
    #[serde(default, deserialize_with = "switch")]
    tenant_events: Option<bool>,
    #[serde(default, deserialize_with = "switch")]
    inventory: Option<bool>,
    #[serde(default, deserialize_with = "switch")]
    compliance: Option<bool>,
}

fn switch<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    de::boolean(d).map(Some)
}

/// One organization's settings: the sections, with its block's keys and overrides applied.
#[derive(Debug, Clone)]
pub struct OrgSettings {
    /// The block's `organization_id`: its streams are named `<org_id>/<stream>` and its state
    /// lives in `<state.dir>/<org_id>/`. `None` for the single organization of `[openai]`,
    /// whose streams and state keep the names they had before `[[orgs]]`.
    pub scope: Option<String>,
    pub openai: OpenAiSettings,
    pub audit_logs: AuditLogSettings,
    pub inventory: InventorySettings,
    pub compliance: ComplianceSettings,
}

impl OrgSettings {
    /// The organization id, for logs and `check` (`-` when `[openai]` does not name one).
    pub fn label(&self) -> &str {
        self.scope
            .as_deref()
            .or(self.openai.organization_id.as_deref())
            .unwrap_or("-")
    }
}

impl Settings {
    /// Every organization the daemon serves: the `[[orgs]]` blocks, or the one the sections
    /// describe.
    pub fn organizations(&self) -> Vec<OrgSettings> {
        if !self.orgs.is_empty() {
            return self.orgs.clone();
        }
        vec![OrgSettings {
            scope: None,
            openai: self.openai.clone(),
            audit_logs: self.audit_logs.clone(),
            inventory: self.inventory.clone(),
            compliance: self.compliance.clone(),
        }]
    }
}

/// What the sections give every block: validated, but with no credential required of them.
pub(super) struct Sections<'a> {
    pub(super) openai: &'a OpenAiSettings,
    pub(super) audit_logs: &'a AuditLogSettings,
    pub(super) inventory: &'a InventorySettings,
    pub(super) compliance: &'a ComplianceSettings,
    /// `openai.allow_insecure_http` and `compliance.allow_insecure_http`, for the blocks' own
    /// base URLs.
    pub(super) insecure_openai: bool,
    pub(super) insecure_compliance: bool,
}

/// The blocks, validated in order; each problem names `orgs[<n>].<key>`.
pub(super) fn orgs(
    raw: Vec<RawOrg>,
    base: &Sections<'_>,
    needs: Requirements,
) -> Result<Vec<OrgSettings>, ConfigError> {
    let mut out: Vec<OrgSettings> = Vec::with_capacity(raw.len());
    for (n, block) in raw.into_iter().enumerate() {
        let org = one(n, block, base, needs)?;
        let id = org.scope.as_deref().unwrap_or_default();
        if out.iter().any(|o| o.scope.as_deref() == Some(id)) {
            return Err(ConfigError::new(
                format!("orgs[{n}].organization_id"),
                format!("`{id}` is configured twice; each organization needs one block"),
            ));
        }
        out.push(org);
    }
    Ok(out)
}

fn one(n: usize, raw: RawOrg, base: &Sections<'_>, needs: Requirements) -> Result<OrgSettings, ConfigError> {
    let key = |k: &str| format!("orgs[{n}].{k}");
    let id = raw.organization_id.trim().to_string();
    if let Some(problem) = crate::state::org_dir_problem(&id) {
        return Err(ConfigError::new(key("organization_id"), problem));
    }

    let audit_logs = AuditLogSettings {
        enabled: raw.audit_logs.unwrap_or(base.audit_logs.enabled),
        tenant_events: raw.tenant_events.unwrap_or(base.audit_logs.tenant_events),
        ..base.audit_logs.clone()
    };
    let inventory = InventorySettings {
        enabled: raw.inventory.unwrap_or(base.inventory.enabled),
        ..base.inventory.clone()
    };

    let admin_key = secret(&key("admin_key"), raw.admin_key, raw.admin_key_file, None)?;
    if needs == Requirements::Pipeline && (audit_logs.enabled || inventory.enabled) && admin_key.is_none() {
        return Err(ConfigError::new(
            key("admin_key"),
            format!(
                "is required while audit_logs or inventory is enabled for `{id}`: set {} or {} to an Owner's admin key (sk-admin-…)",
                key("admin_key_file"),
                key("admin_key")
            ),
        ));
    }
    let openai = OpenAiSettings {
        admin_key,
        base_url: match raw.base_url.trim() {
            "" => base.openai.base_url.clone(),
            url => upstream_root_at(
                &key("base_url"),
                "openai.allow_insecure_http",
                url,
                base.insecure_openai,
            )?,
        },
        organization_id: Some(id.clone()),
        requests_per_minute: budget(
            &key("requests_per_minute"),
            raw.requests_per_minute,
            base.openai.requests_per_minute,
        )?,
        ..base.openai.clone()
    };

    let principal_id = raw.compliance_principal_id.trim().to_string();
    if principal_id.contains('/') || principal_id.contains('?') {
        return Err(ConfigError::new(
            key("compliance_principal_id"),
            "must be a workspace UUID or an org-… id",
        ));
    }
    // The section's switch turns compliance on for the blocks that name a principal.
    let enabled = raw
        .compliance
        .unwrap_or(base.compliance.enabled && !principal_id.is_empty());
    let api_key = secret(
        &key("compliance_api_key"),
        raw.compliance_api_key,
        raw.compliance_api_key_file,
        None,
    )?
    .or_else(|| base.compliance.api.api_key.clone());
    if enabled && needs == Requirements::Pipeline {
        if principal_id.is_empty() {
            return Err(ConfigError::new(
                key("compliance_principal_id"),
                format!(
                    "is required while compliance is enabled for `{id}`: the ChatGPT workspace UUID, or org-… for organization scope"
                ),
            ));
        }
        if api_key.is_none() {
            return Err(ConfigError::new(
                key("compliance_api_key"),
                format!(
                    "is required while compliance is enabled for `{id}`: set {} (or compliance.api_key_file for every organization)",
                    key("compliance_api_key_file")
                ),
            ));
        }
    }
    let mut compliance = base.compliance.clone();
    compliance.enabled = enabled;
    compliance.api.api_key = api_key;
    compliance.api.principal_id = principal_id;
    if !raw.compliance_base_url.trim().is_empty() {
        compliance.api.base_url = upstream_root_at(
            &key("compliance_base_url"),
            "compliance.allow_insecure_http",
            raw.compliance_base_url.trim(),
            base.insecure_compliance,
        )?;
    }
    compliance.api.requests_per_minute = budget(
        &key("compliance_requests_per_minute"),
        raw.compliance_requests_per_minute,
        base.compliance.api.requests_per_minute,
    )?;

    Ok(OrgSettings {
        scope: Some(id),
        openai,
        audit_logs,
        inventory,
        compliance,
    })
}

/// A block's own budget, or the section's.
fn budget(key: &str, own: Option<u32>, section: NonZeroU32) -> Result<NonZeroU32, ConfigError> {
    own.map_or(Ok(section), |n| at_least_one(key, n))
}

/// `[[orgs]]` for `config`, every key redacted.
pub(super) fn render(orgs: &[OrgSettings]) -> String {
    let mut out = String::new();
    for org in orgs {
        let redacted = |set: bool| if set { "\"[redacted]\"" } else { "\"\"" };
        out.push_str(&format!(
            "\n[[orgs]]\norganization_id = \"{}\"\nadmin_key = {}\nbase_url = \"{}\"\nrequests_per_minute = {}\n\
             audit_logs = {}\ntenant_events = {}\ninventory = {}\ncompliance = {}\ncompliance_principal_id = \"{}\"\n\
             compliance_api_key = {}\ncompliance_base_url = \"{}\"\ncompliance_requests_per_minute = {}\n",
            org.label(),
            redacted(org.openai.admin_key.is_some()),
            org.openai.base_url,
            org.openai.requests_per_minute,
            org.audit_logs.enabled,
            org.audit_logs.tenant_events,
            org.inventory.enabled,
            org.compliance.enabled,
            org.compliance.api.principal_id,
            redacted(org.compliance.api.api_key.is_some()),
            org.compliance.api.base_url,
            org.compliance.api.requests_per_minute,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::Path;

    use secrecy::ExposeSecret;

    use super::super::{Requirements, load, render_redacted};

    fn env() -> HashMap<String, String> {
        [("OAI_INGEST__SINK__URL", "https://ingest.example.com/events")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn with_file(toml: &str, check: impl FnOnce(&Path)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, toml).expect("write");
        check(&path);
    }

    const TWO: &str = r#"
[openai]
requests_per_minute = 30
[compliance]
enabled = true
api_key = "sk-cmp-shared-0001"
[[orgs]]
organization_id = "org-a"
admin_key = "sk-admin-aaaa-0001"
requests_per_minute = 120
compliance_principal_id = "ws-a"
[[orgs]]
organization_id = "org-b"
admin_key = "sk-admin-bbbb-0002"
inventory = false
compliance_api_key = "sk-cmp-own-0002"
compliance_principal_id = "ws-b"
"#;

    #[test]
    fn blocks_take_their_keys_and_overrides_over_the_sections() {
        with_file(TWO, |path| {
            let s = load(Some(path), &env(), Requirements::Pipeline).expect("valid");
            let orgs = s.organizations();
            assert_eq!(orgs.len(), 2);
            let (a, b) = (&orgs[0], &orgs[1]);
            assert_eq!(a.scope.as_deref(), Some("org-a"));
            assert_eq!(a.openai.organization_id.as_deref(), Some("org-a"));
            assert_eq!(a.openai.requests_per_minute.get(), 120);
            assert_eq!(b.openai.requests_per_minute.get(), 30, "the section's budget");
            assert!(a.inventory.enabled && !b.inventory.enabled);
            let key = |o: &super::OrgSettings| {
                o.compliance
                    .api
                    .api_key
                    .as_ref()
                    .map(|k| k.current().expose_secret().to_string())
            };
            assert_eq!(key(a).as_deref(), Some("sk-cmp-shared-0001"), "the section's key");
            assert_eq!(key(b).as_deref(), Some("sk-cmp-own-0002"));
            assert!(a.compliance.enabled && b.compliance.enabled);
        });
    }

    #[test]
    fn without_blocks_the_sections_are_the_one_organization_with_no_scope() {
        let mut pairs = env();
        pairs.insert("OPENAI_ADMIN_KEY".into(), "sk-admin-single".into());
        let s = load(None, &pairs, Requirements::Pipeline).expect("valid");
        let orgs = s.organizations();
        assert_eq!(orgs.len(), 1);
        assert_eq!(orgs[0].scope, None);
    }

    #[test]
    fn a_repeated_or_unsafe_id_and_a_missing_key_name_the_block_key() {
        let twice = "[[orgs]]\norganization_id = \"org-a\"\nadmin_key = \"k1\"\n[[orgs]]\norganization_id = \"org-a\"\nadmin_key = \"k2\"\n";
        with_file(twice, |path| {
            let err = load(Some(path), &env(), Requirements::Pipeline).expect_err("twice");
            assert_eq!(err.key, "orgs[1].organization_id", "{err}");
        });
        with_file("[[orgs]]\norganization_id = \"../x\"\nadmin_key = \"k\"\n", |path| {
            let err = load(Some(path), &env(), Requirements::Pipeline).expect_err("unsafe");
            assert_eq!(err.key, "orgs[0].organization_id", "{err}");
        });
        with_file("[[orgs]]\norganization_id = \"org-a\"\n", |path| {
            let err = load(Some(path), &env(), Requirements::Pipeline).expect_err("no key");
            assert_eq!(err.key, "orgs[0].admin_key", "{err}");
            load(Some(path), &env(), Requirements::None).expect("`config` needs no key");
        });
        with_file(
            "[[orgs]]\norganization_id = \"org-a\"\nadmin_key = \"k\"\ncompliance = true\n",
            |path| {
                let err = load(Some(path), &env(), Requirements::Pipeline).expect_err("no principal");
                assert_eq!(err.key, "orgs[0].compliance_principal_id", "{err}");
            },
        );
    }

    #[test]
    fn config_redacts_every_organizations_keys() {
        with_file(TWO, |path| {
            let s = load(Some(path), &env(), Requirements::Pipeline).expect("valid");
            let text = render_redacted(&s);
            for secret in [
                "sk-admin-aaaa-0001",
                "sk-admin-bbbb-0002",
                "sk-cmp-shared-0001",
                "sk-cmp-own-0002",
            ] {
                assert!(!text.contains(secret), "{secret} printed");
            }
            assert_eq!(text.matches("[[orgs]]").count(), 2);
            assert!(text.contains("organization_id = \"org-b\""));
        });
    }
}
