//! The receiver's answers, as a working, broken or hostile ingestion service might send them:
//! every protocol reads any status and body without panicking, and no reading can count a
//! batch as sent that the receiver did not take.

use bytes::Bytes;
use proptest::prelude::*;
use reqwest::StatusCode;
use strum::IntoEnumIterator;

use super::{config, mutated};
use crate::sink::protocol::splunk_hec::ack_status;
use crate::sink::protocol::{Answer, ItemVerdict, Protocol, Verdict, Wire, wire};
use crate::sink::settings::ProtocolOptions;

/// Real answers of each service: the starting points for mutations.
const SAMPLES: &[&[u8]] = &[
    br#"{"took":3,"errors":true,"items":[{"create":{"_index":"logs","_id":"a","status":201}},{"create":{"_index":"logs","_id":"b","status":400,"error":{"type":"document_parsing_exception","reason":"failed to parse"}}},{"create":{"_index":"logs","_id":"c","status":429,"error":{"type":"es_rejected_execution_exception"}}}]}"#,
    br#"{"took":1,"errors":false,"items":[{"create":{"_id":"a","status":201}}]}"#,
    br#"{"text":"Success","code":0,"ackId":7}"#,
    br#"{"text":"Server is busy","code":9,"invalid-event-number":2}"#,
    br#"{"text":"Invalid data format","code":6,"invalid-event-number":1}"#,
    br#"{"text":"Invalid token","code":4}"#,
    br#"{"partialSuccess":{"rejectedLogRecords":"2","errorMessage":"2 records too large"}}"#,
    br#"{"partialSuccess":{}}"#,
    br#"{"errors":[{"field":"batchData[1]","message":"invalid"}]}"#,
    b"entry for stream '{source=\"openai.audit_log\"}' has timestamp too old\n",
    br#"{"acks":{"0":true,"1":false,"7":true}}"#,
];

/// Every protocol's wire, Splunk both with and without indexer acknowledgement.
fn wires() -> Vec<(Protocol, Box<dyn Wire>)> {
    let mut wires: Vec<_> = Protocol::iter()
        .map(|p| (p, wire(p, &ProtocolOptions::default())))
        .collect();
    let acked = ProtocolOptions {
        ack: true,
        ..ProtocolOptions::default()
    };
    wires.push((Protocol::SplunkHec, wire(Protocol::SplunkHec, &acked)));
    wires
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => prop::sample::select(SAMPLES.to_vec()).prop_flat_map(|s| mutated(s.to_vec())),
        1 => prop::sample::select(SAMPLES.to_vec()).prop_map(<[u8]>::to_vec),
        1 => prop::collection::vec(any::<u8>(), 0..256),
        1 => super::json().prop_map(|v| v.to_string().into_bytes()),
    ]
}

fn status() -> impl Strategy<Value = u16> {
    prop_oneof![
        prop::sample::select(vec![
            200u16, 201, 204, 206, 301, 400, 401, 403, 404, 409, 413, 429, 500, 503
        ]),
        100u16..=599,
    ]
}

/// Whether `verdict` takes any event as delivered (or as waiting only for an acknowledgement).
fn takes_some(verdict: &Verdict) -> bool {
    match verdict {
        Verdict::Delivered | Verdict::Dropped { .. } | Verdict::AwaitAck(_) => true,
        Verdict::Each(each) => each.contains(&ItemVerdict::Delivered),
        Verdict::Retry(_) | Verdict::Pause(..) | Verdict::Refused(_) => false,
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_answer_is_read_without_panicking_and_per_event_verdicts_cover_the_batch(
        status in status(),
        body in body(),
        items in 1usize..40,
    ) {
        let answer = Answer {
            status: StatusCode::from_u16(status).expect("100..=599 is a status"),
            retry_after: None,
            body: Bytes::from(body),
            reason: format!("HTTP {status}"),
        };
        for (protocol, wire) in wires() {
            let verdict = wire.interpret(&answer, items);
            if let Verdict::Each(each) = &verdict {
                prop_assert_eq!(each.len(), items, "{} names every event once", protocol.as_str());
            }
            // Only a 2xx takes events, except Splunk's documented partial answers (code 9
            // "server busy" and 6 "invalid data format" with `invalid-event-number`), where
            // the events before the named one are indexed.
            if !answer.status.is_success() && protocol != Protocol::SplunkHec {
                prop_assert!(
                    !takes_some(&verdict),
                    "{} took events on HTTP {status}: {verdict:?}",
                    protocol.as_str()
                );
            }
        }
    }

    #[test]
    fn an_elasticsearch_bulk_answer_counts_as_delivered_only_when_it_says_no_errors(
        body in body(),
        items in 1usize..8,
    ) {
        let answer = Answer {
            status: StatusCode::OK,
            retry_after: None,
            body: Bytes::from(body.clone()),
            reason: "HTTP 200".to_string(),
        };
        let verdict = wire(Protocol::Elasticsearch, &ProtocolOptions::default()).interpret(&answer, items);
        if verdict == Verdict::Delivered {
            let reply: serde_json::Value = serde_json::from_slice(&body).expect("a delivered answer was JSON");
            prop_assert_eq!(reply.get("errors"), Some(&serde_json::Value::Bool(false)));
        }
    }

    #[test]
    fn an_acknowledgement_status_is_read_or_refused_never_guessed(body in body()) {
        if let Ok(acks) = ack_status(&body) {
            let reply: serde_json::Value = serde_json::from_slice(&body).expect("a read status was JSON");
            let listed = reply["acks"].as_object().expect("acks is an object");
            prop_assert!(acks.len() <= listed.len(), "no id is invented");
            for (id, done) in &acks {
                let said = listed
                    .iter()
                    .any(|(key, value)| key.parse::<u64>().ok() == Some(*id) && *value == serde_json::Value::Bool(*done));
                prop_assert!(said, "ack {id} = {done} is what the receiver said");
            }
        }
    }
}
