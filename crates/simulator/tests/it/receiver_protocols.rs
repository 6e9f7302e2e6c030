//! The receiver's protocols over real HTTP: each envelope at its standard path with its own
//! auth header form, and the partial failures each service really gives.

use openai_audit_simulator::{ReceiverScript, SimConfig, Simulator};
use serde_json::{Value, json};

use crate::helpers::{client, sim_with};

const TOKEN: &str = "recv-token";

async fn token_sim() -> Simulator {
    sim_with(SimConfig {
        receiver_token: Some(TOKEN.into()),
        ..SimConfig::default()
    })
    .await
}

/// POSTs `body` to `protocol`'s endpoint with `authorization` (and a HEC channel).
async fn post(sim: &Simulator, protocol: &str, authorization: &str, body: String) -> (u16, String) {
    let url = sim.receiver_url_for(protocol).expect("a protocol the receiver plays");
    let resp = client()
        .post(url)
        .header("authorization", authorization)
        .header("content-type", "application/json")
        .header("x-splunk-request-channel", "11111111-2222-4333-8444-555555555555")
        .body(body)
        .send()
        .await
        .expect("request reaches the receiver");
    (resp.status().as_u16(), resp.text().await.expect("body"))
}

fn akto(ids: &[&str]) -> String {
    let records: Vec<Value> = ids
        .iter()
        .map(|id| {
            json!({"path": "/openai/x/y", "method": "POST", "requestPayload": json!({"id": id}).to_string(),
                   "ip": "0.0.0.0", "time": "1", "statusCode": "200", "akto_account_id": "1000000", "source": "MIRRORING"})
        })
        .collect();
    json!({ "batchData": records }).to_string()
}

fn bulk(ids: &[&str]) -> String {
    ids.iter()
        .map(|id| format!("{{\"create\":{{\"_index\":\"i\",\"_id\":\"{id}\"}}}}\n{{\"id\":\"{id}\"}}\n"))
        .collect()
}

fn loki(ids: &[&str]) -> String {
    let values: Vec<Value> = ids
        .iter()
        .map(|id| json!(["1", json!({"id": id}).to_string()]))
        .collect();
    json!({"streams": [{"stream": {"source": "s"}, "values": values}]}).to_string()
}

#[tokio::test]
async fn each_protocol_takes_its_envelope_only_with_its_own_auth_header_form() {
    let sim = token_sim().await;
    let hec = format!(
        "{}\n{}",
        json!({"time": 1.5, "event": {"id": "h1"}}),
        json!({"event": {"id": "h2"}})
    );
    let otlp = json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [{"timeUnixNano": "1", "observedTimeUnixNano": "2", "severityNumber": 9,
        "body": {"kvlistValue": {"values": [{"key": "id", "value": {"stringValue": "o1"}}]}}}]}]}]})
    .to_string();
    let cases = [
        ("akto", TOKEN.to_string(), akto(&["a1"]), 200),
        ("splunk_hec", format!("Splunk {TOKEN}"), hec, 200),
        ("elasticsearch", format!("ApiKey {TOKEN}"), bulk(&["e1"]), 200),
        ("otlp", format!("Bearer {TOKEN}"), otlp, 200),
        ("loki", format!("Bearer {TOKEN}"), loki(&["l1"]), 204),
    ];
    for (protocol, good, body, ok) in cases {
        let (status, _) = post(&sim, protocol, &format!("Bearer x{TOKEN}"), body.clone()).await;
        assert!(
            status == 401 || status == 403,
            "{protocol}: a wrong header form is refused ({status})"
        );
        let (status, answer) = post(&sim, protocol, &good, body).await;
        assert_eq!(status, ok, "{protocol}: {answer}");
    }
    let mut ids = sim.receiver().ids();
    ids.sort();
    assert_eq!(ids, ["a1", "e1", "h1", "h2", "l1", "o1"]);
    let protocols: Vec<&str> = sim.receiver().batches().iter().map(|b| b.protocol).collect();
    assert_eq!(protocols, ["akto", "splunk_hec", "elasticsearch", "otlp", "loki"]);
    sim.shutdown().await;
}

