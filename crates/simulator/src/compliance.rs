//! The Compliance Logs Platform endpoints: the file list (ascending by `end_time`, exclusive
//! `after`), the 307 download, the signed URL that serves the bytes, and `max_event_time`.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use chrono::DateTime;
use futures_util::StreamExt;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::auth;
use super::clock::{iso_micros, now_micros};
use super::faults::Family;
use super::http::{
    ApiError, FaultOutcome, Query, apply_fault, bad_request, bytes_response, json_response, not_found, page_response,
    slow_body,
};
use super::logfiles::{ComplianceStore, FileBody, LineSource};
use super::shared::Shared;

/// The event types the simulator produces (and accepts in `event_type`).
pub const COMPLIANCE_EVENT_TYPES: &[&str] = &[
    "AUTH_LOG",
    "AUDIT_LOG",
    "CONVERSATION_MESSAGE",
    "APP_LOG",
    "APP_AUTH_LOG",
    "CUSTOM_AGENTS_LOG",
    "CODEX_LOG",
    "CODEX_SECURITY_LOG",
];

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/chatgpt/v1/compliance/{scope}/{principal}/logs", get(list))
        .route(
            "/chatgpt/v1/compliance/{scope}/{principal}/logs/{file_id}",
            get(download),
        )
        .route(
            "/chatgpt/v1/compliance/{scope}/{principal}/max_event_time",
            get(max_event_time),
        )
        .route("/signed/{token}", get(signed))
}

/// Auth, then the principal: `workspaces/<uuid>` or `organizations/<org-…>` of this org.
fn check(sh: &Shared, headers: &HeaderMap, scope: &str, principal: &str) -> Result<(), ApiError> {
    auth::require(headers, &sh.compliance_key)?;
    let st = sh.org.lock();
    let ok = match scope {
        "workspaces" => principal == st.workspace_id,
        "organizations" => principal == st.org_id,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(not_found(&format!("No workspace or organization '{principal}'.")))
    }
}

fn parse_time(q: &Query, key: &str, required: bool) -> Result<Option<i64>, ApiError> {
    match q.get(key) {
        None if required => Err(bad_request(key, &format!("Missing required parameter '{key}'."))),
        None => Ok(None),
        Some(v) => DateTime::parse_from_rfc3339(v)
            .map(|t| Some(t.timestamp_micros()))
            .map_err(|_| bad_request(key, &format!("'{key}' must be an ISO 8601 timestamp with a timezone."))),
    }
}

/// The `event_type` asked for: one the simulator produces, or one records were written for
/// (a type the platform added after the simulator was written).
fn event_type(q: &Query, known: impl Fn(&str) -> bool) -> Result<String, ApiError> {
    match q.get("event_type") {
        Some(t) if COMPLIANCE_EVENT_TYPES.contains(&t) || known(t) => Ok(t.to_owned()),
        Some(t) => Err(bad_request("event_type", &format!("Unknown event_type '{t}'."))),
        None => Err(bad_request("event_type", "Missing required parameter 'event_type'.")),
    }
}

