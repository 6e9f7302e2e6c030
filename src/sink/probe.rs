//! What `check` asks the ingestion service, per protocol, without writing any data: whether
//! the endpoint is there and the credentials are accepted — and, for each failure, what the
//! operator should change.
//!
//! - ndjson / json: an empty batch (no line; `[]`), with the batch's own headers: the token
//!   is checked as a batch's would be, and nothing is written.
//! - akto: an empty batch, `{"batchData":[]}` (the loop over records runs zero times).
//! - splunk_hec: `/services/collector/health`, then an empty POST (400 "No data" means the
//!   token is good), and with `ack` an empty acknowledgement query.
//! - elasticsearch: `/_security/_authenticate` (or `/` where there is no security API), then
//!   whether the key may `create_doc` in the index.
//! - otlp: an empty `{}` export (servers answer success without touching the pipeline).
//! - loki: `/ready`, then an empty push (422 "at least one valid stream" means the
//!   credentials were accepted).

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use url::Url;

use super::encode;
use super::protocol::{self, Answer, ELASTICSEARCH_DEFAULT_INDEX, Protocol, splunk_hec};
use super::settings::SinkSettings;
use super::transport::{Failure, Transport};

/// How long one probe request may take at most.
const PROBE_TIMEOUT: Duration = Duration::from_secs(15);

/// The sink's answer for `check`: a line saying what works, or the operator action.
pub type ProbeResult = Result<String, String>;

/// Probes the configured protocol.
pub async fn probe(settings: &SinkSettings) -> ProbeResult {
    let mut settings = settings.clone();
    settings.timeout = settings.timeout.min(PROBE_TIMEOUT);
    let wire = protocol::wire(settings.protocol, &settings.options);
    let transport = Transport::new(&settings, wire.headers())
        .map_err(|e| format!("failed to build the HTTP client: {}", crate::errors::chain(&e)))?;
    let probe = Probe {
        transport,
        settings: &settings,
    };
    match settings.protocol {
        Protocol::Ndjson | Protocol::Json => probe.generic().await,
        Protocol::Akto => probe.akto().await,
        Protocol::SplunkHec => probe.splunk().await,
        Protocol::Elasticsearch => probe.elasticsearch().await,
        Protocol::Otlp => probe.otlp().await,
        Protocol::Loki => probe.loki().await,
    }
}

struct Probe<'a> {
    transport: Transport,
    settings: &'a SinkSettings,
}

fn unreachable(failure: Failure) -> String {
    format!("could not reach the ingestion service: {}", failure.reason)
}

/// The endpoint's root: the URL with the protocol's standard path taken off its end.
fn root(url: &Url, standard: &str) -> String {
    let path = url.path().trim_end_matches('/');
    path.strip_suffix(standard).unwrap_or(path).to_string()
}

fn at(url: &Url, path: &str) -> Url {
    let mut url = url.clone();
    url.set_path(path);
    url.set_query(None);
    url
}

