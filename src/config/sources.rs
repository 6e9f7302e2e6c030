//! Layering the sources: the embedded defaults, then the TOML file (if any), then the
//! `OAI_INGEST__<SECTION>__<KEY>` environment, deserialized into the raw form. An error from
//! the `config` crate is turned into one that names the dotted key.

use std::collections::HashMap;
use std::path::Path;

use super::raw::Raw;
use super::{ConfigError, DEFAULT_TOML, ENV_PREFIX};

pub(super) fn read_raw(file: Option<&Path>, env: &HashMap<String, String>) -> Result<Raw, ConfigError> {
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
    if let Some(stray) = stray_variable(env) {
        return Err(stray);
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

/// The sections a variable can name, for the suggestion when one is misspelt.
const SECTIONS: [&str; 11] = [
    "openai",
    "audit_logs",
    "inventory",
    "compliance",
    "sink",
    "retry",
    "state",
    "log",
    "server",
    "shutdown",
    "guardrails",
];

/// The first variable that starts like ours but maps to no key (`OAI_INGEST_SINK_URL`, one
/// underscore): silently ignoring it would run the daemon with a setting the operator
/// believes is in force. `OAI_INGEST_CONFIG` (the config file) is the one such name in use.
fn stray_variable(env: &HashMap<String, String>) -> Option<ConfigError> {
    let mut names: Vec<&String> = env
        .keys()
        .filter(|k| k.starts_with(ENV_PREFIX) && !k.starts_with(&format!("{ENV_PREFIX}__")))
        .filter(|k| k.as_str() != super::CONFIG_ENV)
        .collect();
    names.sort();
    let name = names.first()?;
    let rest = name
        .trim_start_matches(ENV_PREFIX)
        .trim_start_matches('_')
        .to_ascii_lowercase();
    let suggestion = SECTIONS
        .iter()
        .find_map(|section| {
            let key = rest.strip_prefix(section)?.strip_prefix('_')?;
            Some(format!(
                " (did you mean {ENV_PREFIX}__{}__{}?)",
                section.to_ascii_uppercase(),
                key.to_ascii_uppercase()
            ))
        })
        .unwrap_or_default();
    Some(ConfigError::new(
        name.as_str(),
        format!(
            "this variable sets no configuration key: keys are set with {ENV_PREFIX}__<SECTION>__<KEY>, \
             two underscores each{suggestion}; the config file is {}",
            super::CONFIG_ENV
        ),
    ))
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
