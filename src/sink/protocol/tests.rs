//! Each protocol's envelope (built from real normalized events, decoded the way its service
//! decodes it) and what each of its answers means, event by event.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::*;
use crate::normalize::{Actor, Event, Source};
use crate::sink::batch::{Batch, Limits};
use crate::sink::settings::{LokiLabel, ProtocolOptions};

fn event(n: usize, org: Option<&str>, source: Source) -> Event {
    let at = DateTime::parse_from_rfc3339("2026-07-31T21:30:46.120Z")
        .expect("time")
        .with_timezone(&Utc);
    let mut e = Event::new(
        format!("{}:{}:ev-{n}", source.as_str(), org.unwrap_or("_")),
        source,
        org.map(str::to_string),
        "api_key.created".into(),
        at,
    );
    e.category = "credential".into();
    e.details = json!({"n": n, "big": u64::MAX, "ratio": 0.5, "none": null, "list": [1, "a"]});
    e.actor = Some(Actor {
        actor_type: "user".into(),
        ip: Some("203.0.113.7".into()),
        ..Actor::default()
    });
    e
}

struct Encoded {
    wire: Box<dyn Wire>,
    pieces: Vec<Piece>,
    body: Vec<u8>,
}

/// The body `protocol` makes of `events`, and a check that the batcher counted it exactly.
fn encode(protocol: Protocol, options: &ProtocolOptions, events: &[Event]) -> Encoded {
    let wire = wire(protocol, options);
    let jsons: Vec<Vec<u8>> = events.iter().map(|e| serde_json::to_vec(e).expect("json")).collect();
    let pieces: Vec<Piece> = events
        .iter()
        .zip(&jsons)
        .map(|(e, json)| {
            wire.item(&Doc {
                id: &e.id,
                event: Some(e),
                json,
            })
            .expect("encodes")
        })
        .collect();
    let refs: Vec<&Piece> = pieces.iter().collect();
    let body = assemble(wire.as_ref(), &refs);
    // The gzipped body is written piece by piece into the compressor, not from `body`.
    let zipped = crate::sink::encode::gzip(wire.as_ref(), &refs, 1).expect("gzips");
    let mut unzipped = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&zipped[..]), &mut unzipped).expect("gunzips");
    assert!(unzipped == body, "{} gzipped body is the plain body", protocol.as_str());
    let mut batch = Batch::new(Limits {
        frame: wire.frame(),
        max_events: std::num::NonZeroUsize::new(1000).expect("non-zero"),
        max_bytes: usize::MAX,
    });
    for piece in &pieces {
        batch.push(piece.clone());
    }
    assert_eq!(
        batch.bytes(),
        body.len(),
        "{} body size is what the batcher counted",
        protocol.as_str()
    );
    Encoded { wire, pieces, body }
}

fn answer(status: u16, body: Value) -> Answer {
    Answer {
        status: StatusCode::from_u16(status).expect("status"),
        retry_after: None,
        body: Bytes::from(body.to_string()),
        reason: format!("HTTP {status}"),
    }
}

fn events(n: usize) -> Vec<Event> {
    (0..n)
        .map(|i| event(i, Some(if i % 2 == 0 { "org-a" } else { "org-b" }), Source::AuditLog))
        .collect()
}

#[test]
fn every_protocol_body_is_exactly_as_long_as_the_batcher_counted() {
    let options = ProtocolOptions {
        labels: vec![LokiLabel::Source, LokiLabel::OrgId],
        ..ProtocolOptions::default()
    };
    for protocol in <Protocol as strum::IntoEnumIterator>::iter() {
        for n in [1, 2, 5] {
            encode(protocol, &options, &events(n));
        }
    }
}

#[test]
fn statuses_every_protocol_shares_pause_on_configuration_and_credentials() {
    let verdict = |s| by_status(&answer(s, json!({})));
    for s in [404, 405, 415, 301] {
        assert!(matches!(verdict(s), Verdict::Pause(PauseCause::Config, _)), "{s}");
    }
    for s in [401, 403] {
        assert!(matches!(verdict(s), Verdict::Pause(PauseCause::Auth, _)), "{s}");
    }
    for s in [408, 425, 429, 500, 502, 503] {
        assert!(matches!(verdict(s), Verdict::Retry(_)), "{s}");
    }
    assert!(matches!(
        verdict(413),
        Verdict::Refused(Refusal {
            label: DeadLetterReason::TooLarge,
            ..
        })
    ));
    assert!(matches!(
        verdict(422),
        Verdict::Refused(Refusal {
            label: DeadLetterReason::Rejected4xx,
            ..
        })
    ));
    assert_eq!(verdict(204), Verdict::Delivered);
}

