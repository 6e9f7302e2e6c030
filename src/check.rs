//! `check`: verifies each credential and permission the enabled streams need (the audit
//! logs, every inventory endpoint, the compliance list), that the admin key belongs to its
//! organization id, and probes the sink with a request that writes nothing — turning each
//! failure into the operator action that fixes it. With `[[orgs]]`, each organization's
//! checks run in turn and each line names its organization.
#![allow(clippy::print_stdout)]

use std::time::Duration;

use crate::compliance::ComplianceApi;
use crate::config::{ComplianceSettings, OrgSettings, Settings};
use crate::metrics::Metrics;
use crate::openai::{AdminApi, AuditLogQuery};
use crate::retry::RetrySettings;
use crate::upstream::{ApiError, ApiErrorKind};

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub ok: bool,
    pub what: String,
    pub detail: String,
}

impl Finding {
    fn ok(what: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            ok: true,
            what: what.into(),
            detail: detail.into(),
        }
    }
    fn failed(what: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            ok: false,
            what: what.into(),
            detail: detail.into(),
        }
    }
}

/// Runs every check the configuration calls for; prints one line each and returns them.
pub async fn run(settings: &Settings) -> Vec<Finding> {
    let mut findings = Vec::new();
    // With `[[orgs]]`, every organization's checks, each line naming its organization.
    for org in settings.organizations() {
        let mut own = Vec::new();
        if org.audit_logs.enabled || org.inventory.enabled {
            own.extend(check_admin(&org, settings.retry).await);
        }
        if org.compliance.enabled {
            own.push(check_compliance(&org.compliance, settings.retry).await);
        }
        if org.scope.is_some() {
            for f in &mut own {
                f.what = format!("{} / {}", org.label(), f.what);
            }
        }
        findings.extend(own);
    }
    findings.push(check_guardrails(settings));
    findings.push(check_sink(settings).await);
    // What a server said may come back in a finding: no configured secret is printed.
    for f in &mut findings {
        f.detail = crate::secrets::redact(&f.detail);
        f.what = crate::secrets::redact(&f.what);
    }
    for f in &findings {
        let mark = if f.ok { "ok  " } else { "FAIL" };
        crate::telemetry::say_out(&format!("{mark} {}: {}\n", f.what, f.detail));
    }
    findings
}

async fn check_admin(org: &OrgSettings, retry: RetrySettings) -> Vec<Finding> {
    let client = match AdminApi::new(&org.openai, retry, Metrics::new()) {
        Ok(c) => c.with_attempts(2),
        Err(e) => return vec![Finding::failed("admin key", e.to_string())],
    };
    let now = chrono::Utc::now().timestamp();
    let mut passes = vec![("audit logs", false)];
    if org.audit_logs.tenant_events {
        passes.push(("tenant-scoped audit logs", true));
    }
    let mut out = Vec::new();
    let mut organization = None;
    for (what, tenant_only) in passes {
        let query = AuditLogQuery {
            gte: now - 86_400,
            lte: now,
            after: None,
            limit: 1,
            tenant_only,
        };
        out.push(match client.audit_logs(&query).await {
            Ok(fetched) => {
                organization = organization.or(fetched.organization);
                Finding::ok(what, "the admin key can read them")
            }
            Err(err) if tenant_only && matches!(err.kind, ApiErrorKind::Forbidden | ApiErrorKind::NotFound | ApiErrorKind::Rejected) => {
                // The tenant pass is optional: the daemon parks it and keeps the normal pass.
                Finding::ok(what, format!("not available to this organization ({}); the daemon will skip this pass — set audit_logs.tenant_events = false to silence it", err.message))
            }
            Err(err) => Finding::failed(what, admin_action(&err)),
        });
    }
    if org.inventory.enabled {
        let (finding, reported) = check_inventory(&client).await;
        organization = organization.or(reported);
        out.push(finding);
    }
    if out.iter().any(|f| f.ok) {
        out.push(check_organization(
            org.openai.organization_id.as_deref(),
            organization.as_deref(),
        ));
    }
    out
}

