//! Property tests of the configuration's parsers (see `crate::props` for the rest): whatever
//! an operator or an environment variable writes, a value either parses or is refused with an
//! error that names its key — never a panic.

use std::collections::HashMap;

use proptest::prelude::*;
use serde_json::Value;

use super::validate::{api_root, upstream_root};
use super::{Requirements, de, load};
use crate::props::{config, config_with};

/// Strings shaped like what each kind of value looks like, and anything at all.
fn text_like(shapes: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(shapes).prop_flat_map(|shape| proptest::string::string_regex(shape).expect("a regex")),
        1 => ".{0,40}",
    ]
}

const DURATIONS: &[&str] = &[
    "[0-9]{1,25}",
    "[0-9]{1,12}(ns|us|ms|s|m|h|d|w|M|y)",
    "[0-9]{1,4}(h|m) ?[0-9]{1,4}(m|s)",
    "-[0-9]{1,5}s",
];
const SIZES: &[&str] = &[
    "[0-9]{1,25}",
    "[0-9]{1,8}(\\.[0-9]{1,3})? ?(B|KB|KiB|MB|MiB|GB|GiB|TB|PB|EB|kib)",
];
const URLS: &[&str] = &[
    "(https?|ftp|file)://[a-z0-9.-]{0,20}(:[0-9]{1,6})?(/[a-z0-9/._-]{0,20})?(\\?[a-z=&]{0,10})?(#[a-z]{0,5})?",
    "https://\\[[0-9a-f:]{0,20}\\](/v1)?",
    "[a-z]{0,10}:?/{0,3}[^ ]{0,20}",
];

proptest! {
    #![proptest_config(config())]

    #[test]
    fn durations_parse_or_fail_with_a_typed_error(text in text_like(DURATIONS), n in any::<i64>()) {
        let _ = de::duration(Value::String(text));
        let parsed = de::duration(Value::from(n));
        prop_assert_eq!(parsed.is_ok(), n >= 0);
    }

    #[test]
    fn sizes_booleans_and_lists_parse_or_fail_with_a_typed_error(
        size in text_like(SIZES),
        flag in ".{0,8}",
        list in ".{0,60}",
    ) {
        let _ = de::size(Value::String(size));
        let _ = de::boolean(Value::String(flag));
        let items = de::string_list(Value::String(list)).expect("any string is a list");
        prop_assert!(items.iter().all(|i| !i.is_empty() && !i.contains(',')));
    }

    #[test]
    fn base_urls_become_an_api_root_or_an_error_naming_the_key(text in text_like(URLS), insecure in any::<bool>()) {
        match api_root("openai.base_url", &text) {
            Ok(root) => prop_assert!(root.path().ends_with("/v1/"), "{root}"),
            Err(err) => prop_assert_eq!(err.key, "openai.base_url"),
        }
        match upstream_root("compliance", &text, insecure) {
            Ok(root) => prop_assert!(root.scheme() == "https" || root.scheme() == "http"),
            Err(err) => prop_assert_eq!(err.key, "compliance.base_url"),
        }
    }
}

/// Keys a value may arrive in, with what they hold.
const KEYS: &[(&str, &[&str])] = &[
    ("OAI_INGEST__AUDIT_LOGS__POLL_INTERVAL", DURATIONS),
    ("OAI_INGEST__AUDIT_LOGS__OVERLAP", DURATIONS),
    ("OAI_INGEST__COMPLIANCE__DOWNLOAD_TIMEOUT", DURATIONS),
    ("OAI_INGEST__SHUTDOWN__TIMEOUT", DURATIONS),
    ("OAI_INGEST__SINK__MAX_BATCH_BYTES", SIZES),
    ("OAI_INGEST__OPENAI__MAX_RESPONSE_BYTES", SIZES),
    ("OAI_INGEST__SINK__URL", URLS),
    ("OAI_INGEST__OPENAI__BASE_URL", URLS),
    ("OAI_INGEST__COMPLIANCE__BASE_URL", URLS),
    ("OAI_INGEST__AUDIT_LOGS__PAGE_SIZE", &["-?[0-9]{1,12}"]),
    (
        "OAI_INGEST__AUDIT_LOGS__ENABLED",
        &["(true|false|yes|no|on|off|1|0|maybe)"],
    ),
];

fn key_and_value() -> impl Strategy<Value = (&'static str, String)> {
    prop::sample::select(KEYS).prop_flat_map(|(key, shapes)| (Just(key), text_like(shapes)))
}

proptest! {
    // A whole load compiles the built-in rule pack: fewer cases.
    #![proptest_config(config_with(24))]

    #[test]
    fn a_whole_configuration_loads_or_names_the_key_that_is_wrong((key, value) in key_and_value()) {
        let mut env: HashMap<String, String> = [
            ("OPENAI_ADMIN_KEY", "sk-admin-props"),
            ("OAI_INGEST__SINK__URL", "https://ingest.example.com/events"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        env.insert(key.to_string(), value);
        if let Err(err) = load(None, &env, Requirements::Pipeline) {
            let section = key.trim_start_matches("OAI_INGEST__").split("__").next().unwrap_or_default().to_ascii_lowercase();
            prop_assert!(err.key.starts_with(&section), "{key}: {err}");
        }
    }
}
