//! The process-wide registry of configured secret values (keys, tokens, passwords, header
//! values), and redaction of their exact values from any text, whatever their shape. The
//! configuration registers each secret as it is loaded (a reload registers the new values
//! beside the old ones); log lines, command output and error text from upstream servers pass
//! through [`redact`] before anyone sees them, so a server that echoes a key back in an error
//! body cannot put it in a log.

use std::sync::{LazyLock, RwLock};

use secrecy::{ExposeSecret, SecretString};

/// What a redacted value is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Values shorter than this are not redacted from free text: a four-letter header value such
/// as `json` would otherwise blank out ordinary words in every log line. Keys and tokens are
/// far longer.
pub const MIN_SECRET_LEN: usize = 6;

/// Every registered secret, in each form it can take in output: as is, and escaped the way a
/// JSON log line writes it when that differs.
static REGISTRY: LazyLock<RwLock<Vec<SecretString>>> = LazyLock::new(|| RwLock::new(Vec::new()));

/// Remembers `value` so that [`redact`] removes it from any text from now on.
pub fn register(value: &str) {
    let value = value.trim();
    if value.chars().count() < MIN_SECRET_LEN {
        return;
    }
    let mut forms = vec![value.to_string()];
    if let Ok(quoted) = serde_json::to_string(value) {
        let escaped = quoted[1..quoted.len() - 1].to_string();
        if escaped != value {
            forms.push(escaped);
        }
    }
    let mut registry = REGISTRY.write().unwrap_or_else(|e| e.into_inner());
    for form in forms {
        if !registry.iter().any(|known| known.expose_secret() == form) {
            registry.push(SecretString::from(form));
        }
    }
    // Longest first, so a secret that contains another is removed whole.
    registry.sort_by_key(|s| std::cmp::Reverse(s.expose_secret().len()));
}

/// `text` with every registered secret replaced by [`REDACTED`].
pub fn redact(text: &str) -> String {
    let registry = REGISTRY.read().unwrap_or_else(|e| e.into_inner());
    let mut out: Option<String> = None;
    for secret in registry.iter() {
        let secret = secret.expose_secret();
        let current = out.as_deref().unwrap_or(text);
        if current.contains(secret) {
            out = Some(current.replace(secret, REDACTED));
        }
    }
    out.unwrap_or_else(|| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registered_value_of_any_shape_is_removed_from_any_text() {
        register("cmpl_9f3a7c1e-unusual-shape");
        register("tok\"with\\quotes-42");
        let text = "HTTP 401: key cmpl_9f3a7c1e-unusual-shape is not valid; again cmpl_9f3a7c1e-unusual-shape";
        assert_eq!(redact(text), "HTTP 401: key [redacted] is not valid; again [redacted]");
        let json_line = serde_json::json!({"error": "echo tok\"with\\quotes-42"}).to_string();
        assert!(!redact(&json_line).contains("quotes-42"), "{}", redact(&json_line));
        assert_eq!(redact("nothing secret here"), "nothing secret here");
    }

    #[test]
    fn very_short_values_are_not_treated_as_secrets_of_free_text() {
        register("json");
        assert_eq!(redact("content type json"), "content type json");
    }
}