/// Whether the organization the API names for the admin key is the configured one: a key of
/// another organization would ship its events labelled as this one's.
fn check_organization(configured: Option<&str>, reported: Option<&str>) -> Finding {
    const WHAT: &str = "organization";
    match (configured, reported) {
        (Some(configured), Some(reported)) if configured == reported => Finding::ok(
            WHAT,
            format!("the admin key belongs to {reported}, as openai.organization_id says"),
        ),
        (Some(configured), Some(reported)) => Finding::failed(
            WHAT,
            format!(
                "openai.organization_id is {configured}, but the admin key belongs to {reported}: use an admin key of \
                 {configured}, or set openai.organization_id = \"{reported}\""
            ),
        ),
        (None, Some(reported)) => Finding::ok(
            WHAT,
            format!(
                "the admin key belongs to {reported}; set openai.organization_id = \"{reported}\" so event ids are unique across organizations"
            ),
        ),
        (Some(configured), None) => Finding::ok(
            WHAT,
            format!(
                "the API did not name the key's organization (no openai-organization header); {configured} could not be confirmed"
            ),
        ),
        (None, None) => Finding::ok(
            WHAT,
            "openai.organization_id is not set and the API did not name the organization",
        ),
    }
}

/// Lists one object of every inventory kind (the project- and group-scoped ones under the
/// first project and group): each endpoint must answer; a 403 names the kinds the key may
/// not read. Returns the finding and the organization the API named, if it did.
async fn check_inventory(client: &AdminApi) -> (Finding, Option<String>) {
    use crate::streams::inventory::kind::{Kind, Parent};
    const WHAT: &str = "inventory";
    let mut organization = None;
    let mut readable = Vec::new();
    let mut not_offered = Vec::new();
    let mut failed = Vec::new();
    // The first project and group, to list the kinds scoped under them.
    let (mut project, mut group) = (None::<String>, None::<String>);
    for kind in Kind::ALL {
        let scope = match kind.parent() {
            Parent::Org => None,
            Parent::Project => project.clone(),
            Parent::Group => group.clone(),
        };
        if kind.parent() != Parent::Org && scope.is_none() {
            // No project (or group) to list under: nothing to ask.
            continue;
        }
        let query = [("limit", "1".to_string())];
        match client
            .list::<serde_json::Value>(kind.route(), &kind.path(scope.as_deref()), &query)
            .await
        {
            Ok(fetched) => {
                organization = organization.or(fetched.organization);
                let first_id = fetched.body["data"][0]["id"].as_str().map(str::to_string);
                match kind {
                    Kind::Project => project = first_id,
                    Kind::Group => group = first_id,
                    _ => {}
                }
                readable.push(kind.name());
            }
            Err(err) if err.kind == ApiErrorKind::NotFound && scope.is_none() => not_offered.push(kind.name()),
            Err(err) => failed.push(format!("{}: {}", kind.name(), admin_action(&err))),
        }
    }
    let mut detail = format!("the admin key can list {}", readable.join(", "));
    if !not_offered.is_empty() {
        detail.push_str(&format!(
            "; not offered to this organization (skipped by the daemon): {}",
            not_offered.join(", ")
        ));
    }
    let finding = if failed.is_empty() {
        Finding::ok(WHAT, detail)
    } else {
        Finding::failed(WHAT, format!("{}; {detail}", failed.join("; ")))
    };
    (finding, organization)
}

/// What the operator should do about an Admin API failure.
pub fn admin_action(err: &ApiError) -> String {
    let said = err.summary();
    let lower = err.message.to_ascii_lowercase();
    if lower.contains("audit log")
        && (lower.contains("not enabled") || lower.contains("disabled") || lower.contains("enable"))
    {
        return format!(
            "{said} — audit logging is off for this organization: an Owner must turn it on under \
             Settings → Organization → Data controls → Audit logging (it cannot be turned off again)"
        );
    }
    match err.kind {
        ApiErrorKind::Unauthorized => format!(
            "{said} — the admin key is invalid, expired or revoked: create a new one under \
             Settings → Organization → Admin keys and set OPENAI_ADMIN_KEY (or openai.admin_key_file)"
        ),
        ApiErrorKind::Forbidden => format!(
            "{said} — the key is not an Organization Owner's admin key or lacks permission \
             (api.management.read / audit log read): use an admin key (sk-admin-…) created by an Owner"
        ),
        ApiErrorKind::NotFound => format!("{said} — the endpoint was not found: check openai.base_url"),
        ApiErrorKind::Unavailable => {
            format!("{said} — the Admin API could not be reached: check the network, proxy and openai.base_url")
        }
        ApiErrorKind::Redirected => format!("{said} — check openai.base_url"),
        ApiErrorKind::Malformed | ApiErrorKind::Rejected | ApiErrorKind::TooLarge => said,
    }
}

