//! Validation: the raw sections → each component's own settings type, every problem named by
//! its dotted key. Enumerated keys are parsed with the component enum's own string form, so
//! the accepted words are written once, on the enum.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use super::raw::{Raw, RawAuditLogs, RawCompliance, RawGuardrails, RawOpenAi};
use super::{ComplianceSettings, ConfigError, Requirements, Settings, ShutdownSettings};
use crate::compliance::platform::ComplianceApiSettings;
use crate::guardrails::{GuardrailSettings, Inputs, RuleSet, RuleSetError};
use crate::openai::admin::OpenAiSettings;
use crate::retry::RetrySettings;
use crate::secrets::Rotating;
use crate::server::ServerSettings;
use crate::state::StateSettings;
use crate::streams::audit_logs::AuditLogSettings;
use crate::streams::compliance::ComplianceStreamSettings;
use crate::streams::inventory::InventorySettings;
use crate::telemetry::LogSettings;

pub(super) fn validate(raw: Raw, env: &HashMap<String, String>, needs: Requirements) -> Result<Settings, ConfigError> {
    let audit_logs = audit_logs(raw.audit_logs)?;
    let inventory = InventorySettings {
        enabled: raw.inventory.enabled,
        interval: positive("inventory.interval", raw.inventory.interval)?,
        full_interval: raw.inventory.full_interval,
        stale_key_days: raw.inventory.stale_key_days,
        budget_share: share("inventory.budget_share", raw.inventory.budget_share)?,
    };
    // With `[[orgs]]`, the blocks hold the credentials; the sections only their defaults.
    let multi = !raw.orgs.is_empty();
    let section_needs = if multi { Requirements::None } else { needs };
    let needs_admin = section_needs == Requirements::Pipeline && (audit_logs.enabled || inventory.enabled);
    let (insecure_openai, insecure_compliance) = (raw.openai.allow_insecure_http, raw.compliance.allow_insecure_http);
    let openai = openai(raw.openai, env, needs_admin)?;
    let compliance = compliance(raw.compliance, &openai, env, section_needs)?;
    let orgs = super::orgs::orgs(
        raw.orgs,
        &super::orgs::Sections {
            openai: &openai,
            audit_logs: &audit_logs,
            inventory: &inventory,
            compliance: &compliance,
            insecure_openai,
            insecure_compliance,
        },
        needs,
    )?;
    let sink = super::sink::sink(raw.sink, needs)?;
    let retry = RetrySettings {
        initial_backoff: positive("retry.initial_backoff", raw.retry.initial_backoff)?,
        max_backoff: positive("retry.max_backoff", raw.retry.max_backoff)?,
    };
    if retry.max_backoff < retry.initial_backoff {
        return Err(ConfigError::new(
            "retry.max_backoff",
            "must not be shorter than retry.initial_backoff",
        ));
    }
    if raw.state.dir.as_os_str().is_empty() {
        return Err(ConfigError::new("state.dir", "must not be empty"));
    }
    let log = LogSettings {
        format: one_of("log.format", &raw.log.format)?,
        level: crate::telemetry::check_level(&raw.log.level)
            .map_err(|problem| ConfigError::new("log.level", problem))?,
        progress_interval: positive("log.progress_interval", raw.log.progress_interval)?,
    };
    let server = ServerSettings {
        listen: match raw.server.listen.trim() {
            "" => None,
            addr => Some(addr.parse().map_err(|_| {
                ConfigError::new(
                    "server.listen",
                    format!("`{addr}` is not a socket address like 127.0.0.1:9464 (\"\" disables)"),
                )
            })?),
        },
    };
    Ok(Settings {
        openai,
        audit_logs,
        inventory,
        compliance,
        sink,
        retry,
        state: StateSettings { dir: raw.state.dir },
        log,
        server,
        shutdown: ShutdownSettings {
            timeout: positive("shutdown.timeout", raw.shutdown.timeout)?,
        },
        guardrails: guardrails(raw.guardrails)?,
        orgs,
    })
}

fn guardrails(raw: RawGuardrails) -> Result<GuardrailSettings, ConfigError> {
    let rules_file = non_empty(raw.rules_file).map(PathBuf::from);
    let custom_patterns: Vec<(String, String)> = raw.custom_patterns.into_iter().collect();
    let disabled_rules: Vec<String> = raw.disabled_rules.iter().map(|s| s.trim().to_string()).collect();
    let rules = RuleSet::build(&Inputs {
        rules_file: rules_file.as_deref(),
        disabled_rules: &disabled_rules,
        key_admins: &raw.key_admins,
        custom_patterns: &custom_patterns,
    })
    .map_err(|e| match e {
        RuleSetError::Rule(e) => ConfigError::new("guardrails.rules_file", e.to_string()),
        RuleSetError::Input { key, problem } => ConfigError::new(key, problem),
    })?;
    let max_state_bytes = usize::try_from(raw.max_state_bytes).unwrap_or(usize::MAX);
    if max_state_bytes == 0 {
        return Err(ConfigError::new(
            "guardrails.max_state_bytes",
            "must be more than 0 (the rule state of threshold, sequence, first-seen and velocity rules needs room)",
        ));
    }
    Ok(GuardrailSettings {
        enabled: raw.enabled,
        max_state_bytes,
        rules_file,
        disabled_rules,
        key_admins: raw.key_admins,
        custom_patterns,
        rules: Arc::new(rules),
    })
}

