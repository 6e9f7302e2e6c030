//! OTLP/HTTP JSON logs (`POST /v1/logs`, an OpenTelemetry Collector): one
//! `ExportLogsServiceRequest`, one resource per organization (`service.name`,
//! `openai.org_id`), one log record per event whose `body` is the event as an `AnyValue`.
//!
//! The OTLP specification decides what an answer means: a 200 with `partialSuccess` is
//! counted and logged but never retried; only 429, 502, 503 and 504 are retried; every other
//! failure is permanent (the Collector answers 500 for a permanent pipeline error and 400 for
//! an oversized body), so the batch is split to find what is refused instead.

use serde::Deserialize;
use serde_json::Value;

use super::json_text::{nanos, quoted};
use super::{Answer, Doc, Frame, PauseCause, Piece, Refusal, Trouble, Verdict, Wire, group};
use crate::metrics::DeadLetterReason;
use crate::normalize::{Event, Outcome, Severity};

/// `service.name` of the resource and the instrumentation scope's name.
const SERVICE: &str = "openai-audit-ingest";

/// The OTLP encoder and interpreter.
#[derive(Debug, Clone, Copy)]
pub struct Otlp;

/// The log record's severity number and text: a finding's severity, else INFO (WARN for a
/// failed action).
fn severity(event: &Event) -> (u8, &'static str) {
    match event.findings.iter().map(|f| f.severity).max() {
        Some(Severity::Critical) => (21, "FATAL"),
        Some(Severity::High) => (17, "ERROR"),
        Some(Severity::Medium) => (13, "WARN"),
        Some(Severity::Low) => (10, "INFO2"),
        Some(Severity::Info) => (9, "INFO"),
        None if event.outcome == Outcome::Failure => (13, "WARN"),
        None => (9, "INFO"),
    }
}

/// Writes `value` as an OTLP `AnyValue` in protobuf-JSON: objects become `kvlistValue`,
/// arrays `arrayValue`, 64-bit integers decimal strings. A `null` member of an object is
/// left out (absent reads the same, and the OpenTelemetry project's own Rust types refuse
/// the empty `{}` value); a `null` inside an array stays the empty value, to keep positions.
fn any_value(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("{}"),
        Value::Bool(b) => out.push_str(&format!("{{\"boolValue\":{b}}}")),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => out.push_str(&format!("{{\"intValue\":\"{i}\"}}")),
            // Above i64::MAX: keep every digit as text rather than round it.
            (None, _) if n.is_u64() => out.push_str(&format!("{{\"stringValue\":\"{n}\"}}")),
            (None, Some(f)) => out.push_str(&format!("{{\"doubleValue\":{f}}}")),
            (None, None) => out.push_str(&format!("{{\"stringValue\":\"{n}\"}}")),
        },
        Value::String(s) => {
            out.push_str("{\"stringValue\":");
            out.push_str(&quoted(s));
            out.push('}');
        }
        Value::Array(items) => {
            out.push_str("{\"arrayValue\":{\"values\":[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                any_value(item, out);
            }
            out.push_str("]}}");
        }
        Value::Object(map) => {
            out.push_str("{\"kvlistValue\":{\"values\":[");
            for (i, (key, item)) in map.iter().filter(|(_, v)| !v.is_null()).enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"key\":");
                out.push_str(&quoted(key));
                out.push_str(",\"value\":");
                any_value(item, out);
                out.push('}');
            }
            out.push_str("]}}");
        }
    }
}

