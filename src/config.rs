//! Configuration: embedded defaults → optional TOML file → environment, validated once into
//! [`Settings`], a ready struct whose fields cannot hold a wrong value.
//!
//! Validation names the key and the problem; `main` turns a [`ConfigError`] into exit code 2.

mod de;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

/// The embedded defaults, also shipped as `config/default.toml` for reference.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// Prefix of the environment variables that override keys (`OAI_INGEST__SINK__URL`).
pub const ENV_PREFIX: &str = "OAI_INGEST";

/// A configuration problem, always naming the key it concerns.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: `{key}`: {problem}")]
pub struct ConfigError {
    /// Dotted key (`sink.url`) or the file that could not be read.
    pub key: String,
    /// What is wrong and, where it helps, how to fix it.
    pub problem: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            problem: problem.into(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Raw form: exactly the TOML keys, deserialized by the `config` crate.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    openai: RawOpenAi,
    audit_logs: RawAuditLogs,
    inventory: RawInventory,
    compliance: RawCompliance,
    sink: RawSink,
    retry: RawRetry,
    state: RawState,
    log: RawLog,
    server: RawServer,
    shutdown: RawShutdown,
    guardrails: RawGuardrails,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOpenAi {
    admin_key: String,
    admin_key_file: String,
    base_url: String,
    organization_id: String,
    requests_per_minute: u32,
    #[serde(deserialize_with = "de::duration")]
    timeout: Duration,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuditLogs {
    #[serde(deserialize_with = "de::boolean")]
    enabled: bool,
    #[serde(deserialize_with = "de::duration")]
    poll_interval: Duration,
    #[serde(deserialize_with = "de::duration")]
    initial_lookback: Duration,
    #[serde(deserialize_with = "de::duration")]
    overlap: Duration,
    #[serde(deserialize_with = "de::boolean")]
    tenant_events: bool,
    page_size: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInventory {
    #[serde(deserialize_with = "de::boolean")]
    enabled: bool,
    #[serde(deserialize_with = "de::duration")]
    interval: Duration,
    stale_key_days: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCompliance {
    #[serde(deserialize_with = "de::boolean")]
    enabled: bool,
    api_key: String,
    api_key_file: String,
    base_url: String,
    principal_id: String,
    #[serde(deserialize_with = "de::string_list")]
    event_types: Vec<String>,
    #[serde(deserialize_with = "de::duration")]
    poll_interval: Duration,
    #[serde(deserialize_with = "de::duration")]
    initial_lookback: Duration,
    requests_per_minute: u32,
    content: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSink {
    url: String,
    format: String,
    auth_token: String,
    auth_token_file: String,
    headers: BTreeMap<String, String>,
    compression: String,
    max_batch_events: u32,
    #[serde(deserialize_with = "de::size")]
    max_batch_bytes: u64,
    #[serde(deserialize_with = "de::duration")]
    flush_interval: Duration,
    #[serde(deserialize_with = "de::duration")]
    timeout: Duration,
    #[serde(deserialize_with = "de::boolean")]
    allow_insecure_http: bool,
    #[serde(deserialize_with = "de::size")]
    max_queue_bytes: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetry {
    #[serde(deserialize_with = "de::duration")]
    initial_backoff: Duration,
    #[serde(deserialize_with = "de::duration")]
    max_backoff: Duration,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawState {
    dir: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    format: String,
    level: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShutdown {
    #[serde(deserialize_with = "de::duration")]
    timeout: Duration,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGuardrails {
    #[serde(deserialize_with = "de::boolean")]
    enabled: bool,
    rules_file: String,
    #[serde(deserialize_with = "de::string_list")]
    disabled_rules: Vec<String>,
    #[serde(deserialize_with = "de::string_list")]
    key_admins: Vec<String>,
    custom_patterns: BTreeMap<String, String>,
}

// ---------------------------------------------------------------------------------------------
// Validated form.
// ---------------------------------------------------------------------------------------------

/// The whole validated configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub openai: OpenAiSettings,
    pub audit_logs: AuditLogSettings,
    pub inventory: InventorySettings,
    pub compliance: ComplianceSettings,
    pub sink: SinkSettings,
    pub retry: RetrySettings,
    pub state: StateSettings,
    pub log: LogSettings,
    pub server: ServerSettings,
    pub shutdown: ShutdownSettings,
    pub guardrails: GuardrailSettings,
}

/// How to reach the OpenAI Admin API.
#[derive(Debug, Clone)]
pub struct OpenAiSettings {
    /// The admin key; `None` only when no stream that needs it is enabled.
    pub admin_key: Option<SecretString>,
    /// API root including `/v1` (the config takes the host form `https://api.openai.com`).
    pub base_url: Url,
    /// Labels every event and makes ids unique across organizations.
    pub organization_id: Option<String>,
    /// One budget shared by every Admin API call.
    pub requests_per_minute: NonZeroU32,
    /// Per-request timeout.
    pub timeout: Duration,
}

/// The two audit-log streams.
#[derive(Debug, Clone)]
pub struct AuditLogSettings {
    pub enabled: bool,
    pub poll_interval: Duration,
    /// How far back the first start reads.
    pub initial_lookback: Duration,
    /// Re-read window for late-arriving events; repeats are dropped by id.
    pub overlap: Duration,
    /// Run the second, `tenant_only=true` pass.
    pub tenant_events: bool,
    /// `limit` per page, 1..=100.
    pub page_size: u8,
}

/// The organization inventory stream.
#[derive(Debug, Clone)]
pub struct InventorySettings {
    pub enabled: bool,
    pub interval: Duration,
    /// A key unused for longer than this is reported as stale.
    pub stale_key_days: u32,
}

/// What to do with message and tool-call text from the Compliance Logs Platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentMode {
    Keep,
    Hash,
    Drop,
}

/// The ChatGPT Compliance Logs Platform streams.
#[derive(Debug, Clone)]
pub struct ComplianceSettings {
    pub enabled: bool,
    pub api_key: Option<SecretString>,
    /// API root including `/v1`.
    pub base_url: Url,
    /// Workspace UUID or `org-…` id; decides the `/workspaces/` or `/organizations/` path.
    pub principal_id: String,
    /// One stream per event type.
    pub event_types: Vec<String>,
    pub poll_interval: Duration,
    pub initial_lookback: Duration,
    /// Budget per method and route, as the platform counts it.
    pub requests_per_minute: NonZeroU32,
    pub content: ContentMode,
}

/// Body encoding of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkFormat {
    /// One JSON event per line, `application/x-ndjson`.
    Ndjson,
    /// One JSON array, `application/json`.
    Json,
}

/// Request body compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    None,
}

/// The ingestion service and how batches are cut.
#[derive(Debug, Clone)]
pub struct SinkSettings {
    pub url: Url,
    pub format: SinkFormat,
    pub auth_token: Option<SecretString>,
    /// Extra headers sent with every batch.
    pub headers: HeaderMap,
    pub compression: Compression,
    pub max_batch_events: NonZeroUsize,
    /// Encoded size bound, before compression.
    pub max_batch_bytes: usize,
    pub flush_interval: Duration,
    pub timeout: Duration,
    /// Bytes of encoded events waiting for the sink before pollers are held back.
    pub max_queue_bytes: usize,
}

/// Shared retry schedule (exponential, full jitter, capped).
#[derive(Debug, Clone, Copy)]
pub struct RetrySettings {
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

/// Where checkpoints, snapshots and the dead-letter file live.
#[derive(Debug, Clone)]
pub struct StateSettings {
    pub dir: PathBuf,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// Logging.
#[derive(Debug, Clone)]
pub struct LogSettings {
    pub format: LogFormat,
    /// An `EnvFilter` directive; `RUST_LOG` wins when set.
    pub level: String,
}

/// The health and metrics endpoint.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// `None` disables the server.
    pub listen: Option<SocketAddr>,
}

/// Graceful stop.
#[derive(Debug, Clone, Copy)]
pub struct ShutdownSettings {
    /// How long a stop may spend flushing before it gives up (checkpoints stay safe).
    pub timeout: Duration,
}

/// The guardrails rule engine.
#[derive(Debug, Clone)]
pub struct GuardrailSettings {
    pub enabled: bool,
    /// Operator rules, added to (or replacing by id) the built-in pack.
    pub rules_file: Option<PathBuf>,
    pub disabled_rules: Vec<String>,
    /// Emails or user ids allowed to create API and admin keys.
    pub key_admins: Vec<String>,
    /// Operator content detectors: (name, regex).
    pub custom_patterns: Vec<(String, String)>,
    /// The rules compiled from the keys above at load time, so a bad rule stops start-up.
    pub rules: std::sync::Arc<crate::guardrails::RuleSet>,
}

/// Which credentials a command needs; `config` prints whatever is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirements {
    /// `run`, `once`, `check`: enabled streams need their keys and the sink needs a URL.
    Pipeline,
    /// `config`: only well-formedness.
    None,
}

/// Loads the configuration from the embedded defaults, `file` (if any) and `env`
/// (the process environment, passed in so tests need no global state).
pub fn load(file: Option<&Path>, env: &HashMap<String, String>, needs: Requirements) -> Result<Settings, ConfigError> {
    let raw = read_raw(file, env)?;
    validate(raw, env, needs)
}

fn read_raw(file: Option<&Path>, env: &HashMap<String, String>) -> Result<Raw, ConfigError> {
    use config::{Config, Environment, File, FileFormat};

    let mut builder = Config::builder().add_source(File::from_str(DEFAULT_TOML, FileFormat::Toml));
    if let Some(path) = file {
        if !path.is_file() {
            return Err(ConfigError::new(
                path.display().to_string(),
                "the config file does not exist or is not a file",
            ));
        }
        builder = builder.add_source(File::from(path).format(FileFormat::Toml));
    }
    let prefixed: HashMap<String, String> = env
        .iter()
        .filter(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}__")))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    builder = builder.add_source(
        Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("__")
            .separator("__")
            .source(Some(prefixed)),
    );
    let built = builder.build().map_err(from_config_error)?;
    built.try_deserialize::<Raw>().map_err(from_config_error)
}

/// The `config` crate names the key inside its message; keep that, and pull the key out
/// where it is recognisable so the error reads the same as our own.
fn from_config_error(err: config::ConfigError) -> ConfigError {
    let text = err.to_string();
    if let Some(start) = text.find("for key `") {
        let rest = &text[start + "for key `".len()..];
        if let Some(end) = rest.find('`') {
            let mut key = rest[..end].to_string();
            let problem = text[..start].trim().trim_end_matches(',').to_string();
            // "unknown field `x`" under key `sink` is the key `sink.x`.
            if let Some(field) = problem
                .strip_prefix("unknown field `")
                .and_then(|r| r.split('`').next())
            {
                key = format!("{key}.{field}");
            }
            return ConfigError::new(key, problem);
        }
    }
    if let Some(field) = text.strip_prefix("unknown field `").and_then(|r| r.split('`').next()) {
        return ConfigError::new(field, format!("unknown key ({text})"));
    }
    ConfigError::new("config", text)
}

fn validate(raw: Raw, env: &HashMap<String, String>, needs: Requirements) -> Result<Settings, ConfigError> {
    let audit_logs = validate_audit_logs(raw.audit_logs)?;
    let inventory = InventorySettings {
        enabled: raw.inventory.enabled,
        interval: positive("inventory.interval", raw.inventory.interval)?,
        stale_key_days: raw.inventory.stale_key_days,
    };
    let needs_admin = needs == Requirements::Pipeline && (audit_logs.enabled || inventory.enabled);
    let openai = validate_openai(raw.openai, env, needs_admin)?;
    let compliance = validate_compliance(raw.compliance, env, needs)?;
    let sink = validate_sink(raw.sink, env, needs)?;
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
        format: match raw.log.format.as_str() {
            "json" => LogFormat::Json,
            "pretty" => LogFormat::Pretty,
            other => return Err(one_of("log.format", other, &["json", "pretty"])),
        },
        level: raw.log.level,
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
    let guardrails = validate_guardrails(raw.guardrails)?;
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
        guardrails,
    })
}

fn validate_guardrails(raw: RawGuardrails) -> Result<GuardrailSettings, ConfigError> {
    use crate::guardrails::{BuildError, Inputs, RuleSet};
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
        BuildError::Rule(e) => ConfigError::new("guardrails.rules_file", e.to_string()),
        BuildError::Input { key, problem } => ConfigError::new(key, problem),
    })?;
    Ok(GuardrailSettings {
        enabled: raw.enabled,
        rules_file,
        disabled_rules,
        key_admins: raw.key_admins,
        custom_patterns,
        rules: std::sync::Arc::new(rules),
    })
}

fn validate_openai(
    raw: RawOpenAi,
    env: &HashMap<String, String>,
    needs_key: bool,
) -> Result<OpenAiSettings, ConfigError> {
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
    Ok(OpenAiSettings {
        admin_key,
        base_url: api_root("openai.base_url", &raw.base_url)?,
        organization_id: non_empty(raw.organization_id),
        requests_per_minute: NonZeroU32::new(raw.requests_per_minute)
            .ok_or_else(|| ConfigError::new("openai.requests_per_minute", "must be at least 1"))?,
        timeout: positive("openai.timeout", raw.timeout)?,
    })
}

fn validate_audit_logs(raw: RawAuditLogs) -> Result<AuditLogSettings, ConfigError> {
    if !(1..=100).contains(&raw.page_size) {
        return Err(ConfigError::new(
            "audit_logs.page_size",
            format!("must be between 1 and 100 (the API's limit), got {}", raw.page_size),
        ));
    }
    Ok(AuditLogSettings {
        enabled: raw.enabled,
        poll_interval: positive("audit_logs.poll_interval", raw.poll_interval)?,
        initial_lookback: positive("audit_logs.initial_lookback", raw.initial_lookback)?,
        overlap: raw.overlap,
        tenant_events: raw.tenant_events,
        page_size: u8::try_from(raw.page_size).unwrap_or(100),
    })
}

fn validate_compliance(
    raw: RawCompliance,
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
    let content = match raw.content.as_str() {
        "keep" => ContentMode::Keep,
        "hash" => ContentMode::Hash,
        "drop" => ContentMode::Drop,
        other => return Err(one_of("compliance.content", other, &["keep", "hash", "drop"])),
    };
    Ok(ComplianceSettings {
        enabled: raw.enabled,
        api_key,
        base_url: api_root("compliance.base_url", &raw.base_url)?,
        principal_id,
        event_types,
        poll_interval: positive("compliance.poll_interval", raw.poll_interval)?,
        initial_lookback: positive("compliance.initial_lookback", raw.initial_lookback)?,
        requests_per_minute: NonZeroU32::new(raw.requests_per_minute)
            .ok_or_else(|| ConfigError::new("compliance.requests_per_minute", "must be at least 1"))?,
        content,
    })
}

fn validate_sink(
    raw: RawSink,
    env: &HashMap<String, String>,
    needs: Requirements,
) -> Result<SinkSettings, ConfigError> {
    let url = match raw.url.trim() {
        "" if needs == Requirements::Pipeline => {
            return Err(ConfigError::new(
                "sink.url",
                "is required: the ingestion service endpoint (OAI_INGEST__SINK__URL)",
            ));
        }
        // `config` may print a configuration without a sink.
        "" => Url::parse("http://127.0.0.1/").map_err(|e| ConfigError::new("sink.url", e.to_string()))?,
        text => Url::parse(text).map_err(|e| ConfigError::new("sink.url", format!("`{text}` is not a URL: {e}")))?,
    };
    match url.scheme() {
        "https" => {}
        "http" if raw.allow_insecure_http || is_loopback(&url) => {}
        "http" => {
            return Err(ConfigError::new(
                "sink.url",
                "plain http:// is only allowed to a loopback host; use https:// or set \
                 sink.allow_insecure_http = true",
            ));
        }
        other => {
            return Err(ConfigError::new(
                "sink.url",
                format!("scheme `{other}` is not supported; use https://"),
            ));
        }
    }
    let format = match raw.format.as_str() {
        "ndjson" => SinkFormat::Ndjson,
        "json" => SinkFormat::Json,
        other => return Err(one_of("sink.format", other, &["ndjson", "json"])),
    };
    let compression = match raw.compression.as_str() {
        "gzip" => Compression::Gzip,
        "none" => Compression::None,
        other => return Err(one_of("sink.compression", other, &["gzip", "none"])),
    };
    let mut headers = HeaderMap::new();
    for (name, value) in raw.headers {
        let key = format!("sink.headers.{name}");
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| ConfigError::new(&key, "is not a valid header name"))?;
        if header == reqwest::header::AUTHORIZATION {
            return Err(ConfigError::new(
                &key,
                "use sink.auth_token for the Authorization header",
            ));
        }
        let mut value =
            HeaderValue::from_str(&value).map_err(|_| ConfigError::new(&key, "is not a valid header value"))?;
        value.set_sensitive(true);
        headers.insert(header, value);
    }
    let max_batch_bytes = usize::try_from(raw.max_batch_bytes).unwrap_or(usize::MAX);
    if max_batch_bytes < 1024 {
        return Err(ConfigError::new("sink.max_batch_bytes", "must be at least 1KiB"));
    }
    let max_queue_bytes = usize::try_from(raw.max_queue_bytes).unwrap_or(usize::MAX);
    if max_queue_bytes < max_batch_bytes {
        return Err(ConfigError::new(
            "sink.max_queue_bytes",
            "must be at least sink.max_batch_bytes",
        ));
    }
    let auth_token = secret("sink.auth_token", raw.auth_token, raw.auth_token_file, None)?;
    let _ = env;
    Ok(SinkSettings {
        url,
        format,
        auth_token,
        headers,
        compression,
        max_batch_events: usize::try_from(raw.max_batch_events)
            .ok()
            .and_then(NonZeroUsize::new)
            .ok_or_else(|| ConfigError::new("sink.max_batch_events", "must be at least 1"))?,
        max_batch_bytes,
        flush_interval: positive("sink.flush_interval", raw.flush_interval)?,
        timeout: positive("sink.timeout", raw.timeout)?,
        max_queue_bytes,
    })
}

