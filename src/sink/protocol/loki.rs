//! Grafana Loki's push API (`POST /loki/api/v1/push`): `{"streams":[{"stream":{labels},
//! "values":[["<ns>","<event JSON>"],…]}]}`, one stream per label set (`sink.labels`).
//!
//! Only 204 and 200 acknowledge: Loki answers 260 (a 2xx) when an operator blocked
//! ingestion and it *dropped* the data, so that pauses delivery. A 400 (entry too old, line
//! too long, …) is never retried as is: the valid entries were written, Loki drops the exact
//! duplicates a narrowing re-send makes, and the refused entry is dead-lettered with Loki's
//! reason. 429 is retried.

use super::json_text::{nanos, quoted};
use super::{Answer, Doc, Frame, PauseCause, Piece, Refusal, Trouble, Verdict, Wire, by_status, group};
use crate::metrics::DeadLetterReason;
use crate::normalize::Event;
use crate::sink::settings::LokiLabel;

/// The Loki encoder and interpreter.
#[derive(Debug, Clone)]
pub struct Loki {
    labels: Vec<LokiLabel>,
}

impl Loki {
    pub fn new(labels: Vec<LokiLabel>) -> Self {
        Self { labels }
    }

    /// The stream's label set as a JSON object; labels without a value are left out (Loki
    /// refuses an empty label value).
    fn label_set(&self, event: &Event) -> String {
        let mut out = String::from("{");
        for label in &self.labels {
            let value = match label {
                LokiLabel::Source => event.source.as_str(),
                LokiLabel::Category => event.category.as_str(),
                LokiLabel::OrgId => event.org_id.as_deref().unwrap_or(""),
                LokiLabel::Type => event.event_type.as_str(),
                LokiLabel::Action => event.action.as_str(),
                LokiLabel::Outcome => event.outcome.as_str(),
            };
            if value.is_empty() {
                continue;
            }
            if out.len() > 1 {
                out.push(',');
            }
            let name: &'static str = (*label).into();
            out.push_str(&quoted(name));
            out.push(':');
            out.push_str(&quoted(value));
        }
        out.push('}');
        out
    }
}

impl Wire for Loki {
    fn frame(&self) -> Frame {
        Frame {
            prefix: "{\"streams\":[",
            suffix: "]}",
            separator: ",",
            group_close: "]}",
        }
    }

    fn group_open(&self, labels: &str) -> String {
        format!("{{\"stream\":{labels},\"values\":[")
    }

    fn item(&self, doc: &Doc<'_>) -> Result<Piece, Refusal> {
        let event = doc.event()?;
        let line = String::from_utf8_lossy(doc.json);
        let bytes = format!("[\"{}\",{}]", nanos(event.occurred_at), quoted(&line)).into_bytes();
        Ok(Piece {
            bytes,
            group: Some(group(self, self.label_set(event))),
        })
    }

    fn interpret(&self, answer: &Answer, _items: usize) -> Verdict {
        match answer.status.as_u16() {
            200 | 204 => Verdict::Delivered,
            status @ 201..=299 => Verdict::Pause(
                PauseCause::Config,
                Trouble {
                    status: Some(status),
                    retry_after: answer.retry_after,
                    reason: format!(
                        "{}: Loki answers this when an operator blocked ingestion for the tenant \
                         (block_ingestion_until) and it dropped the batch",
                        answer.reason
                    ),
                },
            ),
            400 => Verdict::Refused(Refusal {
                status: Some(400),
                reason: answer.reason.clone(),
                label: DeadLetterReason::Loki400,
            }),
            _ => by_status(answer),
        }
    }
}
