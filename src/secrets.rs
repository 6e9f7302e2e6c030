//! The process-wide registry of configured secret values (keys, tokens, passwords, header
//! values), and redaction of their exact values from any text, whatever their shape. The
//! configuration registers each secret as it is loaded (a reload registers the new values
//! beside the old ones); log lines, command output and error text from upstream servers pass
//! through [`redact`] before anyone sees them, so a server that echoes a key back in an error
//! body cannot put it in a log. A [`Rotating`] secret is one that may be replaced while the
//! daemon runs (SIGHUP re-reads `<key>_file`); [`redact_url`] is how any URL is printed.

use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, RwLock};

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

/// Reads a secret file: its content without surrounding whitespace; an empty file is an
/// error (a half-written rotation must not blank the key).
pub fn read_file(path: &Path) -> Result<SecretString, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("`{}` is empty", path.display()));
    }
    Ok(SecretString::from(text.to_string()))
}

/// A configured secret whose value may change while the daemon runs: one read from
/// `<key>_file` is read again on request (SIGHUP; an upstream 401); one given inline stays
/// as it is. Clones share the value, so every client built from the settings sees a rotation.
#[derive(Clone)]
pub struct Rotating {
    /// The dotted configuration key (`openai.admin_key`), for logs.
    key: Arc<str>,
    /// Where the value comes from, when it comes from a file.
    file: Option<PathBuf>,
    /// The current value, shared by every clone.
    value: Arc<RwLock<SecretString>>,
}

impl std::fmt::Debug for Rotating {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rotating")
            .field("key", &self.key)
            .field("file", &self.file)
            .field("value", &REDACTED)
            .finish()
    }
}

/// What re-reading a [`Rotating`] secret found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reread {
    /// The file holds a new value, now in use.
    Changed,
    /// The file holds the value already in use.
    Unchanged,
    /// The value was given inline: there is nothing to re-read.
    Inline,
    /// The file could not be read; the old value stays in use.
    Failed(String),
}

impl Rotating {
    /// A secret read from `file` for `key` (its value registered for redaction).
    pub fn from_file(key: &str, file: PathBuf, value: SecretString) -> Self {
        register(value.expose_secret());
        Self {
            key: Arc::from(key),
            file: Some(file),
            value: Arc::new(RwLock::new(value)),
        }
    }

    /// A secret given inline for `key`, fixed for the life of the process.
    pub fn fixed(key: &str, value: SecretString) -> Self {
        register(value.expose_secret());
        Self {
            key: Arc::from(key),
            file: None,
            value: Arc::new(RwLock::new(value)),
        }
    }

    /// The dotted configuration key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The value in use now.
    pub fn current(&self) -> SecretString {
        self.value.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Reads the file again; a new value is registered for redaction before it is used.
    pub fn reread(&self) -> Reread {
        let Some(file) = &self.file else {
            return Reread::Inline;
        };
        let fresh = match read_file(file) {
            Ok(fresh) => fresh,
            Err(problem) => return Reread::Failed(problem),
        };
        let mut value = self.value.write().unwrap_or_else(|e| e.into_inner());
        if value.expose_secret() == fresh.expose_secret() {
            return Reread::Unchanged;
        }
        register(fresh.expose_secret());
        *value = fresh;
        Reread::Changed
    }
}

/// Re-reads every secret in `secrets` that came from a file (SIGHUP) and logs what happened
/// by key name — never a value: which changed, which stayed, which could not be read (those
/// keep their old value).
pub fn reread_all(secrets: &[Rotating]) {
    let mut changed = Vec::new();
    let mut unchanged = Vec::new();
    for secret in secrets {
        match secret.reread() {
            Reread::Changed => changed.push(secret.key()),
            Reread::Unchanged => unchanged.push(secret.key()),
            Reread::Inline => {}
            Reread::Failed(problem) => tracing::warn!(
                key = secret.key(),
                error.kind = "unreadable",
                error.message = %problem,
                "failed to re-read a secret file; the value in use stays"
            ),
        }
    }
    tracing::info!(
        changed = %changed.join(","),
        unchanged = %unchanged.join(","),
        "secret files re-read"
    );
}

/// `url` as it may be printed: no user or password, and every query value replaced by
/// [`REDACTED`] (a `?token=` is a credential as much as a header is).
pub fn redact_url(url: &url::Url) -> String {
    let mut bare = url.clone();
    let _ = bare.set_username("");
    let _ = bare.set_password(None);
    bare.set_query(None);
    bare.set_fragment(None);
    let mut text = bare.to_string();
    if url.query().is_some() {
        let pairs: Vec<String> = url
            .query_pairs()
            .map(|(name, _)| format!("{name}={REDACTED}"))
            .collect();
        text.push('?');
        text.push_str(&pairs.join("&"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_printed_url_keeps_neither_its_userinfo_nor_its_query_values() {
        let url = url::Url::parse("https://user:pa55word@ingest.example.com:8443/in?token=abc123&x=1#f").expect("url");
        assert_eq!(
            redact_url(&url),
            "https://ingest.example.com:8443/in?token=[redacted]&x=[redacted]"
        );
        let plain = url::Url::parse("https://ingest.example.com/in").expect("url");
        assert_eq!(redact_url(&plain), "https://ingest.example.com/in");
    }

    #[test]
    fn a_rotated_file_is_picked_up_and_registered_and_a_broken_one_keeps_the_old_value() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("key");
        std::fs::write(&path, "first-value-1234\n").expect("write");
        let secret = Rotating::from_file("openai.admin_key", path.clone(), read_file(&path).expect("read"));
        let copy = secret.clone();
        assert_eq!(secret.reread(), Reread::Unchanged);
        std::fs::write(&path, "second-value-5678").expect("write");
        assert_eq!(secret.reread(), Reread::Changed);
        assert_eq!(
            copy.current().expose_secret(),
            "second-value-5678",
            "clones share the value"
        );
        assert_eq!(redact("log second-value-5678"), "log [redacted]");
        std::fs::write(&path, "  \n").expect("write");
        assert!(matches!(secret.reread(), Reread::Failed(_)));
        assert_eq!(copy.current().expose_secret(), "second-value-5678");
        let inline = Rotating::fixed("sink.auth_token", SecretString::from("inline-token-1"));
        assert_eq!(inline.reread(), Reread::Inline);
    }

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
