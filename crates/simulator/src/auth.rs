//! Bearer-key checks, answering like OpenAI does and never echoing a whole key back.

use super::http::{ApiError, unauthorized};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

/// The bearer token of a request, if it carries one.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// `Ok` when the request carries `expected`; otherwise OpenAI's 401.
pub(crate) fn require(headers: &HeaderMap, expected: &str) -> Result<(), ApiError> {
    match bearer(headers) {
        Some(got) if constant_time_eq(got.as_bytes(), expected.as_bytes()) => Ok(()),
        Some(got) => Err(unauthorized(
            format!(
                "Incorrect API key provided: {}. You can find your API key at https://platform.openai.com/account/api-keys.",
                mask(got)
            ),
            Some("invalid_api_key"),
        )),
        None => Err(unauthorized(
            "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).".to_owned(),
            None,
        )),
    }
}

/// OpenAI's redaction: a recognisable prefix, stars, the last four characters. Short keys
/// are starred out entirely so nothing secret is ever reflected.
pub(crate) fn mask(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() < 16 {
        return "*".repeat(chars.len().max(4));
    }
    let prefix_len = key
        .find(|c: char| !(c.is_ascii_alphabetic() || c == '-'))
        .unwrap_or(3)
        .min(9);
    let head: String = chars[..prefix_len].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - prefix_len - 4))
}

/// Comparison whose time does not depend on where the first difference is.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking_keeps_only_the_prefix_and_last_four() {
        let key = "sk-admin-abcdefghijklmnopqrstuvwxyz0123";
        let m = mask(key);
        assert!(m.starts_with("sk-admin-"));
        assert!(m.ends_with("0123"));
        assert!(!m.contains("abcdefgh"));
        assert_eq!(m.len(), key.len());
        assert_eq!(mask("short"), "*****");
    }
}