/// A secret from its key, its `<key>_file`, or a conventional environment variable, in that
/// order. Setting both the key and the file is ambiguous and refused.
fn secret(
    key: &str,
    inline: String,
    file: String,
    conventional: Option<&String>,
) -> Result<Option<SecretString>, ConfigError> {
    let inline = inline.trim().to_string();
    let file = file.trim().to_string();
    match (inline.is_empty(), file.is_empty()) {
        (false, false) => Err(ConfigError::new(
            key,
            format!("set either {key} or {key}_file, not both"),
        )),
        (false, true) => Ok(Some(SecretString::from(inline))),
        (true, false) => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| ConfigError::new(format!("{key}_file"), format!("cannot read `{file}`: {e}")))?;
            let text = text.trim();
            if text.is_empty() {
                return Err(ConfigError::new(format!("{key}_file"), format!("`{file}` is empty")));
            }
            Ok(Some(SecretString::from(text.to_string())))
        }
        (true, true) => Ok(conventional
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(|v| SecretString::from(v.to_string()))),
    }
}

/// Accepts `https://api.openai.com` or `https://api.openai.com/v1` (or a proxy path) and
/// returns the root that paths like `organization/audit_logs` are joined to.
fn api_root(key: &str, text: &str) -> Result<Url, ConfigError> {
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

/// [`api_root`] for a URL that is already valid (the simulator's, in `demo` and tests).
pub fn api_root_url(url: Url) -> Url {
    let text = url.to_string();
    api_root("base_url", &text).unwrap_or(url)
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn positive(key: &str, d: Duration) -> Result<Duration, ConfigError> {
    if d.is_zero() {
        Err(ConfigError::new(key, "must be longer than zero"))
    } else {
        Ok(d)
    }
}

fn one_of(key: &str, got: &str, allowed: &[&str]) -> ConfigError {
    ConfigError::new(key, format!("`{got}` is not one of {}", allowed.join(", ")))
}

fn non_empty(s: String) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// The effective configuration as TOML-like text with every secret redacted, for `config`.
pub fn render_redacted(s: &Settings) -> String {
    fn secret(v: &Option<SecretString>) -> &'static str {
        match v {
            Some(v) if !v.expose_secret().is_empty() => "\"[redacted]\"",
            _ => "\"\"",
        }
    }
    fn dur(d: Duration) -> String {
        format!("\"{}\"", humantime::format_duration(d))
    }
    let list = |v: &[String]| {
        let items: Vec<String> = v.iter().map(|t| format!("\"{t}\"")).collect();
        format!("[{}]", items.join(", "))
    };
    let headers: Vec<String> = s
        .sink
        .headers
        .keys()
        .map(|k| format!("\"{}\" = \"[redacted]\"", k.as_str()))
        .collect();
    let lines = [
        "[openai]".to_string(),
        format!("admin_key = {}", secret(&s.openai.admin_key)),
        format!("base_url = \"{}\"", s.openai.base_url),
        format!(
            "organization_id = \"{}\"",
            s.openai.organization_id.as_deref().unwrap_or("")
        ),
        format!("requests_per_minute = {}", s.openai.requests_per_minute),
        format!("timeout = {}", dur(s.openai.timeout)),
        String::new(),
        "[audit_logs]".to_string(),
        format!("enabled = {}", s.audit_logs.enabled),
        format!("poll_interval = {}", dur(s.audit_logs.poll_interval)),
        format!("initial_lookback = {}", dur(s.audit_logs.initial_lookback)),
        format!("overlap = {}", dur(s.audit_logs.overlap)),
        format!("tenant_events = {}", s.audit_logs.tenant_events),
        format!("page_size = {}", s.audit_logs.page_size),
        String::new(),
        "[inventory]".to_string(),
        format!("enabled = {}", s.inventory.enabled),
        format!("interval = {}", dur(s.inventory.interval)),
        format!("stale_key_days = {}", s.inventory.stale_key_days),
        String::new(),
        "[compliance]".to_string(),
        format!("enabled = {}", s.compliance.enabled),
        format!("api_key = {}", secret(&s.compliance.api_key)),
        format!("base_url = \"{}\"", s.compliance.base_url),
        format!("principal_id = \"{}\"", s.compliance.principal_id),
        format!("event_types = {}", list(&s.compliance.event_types)),
        format!("poll_interval = {}", dur(s.compliance.poll_interval)),
        format!("initial_lookback = {}", dur(s.compliance.initial_lookback)),
        format!("requests_per_minute = {}", s.compliance.requests_per_minute),
        format!(
            "content = \"{}\"",
            match s.compliance.content {
                ContentMode::Keep => "keep",
                ContentMode::Hash => "hash",
                ContentMode::Drop => "drop",
            }
        ),
        String::new(),
        "[sink]".to_string(),
        format!("url = \"{}\"", s.sink.url),
        format!(
            "format = \"{}\"",
            match s.sink.format {
                SinkFormat::Ndjson => "ndjson",
                SinkFormat::Json => "json",
            }
        ),
        format!("auth_token = {}", secret(&s.sink.auth_token)),
        format!("headers = {{ {} }}", headers.join(", ")),
        format!(
            "compression = \"{}\"",
            match s.sink.compression {
                Compression::Gzip => "gzip",
                Compression::None => "none",
            }
        ),
        format!("max_batch_events = {}", s.sink.max_batch_events),
        format!("max_batch_bytes = {}", s.sink.max_batch_bytes),
        format!("flush_interval = {}", dur(s.sink.flush_interval)),
        format!("timeout = {}", dur(s.sink.timeout)),
        format!("max_queue_bytes = {}", s.sink.max_queue_bytes),
        String::new(),
        "[retry]".to_string(),
        format!("initial_backoff = {}", dur(s.retry.initial_backoff)),
        format!("max_backoff = {}", dur(s.retry.max_backoff)),
        String::new(),
        "[state]".to_string(),
        format!("dir = \"{}\"", s.state.dir.display()),
        String::new(),
        "[log]".to_string(),
        format!(
            "format = \"{}\"",
            match s.log.format {
                LogFormat::Json => "json",
                LogFormat::Pretty => "pretty",
            }
        ),
        format!("level = \"{}\"", s.log.level),
        String::new(),
        "[server]".to_string(),
        format!(
            "listen = \"{}\"",
            s.server.listen.map(|a| a.to_string()).unwrap_or_default()
        ),
        String::new(),
        "[shutdown]".to_string(),
        format!("timeout = {}", dur(s.shutdown.timeout)),
        String::new(),
        "[guardrails]".to_string(),
        format!("enabled = {}", s.guardrails.enabled),
        format!(
            "rules_file = \"{}\"",
            s.guardrails
                .rules_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        ),
        format!("disabled_rules = {}", list(&s.guardrails.disabled_rules)),
        format!("key_admins = {}", list(&s.guardrails.key_admins)),
        format!(
            "custom_patterns = {{ {} }}",
            s.guardrails
                .custom_patterns
                .iter()
                .map(|(k, v)| format!("\"{k}\" = {v:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ];
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![
            ("OPENAI_ADMIN_KEY", "sk-admin-test"),
            ("OAI_INGEST__SINK__URL", "https://ingest.example.com/events"),
        ]
    }

    #[test]
    fn embedded_defaults_plus_env_make_a_valid_configuration() {
        let s = load(None, &env(&base()), Requirements::Pipeline).expect("valid");
        assert_eq!(s.openai.base_url.as_str(), "https://api.openai.com/v1/");
        assert_eq!(s.audit_logs.page_size, 100);
        assert_eq!(s.audit_logs.overlap, Duration::from_secs(300));
        assert_eq!(s.sink.max_batch_bytes, 1024 * 1024);
        assert_eq!(s.compliance.event_types.len(), 8);
        assert!(s.openai.admin_key.is_some());
    }

    #[test]
    fn env_overrides_nested_keys_and_lists_accept_commas() {
        let mut pairs = base();
        pairs.push(("OAI_INGEST__COMPLIANCE__EVENT_TYPES", "AUTH_LOG, APP_LOG"));
        pairs.push(("OAI_INGEST__AUDIT_LOGS__PAGE_SIZE", "25"));
        pairs.push(("OAI_INGEST__AUDIT_LOGS__OVERLAP", "90s"));
        pairs.push(("OAI_INGEST__AUDIT_LOGS__TENANT_EVENTS", "false"));
        let s = load(None, &env(&pairs), Requirements::Pipeline).expect("valid");
        assert_eq!(s.compliance.event_types, vec!["AUTH_LOG", "APP_LOG"]);
        assert_eq!(s.audit_logs.page_size, 25);
        assert_eq!(s.audit_logs.overlap, Duration::from_secs(90));
        assert!(!s.audit_logs.tenant_events);
    }

    #[test]
    fn a_missing_sink_url_names_the_key() {
        let err = load(None, &env(&[("OPENAI_ADMIN_KEY", "k")]), Requirements::Pipeline).expect_err("no sink url");
        assert_eq!(err.key, "sink.url");
    }

    #[test]
    fn a_bad_duration_names_the_key() {
        let mut pairs = base();
        pairs.push(("OAI_INGEST__AUDIT_LOGS__POLL_INTERVAL", "soon"));
        let err = load(None, &env(&pairs), Requirements::Pipeline).expect_err("bad duration");
        assert_eq!(err.key, "audit_logs.poll_interval", "{err}");
    }

    #[test]
    fn page_size_outside_the_api_range_is_refused() {
        let mut pairs = base();
        pairs.push(("OAI_INGEST__AUDIT_LOGS__PAGE_SIZE", "500"));
        let err = load(None, &env(&pairs), Requirements::Pipeline).expect_err("too big");
        assert_eq!(err.key, "audit_logs.page_size");
    }

    #[test]
    fn plain_http_to_a_remote_sink_is_refused_unless_allowed() {
        let mut pairs = vec![
            ("OPENAI_ADMIN_KEY", "k"),
            ("OAI_INGEST__SINK__URL", "http://10.1.2.3/in"),
        ];
        let err = load(None, &env(&pairs), Requirements::Pipeline).expect_err("insecure");
        assert_eq!(err.key, "sink.url");
        pairs.push(("OAI_INGEST__SINK__ALLOW_INSECURE_HTTP", "true"));
        load(None, &env(&pairs), Requirements::Pipeline).expect("allowed");
        let loopback = env(&[
            ("OPENAI_ADMIN_KEY", "k"),
            ("OAI_INGEST__SINK__URL", "http://127.0.0.1:9/in"),
        ]);
        load(None, &loopback, Requirements::Pipeline).expect("loopback is fine");
    }

    #[test]
    fn an_admin_key_is_required_only_when_a_stream_needs_it() {
        let no_key = env(&[("OAI_INGEST__SINK__URL", "https://x.example/")]);
        let err = load(None, &no_key, Requirements::Pipeline).expect_err("needs key");
        assert_eq!(err.key, "openai.admin_key");
        let mut off = no_key.clone();
        off.insert("OAI_INGEST__AUDIT_LOGS__ENABLED".into(), "false".into());
        off.insert("OAI_INGEST__INVENTORY__ENABLED".into(), "false".into());
        load(None, &off, Requirements::Pipeline).expect("no stream needs the key");
    }

    #[test]
    fn secrets_come_from_files_and_both_forms_at_once_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("admin_key");
        std::fs::write(&path, "sk-admin-from-file\n").expect("write");
        let path_text = path.display().to_string();
        let pairs = env(&[
            ("OAI_INGEST__OPENAI__ADMIN_KEY_FILE", &path_text),
            ("OAI_INGEST__SINK__URL", "https://x.example/"),
        ]);
        let s = load(None, &pairs, Requirements::Pipeline).expect("valid");
        assert_eq!(
            s.openai.admin_key.as_ref().map(|k| k.expose_secret().to_string()),
            Some("sk-admin-from-file".to_string())
        );
        let mut both = pairs.clone();
        both.insert("OAI_INGEST__OPENAI__ADMIN_KEY".into(), "sk-admin-inline".into());
        let err = load(None, &both, Requirements::Pipeline).expect_err("ambiguous");
        assert_eq!(err.key, "openai.admin_key");
    }

    #[test]
    fn a_toml_file_overrides_defaults_and_unknown_keys_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[sink]\nurl = \"https://a.example/\"\nmax_batch_bytes = \"2MiB\"\n",
        )
        .expect("write");
        let s = load(Some(&path), &env(&[("OPENAI_ADMIN_KEY", "k")]), Requirements::Pipeline).expect("valid");
        assert_eq!(s.sink.max_batch_bytes, 2 * 1024 * 1024);
        std::fs::write(&path, "[sink]\nurl = \"https://a.example/\"\nbatch_size = 3\n").expect("write");
        let err = load(Some(&path), &env(&[("OPENAI_ADMIN_KEY", "k")]), Requirements::Pipeline).expect_err("typo");
        assert_eq!(err.key, "sink.batch_size", "{err}");
    }

    #[test]
    fn the_shipped_example_file_uses_only_known_keys_with_valid_values() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.toml");
        let raw = read_raw(Some(&path), &HashMap::new()).expect("example.toml parses");
        assert_eq!(raw.sink.url, "https://ingest.example.internal/v1/openai");
        assert_eq!(raw.audit_logs.overlap, Duration::from_secs(300));
    }

    #[test]
    fn guardrails_keys_are_validated_and_a_bad_rule_file_names_the_rule_and_field() {
        let s = load(None, &env(&base()), Requirements::Pipeline).expect("valid");
        assert!(s.guardrails.enabled);
        assert!(
            !s.guardrails.rules.rules.is_empty(),
            "the built-in pack is on by default"
        );

        let mut pairs = base();
        pairs.push(("OAI_INGEST__GUARDRAILS__DISABLED_RULES", "scim_disabled, nope"));
        let err = load(None, &env(&pairs), Requirements::Pipeline).expect_err("unknown rule id");
        assert_eq!(err.key, "guardrails.disabled_rules", "{err}");

        let dir = tempfile::tempdir().expect("tempdir");
        let rules = dir.path().join("rules.toml");
        std::fs::write(
            &rules,
            "[[rule]]\nid = \"big_spend\"\ntitle = \"t\"\nseverity = \"high\"\nmatch = { \"details.amount\" = { gt = \"lots\" } }\n",
        )
        .expect("write");
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            format!("[guardrails]\nrules_file = {:?}\nkey_admins = [\"sec@example.com\"]\n[guardrails.custom_patterns]\nbadge = \"(\"\n", rules.display().to_string()),
        )
        .expect("write");
        let err = load(Some(&path), &env(&base()), Requirements::Pipeline).expect_err("bad pattern");
        assert_eq!(err.key, "guardrails.custom_patterns.badge", "{err}");
        std::fs::write(
            &path,
            format!("[guardrails]\nrules_file = {:?}\n", rules.display().to_string()),
        )
        .expect("write");
        let err = load(Some(&path), &env(&base()), Requirements::Pipeline).expect_err("bad rule");
        assert_eq!(err.key, "guardrails.rules_file");
        assert!(
            err.problem.contains("rule `big_spend`") && err.problem.contains("match.details.amount.gt"),
            "{err}"
        );
    }

    #[test]
    fn the_redacted_rendering_never_contains_a_secret() {
        let mut pairs = base();
        pairs.push(("OAI_INGEST__SINK__AUTH_TOKEN", "tok-very-secret"));
        let s = load(None, &env(&pairs), Requirements::Pipeline).expect("valid");
        let text = render_redacted(&s);
        assert!(!text.contains("sk-admin-test"));
        assert!(!text.contains("tok-very-secret"));
        assert!(text.contains("[redacted]"));
    }
}
