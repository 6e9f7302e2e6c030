//! Configuration: embedded defaults → optional TOML file → environment, validated once into
//! [`Settings`], which assembles each component's own settings type. A value that reaches a
//! component cannot be wrong.
//!
//! - `sources`: layering the sources into the raw form (`raw`).
//! - `validate`: raw → settings, naming the key of every problem; `main` turns a
//!   [`ConfigError`] into exit code 2. `sink`: the `[sink]` section, protocol by protocol.
//! - `render`: the effective configuration with secrets redacted, for `config`.
//! - `orgs`: `[[orgs]]`, several organizations in one daemon, over the sections' defaults.
//! - `de`: the human forms values may take (`"90s"`, `"1MiB"`, comma-separated lists).

mod de;
mod orgs;
#[cfg(test)]
mod props;
mod raw;
mod render;
mod sink;
mod sources;
mod tls;
mod validate;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use url::Url;

use crate::compliance::platform::ComplianceApiSettings;
use crate::guardrails::GuardrailSettings;
use crate::openai::admin::OpenAiSettings;
use crate::retry::RetrySettings;
use crate::server::ServerSettings;
use crate::sink::SinkSettings;
use crate::state::StateSettings;
use crate::streams::audit_logs::AuditLogSettings;
use crate::streams::compliance::ComplianceStreamSettings;
use crate::streams::inventory::InventorySettings;
use crate::telemetry::LogSettings;
pub use orgs::OrgSettings;
pub use render::render_redacted;

/// The embedded defaults, also shipped as `config/default.toml` for reference.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

/// Prefix of the environment variables that override keys (`OAI_INGEST__SINK__URL`).
pub const ENV_PREFIX: &str = "OAI_INGEST";

/// The variable naming the config file (`--config`).
pub const CONFIG_ENV: &str = "OAI_INGEST_CONFIG";

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

/// The whole validated configuration: each component's settings, as it defines them.
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
    /// The `[[orgs]]` blocks; empty when the sections describe the one organization (see
    /// [`Settings::organizations`]).
    pub orgs: Vec<OrgSettings>,
}

/// `[compliance]`: one section, read by two components.
#[derive(Debug, Clone)]
pub struct ComplianceSettings {
    pub enabled: bool,
    /// How to reach the platform.
    pub api: ComplianceApiSettings,
    /// What the streams read and how.
    pub streams: ComplianceStreamSettings,
}

/// Graceful stop (`[shutdown]`).
#[derive(Debug, Clone, Copy)]
pub struct ShutdownSettings {
    /// How long a stop may spend flushing before it gives up (checkpoints stay safe).
    pub timeout: Duration,
}

/// Which credentials a command needs; `config` prints whatever is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirements {
    /// `run`, `once`, `check`: enabled streams need their keys and the sink needs a URL.
    Pipeline,
    /// `replay`: only the sink (and the state directory) is used, so only it needs a URL.
    Sink,
    /// `config`: only well-formedness.
    None,
}

/// Loads the configuration from the embedded defaults, `file` (if any) and `env`
/// (the process environment, passed in so tests need no global state).
pub fn load(file: Option<&Path>, env: &HashMap<String, String>, needs: Requirements) -> Result<Settings, ConfigError> {
    let raw = sources::read_raw(file, env)?;
    validate::validate(raw, env, needs)
}

