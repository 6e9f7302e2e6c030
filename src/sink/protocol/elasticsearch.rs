//! Elasticsearch / OpenSearch `_bulk`: NDJSON pairs `{"create":{"_index","_id"}}` + document,
//! `Authorization: ApiKey`. The document gets `@timestamp` (the event's time), which data
//! streams require.
//!
//! A 200 may still carry per-item failures (`errors: true`). Per item: stored or already
//! there (409 on `create`) is delivered; 429 and 5xx (and a read-only cluster block) are
//! resent alone; 401/403 and a missing index (404) are the key's or cluster's configuration
//! and pause those items; any other item error dead-letters that event with Elasticsearch's
//! reason.

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::json_text::quoted;
use super::{
    Answer, Doc, Frame, ItemVerdict, NEWLINE_DELIMITED, PauseCause, Piece, Refusal, Trouble, Verdict, Wire, by_status,
};
use crate::metrics::DeadLetterReason;

/// The index or data stream when `sink.index` is empty.
pub const DEFAULT_INDEX: &str = "openai-audit";

/// Elasticsearch refuses a longer `_id`.
const MAX_ID_BYTES: usize = 512;

/// The bulk encoder and interpreter.
#[derive(Debug, Clone)]
pub struct Bulk {
    /// The index, already a JSON string literal.
    index: String,
}

impl Bulk {
    pub fn new(index: &str) -> Self {
        Self {
            index: quoted(if index.is_empty() { DEFAULT_INDEX } else { index }),
        }
    }
}

/// The `_id` of an event: its id, or (over Elasticsearch's 512-byte limit) its SHA-256.
pub fn document_id(id: &str) -> String {
    if id.len() <= MAX_ID_BYTES {
        id.to_string()
    } else {
        format!("sha256:{}", hex::encode(Sha256::digest(id.as_bytes())))
    }
}

#[derive(Debug, Deserialize)]
struct BulkReply {
    /// Required: a 200 without it is not a bulk answer (a proxy, a wrong path), and taking
    /// it as "no errors" would count events as stored that never were.
    errors: bool,
    #[serde(default)]
    items: Vec<std::collections::HashMap<String, ItemReply>>,
}

#[derive(Debug, Deserialize)]
struct ItemReply {
    status: u16,
    #[serde(default)]
    error: Option<ItemError>,
}

#[derive(Debug, Deserialize)]
struct ItemError {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    reason: String,
}

fn item_verdict(item: &ItemReply) -> ItemVerdict {
    let (kind, why) = item
        .error
        .as_ref()
        .map(|e| (e.kind.as_str(), e.reason.as_str()))
        .unwrap_or(("", ""));
    let reason = format!("bulk item HTTP {}: {kind}: {why}", item.status);
    match item.status {
        200..=299 | 409 => ItemVerdict::Delivered,
        429 | 500..=599 => ItemVerdict::Retry(reason),
        // Flood-stage disk: the cluster is read-only until space is freed; not the event.
        403 if kind == "cluster_block_exception" => ItemVerdict::Retry(reason),
        401 | 403 => ItemVerdict::Pause(PauseCause::Auth, reason),
        404 => ItemVerdict::Pause(PauseCause::Config, reason),
        status => ItemVerdict::Refused(Refusal {
            status: Some(status),
            reason,
            label: DeadLetterReason::ItemError,
        }),
    }
}

impl Wire for Bulk {
    fn frame(&self) -> Frame {
        // The request must end with a newline.
        NEWLINE_DELIMITED
    }

    fn item(&self, doc: &Doc<'_>) -> Result<Piece, Refusal> {
        let event = doc.event()?;
        let timestamp = event.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
        let mut bytes = format!(
            "{{\"create\":{{\"_index\":{},\"_id\":{}}}}}\n{{\"@timestamp\":{}",
            self.index,
            quoted(&document_id(doc.id)),
            quoted(&timestamp)
        )
        .into_bytes();
        // The document's own fields follow `@timestamp` inside the same object.
        let rest = doc.json.strip_prefix(b"{").unwrap_or(b"}");
        if rest.first() != Some(&b'}') {
            bytes.push(b',');
        }
        bytes.extend_from_slice(rest);
        Ok(Piece { bytes, group: None })
    }

    fn interpret(&self, answer: &Answer, items: usize) -> Verdict {
        if !answer.status.is_success() {
            return by_status(answer);
        }
        // A bulk answer is an object; serde would also read a struct from an array
        // (`[false]`), which no Elasticsearch sends.
        let object = answer.body.trim_ascii_start().first() == Some(&b'{');
        let parsed = if object {
            serde_json::from_slice(&answer.body)
        } else {
            Err(serde::de::Error::custom("the body is not a JSON object"))
        };
        let reply: BulkReply = match parsed {
            Ok(reply) => reply,
            Err(err) => {
                return Verdict::Retry(Trouble {
                    status: Some(answer.status.as_u16()),
                    retry_after: None,
                    reason: format!("{}: not a bulk response ({err})", answer.reason),
                });
            }
        };
        if !reply.errors {
            return Verdict::Delivered;
        }
        if reply.items.len() != items {
            return Verdict::Retry(Trouble {
                status: Some(answer.status.as_u16()),
                retry_after: None,
                reason: format!(
                    "the bulk response lists {} items for {items} documents",
                    reply.items.len()
                ),
            });
        }
        Verdict::Each(
            reply
                .items
                .iter()
                .map(|item| match item.values().next() {
                    Some(item) => item_verdict(item),
                    None => ItemVerdict::Retry("an empty bulk item".to_string()),
                })
                .collect(),
        )
    }
}