#[tokio::test]
async fn partial_failures_are_played_as_each_service_gives_them() {
    let sim = token_sim().await;
    let rx = sim.receiver();
    // Elasticsearch: a scripted item error, and 409 for an _id it already holds.
    rx.set_response(ReceiverScript::ItemStatus {
        needle: "e2".into(),
        status: 429,
        times: Some(1),
    });
    let (_, answer) = post(&sim, "elasticsearch", &format!("ApiKey {TOKEN}"), bulk(&["e1", "e2"])).await;
    let answer: Value = serde_json::from_str(&answer).expect("json");
    assert_eq!(answer["errors"], true);
    assert_eq!(answer["items"][0]["create"]["status"], 201);
    assert_eq!(answer["items"][1]["create"]["status"], 429);
    let (_, answer) = post(&sim, "elasticsearch", &format!("ApiKey {TOKEN}"), bulk(&["e1", "e2"])).await;
    let answer: Value = serde_json::from_str(&answer).expect("json");
    assert_eq!(answer["items"][0]["create"]["status"], 409);
    assert_eq!(answer["items"][1]["create"]["status"], 201);
    // Loki: the good entries are written, the bad one named in a 400; repeats are dropped.
    rx.set_response(ReceiverScript::RejectIdContaining {
        needle: "l2".into(),
        status: 400,
    });
    let (status, text) = post(&sim, "loki", &format!("Bearer {TOKEN}"), loki(&["l1", "l2"])).await;
    assert_eq!(status, 400);
    assert!(text.contains("timestamp too old"), "{text}");
    let (status, _) = post(&sim, "loki", &format!("Bearer {TOKEN}"), loki(&["l1"])).await;
    assert_eq!(status, 204);
    // Akto: a 422 that names nothing, storing nothing.
    rx.set_response(ReceiverScript::RejectIdContaining {
        needle: "a2".into(),
        status: 422,
    });
    let (status, text) = post(&sim, "akto", TOKEN, akto(&["a1", "a2"])).await;
    assert_eq!((status, text.as_str()), (422, r#"{"actionErrors":[]}"#));
    rx.set_response(ReceiverScript::Clear);
    // Splunk: an ackId per channel, true once, then forgotten; a withheld one stays false.
    rx.set_response(ReceiverScript::WithholdAcks { times: 1 });
    let hec = |id: &str| json!({"event": {"id": id}}).to_string();
    let (_, first) = post(&sim, "splunk_hec", &format!("Splunk {TOKEN}"), hec("h1")).await;
    let (_, second) = post(&sim, "splunk_hec", &format!("Splunk {TOKEN}"), hec("h2")).await;
    assert_eq!(serde_json::from_str::<Value>(&first).expect("json")["ackId"], 0);
    assert_eq!(serde_json::from_str::<Value>(&second).expect("json")["ackId"], 1);
    let ack_url = format!("http://{}/services/collector/ack", sim.local_addr());
    let ask = || async {
        client()
            .post(&ack_url)
            .header("authorization", format!("Splunk {TOKEN}"))
            .header("x-splunk-request-channel", "11111111-2222-4333-8444-555555555555")
            .body(r#"{"acks":[0,1]}"#)
            .send()
            .await
            .expect("sent")
            .json::<Value>()
            .await
            .expect("json")
    };
    assert_eq!(ask().await, json!({"acks": {"0": false, "1": true}}));
    assert_eq!(
        ask().await,
        json!({"acks": {"0": false, "1": false}}),
        "a true is reported once"
    );
    let mut ids = rx.ids();
    ids.sort();
    assert_eq!(
        ids,
        ["e1", "e2", "h2", "l1"],
        "the withheld HEC batch was never indexed"
    );
    sim.shutdown().await;
}
