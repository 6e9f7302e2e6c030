//! The Compliance Logs Platform endpoints: the file list (ascending by `end_time`, exclusive
//! `after`), the 307 download, the signed URL that serves the bytes, and `max_event_time`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use chrono::DateTime;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::auth;
use super::clock::{iso_micros, now_micros};
use super::faults::Family;
use super::http::{
    ApiError, FaultOutcome, Query, apply_fault, bad_request, bytes_response, json_response, not_found, page_response,
};
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

fn event_type(q: &Query) -> Result<String, ApiError> {
    match q.get("event_type") {
        Some(t) if COMPLIANCE_EVENT_TYPES.contains(&t) => Ok(t.to_owned()),
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
        let ty = event_type(&q)?;
        let after = parse_time(&q, "after", true)?.unwrap_or(i64::MIN);
        let before = parse_time(&q, "before", false)?;
        let limit = q.limit(1, 100, 100)?;
        Ok::<_, ApiError>((ty, after, before, limit))
    })();
    let (ty, after, before, limit) = match parsed {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let body = {
        let mut st = sh.org.lock();
        // Cutting here too keeps files appearing on time even without the background task.
        st.compliance.cut_until(now_micros());
        st.compliance.page(&ty, after, before, limit)
    };
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
        FaultOutcome::Proceed => false,
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
    match apply_fault(&sh.faults, Family::SignedUrl).await {
        FaultOutcome::Respond(r) => return r,
        FaultOutcome::Corrupt => corrupt = true,
        FaultOutcome::Proceed => {}
    }
    let body = match sh.org.lock().compliance.file(&file_id) {
        Some(f) => f.body.clone(),
        None => return not_found("No such file.").into_response(),
    };
    let body = if corrupt {
        let mut b = body.to_vec();
        b.extend_from_slice(b"{\"corrupted\":true}\n");
        Bytes::from(b)
    } else {
        body
    };
    bytes_response(StatusCode::OK, body, "application/jsonl")
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

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::Duration;

    use serde_json::Value;
    use sha2::{Digest, Sha256};

    use super::super::config::SimConfig;
    use super::super::faults::{Family, Fault};
    use super::super::server::Simulator;
    use super::super::testutil::{client, get, sim, sim_with};

    fn logs_url(sim: &Simulator) -> String {
        format!(
            "{}/compliance/workspaces/{}/logs",
            sim.compliance_base_url(),
            sim.workspace_id()
        )
    }

    /// Every file of `ty`, feeding `last_end_time` back as `after`. (That the daemon's own
    /// wire types read these pages is checked on the product's side, `tests/it/conformance.rs`.)
    async fn all_files(sim: &Simulator, ty: &str, limit: usize) -> Vec<Value> {
        let mut after = "1970-01-01T00:00:00Z".to_owned();
        let mut out = Vec::new();
        loop {
            let url = format!("{}?event_type={ty}&after={after}&limit={limit}", logs_url(sim));
            let (status, page) = get(url, sim.compliance_key()).await;
            assert_eq!(status, 200, "{page}");
            let has_more = page["has_more"].as_bool().expect("has_more is a boolean");
            let last_end_time = match &page["last_end_time"] {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                other => panic!("last_end_time is a string or null, not {other}"),
            };
            out.extend(page["data"].as_array().expect("data").iter().cloned());
            match last_end_time {
                Some(last) if has_more => after = last,
                Some(last) => {
                    assert_eq!(Some(last.as_str()), out.last().and_then(|f| f["end_time"].as_str()));
                    return out;
                }
                None => return out,
            }
        }
    }

    /// Follow the 307 without the bearer key; the body bytes.
    async fn download(sim: &Simulator, file_id: &str) -> Vec<u8> {
        let resp = client()
            .get(format!("{}/{file_id}", logs_url(sim)))
            .bearer_auth(sim.compliance_key())
            .send()
            .await
            .expect("sent");
        assert_eq!(resp.status().as_u16(), 307);
        let location = resp.headers()["location"].to_str().expect("ascii").to_owned();
        let body = client().get(&location).send().await.expect("sent");
        assert_eq!(body.status().as_u16(), 200);
        body.bytes().await.expect("body").to_vec()
    }

    #[tokio::test]
    async fn the_file_list_pages_ascending_with_has_more_and_last_end_time() {
        let sim = sim().await;
        let files = all_files(&sim, "AUTH_LOG", 3).await;
        assert!(files.len() > 3, "history spans several files");
        let ends: Vec<chrono::DateTime<chrono::FixedOffset>> = files
            .iter()
            .map(|f| chrono::DateTime::parse_from_rfc3339(f["end_time"].as_str().expect("end_time")).expect("ISO"))
            .collect();
        assert!(ends.windows(2).all(|w| w[0] < w[1]), "strictly ascending end_time");
        let last = files.last().and_then(|f| f["end_time"].as_str()).expect("end");
        let (_, empty) = get(
            format!("{}?event_type=AUTH_LOG&after={last}", logs_url(&sim)),
            sim.compliance_key(),
        )
        .await;
        assert_eq!(empty["data"].as_array().map(Vec::len), Some(0));
        assert!(empty["last_end_time"].is_null());
        assert_eq!(empty["has_more"], false);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn a_download_redirects_to_a_signed_url_that_refuses_the_bearer_key() {
        let sim = sim().await;
        let files = all_files(&sim, "CONVERSATION_MESSAGE", 100).await;
        let file = &files[0];
        let id = file["id"].as_str().expect("id");
        let resp = client()
            .get(format!("{}/{id}", logs_url(&sim)))
            .bearer_auth(sim.compliance_key())
            .send()
            .await
            .expect("sent");
        assert_eq!(resp.status().as_u16(), 307);
        let location = resp.headers()["location"].to_str().expect("ascii").to_owned();
        assert!(location.contains("/signed/") && location.contains("sig="));
        let with_key = client()
            .get(&location)
            .bearer_auth(sim.compliance_key())
            .send()
            .await
            .expect("sent");
        assert_eq!(with_key.status().as_u16(), 403);
        let tampered = client()
            .get(location.replace("sig=", "sig=0"))
            .send()
            .await
            .expect("sent");
        assert_eq!(tampered.status().as_u16(), 403);
        let body = download(&sim, id).await;
        assert_eq!(
            hex::encode(Sha256::digest(&body)),
            file["file_sha256"].as_str().expect("sha")
        );
        assert_eq!(Some(body.len() as u64), file["file_size"].as_u64());
        let text = String::from_utf8(body).expect("utf-8");
        for line in text.lines().filter(|l| !l.is_empty()) {
            let rec: Value = serde_json::from_str(line).expect("each line is a JSON record");
            assert_eq!(rec["type"], "CONVERSATION_MESSAGE");
        }
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn wrong_keys_unknown_principals_and_expired_urls_are_refused() {
        let sim = sim_with(SimConfig {
            signed_url_ttl: Duration::ZERO,
            ..SimConfig::default()
        })
        .await;
        let url = format!("{}?event_type=AUTH_LOG&after=2020-01-01T00:00:00Z", logs_url(&sim));
        assert_eq!(get(url.clone(), sim.admin_key()).await.0, 401);
        assert_eq!(
            get(
                url.replace("after=2020-01-01T00:00:00Z", "after=yesterday"),
                sim.compliance_key()
            )
            .await
            .0,
            400
        );
        assert_eq!(get(url.replace("AUTH_LOG", "NOPE"), sim.compliance_key()).await.0, 400);
        let other = format!(
            "{}/compliance/workspaces/00000000-0000-4000-8000-000000000000/logs?event_type=AUTH_LOG&after=2020-01-01T00:00:00Z",
            sim.compliance_base_url()
        );
        assert_eq!(get(other, sim.compliance_key()).await.0, 404);
        let org = format!(
            "{}/compliance/organizations/{}/logs?event_type=AUTH_LOG&after=2020-01-01T00:00:00Z",
            sim.compliance_base_url(),
            sim.org_id()
        );
        assert_eq!(get(org, sim.compliance_key()).await.0, 200);
        let files = all_files(&sim, "AUTH_LOG", 1).await;
        let id = files[0]["id"].as_str().expect("id");
        let resp = client()
            .get(format!("{}/{id}", logs_url(&sim)))
            .bearer_auth(sim.compliance_key())
            .send()
            .await
            .expect("sent");
        let location = resp.headers()["location"].to_str().expect("ascii").to_owned();
        assert_eq!(
            client().get(&location).send().await.expect("sent").status().as_u16(),
            403,
            "expired"
        );
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn new_events_land_in_a_new_file_and_corruption_breaks_the_checksum() {
        let sim = sim().await;
        let before = all_files(&sim, "CODEX_LOG", 100).await.len();
        let ids = sim.org().add_compliance_events("CODEX_LOG", 4);
        sim.org().cut_compliance_files();
        let files = all_files(&sim, "CODEX_LOG", 100).await;
        assert_eq!(files.len(), before + 1);
        let newest = files.last().expect("a file");
        let body = download(&sim, newest["id"].as_str().expect("id")).await;
        let text = String::from_utf8(body).expect("utf-8");
        let got: HashSet<String> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).expect("json")["event_id"]
                    .as_str()
                    .expect("id")
                    .to_owned()
            })
            .collect();
        assert!(ids.iter().all(|id| got.contains(id)));
        sim.faults().inject(Family::SignedUrl, Fault::CorruptFile, 1);
        let bad = download(&sim, newest["id"].as_str().expect("id")).await;
        assert_ne!(
            hex::encode(Sha256::digest(&bad)),
            newest["file_sha256"].as_str().expect("sha")
        );
        let good = download(&sim, newest["id"].as_str().expect("id")).await;
        assert_eq!(
            hex::encode(Sha256::digest(&good)),
            newest["file_sha256"].as_str().expect("sha")
        );
        let (status, freshness) = get(
            format!(
                "{}/compliance/workspaces/{}/max_event_time?event_type=CODEX_LOG&event_type=AUTH_LOG",
                sim.compliance_base_url(),
                sim.workspace_id()
            ),
            sim.compliance_key(),
        )
        .await;
        assert_eq!(status, 200);
        assert!(freshness["max_event_time"]["CODEX_LOG"].is_string());
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn delivery_is_at_least_once_an_event_can_reappear_in_the_next_file() {
        let sim = sim_with(SimConfig {
            compliance_duplicate_probability: 1.0,
            ..SimConfig::default()
        })
        .await;
        let files = all_files(&sim, "CONVERSATION_MESSAGE", 100).await;
        assert!(files.len() >= 2);
        let mut seen = HashSet::new();
        let mut repeats = 0;
        for f in &files {
            let text = String::from_utf8(download(&sim, f["id"].as_str().expect("id")).await).expect("utf-8");
            for line in text.lines() {
                let v: Value = serde_json::from_str(line).expect("json");
                if !seen.insert(v["event_id"].as_str().expect("id").to_owned()) {
                    repeats += 1;
                }
            }
        }
        assert_eq!(repeats, files.len() - 1, "each later file repeats one event");
        sim.shutdown().await;
    }
}
