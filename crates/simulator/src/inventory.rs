//! Inventory list endpoints under `/v1/organization/…`, each with its own pagination family
//! (classic `first_id/last_id` or next-cursor `next`), limit range and default order.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::auth;
use super::faults::Family;
use super::http::{ApiError, FaultOutcome, Query, apply_fault, bad_request, not_found, page_response};
use super::org::{Collection, OrgState};
use super::shared::Shared;

/// How one endpoint pages (reference §B table).
#[derive(Debug, Clone, Copy)]
struct Spec {
    /// `{object,data,has_more,next}` instead of `{object,data,first_id,last_id,has_more}`.
    next_cursor: bool,
    min: i64,
    max: i64,
    default_limit: i64,
    /// Default of the `order` parameter, where the endpoint has one.
    default_desc: bool,
    has_order: bool,
}

const CLASSIC: Spec = Spec {
    next_cursor: false,
    min: 1,
    max: 100,
    default_limit: 20,
    default_desc: false,
    has_order: false,
};
const ADMIN_KEYS: Spec = Spec {
    has_order: true,
    ..CLASSIC
};
const CERTIFICATES: Spec = Spec {
    has_order: true,
    default_desc: true,
    ..CLASSIC
};
const RATE_LIMITS: Spec = Spec {
    default_limit: 100,
    ..CLASSIC
};
const GROUPS: Spec = Spec {
    next_cursor: true,
    min: 0,
    max: 1000,
    default_limit: 100,
    default_desc: false,
    has_order: true,
};
const GROUP_USERS: Spec = Spec {
    default_desc: true,
    ..GROUPS
};
const ROLES: Spec = Spec {
    default_limit: 1000,
    ..GROUPS
};

/// One page of `coll` in the endpoint's order, keeping items `keep` accepts.
fn page(coll: &Collection, q: &Query, spec: Spec, keep: &dyn Fn(&Value) -> bool) -> Result<Value, ApiError> {
    let limit = q.limit(spec.min, spec.max, spec.default_limit)?;
    let desc = match (spec.has_order, q.get("order")) {
        (true, Some("asc")) => false,
        (true, Some("desc")) => true,
        (true, Some(_)) => return Err(bad_request("order", "'order' must be 'asc' or 'desc'.")),
        _ => spec.default_desc,
    };
    let position = |param: &str| -> Result<Option<u64>, ApiError> {
        match q.get(param) {
            None | Some("") => Ok(None),
            Some(id) => coll
                .position(id)
                .map(Some)
                .ok_or_else(|| bad_request(param, &format!("Invalid '{param}': no object with id '{id}'."))),
        }
    };
    let after = position("after")?;
    let before = position("before")?;
    // Listing order, then strictly after / before the cursor in that order.
    let mut items: Vec<(u64, &Value)> = coll.iter().map(|(s, _, v)| (s, v)).collect();
    if desc {
        items.reverse();
    }
    let beyond = |s: u64, c: u64, forward: bool| if desc ^ !forward { s < c } else { s > c };
    let mut chosen: Vec<&Value> = Vec::new();
    let has_more;
    if let Some(b) = before {
        let prior: Vec<&Value> = items
            .iter()
            .filter(|(s, v)| beyond(*s, b, false) && keep(v))
            .map(|(_, v)| *v)
            .collect();
        has_more = prior.len() > limit;
        chosen.extend(prior.iter().skip(prior.len().saturating_sub(limit)));
    } else {
        let mut rest = items
            .iter()
            .filter(|(s, v)| after.is_none_or(|a| beyond(*s, a, true)) && keep(v))
            .map(|(_, v)| *v);
        chosen.extend(rest.by_ref().take(limit));
        has_more = rest.next().is_some();
    }
    let first = chosen.first().map(|v| v["id"].clone()).unwrap_or(Value::Null);
    let last = chosen.last().map(|v| v["id"].clone()).unwrap_or(Value::Null);
    Ok(if spec.next_cursor {
        let next = if has_more { last } else { Value::Null };
        json!({"object": "list", "data": chosen, "has_more": has_more, "next": next})
    } else {
        json!({"object": "list", "data": chosen, "first_id": first, "last_id": last,
               "has_more": has_more})
    })
}

/// Auth, faults, then `build` under the lock.
async fn serve(
    sh: &Shared,
    headers: &HeaderMap,
    raw: Option<String>,
    build: impl FnOnce(&OrgState, &Query) -> Result<Value, ApiError>,
) -> Response {
    if let Err(r) = auth::require(headers, &sh.admin_key) {
        return r.into_response();
    }
    if let FaultOutcome::Respond(r) = apply_fault(&sh.faults, Family::Inventory).await {
        return r;
    }
    let q = Query::parse(raw.as_deref());
    let body = build(&sh.org.lock(), &q);
    match body {
        Ok(b) => page_response(&sh.faults, Family::Inventory, &b),
        Err(r) => r.into_response(),
    }
}

fn all(_: &Value) -> bool {
    true
}

/// The per-project collection, or OpenAI's 404 for an unknown project.
fn project_coll<'a>(
    st: &'a OrgState,
    map: &'a BTreeMap<String, Collection>,
    id: &str,
) -> Result<&'a Collection, ApiError> {
    match (st.projects.get(id), map.get(id)) {
        (Some(_), Some(c)) => Ok(c),
        _ => Err(not_found(&format!("No such project: '{id}'."))),
    }
}

