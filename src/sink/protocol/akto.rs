//! Akto's data-ingestion service: `POST /api/ingestData` with `{"batchData":[record…]}`, one
//! HTTP-shaped record per event whose values are all strings, as its `IngestDataBatch`
//! reads them.
//!
//! Akto answers `200 {"success":false}` when it *succeeds* (the flag is never set), so only
//! the status counts. Its only 422 says nothing about which record was wrong; narrowing
//! finds it, and the sink's refuse-everything pause stops a misconfigured service from
//! dead-lettering the feed. A record the service's Kafka producer cannot carry (over 5 MiB)
//! is dropped *after* the 200, so such an event is dead-lettered here instead of being sent.

use super::json_text::quoted;
use super::{Answer, Doc, Frame, Piece, Refusal, Verdict, Wire, by_status};
use crate::metrics::DeadLetterReason;

/// The largest record Akto's Kafka producer carries (`max.request.size`, 5 MiB).
pub const MAX_RECORD_BYTES: usize = 5 * 1024 * 1024;

/// The largest body the service reads (`maxLength`, 10 MiB characters).
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// `requestHeaders`: a stable host, because Akto groups traffic into collections by host.
const REQUEST_HEADERS: &str = r#"{"host":"openai-audit-ingest","content-type":"application/json"}"#;

/// The Akto encoder.
#[derive(Debug, Clone)]
pub struct Akto {
    /// `akto_account_id`, already a JSON string literal.
    account: String,
}

impl Akto {
    pub fn new(account_id: &str) -> Self {
        Self {
            account: quoted(account_id),
        }
    }
}

impl Wire for Akto {
    fn frame(&self) -> Frame {
        Frame {
            prefix: r#"{"batchData":["#,
            suffix: "]}",
            separator: ",",
            group_close: "",
        }
    }

    fn item(&self, doc: &Doc<'_>) -> Result<Piece, Refusal> {
        let event = doc.event()?;
        let source = event.source.as_str();
        let payload = String::from_utf8_lossy(doc.json);
        let ip = event
            .actor
            .as_ref()
            .and_then(|a| a.ip.as_deref())
            .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok())
            .unwrap_or("0.0.0.0");
        let tag = format!(
            r#"{{"service":"openai","gen-ai":"Gen AI","event_source":{}}}"#,
            quoted(source)
        );
        let record = format!(
            concat!(
                r#"{{"path":{path},"method":"POST","requestPayload":{payload},"responsePayload":"{{}}","#,
                r#""requestHeaders":{headers},"responseHeaders":"{{}}","ip":{ip},"time":{time},"#,
                r#""statusCode":"200","status":"OK","type":"HTTP/1.1","akto_account_id":{account},"#,
                r#""akto_vxlan_id":"0","is_pending":"false","source":"MIRRORING","tag":{tag}}}"#
            ),
            path = quoted(&format!("/openai/{source}/{}", event.event_type)),
            payload = quoted(&payload),
            headers = quoted(REQUEST_HEADERS),
            ip = quoted(ip),
            time = quoted(&event.occurred_at.timestamp().to_string()),
            account = self.account,
            tag = quoted(&tag),
        );
        if record.len() > MAX_RECORD_BYTES {
            return Err(Refusal {
                status: None,
                reason: format!(
                    "the Akto record is {} bytes, over the 5 MiB its service's Kafka producer carries \
                     (it would be dropped silently after a 200)",
                    record.len()
                ),
                label: DeadLetterReason::TooLarge,
            });
        }
        Ok(Piece {
            bytes: record.into_bytes(),
            group: None,
        })
    }

    fn interpret(&self, answer: &Answer, _items: usize) -> Verdict {
        // The body of a 2xx is `{"success":false}` even on success: only the status counts.
        by_status(answer)
    }
}
