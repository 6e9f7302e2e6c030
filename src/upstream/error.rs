//! What a failed upstream call reports: an [`ApiError`] that carries what an operator needs
//! (status, OpenAI's error type/code/message, `x-request-id`) and never a key, its stable
//! kind, OpenAI's error envelope, and the redaction every upstream text passes through.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::retry::Class;

/// What kind of failure, as a stable label for logs, metrics and branching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiErrorKind {
    /// 401: the key is invalid, expired or revoked.
    Unauthorized,
    /// 403: the key lacks a permission or scope.
    Forbidden,
    /// 404.
    NotFound,
    /// Another 4xx (400, 422, …): the request itself is refused.
    Rejected,
    /// Transient failures (network, 429, 5xx) that outlasted the retries.
    Unavailable,
    /// A 2xx whose body is not what the API documents.
    Malformed,
    /// A body larger than the configured cap (`openai.max_response_bytes`).
    TooLarge,
    /// A 3xx where the API documents an answer: redirects are never followed with a key.
    Redirected,
}

impl ApiErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::Rejected => "rejected",
            Self::Unavailable => "unavailable",
            Self::Malformed => "malformed",
            Self::TooLarge => "too_large",
            Self::Redirected => "redirected",
        }
    }
}

/// A failed API call, safe to log. Boxed: errors are the cold path and stay small to move.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct ApiError(Box<ApiErrorDetail>);

impl std::ops::Deref for ApiError {
    type Target = ApiErrorDetail;
    fn deref(&self) -> &ApiErrorDetail {
        &self.0
    }
}

impl std::ops::DerefMut for ApiError {
    fn deref_mut(&mut self) -> &mut ApiErrorDetail {
        &mut self.0
    }
}

/// What an [`ApiError`] knows.
#[derive(Debug, Clone)]
pub struct ApiErrorDetail {
    pub kind: ApiErrorKind,
    pub service: &'static str,
    pub route: &'static str,
    pub status: Option<u16>,
    /// OpenAI's `error.type`.
    pub error_type: Option<String>,
    /// OpenAI's `error.code`.
    pub code: Option<String>,
    /// OpenAI's `error.message` (key fragments redacted), or what went wrong locally.
    pub message: String,
    /// `x-request-id`, for OpenAI support.
    pub request_id: Option<String>,
    /// What `Retry-After` asked for, if anything.
    pub(super) retry_after: Option<Duration>,
    /// Whether another attempt may succeed.
    pub(super) class: Class,
}

impl std::fmt::Display for ApiErrorDetail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "failed to call {} {}: ", self.service, self.route)?;
        if let Some(status) = self.status {
            write!(f, "HTTP {status}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl From<ApiErrorDetail> for ApiError {
    fn from(detail: ApiErrorDetail) -> Self {
        Self(Box::new(detail))
    }
}

#[cfg(test)]
impl ApiErrorDetail {
    /// A response error as the client would build it, for tests of what callers do with it.
    pub fn for_tests(kind: ApiErrorKind, status: u16, message: &str) -> Self {
        use reqwest::StatusCode;
        let status_code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
        Self {
            kind,
            service: "openai",
            route: "test",
            status: Some(status),
            error_type: None,
            code: None,
            message: message.to_string(),
            request_id: None,
            retry_after: None,
            class: crate::retry::classify_status(status_code),
        }
    }
}

impl ApiError {
    /// `HTTP <status>: <message> (request id <id>)`, the part of a report every caller shares.
    pub fn summary(&self) -> String {
        format!(
            "HTTP {}: {}{}",
            self.status.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
            self.message,
            self.request_id
                .as_deref()
                .map(|r| format!(" (request id {r})"))
                .unwrap_or_default()
        )
    }

    pub(super) fn local(
        service: &'static str,
        route: &'static str,
        kind: ApiErrorKind,
        class: Class,
        message: String,
    ) -> Self {
        Self(Box::new(ApiErrorDetail {
            kind,
            service,
            route,
            status: None,
            error_type: None,
            code: None,
            message,
            request_id: None,
            retry_after: None,
            class,
        }))
    }

    /// Whether another attempt may succeed.
    pub fn is_transient(&self) -> bool {
        self.class == Class::Transient
    }
}

/// Upstream text made safe to log: every configured secret's exact value is removed (see
/// `crate::secrets`), then anything that looks like an OpenAI key (`sk-…`), so even the
/// masked form OpenAI echoes in a 401 never reaches a log line.
pub fn redact_keys(text: &str) -> String {
    let text = crate::secrets::redact(text);
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(pos) = rest.find("sk-") {
        out.push_str(&rest[..pos]);
        out.push_str("sk-[redacted]");
        let tail = &rest[pos + 3..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '*' | '.')))
            .unwrap_or(tail.len());
        // A sentence-ending dot is not part of the key (masked keys contain `...` inside).
        let end = tail[..end].trim_end_matches('.').len();
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// OpenAI's error envelope (`ErrorResponse`: `{"error": {message, type, param, code}}`), which
/// the Compliance platform is assumed to share; a body of another shape is kept as text.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ErrorResponse {
    pub error: ErrorBody,
}

/// `Error`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ErrorBody {
    pub message: String,
    #[serde(rename = "type", default)]
    pub error_type: Option<String>,
    #[serde(default)]
    pub param: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configured_secret_of_any_shape_is_redacted_from_upstream_text() {
        crate::secrets::register("cmpl-0a1b2c3d4e5f-workspace-key");
        let echoed = "Invalid key cmpl-0a1b2c3d4e5f-workspace-key for this workspace";
        assert_eq!(redact_keys(echoed), "Invalid key [redacted] for this workspace");
    }

    #[test]
    fn key_like_strings_are_redacted_wherever_they_appear() {
        let text = "Incorrect API key provided: sk-admin-********************wxyz. You can find";
        let out = redact_keys(text);
        assert_eq!(out, "Incorrect API key provided: sk-[redacted]. You can find");
        assert_eq!(redact_keys("no keys here"), "no keys here");
        assert_eq!(
            redact_keys("a sk-proj-abc_12 and sk-x"),
            "a sk-[redacted] and sk-[redacted]"
        );
    }
}