fn openai(raw: RawOpenAi, env: &HashMap<String, String>, needs_key: bool) -> Result<OpenAiSettings, ConfigError> {
    let admin_key = secret(
        "openai.admin_key",
        raw.admin_key,
        raw.admin_key_file,
        env.get("OPENAI_ADMIN_KEY"),
    )?;
    if needs_key && admin_key.is_none() {
        return Err(ConfigError::new(
            "openai.admin_key",
            "is required while audit_logs or inventory is enabled: set OPENAI_ADMIN_KEY, \
             openai.admin_key_file or OAI_INGEST__OPENAI__ADMIN_KEY to an Owner's admin key (sk-admin-…)",
        ));
    }
    if raw.max_response_bytes < MIN_RESPONSE_BYTES {
        return Err(ConfigError::new(
            "openai.max_response_bytes",
            "must be at least 1MiB (a page of 100 records can approach that)",
        ));
    }
    Ok(OpenAiSettings {
        admin_key,
        base_url: upstream_root("openai", &raw.base_url, raw.allow_insecure_http)?,
        organization_id: non_empty(raw.organization_id),
        requests_per_minute: at_least_one("openai.requests_per_minute", raw.requests_per_minute)?,
        timeout: positive("openai.timeout", raw.timeout)?,
        max_response_bytes: raw.max_response_bytes,
        tls: super::tls::tls("openai", &raw.ca_file, None)?,
    })
}

/// The most slices of a backfill paged at once: each holds a page in memory.
const MAX_BACKFILL_CONCURRENCY: u32 = 64;

fn audit_logs(raw: RawAuditLogs) -> Result<AuditLogSettings, ConfigError> {
    if !(1..=100).contains(&raw.page_size) {
        return Err(ConfigError::new(
            "audit_logs.page_size",
            format!("must be between 1 and 100 (the API's limit), got {}", raw.page_size),
        ));
    }
    if !(1..=MAX_BACKFILL_CONCURRENCY).contains(&raw.backfill_concurrency) {
        return Err(ConfigError::new(
            "audit_logs.backfill_concurrency",
            format!(
                "must be between 1 (page a backfill as one window) and {MAX_BACKFILL_CONCURRENCY}, got {}",
                raw.backfill_concurrency
            ),
        ));
    }
    Ok(AuditLogSettings {
        enabled: raw.enabled,
        poll_interval: positive("audit_logs.poll_interval", raw.poll_interval)?,
        initial_lookback: positive("audit_logs.initial_lookback", raw.initial_lookback)?,
        overlap: raw.overlap,
        tenant_events: raw.tenant_events,
        page_size: u8::try_from(raw.page_size).unwrap_or(100),
        backfill_concurrency: usize::try_from(raw.backfill_concurrency).unwrap_or(1),
    })
}

fn compliance(
    raw: RawCompliance,
    openai: &OpenAiSettings,
    env: &HashMap<String, String>,
    needs: Requirements,
) -> Result<ComplianceSettings, ConfigError> {
    let api_key = secret(
        "compliance.api_key",
        raw.api_key,
        raw.api_key_file,
        env.get("OPENAI_COMPLIANCE_API_KEY"),
    )?;
    let principal_id = raw.principal_id.trim().to_string();
    if raw.enabled && needs == Requirements::Pipeline {
        if api_key.is_none() {
            return Err(ConfigError::new(
                "compliance.api_key",
                "is required while compliance is enabled: set OPENAI_COMPLIANCE_API_KEY, \
                 compliance.api_key_file or OAI_INGEST__COMPLIANCE__API_KEY",
            ));
        }
        if principal_id.is_empty() {
            return Err(ConfigError::new(
                "compliance.principal_id",
                "is required while compliance is enabled: the ChatGPT workspace UUID, or org-… for organization scope",
            ));
        }
    }
    if principal_id.contains('/') || principal_id.contains('?') {
        return Err(ConfigError::new(
            "compliance.principal_id",
            "must be a workspace UUID or an org-… id",
        ));
    }
    let mut event_types = Vec::new();
    for t in raw.event_types {
        let t = t.trim().to_string();
        if t.is_empty()
            || !t
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(ConfigError::new(
                "compliance.event_types",
                format!("`{t}` is not an event type like AUTH_LOG"),
            ));
        }
        if !event_types.contains(&t) {
            event_types.push(t);
        }
    }
    if raw.enabled && event_types.is_empty() {
        return Err(ConfigError::new(
            "compliance.event_types",
            "must name at least one event type",
        ));
    }
    Ok(ComplianceSettings {
        enabled: raw.enabled,
        api: ComplianceApiSettings {
            api_key,
            base_url: upstream_root("compliance", &raw.base_url, raw.allow_insecure_http)?,
            principal_id,
            requests_per_minute: at_least_one("compliance.requests_per_minute", raw.requests_per_minute)?,
            timeout: openai.timeout,
            max_response_bytes: openai.max_response_bytes,
            tls: super::tls::tls("compliance", &raw.ca_file, None)?,
        },
        streams: ComplianceStreamSettings {
            event_types,
            poll_interval: positive("compliance.poll_interval", raw.poll_interval)?,
            initial_lookback: positive("compliance.initial_lookback", raw.initial_lookback)?,
            content: one_of("compliance.content", &raw.content)?,
            download_timeout: positive("compliance.download_timeout", raw.download_timeout)?,
            missing_file_grace: raw.missing_file_grace,
        },
    })
}