type S = State<Arc<Shared>>;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        // Control, not Admin API: `POST /_sim/changes?n=5` makes `n` audited changes
        // ([`super::org::Org::make_changes`]), so a benchmark can change the organization
        // between two inventory runs of a separate daemon process.
        .route(
            "/_sim/changes",
            post(|State(sh): S, RawQuery(raw): RawQuery| async move {
                let n = raw
                    .as_deref()
                    .and_then(|q| q.strip_prefix("n="))
                    .and_then(|n| n.parse::<usize>().ok())
                    .unwrap_or(1);
                axum::Json(json!({"changes": sh.org.make_changes(n)}))
            }),
        )
        .route(
            "/v1/organization/users",
            get(|State(sh): S, h: HeaderMap, RawQuery(raw): RawQuery| async move {
                serve(&sh, &h, raw, |st, q| {
                    let emails = q.all("emails");
                    page(&st.users, q, CLASSIC, &|v| {
                        emails.is_empty() || emails.iter().any(|e| v["email"] == e.as_str())
                    })
                })
                .await
            }),
        )
        .route(
            "/v1/organization/invites",
            get(|State(sh): S, h: HeaderMap, RawQuery(raw): RawQuery| async move {
                serve(&sh, &h, raw, |st, q| page(&st.invites, q, CLASSIC, &all)).await
            }),
        )
        .route(
            "/v1/organization/projects",
            get(|State(sh): S, h: HeaderMap, RawQuery(raw): RawQuery| async move {
                serve(&sh, &h, raw, |st, q| {
                    let archived = q.bool("include_archived")?;
                    page(&st.projects, q, CLASSIC, &|v| archived || v["status"] != "archived")
                })
                .await
            }),
        )
        .route(
            "/v1/organization/projects/{project_id}/users",
            get(
                |State(sh): S, Path(id): Path<String>, h: HeaderMap, RawQuery(raw): RawQuery| async move {
                    serve(&sh, &h, raw, |st, q| {
                        page(project_coll(st, &st.project_users, &id)?, q, CLASSIC, &all)
                    })
                    .await
                },
            ),
        )
        .route(
            "/v1/organization/projects/{project_id}/service_accounts",
            get(
                |State(sh): S, Path(id): Path<String>, h: HeaderMap, RawQuery(raw): RawQuery| async move {
                    serve(&sh, &h, raw, |st, q| {
                        page(project_coll(st, &st.project_service_accounts, &id)?, q, CLASSIC, &all)
                    })
                    .await
                },
            ),
        )
        .route(
            "/v1/organization/projects/{project_id}/api_keys",
            get(
                |State(sh): S, Path(id): Path<String>, h: HeaderMap, RawQuery(raw): RawQuery| async move {
                    serve(&sh, &h, raw, |st, q| {
                        let access = q.get("owner_project_access").unwrap_or("any").to_owned();
                        if !matches!(access.as_str(), "active" | "inactive" | "any") {
                            return Err(bad_request("owner_project_access", "Must be active, inactive or any."));
                        }
                        page(project_coll(st, &st.project_keys, &id)?, q, CLASSIC, &|v| {
                            access == "any" || v["owner_project_access"] == access.as_str()
                        })
                    })
                    .await
                },
            ),
        )
        .route(
            "/v1/organization/projects/{project_id}/rate_limits",
            get(
                |State(sh): S, Path(id): Path<String>, h: HeaderMap, RawQuery(raw): RawQuery| async move {
                    serve(&sh, &h, raw, |st, q| {
                        page(project_coll(st, &st.project_rate_limits, &id)?, q, RATE_LIMITS, &all)
                    })
                    .await
                },
            ),
        )
        .route(
            "/v1/organization/admin_api_keys",
            get(|State(sh): S, h: HeaderMap, RawQuery(raw): RawQuery| async move {
                serve(&sh, &h, raw, |st, q| page(&st.admin_keys, q, ADMIN_KEYS, &all)).await
            }),
        )
        .route(
            "/v1/organization/groups",
            get(|State(sh): S, h: HeaderMap, RawQuery(raw): RawQuery| async move {
                serve(&sh, &h, raw, |st, q| page(&st.groups, q, GROUPS, &all)).await
            }),
        )
        .route(
            "/v1/organization/groups/{group_id}/users",
            get(
                |State(sh): S, Path(id): Path<String>, h: HeaderMap, RawQuery(raw): RawQuery| async move {
                    serve(&sh, &h, raw, |st, q| {
                        match (st.groups.get(&id), st.group_users.get(&id)) {
                            (Some(_), Some(c)) => page(c, q, GROUP_USERS, &all),
                            _ => Err(not_found(&format!("No such group: '{id}'."))),
                        }
                    })
                    .await
                },
            ),
        )
        .route(
            "/v1/organization/roles",
            get(|State(sh): S, h: HeaderMap, RawQuery(raw): RawQuery| async move {
                serve(&sh, &h, raw, |st, q| page(&st.roles, q, ROLES, &all)).await
            }),
        )
        .route(
            "/v1/organization/external_storage",
            get(|State(sh): S, h: HeaderMap, RawQuery(raw): RawQuery| async move {
                serve(&sh, &h, raw, |st, q| {
                    let project = q.get("project_id").map(str::to_owned);
                    page(&st.external_storage, q, ADMIN_KEYS, &|v| {
                        project.as_deref().is_none_or(|p| v["project_id"] == p)
                    })
                })
                .await
            }),
        )
        .route(
            "/v1/organization/certificates",
            get(|State(sh): S, h: HeaderMap, RawQuery(raw): RawQuery| async move {
                serve(&sh, &h, raw, |st, q| page(&st.certificates, q, CERTIFICATES, &all)).await
            }),
        )
}
