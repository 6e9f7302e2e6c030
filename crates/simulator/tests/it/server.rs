//! The handle and the control endpoints: the banner, `/_sim/faults` and
//! `/_sim/receiver/script` over HTTP.

use crate::helpers::{admin, client, sim};

#[tokio::test]
async fn the_banner_names_every_url_and_key() {
    let sim = sim().await;
    let banner = sim.banner();
    for needle in [
        sim.admin_base_url().to_string(),
        sim.compliance_base_url().to_string(),
        sim.receiver_url().to_string(),
        sim.admin_key().to_owned(),
        sim.compliance_key().to_owned(),
        sim.workspace_id().to_owned(),
    ] {
        assert!(banner.contains(&needle), "banner lacks {needle}: {banner}");
    }
    assert!(sim.admin_base_url().as_str().ends_with("/v1"));
    sim.shutdown().await;
}

#[tokio::test]
async fn faults_can_be_driven_through_the_control_endpoint() {
    let sim = sim().await;
    let resp = client()
        .post(format!("http://{}/_sim/faults", sim.local_addr()))
        .json(&serde_json::json!({"family": "inventory", "fault": {"kind": "status", "status": 502}, "times": 1}))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(admin(&sim, "users").await.0, 502);
    assert_eq!(admin(&sim, "users").await.0, 200);
    let client = client();
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