/// The API root of an already valid URL (the simulator's, in `demo` and tests).
pub fn api_root_url(url: Url) -> Url {
    let text = url.to_string();
    validate::api_root("base_url", &text).unwrap_or(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

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
        assert_eq!(s.compliance.streams.event_types.len(), 8);
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
        assert_eq!(s.compliance.streams.event_types, vec!["AUTH_LOG", "APP_LOG"]);
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
    fn a_variable_with_our_prefix_that_sets_no_key_is_refused_by_name() {
        let mut pairs = base();
        pairs.push(("OAI_INGEST_SINK_URL", "https://other.example.com/"));
        let err = load(None, &env(&pairs), Requirements::Pipeline).expect_err("stray variable");
        assert_eq!(err.key, "OAI_INGEST_SINK_URL");
        assert!(err.problem.contains("OAI_INGEST__SINK__URL"), "{err}");
        let mut pairs = base();
        pairs.push(("OAI_INGEST_CONFIG", "/etc/openai-audit-ingest.toml"));
        load(None, &env(&pairs), Requirements::Pipeline).expect("the config-file variable is ours");
    }

    #[test]
    fn an_invalid_log_level_names_the_key() {
        let mut pairs = base();
        pairs.push(("OAI_INGEST__LOG__LEVEL", "verbose"));
        let err = load(None, &env(&pairs), Requirements::Pipeline).expect_err("not a level");
        assert_eq!(err.key, "log.level", "{err}");
    }

    #[test]
    fn a_ca_file_that_is_not_pem_names_the_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate").expect("write");
        let path = path.display().to_string();
        for (var, key) in [
            ("OAI_INGEST__OPENAI__CA_FILE", "openai.ca_file"),
            ("OAI_INGEST__COMPLIANCE__CA_FILE", "compliance.ca_file"),
            ("OAI_INGEST__SINK__CA_FILE", "sink.ca_file"),
            ("OAI_INGEST__SINK__CLIENT_CERT_FILE", "sink.client_key_file"),
        ] {
            let mut pairs = base();
            pairs.push((var, &path));
            let err = load(None, &env(&pairs), Requirements::Pipeline).expect_err("bad pem");
            assert_eq!(err.key, key, "{err}");
        }
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
    fn plain_http_to_a_remote_upstream_is_refused_unless_allowed() {
        for (section, var) in [("openai", "OPENAI"), ("compliance", "COMPLIANCE")] {
            let mut pairs = base();
            let url_var = format!("OAI_INGEST__{var}__BASE_URL");
            pairs.push((&url_var, "http://10.1.2.3:8080"));
            let err = load(None, &env(&pairs), Requirements::Pipeline).expect_err("insecure");
            assert_eq!(err.key, format!("{section}.base_url"));
            assert!(err.problem.contains(&format!("{section}.allow_insecure_http")), "{err}");
            let allow_var = format!("OAI_INGEST__{var}__ALLOW_INSECURE_HTTP");
            pairs.push((&allow_var, "true"));
            load(None, &env(&pairs), Requirements::Pipeline).expect("allowed");
            let loopback = [(url_var.as_str(), "http://localhost:9/")];
            let mut pairs = base();
            pairs.extend(loopback);
            load(None, &env(&pairs), Requirements::Pipeline).expect("loopback is fine");
        }
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
    fn replay_needs_only_the_sink() {
        let sink_only = env(&[("OAI_INGEST__SINK__URL", "https://x.example/")]);
        load(None, &sink_only, Requirements::Sink).expect("no admin key needed to replay");
        let err = load(None, &env(&[]), Requirements::Sink).expect_err("a sink is needed");
        assert_eq!(err.key, "sink.url");
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
            s.openai
                .admin_key
                .as_ref()
                .map(|k| k.current().expose_secret().to_string()),
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
        let raw = sources::read_raw(Some(&path), &HashMap::new()).expect("example.toml parses");
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

        let mut pairs = base();
        pairs[1] = (
            "OAI_INGEST__SINK__URL",
            "https://bob:hunter2-pass@ingest.example.com/in?token=q-secret-123",
        );
        let s = load(None, &env(&pairs), Requirements::Pipeline).expect("valid");
        let text = render_redacted(&s);
        assert!(
            !text.contains("q-secret-123") && !text.contains("hunter2-pass") && !text.contains("bob"),
            "{text}"
        );
        assert!(
            text.contains("url = \"https://ingest.example.com/in?token=[redacted]\""),
            "{text}"
        );
        assert_eq!(
            crate::secrets::redact("GET /in?token=q-secret-123"),
            "GET /in?token=[redacted]"
        );
    }
}
