//! Inventory list endpoints under `/v1/organization/…`, each with its own pagination family
//! (classic `first_id/last_id` or next-cursor `next`), limit range and default order.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
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
            "/v1/organization/certificates",
            get(|State(sh): S, h: HeaderMap, RawQuery(raw): RawQuery| async move {
                serve(&sh, &h, raw, |st, q| page(&st.certificates, q, CERTIFICATES, &all)).await
            }),
        )
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use serde_json::Value;

    use super::super::server::Simulator;
    use super::super::testutil::{admin, sim};

    /// Every item of a list endpoint, paging with its own cursor family.
    async fn walk(sim: &Simulator, path: &str, limit: usize) -> Vec<Value> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut out = Vec::new();
        let mut cursor = String::new();
        loop {
            let (status, page) = admin(sim, &format!("{path}{sep}limit={limit}{cursor}")).await;
            assert_eq!(status, 200, "{path}: {page}");
            assert_eq!(page["object"], "list");
            let data = page["data"].as_array().expect("data");
            assert!(data.len() <= limit);
            out.extend(data.iter().cloned());
            if !page["has_more"].as_bool().expect("has_more") {
                return out;
            }
            // Next-cursor lists answer `next`; classic ones `last_id`.
            let next = page.get("next").unwrap_or(&page["last_id"]);
            cursor = format!("&after={}", next.as_str().expect("cursor"));
        }
    }

    fn ids(items: &[Value]) -> Vec<String> {
        items.iter().map(|v| v["id"].as_str().expect("id").to_owned()).collect()
    }

    fn assert_unique(items: &[Value]) {
        let set: HashSet<String> = ids(items).into_iter().collect();
        assert_eq!(set.len(), items.len(), "no object twice");
    }

    #[tokio::test]
    async fn both_pagination_families_return_every_object_once() {
        let sim = sim().await;
        let users = walk(&sim, "users", 3).await;
        assert_unique(&users);
        assert_eq!(ids(&users), ids(&sim.org().users()));
        let all_projects = walk(&sim, "projects?include_archived=true", 2).await;
        let active = walk(&sim, "projects", 2).await;
        assert_eq!(all_projects.len(), sim.org().project_ids().len());
        let archived = all_projects.iter().filter(|p| p["status"] == "archived").count();
        assert!(archived >= 1, "the seed has an archived project");
        assert_eq!(
            active.len() + archived,
            all_projects.len(),
            "archived projects are hidden"
        );
        let mut keys = Vec::new();
        for p in sim.org().project_ids() {
            for sub in ["users", "service_accounts", "rate_limits"] {
                assert_unique(&walk(&sim, &format!("projects/{p}/{sub}"), 1).await);
            }
            keys.extend(walk(&sim, &format!("projects/{p}/api_keys"), 1).await);
        }
        assert_unique(&keys);
        let mut expected = sim.org().api_key_ids();
        let mut got = ids(&keys);
        expected.sort();
        got.sort();
        assert_eq!(got, expected);
        for path in ["invites", "admin_api_keys", "certificates", "groups", "roles"] {
            let items = walk(&sim, path, 1).await;
            assert!(!items.is_empty(), "{path} is seeded");
            assert_unique(&items);
        }
        let groups = walk(&sim, "groups", 1).await;
        let first = groups[0]["id"].as_str().expect("id");
        assert_unique(&walk(&sim, &format!("groups/{first}/users"), 1).await);
        // Certificates default to newest first; order=asc flips them.
        let desc = ids(&walk(&sim, "certificates", 10).await);
        let mut asc = ids(&walk(&sim, "certificates?order=asc", 10).await);
        asc.reverse();
        assert_eq!(desc, asc);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn each_endpoint_enforces_its_own_limit_range() {
        let sim = sim().await;
        assert_eq!(admin(&sim, "users?limit=0").await.0, 400);
        assert_eq!(admin(&sim, "users?limit=101").await.0, 400);
        assert_eq!(admin(&sim, "groups?limit=0").await.0, 200);
        assert_eq!(admin(&sim, "roles?limit=1000").await.0, 200);
        assert_eq!(admin(&sim, "roles?limit=1001").await.0, 400);
        let (_, roles) = admin(&sim, "roles").await;
        assert_eq!(roles["has_more"], false, "roles default to 1000 per page");
        assert!(roles["next"].is_null());
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn an_added_user_appears_and_a_deleted_key_disappears() {
        let sim = sim().await;
        let id = sim.org().add_user("Zoe Quinn", "reader");
        let users = walk(&sim, "users", 100).await;
        let zoe = users
            .iter()
            .find(|u| u["id"] == id.as_str())
            .expect("the new user is listed");
        assert_eq!(zoe["email"], "zoe.quinn@example.com");
        assert!(sim.org().change_role(&id, "owner"));
        let (_, page) = admin(&sim, "users?emails[]=zoe.quinn@example.com").await;
        assert_eq!(page["data"][0]["role"], "owner");
        let (_, added) = admin(
            &sim,
            &format!("audit_logs?event_types[]=user.added&resource_ids[]={id}"),
        )
        .await;
        assert_eq!(added["data"][0]["user.added"]["data"]["role"], "reader");

        let project = sim.org().default_project_id();
        let key = sim.org().create_key(&project).expect("default project exists");
        let listed = ids(&walk(&sim, &format!("projects/{project}/api_keys"), 100).await);
        assert!(listed.contains(&key));
        assert!(sim.org().delete_key(&key));
        let listed = ids(&walk(&sim, &format!("projects/{project}/api_keys"), 100).await);
        assert!(!listed.contains(&key));
        let (_, deleted) = admin(
            &sim,
            &format!("audit_logs?event_types[]=api_key.deleted&resource_ids[]={key}"),
        )
        .await;
        assert_eq!(deleted["data"][0]["project"]["id"], project.as_str());
        assert!(!sim.org().delete_key(&key), "a key is deleted once");
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn an_unknown_project_is_a_404_in_openai_error_shape() {
        let sim = sim().await;
        let (status, body) = admin(&sim, "projects/proj_nope/api_keys").await;
        assert_eq!(status, 404);
        assert!(body["error"]["message"].is_string());
        assert!(body["error"].as_object().expect("error").contains_key("code"));
        sim.shutdown().await;
    }
}