async fn list(
    State(sh): State<Arc<Shared>>,
    Path((scope, principal)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Err(r) = check(&sh, &headers, &scope, &principal) {
        return r.into_response();
    }
    if let FaultOutcome::Respond(r) = apply_fault(&sh.faults, Family::ComplianceList).await {
        return r;
    }
    let q = Query::parse(raw.as_deref());
    let parsed = (|| {
        let ty = event_type(&q, |t| sh.org.lock().compliance.knows(t))?;
        let after = parse_time(&q, "after", true)?.unwrap_or(i64::MIN);
        let before = parse_time(&q, "before", false)?;
        let limit = q.limit(1, 100, 100)?;
        Ok::<_, ApiError>((ty, after, before, limit))
    })();
    let (ty, after, before, limit) = match parsed {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let (body, concatenated) = {
        let mut st = sh.org.lock();
        // Cutting here too keeps files appearing on time even without the background task.
        st.compliance.cut_until(now_micros());
        (
            st.compliance.page(&ty, after, before, limit),
            st.compliance.concatenated,
        )
    };
    if concatenated {
        let text = ComplianceStore::concatenated_page(&body);
        return bytes_response(StatusCode::OK, Bytes::from(text), "application/json");
    }
    page_response(&sh.faults, Family::ComplianceList, &body)
}

fn signature(secret: &str, token: &str, expires: i64) -> String {
    hex::encode(&Sha256::digest(format!("{secret}:{token}:{expires}").as_bytes())[..16])
}

async fn download(
    State(sh): State<Arc<Shared>>,
    Path((scope, principal, file_id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = check(&sh, &headers, &scope, &principal) {
        return r.into_response();
    }
    let corrupt = match apply_fault(&sh.faults, Family::ComplianceDownload).await {
        FaultOutcome::Respond(r) => return r,
        FaultOutcome::Corrupt => true,
        // A trickled body is for the file itself (the signed URL), not the redirect.
        FaultOutcome::Proceed | FaultOutcome::Slow { .. } => false,
    };
    if sh.org.lock().compliance.file(&file_id).is_none() {
        return not_found(&format!("No log file '{file_id}'.")).into_response();
    }
    // The corruption flag rides in the signed token so the signed URL serves bad bytes.
    let token = if corrupt { format!("{file_id}.c") } else { file_id };
    let ttl = i64::try_from(sh.signed_url_ttl.as_secs()).unwrap_or(300);
    let expires = now_micros() / 1_000_000 + ttl;
    let mut loc = sh.base.clone();
    loc.set_path(&format!("/signed/{token}"));
    loc.set_query(Some(&format!(
        "expires={expires}&sig={}",
        signature(&sh.signing_secret, &token, expires)
    )));
    let mut resp = bytes_response(StatusCode::TEMPORARY_REDIRECT, Bytes::new(), "text/plain");
    if let Ok(v) = HeaderValue::from_str(loc.as_str()) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

fn forbidden(reason: &'static str) -> Response {
    bytes_response(
        StatusCode::FORBIDDEN,
        Bytes::from_static(reason.as_bytes()),
        "text/plain",
    )
}

/// The pre-signed URL: like object storage it refuses any `Authorization` header.
async fn signed(
    State(sh): State<Arc<Shared>>,
    Path(token): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    if headers.contains_key(header::AUTHORIZATION) {
        return forbidden("AuthorizationHeaderNotAllowed: signed URLs carry their own credentials");
    }
    let q = Query::parse(raw.as_deref());
    let expires = q.get("expires").and_then(|e| e.parse::<i64>().ok());
    let Some(expires) = expires else {
        return forbidden("SignatureMissing");
    };
    if q.get("sig") != Some(signature(&sh.signing_secret, &token, expires).as_str()) {
        return forbidden("SignatureDoesNotMatch");
    }
    if now_micros() / 1_000_000 >= expires {
        return forbidden("Expired: request a new download URL");
    }
    let (file_id, mut corrupt) = match token.strip_suffix(".c") {
        Some(id) => (id.to_owned(), true),
        None => (token.clone(), false),
    };
    let mut slow = None;
    match apply_fault(&sh.faults, Family::SignedUrl).await {
        FaultOutcome::Respond(r) => return r,
        FaultOutcome::Corrupt => corrupt = true,
        FaultOutcome::Slow { chunk_bytes, every } => slow = Some((chunk_bytes, every)),
        FaultOutcome::Proceed => {}
    }
    let (body, size) = match sh.org.lock().compliance.file(&file_id) {
        Some(f) => (f.body.clone(), f.size),
        None => return not_found("No such file.").into_response(),
    };
    let body = match body {
        FileBody::Bytes(bytes) => bytes,
        // Made while it is sent; a trickle fault does not apply to it.
        FileBody::Lines(lines) => return generated_body(lines, size, corrupt),
    };
    let body = if corrupt {
        let mut b = body.to_vec();
        b.extend_from_slice(CORRUPTION);
        Bytes::from(b)
    } else {
        body
    };
    if let Some((chunk_bytes, every)) = slow {
        return slow_body(body, "application/jsonl", chunk_bytes, every);
    }
    bytes_response(StatusCode::OK, body, "application/jsonl")
}

/// Bytes appended to a file served corrupted.
const CORRUPTION: &[u8] = b"{\"corrupted\":true}\n";

/// A generated file streamed as it is made, a few hundred lines per chunk, with its length
/// announced (the size listed for it, plus the corruption when asked for).
fn generated_body(lines: Arc<dyn LineSource>, size: usize, corrupt: bool) -> Response {
    const LINES_PER_CHUNK: usize = 256;
    let count = lines.count();
    let chunks = futures_util::stream::unfold(0, move |from| {
        let lines = lines.clone();
        async move {
            if from >= count {
                return None;
            }
            let to = (from + LINES_PER_CHUNK).min(count);
            let mut chunk = Vec::new();
            for i in from..to {
                chunk.extend_from_slice(lines.line(i).as_bytes());
                chunk.push(b'\n');
            }
            Some((Ok::<Bytes, Infallible>(Bytes::from(chunk)), to))
        }
    });
    let tail = futures_util::stream::iter(corrupt.then(|| Ok(Bytes::from_static(CORRUPTION))));
    let mut resp = Response::new(Body::from_stream(chunks.chain(tail)));
    let len = size + if corrupt { CORRUPTION.len() } else { 0 };
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/jsonl"));
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    resp
}

async fn max_event_time(
    State(sh): State<Arc<Shared>>,
    Path((scope, principal)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Err(r) = check(&sh, &headers, &scope, &principal) {
        return r.into_response();
    }
    let q = Query::parse(raw.as_deref());
    let types = q.all("event_type");
    let st = sh.org.lock();
    let mut out = serde_json::Map::new();
    for ty in types {
        let latest = st.compliance.max_event_time(&ty).map(iso_micros);
        out.insert(ty, json!(latest));
    }
    json_response(StatusCode::OK, &json!({"max_event_time": out}))
}
