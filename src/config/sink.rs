//! `[sink]` → [`SinkSettings`]: the protocol (or the older `format`), the URL with the
//! protocol's standard path, the auth scheme and its secrets, compression, and the keys only
//! some protocols read — a non-default value for a protocol that would ignore it is refused,
//! naming the key, because a setting that silently does nothing is a misconfiguration.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::str::FromStr;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use url::Url;

use super::raw::RawSink;
use super::validate::{is_loopback, one_of, positive, secret};
use super::{ConfigError, Requirements};
use crate::sink::SinkSettings;
use crate::sink::auth::{AuthScheme, Credentials};
use crate::sink::protocol::Protocol;
use crate::sink::settings::{Compression, LokiLabel, ProtocolOptions};

/// The smallest dead-letter limit accepted: a few large events.
const MIN_DEAD_LETTER_BYTES: u64 = 64 * 1024;

pub(super) fn sink(raw: RawSink, needs: Requirements) -> Result<SinkSettings, ConfigError> {
    let protocol = protocol(raw.protocol.as_deref(), raw.format.as_deref())?;
    let url = url(&raw.url, raw.allow_insecure_http, protocol, needs)?;
    let scheme = match raw.auth_scheme.trim() {
        "" => protocol.default_auth(),
        text => AuthScheme::from_str(text).map_err(|problem| ConfigError::new("sink.auth_scheme", problem))?,
    };
    let credentials = credentials(&raw, scheme)?;
    let compression = match raw.compression.as_deref() {
        None => protocol.default_compression(),
        Some(text) => one_of("sink.compression", text)?,
    };
    if protocol == Protocol::Akto && compression == Compression::Gzip {
        return Err(ConfigError::new(
            "sink.compression",
            "Akto's data-ingestion service does not decompress requests; use \"none\" (the akto default)",
        ));
    }
    if !(1..=9).contains(&raw.compression_level) {
        return Err(ConfigError::new(
            "sink.compression_level",
            format!(
                "must be a gzip level from 1 (fastest) to 9 (smallest), got {}",
                raw.compression_level
            ),
        ));
    }
    let options = options(&raw, protocol)?;
    let max_batch_bytes = usize::try_from(raw.max_batch_bytes).unwrap_or(usize::MAX);
    if max_batch_bytes < 1024 {
        return Err(ConfigError::new("sink.max_batch_bytes", "must be at least 1KiB"));
    }
    if protocol == Protocol::Akto && max_batch_bytes > crate::sink::protocol::AKTO_MAX_BODY_BYTES {
        return Err(ConfigError::new(
            "sink.max_batch_bytes",
            "Akto's data-ingestion service reads at most 10MiB per request (2MiB on some builds); keep it at or below that",
        ));
    }
    let max_queue_bytes = usize::try_from(raw.max_queue_bytes).unwrap_or(usize::MAX);
    if max_queue_bytes < max_batch_bytes {
        return Err(ConfigError::new(
            "sink.max_queue_bytes",
            "must be at least sink.max_batch_bytes",
        ));
    }
    if raw.dead_letter_max_bytes < MIN_DEAD_LETTER_BYTES {
        return Err(ConfigError::new(
            "sink.dead_letter_max_bytes",
            "must be at least 64KiB (past it delivery pauses rather than dropping events)",
        ));
    }
    Ok(SinkSettings {
        url,
        protocol,
        schema: one_of("sink.schema", &raw.schema)?,
        credentials,
        headers: headers(raw.headers)?,
        compression,
        compression_level: raw.compression_level,
        options,
        max_batch_events: usize::try_from(raw.max_batch_events)
            .ok()
            .and_then(NonZeroUsize::new)
            .ok_or_else(|| ConfigError::new("sink.max_batch_events", "must be at least 1"))?,
        max_batch_bytes,
        tls: super::tls::tls(
            "sink",
            &raw.ca_file,
            Some((&raw.client_cert_file, &raw.client_key_file)),
        )?,
        flush_interval: positive("sink.flush_interval", raw.flush_interval)?,
        timeout: positive("sink.timeout", raw.timeout)?,
        max_queue_bytes,
        dead_letter_max_bytes: raw.dead_letter_max_bytes,
    })
}

