//! The Compliance Logs Platform: the file list, signed downloads, refusals, new files and
//! at-least-once repeats.

use std::collections::HashSet;
use std::time::Duration;

use openai_audit_simulator::{Family, Fault, SimConfig, Simulator};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::helpers::{client, get, sim, sim_with};

fn logs_url(sim: &Simulator) -> String {
    format!(
        "{}/compliance/workspaces/{}/logs",
        sim.compliance_base_url(),
        sim.workspace_id()
    )
}

/// Every file of `ty`, feeding `last_end_time` back as `after`. (That the daemon's own
/// wire types read these pages is checked on the daemon's side, in its `tests/it/conformance.rs`.)
async fn all_files(sim: &Simulator, ty: &str, limit: usize) -> Vec<Value> {
    let mut after = "1970-01-01T00:00:00Z".to_owned();
    let mut out = Vec::new();
    loop {
        let url = format!("{}?event_type={ty}&after={after}&limit={limit}", logs_url(sim));
        let (status, page) = get(url, sim.compliance_key()).await;
        assert_eq!(status, 200, "{page}");
        let has_more = page["has_more"].as_bool().expect("has_more is a boolean");
        let last_end_time = match &page["last_end_time"] {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => panic!("last_end_time is a string or null, not {other}"),
        };
        out.extend(page["data"].as_array().expect("data").iter().cloned());
        match last_end_time {
            Some(last) if has_more => after = last,
            Some(last) => {
                assert_eq!(Some(last.as_str()), out.last().and_then(|f| f["end_time"].as_str()));
                return out;
            }
            None => return out,
        }
    }
}

/// Follow the 307 without the bearer key; the body bytes.
async fn download(sim: &Simulator, file_id: &str) -> Vec<u8> {
    let resp = client()
        .get(format!("{}/{file_id}", logs_url(sim)))
        .bearer_auth(sim.compliance_key())
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status().as_u16(), 307);
    let location = resp.headers()["location"].to_str().expect("ascii").to_owned();
    let body = client().get(&location).send().await.expect("sent");
    assert_eq!(body.status().as_u16(), 200);
    body.bytes().await.expect("body").to_vec()
}

