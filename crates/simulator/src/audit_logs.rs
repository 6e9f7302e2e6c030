//! `GET /v1/organization/audit_logs`: the event store, its filters, and cursor paging in
//! newest-first order (effective_at desc, ties by id desc).

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::Shared;
use super::auth;
use super::faults::Family;
use super::http::{ApiError, FaultOutcome, Query, apply_fault, bad_request, page_response};

/// Sort key: listing order is this key *descending*.
type Key = (i64, String);

/// Types only the `tenant_only=true` pass returns.
pub fn is_tenant_scoped(event_type: &str) -> bool {
    event_type.starts_with("tenant.")
        || event_type == "role.bound_to_resource"
        || event_type == "role.unbound_from_resource"
}

#[derive(Debug)]
struct Entry {
    value: Arc<Value>,
    event_type: String,
    project: Option<String>,
    /// User id, API-key tracking id and service-account id: anything `actor_ids[]` may name.
    actor_ids: Vec<String>,
    actor_email: Option<String>,
    resource_ids: Vec<String>,
}

/// Every audit event ever recorded, indexed for newest-first range scans. The normal and
/// the tenant-scoped pass live in separate maps so neither pass scans the other's events.
#[derive(Debug, Default)]
pub(crate) struct AuditStore {
    normal: BTreeMap<Key, Entry>,
    tenant: BTreeMap<Key, Entry>,
    index: HashMap<String, Key>,
}

/// A parsed, validated request.
#[derive(Debug, Default)]
pub(crate) struct AuditQuery {
    /// Inclusive bounds, after folding gt/lt into gte/lte (1-second resolution).
    pub lo: Option<i64>,
    pub hi: Option<i64>,
    pub after: Option<String>,
    pub before: Option<String>,
    pub limit: usize,
    pub tenant_only: bool,
    pub event_types: Vec<String>,
    pub project_ids: Vec<String>,
    pub actor_ids: Vec<String>,
    pub actor_emails: Vec<String>,
    pub resource_ids: Vec<String>,
}

impl AuditQuery {
    pub(crate) fn parse(q: &Query) -> Result<Self, ApiError> {
        let mut lo = q.int("effective_at[gte]")?;
        if let Some(gt) = q.int("effective_at[gt]")? {
            lo = Some(lo.map_or(gt + 1, |l| l.max(gt + 1)));
        }
        let mut hi = q.int("effective_at[lte]")?;
        if let Some(lt) = q.int("effective_at[lt]")? {
            hi = Some(hi.map_or(lt - 1, |h| h.min(lt - 1)));
        }
        let parsed = AuditQuery {
            lo,
            hi,
            after: q.get("after").map(str::to_owned),
            before: q.get("before").map(str::to_owned),
            limit: q.limit(1, 100, 20)?,
            tenant_only: q.bool("tenant_only")?,
            event_types: q.all("event_types"),
            project_ids: q.all("project_ids"),
            actor_ids: q.all("actor_ids"),
            actor_emails: q.all("actor_emails"),
            resource_ids: q.all("resource_ids"),
        };
        if parsed.tenant_only && parsed.event_types.iter().any(|t| !is_tenant_scoped(t)) {
            return Err(bad_request(
                "event_types",
                "When tenant_only is true, every event type must be tenant-scoped.",
            ));
        }
        if parsed.after.is_some() && parsed.before.is_some() {
            return Err(bad_request("before", "Pass at most one of 'after' and 'before'."));
        }
        Ok(parsed)
    }

    fn matches(&self, e: &Entry) -> bool {
        let any = |want: &[String], have: &[String]| want.is_empty() || want.iter().any(|w| have.contains(w));
        is_tenant_scoped(&e.event_type) == self.tenant_only
            && (self.event_types.is_empty() || self.event_types.contains(&e.event_type))
            && (self.project_ids.is_empty() || e.project.as_ref().is_some_and(|p| self.project_ids.contains(p)))
            && any(&self.actor_ids, &e.actor_ids)
            && (self.actor_emails.is_empty() || e.actor_email.as_ref().is_some_and(|m| self.actor_emails.contains(m)))
            && any(&self.resource_ids, &e.resource_ids)
    }
}