#[test]
fn akto_records_are_all_strings_with_the_event_as_the_request_payload() {
    let mut sample = events(2);
    sample[1].actor = None;
    let enc = encode(Protocol::Akto, &ProtocolOptions::default(), &sample);
    let body: Value = serde_json::from_slice(&enc.body).expect("json");
    let records = body["batchData"].as_array().expect("batchData");
    assert_eq!(records.len(), 2);
    for (record, event) in records.iter().zip(&sample) {
        assert!(
            record.as_object().expect("object").values().all(Value::is_string),
            "{record}"
        );
        assert_eq!(record["path"], "/openai/openai.audit_log/api_key.created");
        assert_eq!(record["time"], event.occurred_at.timestamp().to_string());
        assert_eq!(record["akto_account_id"], "1000000");
        assert_eq!(record["source"], "MIRRORING");
        let payload: Event = serde_json::from_str(record["requestPayload"].as_str().expect("text")).expect("event");
        assert_eq!(&payload, event);
        let tag: Value = serde_json::from_str(record["tag"].as_str().expect("text")).expect("tag json");
        assert_eq!(tag["event_source"], "openai.audit_log");
    }
    assert_eq!(records[0]["ip"], "203.0.113.7");
    assert_eq!(records[1]["ip"], "0.0.0.0");
    // The body of a success says `success: false`; only the status counts.
    assert_eq!(
        enc.wire.interpret(&answer(200, json!({"success": false})), 2),
        Verdict::Delivered
    );
    assert!(matches!(
        enc.wire.interpret(&answer(422, json!({"actionErrors": []})), 2),
        Verdict::Refused(Refusal {
            label: DeadLetterReason::Rejected4xx,
            ..
        })
    ));
}

#[test]
fn an_akto_record_over_five_mib_is_refused_before_it_is_sent() {
    let mut huge = event(0, None, Source::AuditLog);
    huge.details = json!({"text": "x".repeat(6 * 1024 * 1024)});
    let wire = wire(Protocol::Akto, &ProtocolOptions::default());
    let json = serde_json::to_vec(&huge).expect("json");
    let refused = wire
        .item(&Doc {
            id: &huge.id,
            event: Some(&huge),
            json: &json,
        })
        .expect_err("too large");
    assert_eq!(refused.label, DeadLetterReason::TooLarge);
}

fn hec(ack: bool) -> ProtocolOptions {
    ProtocolOptions {
        index: "openai".into(),
        ack,
        ..ProtocolOptions::default()
    }
}

#[test]
fn splunk_events_carry_time_source_sourcetype_and_index_around_the_event() {
    let sample = events(2);
    let enc = encode(Protocol::SplunkHec, &hec(false), &sample);
    let items: Vec<Value> = serde_json::Deserializer::from_slice(&enc.body)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .expect("concatenated JSON objects");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["time"].as_f64(), Some(1_785_533_446.12));
    assert_eq!(items[0]["source"], "openai.audit_log");
    assert_eq!(items[0]["sourcetype"], "openai:audit");
    assert_eq!(items[0]["index"], "openai");
    assert_eq!(items[0]["host"], "openai-audit-ingest");
    assert_eq!(items[1]["event"]["id"], json!(sample[1].id));
    let channel = enc.wire.headers();
    assert_eq!(channel[0].0, splunk_hec::CHANNEL);
    assert_eq!(channel[0].1.len(), 36, "a GUID");
}

