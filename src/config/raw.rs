//! The raw form of the configuration: exactly the TOML sections and keys, as the `config`
//! crate deserializes them from the layered sources. Nothing here is validated yet.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::de;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Raw {
    pub(super) openai: RawOpenAi,
    pub(super) audit_logs: RawAuditLogs,
    pub(super) inventory: RawInventory,
    pub(super) compliance: RawCompliance,
    pub(super) sink: RawSink,
    pub(super) retry: RawRetry,
    pub(super) state: RawState,
    pub(super) log: RawLog,
    pub(super) server: RawServer,
    pub(super) shutdown: RawShutdown,
    pub(super) guardrails: RawGuardrails,
    /// `[[orgs]]`: absent from the embedded defaults.
    #[serde(default)]
    pub(super) orgs: Vec<super::orgs::RawOrg>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOpenAi {
    pub(super) admin_key: String,
    pub(super) admin_key_file: String,
    pub(super) base_url: String,
    pub(super) organization_id: String,
    pub(super) requests_per_minute: u32,
    #[serde(deserialize_with = "de::duration")]
    pub(super) timeout: Duration,
    #[serde(deserialize_with = "de::boolean")]
    pub(super) allow_insecure_http: bool,
    #[serde(deserialize_with = "de::size")]
    pub(super) max_response_bytes: u64,
    pub(super) ca_file: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAuditLogs {
    #[serde(deserialize_with = "de::boolean")]
    pub(super) enabled: bool,
    #[serde(deserialize_with = "de::duration")]
    pub(super) poll_interval: Duration,
    #[serde(deserialize_with = "de::duration")]
    pub(super) initial_lookback: Duration,
    #[serde(deserialize_with = "de::duration")]
    pub(super) overlap: Duration,
    #[serde(deserialize_with = "de::boolean")]
    pub(super) tenant_events: bool,
    pub(super) page_size: u32,
    pub(super) backfill_concurrency: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInventory {
    #[serde(deserialize_with = "de::boolean")]
    pub(super) enabled: bool,
    #[serde(deserialize_with = "de::duration")]
    pub(super) interval: Duration,
    #[serde(deserialize_with = "de::duration")]
    pub(super) full_interval: Duration,
    pub(super) stale_key_days: u32,
    pub(super) budget_share: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCompliance {
    #[serde(deserialize_with = "de::boolean")]
    pub(super) enabled: bool,
    pub(super) api_key: String,
    pub(super) api_key_file: String,
    pub(super) base_url: String,
    pub(super) principal_id: String,
    #[serde(deserialize_with = "de::string_list")]
    pub(super) event_types: Vec<String>,
    #[serde(deserialize_with = "de::duration")]
    pub(super) poll_interval: Duration,
    #[serde(deserialize_with = "de::duration")]
    pub(super) initial_lookback: Duration,
    pub(super) requests_per_minute: u32,
    pub(super) content: String,
    #[serde(deserialize_with = "de::boolean")]
    pub(super) allow_insecure_http: bool,
    #[serde(deserialize_with = "de::duration")]
    pub(super) download_timeout: Duration,
    #[serde(deserialize_with = "de::duration")]
    pub(super) missing_file_grace: Duration,
    pub(super) ca_file: String,
}

/// `[sink]`. Keys whose default depends on the protocol (`protocol`, the older `format`,
/// `compression`) are absent from the embedded defaults, so an unset key can be told from
/// one set to the default's value.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSink {
    pub(super) url: String,
    #[serde(default)]
    pub(super) protocol: Option<String>,
    #[serde(default)]
    pub(super) format: Option<String>,
    pub(super) schema: String,
    pub(super) auth_token: String,
    pub(super) auth_token_file: String,
    pub(super) auth_scheme: String,
    pub(super) username: String,
    pub(super) password: String,
    pub(super) password_file: String,
    pub(super) headers: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) compression: Option<String>,
    pub(super) compression_level: u32,
    pub(super) index: String,
    pub(super) sourcetype: String,
    #[serde(deserialize_with = "de::string_list")]
    pub(super) labels: Vec<String>,
    pub(super) akto_account_id: String,
    #[serde(deserialize_with = "de::boolean")]
    pub(super) ack: bool,
    #[serde(deserialize_with = "de::duration")]
    pub(super) ack_timeout: Duration,
    pub(super) max_batch_events: u32,
    #[serde(deserialize_with = "de::size")]
    pub(super) max_batch_bytes: u64,
    #[serde(deserialize_with = "de::duration")]
    pub(super) flush_interval: Duration,
    #[serde(deserialize_with = "de::duration")]
    pub(super) timeout: Duration,
    #[serde(deserialize_with = "de::boolean")]
    pub(super) allow_insecure_http: bool,
    #[serde(deserialize_with = "de::size")]
    pub(super) max_queue_bytes: u64,
    #[serde(deserialize_with = "de::size")]
    pub(super) dead_letter_max_bytes: u64,
    pub(super) ca_file: String,
    pub(super) client_cert_file: String,
    pub(super) client_key_file: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRetry {
    #[serde(deserialize_with = "de::duration")]
    pub(super) initial_backoff: Duration,
    #[serde(deserialize_with = "de::duration")]
    pub(super) max_backoff: Duration,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawState {
    pub(super) dir: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLog {
    pub(super) format: String,
    pub(super) level: String,
    #[serde(deserialize_with = "de::duration")]
    pub(super) progress_interval: Duration,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub(super) listen: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawShutdown {
    #[serde(deserialize_with = "de::duration")]
    pub(super) timeout: Duration,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGuardrails {
    #[serde(deserialize_with = "de::boolean")]
    pub(super) enabled: bool,
    pub(super) rules_file: String,
    #[serde(deserialize_with = "de::string_list")]
    pub(super) disabled_rules: Vec<String>,
    #[serde(deserialize_with = "de::string_list")]
    pub(super) key_admins: Vec<String>,
    pub(super) custom_patterns: BTreeMap<String, String>,
    #[serde(deserialize_with = "de::size")]
    pub(super) max_state_bytes: u64,
}
