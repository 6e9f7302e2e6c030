//! Splunk's HTTP Event Collector: `POST /services/collector/event` with concatenated
//! `{"time","host","source","sourcetype","index","event"}` objects, `Authorization: Splunk`.
//!
//! Splunk takes a batch in order up to the first bad event and says where it stopped
//! (`invalid-event-number`, 0-based): the events before it are indexed, that one is
//! dead-lettered (a data error) or resent (server busy), the rest are resent. Token and
//! index errors pause delivery. With `sink.ack = true` a `{"code":0,"ackId":n}` counts only
//! once `/services/collector/ack` (same `X-Splunk-Request-Channel`) reports `n` true; the
//! sink's ack tracker polls with the query and status shapes here.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use reqwest::header::{HeaderName, HeaderValue};
use serde::Deserialize;
use url::Url;

use super::json_text::quoted;
use super::{
    Answer, Doc, Frame, ItemVerdict, NEWLINE_DELIMITED, PauseCause, Piece, Refusal, Trouble, Verdict, Wire, by_status,
};
use crate::metrics::DeadLetterReason;

/// The standard event endpoint.
pub const EVENT_PATH: &str = "/services/collector/event";
/// Where indexer acknowledgements are queried.
pub const ACK_PATH: &str = "/services/collector/ack";
/// The health endpoint `check` reads.
pub const HEALTH_PATH: &str = "/services/collector/health";

/// The channel header every request carries (required with indexer acknowledgement).
pub const CHANNEL: HeaderName = HeaderName::from_static("x-splunk-request-channel");

/// `host` of every event: the sender, stable across restarts.
const HOST: &str = "openai-audit-ingest";

/// `sourcetype` when `sink.sourcetype` is empty.
pub const DEFAULT_SOURCETYPE: &str = "openai:audit";

/// The HEC encoder and interpreter.
#[derive(Debug)]
pub struct Hec {
    /// `,"index":"…"` or nothing (the token's default index).
    index: String,
    /// The sourcetype as a JSON string literal.
    sourcetype: String,
    /// Indexer acknowledgement is required before a batch counts.
    ack: bool,
    /// A random GUID for this process: acknowledgement ids are per channel.
    channel: HeaderValue,
    /// The "token has no indexer acknowledgement" warning was given.
    warned_no_ack: AtomicBool,
}

impl Hec {
    pub fn new(index: &str, sourcetype: &str, ack: bool) -> Self {
        let sourcetype = if sourcetype.is_empty() {
            DEFAULT_SOURCETYPE
        } else {
            sourcetype
        };
        Self {
            index: if index.is_empty() {
                String::new()
            } else {
                format!(",\"index\":{}", quoted(index))
            },
            sourcetype: quoted(sourcetype),
            ack,
            channel: HeaderValue::from_str(&new_channel())
                .unwrap_or(HeaderValue::from_static("00000000-0000-4000-8000-000000000000")),
            warned_no_ack: AtomicBool::new(false),
        }
    }

    fn interpret_error(&self, answer: &Answer, reply: Reply, items: usize) -> Verdict {
        let status = answer.status.as_u16();
        let text = format!("{} (HEC code {}: {})", answer.reason, reply.code, reply.text);
        let trouble = Trouble {
            status: Some(status),
            retry_after: answer.retry_after,
            reason: text.clone(),
        };
        let at = reply.invalid_event_number.filter(|n| (*n as usize) < items);
        match reply.code {
            1..=4 => Verdict::Pause(PauseCause::Auth, trouble),
            // Incorrect index, data channel missing or invalid, ACK disabled, query-string
            // auth off: the configuration, not the events.
            7 | 10 | 11 | 14 | 16 => Verdict::Pause(PauseCause::Config, trouble),
            8 | 18..=20 => Verdict::Retry(trouble),
            // Server busy: the events before `at` are indexed, the rest go again.
            9 => match at {
                Some(n) => self.stopped_at(n as usize, items, ItemVerdict::Retry(text)),
                None => Verdict::Retry(trouble),
            },
            // Invalid data format, event field required or blank, bad indexed fields.
            6 | 12 | 13 | 15 => {
                let refusal = Refusal {
                    status: Some(status),
                    reason: text,
                    label: DeadLetterReason::InvalidEvent,
                };
                match at {
                    Some(n) => self.stopped_at(n as usize, items, ItemVerdict::Refused(refusal)),
                    None => Verdict::Refused(refusal),
                }
            }
            _ => by_status(answer),
        }
    }