#[test]
fn splunk_stops_at_the_invalid_event_and_says_where() {
    let wire = wire(Protocol::SplunkHec, &hec(false));
    let invalid = answer(
        400,
        json!({"text": "Invalid data format", "code": 6, "invalid-event-number": 2}),
    );
    let Verdict::Each(each) = wire.interpret(&invalid, 5) else {
        panic!("per event");
    };
    assert_eq!(each[..2], [ItemVerdict::Delivered, ItemVerdict::Delivered]);
    assert!(
        matches!(&each[2], ItemVerdict::Refused(r) if r.label == DeadLetterReason::InvalidEvent && r.reason.contains("code 6"))
    );
    assert!(matches!(each[3], ItemVerdict::Retry(_)) && matches!(each[4], ItemVerdict::Retry(_)));
    let busy = answer(
        503,
        json!({"text": "Server is busy", "code": 9, "invalid-event-number": 1}),
    );
    let Verdict::Each(each) = wire.interpret(&busy, 3) else {
        panic!("per event");
    };
    assert_eq!(each[0], ItemVerdict::Delivered);
    assert!(each[1..].iter().all(|v| matches!(v, ItemVerdict::Retry(_))));
    assert!(matches!(
        wire.interpret(&answer(400, json!({"text": "Incorrect index", "code": 7})), 3),
        Verdict::Pause(PauseCause::Config, _)
    ));
    assert!(matches!(
        wire.interpret(&answer(403, json!({"text": "Invalid token", "code": 4})), 3),
        Verdict::Pause(PauseCause::Auth, _)
    ));
    assert!(matches!(
        wire.interpret(&answer(400, json!({"text": "Event field is required", "code": 12})), 3),
        Verdict::Refused(_)
    ));
}

