//! What the receiver holds — what arrived and how ([`ReceivedBatch`], [`ReceivedRequest`]),
//! the scripts, each service's own state (stored Elasticsearch ids, Loki's written entries,
//! Splunk's ack ids) — and how each service decides what of a decoded batch it stores and
//! what it answers.

use std::collections::{HashMap, HashSet, VecDeque};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};

use super::http::json_response;
use super::receiver_wire::{Record, Wire, event_id, status_response};

/// One request that stored events.
#[derive(Debug, Clone)]
pub struct ReceivedBatch {
    /// The protocol it came in (`ndjson`, `akto`, `splunk_hec`, …).
    pub protocol: &'static str,
    pub events: usize,
    pub ids: Vec<String>,
    /// What the envelope said about each stored event, in order.
    pub envelopes: Vec<Value>,
    pub idempotency_key: Option<String>,
    pub content_encoding: Option<String>,
    pub content_type: Option<String>,
    pub authorization_present: bool,
    /// Splunk's `X-Splunk-Request-Channel`, when sent.
    pub channel: Option<String>,
    /// Bytes as they came over the wire (compressed when gzip).
    pub wire_bytes: usize,
}

/// Every request, accepted or not, with the status it got.
#[derive(Debug, Clone)]
pub struct ReceivedRequest {
    pub protocol: &'static str,
    pub status: u16,
    pub idempotency_key: Option<String>,
    pub content_encoding: Option<String>,
    pub content_type: Option<String>,
    pub authorization_present: bool,
    pub wire_bytes: usize,
    /// Events in the body (0 when it could not be decoded).
    pub events: usize,
    /// The ids in the body, in order.
    pub ids: Vec<String>,
    /// The body as sent, decompressed (kept for the last requests only).
    pub body: Option<Bytes>,
}

/// Running totals over everything the receiver stored, kept even when it stores nothing
/// else ([`crate::Receiver::keep_counts_only`]): a benchmark of a million events needs these
/// figures, not the events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Events stored (repeats included).
    pub events: usize,
    /// Distinct event ids among them.
    pub unique_ids: usize,
    /// Decompressed bytes of the requests that stored events.
    pub plain_bytes: usize,
    /// Wire bytes (compressed when gzip) of the same requests.
    pub wire_bytes: usize,
}

/// An Elasticsearch item status scripted for ids containing `needle`.
#[derive(Debug)]
pub(crate) struct ItemRule {
    pub(crate) needle: String,
    pub(crate) status: u16,
    pub(crate) left: Option<u32>,
}

/// Everything the receiver holds: what arrived, the scripts, and each service's own state.
#[derive(Debug, Default)]
pub(crate) struct State_ {
    pub(crate) events: Vec<Value>,
    /// Keep only `tally` (and each request's status): no events, batches, ids or bodies.
    pub(crate) counts_only: bool,
    pub(crate) tally: Tally,
    /// Every event id stored, for `tally.unique_ids`.
    pub(crate) seen_ids: HashSet<Box<str>>,
    pub(crate) batches: Vec<ReceivedBatch>,
    pub(crate) requests: Vec<ReceivedRequest>,
    pub(crate) next: VecDeque<(u16, Option<u64>)>,
    pub(crate) max_body: Option<usize>,
    pub(crate) reject: Option<(String, u16)>,
    pub(crate) item_rules: Vec<ItemRule>,
    pub(crate) lose: u32,
    pub(crate) partial: VecDeque<(u32, String)>,
    pub(crate) withhold: u32,
    /// Elasticsearch `_id`s stored: a second `create` gets 409.
    pub(crate) es_ids: HashSet<String>,
    /// Loki entries stored (labels, timestamp, line): exact repeats are dropped.
    pub(crate) loki_seen: HashSet<String>,
    /// Splunk: the next ackId per channel, and each ackId's state (indexed or not).
    pub(crate) hec_next: HashMap<String, u64>,
    pub(crate) hec_acks: HashMap<(String, u64), bool>,
}

fn has(record: &Record, needle: &str) -> bool {
    event_id(&record.event).is_some_and(|id| id.contains(needle))
}