/// `sink.protocol`, or the older `sink.format` (ndjson or json) when the protocol is unset.
fn protocol(protocol: Option<&str>, format: Option<&str>) -> Result<Protocol, ConfigError> {
    let from_format = match format {
        None => None,
        Some(text) => match one_of::<Protocol>("sink.format", text)? {
            p @ (Protocol::Ndjson | Protocol::Json) => Some(p),
            _ => {
                return Err(ConfigError::new(
                    "sink.format",
                    "is the older name of sink.protocol for ndjson and json only; set sink.protocol instead",
                ));
            }
        },
    };
    match (protocol, from_format) {
        (Some(text), from_format) => {
            let chosen: Protocol = one_of("sink.protocol", text)?;
            if from_format.is_some_and(|f| f != chosen) {
                return Err(ConfigError::new(
                    "sink.format",
                    format!(
                        "conflicts with sink.protocol = \"{}\"; remove sink.format (its older name)",
                        chosen.as_str()
                    ),
                ));
            }
            Ok(chosen)
        }
        (None, Some(from_format)) => Ok(from_format),
        (None, None) => Ok(Protocol::Ndjson),
    }
}

/// The endpoint: `https://`, or `http://` to loopback (or when allowed); a URL without a
/// path gets the protocol's standard path.
fn url(text: &str, allow_insecure_http: bool, protocol: Protocol, needs: Requirements) -> Result<Url, ConfigError> {
    let mut url = match text.trim() {
        "" if needs == Requirements::None => {
            // `config` may print a configuration without a sink.
            return Url::parse("http://127.0.0.1/").map_err(|e| ConfigError::new("sink.url", e.to_string()));
        }
        "" => {
            return Err(ConfigError::new(
                "sink.url",
                "is required: the ingestion service endpoint (OAI_INGEST__SINK__URL)",
            ));
        }
        text => Url::parse(text).map_err(|e| ConfigError::new("sink.url", format!("`{text}` is not a URL: {e}")))?,
    };
    // Credentials in the URL itself are secrets like any other: kept out of every log line.
    if let Some(password) = url.password() {
        crate::secrets::register(password);
    }
    for (_, value) in url.query_pairs() {
        crate::secrets::register(&value);
    }
    match url.scheme() {
        "https" => {}
        "http" if allow_insecure_http || is_loopback(&url) => {}
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
    if let Some(path) = protocol.standard_path()
        && matches!(url.path(), "" | "/")
    {
        url.set_path(path);
    }
    Ok(url)
}

/// The auth scheme's secrets: a token for every scheme but `basic`, which takes a username
/// and a password instead.
fn credentials(raw: &RawSink, scheme: AuthScheme) -> Result<Credentials, ConfigError> {
    let token = secret(
        "sink.auth_token",
        raw.auth_token.clone(),
        raw.auth_token_file.clone(),
        None,
    )?;
    let password = secret("sink.password", raw.password.clone(), raw.password_file.clone(), None)?;
    let username = raw.username.trim().to_string();
    let basic = scheme == AuthScheme::Basic;
    const BASIC: &str = "sink.auth_scheme = \"basic\"";
    let problems = [
        (
            basic && token.is_some(),
            "sink.auth_token",
            format!("is not used with {BASIC}; set sink.username and sink.password"),
        ),
        (
            basic && username.is_empty(),
            "sink.username",
            format!("is required with {BASIC}"),
        ),
        (
            basic && password.is_none(),
            "sink.password",
            format!("is required with {BASIC} (or sink.password_file)"),
        ),
        (
            !basic && !username.is_empty(),
            "sink.username",
            format!("applies only to {BASIC}"),
        ),
        (
            !basic && password.is_some(),
            "sink.password",
            format!("applies only to {BASIC}"),
        ),
    ];
    if let Some((_, key, problem)) = problems.into_iter().find(|(wrong, _, _)| *wrong) {
        return Err(ConfigError::new(key, problem));
    }
    Ok(Credentials {
        scheme,
        token,
        username,
        password,
    })
}

/// The protocol-specific keys, each refused with a non-default value where it does not apply.
fn options(raw: &RawSink, protocol: Protocol) -> Result<ProtocolOptions, ConfigError> {
    let defaults = ProtocolOptions::default();
    let not_for = |key: &str, applies: &str| {
        ConfigError::new(
            key,
            format!(
                "applies only to {applies}, not to sink.protocol = \"{}\"; remove it",
                protocol.as_str()
            ),
        )
    };
    let index = raw.index.trim().to_string();
    if !index.is_empty() && !matches!(protocol, Protocol::SplunkHec | Protocol::Elasticsearch) {
        return Err(not_for("sink.index", "splunk_hec and elasticsearch"));
    }
    if protocol == Protocol::Elasticsearch && index.contains(|c: char| c == '/' || c == '*' || c.is_whitespace()) {
        return Err(ConfigError::new(
            "sink.index",
            format!("`{index}` is not an index or data stream name"),
        ));
    }
    let sourcetype = raw.sourcetype.trim().to_string();
    if !sourcetype.is_empty() && protocol != Protocol::SplunkHec {
        return Err(not_for("sink.sourcetype", "splunk_hec"));
    }
    let mut labels = Vec::new();
    for text in &raw.labels {
        let label: LokiLabel = one_of("sink.labels", text)?;
        if labels.contains(&label) {
            return Err(ConfigError::new("sink.labels", format!("`{text}` is listed twice")));
        }
        labels.push(label);
    }
    if labels != defaults.labels && protocol != Protocol::Loki {
        return Err(not_for("sink.labels", "loki"));
    }
    if labels.is_empty() {
        return Err(ConfigError::new("sink.labels", "Loki needs at least one stream label"));
    }
    let akto_account_id = raw.akto_account_id.trim().to_string();
    if akto_account_id != defaults.akto_account_id && protocol != Protocol::Akto {
        return Err(not_for("sink.akto_account_id", "akto"));
    }
    if akto_account_id.is_empty() || !akto_account_id.chars().all(|c| c.is_ascii_digit()) {
        return Err(ConfigError::new(
            "sink.akto_account_id",
            format!("`{akto_account_id}` is not an Akto account id (digits, e.g. 1000000)"),
        ));
    }
    if raw.ack && protocol != Protocol::SplunkHec {
        return Err(not_for("sink.ack", "splunk_hec"));
    }
    if raw.ack_timeout != defaults.ack_timeout && !(protocol == Protocol::SplunkHec && raw.ack) {
        return Err(ConfigError::new(
            "sink.ack_timeout",
            "applies only to sink.protocol = \"splunk_hec\" with sink.ack = true; remove it",
        ));
    }
    Ok(ProtocolOptions {
        index,
        sourcetype,
        labels,
        akto_account_id,
        ack: raw.ack,
        ack_timeout: positive("sink.ack_timeout", raw.ack_timeout)?,
    })
}

fn headers(raw: BTreeMap<String, String>) -> Result<HeaderMap, ConfigError> {
    let mut headers = HeaderMap::new();
    for (name, value) in raw {
        let key = format!("sink.headers.{name}");
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| ConfigError::new(&key, "is not a valid header name"))?;
        if header == reqwest::header::AUTHORIZATION {
            return Err(ConfigError::new(
                &key,
                "use sink.auth_token (and sink.auth_scheme) for the Authorization header",
            ));
        }
        crate::secrets::register(&value);
        let mut value =
            HeaderValue::from_str(&value).map_err(|_| ConfigError::new(&key, "is not a valid header value"))?;
        value.set_sensitive(true);
        headers.insert(header, value);
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use secrecy::ExposeSecret;

    use super::super::load;
    use super::*;

    fn load_with(pairs: &[(&str, &str)]) -> Result<SinkSettings, ConfigError> {
        let mut env: HashMap<String, String> = [
            ("OPENAI_ADMIN_KEY", "sk-admin-test"),
            ("OAI_INGEST__SINK__URL", "https://ingest.example.com"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        env.extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        load(None, &env, Requirements::Pipeline).map(|s| s.sink)
    }

    fn key_of(pairs: &[(&str, &str)]) -> String {
        load_with(pairs).expect_err("refused").key
    }

    #[test]
    fn each_protocol_gets_its_standard_path_auth_and_compression_by_default() {
        let cases = [
            ("ndjson", "/", AuthScheme::Bearer, Compression::Gzip),
            ("json", "/", AuthScheme::Bearer, Compression::Gzip),
            ("akto", "/api/ingestData", AuthScheme::Raw, Compression::None),
            (
                "splunk_hec",
                "/services/collector/event",
                AuthScheme::Splunk,
                Compression::Gzip,
            ),
            ("elasticsearch", "/_bulk", AuthScheme::ApiKey, Compression::Gzip),
            ("otlp", "/v1/logs", AuthScheme::Bearer, Compression::Gzip),
            ("loki", "/loki/api/v1/push", AuthScheme::Bearer, Compression::Gzip),
        ];
        for (name, path, scheme, compression) in cases {
            let s = load_with(&[("OAI_INGEST__SINK__PROTOCOL", name)]).expect(name);
            assert_eq!(s.protocol.as_str(), name);
            assert_eq!(s.url.path(), path, "{name}");
            assert_eq!(s.credentials.scheme, scheme, "{name}");
            assert_eq!(s.compression, compression, "{name}");
        }
    }

    #[test]
    fn a_url_with_a_path_is_kept_as_given() {
        let s = load_with(&[
            ("OAI_INGEST__SINK__PROTOCOL", "elasticsearch"),
            ("OAI_INGEST__SINK__URL", "https://proxy.example.com/es/_bulk"),
        ])
        .expect("valid");
        assert_eq!(s.url.as_str(), "https://proxy.example.com/es/_bulk");
    }

    #[test]
    fn an_unknown_protocol_names_the_key_and_lists_the_choices() {
        let err = load_with(&[("OAI_INGEST__SINK__PROTOCOL", "kafka")]).expect_err("unknown");
        assert_eq!(err.key, "sink.protocol");
        assert!(
            err.problem.contains("splunk_hec") && err.problem.contains("loki"),
            "{err}"
        );
    }

    #[test]
    fn the_older_format_key_still_picks_ndjson_or_json_and_may_not_contradict_the_protocol() {
        let s = load_with(&[("OAI_INGEST__SINK__FORMAT", "json")]).expect("format alone");
        assert_eq!(s.protocol, Protocol::Json);
        let s = load_with(&[
            ("OAI_INGEST__SINK__FORMAT", "json"),
            ("OAI_INGEST__SINK__PROTOCOL", "json"),
        ])
        .expect("agreeing");
        assert_eq!(s.protocol, Protocol::Json);
        assert_eq!(
            key_of(&[
                ("OAI_INGEST__SINK__FORMAT", "json"),
                ("OAI_INGEST__SINK__PROTOCOL", "loki")
            ]),
            "sink.format"
        );
        assert_eq!(key_of(&[("OAI_INGEST__SINK__FORMAT", "loki")]), "sink.format");
    }

    #[test]
    fn a_key_that_does_not_apply_to_the_protocol_is_refused_by_name() {
        let cases = [
            (("OAI_INGEST__SINK__INDEX", "openai"), "loki", "sink.index"),
            (
                ("OAI_INGEST__SINK__SOURCETYPE", "x"),
                "elasticsearch",
                "sink.sourcetype",
            ),
            (("OAI_INGEST__SINK__LABELS", "source"), "splunk_hec", "sink.labels"),
            (
                ("OAI_INGEST__SINK__AKTO_ACCOUNT_ID", "42"),
                "otlp",
                "sink.akto_account_id",
            ),
            (("OAI_INGEST__SINK__ACK", "true"), "ndjson", "sink.ack"),
            (
                ("OAI_INGEST__SINK__ACK_TIMEOUT", "1m"),
                "splunk_hec",
                "sink.ack_timeout",
            ),
            (
                ("OAI_INGEST__SINK__USERNAME", "elastic"),
                "elasticsearch",
                "sink.username",
            ),
            (("OAI_INGEST__SINK__COMPRESSION", "gzip"), "akto", "sink.compression"),
        ];
        for (pair, protocol, key) in cases {
            let got = key_of(&[("OAI_INGEST__SINK__PROTOCOL", protocol), pair]);
            assert_eq!(got, key, "{pair:?} with {protocol}");
        }
        // The documented defaults themselves are fine with any protocol.
        load_with(&[
            ("OAI_INGEST__SINK__PROTOCOL", "otlp"),
            ("OAI_INGEST__SINK__LABELS", "source,category,org_id"),
            ("OAI_INGEST__SINK__AKTO_ACCOUNT_ID", "1000000"),
            ("OAI_INGEST__SINK__ACK", "false"),
            ("OAI_INGEST__SINK__INDEX", ""),
        ])
        .expect("defaults apply everywhere");
    }

    #[test]
    fn auth_schemes_are_parsed_and_basic_needs_a_username_and_password() {
        let s = load_with(&[
            ("OAI_INGEST__SINK__PROTOCOL", "loki"),
            ("OAI_INGEST__SINK__AUTH_SCHEME", "header:X-Scope-Token"),
            ("OAI_INGEST__SINK__AUTH_TOKEN", "t"),
        ])
        .expect("header scheme");
        assert_eq!(s.credentials.scheme.to_string(), "header:x-scope-token");
        assert_eq!(
            key_of(&[("OAI_INGEST__SINK__AUTH_SCHEME", "token")]),
            "sink.auth_scheme"
        );
        assert_eq!(key_of(&[("OAI_INGEST__SINK__AUTH_SCHEME", "basic")]), "sink.username");
        assert_eq!(
            key_of(&[
                ("OAI_INGEST__SINK__AUTH_SCHEME", "basic"),
                ("OAI_INGEST__SINK__USERNAME", "elastic")
            ]),
            "sink.password"
        );
        assert_eq!(
            key_of(&[
                ("OAI_INGEST__SINK__AUTH_SCHEME", "basic"),
                ("OAI_INGEST__SINK__USERNAME", "elastic"),
                ("OAI_INGEST__SINK__PASSWORD", "p"),
                ("OAI_INGEST__SINK__AUTH_TOKEN", "t"),
            ]),
            "sink.auth_token"
        );
        let s = load_with(&[
            ("OAI_INGEST__SINK__PROTOCOL", "elasticsearch"),
            ("OAI_INGEST__SINK__AUTH_SCHEME", "basic"),
            ("OAI_INGEST__SINK__USERNAME", "elastic"),
            ("OAI_INGEST__SINK__PASSWORD", "p4ss"),
        ])
        .expect("basic");
        assert_eq!(
            s.credentials
                .password
                .as_ref()
                .map(|p| p.current().expose_secret().to_string()),
            Some("p4ss".to_string())
        );
    }

    #[test]
    fn protocol_keys_are_validated_where_they_apply() {
        let s = load_with(&[
            ("OAI_INGEST__SINK__PROTOCOL", "loki"),
            ("OAI_INGEST__SINK__LABELS", "source, type"),
        ])
        .expect("labels");
        assert_eq!(s.options.labels, vec![LokiLabel::Source, LokiLabel::Type]);
        assert_eq!(
            key_of(&[
                ("OAI_INGEST__SINK__PROTOCOL", "loki"),
                ("OAI_INGEST__SINK__LABELS", "source,actor_email")
            ]),
            "sink.labels"
        );
        let s = load_with(&[
            ("OAI_INGEST__SINK__PROTOCOL", "splunk_hec"),
            ("OAI_INGEST__SINK__ACK", "true"),
            ("OAI_INGEST__SINK__ACK_TIMEOUT", "2m"),
            ("OAI_INGEST__SINK__INDEX", "openai"),
        ])
        .expect("hec");
        assert!(s.options.ack);
        assert_eq!(s.options.ack_timeout.as_secs(), 120);
        assert_eq!(
            key_of(&[
                ("OAI_INGEST__SINK__PROTOCOL", "akto"),
                ("OAI_INGEST__SINK__MAX_BATCH_BYTES", "20MiB"),
                ("OAI_INGEST__SINK__MAX_QUEUE_BYTES", "64MiB")
            ]),
            "sink.max_batch_bytes"
        );
        assert_eq!(key_of(&[("OAI_INGEST__SINK__SCHEMA", "ecs")]), "sink.schema");
        assert_eq!(
            key_of(&[("OAI_INGEST__SINK__DEAD_LETTER_MAX_BYTES", "1KiB")]),
            "sink.dead_letter_max_bytes"
        );
        let s = load_with(&[]).expect("defaults");
        assert_eq!(s.dead_letter_max_bytes, 256 * 1024 * 1024);
    }
}
