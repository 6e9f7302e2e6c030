//! An event made ready for the configured protocol and schema, once, as it arrives: parsed
//! when the protocol or the schema needs its fields, mapped to OCSF when configured, and
//! encoded to its piece of a body. The v1 JSON stays beside the piece: the dead-letter file
//! keeps the event itself, so `replay` can send it again under any configuration.

use serde_json::Value;

use super::batch::Weigh;
use super::ocsf;
use super::protocol::{Doc, Piece, Refusal, Wire};
use super::settings::Schema;
use crate::metrics::DeadLetterReason;
use crate::normalize::Event;
use crate::pipeline::{AckToken, Encoded};

/// One event in a batch.
#[derive(Debug)]
pub struct Item {
    pub id: String,
    /// The normalized (v1) event as it was queued, unless the piece is that same text.
    json: Option<Vec<u8>>,
    /// Its piece of the body in the configured protocol and schema.
    pub piece: Piece,
    /// The right to acknowledge it, used once it is delivered or dead-lettered.
    pub ack: AckToken,
}

impl Item {
    /// The event as it was queued (its v1 text), for the dead-letter file.
    pub fn into_encoded(self) -> Encoded {
        Encoded {
            json: self.json.unwrap_or(self.piece.bytes),
            id: self.id,
            ack: self.ack,
        }
    }
}

impl Weigh for Item {
    fn piece(&self) -> &Piece {
        &self.piece
    }
}

/// An event that can never be sent in this configuration, and why.
#[derive(Debug)]
pub struct Unsendable {
    pub event: Encoded,
    pub refusal: Refusal,
}

/// Makes `event` ready for `wire` in `schema`.
pub fn prepare(wire: &dyn Wire, schema: Schema, event: Encoded) -> Result<Item, Box<Unsendable>> {
    let refuse = |event: Encoded, reason: String| {
        Box::new(Unsendable {
            event,
            refusal: Refusal {
                status: None,
                reason,
                label: DeadLetterReason::Unencodable,
            },
        })
    };
    let needs_event = wire.needs_event() || schema == Schema::Ocsf;
    let parsed: Option<Event> = if needs_event {
        match serde_json::from_slice(&event.json) {
            Ok(parsed) => Some(parsed),
            Err(err) => return Err(refuse(event, format!("not a normalized event: {err}"))),
        }
    } else {
        None
    };
    let mapped: Option<Vec<u8>> = match (schema, &parsed) {
        (Schema::Ocsf, Some(parsed)) => {
            let document: Value = ocsf::map(parsed);
            match serde_json::to_vec(&document) {
                Ok(bytes) => Some(bytes),
                Err(err) => return Err(refuse(event, format!("failed to encode the OCSF event: {err}"))),
            }
        }
        _ => None,
    };
    if wire.verbatim() {
        // The piece is the document itself (v1 or OCSF): moved into the body, not copied;
        // the v1 text is kept beside it only when the piece is another document.
        let (bytes, json) = match mapped {
            Some(mapped) => (mapped, Some(event.json)),
            None => (event.json, None),
        };
        return Ok(Item {
            id: event.id,
            json,
            piece: Piece { bytes, group: None },
            ack: event.ack,
        });
    }
    let doc = Doc {
        id: &event.id,
        event: parsed.as_ref(),
        json: mapped.as_deref().unwrap_or(&event.json),
    };
    match wire.item(&doc) {
        Ok(piece) => Ok(Item {
            id: event.id,
            json: Some(event.json),
            piece,
            ack: event.ack,
        }),
        Err(refusal) => Err(Box::new(Unsendable { event, refusal })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::StreamAcks;
    use crate::sink::protocol::{Protocol, wire};
    use crate::sink::settings::ProtocolOptions;

    fn queued(json: &[u8]) -> Encoded {
        let (acks, _rx) = StreamAcks::<u64>::new("audit_logs");
        Encoded {
            id: "audit_log:org-1:ev-1".into(),
            json: json.to_vec(),
            ack: acks.next_token(),
        }
    }

    fn v1_json() -> Vec<u8> {
        let at = chrono::DateTime::parse_from_rfc3339("2026-07-31T21:30:46Z")
            .expect("time")
            .with_timezone(&chrono::Utc);
        let event = Event::new(
            "audit_log:org-1:ev-1".into(),
            crate::normalize::Source::AuditLog,
            Some("org-1".into()),
            "api_key.created".into(),
            at,
        );
        serde_json::to_vec(&event).expect("json")
    }

    #[test]
    fn a_verbatim_piece_is_the_queued_text_and_still_dead_letters_as_it() {
        let json = v1_json();
        for protocol in [Protocol::Ndjson, Protocol::Json] {
            let wire = wire(protocol, &ProtocolOptions::default());
            assert!(wire.verbatim());
            // What the general path would have made of it.
            let doc = Doc {
                id: "audit_log:org-1:ev-1",
                event: None,
                json: &json,
            };
            let general = wire.item(&doc).expect("piece");
            let item = prepare(wire.as_ref(), Schema::V1, queued(&json)).expect("item");
            assert_eq!(item.piece.bytes, general.bytes);
            assert_eq!(item.piece.group, None);
            assert_eq!(item.into_encoded().json, json, "{}", protocol.as_str());
        }
    }

    #[test]
    fn another_schema_keeps_the_v1_text_beside_its_piece() {
        let json = v1_json();
        let wire = wire(Protocol::Ndjson, &ProtocolOptions::default());
        let item = prepare(wire.as_ref(), Schema::Ocsf, queued(&json)).expect("item");
        assert_ne!(item.piece.bytes, json, "the piece is the OCSF event");
        let ocsf: serde_json::Value = serde_json::from_slice(&item.piece.bytes).expect("ocsf json");
        assert!(ocsf.get("class_uid").is_some(), "{ocsf}");
        assert_eq!(item.into_encoded().json, json);
    }
}