#[test]
fn with_indexer_acknowledgement_splunk_counts_nothing_before_the_ack() {
    let wire = wire(Protocol::SplunkHec, &hec(true));
    assert_eq!(
        wire.interpret(&answer(200, json!({"text": "Success", "code": 0, "ackId": 7})), 3),
        Verdict::AwaitAck(7)
    );
    let invalid = answer(
        400,
        json!({"text": "Invalid data format", "code": 6, "invalid-event-number": 1}),
    );
    let Verdict::Each(each) = wire.interpret(&invalid, 2) else {
        panic!("per event");
    };
    assert!(
        matches!(each[0], ItemVerdict::Retry(_)),
        "not delivered without its ack"
    );
    let url = Url::parse("https://splunk.example:8088/hec/services/collector/event").expect("url");
    assert_eq!(splunk_hec::ack_url(&url).path(), "/hec/services/collector/ack");
    assert_eq!(splunk_hec::health_url(&url).path(), "/hec/services/collector/health");
    assert_eq!(splunk_hec::ack_query(&[1, 2]), br#"{"acks":[1,2]}"#);
    let status = splunk_hec::ack_status(br#"{"acks":{"1":true,"2":false}}"#).expect("status");
    assert_eq!((status[&1], status[&2]), (true, false));
    // The same acks as an array, positionally, are no status (a derived struct would take it).
    assert!(splunk_hec::ack_status(br#"[{"1":true}]"#).is_err());
}

use url::Url;

#[test]
fn elasticsearch_sends_create_pairs_with_the_event_id_and_a_timestamp() {
    let sample = events(2);
    let enc = encode(Protocol::Elasticsearch, &ProtocolOptions::default(), &sample);
    let text = String::from_utf8(enc.body.clone()).expect("utf-8");
    assert!(text.ends_with('\n'), "a bulk body ends with a newline");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(
        lines[0],
        json!({"create": {"_index": "openai-audit", "_id": sample[0].id}})
    );
    assert_eq!(lines[1]["@timestamp"], "2026-07-31T21:30:46.120Z");
    assert_eq!(lines[1]["id"], json!(sample[0].id));
    assert_eq!(lines[1]["details"]["big"], json!(u64::MAX));
    let long = "x".repeat(600);
    assert!(elasticsearch::document_id(&long).starts_with("sha256:"));
    assert_eq!(elasticsearch::document_id("short"), "short");
}

#[test]
fn elasticsearch_items_are_judged_one_by_one() {
    let wire = wire(Protocol::Elasticsearch, &ProtocolOptions::default());
    let item = |status: u16, kind: &str| {
        if kind.is_empty() {
            json!({"create": {"status": status}})
        } else {
            json!({"create": {"status": status, "error": {"type": kind, "reason": "because"}}})
        }
    };
    let body = json!({"errors": true, "items": [
        item(201, ""), item(409, "version_conflict_engine_exception"), item(429, "es_rejected_execution_exception"),
        item(400, "document_parsing_exception"), item(503, "unavailable_shards_exception"),
        item(403, "cluster_block_exception"), item(403, "security_exception"), item(404, "index_not_found_exception"),
    ]});
    let Verdict::Each(each) = wire.interpret(&answer(200, body), 8) else {
        panic!("per item");
    };
    assert_eq!(each[0], ItemVerdict::Delivered);
    assert_eq!(each[1], ItemVerdict::Delivered, "409 on create: already stored");
    assert!(matches!(each[2], ItemVerdict::Retry(_)));
    assert!(
        matches!(&each[3], ItemVerdict::Refused(r) if r.label == DeadLetterReason::ItemError && r.reason.contains("document_parsing_exception: because"))
    );
    assert!(matches!(each[4], ItemVerdict::Retry(_)));
    assert!(
        matches!(each[5], ItemVerdict::Retry(_)),
        "a read-only cluster is not the event's fault"
    );
    assert!(matches!(each[6], ItemVerdict::Pause(PauseCause::Auth, _)));
    assert!(matches!(each[7], ItemVerdict::Pause(PauseCause::Config, _)));
    assert_eq!(
        wire.interpret(&answer(200, json!({"errors": false, "items": []})), 3),
        Verdict::Delivered
    );
    assert!(matches!(
        wire.interpret(&answer(200, json!({"errors": true, "items": [item(201, "")]})), 2),
        Verdict::Retry(_)
    ));
}

#[test]
fn otlp_bodies_decode_with_the_opentelemetry_projects_own_types() {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;

    let sample = events(3);
    let enc = encode(Protocol::Otlp, &ProtocolOptions::default(), &sample);
    let request: ExportLogsServiceRequest = serde_json::from_slice(&enc.body).expect("an ExportLogsServiceRequest");
    assert_eq!(request.resource_logs.len(), 2, "one resource per organization");
    let resource = request.resource_logs[0].resource.as_ref().expect("resource");
    let attr = |key: &str| {
        resource
            .attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref())
            .and_then(|v| v.value.clone())
    };
    assert_eq!(
        attr("service.name"),
        Some(Any::StringValue("openai-audit-ingest".into()))
    );
    assert_eq!(attr("openai.org_id"), Some(Any::StringValue("org-a".into())));
    let records = &request.resource_logs[0].scope_logs[0].log_records;
    assert_eq!(records.len(), 2);
    let record = &records[0];
    assert_eq!(record.time_unix_nano, 1_785_533_446_120_000_000);
    assert_eq!(record.severity_number, 9);
    assert_eq!(record.event_name, "api_key.created");
    let keys: Vec<&str> = record.attributes.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["event.name", "event.id", "source", "category"]);
    let Some(Any::KvlistValue(body)) = record.body.as_ref().and_then(|b| b.value.clone()) else {
        panic!("the body is the event as a key-value list");
    };
    let field = |key: &str| {
        body.values
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.clone())
    };
    assert_eq!(
        field("id").and_then(|v| v.value),
        Some(Any::StringValue(sample[0].id.clone()))
    );
    assert_eq!(field("schema_version").and_then(|v| v.value), Some(Any::IntValue(1)));
    let Some(Any::KvlistValue(details)) = field("details").and_then(|v| v.value) else {
        panic!("details");
    };
    let detail = |key: &str| {
        details
            .values
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.clone())
    };
    assert_eq!(detail("ratio").and_then(|v| v.value), Some(Any::DoubleValue(0.5)));
    assert!(detail("none").is_none(), "a null member is left out");
    assert_eq!(
        detail("big").and_then(|v| v.value),
        Some(Any::StringValue(u64::MAX.to_string())),
        "a u64 beyond i64 keeps every digit"
    );
    // The body's `timeUnixNano` is a decimal string, as protobuf-JSON wants 64-bit integers.
    let raw: Value = serde_json::from_slice(&enc.body).expect("json");
    assert!(
        raw.pointer("/resourceLogs/0/scopeLogs/0/logRecords/0/timeUnixNano")
            .is_some_and(Value::is_string)
    );
    assert_eq!(enc.pieces.len(), 3);
}