fn attribute(out: &mut String, key: &str, value: &str) {
    out.push_str(&format!(
        "{{\"key\":{},\"value\":{{\"stringValue\":{}}}}}",
        quoted(key),
        quoted(value)
    ));
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExportReply {
    #[serde(default)]
    partial_success: Option<PartialSuccess>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PartialSuccess {
    /// int64: a JSON string in protobuf-JSON, a number from lenient servers.
    #[serde(default)]
    rejected_log_records: Option<Value>,
    #[serde(default)]
    error_message: String,
}

impl Wire for Otlp {
    fn frame(&self) -> Frame {
        Frame {
            prefix: "{\"resourceLogs\":[",
            suffix: "]}",
            separator: ",",
            group_close: "]}]}",
        }
    }

    fn group_open(&self, org_id: &str) -> String {
        let mut out = String::from("{\"resource\":{\"attributes\":[");
        attribute(&mut out, "service.name", SERVICE);
        if !org_id.is_empty() {
            out.push(',');
            attribute(&mut out, "openai.org_id", org_id);
        }
        out.push_str(&format!(
            "]}},\"scopeLogs\":[{{\"scope\":{{\"name\":\"{SERVICE}\",\"version\":\"{}\"}},\"logRecords\":[",
            env!("CARGO_PKG_VERSION")
        ));
        out
    }

    fn item(&self, doc: &Doc<'_>) -> Result<Piece, Refusal> {
        let event = doc.event()?;
        let body: Value = serde_json::from_slice(doc.json).map_err(|e| Refusal {
            status: None,
            reason: format!("the event is not JSON: {e}"),
            label: DeadLetterReason::Unencodable,
        })?;
        let (number, text) = severity(event);
        let mut out = format!(
            "{{\"timeUnixNano\":\"{}\",\"observedTimeUnixNano\":\"{}\",\"severityNumber\":{number},\"severityText\":\"{text}\",\"eventName\":{},\"body\":",
            nanos(event.occurred_at),
            nanos(event.ingested_at),
            quoted(&event.event_type),
        );
        any_value(&body, &mut out);
        out.push_str(",\"attributes\":[");
        attribute(&mut out, "event.name", &event.event_type);
        out.push(',');
        attribute(&mut out, "event.id", doc.id);
        out.push(',');
        attribute(&mut out, "source", event.source.as_str());
        out.push(',');
        attribute(&mut out, "category", &event.category);
        out.push_str("]}");
        Ok(Piece {
            bytes: out.into_bytes(),
            group: Some(group(self, event.org_id.clone().unwrap_or_default())),
        })
    }

    fn interpret(&self, answer: &Answer, _items: usize) -> Verdict {
        let status = answer.status.as_u16();
        let trouble = || Trouble {
            status: Some(status),
            retry_after: answer.retry_after,
            reason: answer.reason.clone(),
        };
        let refusal = |label| {
            Verdict::Refused(Refusal {
                status: Some(status),
                reason: answer.reason.clone(),
                label,
            })
        };
        match status {
            200..=299 => {
                let reply: ExportReply = serde_json::from_slice(&answer.body).unwrap_or_default();
                let Some(partial) = reply.partial_success else {
                    return Verdict::Delivered;
                };
                let rejected = match partial.rejected_log_records {
                    Some(Value::String(s)) => s.parse().unwrap_or(0),
                    Some(Value::Number(n)) => n.as_u64().unwrap_or(0),
                    _ => 0,
                };
                if rejected == 0 {
                    if !partial.error_message.is_empty() {
                        tracing::warn!(message = %partial.error_message, "the OTLP receiver took the batch with a warning");
                    }
                    return Verdict::Delivered;
                }
                Verdict::Dropped {
                    rejected,
                    reason: partial.error_message,
                }
            }
            429 | 502..=504 => Verdict::Retry(trouble()),
            401 | 403 => Verdict::Pause(PauseCause::Auth, trouble()),
            404 | 405 | 415 => Verdict::Pause(PauseCause::Config, trouble()),
            413 => refusal(DeadLetterReason::TooLarge),
            400..=499 => refusal(DeadLetterReason::Rejected4xx),
            500..=599 => refusal(DeadLetterReason::Rejected5xx),
            _ => Verdict::Pause(PauseCause::Config, trouble()),
        }
    }
}
