//! The simulator against OpenAI's spec and the daemon's own wire types: every served schema
//! carries the fields the spec marks required, emits no field the schema does not know, and
//! reads with the types the daemon parses real answers with. The checks live on the product's
//! side because the simulator must not depend on the product; the required lists were
//! extracted once from the spec into a fixture, so no test reads the spec at run time.

use openai_audit_ingest::compliance::wire::{ComplianceRecord, LogFilesPage};
use openai_audit_ingest::openai::wire::{AuditLog, ListAuditLogsResponse};
use openai_audit_ingest::upstream::api::ErrorResponse;
use openai_audit_simulator::{SimConfig, Simulator};
use serde_json::Value;

use crate::helpers::sim_with;

const FIXTURE: &str = include_str!("../fixtures/spec_required_fields.json");

async fn sim() -> Simulator {
    sim_with(SimConfig::default()).await
}

/// A client that does not follow redirects, so a compliance download's 307 can be followed
/// by hand without the bearer key (the signed URL refuses any `Authorization`).
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client builds")
}

/// GET `url` with a bearer key; status and JSON body (Null when not JSON).
async fn get(url: String, key: &str) -> (u16, Value) {
    let resp = client()
        .get(url)
        .bearer_auth(key)
        .send()
        .await
        .expect("request reaches the simulator");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body reads");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// `GET /v1/organization/<path>` with the admin key.
async fn admin(sim: &Simulator, path: &str) -> (u16, Value) {
    get(format!("{}/organization/{path}", sim.admin_base_url()), sim.admin_key()).await
}

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

fn logs_url(sim: &Simulator) -> String {
    format!(
        "{}/compliance/workspaces/{}/logs",
        sim.compliance_base_url(),
        sim.workspace_id()
    )
}

/// Every file of `ty`, each page read with the daemon's `LogFilesPage`, feeding
/// `last_end_time` back as `after`.
async fn all_files(sim: &Simulator, ty: &str, limit: usize) -> Vec<Value> {
    let mut after = "1970-01-01T00:00:00Z".to_owned();
    let mut out = Vec::new();
    loop {
        let url = format!("{}?event_type={ty}&after={after}&limit={limit}", logs_url(sim));
        let (status, page) = get(url, sim.compliance_key()).await;
        assert_eq!(status, 200, "{page}");
        let typed: LogFilesPage = serde_json::from_value(page.clone()).expect("the daemon's wire type reads it");
        out.extend(page["data"].as_array().expect("data").iter().cloned());
        match typed.last_end_time {
            Some(last) if typed.has_more => after = last,
            Some(last) => {
                assert_eq!(Some(last.as_str()), out.last().and_then(|f| f["end_time"].as_str()));
                return out;
            }
            None => return out,
        }
    }
}

#[tokio::test]
async fn audit_log_pages_match_the_spec_and_the_daemons_wire_types() {
    let sim = sim().await;
    for pass in ["limit=100", "limit=100&tenant_only=true"] {
        let (status, page) = admin(&sim, &format!("audit_logs?{pass}")).await;
        assert_eq!(status, 200);
        conforms(&page, "ListAuditLogsResponse", true);
        let typed: ListAuditLogsResponse = serde_json::from_str(&page.to_string()).expect("envelope reads");
        for raw in typed.data {
            // Live records carry `object` and the payload key beyond the schema: not strict.
            conforms(&raw, "AuditLog", false);
            let log: AuditLog = serde_json::from_value((*raw).clone()).expect("record reads");
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
    list_conforms(
        &sim,
        "external_storage",
        "ExternalStorageListResponse",
        "ExternalStorage",
    )
    .await;
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
async fn compliance_file_pages_read_with_the_daemons_wire_types() {
    let sim = sim().await;
    let files = all_files(&sim, "AUTH_LOG", 3).await;
    assert!(files.len() > 3, "history spans several pages");
    sim.shutdown().await;
}

#[tokio::test]
async fn compliance_file_lines_read_with_the_daemons_record_type() {
    let sim = sim().await;
    let files = all_files(&sim, "CONVERSATION_MESSAGE", 100).await;
    let id = files[0]["id"].as_str().expect("id");
    let resp = client()
        .get(format!("{}/{id}", logs_url(&sim)))
        .bearer_auth(sim.compliance_key())
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status().as_u16(), 307);
    let location = resp.headers()["location"].to_str().expect("ascii").to_owned();
    let body = client().get(&location).send().await.expect("sent");
    assert_eq!(body.status().as_u16(), 200);
    let text = String::from_utf8(body.bytes().await.expect("body").to_vec()).expect("utf-8");
    assert!(text.lines().any(|l| !l.is_empty()), "the file holds records");
    for line in text.lines().filter(|l| !l.is_empty()) {
        let rec: ComplianceRecord = serde_json::from_str(line).expect("the daemon's record type reads it");
        assert_eq!(rec.event_type, "CONVERSATION_MESSAGE");
    }
    sim.shutdown().await;
}
