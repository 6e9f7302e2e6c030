//! The ingestion service's own language: one encoder and one response interpreter per
//! protocol, all over the sink's shared batching, retry and acknowledgement machinery.
//!
//! A protocol is described by a [`Wire`]: how one event becomes its piece of the body
//! ([`Wire::item`]), how pieces are framed into a body ([`Frame`], with an optional group
//! header such as Loki's stream labels or OTLP's resource), and what an answer means for
//! each event of the batch ([`Wire::interpret`] → [`Verdict`]). The sink loop acts on
//! verdicts; no protocol has a send loop of its own.
//!
//! - `lines.rs`: `ndjson` and `json` (the generic protocols).
//! - `akto.rs`, `splunk_hec.rs`, `elasticsearch.rs`, `otlp.rs`, `loki.rs`: one each.
//! - `json_text.rs`: small JSON-writing helpers the encoders share.

mod akto;
mod elasticsearch;
mod json_text;
mod lines;
mod loki;
mod otlp;
pub mod splunk_hec;

pub use akto::MAX_BODY_BYTES as AKTO_MAX_BODY_BYTES;
pub use elasticsearch::DEFAULT_INDEX as ELASTICSEARCH_DEFAULT_INDEX;

use std::io::{self, Write};
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderName, HeaderValue};

use super::auth::AuthScheme;
use super::settings::{Compression, ProtocolOptions};
use crate::metrics::DeadLetterReason;
use crate::normalize::Event;

/// `sink.protocol`: the envelope batches travel in.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::VariantNames,
    strum::EnumIter,
)]
#[strum(serialize_all = "snake_case")]
pub enum Protocol {
    /// One JSON event per line.
    Ndjson,
    /// One JSON array of events.
    Json,
    /// Akto's data-ingestion service, `{"batchData":[…]}`.
    Akto,
    /// Splunk's HTTP Event Collector.
    SplunkHec,
    /// Elasticsearch / OpenSearch `_bulk`.
    Elasticsearch,
    /// OTLP/HTTP JSON logs (an OpenTelemetry Collector).
    Otlp,
    /// Grafana Loki's push API.
    Loki,
}

impl Protocol {
    /// The path appended to a `sink.url` that has none (`""` or `/`).
    pub fn standard_path(self) -> Option<&'static str> {
        match self {
            Protocol::Ndjson | Protocol::Json => None,
            Protocol::Akto => Some("/api/ingestData"),
            Protocol::SplunkHec => Some(splunk_hec::EVENT_PATH),
            Protocol::Elasticsearch => Some("/_bulk"),
            Protocol::Otlp => Some("/v1/logs"),
            Protocol::Loki => Some("/loki/api/v1/push"),
        }
    }

    /// The auth scheme used when `sink.auth_scheme` is empty.
    pub fn default_auth(self) -> AuthScheme {
        match self {
            Protocol::Akto => AuthScheme::Raw,
            Protocol::SplunkHec => AuthScheme::Splunk,
            Protocol::Elasticsearch => AuthScheme::ApiKey,
            Protocol::Ndjson | Protocol::Json | Protocol::Otlp | Protocol::Loki => AuthScheme::Bearer,
        }
    }

    /// The compression used when `sink.compression` is not set. Akto's service does not
    /// decompress requests.
    pub fn default_compression(self) -> Compression {
        match self {
            Protocol::Akto => Compression::None,
            _ => Compression::Gzip,
        }
    }

    /// The request's `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Protocol::Ndjson | Protocol::Elasticsearch => "application/x-ndjson",
            _ => "application/json",
        }
    }

    /// The protocol's name as configured.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// One event, ready to be encoded: its id, its parsed v1 form when the protocol needs
/// fields of it, and the document the receiver stores (v1 or OCSF JSON).
#[derive(Debug, Clone, Copy)]
pub struct Doc<'a> {
    pub id: &'a str,
    /// `None` only for the generic protocols, which need nothing but the bytes.
    pub event: Option<&'a Event>,
    /// The event in the configured schema, as JSON.
    pub json: &'a [u8],
}

impl Doc<'_> {
    /// The parsed event; the sink parses it for every protocol that asks for it.
    fn event(&self) -> Result<&Event, Refusal> {
        self.event.ok_or_else(|| Refusal {
            status: None,
            reason: "the event could not be read back as a normalized event".to_string(),
            label: DeadLetterReason::Unencodable,
        })
    }
}

