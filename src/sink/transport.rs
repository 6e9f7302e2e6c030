//! The transport: POSTs one encoded batch to the ingestion service and classifies what came
//! back, keeping the auth token and configured header values out of every error.

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::encode::Payload;
use super::settings::SinkSettings;
use crate::retry::{self, Class};

/// Response body text kept in a failure's reason: enough to say what the receiver disliked,
/// bounded so a large error page cannot bloat logs or the dead-letter file.
const MAX_REASON_BODY_CHARS: usize = 200;

const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// What one POST came to.
#[derive(Debug)]
pub enum Response {
    /// Any 2xx: the receiver took the whole batch.
    Delivered,
    Failed(Failure),
}

/// A failed POST, described without secrets.
#[derive(Debug, Clone)]
pub struct Failure {
    pub class: Class,
    /// `None` when no response arrived (connect, reset, timeout) or the request was not sent.
    pub status: Option<StatusCode>,
    /// The delay the receiver asked for, if it did.
    pub retry_after: Option<Duration>,
    /// Status line and the start of the response body, or the transport error.
    pub reason: String,
}

/// The ingestion service's endpoint and the credentials and headers every POST carries.
#[derive(Debug, Clone)]
pub struct Transport {
    http: reqwest::Client,
    url: Url,
    /// Exposed only when the header is built.
    auth_token: Option<SecretString>,
    /// Marked sensitive by the config, so they never show up in `Debug` output.
    headers: HeaderMap,
}

impl Transport {
    /// A client for `settings.url`, built by the crate's one client builder.
    pub fn new(settings: &SinkSettings) -> Result<Self, reqwest::Error> {
        Ok(Self {
            http: crate::upstream::http::client(settings.timeout)?,
            url: settings.url.clone(),
            auth_token: settings.auth_token.clone(),
            headers: settings.headers.clone(),
        })
    }

    /// POSTs `payload` once.
    pub async fn send(&self, payload: &Payload) -> Response {
        let headers = match self.request_headers(payload) {
            Ok(headers) => headers,
            Err(failure) => return Response::Failed(failure),
        };
        let sent = self
            .http
            .post(self.url.clone())
            .headers(headers)
            .body(payload.body.clone())
            .send()
            .await;
        let mut response = match sent {
            Ok(response) => response,
            Err(err) => {
                return Response::Failed(Failure {
                    class: retry::classify_transport(&err),
                    status: None,
                    retry_after: None,
                    reason: self.scrub(transport_reason(err)),
                });
            }
        };
        let status = response.status();
        if status.is_success() {
            return Response::Delivered;
        }
        let retry_after = retry::retry_after(response.headers(), SystemTime::now());
        // Scrubbed before it is cut short, so no fragment of a secret survives the cut.
        let body = self.scrub(body_start(&mut response).await);
        let excerpt = excerpt(&body);
        let reason = if excerpt.is_empty() {
            format!("HTTP {status}")
        } else {
            format!("HTTP {status}: {excerpt}")
        };
        Response::Failed(Failure {
            class: retry::classify_status(status),
            status: Some(status),
            retry_after,
            reason,
        })
    }

    fn request_headers(&self, payload: &Payload) -> Result<HeaderMap, Failure> {
        // The configured extras first, so ours win on a clash: the body's type and encoding
        // must describe the bytes actually sent.
        let mut headers = self.headers.clone();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(payload.content_type));
        if let Some(encoding) = payload.content_encoding {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static(encoding));
        }
        let key = HeaderValue::from_str(&payload.idempotency_key)
            .map_err(|_| local_failure("the idempotency key is not a valid header value".to_string()))?;
        headers.insert(IDEMPOTENCY_KEY, key);
        if let Some(token) = &self.auth_token {
            let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
                .map_err(|_| local_failure("sink.auth_token is not a valid header value".to_string()))?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        Ok(headers)
    }

    /// Removes the token and configured header values — and every other configured secret
    /// (`crate::secrets`) — from text that came from elsewhere: a receiver may echo a request
    /// back in its error page.
    fn scrub(&self, text: String) -> String {
        let mut text = crate::secrets::redact(&text);
        let token = self.auth_token.as_ref().map(|t| t.expose_secret());
        let values = self.headers.values().filter_map(|v| v.to_str().ok());
        for secret in token.into_iter().chain(values) {
            if secret.len() >= 4 && text.contains(secret) {
                text = text.replace(secret, "[redacted]");
            }
        }
        text
    }
}

/// A request that could not even be built: retrying the same bytes will not help.
fn local_failure(reason: String) -> Failure {
    Failure {
        class: Class::Rejected,
        status: None,
        retry_after: None,
        reason,
    }
}

/// The transport error and its causes, without the URL (which may carry credentials).
fn transport_reason(err: reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "failed to connect"
    } else {
        "failed to send the request"
    };
    let err = err.without_url();
    match std::error::Error::source(&err) {
        Some(cause) => format!("{kind}: {}", crate::errors::chain(cause)),
        None => kind.to_string(),
    }
}

/// The start of the response body, lossily decoded; reads only as much of the body as an
/// excerpt needs.
async fn body_start(response: &mut reqwest::Response) -> String {
    let mut raw = Vec::new();
    // Four bytes per char covers any UTF-8 text.
    while raw.len() < MAX_REASON_BODY_CHARS * 4 {
        match response.chunk().await {
            Ok(Some(chunk)) => raw.extend_from_slice(&chunk),
            // The status alone is the reason if the body cannot be read.
            Ok(None) | Err(_) => break,
        }
    }
    String::from_utf8_lossy(&raw).into_owned()
}

/// At most [`MAX_REASON_BODY_CHARS`] characters of `text`, on one line.
fn excerpt(text: &str) -> String {
    let mut excerpt: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_REASON_BODY_CHARS)
        .collect();
    if text.chars().nth(MAX_REASON_BODY_CHARS).is_some() {
        excerpt.push('…');
    }
    excerpt.trim().to_string()
}