#[test]
fn otlp_partial_success_is_counted_not_retried_and_only_four_statuses_are_retried() {
    let wire = wire(Protocol::Otlp, &ProtocolOptions::default());
    let partial = json!({"partialSuccess": {"rejectedLogRecords": "3", "errorMessage": "bad records"}});
    assert_eq!(
        wire.interpret(&answer(200, partial), 10),
        Verdict::Dropped {
            rejected: 3,
            reason: "bad records".into()
        }
    );
    let warning = json!({"partialSuccess": {"rejectedLogRecords": "0", "errorMessage": "slow down"}});
    assert_eq!(wire.interpret(&answer(200, warning), 10), Verdict::Delivered);
    assert_eq!(wire.interpret(&answer(200, json!({})), 10), Verdict::Delivered);
    for s in [429, 502, 503, 504] {
        assert!(
            matches!(wire.interpret(&answer(s, json!({})), 1), Verdict::Retry(_)),
            "{s}"
        );
    }
    for s in [500, 501, 505] {
        assert!(
            matches!(
                wire.interpret(&answer(s, json!({})), 1),
                Verdict::Refused(Refusal {
                    label: DeadLetterReason::Rejected5xx,
                    ..
                })
            ),
            "{s} is permanent"
        );
    }
    assert!(matches!(
        wire.interpret(&answer(400, json!({})), 1),
        Verdict::Refused(_)
    ));
    assert!(matches!(
        wire.interpret(&answer(408, json!({})), 1),
        Verdict::Refused(_)
    ));
}

#[test]
fn loki_streams_group_events_by_their_labels_with_nanosecond_string_timestamps() {
    let options = ProtocolOptions::default();
    let mut sample = events(3);
    sample[2].org_id = None;
    let enc = encode(Protocol::Loki, &options, &sample);
    let body: Value = serde_json::from_slice(&enc.body).expect("json");
    let streams = body["streams"].as_array().expect("streams");
    assert_eq!(streams.len(), 3, "org-a, org-b, and no org");
    assert_eq!(
        streams[0]["stream"],
        json!({"source": "openai.audit_log", "category": "credential", "org_id": "org-a"})
    );
    assert_eq!(
        streams[2]["stream"],
        json!({"source": "openai.audit_log", "category": "credential"}),
        "no empty label"
    );
    let value = &streams[0]["values"][0];
    assert_eq!(value[0], "1785533446120000000");
    let line: Event = serde_json::from_str(value[1].as_str().expect("line")).expect("the event");
    assert_eq!(line, sample[0]);
}

#[test]
fn loki_counts_only_200_and_204_and_never_retries_a_400() {
    let wire = wire(Protocol::Loki, &ProtocolOptions::default());
    assert_eq!(wire.interpret(&answer(204, json!(null)), 1), Verdict::Delivered);
    assert!(
        matches!(wire.interpret(&answer(260, json!(null)), 1), Verdict::Pause(PauseCause::Config, ref t) if t.reason.contains("block_ingestion_until")),
        "260 means Loki dropped the data"
    );
    assert!(matches!(
        wire.interpret(&answer(400, json!(null)), 4),
        Verdict::Refused(Refusal {
            label: DeadLetterReason::Loki400,
            ..
        })
    ));
    assert!(matches!(
        wire.interpret(&answer(429, json!(null)), 1),
        Verdict::Retry(_)
    ));
}

#[test]
fn an_elasticsearch_200_that_is_not_a_bulk_answer_is_retried_not_taken() {
    let bulk = wire(Protocol::Elasticsearch, &ProtocolOptions::default());
    for body in [json!({}), json!([false]), json!({"took": 1, "items": []})] {
        let verdict = bulk.interpret(&answer(200, body.clone()), 1);
        assert!(matches!(verdict, Verdict::Retry(_)), "{body}: {verdict:?}");
    }
    let fine = bulk.interpret(&answer(200, json!({"took": 1, "errors": false, "items": []})), 1);
    assert_eq!(fine, Verdict::Delivered);
}
