//! Small JSON-writing helpers the encoders share: a quoted string, epoch times.

use chrono::{DateTime, Utc};

/// `text` as a JSON string literal, quotes included.
pub fn quoted(text: &str) -> String {
    // Serializing a `str` cannot fail.
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_string())
}

/// Nanoseconds since the epoch, as OTLP and Loki want them (a decimal string).
pub fn nanos(at: DateTime<Utc>) -> String {
    match at.timestamp_nanos_opt() {
        Some(ns) => ns.max(0).to_string(),
        // Outside ±292 years: clamp rather than fail; such a time is wrong upstream anyway.
        None => "0".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_and_times_are_decimal_nanoseconds() {
        assert_eq!(quoted("a\"b\n"), r#""a\"b\n""#);
        let at = DateTime::parse_from_rfc3339("2026-07-31T21:30:46.120Z")
            .expect("time")
            .with_timezone(&Utc);
        assert_eq!(nanos(at), "1785533446120000000");
    }
}
