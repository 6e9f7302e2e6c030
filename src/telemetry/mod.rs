//! Logging: JSON or human-readable lines on stderr, filtered by `log.level` or `RUST_LOG`.
//! Every line passes through `crate::secrets::redact` on its way out, so no configured secret
//! reaches the log whatever carried it there (an upstream error body, a URL, a debug field).
//! `json`: one flat object per line, span fields beside the event's (`json`); the field
//! names follow the convention in README's "Logs".

mod json;

use std::io::{self, Write};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::writer::MakeWriterExt;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumString, strum::IntoStaticStr, strum::VariantNames)]
#[strum(serialize_all = "snake_case")]
pub enum LogFormat {
    Json,
    Pretty,
}

/// Logging (`[log]`).
#[derive(Debug, Clone)]
pub struct LogSettings {
    pub format: LogFormat,
    /// An `EnvFilter` directive; `RUST_LOG` wins when set.
    pub level: String,
    /// The least time between two progress lines of one stream's backfill.
    pub progress_interval: std::time::Duration,
}

/// The level words a directive may use.
const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

/// `level` if it is a filter that says what to log: a level word, or comma-separated
/// directives each of which names a level (`info,openai_audit_ingest::sink=debug`). A bare
/// word that is no level would be read as a target name and silence everything else, so it
/// is refused.
pub fn check_level(level: &str) -> Result<String, String> {
    let level = level.trim();
    let words = LEVELS.join(", ");
    if level.is_empty() {
        return Err(format!(
            "must not be empty; one of {words}, or directives like `info,hyper=warn`"
        ));
    }
    for directive in level.split(',').map(str::trim) {
        let named = directive
            .rsplit_once('=')
            .map_or(directive, |(_, level)| level)
            .to_ascii_lowercase();
        if !LEVELS.contains(&named.as_str()) {
            return Err(format!(
                "`{directive}` names no level: use one of {words}, or `target=level` directives like `info,hyper=warn`"
            ));
        }
    }
    EnvFilter::try_new(level).map_err(|e| format!("`{level}` is not a log filter: {e}"))?;
    Ok(level.to_string())
}

/// Installs the global subscriber. Safe to call more than once (later calls are ignored),
/// which keeps tests that build several apps in one process simple.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let writer = Redacting.with_max_level(tracing::Level::TRACE);
    let result = match settings.format {
        LogFormat::Json => tracing_subscriber::fmt()
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .event_format(json::FlatJson)
            .with_env_filter(filter)
            .with_writer(writer)
            .try_init(),
        LogFormat::Pretty => tracing_subscriber::fmt()
            .with_target(false)
            .with_env_filter(filter)
            .with_writer(writer)
            .try_init(),
    };
    // Already installed (tests, or demo after simulate): keep the first.
    let _ = result;
}

/// Standard error, with every configured secret removed from what is written. The formatter
/// writes each event as one buffer, so a secret is never split between two writes.
#[derive(Debug, Clone, Copy)]
struct Redacting;

impl<'a> MakeWriter<'a> for Redacting {
    type Writer = RedactingStderr;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingStderr
    }
}

/// One event's way to standard error.
#[derive(Debug)]
struct RedactingStderr;

impl Write for RedactingStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        // Nobody reading standard error (the pipe closed) is no reason to stop shipping: the
        // line is dropped, never a panic.
        let _ = io::stderr().write_all(crate::secrets::redact(&text).as_bytes());
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let _ = io::stderr().flush();
        Ok(())
    }
}

/// Writes `text` and a newline to standard error for an operator (redacted), ignoring a
/// closed pipe: `eprintln!` would panic there.
pub fn say_err(text: &str) {
    let _ = writeln!(io::stderr(), "{}", crate::secrets::redact(text));
}

/// Writes `text` to standard output, ignoring a closed pipe (`print!` would panic there).
pub fn say_out(text: &str) {
    let mut out = io::stdout();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_level_must_name_a_level_and_directives_may_name_targets() {
        for good in ["info", "DEBUG", "warn,openai_audit_ingest::sink=debug", "off"] {
            assert!(check_level(good).is_ok(), "{good}");
        }
        for bad in ["verbose", "", "info,hyper", "inf"] {
            let problem = check_level(bad).expect_err(bad);
            assert!(
                problem.contains("level") || problem.contains("empty"),
                "{bad}: {problem}"
            );
        }
    }
}