fn strings(vals: &[&Value]) -> Vec<String> {
    vals.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()
}

impl AuditStore {
    pub(crate) fn insert(&mut self, value: Value) {
        let id = value["id"].as_str().unwrap_or_default().to_owned();
        let event_type = value["type"].as_str().unwrap_or_default().to_owned();
        let at = value["effective_at"].as_i64().unwrap_or_default();
        let actor = &value["actor"];
        let (session, key) = (&actor["session"], &actor["api_key"]);
        let payload = &value[event_type.as_str()];
        let entry = Entry {
            project: value["project"]["id"].as_str().map(str::to_owned),
            actor_ids: strings(&[
                &session["user"]["id"],
                &key["id"],
                &key["user"]["id"],
                &key["service_account"]["id"],
            ]),
            actor_email: session["user"]["email"]
                .as_str()
                .or(key["user"]["email"].as_str())
                .map(str::to_owned),
            resource_ids: strings(&[&payload["id"], &payload["resource_id"]]),
            event_type,
            value: Arc::new(value),
        };
        let key = (at, id.clone());
        self.index.insert(id, key.clone());
        if is_tenant_scoped(&entry.event_type) {
            self.tenant.insert(key, entry);
        } else {
            self.normal.insert(key, entry);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.normal.len() + self.tenant.len()
    }

    /// Every record of both passes, newest first.
    pub(crate) fn all(&self) -> Vec<Value> {
        let mut all: Vec<(&Key, &Entry)> = self.normal.iter().chain(self.tenant.iter()).collect();
        all.sort_by(|a, b| b.0.cmp(a.0));
        all.into_iter().map(|(_, e)| (*e.value).clone()).collect()
    }

    /// One page as `ListAuditLogsResponse` JSON. A cursor means "strictly after (or before)
    /// that record in listing order, under the same filters", so a closed window walked with
    /// `after` yields each record once however many new records arrive meanwhile.
    pub(crate) fn page(&self, q: &AuditQuery) -> Result<Value, ApiError> {
        let cursor = |id: &String, param: &str| {
            self.index
                .get(id)
                .cloned()
                .ok_or_else(|| bad_request(param, &format!("No audit log with id '{id}'.")))
        };
        // Window as [lower, upper) in ascending key space.
        let mut lower: Bound<Key> = q.lo.map_or(Bound::Unbounded, |lo| Bound::Included((lo, String::new())));
        let mut upper: Bound<Key> = q.hi.map_or(Bound::Unbounded, |hi| {
            Bound::Excluded((hi.saturating_add(1), String::new()))
        });
        if let Some(after) = &q.after {
            let k = cursor(after, "after")?;
            upper = match upper {
                Bound::Excluded(u) if u <= k => Bound::Excluded(u),
                _ => Bound::Excluded(k),
            };
        }
        if let Some(before) = &q.before {
            let k = cursor(before, "before")?;
            lower = match lower {
                Bound::Included(l) if l > k => Bound::Included(l),
                _ => Bound::Excluded(k),
            };
        }
        let empty = match (&lower, &upper) {
            (Bound::Included(l) | Bound::Excluded(l), Bound::Excluded(u)) => l >= u,
            _ => false,
        };
        let mut items: Vec<&Entry> = Vec::new();
        if !empty {
            let map = if q.tenant_only { &self.tenant } else { &self.normal };
            let range = map.range((lower, upper)).map(|(_, e)| e);
            let want = q.limit + 1;
            if q.before.is_some() {
                // Nearest to the cursor first, then flipped back to listing order.
                items = range.filter(|e| q.matches(e)).take(want).collect();
            } else {
                items = range.rev().filter(|e| q.matches(e)).take(want).collect();
            }
        }
        let has_more = items.len() > q.limit;
        items.truncate(q.limit);
        if q.before.is_some() {
            items.reverse();
        }
        let data: Vec<&Value> = items.iter().map(|e| e.value.as_ref()).collect();
        let first = data.first().map(|v| v["id"].clone()).unwrap_or(Value::Null);
        let last = data.last().map(|v| v["id"].clone()).unwrap_or(Value::Null);
        Ok(
            json!({"object": "list", "data": data, "first_id": first, "last_id": last,
                  "has_more": has_more}),
        )
    }
}

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
        Ok(body) => page_response(&sh.faults, Family::AuditLogs, &body),
        Err(r) => r.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use serde_json::Value;

