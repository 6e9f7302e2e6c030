//! Listing the whole inventory: every endpoint paged with its own pagination family, the
//! top-level lists first and then every project's and group's children, a few lists at a
//! time within the one Admin API budget. A list that fails is recorded, not fatal: the rest
//! of the run goes on and the failed scope is reported as incomplete.

use std::collections::{BTreeMap, BTreeSet};

use futures_util::StreamExt;
use serde_json::Value;

use super::kind::{Kind, Paging, Parent};
use crate::metrics::Metrics;
use crate::openai::AdminApi;
use crate::openai::wire::inventory::{ClassicList, CursorList};
use crate::streams::CursorGuard;
use crate::streams::paging::with_request_id;
use crate::upstream::{ApiError, ApiErrorKind};

/// Lists fetched at the same time; the shared rate limit still paces every request.
pub const CONCURRENCY: usize = 4;

/// Why one list could not be read completely.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ListError {
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The upstream answered in a way that cannot be paged to the end.
    #[error("{0}")]
    Upstream(String),
}

/// Everything one kind's endpoint(s) returned in this run.
#[derive(Debug, Default)]
pub struct Listing {
    /// (scope, raw item) for every listed object.
    pub items: Vec<(Option<String>, Value)>,
    /// Scopes (projects, groups) listed to the end.
    pub scopes_done: BTreeSet<String>,
    /// What failed, `<scope or kind>: <error>`.
    pub failures: Vec<(Option<String>, ListError)>,
    /// The parent list failed, so the children of unknown parents were never asked for.
    pub parents_unknown: bool,
    /// Pages read, failed lists included.
    pub pages: u64,
    /// The organization-level endpoint answered 404: the API does not offer this kind to this
    /// organization (yet). Not a failure of the run, but nothing can be derived from it.
    pub unavailable: Option<ApiError>,
}

/// Each listed key that has an expiry date, by id, with that date (Unix seconds): the
/// `oai_ingest_credential_expiry_timestamp_seconds` series.
pub fn expiries(items: &[(Option<String>, Value)]) -> Vec<(String, i64)> {
    items
        .iter()
        .filter_map(|(_, raw)| {
            let id = raw.get("id")?.as_str()?;
            let at = raw.get("expires_at")?.as_i64()?;
            Some((id.to_string(), at))
        })
        .collect()
}

impl Listing {
    /// Listed to the end everywhere.
    pub fn complete(&self) -> bool {
        self.failures.is_empty() && !self.parents_unknown && self.unavailable.is_none()
    }
}

/// One run's listings, by kind.
pub type Listings = BTreeMap<Kind, Listing>;

