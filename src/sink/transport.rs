//! The transport: sends one request to the ingestion service and reads its answer, keeping
//! the credentials and configured header values out of every error and answer it hands back.
//! What an answer *means* is the protocol's business (`protocol::Wire::interpret`).

use std::time::SystemTime;

use bytes::Bytes;
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use url::Url;

use super::auth::Credentials;
use super::encode::Payload;
use super::protocol::Answer;
use super::settings::SinkSettings;
use crate::retry;

/// Response body text kept in a reason: enough to say what the receiver disliked, bounded
/// so a large error page cannot bloat logs or the dead-letter file.
const MAX_REASON_BODY_CHARS: usize = 200;

/// The most of an answer's body read: per-item results of a large bulk request fit well.
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// No answer came back (connect, reset, timeout), or the request could not be built.
#[derive(Debug, Clone)]
pub struct Failure {
    /// `false` only for a request we could not build: sending it again will not help.
    pub transient: bool,
    /// What went wrong, without the URL or any secret.
    pub reason: String,
}

/// The ingestion service's endpoint and the credentials and headers every request carries.
#[derive(Debug, Clone)]
pub struct Transport {
    http: reqwest::Client,
    url: Url,
    /// Exposed only when the header is built.
    credentials: Credentials,
    /// Configured (marked sensitive, so they never show in `Debug` output) and the
    /// protocol's own.
    headers: HeaderMap,
}

impl Transport {
    /// A client for `settings.url`, built by the crate's one client builder; `extra` are the
    /// protocol's own headers.
    pub fn new(settings: &SinkSettings, extra: Vec<(HeaderName, HeaderValue)>) -> Result<Self, reqwest::Error> {
        let mut headers = settings.headers.clone();
        for (name, value) in extra {
            headers.insert(name, value);
        }
        Ok(Self {
            http: crate::upstream::http::client(settings.timeout, &settings.tls)?,
            url: settings.url.clone(),
            credentials: settings.credentials.clone(),
            headers,
        })
    }

    /// The endpoint batches go to.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// POSTs one batch to the endpoint.
    pub async fn send(&self, payload: &Payload) -> Result<Answer, Failure> {
        let mut headers = self.headers.clone();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(payload.content_type));
        if let Some(encoding) = payload.content_encoding {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static(encoding));
        }
        let key = HeaderValue::from_str(&payload.idempotency_key)
            .map_err(|_| local_failure("the idempotency key is not a valid header value"))?;
        headers.insert(IDEMPOTENCY_KEY, key);
        self.request(Method::POST, self.url.clone(), headers, payload.body.clone())
            .await
    }

    /// One request to `url` (a sibling of the endpoint: an acknowledgement query, a probe)
    /// with the same credentials and headers; `body` is JSON when given.
    pub async fn call(&self, method: Method, url: Url, body: Option<Vec<u8>>) -> Result<Answer, Failure> {
        let mut headers = self.headers.clone();
        if body.is_some() {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        self.request(method, url, headers, Bytes::from(body.unwrap_or_default()))
            .await
    }

    async fn request(&self, method: Method, url: Url, mut headers: HeaderMap, body: Bytes) -> Result<Answer, Failure> {
        // Ours win over configured extras on a clash: the body's type and encoding must
        // describe the bytes actually sent; `sink.headers` cannot set Authorization.
        match self.credentials.header() {
            Ok(Some((name, value))) => {
                headers.insert(name, value);
            }
            Ok(None) => {}
            Err(problem) => return Err(local_failure(&problem)),
        }
        let sent = self.http.request(method, url).headers(headers).body(body).send().await;
        let mut response = match sent {
            Ok(response) => response,
            Err(err) => {
                return Err(Failure {
                    transient: !err.is_builder(),
                    reason: self.scrub(transport_reason(err)),
                });
            }
        };
        let status = response.status();
        let retry_after = retry::retry_after(response.headers(), SystemTime::now());
        let raw = read_body(&mut response).await;
        // Scrubbed before anything is cut from it, so no fragment of a secret survives.
        let text = self.scrub(String::from_utf8_lossy(&raw).into_owned());
        let reason = reason(status, &text);
        Ok(Answer {
            status,
            retry_after,
            body: Bytes::from(text.into_bytes()),
            reason,
        })
    }

    /// Removes the credentials and configured header values — and every other configured
    /// secret (`crate::secrets`) — from text that came from elsewhere: a receiver may echo a
    /// request back in its answer.
    fn scrub(&self, text: String) -> String {
        let mut text = crate::secrets::redact(&text);
        let values = self
            .headers
            .values()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_string);
        for secret in self.credentials.secrets().into_iter().chain(values) {
            if secret.len() >= 4 && text.contains(&secret) {
                text = text.replace(&secret, "[redacted]");
            }
        }
        text
    }
}

/// A request that could not even be built: sending it again will not help.
fn local_failure(reason: &str) -> Failure {
    Failure {
        transient: false,
        reason: reason.to_string(),
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

/// The answer's body, up to [`MAX_ANSWER_BYTES`]; a body that breaks off is kept as far as
/// it came (the status alone still says most).
async fn read_body(response: &mut reqwest::Response) -> Vec<u8> {
    let mut raw = Vec::new();
    while raw.len() < MAX_ANSWER_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => raw.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    raw
}

/// `HTTP <status>: <excerpt>` on one line.
fn reason(status: StatusCode, text: &str) -> String {
    let excerpt = excerpt(text);
    if excerpt.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {excerpt}")
    }
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