/// Lists one file of the first event type: proves the key, its scope and the principal.
async fn check_compliance(c: &ComplianceSettings, retry: RetrySettings) -> Finding {
    let what = format!(
        "compliance logs ({})",
        crate::compliance::platform::scope_path(&c.api.principal_id)
    );
    let client = match ComplianceApi::new(&c.api, retry, Metrics::new()) {
        Ok(client) => client.with_attempts(2),
        Err(e) => return Finding::failed(what, e.to_string()),
    };
    let Some(event_type) = c.streams.event_types.first() else {
        return Finding::failed(what, "compliance.event_types is empty");
    };
    let after = (chrono::Utc::now() - chrono::Duration::days(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    match client.list(event_type, &after, 1).await {
        Ok(_) => Finding::ok(what, format!("the compliance key can list {event_type} files")),
        Err(err) => Finding::failed(what, compliance_action(&err)),
    }
}

/// What the operator should do about a Compliance platform failure.
pub fn compliance_action(err: &ApiError) -> String {
    let said = err.summary();
    match err.kind {
        ApiErrorKind::Unauthorized => format!(
            "{said} — the compliance key is invalid, expired or revoked: set a valid key in \
             OPENAI_COMPLIANCE_API_KEY (or compliance.api_key_file)"
        ),
        ApiErrorKind::Forbidden => format!(
            "{said} — the key lacks the compliance logs scope or is not authorized for this \
             workspace: grant it Compliance Logs Platform read access for compliance.principal_id"
        ),
        ApiErrorKind::NotFound => format!(
            "{said} — no such workspace or organization, or its plan lacks the Compliance API: \
             check compliance.principal_id (workspace UUID, or org-… for organization scope)"
        ),
        ApiErrorKind::Unavailable => format!(
            "{said} — the Compliance API could not be reached: check the network, proxy and compliance.base_url"
        ),
        ApiErrorKind::Redirected => format!("{said} — check compliance.base_url"),
        ApiErrorKind::Malformed | ApiErrorKind::Rejected | ApiErrorKind::TooLarge => said,
    }
}

/// The rule file was compiled when the configuration loaded (a bad one stops there, exit 2,
/// naming the rule and field); report what is active.
fn check_guardrails(settings: &Settings) -> Finding {
    let g = &settings.guardrails;
    if !g.enabled {
        return Finding::ok("guardrails", "disabled (guardrails.enabled = false)");
    }
    let source = match &g.rules_file {
        Some(path) => format!("built-in pack and {}", path.display()),
        None => "built-in pack".to_string(),
    };
    let mut detail = format!("{} rules active from the {source}", g.rules.rules.len());
    for (rule, why) in &g.rules.inactive {
        detail.push_str(&format!("; `{rule}` inactive ({why})"));
    }
    Finding::ok("guardrails", detail)
}

async fn check_sink(settings: &Settings) -> Finding {
    let url = &settings.sink.url;
    let what = format!(
        "sink {} ({})",
        crate::secrets::redact_url(url),
        settings.sink.protocol.as_str()
    );
    let Some(host) = url.host_str() else {
        return Finding::failed(what, "the URL has no host");
    };
    let port = url.port_or_known_default().unwrap_or(443);
    match tokio::time::timeout(Duration::from_secs(10), tokio::net::lookup_host((host, port))).await {
        Ok(Ok(mut addrs)) => {
            if addrs.next().is_none() {
                return Finding::failed(what, format!("`{host}` resolves to no address"));
            }
        }
        Ok(Err(e)) => return Finding::failed(what, format!("`{host}` does not resolve: {e}")),
        Err(_) => return Finding::failed(what, format!("resolving `{host}` timed out")),
    }
    match crate::sink::probe::probe(&settings.sink).await {
        Ok(detail) => Finding::ok(what, detail),
        Err(action) => Finding::failed(what, action),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::api::ApiErrorDetail;

    fn error(kind: ApiErrorKind, status: u16, message: &str) -> ApiError {
        ApiError::from(ApiErrorDetail::for_tests(kind, status, message))
    }

    #[test]
    fn each_admin_failure_names_the_operator_action() {
        let invalid = admin_action(&error(ApiErrorKind::Unauthorized, 401, "Incorrect API key provided"));
        assert!(
            invalid.contains("Admin keys") && invalid.contains("OPENAI_ADMIN_KEY"),
            "{invalid}"
        );
        let forbidden = admin_action(&error(ApiErrorKind::Forbidden, 403, "Missing scopes"));
        assert!(forbidden.contains("Owner"), "{forbidden}");
        let off = admin_action(&error(
            ApiErrorKind::Rejected,
            400,
            "Audit logging is not enabled for this organization.",
        ));
        assert!(off.contains("Data controls") && off.contains("Audit logging"), "{off}");
    }
}