#[tokio::test]
async fn the_file_list_pages_ascending_with_has_more_and_last_end_time() {
    let sim = sim().await;
    let files = all_files(&sim, "AUTH_LOG", 3).await;
    assert!(files.len() > 3, "history spans several files");
    let ends: Vec<chrono::DateTime<chrono::FixedOffset>> = files
        .iter()
        .map(|f| chrono::DateTime::parse_from_rfc3339(f["end_time"].as_str().expect("end_time")).expect("ISO"))
        .collect();
    assert!(ends.windows(2).all(|w| w[0] < w[1]), "strictly ascending end_time");
    let last = files.last().and_then(|f| f["end_time"].as_str()).expect("end");
    let (_, empty) = get(
        format!("{}?event_type=AUTH_LOG&after={last}", logs_url(&sim)),
        sim.compliance_key(),
    )
    .await;
    assert_eq!(empty["data"].as_array().map(Vec::len), Some(0));
    assert!(empty["last_end_time"].is_null());
    assert_eq!(empty["has_more"], false);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_download_redirects_to_a_signed_url_that_refuses_the_bearer_key() {
    let sim = sim().await;
    let files = all_files(&sim, "CONVERSATION_MESSAGE", 100).await;
    let file = &files[0];
    let id = file["id"].as_str().expect("id");
    let resp = client()
        .get(format!("{}/{id}", logs_url(&sim)))
        .bearer_auth(sim.compliance_key())
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status().as_u16(), 307);
    let location = resp.headers()["location"].to_str().expect("ascii").to_owned();
    assert!(location.contains("/signed/") && location.contains("sig="));
    let with_key = client()
        .get(&location)
        .bearer_auth(sim.compliance_key())
        .send()
        .await
        .expect("sent");
    assert_eq!(with_key.status().as_u16(), 403);
    let tampered = client()
        .get(location.replace("sig=", "sig=0"))
        .send()
        .await
        .expect("sent");
    assert_eq!(tampered.status().as_u16(), 403);
    let body = download(&sim, id).await;
    assert_eq!(
        hex::encode(Sha256::digest(&body)),
        file["file_sha256"].as_str().expect("sha")
    );
    assert_eq!(Some(body.len() as u64), file["file_size"].as_u64());
    let text = String::from_utf8(body).expect("utf-8");
    for line in text.lines().filter(|l| !l.is_empty()) {
        let rec: Value = serde_json::from_str(line).expect("each line is a JSON record");
        assert_eq!(rec["type"], "CONVERSATION_MESSAGE");
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn wrong_keys_unknown_principals_and_expired_urls_are_refused() {
    let sim = sim_with(SimConfig {
        signed_url_ttl: Duration::ZERO,
        ..SimConfig::default()
    })
    .await;
    let url = format!("{}?event_type=AUTH_LOG&after=2020-01-01T00:00:00Z", logs_url(&sim));
    assert_eq!(get(url.clone(), sim.admin_key()).await.0, 401);
    assert_eq!(
        get(
            url.replace("after=2020-01-01T00:00:00Z", "after=yesterday"),
            sim.compliance_key()
        )
        .await
        .0,
        400
    );
    assert_eq!(get(url.replace("AUTH_LOG", "NOPE"), sim.compliance_key()).await.0, 400);
    let other = format!(
        "{}/compliance/workspaces/00000000-0000-4000-8000-000000000000/logs?event_type=AUTH_LOG&after=2020-01-01T00:00:00Z",
        sim.compliance_base_url()
    );
    assert_eq!(get(other, sim.compliance_key()).await.0, 404);
    let org = format!(
        "{}/compliance/organizations/{}/logs?event_type=AUTH_LOG&after=2020-01-01T00:00:00Z",
        sim.compliance_base_url(),
        sim.org_id()
    );
    assert_eq!(get(org, sim.compliance_key()).await.0, 200);
    let files = all_files(&sim, "AUTH_LOG", 1).await;
    let id = files[0]["id"].as_str().expect("id");
    let resp = client()
        .get(format!("{}/{id}", logs_url(&sim)))
        .bearer_auth(sim.compliance_key())
        .send()
        .await
        .expect("sent");
    let location = resp.headers()["location"].to_str().expect("ascii").to_owned();
    assert_eq!(
        client().get(&location).send().await.expect("sent").status().as_u16(),
        403,
        "expired"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn new_events_land_in_a_new_file_and_corruption_breaks_the_checksum() {
    let sim = sim().await;
    let before = all_files(&sim, "CODEX_LOG", 100).await.len();
    let ids = sim.org().add_compliance_events("CODEX_LOG", 4);
    sim.org().cut_compliance_files();
    let files = all_files(&sim, "CODEX_LOG", 100).await;
    assert_eq!(files.len(), before + 1);
    let newest = files.last().expect("a file");
    let body = download(&sim, newest["id"].as_str().expect("id")).await;
    let text = String::from_utf8(body).expect("utf-8");
    let got: HashSet<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).expect("json")["event_id"]
                .as_str()
                .expect("id")
                .to_owned()
        })
        .collect();
    assert!(ids.iter().all(|id| got.contains(id)));
    sim.faults().inject(Family::SignedUrl, Fault::CorruptFile, 1);
    let bad = download(&sim, newest["id"].as_str().expect("id")).await;
    assert_ne!(
        hex::encode(Sha256::digest(&bad)),
        newest["file_sha256"].as_str().expect("sha")
    );
    let good = download(&sim, newest["id"].as_str().expect("id")).await;
    assert_eq!(
        hex::encode(Sha256::digest(&good)),
        newest["file_sha256"].as_str().expect("sha")
    );
    let (status, freshness) = get(
        format!(
            "{}/compliance/workspaces/{}/max_event_time?event_type=CODEX_LOG&event_type=AUTH_LOG",
            sim.compliance_base_url(),
            sim.workspace_id()
        ),
        sim.compliance_key(),
    )
    .await;
    assert_eq!(status, 200);
    assert!(freshness["max_event_time"]["CODEX_LOG"].is_string());
    sim.shutdown().await;
}

#[tokio::test]
async fn delivery_is_at_least_once_an_event_can_reappear_in_the_next_file() {
    let sim = sim_with(SimConfig {
        compliance_duplicate_probability: 1.0,
        ..SimConfig::default()
    })
    .await;
    let files = all_files(&sim, "CONVERSATION_MESSAGE", 100).await;
    assert!(files.len() >= 2);
    let mut seen = HashSet::new();
    let mut repeats = 0;
    for f in &files {
        let text = String::from_utf8(download(&sim, f["id"].as_str().expect("id")).await).expect("utf-8");
        for line in text.lines() {
            let v: Value = serde_json::from_str(line).expect("json");
            if !seen.insert(v["event_id"].as_str().expect("id").to_owned()) {
                repeats += 1;
            }
        }
    }
    assert_eq!(repeats, files.len() - 1, "each later file repeats one event");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_generated_file_is_served_whole_with_the_listed_size_and_checksum() {
    let sim = sim_with(SimConfig {
        history_events: 0,
        ..SimConfig::default()
    })
    .await;
    let (events, bytes) = sim
        .org()
        .add_generated_compliance_file("CONVERSATION_MESSAGE", 200_000)
        .expect("a type the simulator generates");
    assert!(bytes >= 200_000, "at least what was asked for: {bytes}");
    let files = all_files(&sim, "CONVERSATION_MESSAGE", 100).await;
    assert_eq!(files.len(), 1);
    let file = &files[0];
    assert_eq!(file["file_size"].as_u64(), Some(bytes as u64));
    let id = file["id"].as_str().expect("id");
    let body = download(&sim, id).await;
    assert_eq!(body.len(), bytes);
    assert_eq!(
        file["file_sha256"].as_str(),
        Some(hex::encode(Sha256::digest(&body)).as_str())
    );
    let lines: Vec<Value> = body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).expect("every line is JSON"))
        .collect();
    assert_eq!(lines.len(), events);
    let ids: HashSet<&str> = lines.iter().filter_map(|l| l["event_id"].as_str()).collect();
    assert_eq!(ids.len(), events, "every event once");
    assert!(lines.iter().all(|l| l["type"] == "CONVERSATION_MESSAGE"));
    let times: Vec<&str> = lines.iter().filter_map(|l| l["timestamp"].as_str()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "in time order");
    // The same bytes a second time: nothing about the file was kept but how to make it.
    assert_eq!(download(&sim, id).await, body);
    sim.shutdown().await;
}

#[tokio::test]
async fn unknown_types_get_no_generated_file() {
    let sim = sim().await;
    assert_eq!(sim.org().add_generated_compliance_file("NOT_A_TYPE", 1000), None);
    sim.shutdown().await;
}