/// What the service stores of `records` and how it answers.
pub(crate) fn accept(
    wire: Wire,
    st: &mut State_,
    channel: Option<&str>,
    records: Vec<Record>,
) -> (Vec<Record>, Response) {
    let reject = st.reject.clone();
    let first_bad = reject
        .as_ref()
        .and_then(|(needle, _)| records.iter().position(|r| has(r, needle)));
    match wire {
        Wire::Generic | Wire::Akto | Wire::Otlp => {
            if let (Some(_), Some((_, status))) = (first_bad, &reject) {
                let response = match wire {
                    // Akto's only refusal says nothing about which record.
                    Wire::Akto => json_response(StatusCode::UNPROCESSABLE_ENTITY, &json!({"actionErrors": []})),
                    _ => status_response(wire, *status, None, "batch holds a rejected event"),
                };
                return (Vec::new(), response);
            }
            match wire {
                Wire::Akto => (records, json_response(StatusCode::OK, &json!({"success": false}))),
                Wire::Otlp => match st.partial.pop_front() {
                    Some((rejected, message)) => {
                        let kept = records.into_iter().skip(rejected as usize).collect();
                        let body = json!({"partialSuccess": {"rejectedLogRecords": rejected.to_string(), "errorMessage": message}});
                        (kept, json_response(StatusCode::OK, &body))
                    }
                    None => (records, json_response(StatusCode::OK, &json!({}))),
                },
                _ => (records, json_response(StatusCode::OK, &json!({"accepted": true}))),
            }
        }
        Wire::SplunkHec => {
            if let Some(at) = first_bad {
                let stored = records.into_iter().take(at).collect();
                let body = json!({"text": "Invalid data format", "code": 6, "invalid-event-number": at});
                return (stored, json_response(StatusCode::BAD_REQUEST, &body));
            }
            let Some(channel) = channel else {
                return (
                    records,
                    json_response(StatusCode::OK, &json!({"text": "Success", "code": 0})),
                );
            };
            let next = st.hec_next.entry(channel.to_string()).or_insert(0);
            let id = *next;
            *next += 1;
            let body = json!({"text": "Success", "code": 0, "ackId": id});
            if st.withhold > 0 {
                st.withhold -= 1;
                st.hec_acks.insert((channel.to_string(), id), false);
                return (Vec::new(), json_response(StatusCode::OK, &body));
            }
            st.hec_acks.insert((channel.to_string(), id), true);
            (records, json_response(StatusCode::OK, &body))
        }
        Wire::Elasticsearch => bulk_items(st, reject.as_ref(), records),
        Wire::Loki => {
            let status = reject.as_ref().map_or(400, |(_, s)| *s);
            if first_bad.is_some() && status == 429 {
                return (
                    Vec::new(),
                    status_response(wire, 429, None, "ingestion rate limit exceeded"),
                );
            }
            let mut stored = Vec::new();
            let mut refused = Vec::new();
            for record in records {
                if reject.as_ref().is_some_and(|(needle, _)| has(&record, needle)) {
                    refused.push(format!(
                        "entry for stream '{}' has timestamp too old: {}, oldest acceptable timestamp is: 2026-01-01T00:00:00Z",
                        record.envelope["labels"], record.envelope["ts"]
                    ));
                    continue;
                }
                let key = format!(
                    "{}|{}|{}",
                    record.envelope["labels"], record.envelope["ts"], record.envelope["line"]
                );
                if st.loki_seen.insert(key) {
                    stored.push(record);
                }
            }
            if refused.is_empty() {
                (stored, StatusCode::NO_CONTENT.into_response())
            } else {
                (stored, (StatusCode::BAD_REQUEST, refused.join("\n")).into_response())
            }
        }
    }
}

/// Elasticsearch's per-item results: 201 stored, 409 already there, or the scripted error.
fn bulk_items(st: &mut State_, reject: Option<&(String, u16)>, records: Vec<Record>) -> (Vec<Record>, Response) {
    let mut stored = Vec::new();
    let mut items = Vec::new();
    let mut errors = false;
    for record in records {
        let id = record.envelope["_id"].as_str().unwrap_or_default().to_string();
        let index = record.envelope["_index"].clone();
        let scripted = st
            .item_rules
            .iter_mut()
            .find(|r| has(&record, &r.needle) && r.left != Some(0));
        let (status, error) = if st.es_ids.contains(&id) {
            (
                409,
                Some((
                    "version_conflict_engine_exception",
                    format!("[{id}]: version conflict, document already exists"),
                )),
            )
        } else if let Some(rule) = scripted {
            if let Some(left) = rule.left.as_mut() {
                *left -= 1;
            }
            let kind = match rule.status {
                429 => "es_rejected_execution_exception",
                409 => "version_conflict_engine_exception",
                400 => "document_parsing_exception",
                404 => "index_not_found_exception",
                _ => "unavailable_shards_exception",
            };
            (rule.status, Some((kind, format!("scripted item error for [{id}]"))))
        } else if reject.is_some_and(|(needle, _)| has(&record, needle)) {
            (
                400,
                Some((
                    "document_parsing_exception",
                    format!("[1:2] failed to parse document [{id}]"),
                )),
            )
        } else {
            (201, None)
        };
        let mut item = json!({"_index": index, "_id": id, "status": status});
        if let Some((kind, reason)) = error {
            errors = true;
            item["error"] = json!({"type": kind, "reason": reason});
        } else {
            item["result"] = json!("created");
            st.es_ids.insert(id);
            stored.push(record);
        }
        items.push(json!({ "create": item }));
    }
    let body = json!({"took": 1, "errors": errors, "items": items});
    (stored, json_response(StatusCode::OK, &body))
}
