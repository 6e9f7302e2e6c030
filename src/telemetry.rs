//! Logging: JSON or human-readable lines on stderr, filtered by `log.level` or `RUST_LOG`.
//! Every line passes through `crate::secrets::redact` on its way out, so no configured secret
//! reaches the log whatever carried it there (an upstream error body, a URL, a debug field).

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
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_target(true)
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
        io::stderr().write_all(crate::secrets::redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}