impl Probe<'_> {
    fn url(&self) -> &Url {
        &self.settings.url
    }

    async fn call(&self, method: Method, url: Url, body: Option<Value>) -> Result<Answer, String> {
        let body = body.map(|b| b.to_string().into_bytes());
        self.transport.call(method, url, body).await.map_err(unreachable)
    }

    /// The failure every protocol shares: refused credentials, a missing path.
    fn common_failure(&self, answer: &Answer, credentials_fix: &str) -> Option<String> {
        let said = &answer.reason;
        match answer.status.as_u16() {
            401 | 403 => Some(format!("{said} — the credentials were refused: {credentials_fix}")),
            404 => Some(format!(
                "{said} — nothing answers at {}: check sink.url{}",
                self.url().path(),
                self.settings
                    .protocol
                    .standard_path()
                    .map(|p| format!(" (the standard path is {p})"))
                    .unwrap_or_default()
            )),
            405 => Some(format!(
                "{said} — the path does not take this request: check sink.url's path"
            )),
            415 => Some(format!(
                "{said} — the service refuses {} bodies: check that sink.protocol is what it speaks",
                self.settings.protocol.content_type()
            )),
            _ => None,
        }
    }

    async fn generic(&self) -> ProbeResult {
        let wire = protocol::wire(self.settings.protocol, &self.settings.options);
        let payload = encode::payload(
            wire.as_ref(),
            self.settings.protocol.content_type(),
            self.settings.compression,
            self.settings.compression_level,
            &[],
        );
        let answer = self.transport.send(&payload).await.map_err(unreachable)?;
        let fix = "check sink.auth_token and sink.auth_scheme against the receiving side";
        if let Some(failure) = self.common_failure(&answer, fix) {
            return Err(failure);
        }
        let scheme = self.url().scheme().to_uppercase();
        match answer.status.as_u16() {
            200..=299 => Ok(format!(
                "the service took an empty batch over {scheme}: the URL and the credentials are good (nothing was written)"
            )),
            // Past authentication: the service only disliked a batch with no events.
            400 | 422 => Ok(format!(
                "the service took the credentials over {scheme} and refused the empty batch ({}); nothing was written",
                answer.reason
            )),
            _ => Err(answer.reason),
        }
    }

    async fn akto(&self) -> ProbeResult {
        let answer = self
            .call(Method::POST, self.url().clone(), Some(json!({ "batchData": [] })))
            .await?;
        if answer.status.is_success() {
            return Ok("Akto accepted an empty batch: the URL and token are good".to_string());
        }
        let fix = "set sink.auth_token to the account's DATABASE_ABSTRACTOR_SERVICE_TOKEN (a JWT, sent raw: \
                   sink.auth_scheme = \"raw\")";
        if let Some(failure) = self.common_failure(&answer, fix) {
            return Err(failure);
        }
        Err(match answer.status.as_u16() {
            422 => format!(
                "{} — the service could not read the batch: it must be Akto's data-ingestion service \
                 (a proxy must pass Content-Type: application/json through unchanged)",
                answer.reason
            ),
            _ => answer.reason,
        })
    }

    async fn splunk(&self) -> ProbeResult {
        let fix = "use an HEC token (Settings → Data inputs → HTTP Event Collector), sent as `Splunk <token>`";
        let health = self.call(Method::GET, splunk_hec::health_url(self.url()), None).await?;
        match health.status.as_u16() {
            200 => {}
            503 => {
                return Err(format!(
                    "{} — HEC is unhealthy (queues full or the ack service down)",
                    health.reason
                ));
            }
            _ => {
                if let Some(failure) = self.common_failure(&health, fix) {
                    return Err(failure);
                }
            }
        }
        // An empty POST: 400 code 5 "No data" means the token passed.
        let empty = self.call(Method::POST, self.url().clone(), None).await?;
        let code = serde_json::from_slice::<Value>(&empty.body)
            .ok()
            .and_then(|v| v.get("code").and_then(Value::as_i64));
        match (empty.status.as_u16(), code) {
            (400, Some(5)) | (200..=299, _) => {}
            (_, Some(1)) => return Err(format!("{} — the token is disabled: enable it in Splunk", empty.reason)),
            _ => {
                return Err(self
                    .common_failure(&empty, fix)
                    .unwrap_or(format!("{} — HEC did not take the token", empty.reason)));
            }
        }
        if self.settings.options.ack {
            let ack = self
                .call(
                    Method::POST,
                    splunk_hec::ack_url(self.url()),
                    Some(json!({ "acks": [] })),
                )
                .await?;
            let code = serde_json::from_slice::<Value>(&ack.body)
                .ok()
                .and_then(|v| v.get("code").and_then(Value::as_i64));
            if code == Some(14) {
                return Err(format!(
                    "{} — indexer acknowledgement is off for this token: enable useACK on it, or set sink.ack = false",
                    ack.reason
                ));
            }
        }
        Ok("HEC is healthy and took the token (an empty request wrote nothing)".to_string())
    }

    async fn elasticsearch(&self) -> ProbeResult {
        let root = root(self.url(), "/_bulk");
        let fix = "use the `encoded` value of POST _security/api_key (sink.auth_scheme = \"apikey\"), or \
                   sink.auth_scheme = \"basic\" with sink.username and sink.password";
        let auth = self
            .call(
                Method::GET,
                at(self.url(), &format!("{root}/_security/_authenticate")),
                None,
            )
            .await?;
        let who = match auth.status.as_u16() {
            200 => serde_json::from_slice::<Value>(&auth.body)
                .ok()
                .and_then(|v| v.get("username").and_then(Value::as_str).map(str::to_string))
                .unwrap_or_else(|| "the key".to_string()),
            401 => return Err(format!("{} — the credentials were refused: {fix}", auth.reason)),
            // No security API (OpenSearch, security off): the cluster root says it is there.
            _ => {
                let main = self
                    .call(Method::GET, at(self.url(), &format!("{root}/")), None)
                    .await?;
                return match main.status.as_u16() {
                    200..=299 => {
                        Ok("the cluster answered; it has no security API to check the key against".to_string())
                    }
                    // A least-privilege writer key lacks `monitor`: still authenticated.
                    403 => Ok(
                        "the cluster took the credentials (the key lacks `monitor`, which writing does not need)"
                            .to_string(),
                    ),
                    _ => Err(self.common_failure(&main, fix).unwrap_or(main.reason)),
                };
            }
        };
        let index = if self.settings.options.index.is_empty() {
            ELASTICSEARCH_DEFAULT_INDEX
        } else {
            &self.settings.options.index
        };
        let privileges = self
            .call(
                Method::POST,
                at(self.url(), &format!("{root}/_security/user/_has_privileges")),
                Some(json!({ "index": [{ "names": [index], "privileges": ["create_doc"] }] })),
            )
            .await?;
        let allowed = serde_json::from_slice::<Value>(&privileges.body)
            .ok()
            .and_then(|v| v.get("has_all_requested").and_then(Value::as_bool));
        match allowed {
            Some(false) => Err(format!(
                "authenticated as {who}, but it may not create documents in `{index}`: grant it create_doc \
                 (and auto_configure, to create the data stream) on `{index}*`"
            )),
            _ => Ok(format!("authenticated as {who}; it may create documents in `{index}`")),
        }
    }

    async fn otlp(&self) -> ProbeResult {
        let answer = self.call(Method::POST, self.url().clone(), Some(json!({}))).await?;
        if answer.status.is_success() {
            return Ok("the collector accepted an empty export: the URL and token are good".to_string());
        }
        let fix = "check sink.auth_token against the collector's authenticator (e.g. bearertokenauth)";
        Err(self.common_failure(&answer, fix).unwrap_or(answer.reason))
    }

    async fn loki(&self) -> ProbeResult {
        let root = root(self.url(), "/loki/api/v1/push");
        let ready = self
            .call(Method::GET, at(self.url(), &format!("{root}/ready")), None)
            .await?;
        let readiness = match ready.status.as_u16() {
            200 => "Loki is ready".to_string(),
            status => format!("/ready answered HTTP {status} (gateways often hide it)"),
        };
        let push = self
            .call(Method::POST, self.url().clone(), Some(json!({ "streams": [] })))
            .await?;
        match push.status.as_u16() {
            // "at least one valid stream is required": past authentication, nothing written.
            422 | 200..=299 | 400 => Ok(format!("{readiness}; an empty push got past authentication")),
            _ => {
                let fix = "check sink.auth_token or sink.username / sink.password, and set X-Scope-OrgID in \
                           sink.headers for a multi-tenant Loki";
                Err(self.common_failure(&push, fix).unwrap_or(push.reason))
            }
        }
    }
}
