//! Shared set-up: start a simulator and talk to it over real HTTP.

use openai_audit_simulator::{SimConfig, Simulator, start};
use serde_json::Value;

pub async fn sim() -> Simulator {
    sim_with(SimConfig::default()).await
}

pub async fn sim_with(cfg: SimConfig) -> Simulator {
    start(cfg).await.expect("simulator starts on a free port")
}

/// A client that does not follow redirects, so the 307 itself can be asserted on.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client builds")
}

/// GET `base` + `path` with a bearer key; status and JSON body (Null when not JSON).
pub async fn get(url: String, key: &str) -> (u16, Value) {
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
pub async fn admin(sim: &Simulator, path: &str) -> (u16, Value) {
    get(format!("{}/organization/{path}", sim.admin_base_url()), sim.admin_key()).await
}
