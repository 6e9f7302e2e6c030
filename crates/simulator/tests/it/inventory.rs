//! The inventory endpoints: both pagination families, limits, 404s, and changes made through
//! the organization.

use std::collections::HashSet;

use openai_audit_simulator::Simulator;
use serde_json::Value;

use crate::helpers::{admin, sim};

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
