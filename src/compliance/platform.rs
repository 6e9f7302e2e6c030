//! The Compliance Logs Platform client: the shared [`ApiClient`] with the compliance key and
//! a per-route budget, the principal's path (`workspaces/<uuid>` or `organizations/<org-…>`),
//! the file list, and the download's 307 whose `Location` is returned, never followed here.

use std::num::NonZeroU32;
use std::time::Duration;

use reqwest::StatusCode;
use url::Url;

use super::wire::{Freshness, ListFormat, LogFilesPage};
use crate::metrics::Metrics;
use crate::retry::RetrySettings;
use crate::secrets::Rotating;
use crate::upstream::api::{ApiClient, ApiError, ClientBuildError, Endpoint, Fetched, LimitScope};
use crate::upstream::http::TlsSettings;

/// How to reach one principal's Compliance Logs Platform (the API half of `[compliance]`).
#[derive(Debug, Clone)]
pub struct ComplianceApiSettings {
    pub api_key: Option<Rotating>,
    /// API root including `/v1`.
    pub base_url: Url,
    /// Workspace UUID or `org-…` id; decides the `/workspaces/` or `/organizations/` path.
    pub principal_id: String,
    /// Budget per method and route, as the platform counts it.
    pub requests_per_minute: NonZeroU32,
    /// How long connecting, and each wait for more bytes of an answer, may take.
    pub timeout: Duration,
    /// The largest JSON answer (a list page) read.
    pub max_response_bytes: u64,
    /// Extra trusted roots (`compliance.ca_file`).
    pub tls: TlsSettings,
}

/// Route labels, also the rate-limit keys: the platform budgets each method and route apart.
pub const LIST_ROUTE: &str = "compliance_logs";
pub const DOWNLOAD_ROUTE: &str = "compliance_log_download";

pub const FRESHNESS_ROUTE: &str = "compliance_freshness";

/// The most files one list request may ask for.
pub const MAX_LIST_LIMIT: u8 = 100;

/// Why a download could not start: the API failed, or it answered without a usable redirect.
#[derive(Debug, thiserror::Error)]
pub enum LocationError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("the download of log file `{file_id}` answered HTTP {status} without a redirect to a signed URL{}", request_id.as_ref().map(|r| format!(" (request id {r})")).unwrap_or_default())]
    NoRedirect {
        file_id: String,
        status: u16,
        request_id: Option<String>,
    },
}

/// Calls to one principal's Compliance Logs Platform.
#[derive(Debug, Clone)]
pub struct ComplianceApi {
    /// The authenticated client; its clones share one budget per route.
    api: ApiClient,
    /// The workspace UUID or `org-…` id the logs belong to.
    principal_id: String,
    /// `compliance/workspaces/<id>` or `compliance/organizations/<id>`.
    scope_path: String,
}

/// The path segment the platform expects for `principal_id` (reference §D.2: `org-…` ids
/// are organizations, anything else is a workspace).
pub fn scope_path(principal_id: &str) -> String {
    let scope = if principal_id.starts_with("org-") {
        "organizations"
    } else {
        "workspaces"
    };
    format!("compliance/{scope}/{principal_id}")
}

impl ComplianceApi {
    /// A client for `settings`; every clone shares one budget per route.
    pub fn new(
        settings: &ComplianceApiSettings,
        retry: RetrySettings,
        metrics: Metrics,
    ) -> Result<Self, ClientBuildError> {
        let endpoint = Endpoint {
            key_name: "compliance.api_key",
            key: settings.api_key.clone(),
            base: settings.base_url.clone(),
            timeout: settings.timeout,
            requests_per_minute: settings.requests_per_minute,
            max_response_bytes: settings.max_response_bytes,
            tls: settings.tls.clone(),
            background_share: 1.0,
        };
        let api = ApiClient::build("compliance", LimitScope::PerRoute, endpoint, retry, metrics)?;
        Ok(Self {
            api,
            principal_id: settings.principal_id.clone(),
            scope_path: scope_path(&settings.principal_id),
        })
    }

    /// The principal whose logs this client reads.
    pub fn principal_id(&self) -> &str {
        &self.principal_id
    }

    /// `compliance/workspaces/<id>` or `compliance/organizations/<id>`, for messages.
    pub fn scope_path(&self) -> &str {
        &self.scope_path
    }

    /// The same client with at most `attempts` tries per request (for `check`).
    pub fn with_attempts(self, attempts: usize) -> Self {
        Self {
            api: self.api.with_attempts(attempts),
            ..self
        }
    }

    /// The plain HTTP client, for the signed URL that must never see the key.
    pub fn http(&self) -> &reqwest::Client {
        self.api.http()
    }

    /// `GET …/logs?event_type=&after=&limit=`: one page of file metadata, ascending, and how
    /// the body was laid out (see [`LogFilesPage::from_body`]). `limit` is capped at the
    /// platform's maximum of 100 (more is refused with 422).
    pub async fn list(
        &self,
        event_type: &str,
        after: &str,
        limit: u8,
    ) -> Result<Fetched<(LogFilesPage, ListFormat)>, ApiError> {
        let query = [
            ("event_type", event_type.to_string()),
            ("after", after.to_string()),
            ("limit", limit.min(MAX_LIST_LIMIT).to_string()),
        ];
        self.api
            .get_parsed(
                LIST_ROUTE,
                &format!("{}/logs", self.scope_path),
                &query,
                LogFilesPage::from_body,
            )
            .await
    }

    /// `GET …/max_event_time?event_type=`: the newest event time the platform holds for
    /// `event_type` (ISO 8601), `None` when it has none.
    pub async fn max_event_time(&self, event_type: &str) -> Result<Option<String>, ApiError> {
        let query = [("event_type", event_type.to_string())];
        let fetched = self
            .api
            .get_json::<Freshness>(FRESHNESS_ROUTE, &format!("{}/max_event_time", self.scope_path), &query)
            .await?;
        Ok(fetched.body.max_event_time.get(event_type).cloned().flatten())
    }

    /// `GET …/logs/{file_id}`: the short-lived signed URL the 307 points to. The redirect is
    /// not followed here (the shared client has redirects off) so the bearer key stays with
    /// the API's own host.
    pub async fn download_location(&self, file_id: &str) -> Result<Url, LocationError> {
        let path = format!("{}/logs/{file_id}", self.scope_path);
        let response = self.api.get_redirect(DOWNLOAD_ROUTE, &path).await?;
        let status = response.status();
        let no_redirect = || LocationError::NoRedirect {
            file_id: file_id.to_string(),
            status: status.as_u16(),
            request_id: response
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        };
        if !matches!(
            status,
            StatusCode::TEMPORARY_REDIRECT | StatusCode::FOUND | StatusCode::SEE_OTHER | StatusCode::PERMANENT_REDIRECT
        ) {
            return Err(no_redirect());
        }
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(no_redirect)?;
        // A relative Location is resolved against the URL that answered.
        response.url().join(location).map_err(|_| no_redirect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_org_id_uses_the_organizations_path_and_a_workspace_uuid_the_workspaces_path() {
        assert_eq!(
            scope_path("org-p13k3klgno5cqxbf0q8hpgrk"),
            "compliance/organizations/org-p13k3klgno5cqxbf0q8hpgrk"
        );
        assert_eq!(
            scope_path("f7f33107-5fb9-4ee1-8922-3eae76b5b5a0"),
            "compliance/workspaces/f7f33107-5fb9-4ee1-8922-3eae76b5b5a0"
        );
    }
}
