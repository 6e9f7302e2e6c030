//! The authenticated JSON client shared by the Admin API and the Compliance platform: rate
//! limit → request → classify → retry (transient failures and malformed bodies, a bounded
//! number of times) → typed body, or an [`ApiError`] that carries what an operator needs
//! (status, OpenAI's error type/code/message, `x-request-id`) and never the key.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use backon::Retryable;
use reqwest::{Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use url::Url;

use super::rate_limit::RateLimit;
use crate::metrics::Metrics;
use crate::retry::RetrySettings;
use crate::retry::{self, Class, Schedule};

/// How many times one request is tried before its caller sees the failure (the caller's own
/// cycle then backs off and tries again later, so nothing is given up for good).
pub const DEFAULT_ATTEMPTS: usize = 6;

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
    retry_after: Option<Duration>,
    class: Class,
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
            class: retry::classify_status(status_code),
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

    fn local(service: &'static str, route: &'static str, kind: ApiErrorKind, class: Class, message: String) -> Self {
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

/// Replaces anything that looks like an OpenAI key (`sk-…`) with `sk-[redacted]`, so even the
/// masked form OpenAI echoes in a 401 never reaches a log line.
pub fn redact_keys(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
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

/// How an API counts requests against its budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitScope {
    /// One budget for every route (the Admin API).
    Shared,
    /// A budget per method and route (the Compliance platform).
    PerRoute,
}

/// One authenticated API.
#[derive(Debug, Clone)]
pub struct ApiClient {
    /// `openai` or `compliance`: labels logs, metrics and errors.
    service: &'static str,
    /// Whether the budget is one for the whole API or one per route.
    scope: LimitScope,
    /// The one client builder's client: rustls, timeouts, redirects off.
    http: reqwest::Client,
    /// The API root every path is joined to (ends in `/`).
    base: Url,
    /// The bearer key; exposed only when the header is built.
    key: SecretString,
    /// The request budget, shared by every clone of this client.
    limiter: Arc<RateLimit>,
    /// Backoff between attempts of one request.
    schedule: Schedule,
    /// Tries per request before the caller sees the failure.
    attempts: usize,
    metrics: Metrics,
}

/// Where an API lives and how to reach it: what each service's settings provide.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The configuration key of the credential, for the error when it is missing.
    pub key_name: &'static str,
    pub key: Option<SecretString>,
    /// API root, ending in `/`.
    pub base: Url,
    pub timeout: Duration,
    pub requests_per_minute: NonZeroU32,
}

/// Why an API client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientBuildError {
    #[error("{0} is not set")]
    NoKey(&'static str),
    #[error("failed to build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

impl ApiClient {
    /// A client for `service` at `endpoint`, with its own request budget counted per `scope`;
    /// every clone shares that budget.
    pub fn build(
        service: &'static str,
        scope: LimitScope,
        endpoint: Endpoint,
        retry: RetrySettings,
        metrics: Metrics,
    ) -> Result<Self, ClientBuildError> {
        let key = endpoint.key.ok_or(ClientBuildError::NoKey(endpoint.key_name))?;
        Ok(Self {
            service,
            scope,
            http: super::http::client(endpoint.timeout)?,
            base: endpoint.base,
            key,
            limiter: Arc::new(RateLimit::per_minute(endpoint.requests_per_minute)),
            schedule: Schedule::new(retry),
            attempts: DEFAULT_ATTEMPTS,
            metrics,
        })
    }

    /// The same client trying each request at most `attempts` times (for `check`).
    pub fn with_attempts(mut self, attempts: usize) -> Self {
        self.attempts = attempts.max(1);
        self
    }

    /// The underlying HTTP client, for requests that must not carry the key.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Resolves `path` against the API root.
    pub fn url(&self, path: &str) -> Result<Url, ApiError> {
        self.base.join(path.trim_start_matches('/')).map_err(|e| {
            ApiError::local(
                self.service,
                "url",
                ApiErrorKind::Rejected,
                Class::Rejected,
                format!("bad path `{path}`: {e}"),
            )
        })
    }

    /// GET `path` with `query` and decode a JSON body, retrying transient failures and
    /// malformed bodies.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        route: &'static str,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, ApiError> {
        let url = self.url(path)?;
        let attempt = || async {
            let response = self.send(route, &url, query).await?;
            let request_id = request_id(&response);
            let bytes = response.bytes().await.map_err(|e| self.transport_error(route, &e))?;
            serde_json::from_slice::<T>(&bytes).map_err(|e| {
                let mut err = ApiError::local(
                    self.service,
                    route,
                    ApiErrorKind::Malformed,
                    Class::Transient,
                    format!("the response body is not what the API documents: {e}"),
                );
                err.request_id = request_id;
                err
            })
        };
        self.with_retries(route, attempt).await
    }

    /// GET `path` and return the successful response itself (status 2xx or 3xx), for callers
    /// that read headers or stream the body. Retries like [`ApiClient::get_json`].
    pub async fn get_response(
        &self,
        route: &'static str,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Response, ApiError> {
        let url = self.url(path)?;
        self.with_retries(route, || self.send(route, &url, query)).await
    }

    async fn with_retries<T, F, Fut>(&self, route: &'static str, attempt: F) -> Result<T, ApiError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        let mut tries = 0usize;
        let bounds = self.schedule.builder(Some(self.attempts.saturating_sub(1)));
        attempt
            .retry(bounds)
            .when(ApiError::is_transient)
            .adjust(|err, bound| Schedule::delay(bound, err.retry_after))
            .notify(|err, delay| {
                tries += 1;
                self.metrics.retry(self.service);
                tracing::warn!(
                    service = self.service,
                    route,
                    attempt = tries,
                    delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    status = err.status,
                    error_type = err.error_type.as_deref(),
                    code = err.code.as_deref(),
                    request_id = err.request_id.as_deref(),
                    error = %err,
                    "retrying API request"
                );
            })
            .await
    }

    async fn send(&self, route: &'static str, url: &Url, query: &[(&str, String)]) -> Result<Response, ApiError> {
        self.limiter
            .wait(match self.scope {
                LimitScope::Shared => self.service,
                LimitScope::PerRoute => route,
            })
            .await;
        let response = self
            .http
            .get(url.clone())
            .query(query)
            .bearer_auth(self.key.expose_secret())
            .send()
            .await
            .map_err(|e| self.transport_error(route, &e))?;
        let status = response.status();
        self.metrics.api_response(self.service, status.as_str());
        if status.is_success() || status.is_redirection() {
            return Ok(response);
        }
        Err(self.status_error(route, response).await)
    }

    fn transport_error(&self, route: &'static str, err: &reqwest::Error) -> ApiError {
        let class = retry::classify_transport(err);
        let kind = if class == Class::Transient {
            ApiErrorKind::Unavailable
        } else {
            ApiErrorKind::Rejected
        };
        // reqwest's message names the URL but never the Authorization header.
        let message = crate::errors::chain(err);
        ApiError::local(self.service, route, kind, class, redact_keys(&message))
    }

    async fn status_error(&self, route: &'static str, response: Response) -> ApiError {
        let status = response.status();
        let request_id = request_id(&response);
        let retry_after = retry::retry_after(response.headers(), SystemTime::now());
        let body = response.bytes().await.unwrap_or_default();
        let (error_type, code, message) = match serde_json::from_slice::<ErrorResponse>(&body) {
            Ok(e) => (e.error.error_type, e.error.code, e.error.message),
            Err(_) => {
                let text = String::from_utf8_lossy(&body);
                let text: String = text.chars().take(300).collect();
                (
                    None,
                    None,
                    if text.trim().is_empty() {
                        status.to_string()
                    } else {
                        text
                    },
                )
            }
        };
        let kind = match status {
            StatusCode::UNAUTHORIZED => ApiErrorKind::Unauthorized,
            StatusCode::FORBIDDEN => ApiErrorKind::Forbidden,
            StatusCode::NOT_FOUND => ApiErrorKind::NotFound,
            s if retry::classify_status(s) == Class::Transient => ApiErrorKind::Unavailable,
            _ => ApiErrorKind::Rejected,
        };
        ApiError(Box::new(ApiErrorDetail {
            kind,
            service: self.service,
            route,
            status: Some(status.as_u16()),
            error_type,
            code,
            message: redact_keys(&message),
            request_id,
            retry_after,
            class: retry::classify_status(status),
        }))
    }
}

fn request_id(response: &Response) -> Option<String> {
    response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

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
