//! Wall time in microseconds and the two ISO 8601 forms the Compliance platform writes.
//! A leaf, like `ids`.

use chrono::{DateTime, SecondsFormat, Utc};

/// Current wall time in microseconds.
pub(crate) fn now_micros() -> i64 {
    Utc::now().timestamp_micros()
}

/// ISO 8601 UTC with microseconds, as the platform writes timestamps.
pub(crate) fn iso_micros(us: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(us)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// ISO 8601 UTC, seconds unless the instant has a fraction (file `end_time`s).
pub(crate) fn iso_auto(us: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(us)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::AutoSi, true)
}
