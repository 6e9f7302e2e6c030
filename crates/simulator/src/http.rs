//! Shared HTTP plumbing: OpenAI-shaped errors, JSON answers, raw query parsing (brackets and
//! repeated keys), and turning an injected fault into a response.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};

use super::faults::{Family, Fault, Faults};

/// `{"error": {"message", "type", "param", "code"}}` with all four keys present, as the
/// spec's `Error` schema requires.
pub(crate) fn openai_error(
    status: u16,
    kind: &str,
    message: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Response {
    let body = json!({"error": {"message": message, "type": kind, "param": param, "code": code}});
    json_response(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &body,
    )
}

/// A refused request, kept small so `Result`s stay cheap; becomes OpenAI's error body.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: u16,
    message: String,
    param: Option<String>,
    code: Option<&'static str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        openai_error(
            self.status,
            "invalid_request_error",
            &self.message,
            self.param.as_deref(),
            self.code,
        )
    }
}

/// 400 `invalid_request_error` naming the offending parameter.
pub(crate) fn bad_request(param: &str, message: &str) -> ApiError {
    ApiError {
        status: 400,
        message: message.to_owned(),
        param: Some(param.to_owned()),
        code: None,
    }
}

/// 404 for an unknown object.
pub(crate) fn not_found(message: &str) -> ApiError {
    ApiError {
        status: 404,
        message: message.to_owned(),
        param: None,
        code: None,
    }
}

/// 401 for a missing or wrong key.
pub(crate) fn unauthorized(message: String, code: Option<&'static str>) -> ApiError {
    ApiError {
        status: 401,
        message,
        param: None,
        code,
    }
}

pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    bytes_response(status, Bytes::from(body.to_string()), "application/json")
}

pub(crate) fn bytes_response(status: StatusCode, body: Bytes, content_type: &str) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}

/// `body` sent `chunk_bytes` at a time, one chunk every `every`: a slow link whose every read
/// is quick. The length is announced, as object storage does.
pub(crate) fn slow_body(body: Bytes, content_type: &str, chunk_bytes: usize, every: Duration) -> Response {
    let len = body.len();
    let chunks = futures_util::stream::unfold(body, move |mut rest| async move {
        if rest.is_empty() {
            return None;
        }
        tokio::time::sleep(every).await;
        let chunk = rest.split_to(chunk_bytes.min(rest.len()));
        Some((Ok::<Bytes, std::convert::Infallible>(chunk), rest))
    });
    let mut resp = Response::new(Body::from_stream(chunks));
    if let Ok(v) = HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    resp
}

/// Decoded `key=value` pairs of a raw query string, in order, repeats kept. `%5B`/`%5D`
/// decode to brackets, so `effective_at%5Bgte%5D` and `effective_at[gte]` are the same key.
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    pub(crate) fn parse(raw: Option<&str>) -> Self {
        Query(
            url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The last value of `key` (later repeats win, as most servers do).
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Every value of a repeatable array key, accepting `key[]` and bare `key`.
    pub(crate) fn all(&self, key: &str) -> Vec<String> {
        let bracketed = format!("{key}[]");
        self.0
            .iter()
            .filter(|(k, _)| *k == bracketed || k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// An integer parameter; a non-number is a 400 naming it.
    pub(crate) fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| bad_request(key, &format!("Invalid value for '{key}': expected an integer."))),
        }
    }

    /// A bounded `limit` with its default, 400 outside the range.
    pub(crate) fn limit(&self, min: i64, max: i64, default: i64) -> Result<usize, ApiError> {
        let n = self.int("limit")?.unwrap_or(default);
        if n < min || n > max {
            return Err(bad_request(
                "limit",
                &format!("Invalid 'limit': integer {n} is out of range, expected a value between {min} and {max}."),
            ));
        }
        Ok(usize::try_from(n).unwrap_or(0))
    }

    pub(crate) fn bool(&self, key: &str) -> Result<bool, ApiError> {
        match self.get(key) {
            None => Ok(false),
            Some("true" | "1" | "True") => Ok(true),
            Some("false" | "0" | "False") => Ok(false),
            Some(_) => Err(bad_request(
                key,
                &format!("Invalid value for '{key}': expected a boolean."),
            )),
        }
    }
}

/// What a family's handler should do about an injected fault.
pub(crate) enum FaultOutcome {
    /// Serve normally (possibly after a delay that was already waited out).
    Proceed,
    /// Serve normally but corrupt the file bytes.
    Corrupt,
    /// Serve normally, but trickle the body out (see [`slow_body`]).
    Slow { chunk_bytes: usize, every: Duration },
    /// Answer with this instead.
    Respond(Response),
}

/// Take the next fault of `family` and turn it into an outcome. Latency is waited here: an
/// added delay is the behaviour under test, not a synchronization point.
pub(crate) async fn apply_fault(faults: &Faults, family: Family) -> FaultOutcome {
    let Some(fault) = faults.take(family) else {
        return FaultOutcome::Proceed;
    };
    if let Some(delay) = fault.latency() {
        tokio::time::sleep(delay).await;
        return FaultOutcome::Proceed;
    }
    let resp = match fault {
        Fault::TooManyRequests { retry_after_secs } => {
            let mut r = openai_error(
                429,
                "requests",
                "Rate limit reached for requests. Please try again later.",
                None,
                Some("rate_limit_exceeded"),
            );
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            r
        }
        Fault::Status { status } => openai_error(
            status,
            "server_error",
            "The server had an error while processing your request. Sorry about that!",
            None,
            None,
        ),
        Fault::MalformedJson => bytes_response(
            StatusCode::OK,
            Bytes::from_static(b"{\"object\":\"list\",\"data\":[{\"id\":"),
            "application/json",
        ),
        Fault::MissingFields => json_response(StatusCode::OK, &json!({"object": "list"})),
        Fault::RepeatPage => match faults.last_body(family) {
            Some(body) => bytes_response(StatusCode::OK, body, "application/json"),
            None => return FaultOutcome::Proceed,
        },
        Fault::CorruptFile => return FaultOutcome::Corrupt,
        Fault::SlowBody { chunk_bytes, every_ms } => {
            return FaultOutcome::Slow {
                chunk_bytes: chunk_bytes.max(1),
                every: Duration::from_millis(every_ms),
            };
        }
        Fault::LatencyMs { .. } => return FaultOutcome::Proceed,
    };
    let mut resp = resp;
    resp.headers_mut().insert("x-sim-fault", HeaderValue::from_static("1"));
    FaultOutcome::Respond(resp)
}

/// A healthy JSON page that `RepeatPage` may serve again later.
pub(crate) fn page_response(faults: &Faults, family: Family, body: &Value) -> Response {
    page_text_response(faults, family, body.to_string())
}

/// [`page_response`] for a page already written out as JSON text.
pub(crate) fn page_text_response(faults: &Faults, family: Family, body: String) -> Response {
    let bytes = Bytes::from(body);
    faults.remember_body(family, bytes.clone());
    bytes_response(StatusCode::OK, bytes, "application/json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decodes_brackets_and_keeps_repeats() {
        let q = Query::parse(Some(
            "effective_at%5Bgte%5D=10&event_types[]=a&event_types%5B%5D=b&limit=5",
        ));
        assert_eq!(q.get("effective_at[gte]"), Some("10"));
        assert_eq!(q.all("event_types"), vec!["a", "b"]);
        assert_eq!(q.limit(1, 100, 20).ok(), Some(5));
        assert!(Query::parse(Some("limit=0")).limit(1, 100, 20).is_err());
    }
}
