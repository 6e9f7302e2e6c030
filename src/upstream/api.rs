//! The authenticated JSON client shared by the Admin API and the Compliance platform: rate
//! limit → request → classify → retry (transient failures and malformed bodies, a bounded
//! number of times) → typed body with its `x-request-id`, or an [`ApiError`] (see `error`).
//! Only a 2xx is an answer; a 3xx is accepted by the one call that expects it
//! ([`ApiClient::get_redirect`], the compliance download). A body larger than the configured
//! cap fails the request instead of filling memory.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use backon::Retryable;
use reqwest::{Response, StatusCode};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use url::Url;

pub use super::error::{ApiError, ApiErrorDetail, ApiErrorKind, ErrorBody, ErrorResponse, redact_keys};
use super::http::TlsSettings;
use super::rate_limit::{Lane, RateLimit};
use crate::metrics::Metrics;
use crate::retry::RetrySettings;
use crate::retry::{self, Class, Schedule};
use crate::secrets::{Reread, Rotating};

/// The default of `openai.max_response_bytes`: far above any documented page (100 audit-log
/// records are well under 1 MiB), far below what would hurt the process.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 64 * 1024 * 1024;

/// A decoded answer and OpenAI's `x-request-id` for it, so an error found in the body later
/// (a cursor that cannot advance, say) can still name the request for OpenAI support.
#[derive(Debug, Clone)]
pub struct Fetched<T> {
    pub body: T,
    pub request_id: Option<String>,
    /// The `openai-organization` header: the organization the key belongs to, as the API
    /// says (what `check` compares `openai.organization_id` with).
    pub organization: Option<String>,
}

/// Which statuses a call takes as its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A 2xx; anything else is an error whatever its body.
    Success,
    /// A 3xx (the compliance download's 307) or a 2xx for the caller to reject.
    Redirect,
}

/// How many times one request is tried before its caller sees the failure (the caller's own
/// cycle then backs off and tries again later, so nothing is given up for good).
pub const DEFAULT_ATTEMPTS: usize = 6;

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
    /// The bearer key; exposed only when the header is built. Read again from its file once
    /// when the API answers 401 (a rotation the daemon was not told about yet).
    key: Rotating,
    /// The request budget, shared by every clone of this client.
    limiter: Arc<RateLimit>,
    /// Which of the budget's lanes this clone's requests travel in.
    lane: Lane,
    /// Backoff between attempts of one request.
    schedule: Schedule,
    /// Tries per request before the caller sees the failure.
    attempts: usize,
    /// The largest JSON body read (`openai.max_response_bytes`).
    max_response_bytes: u64,
    metrics: Metrics,
}