/// Lists every kind: the organization-level lists, then each project's and group's children.
pub async fn list_everything(client: &AdminApi, metrics: &Metrics, stream: &str) -> Listings {
    let top: Vec<Kind> = Kind::ALL.into_iter().filter(|k| k.parent() == Parent::Org).collect();
    let mut listings = run_jobs(client, metrics, stream, top.into_iter().map(|k| (k, None)).collect()).await;
    let parent_ids = |kind: Kind, listings: &Listings| -> Option<Vec<String>> {
        let listing = listings.get(&kind)?;
        listing.complete().then(|| {
            listing
                .items
                .iter()
                .filter_map(|(_, v)| v.get("id").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
    };
    let projects = parent_ids(Kind::Project, &listings);
    let groups = parent_ids(Kind::Group, &listings);
    let mut jobs = Vec::new();
    for kind in Kind::ALL {
        let parents = match kind.parent() {
            Parent::Org => continue,
            Parent::Project => &projects,
            Parent::Group => &groups,
        };
        match parents {
            Some(ids) => jobs.extend(ids.iter().map(|id| (kind, Some(id.clone())))),
            None => {
                listings.entry(kind).or_default().parents_unknown = true;
            }
        }
    }
    for (kind, listing) in run_jobs(client, metrics, stream, jobs).await {
        let slot = listings.entry(kind).or_default();
        slot.items.extend(listing.items);
        slot.scopes_done.extend(listing.scopes_done);
        slot.failures.extend(listing.failures);
        slot.pages += listing.pages;
    }
    // Kinds with no parent listed at all still need an (empty, complete) entry.
    for kind in Kind::ALL {
        listings.entry(kind).or_default();
    }
    listings
}

async fn run_jobs(client: &AdminApi, metrics: &Metrics, stream: &str, jobs: Vec<(Kind, Option<String>)>) -> Listings {
    let results: Vec<_> = futures_util::stream::iter(jobs)
        .map(|(kind, scope)| async move {
            let mut pages = 0;
            let result = walk(client, metrics, stream, kind, scope.as_deref(), &mut pages).await;
            (kind, scope, result, pages)
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut listings = Listings::new();
    for (kind, scope, result, pages) in results {
        let listing = listings.entry(kind).or_default();
        listing.pages += pages;
        match result {
            Ok(items) => {
                listing.items.extend(items.into_iter().map(|v| (scope.clone(), v)));
                if let Some(s) = scope {
                    listing.scopes_done.insert(s);
                }
            }
            // A kind newer than the organization's API (external storage, say) is not a
            // failure to retry every cycle; it is reported on the kind's snapshot instead.
            Err(ListError::Api(err)) if scope.is_none() && err.kind == ApiErrorKind::NotFound => {
                listing.unavailable = Some(err);
            }
            Err(err) => listing.failures.push((scope, err)),
        }
    }
    // Scoped lists finish in any order; keep the listing order stable for the diff.
    for listing in listings.values_mut() {
        listing.items.sort_by(|a, b| a.0.cmp(&b.0));
    }
    listings
}

/// Every item of one list, following its pagination family to the end.
pub async fn walk(
    client: &AdminApi,
    metrics: &Metrics,
    stream: &str,
    kind: Kind,
    scope: Option<&str>,
    pages: &mut u64,
) -> Result<Vec<Value>, ListError> {
    let path = kind.path(scope);
    let mut items = Vec::new();
    let mut after: Option<String> = None;
    let mut guard = CursorGuard::new(None);
    loop {
        let mut query = kind.extra_query();
        query.push(("limit", kind.limit().to_string()));
        if let Some(a) = &after {
            query.push(("after", a.clone()));
        }
        let (data, has_more, cursor, request_id) = match kind.paging() {
            Paging::Classic => {
                let page = client.list::<ClassicList>(kind.route(), &path, &query).await?;
                (page.body.data, page.body.has_more, page.body.last_id, page.request_id)
            }
            Paging::NextCursor => {
                let page = client.list::<CursorList>(kind.route(), &path, &query).await?;
                (page.body.data, page.body.has_more, page.body.next, page.request_id)
            }
        };
        metrics.page_fetched(stream);
        *pages += 1;
        // Without the envelope's cursor, the last item's id is the documented `after`.
        let cursor = cursor.or_else(|| {
            data.last()
                .and_then(|v| v.get("id"))
                .and_then(Value::as_str)
                .map(str::to_string)
        });
        let ids = data.iter().filter_map(|v| v.get("id").and_then(Value::as_str));
        let next = guard.next(has_more, cursor, data.len(), ids);
        items.extend(data);
        match next {
            Ok(None) => return Ok(items),
            Ok(Some(cursor)) => after = Some(cursor),
            Err(why) => {
                return Err(ListError::Upstream(with_request_id(
                    format!("{path}: {why}"),
                    request_id.as_deref(),
                )));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai::admin::OpenAiSettings;
    use crate::openai::wire::inventory as wire;
    use crate::retry::RetrySettings;
    use openai_audit_simulator::{Family, Fault, SimConfig, Simulator};
    use secrecy::SecretString;
    use std::num::NonZeroU32;
    use std::time::Duration;

    fn client(sim: &Simulator) -> AdminApi {
        let settings = OpenAiSettings {
            admin_key: Some(crate::secrets::Rotating::fixed(
                "openai.admin_key",
                SecretString::from(sim.admin_key().to_string()),
            )),
            base_url: crate::config::api_root_url(sim.admin_base_url()),
            organization_id: Some(sim.org_id().to_string()),
            requests_per_minute: NonZeroU32::new(100_000).expect("non-zero"),
            timeout: Duration::from_secs(10),
            max_response_bytes: crate::upstream::api::DEFAULT_MAX_RESPONSE_BYTES,
            tls: Default::default(),
        };
        let retry = RetrySettings {
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
        };
        AdminApi::new(&settings, retry, Metrics::new()).expect("client")
    }

    fn check<T: serde::de::DeserializeOwned>(items: &[(Option<String>, Value)]) {
        for (_, raw) in items {
            T::deserialize(raw).unwrap_or_else(|e| panic!("{raw} does not read: {e}"));
        }
    }

    /// Spec conformance on the daemon's side: every simulated inventory page reads with the
    /// envelope of its pagination family and every item with its wire type.
    #[tokio::test]
    async fn every_simulated_inventory_list_reads_with_the_inventory_wire_types() {
        let sim = openai_audit_simulator::start(SimConfig::default()).await.expect("sim");
        let listings = list_everything(&client(&sim), &Metrics::new(), "inventory").await;
        for kind in Kind::ALL {
            let l = &listings[&kind];
            assert!(l.complete(), "{kind:?}: {:?}", l.failures);
            assert!(!l.items.is_empty(), "{kind:?} is seeded");
            for (_, raw) in &l.items {
                assert!(kind.view(raw).is_some(), "{kind:?}: {raw}");
            }
        }
        check::<wire::User>(&listings[&Kind::User].items);
        check::<wire::Invite>(&listings[&Kind::Invite].items);
        check::<wire::Project>(&listings[&Kind::Project].items);
        check::<wire::ProjectUser>(&listings[&Kind::ProjectUser].items);
        check::<wire::ProjectServiceAccount>(&listings[&Kind::ProjectServiceAccount].items);
        check::<wire::ProjectApiKey>(&listings[&Kind::ProjectApiKey].items);
        check::<wire::ProjectRateLimit>(&listings[&Kind::ProjectRateLimit].items);
        check::<wire::AdminApiKey>(&listings[&Kind::AdminApiKey].items);
        check::<wire::GroupResponse>(&listings[&Kind::Group].items);
        check::<wire::GroupUser>(&listings[&Kind::GroupUser].items);
        check::<wire::Role>(&listings[&Kind::Role].items);
        check::<wire::Certificate>(&listings[&Kind::Certificate].items);
        let archived = listings[&Kind::Project]
            .items
            .iter()
            .filter(|(_, p)| p["status"] == "archived")
            .count();
        assert!(archived >= 1, "archived projects are listed too");
        let mut keys: Vec<String> = listings[&Kind::ProjectApiKey]
            .items
            .iter()
            .map(|(_, k)| k["id"].as_str().expect("id").to_string())
            .collect();
        let mut expected = sim.org().api_key_ids();
        keys.sort();
        expected.sort();
        assert_eq!(keys, expected);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn small_pages_of_both_families_are_followed_to_the_end() {
        let sim = openai_audit_simulator::start(SimConfig::default()).await.expect("sim");
        let c = client(&sim);
        // Page through with limit 1 by hand-built requests: the walker's cursor handling.
        let users: ClassicList = c
            .list("t", "organization/users", &[("limit", "1".into())])
            .await
            .expect("page")
            .body;
        assert!(users.has_more && users.last_id.is_some());
        let roles: CursorList = c
            .list("t", "organization/roles", &[("limit", "1".into())])
            .await
            .expect("page")
            .body;
        assert!(roles.has_more && roles.next.is_some());
        let all = walk(&c, &Metrics::new(), "inventory", Kind::Role, None, &mut 0)
            .await
            .expect("roles");
        assert_eq!(all.len(), 5);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn a_list_that_keeps_failing_is_recorded_and_its_children_marked_unknown() {
        let sim = openai_audit_simulator::start(SimConfig::default()).await.expect("sim");
        sim.faults()
            .set_always(Family::Inventory, Some(Fault::Status { status: 500 }));
        let c = client(&sim).with_attempts(2);
        let listings = list_everything(&c, &Metrics::new(), "inventory").await;
        assert!(!listings[&Kind::User].complete());
        assert!(listings[&Kind::ProjectApiKey].parents_unknown);
        assert!(listings.values().all(|l| !l.complete()));
        sim.shutdown().await;
    }
}
