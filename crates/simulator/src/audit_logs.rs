//! `GET /v1/organization/audit_logs`: auth, faults, then one page of the organization's
//! `AuditStore` (`audit_store.rs`) in newest-first order.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::audit_store::AuditQuery;
use super::auth;
use super::faults::Family;
use super::http::{FaultOutcome, Query, apply_fault, page_text_response};
use super::shared::Shared;

/// The endpoint.
pub(crate) async fn list(State(sh): State<Arc<Shared>>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    if let Err(r) = auth::require(&headers, &sh.admin_key) {
        return r.into_response();
    }
    if let FaultOutcome::Respond(r) = apply_fault(&sh.faults, Family::AuditLogs).await {
        return r;
    }
    let q = match AuditQuery::parse(&Query::parse(raw.as_deref())) {
        Ok(q) => q,
        Err(r) => return r.into_response(),
    };
    let page = sh.org.lock().audit.page(&q);
    match page {
        Ok(body) if sh.indented_pages => page_text_response(&sh.faults, Family::AuditLogs, indented(body)),
        Ok(body) => page_text_response(&sh.faults, Family::AuditLogs, body),
        Err(r) => r.into_response(),
    }
}

/// `body` (one line, keys in order) in indented JSON, as OpenAI answers.
fn indented(body: String) -> String {
    serde_json::from_str::<serde_json::Value>(&body)
        .and_then(|page| serde_json::to_string_pretty(&page))
        .unwrap_or(body)
}