    use super::super::faults::{Family, Fault};
    use super::super::testutil::{admin, client, get, sim};
    use super::is_tenant_scoped;

    fn ids(page: &Value) -> Vec<String> {
        page["data"]
            .as_array()
            .expect("data is an array")
            .iter()
            .map(|e| e["id"].as_str().expect("id").to_owned())
            .collect()
    }

    /// Walk every page of `query` with `after`, running `between` after each page.
    async fn walk(sim: &super::super::Simulator, query: &str, mut between: impl FnMut()) -> Vec<Value> {
        let mut out = Vec::new();
        let mut after = String::new();
        loop {
            let (status, page) = admin(sim, &format!("audit_logs?{query}{after}")).await;
            assert_eq!(status, 200, "{page}");
            out.extend(page["data"].as_array().expect("data").iter().cloned());
            if !page["has_more"].as_bool().expect("has_more") {
                return out;
            }
            after = format!("&after={}", page["last_id"].as_str().expect("last_id"));
            between();
        }
    }

    #[tokio::test]
    async fn paging_a_closed_window_with_after_sees_every_event_once_newest_first() {
        let sim = sim().await;
        let now = chrono::Utc::now().timestamp();
        let (start, end) = (now - 3600, now - 60);
        // Ties: six events on one second inside the window.
        for _ in 0..6 {
            sim.org().add_late_event("project.updated", end - 100);
        }
        let expected: Vec<String> = sim
            .org()
            .audit_events()
            .into_iter()
            .filter(|e| {
                let at = e["effective_at"].as_i64().expect("effective_at");
                at >= start && at <= end && !is_tenant_scoped(e["type"].as_str().expect("type"))
            })
            .map(|e| e["id"].as_str().expect("id").to_owned())
            .collect();
        assert!(expected.len() > 20, "history fills the window");
        let query = format!("effective_at%5Bgte%5D={start}&effective_at[lte]={end}&limit=7");
        let seen = walk(&sim, &query, || {
            // New activity arrives while the client pages; it is outside the window.
            sim.org().add_audit_event("api_key.created", None);
            sim.org().step(3);
        })
        .await;
        let seen_ids: Vec<String> = seen.iter().map(|e| e["id"].as_str().expect("id").to_owned()).collect();
        assert_eq!(seen_ids, expected);
        let keys: Vec<(i64, String)> = seen
            .iter()
            .map(|e| {
                (
                    e["effective_at"].as_i64().expect("at"),
                    e["id"].as_str().expect("id").to_owned(),
                )
            })
            .collect();
        assert!(
            keys.windows(2).all(|w| w[0] > w[1]),
            "strictly newest first, ties by id desc"
        );
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn tenant_only_splits_the_events_into_two_disjoint_sets() {
        let sim = sim().await;
        let normal: HashSet<String> = walk(&sim, "limit=100", || {})
            .await
            .iter()
            .map(|e| e["id"].as_str().expect("id").to_owned())
            .collect();
        let tenant_events = walk(&sim, "limit=100&tenant_only=true", || {}).await;
        let tenant: HashSet<String> = tenant_events
            .iter()
            .map(|e| e["id"].as_str().expect("id").to_owned())
            .collect();
        assert!(!tenant.is_empty());
        assert!(
            tenant_events
                .iter()
                .all(|e| is_tenant_scoped(e["type"].as_str().expect("type")))
        );
        assert!(normal.is_disjoint(&tenant));
        assert_eq!(normal.len() + tenant.len(), sim.org().audit_len());
        // Mixing a non-tenant type into a tenant pass is refused.
        let (status, _) = admin(&sim, "audit_logs?tenant_only=true&event_types[]=login.failed").await;
        assert_eq!(status, 400);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn filters_and_the_before_cursor_narrow_the_listing() {
        let sim = sim().await;
        let (_, failed) = admin(&sim, "audit_logs?event_types[]=login.failed&limit=100").await;
        let data = failed["data"].as_array().expect("data");
        assert!(data.len() >= 5, "the brute-force scenario is in the history");
        assert!(
            data.iter()
                .all(|e| e["type"] == "login.failed" && e["login.failed"]["error_code"].is_string())
        );
        let (_, first) = admin(&sim, "audit_logs?limit=5").await;
        let (_, second) = admin(
            &sim,
            &format!("audit_logs?limit=5&after={}", first["last_id"].as_str().expect("id")),
        )
        .await;
        let (_, back) = admin(
            &sim,
            &format!("audit_logs?limit=5&before={}", second["first_id"].as_str().expect("id")),
        )
        .await;
        assert_eq!(ids(&back), ids(&first));
        let project = sim.org().default_project_id();
        let (_, scoped) = admin(&sim, &format!("audit_logs?project_ids[]={project}&limit=100")).await;
        assert!(
            scoped["data"]
                .as_array()
                .expect("data")
                .iter()
                .all(|e| e["project"]["id"] == project.as_str())
        );
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn a_limit_outside_1_to_100_is_a_400_in_openai_error_shape() {
        let sim = sim().await;
        for limit in ["0", "101", "abc"] {
            let (status, body) = admin(&sim, &format!("audit_logs?limit={limit}")).await;
            assert_eq!(status, 400);
            let err = body["error"].as_object().expect("error object");
            for key in ["message", "type", "param", "code"] {
                assert!(err.contains_key(key), "missing {key}");
            }
            assert_eq!(err["param"], "limit");
        }
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn a_wrong_key_is_a_401_that_does_not_echo_the_key() {
        let sim = sim().await;
        let secret = "sk-admin-NOTTHERIGHTKEYx9x9x9x9x9x9x9x9x9wxyz";
        let url = format!("{}/organization/audit_logs", sim.admin_base_url());
        let resp = client().get(&url).bearer_auth(secret).send().await.expect("sent");
        assert_eq!(resp.status().as_u16(), 401);
        let text = resp.text().await.expect("body");
        assert!(!text.contains(&secret[9..]), "the key must not be echoed: {text}");
        let body: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(body["error"]["code"], "invalid_api_key");
        let missing = client().get(&url).send().await.expect("sent");
        assert_eq!(missing.status().as_u16(), 401);
        // The compliance key is not an admin key.
        let (status, _) = get(url, sim.compliance_key()).await;
        assert_eq!(status, 401);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn injected_faults_answer_the_next_requests_then_stop() {
        let sim = sim().await;
        let url = format!("{}/organization/audit_logs?limit=3", sim.admin_base_url());
        sim.faults()
            .inject(Family::AuditLogs, Fault::TooManyRequests { retry_after_secs: 2 }, 1);
        let resp = client()
            .get(&url)
            .bearer_auth(sim.admin_key())
            .send()
            .await
            .expect("sent");
        assert_eq!(resp.status().as_u16(), 429);
        assert_eq!(resp.headers()["retry-after"], "2");
        let (status, first) = get(url.clone(), sim.admin_key()).await;
        assert_eq!(status, 200);
        sim.faults().inject(Family::AuditLogs, Fault::RepeatPage, 1);
        let after = format!("{url}&after={}", first["last_id"].as_str().expect("id"));
        let (_, repeated) = get(after.clone(), sim.admin_key()).await;
        assert_eq!(repeated["last_id"], first["last_id"], "the cursor repeats");
        sim.faults().inject(Family::AuditLogs, Fault::MalformedJson, 1);
        let (status, broken) = get(after.clone(), sim.admin_key()).await;
        assert_eq!((status, broken), (200, Value::Null), "body is not JSON");
        sim.faults().inject(Family::AuditLogs, Fault::Status { status: 503 }, 1);
        assert_eq!(get(after.clone(), sim.admin_key()).await.0, 503);
        let (status, next) = get(after, sim.admin_key()).await;
        assert_eq!(status, 200);
        assert_ne!(next["first_id"], first["first_id"]);
        assert_eq!(sim.faults().served(Family::AuditLogs), 4);
        sim.shutdown().await;
    }
}
