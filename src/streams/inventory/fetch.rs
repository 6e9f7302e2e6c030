//! Listing one inventory endpoint a page at a time, each with its own pagination family,
//! within the one Admin API budget. Which lists a run reads, and in what order, is the run's
//! business ([`super::run`]).

use serde_json::Value;

use super::kind::{Kind, Paging};
use crate::metrics::Metrics;
use crate::openai::AdminApi;
use crate::openai::wire::inventory::{ClassicList, CursorList};
use crate::streams::CursorGuard;
use crate::streams::paging::with_request_id;
use crate::upstream::{ApiError, ApiErrorKind};

/// Why one list could not be read completely.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ListError {
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The upstream answered in a way that cannot be paged to the end.
    #[error("{0}")]
    Upstream(String),
}

impl ListError {
    /// The organization-level endpoint answered 404: the API does not offer this kind to
    /// this organization (yet) — not a failure of the run, but nothing can be derived from it.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, ListError::Api(err) if err.kind == ApiErrorKind::NotFound)
    }
}

/// One list (a kind, under a scope for scoped kinds), read a page at a time so a run holds
/// one page, never the whole list.
#[derive(Debug)]
pub struct Pager {
    kind: Kind,
    path: String,
    after: Option<String>,
    guard: CursorGuard,
    done: bool,
}

impl Pager {
    pub fn new(kind: Kind, scope: Option<&str>) -> Self {
        Self {
            kind,
            path: kind.path(scope),
            after: None,
            guard: CursorGuard::new(None),
            done: false,
        }
    }

    /// The next page's items, or `None` once the list has been followed to its end.
    pub async fn next_page(
        &mut self,
        client: &AdminApi,
        metrics: &Metrics,
        stream: &str,
    ) -> Result<Option<Vec<Value>>, ListError> {
        if self.done {
            return Ok(None);
        }
        let kind = self.kind;
        let mut query = kind.extra_query();
        query.push(("limit", kind.limit().to_string()));
        if let Some(a) = &self.after {
            query.push(("after", a.clone()));
        }
        let (data, has_more, cursor, request_id) = match kind.paging() {
            Paging::Classic => {
                let page = client.list::<ClassicList>(kind.route(), &self.path, &query).await?;
                (page.body.data, page.body.has_more, page.body.last_id, page.request_id)
            }
            Paging::NextCursor => {
                let page = client.list::<CursorList>(kind.route(), &self.path, &query).await?;
                (page.body.data, page.body.has_more, page.body.next, page.request_id)
            }
        };
        metrics.page_fetched(stream);
        // Without the envelope's cursor, the last item's id is the documented `after`.
        let cursor = cursor.or_else(|| {
            data.last()
                .and_then(|v| v.get("id"))
                .and_then(Value::as_str)
                .map(str::to_string)
        });
        let ids = data.iter().filter_map(|v| v.get("id").and_then(Value::as_str));
        match self.guard.next(has_more, cursor, data.len(), ids) {
            Ok(None) => self.done = true,
            Ok(Some(cursor)) => self.after = Some(cursor),
            Err(why) => {
                return Err(ListError::Upstream(with_request_id(
                    format!("{}: {why}", self.path),
                    request_id.as_deref(),
                )));
            }
        }
        Ok(Some(data))
    }
}

/// Every item of one list, followed to the end.
#[cfg(test)]
pub async fn walk(
    client: &AdminApi,
    metrics: &Metrics,
    stream: &str,
    kind: Kind,
    scope: Option<&str>,
) -> Result<Vec<Value>, ListError> {
    let mut pager = Pager::new(kind, scope);
    let mut items = Vec::new();
    while let Some(page) = pager.next_page(client, metrics, stream).await? {
        items.extend(page);
    }
    Ok(items)
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

    fn check<T: serde::de::DeserializeOwned>(items: &[Value]) {
        for raw in items {
            T::deserialize(raw).unwrap_or_else(|e| panic!("{raw} does not read: {e}"));
        }
    }

    /// Every item of `kind`: the organization's list, or every parent's.
    async fn everything(c: &AdminApi, kind: Kind) -> Vec<Value> {
        use super::super::kind::Parent;
        let parents = match kind.parent() {
            Parent::Org => return walk(c, &Metrics::new(), "inventory", kind, None).await.expect("list"),
            Parent::Project => Kind::Project,
            Parent::Group => Kind::Group,
        };
        let mut items = Vec::new();
        for parent in walk(c, &Metrics::new(), "inventory", parents, None)
            .await
            .expect("parents")
        {
            let id = parent["id"].as_str().expect("id");
            items.extend(
                walk(c, &Metrics::new(), "inventory", kind, Some(id))
                    .await
                    .expect("list"),
            );
        }
        items
    }

    /// Spec conformance on the daemon's side: every simulated inventory page reads with the
    /// envelope of its pagination family and every item with its wire type.
    #[tokio::test]
    async fn every_simulated_inventory_list_reads_with_the_inventory_wire_types() {
        let sim = openai_audit_simulator::start(SimConfig::default()).await.expect("sim");
        let c = client(&sim);
        let mut listings = std::collections::BTreeMap::new();
        for kind in Kind::ALL {
            let items = everything(&c, kind).await;
            assert!(!items.is_empty(), "{kind:?} is seeded");
            for raw in &items {
                assert!(kind.view(raw).is_some(), "{kind:?}: {raw}");
            }
            listings.insert(kind, items);
        }
        check::<wire::User>(&listings[&Kind::User]);
        check::<wire::Invite>(&listings[&Kind::Invite]);
        check::<wire::Project>(&listings[&Kind::Project]);
        check::<wire::ProjectUser>(&listings[&Kind::ProjectUser]);
        check::<wire::ProjectServiceAccount>(&listings[&Kind::ProjectServiceAccount]);
        check::<wire::ProjectApiKey>(&listings[&Kind::ProjectApiKey]);
        check::<wire::ProjectRateLimit>(&listings[&Kind::ProjectRateLimit]);
        check::<wire::AdminApiKey>(&listings[&Kind::AdminApiKey]);
        check::<wire::GroupResponse>(&listings[&Kind::Group]);
        check::<wire::GroupUser>(&listings[&Kind::GroupUser]);
        check::<wire::Role>(&listings[&Kind::Role]);
        check::<wire::Certificate>(&listings[&Kind::Certificate]);
        let archived = listings[&Kind::Project]
            .iter()
            .filter(|p| p["status"] == "archived")
            .count();
        assert!(archived >= 1, "archived projects are listed too");
        let mut keys: Vec<String> = listings[&Kind::ProjectApiKey]
            .iter()
            .map(|k| k["id"].as_str().expect("id").to_string())
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
        let all = walk(&c, &Metrics::new(), "inventory", Kind::Role, None)
            .await
            .expect("roles");
        assert_eq!(all.len(), 5);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn a_list_that_keeps_failing_is_an_error_and_a_missing_endpoint_reads_as_unavailable() {
        let sim = openai_audit_simulator::start(SimConfig::default()).await.expect("sim");
        sim.faults()
            .set_always(Family::Inventory, Some(Fault::Status { status: 500 }));
        let c = client(&sim).with_attempts(2);
        let err = walk(&c, &Metrics::new(), "inventory", Kind::User, None)
            .await
            .expect_err("fails");
        assert!(!err.is_unavailable());
        sim.shutdown().await;
    }
}