/// A secret from its key, its `<key>_file`, or a conventional environment variable, in that
/// order. Setting both the key and the file is ambiguous and refused. Whatever is found is
/// registered for redaction (`crate::secrets`) before anything can print it; one read from a
/// file can be read again while the daemon runs.
pub(super) fn secret(
    key: &str,
    inline: String,
    file: String,
    conventional: Option<&String>,
) -> Result<Option<Rotating>, ConfigError> {
    let inline = inline.trim().to_string();
    let file = file.trim().to_string();
    match (inline.is_empty(), file.is_empty()) {
        (false, false) => Err(ConfigError::new(
            key,
            format!("set either {key} or {key}_file, not both"),
        )),
        (false, true) => Ok(Some(Rotating::fixed(key, SecretString::from(inline)))),
        (true, false) => {
            let path = PathBuf::from(&file);
            let value =
                crate::secrets::read_file(&path).map_err(|problem| ConfigError::new(format!("{key}_file"), problem))?;
            Ok(Some(Rotating::from_file(key, path, value)))
        }
        (true, true) => Ok(conventional
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(|v| Rotating::fixed(key, SecretString::from(v.to_string())))),
    }
}

/// The smallest `openai.max_response_bytes` accepted.
const MIN_RESPONSE_BYTES: u64 = 1024 * 1024;

/// `<section>.base_url` as an API root, over https — or plain http to a loopback host, or
/// anywhere when `<section>.allow_insecure_http` says so (the key would travel in clear).
pub(super) fn upstream_root(section: &str, text: &str, allow_insecure_http: bool) -> Result<Url, ConfigError> {
    upstream_root_at(
        &format!("{section}.base_url"),
        &format!("{section}.allow_insecure_http"),
        text,
        allow_insecure_http,
    )
}

/// [`upstream_root`] for the key `key`, whose plain http is allowed by `allow_key`.
pub(super) fn upstream_root_at(
    key: &str,
    allow_key: &str,
    text: &str,
    allow_insecure_http: bool,
) -> Result<Url, ConfigError> {
    let url = api_root(key, text)?;
    if url.scheme() == "http" && !allow_insecure_http && !is_loopback(&url) {
        return Err(ConfigError::new(
            key,
            format!(
                "plain http:// is only allowed to a loopback host (the key would travel unencrypted); \
                 use https:// or set {allow_key} = true"
            ),
        ));
    }
    Ok(url)
}

/// Accepts `https://api.openai.com` or `https://api.openai.com/v1` (or a proxy path) and
/// returns the root that paths like `organization/audit_logs` are joined to.
pub(super) fn api_root(key: &str, text: &str) -> Result<Url, ConfigError> {
    let mut url = Url::parse(text.trim()).map_err(|e| ConfigError::new(key, format!("`{text}` is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConfigError::new(key, "must be an http(s) URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::new(key, "must not carry a query or fragment"));
    }
    let mut path = url.path().trim_end_matches('/').to_string();
    if !path.ends_with("/v1") {
        path.push_str("/v1");
    }
    path.push('/');
    url.set_path(&path);
    Ok(url)
}

pub(super) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

pub(super) fn positive(key: &str, d: Duration) -> Result<Duration, ConfigError> {
    if d.is_zero() {
        Err(ConfigError::new(key, "must be longer than zero"))
    } else {
        Ok(d)
    }
}

/// A fraction of a budget: more than 0, at most 1.
fn share(key: &str, f: f64) -> Result<f64, ConfigError> {
    if f > 0.0 && f <= 1.0 {
        Ok(f)
    } else {
        Err(ConfigError::new(
            key,
            format!("`{f}` is not a share of the request budget: give a fraction above 0 and at most 1 (0.5 is half)"),
        ))
    }
}

pub(super) fn at_least_one(key: &str, n: u32) -> Result<NonZeroU32, ConfigError> {
    NonZeroU32::new(n).ok_or_else(|| ConfigError::new(key, "must be at least 1"))
}

/// One of an enumerated key's words, as the enum itself spells them.
pub(super) fn one_of<T: FromStr + strum::VariantNames>(key: &str, got: &str) -> Result<T, ConfigError> {
    T::from_str(got.trim())
        .map_err(|_| ConfigError::new(key, format!("`{got}` is not one of {}", T::VARIANTS.join(", "))))
}

fn non_empty(s: String) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}
