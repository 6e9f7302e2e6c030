//! The effective configuration as TOML for `config`: every key, every secret redacted.

use std::time::Duration;

use secrecy::ExposeSecret;

use super::Settings;
use crate::secrets::{Rotating, redact_url};

/// The effective configuration as TOML-like text with every secret redacted, for `config`.
pub fn render_redacted(s: &Settings) -> String {
    fn name<T: Into<&'static str>>(v: T) -> &'static str {
        v.into()
    }
    fn secret(v: &Option<Rotating>) -> &'static str {
        match v {
            Some(v) if !v.current().expose_secret().is_empty() => "\"[redacted]\"",
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
        format!("base_url = \"{}\"", redact_url(&s.openai.base_url)),
        format!(
            "organization_id = \"{}\"",
            s.openai.organization_id.as_deref().unwrap_or("")
        ),
        format!("requests_per_minute = {}", s.openai.requests_per_minute),
        format!("timeout = {}", dur(s.openai.timeout)),
        format!("max_response_bytes = {}", s.openai.max_response_bytes),
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
        format!("full_interval = {}", dur(s.inventory.full_interval)),
        format!("stale_key_days = {}", s.inventory.stale_key_days),
        format!("budget_share = {}", s.inventory.budget_share),
        String::new(),
        "[compliance]".to_string(),
        format!("enabled = {}", s.compliance.enabled),
        format!("api_key = {}", secret(&s.compliance.api.api_key)),
        format!("base_url = \"{}\"", redact_url(&s.compliance.api.base_url)),
        format!("principal_id = \"{}\"", s.compliance.api.principal_id),
        format!("event_types = {}", list(&s.compliance.streams.event_types)),
        format!("poll_interval = {}", dur(s.compliance.streams.poll_interval)),
        format!("initial_lookback = {}", dur(s.compliance.streams.initial_lookback)),
        format!("requests_per_minute = {}", s.compliance.api.requests_per_minute),
        format!("content = \"{}\"", name(s.compliance.streams.content)),
        format!("download_timeout = {}", dur(s.compliance.streams.download_timeout)),
        format!("missing_file_grace = {}", dur(s.compliance.streams.missing_file_grace)),
        String::new(),
        "[sink]".to_string(),
        format!("url = \"{}\"", redact_url(&s.sink.url)),
        format!("protocol = \"{}\"", s.sink.protocol.as_str()),
        format!("schema = \"{}\"", name(s.sink.schema)),
        format!("auth_token = {}", secret(&s.sink.credentials.token)),
        format!("auth_scheme = \"{}\"", s.sink.credentials.scheme),
        format!("username = \"{}\"", s.sink.credentials.username),
        format!("password = {}", secret(&s.sink.credentials.password)),
        format!("headers = {{ {} }}", headers.join(", ")),
        format!("compression = \"{}\"", name(s.sink.compression)),
        format!("index = \"{}\"", s.sink.options.index),
        format!("sourcetype = \"{}\"", s.sink.options.sourcetype),
        format!(
            "labels = {}",
            list(
                &s.sink
                    .options
                    .labels
                    .iter()
                    .map(|l| name(*l).to_string())
                    .collect::<Vec<_>>()
            )
        ),
        format!("akto_account_id = \"{}\"", s.sink.options.akto_account_id),
        format!("ack = {}", s.sink.options.ack),
        format!("ack_timeout = {}", dur(s.sink.options.ack_timeout)),
        format!("max_batch_events = {}", s.sink.max_batch_events),
        format!("max_batch_bytes = {}", s.sink.max_batch_bytes),
        format!("flush_interval = {}", dur(s.sink.flush_interval)),
        format!("timeout = {}", dur(s.sink.timeout)),
        format!("max_queue_bytes = {}", s.sink.max_queue_bytes),
        format!("dead_letter_max_bytes = {}", s.sink.dead_letter_max_bytes),
        String::new(),
        "[retry]".to_string(),
        format!("initial_backoff = {}", dur(s.retry.initial_backoff)),
        format!("max_backoff = {}", dur(s.retry.max_backoff)),
        String::new(),
        "[state]".to_string(),
        format!("dir = \"{}\"", s.state.dir.display()),
        String::new(),
        "[log]".to_string(),
        format!("format = \"{}\"", name(s.log.format)),
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
        format!("max_state_bytes = {}", s.guardrails.max_state_bytes),
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
    out.push_str(&super::orgs::render(&s.orgs));
    out
}