    /// Events before `n` are indexed, `n` gets `verdict`, the rest are resent. With `ack`
    /// nothing counts before the indexer says so, so the indexed ones are resent too.
    fn stopped_at(&self, n: usize, items: usize, verdict: ItemVerdict) -> Verdict {
        let before = if self.ack {
            ItemVerdict::Retry("sent before a refused event; resent for the indexer acknowledgement".to_string())
        } else {
            ItemVerdict::Delivered
        };
        let after = ItemVerdict::Retry("after the event Splunk stopped at".to_string());
        let mut each = vec![before; n];
        each.push(verdict);
        each.resize(items, after);
        Verdict::Each(each)
    }
}

/// HEC's answer body.
#[derive(Debug, Deserialize)]
struct Reply {
    #[serde(default)]
    text: String,
    code: i64,
    #[serde(rename = "ackId", default)]
    ack_id: Option<u64>,
    #[serde(rename = "invalid-event-number", default)]
    invalid_event_number: Option<u64>,
}

impl Wire for Hec {
    fn frame(&self) -> Frame {
        NEWLINE_DELIMITED
    }

    fn item(&self, doc: &Doc<'_>) -> Result<Piece, Refusal> {
        let event = doc.event()?;
        let ms = event.occurred_at.timestamp_millis();
        let time = format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000));
        let mut bytes = format!(
            r#"{{"time":{time},"host":"{HOST}","source":{source},"sourcetype":{sourcetype}{index},"event":"#,
            source = quoted(event.source.as_str()),
            sourcetype = self.sourcetype,
            index = self.index,
        )
        .into_bytes();
        bytes.extend_from_slice(doc.json);
        bytes.push(b'}');
        Ok(Piece { bytes, group: None })
    }

    fn headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        vec![(CHANNEL, self.channel.clone())]
    }

    fn interpret(&self, answer: &Answer, items: usize) -> Verdict {
        let reply = serde_json::from_slice::<Reply>(&answer.body).ok();
        if answer.status.is_success() {
            return match reply {
                Some(reply) if reply.code != 0 => self.interpret_error(answer, reply, items),
                Some(Reply { ack_id: Some(id), .. }) if self.ack => Verdict::AwaitAck(id),
                _ => {
                    if self.ack && !self.warned_no_ack.swap(true, Ordering::Relaxed) {
                        tracing::warn!(
                            "sink.ack = true but Splunk returned no ackId: indexer acknowledgement is off \
                             for this token (useACK); batches count as delivered on the 200, as with \
                             sink.ack = false"
                        );
                    }
                    Verdict::Delivered
                }
            };
        }
        match reply {
            Some(reply) => self.interpret_error(answer, reply, items),
            None => by_status(answer),
        }
    }
}

/// `/services/collector/ack` beside the event endpoint `event_url` (whatever prefix a
/// proxy adds before `/services/collector`).
pub fn ack_url(event_url: &Url) -> Url {
    sibling(event_url, ACK_PATH)
}

/// `/services/collector/health` beside the event endpoint.
pub fn health_url(event_url: &Url) -> Url {
    sibling(event_url, HEALTH_PATH)
}

fn sibling(event_url: &Url, path: &str) -> Url {
    let mut url = event_url.clone();
    let current = url.path().trim_end_matches('/').to_string();
    let base = match current.find("/services/collector") {
        Some(at) => current[..at].to_string(),
        None => current,
    };
    url.set_path(&format!("{base}{path}"));
    url.set_query(None);
    url
}

/// The body of an acknowledgement query.
pub fn ack_query(ids: &[u64]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "acks": ids })).unwrap_or_default()
}

/// `{"acks":{"0":true,"1":false}}` → id → acknowledged.
pub fn ack_status(body: &[u8]) -> Result<HashMap<u64, bool>, String> {
    #[derive(Deserialize)]
    struct Status {
        acks: HashMap<String, bool>,
    }
    // An object, not merely something serde can fill a `Status` from (a derived struct also
    // accepts an array, positionally): `[{"1": true}]` is no answer to an ack query.
    let status: Status = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(body)
        .and_then(|object| serde_json::from_value(serde_json::Value::Object(object)))
        .map_err(|e| format!("not an acknowledgement status: {e}"))?;
    status
        .acks
        .into_iter()
        .map(|(id, done)| {
            id.parse::<u64>()
                .map(|id| (id, done))
                .map_err(|_| format!("`{id}` is not an ack id"))
        })
        .collect()
}

/// A random version-4 GUID.
fn new_channel() -> String {
    let mut bytes: [u8; 16] = rand::random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}
