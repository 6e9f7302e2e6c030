//! Spec conformance: every served schema carries the fields OpenAI's spec marks required,
//! emits no field the schema does not know, and reads with the daemon's own wire types.
//! The required lists were extracted once from the spec into a fixture, so no test reads
//! the spec at run time.

use serde_json::Value;

use super::Simulator;
use super::testutil::{admin, get, sim};
use crate::openai::wire::{AuditLog, ListAuditLogsResponse};
use crate::upstream::api::ErrorResponse;

const FIXTURE: &str = include_str!("../../tests/fixtures/spec_required_fields.json");

fn schema(name: &str) -> (Vec<String>, Vec<String>) {
    let all: Value = serde_json::from_str(FIXTURE).expect("fixture is JSON");
    let s = &all["schemas"][name];
    let list = |k: &str| -> Vec<String> {
        s[k].as_array()
            .unwrap_or_else(|| panic!("fixture lacks {name}.{k}"))
            .iter()
            .map(|v| v.as_str().expect("string").to_owned())
            .collect()
    };
    (list("required"), list("properties"))
}

/// `value` has every required field of `name`; with `strict`, nothing outside its properties.
fn conforms(value: &Value, name: &str, strict: bool) {
    let (required, properties) = schema(name);
    let obj = value
        .as_object()
        .unwrap_or_else(|| panic!("{name} is not an object: {value}"));
    for r in &required {
        assert!(obj.contains_key(r), "{name} lacks required '{r}': {value}");
    }
    if strict {
        for k in obj.keys() {
            assert!(properties.contains(k), "{name} has unknown field '{k}': {value}");
        }
    }
}

async fn list_conforms(sim: &Simulator, path: &str, envelope: &str, item: &str) -> Vec<Value> {
    let (status, page) = admin(sim, path).await;
    assert_eq!(status, 200, "{path}: {page}");
    conforms(&page, envelope, true);
    let data = page["data"].as_array().expect("data").clone();
    assert!(!data.is_empty(), "{path} serves something to check");
    for v in &data {
        conforms(v, item, true);
    }
    data
}

#[tokio::test]
async fn audit_log_pages_match_the_spec_and_the_daemons_wire_types() {
    let sim = sim().await;
    for pass in ["limit=100", "limit=100&tenant_only=true"] {
        let (status, page) = admin(&sim, &format!("audit_logs?{pass}")).await;
        assert_eq!(status, 200);
        conforms(&page, "ListAuditLogsResponse", true);
        let typed: ListAuditLogsResponse = serde_json::from_value(page).expect("envelope reads");
        for raw in typed.data {
            // Live records carry `object` and the payload key beyond the schema: not strict.
            conforms(&raw, "AuditLog", false);
            let log: AuditLog = serde_json::from_value(raw.clone()).expect("record reads");
            assert!(log.id.starts_with("audit_log-") && log.id.len() == 34, "{}", log.id);
            assert_eq!(raw["object"], "organization.audit_log");
            let actor = log.actor.expect("every simulated event has an actor");
            match actor.actor_type.as_deref() {
                Some("session") => {
                    let s = actor.session.expect("session");
                    assert!(s.user.and_then(|u| u.email).is_some());
                    assert!(s.ip_address_details.is_some() && s.user_agent.is_some());
                }
                Some("api_key") => assert!(actor.api_key.and_then(|k| k.id).is_some()),
                other => panic!("unexpected actor type {other:?}"),
            }
        }
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn inventory_lists_match_the_spec() {
    let sim = sim().await;
    list_conforms(&sim, "users", "UserListResponse", "User").await;
    list_conforms(&sim, "invites", "InviteListResponse", "Invite").await;
    list_conforms(&sim, "projects?include_archived=true", "ProjectListResponse", "Project").await;
    let project = sim.org().project_ids()[1].clone();
    let p = |s: &str| format!("projects/{project}/{s}");
    list_conforms(&sim, &p("users"), "ProjectUserListResponse", "ProjectUser").await;
    list_conforms(
        &sim,
        &p("service_accounts"),
        "ProjectServiceAccountListResponse",
        "ProjectServiceAccount",
    )
    .await;
    list_conforms(&sim, &p("api_keys"), "ProjectApiKeyListResponse", "ProjectApiKey").await;
    list_conforms(
        &sim,
        &p("rate_limits"),
        "ProjectRateLimitListResponse",
        "ProjectRateLimit",
    )
    .await;
    list_conforms(&sim, "admin_api_keys", "ApiKeyList", "AdminApiKey").await;
    let groups = list_conforms(&sim, "groups", "GroupListResource", "GroupResponse").await;
    let group = groups[0]["id"].as_str().expect("id");
    list_conforms(&sim, &format!("groups/{group}/users"), "UserListResource", "GroupUser").await;
    list_conforms(&sim, "roles", "PublicRoleListResource", "Role").await;
    list_conforms(&sim, "certificates", "ListCertificatesResponse", "Certificate").await;
    sim.shutdown().await;
}

#[tokio::test]
async fn errors_match_the_spec_error_shape() {
    let sim = sim().await;
    let (status, body) = get(
        format!("{}/organization/users", sim.admin_base_url()),
        "sk-admin-wrong-key-0000000000",
    )
    .await;
    assert_eq!(status, 401);
    conforms(&body, "ErrorResponse", true);
    conforms(&body["error"], "Error", true);
    let typed: ErrorResponse = serde_json::from_value(body).expect("error reads");
    assert_eq!(typed.error.code.as_deref(), Some("invalid_api_key"));
    sim.shutdown().await;
}

#[tokio::test]
async fn the_same_seed_builds_the_same_organization() {
    let (a, b) = (sim().await, sim().await);
    assert_eq!(a.org_id(), b.org_id());
    assert_eq!(a.workspace_id(), b.workspace_id());
    assert_eq!(a.admin_key(), b.admin_key());
    let ids = |s: &Simulator| {
        let mut v: Vec<String> = s
            .org()
            .audit_events()
            .iter()
            .map(|e| e["id"].as_str().expect("id").to_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(ids(&a), ids(&b));
    let other = super::testutil::sim_with(super::SimConfig {
        seed: 7,
        ..super::SimConfig::default()
    })
    .await;
    assert_ne!(other.org_id(), a.org_id());
    for s in [a, b, other] {
        s.shutdown().await;
    }
}

#[tokio::test]
async fn faults_can_be_driven_through_the_control_endpoint() {
    let sim = sim().await;
    let resp = super::testutil::client()
        .post(format!("http://{}/_sim/faults", sim.local_addr()))
        .json(&serde_json::json!({"family": "inventory", "fault": {"kind": "status", "status": 502}, "times": 1}))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(admin(&sim, "users").await.0, 502);
    assert_eq!(admin(&sim, "users").await.0, 200);
    let client = super::testutil::client();
    let scripted = client
        .post(format!("http://{}/_sim/receiver/script", sim.local_addr()))
        .json(&serde_json::json!({"kind": "next", "status": 503, "times": 1}))
        .send()
        .await
        .expect("sent");
    assert_eq!(scripted.status().as_u16(), 200);
    let post = || {
        client
            .post(sim.receiver_url())
            .header("content-type", "application/x-ndjson")
            .body("{\"id\":\"z\"}\n")
            .send()
    };
    assert_eq!(post().await.expect("sent").status().as_u16(), 503);
    assert_eq!(post().await.expect("sent").status().as_u16(), 200);
    sim.shutdown().await;
}
