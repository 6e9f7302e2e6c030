//! The receiver: what it accepts and records, its scripts and token, and the NDJSON file.

use std::io::Write;
use std::time::Duration;

use openai_audit_simulator::{ReceiverScript, SimConfig, Simulator};
use serde_json::json;

use crate::helpers::{client, sim, sim_with};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).expect("in-memory write");
    enc.finish().expect("in-memory finish")
}

async fn post(sim: &Simulator, body: Vec<u8>, ctype: &str, gz: bool, token: Option<&str>) -> reqwest::Response {
    let mut req = client()
        .post(sim.receiver_url())
        .header("content-type", ctype)
        .header("idempotency-key", "abc123");
    if gz {
        req = req.header("content-encoding", "gzip");
    }
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.body(body).send().await.expect("request reaches the receiver")
}

#[tokio::test]
async fn accepts_gzip_ndjson_and_json_arrays_and_records_the_headers() {
    let sim = sim().await;
    let ndjson = "{\"id\":\"a\"}\n{\"id\":\"b\"}\n";
    let resp = post(&sim, gzip(ndjson.as_bytes()), "application/x-ndjson", true, None).await;
    assert_eq!(resp.status().as_u16(), 200);
    let array = serde_json::to_vec(&json!([{"id": "c"}])).expect("serializes");
    let resp = post(&sim, array, "application/json", false, None).await;
    assert_eq!(resp.status().as_u16(), 200);
    assert!(sim.receiver().wait_for(3, Duration::from_secs(5)).await);
    assert_eq!(sim.receiver().ids(), vec!["a", "b", "c"]);
    let batches = sim.receiver().batches();
    assert_eq!(batches.len(), 2);
    assert_eq!(batches[0].content_encoding.as_deref(), Some("gzip"));
    assert_eq!(batches[0].idempotency_key.as_deref(), Some("abc123"));
    assert_eq!(batches[1].content_type.as_deref(), Some("application/json"));
    assert!(!batches[0].authorization_present);
    // wait_for gives up rather than hanging when nothing more arrives.
    assert!(!sim.receiver().wait_for(4, Duration::from_millis(50)).await);
    sim.shutdown().await;
}

#[tokio::test]
async fn scripted_responses_and_the_token_are_enforced() {
    let sim = sim_with(SimConfig {
        receiver_token: Some("recv-token".into()),
        ..SimConfig::default()
    })
    .await;
    let body = || b"{\"id\":\"x-1\"}\n{\"id\":\"x-2\"}\n".to_vec();
    let nd = "application/x-ndjson";
    assert_eq!(post(&sim, body(), nd, false, None).await.status().as_u16(), 401);
    assert_eq!(
        post(&sim, body(), nd, false, Some("wrong")).await.status().as_u16(),
        401
    );
    let rx = sim.receiver();
    rx.set_response(ReceiverScript::Next {
        status: 503,
        retry_after_secs: None,
        times: 1,
    });
    rx.set_response(ReceiverScript::Next {
        status: 429,
        retry_after_secs: Some(7),
        times: 1,
    });
    assert_eq!(
        post(&sim, body(), nd, false, Some("recv-token"))
            .await
            .status()
            .as_u16(),
        503
    );
    let limited = post(&sim, body(), nd, false, Some("recv-token")).await;
    assert_eq!(limited.status().as_u16(), 429);
    assert_eq!(limited.headers()["retry-after"], "7");
    rx.set_response(ReceiverScript::MaxBodyBytes { bytes: 10 });
    assert_eq!(
        post(&sim, body(), nd, false, Some("recv-token"))
            .await
            .status()
            .as_u16(),
        413
    );
    rx.set_response(ReceiverScript::Clear);
    rx.set_response(ReceiverScript::RejectIdContaining {
        needle: "x-2".into(),
        status: 400,
    });
    assert_eq!(
        post(&sim, body(), nd, false, Some("recv-token"))
            .await
            .status()
            .as_u16(),
        400
    );
    let only_first = b"{\"id\":\"x-1\"}\n".to_vec();
    assert_eq!(
        post(&sim, only_first, nd, false, Some("recv-token"))
            .await
            .status()
            .as_u16(),
        200
    );
    assert_eq!(rx.ids(), vec!["x-1"]);
    let statuses: Vec<u16> = rx.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![401, 401, 503, 429, 413, 400, 200]);
    assert!(rx.batches()[0].authorization_present);
    let stats: serde_json::Value = client()
        .get(format!("http://{}/_sim/receiver/stats", sim.local_addr()))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(stats["events"], 1);
    assert_eq!(stats["requests"], 7);
    sim.shutdown().await;
}

#[tokio::test]
async fn received_events_can_be_persisted_to_an_ndjson_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("received.ndjson");
    let sim = sim_with(SimConfig {
        receiver_file: Some(path.clone()),
        ..SimConfig::default()
    })
    .await;
    let resp = post(&sim, b"{\"id\":\"p\"}\n".to_vec(), "application/x-ndjson", false, None).await;
    assert_eq!(resp.status().as_u16(), 200);
    let text = std::fs::read_to_string(&path).expect("file written before the ack");
    assert_eq!(text, "{\"id\":\"p\"}\n");
    sim.shutdown().await;
}

#[tokio::test]
async fn counting_only_keeps_the_tally_and_drops_the_events() {
    let sim = sim().await;
    let first = "{\"id\":\"a\"}\n{\"id\":\"b\"}\n";
    let resp = post(&sim, gzip(first.as_bytes()), "application/x-ndjson", true, None).await;
    assert_eq!(resp.status().as_u16(), 200);
    sim.receiver().keep_counts_only();
    let again = "{\"id\":\"b\"}\n{\"id\":\"c\"}\n{\"id\":\"d\"}\n";
    let resp = post(&sim, again.as_bytes().to_vec(), "application/x-ndjson", false, None).await;
    assert_eq!(resp.status().as_u16(), 200);
    assert!(sim.receiver().wait_for(5, Duration::from_secs(5)).await);
    let tally = sim.receiver().tally();
    assert_eq!((tally.events, tally.unique_ids), (5, 4), "b came twice");
    assert_eq!(tally.plain_bytes, first.len() + again.len());
    assert_eq!(tally.wire_bytes, gzip(first.as_bytes()).len() + again.len());
    // Only what arrived before counting-only was kept.
    assert_eq!(sim.receiver().ids(), vec!["a", "b"]);
    assert_eq!(sim.receiver().batches().len(), 1);
    sim.shutdown().await;
}
