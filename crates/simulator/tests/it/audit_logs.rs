//! `GET /v1/organization/audit_logs`: paging a closed window, filters, cursors, the tenant
//! split, errors and injected faults.

use std::collections::HashSet;

use openai_audit_simulator::{Family, Fault, SimConfig, Simulator, is_tenant_scoped};
use serde_json::Value;

use crate::helpers::{admin, client, get, sim, sim_with};

fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .expect("data is an array")
        .iter()
        .map(|e| e["id"].as_str().expect("id").to_owned())
        .collect()
}

/// Walk every page of `query` with `after`, running `between` after each page.
async fn walk(sim: &Simulator, query: &str, mut between: impl FnMut()) -> Vec<Value> {
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

/// The text of one page of the seeded history.
async fn page_text(sim: &Simulator) -> String {
    let url = format!("{}/organization/audit_logs?limit=5", sim.admin_base_url());
    let resp = client()
        .get(url)
        .bearer_auth(sim.admin_key())
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status().as_u16(), 200);
    resp.text().await.expect("body")
}

#[tokio::test]
async fn pages_can_be_answered_in_indented_json_as_openai_answers_them() {
    let compact = sim().await;
    assert!(!page_text(&compact).await.contains('\n'), "one line by default");
    compact.shutdown().await;
    let indented = sim_with(SimConfig {
        indented_pages: true,
        ..SimConfig::default()
    })
    .await;
    let pretty = page_text(&indented).await;
    assert!(
        pretty.starts_with("{\n  \"data\": [\n    {\n      \""),
        "indented: {}",
        &pretty[..60]
    );
    // The same records the simulator holds, each whole.
    let page: Value = serde_json::from_str(&pretty).expect("json");
    let held = indented.org().audit_events();
    let data = page["data"].as_array().expect("data");
    assert_eq!(data.len(), 5);
    for record in data {
        assert!(held.contains(record), "{record}");
    }
    assert_eq!(page["first_id"], data[0]["id"]);
    indented.shutdown().await;
}
