//! The Admin API client: the shared [`ApiClient`] with the admin key, one rate limit for
//! every Admin API call, and typed calls for the endpoints the streams read.

use std::num::NonZeroU32;
use std::time::Duration;

use url::Url;

use super::wire::{ListAuditLogsResponse, read_audit_log_page};
use crate::metrics::Metrics;
use crate::retry::RetrySettings;
use crate::secrets::Rotating;
use crate::upstream::api::{ApiClient, ApiError, ClientBuildError, Endpoint, Fetched, LimitScope};
use crate::upstream::http::TlsSettings;
use crate::upstream::rate_limit::Lane;

/// How to reach the OpenAI Admin API (`[openai]`).
#[derive(Debug, Clone)]
pub struct OpenAiSettings {
    /// The admin key; `None` only when no stream that needs it is enabled.
    pub admin_key: Option<Rotating>,
    /// API root including `/v1` (the config takes the host form `https://api.openai.com`).
    pub base_url: Url,
    /// Labels every event and makes ids unique across organizations.
    pub organization_id: Option<String>,
    /// One budget shared by every Admin API call.
    pub requests_per_minute: NonZeroU32,
    /// How long connecting, and each wait for more bytes of an answer, may take.
    pub timeout: Duration,
    /// The largest JSON answer read (`openai.max_response_bytes`); the Compliance platform's
    /// list shares it.
    pub max_response_bytes: u64,
    /// Extra trusted roots (`openai.ca_file`).
    pub tls: TlsSettings,
}

/// Route label of the audit-log endpoint (also its rate-limit key within the one budget).
const AUDIT_LOGS: &str = "audit_logs";

/// One request for a page of audit logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditLogQuery {
    /// `effective_at[gte]`, Unix seconds.
    pub gte: i64,
    /// `effective_at[lte]`, Unix seconds.
    pub lte: i64,
    pub after: Option<String>,
    pub limit: u8,
    pub tenant_only: bool,
}

/// Calls to the Admin API.
#[derive(Debug, Clone)]
pub struct AdminApi {
    /// The authenticated client; its clones share one request budget.
    api: ApiClient,
}

impl AdminApi {
    /// A client for `settings`; every clone shares one request budget.
    pub fn new(settings: &OpenAiSettings, retry: RetrySettings, metrics: Metrics) -> Result<Self, ClientBuildError> {
        Self::with_background_share(settings, retry, metrics, 1.0)
    }

    /// As [`AdminApi::new`], the inventory's clones ([`AdminApi::background`]) capped at
    /// `share` of the budget (`inventory.budget_share`).
    pub fn with_background_share(
        settings: &OpenAiSettings,
        retry: RetrySettings,
        metrics: Metrics,
        share: f64,
    ) -> Result<Self, ClientBuildError> {
        let endpoint = Endpoint {
            key_name: "openai.admin_key",
            key: settings.admin_key.clone(),
            base: settings.base_url.clone(),
            timeout: settings.timeout,
            requests_per_minute: settings.requests_per_minute,
            max_response_bytes: settings.max_response_bytes,
            tls: settings.tls.clone(),
            background_share: share,
        };
        // The Admin API has no documented per-route limits: one budget for all of it.
        let api = ApiClient::build("openai", LimitScope::Shared, endpoint, retry, metrics)?;
        Ok(Self { api })
    }

    /// The same client (same budget) in the background lane: served within its share and
    /// after every waiting audit-log request, so the audit logs are never starved.
    pub fn background(&self) -> Self {
        Self {
            api: self.api.clone().with_lane(Lane::Background),
        }
    }

    /// The same client with at most `attempts` tries per request.
    pub fn with_attempts(self, attempts: usize) -> Self {
        Self {
            api: self.api.with_attempts(attempts),
        }
    }

    /// `GET /organization/audit_logs` for one page of a closed window.
    pub async fn audit_logs(&self, q: &AuditLogQuery) -> Result<Fetched<ListAuditLogsResponse>, ApiError> {
        let mut query = vec![
            ("effective_at[gte]", q.gte.to_string()),
            ("effective_at[lte]", q.lte.to_string()),
            ("limit", q.limit.to_string()),
        ];
        if let Some(after) = &q.after {
            query.push(("after", after.clone()));
        }
        if q.tenant_only {
            query.push(("tenant_only", "true".to_string()));
        }
        self.api
            .get_parsed(AUDIT_LOGS, "organization/audit_logs", &query, read_audit_log_page)
            .await
    }

    /// GET an inventory list endpoint (`path` relative to the API root) with `query`, decoded
    /// as `T`. Shares the audit logs' budget.
    pub async fn list<T: serde::de::DeserializeOwned>(
        &self,
        route: &'static str,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Fetched<T>, ApiError> {
        self.api.get_json(route, path, query).await
    }
}