/// An event's piece of a body, and the group it must appear under.
#[derive(Debug, Clone)]
pub struct Piece {
    pub bytes: Vec<u8>,
    pub group: Option<Group>,
}

/// Events sharing a group header (Loki stream labels, OTLP resource) are written under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub key: Arc<str>,
    /// Bytes the group's header and footer add to a body.
    pub overhead: usize,
}

/// How pieces are framed: `prefix`, then the pieces (or the groups, each `open` + pieces +
/// `close`) joined by `separator`, then `suffix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    pub prefix: &'static str,
    pub suffix: &'static str,
    pub separator: &'static str,
    pub group_close: &'static str,
}

/// One piece per line, the last line ended too: NDJSON, Splunk HEC, Elasticsearch bulk.
pub const NEWLINE_DELIMITED: Frame = Frame {
    prefix: "",
    suffix: "\n",
    separator: "\n",
    group_close: "",
};

/// One protocol: encoder and response interpreter.
pub trait Wire: Send + Sync + std::fmt::Debug {
    fn frame(&self) -> Frame;

    /// The event's piece of the body; a refusal dead-letters the event before it is sent
    /// (it can never be delivered in this protocol, e.g. larger than the service accepts).
    fn item(&self, doc: &Doc<'_>) -> Result<Piece, Refusal>;

    /// The header of a group, for pieces that name one.
    fn group_open(&self, _key: &str) -> String {
        String::new()
    }

    /// Headers every request of this protocol carries (Splunk's request channel).
    fn headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        Vec::new()
    }

    /// What an answer to a batch of `items` events means.
    fn interpret(&self, answer: &Answer, items: usize) -> Verdict;

    /// Whether encoding needs fields of the parsed v1 event (time, labels, …); only then
    /// does the sink parse it.
    fn needs_event(&self) -> bool {
        true
    }

    /// Whether an event's piece is its document unchanged and in no group (what
    /// [`Wire::item`] would copy), so the sink moves the document into the body instead.
    fn verbatim(&self) -> bool {
        false
    }
}

/// The wire of `protocol`, configured by `options`.
pub fn wire(protocol: Protocol, o: &ProtocolOptions) -> Box<dyn Wire> {
    match protocol {
        Protocol::Ndjson => Box::new(lines::Lines::Ndjson),
        Protocol::Json => Box::new(lines::Lines::Array),
        Protocol::Akto => Box::new(akto::Akto::new(&o.akto_account_id)),
        Protocol::SplunkHec => Box::new(splunk_hec::Hec::new(&o.index, &o.sourcetype, o.ack)),
        Protocol::Elasticsearch => Box::new(elasticsearch::Bulk::new(&o.index)),
        Protocol::Otlp => Box::new(otlp::Otlp),
        Protocol::Loki => Box::new(loki::Loki::new(o.labels.clone())),
    }
}

/// The body of `pieces` under `wire`'s frame, groups in order of first appearance.
pub fn assemble(wire: &dyn Wire, pieces: &[&Piece]) -> Vec<u8> {
    let mut out = Vec::with_capacity(plain_len(pieces) + 64);
    match write_body(wire, pieces, &mut out) {
        Ok(()) => out,
        Err(never) => unreachable!("writing into a Vec does not fail: {never}"),
    }
}

/// Bytes the pieces themselves add to a body, with one separator each.
pub fn plain_len(pieces: &[&Piece]) -> usize {
    pieces.iter().map(|p| p.bytes.len() + 1).sum()
}

/// Writes the body of `pieces` under `wire`'s frame into `out` (a `Vec`, or a compressor
/// so that no plain copy of the body is kept).
pub fn write_body(wire: &dyn Wire, pieces: &[&Piece], out: &mut impl Write) -> io::Result<()> {
    let frame = wire.frame();
    out.write_all(frame.prefix.as_bytes())?;
    let mut keys: Vec<&Arc<str>> = Vec::new();
    for piece in pieces {
        if let Some(group) = &piece.group
            && !keys.contains(&&group.key)
        {
            keys.push(&group.key);
        }
    }
    if keys.is_empty() {
        join(out, pieces.iter().copied(), frame.separator)?;
    } else {
        for (i, key) in keys.iter().enumerate() {
            if i > 0 {
                out.write_all(frame.separator.as_bytes())?;
            }
            out.write_all(wire.group_open(key).as_bytes())?;
            let members = pieces
                .iter()
                .copied()
                .filter(|p| p.group.as_ref().is_some_and(|g| &g.key == *key));
            join(out, members, frame.separator)?;
            out.write_all(frame.group_close.as_bytes())?;
        }
    }
    out.write_all(frame.suffix.as_bytes())
}