/// Where an API lives and how to reach it: what each service's settings provide.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The configuration key of the credential, for the error when it is missing.
    pub key_name: &'static str,
    pub key: Option<Rotating>,
    /// API root, ending in `/`.
    pub base: Url,
    /// How long connecting, and each wait for more bytes, may take.
    pub timeout: Duration,
    pub requests_per_minute: NonZeroU32,
    /// The largest JSON body accepted.
    pub max_response_bytes: u64,
    /// Extra trusted roots (`<section>.ca_file`).
    pub tls: TlsSettings,
    /// The share of the budget background requests may use (1.0: all of it).
    pub background_share: f64,
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
            http: super::http::streaming_client(endpoint.timeout, &endpoint.tls)?,
            base: endpoint.base,
            key,
            limiter: Arc::new(RateLimit::with_background_share(
                endpoint.requests_per_minute,
                endpoint.background_share,
            )),
            lane: Lane::Priority,
            schedule: Schedule::new(retry),
            attempts: DEFAULT_ATTEMPTS,
            max_response_bytes: endpoint.max_response_bytes,
            metrics,
        })
    }

    /// The same client (same budget) sending its requests in `lane`.
    pub fn with_lane(mut self, lane: Lane) -> Self {
        self.lane = lane;
        self
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
    ) -> Result<Fetched<T>, ApiError> {
        self.get_parsed(route, path, query, |bytes| serde_json::from_slice::<T>(bytes))
            .await
    }

    /// [`ApiClient::get_json`] with the body decoded by `parse`, for an API whose bodies
    /// come in more than one shape.
    pub async fn get_parsed<T>(
        &self,
        route: &'static str,
        path: &str,
        query: &[(&str, String)],
        parse: impl Fn(&[u8]) -> Result<T, serde_json::Error>,
    ) -> Result<Fetched<T>, ApiError> {
        let url = self.url(path)?;
        let attempt = || async {
            let response = self.send(route, &url, query, Expect::Success).await?;
            let request_id = request_id(&response);
            let organization = response
                .headers()
                .get("openai-organization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let bytes = self.read_capped(route, response).await.map_err(|mut err| {
                err.request_id.clone_from(&request_id);
                err
            })?;
            match parse(&bytes) {
                Ok(body) => Ok(Fetched {
                    body,
                    request_id,
                    organization,
                }),
                Err(e) => {
                    let mut err = ApiError::local(
                        self.service,
                        route,
                        ApiErrorKind::Malformed,
                        Class::Transient,
                        format!("the response body is not what the API documents: {e}"),
                    );
                    err.request_id = request_id;
                    Err(err)
                }
            }
        };
        self.with_retries(route, attempt).await
    }

    /// GET `path` and return the redirect it answers with (or a 2xx, for the caller to refuse),
    /// for the one call whose documented answer is a 3xx: the compliance download's 307,
    /// which the caller follows by hand without the key. Retries like [`ApiClient::get_json`].
    pub async fn get_redirect(&self, route: &'static str, path: &str) -> Result<Response, ApiError> {
        let url = self.url(path)?;
        self.with_retries(route, || self.send(route, &url, &[], Expect::Redirect))
            .await
    }

    /// The body, read chunk by chunk and refused as soon as it passes the cap (or announces
    /// that it will), so one huge page cannot take the process's memory with it.
    async fn read_capped(&self, route: &'static str, mut response: Response) -> Result<Vec<u8>, ApiError> {
        let cap = self.max_response_bytes;
        let too_large = |seen: u64| {
            ApiError::local(
                self.service,
                route,
                ApiErrorKind::TooLarge,
                Class::Rejected,
                format!(
                    "the response body is larger than openai.max_response_bytes ({cap} bytes; at least {seen} announced or read); raise that setting if the upstream really sends pages this large"
                ),
            )
        };
        let announced = response.content_length().unwrap_or(0);
        if announced > cap {
            return Err(too_large(announced));
        }
        // Sized once when the length is announced, instead of growing by doubling.
        let mut body = Vec::with_capacity(usize::try_from(announced).unwrap_or(0));
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport_error(route, &e))? {
            let seen = body.len() as u64 + chunk.len() as u64;
            if seen > cap {
                return Err(too_large(seen));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
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
                    error.message = %err,
                    "retrying API request"
                );
            })
            .await
    }

    async fn send(
        &self,
        route: &'static str,
        url: &Url,
        query: &[(&str, String)],
        expect: Expect,
    ) -> Result<Response, ApiError> {
        let mut response = self.request(route, url, query).await?;
        if response.status() == StatusCode::UNAUTHORIZED && self.key.reread() == Reread::Changed {
            tracing::info!(
                service = self.service,
                route,
                key = self.key.key(),
                "the API refused the key and its file holds a new one; trying again with it"
            );
            response = self.request(route, url, query).await?;
        }
        let status = response.status();
        self.metrics.api_response(self.service, status.as_str());
        if status.is_success() || (expect == Expect::Redirect && status.is_redirection()) {
            return Ok(response);
        }
        if status.is_redirection() {
            return Err(self.redirect_error(route, &response));
        }
        Err(self.status_error(route, response).await)
    }

    /// One request within the budget, with the key in use now.
    async fn request(&self, route: &'static str, url: &Url, query: &[(&str, String)]) -> Result<Response, ApiError> {
        self.limiter
            .wait(
                match self.scope {
                    LimitScope::Shared => self.service,
                    LimitScope::PerRoute => route,
                },
                self.lane,
            )
            .await;
        self.http
            .get(url.clone())
            .query(query)
            .bearer_auth(self.key.current().expose_secret())
            .send()
            .await
            .map_err(|e| self.transport_error(route, &e))
    }

    /// A redirect where an answer was expected: never followed (the key would go with it),
    /// never read as the answer (its body may look like one).
    fn redirect_error(&self, route: &'static str, response: &Response) -> ApiError {
        let to = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|l| response.url().join(l).ok())
            .and_then(|u| u.host_str().map(str::to_string))
            .map(|host| format!(" to {host}"))
            .unwrap_or_default();
        let mut err = ApiError::local(
            self.service,
            route,
            ApiErrorKind::Redirected,
            Class::Rejected,
            format!(
                "the API answered with a redirect{to}, which is not an answer: redirects are not followed so the key stays with its host; check the service's base_url (a proxy that redirects?)"
            ),
        );
        err.status = Some(response.status().as_u16());
        err.request_id = request_id(response);
        err
    }

    fn transport_error(&self, route: &'static str, err: &reqwest::Error) -> ApiError {
        let class = retry::classify_transport(err);
        let kind = if class == Class::Transient {
            ApiErrorKind::Unavailable
        } else {
            ApiErrorKind::Rejected
        };
        // reqwest's message names the URL but never the Authorization header.
        let mut message = crate::errors::chain(err);
        if err.is_timeout() {
            message = format!(
                "timeout: no answer or no more bytes within openai.timeout (raise it for a slow link or proxy): {message}"
            );
        }
        ApiError::local(self.service, route, kind, class, redact_keys(&message))
    }

    async fn status_error(&self, route: &'static str, response: Response) -> ApiError {
        let status = response.status();
        let request_id = request_id(&response);
        let retry_after = retry::retry_after(response.headers(), SystemTime::now());
        let body = error_body(response).await;
        let (error_type, code, message) = match serde_json::from_slice::<ErrorResponse>(&body) {
            Ok(e) => (
                e.error.error_type,
                e.error.code,
                e.error.message.chars().take(1000).collect(),
            ),
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
        ApiError::from(ApiErrorDetail {
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
        })
    }
}

/// The most of an error body read: enough for OpenAI's error envelope, bounded so a huge
/// error page costs nothing.
const MAX_ERROR_BODY: usize = 64 * 1024;

async fn error_body(mut response: Response) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < MAX_ERROR_BODY {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    body.truncate(MAX_ERROR_BODY);
    body
}

fn request_id(response: &Response) -> Option<String> {
    response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}