fn join<'a>(out: &mut impl Write, pieces: impl Iterator<Item = &'a Piece>, separator: &str) -> io::Result<()> {
    for (i, piece) in pieces.enumerate() {
        if i > 0 {
            out.write_all(separator.as_bytes())?;
        }
        out.write_all(&piece.bytes)?;
    }
    Ok(())
}

/// A group for `key` whose header `wire` writes.
fn group(wire: &dyn Wire, key: String) -> Group {
    let overhead = wire.group_open(&key).len() + wire.frame().group_close.len();
    Group {
        key: Arc::from(key),
        overhead,
    }
}

/// The receiver's answer, read and scrubbed of secrets.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    /// The delay the receiver asked for, if it did.
    pub retry_after: Option<Duration>,
    /// The body (bounded), for protocols that report per event.
    pub body: bytes::Bytes,
    /// Status line and the start of the body, on one line: for logs and dead letters.
    pub reason: String,
}

/// Why a whole batch, or an event, will not be taken as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: Option<u16>,
    pub reason: String,
    /// The bounded label it is counted under once dead-lettered.
    pub label: DeadLetterReason,
}

/// A failure worth another attempt, or one waiting for an operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trouble {
    pub status: Option<u16>,
    pub retry_after: Option<Duration>,
    pub reason: String,
}

/// What an operator must fix before delivery can go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumIter)]
#[strum(serialize_all = "snake_case")]
pub enum PauseCause {
    /// The receiver refuses the credentials (401/403, an invalid token code).
    Auth,
    /// The receiver cannot take batches as configured (404, 405, 415, a wrong index, a
    /// redirect, ingestion blocked).
    Config,
}

/// What one event of a batch came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemVerdict {
    Delivered,
    /// Send it again (in a new, smaller batch) after a backoff.
    Retry(String),
    /// The receiver named this event as bad: dead-letter it.
    Refused(Refusal),
    /// Send it again once an operator has fixed something.
    Pause(PauseCause, String),
}

/// What an answer means for the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every event is taken.
    Delivered,
    /// Every event is taken, but the receiver says it then dropped `rejected` of them
    /// without saying which (OTLP partial success): counted and logged, never retried.
    Dropped { rejected: u64, reason: String },
    /// Taken, but it counts only once the receiver confirms this id (Splunk HEC `ack`).
    AwaitAck(u64),
    /// Per event, in batch order.
    Each(Vec<ItemVerdict>),
    /// The same batch again after a backoff.
    Retry(Trouble),
    /// The same batch again after the pause interval, with an ERROR: an operator must act.
    Pause(PauseCause, Trouble),
    /// Refused as a whole without saying which event: split it to find out.
    Refused(Refusal),
}

/// The statuses every protocol shares (DESIGN "Delivery protocol"): 2xx delivered; 408,
/// 425, 429 and 5xx but 501 retried; 401/403 pause for credentials; 404, 405, 415 and
/// anything not 2xx/4xx/5xx pause for configuration; 413 split as too large; another 4xx
/// (and 501) split to find the rejected event.
pub fn by_status(answer: &Answer) -> Verdict {
    let status = answer.status.as_u16();
    let trouble = || Trouble {
        status: Some(status),
        retry_after: answer.retry_after,
        reason: answer.reason.clone(),
    };
    let refusal = |label| Refusal {
        status: Some(status),
        reason: answer.reason.clone(),
        label,
    };
    match status {
        200..=299 => Verdict::Delivered,
        401 | 403 => Verdict::Pause(PauseCause::Auth, trouble()),
        404 | 405 | 415 => Verdict::Pause(PauseCause::Config, trouble()),
        408 | 425 | 429 => Verdict::Retry(trouble()),
        413 => Verdict::Refused(refusal(DeadLetterReason::TooLarge)),
        501 => Verdict::Refused(refusal(DeadLetterReason::Rejected5xx)),
        500..=599 => Verdict::Retry(trouble()),
        400..=499 => Verdict::Refused(refusal(DeadLetterReason::Rejected4xx)),
        _ => Verdict::Pause(PauseCause::Config, trouble()),
    }
}

#[cfg(test)]
mod tests;
