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
    /// The normalized (v1) event as it was queued.
    pub json: Vec<u8>,
    /// Its piece of the body in the configured protocol and schema.
    pub piece: Piece,
    /// The right to acknowledge it, used once it is delivered or dead-lettered.
    pub ack: AckToken,
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
    let doc = Doc {
        id: &event.id,
        event: parsed.as_ref(),
        json: mapped.as_deref().unwrap_or(&event.json),
    };
    match wire.item(&doc) {
        Ok(piece) => Ok(Item {
            id: event.id,
            json: event.json,
            piece,
            ack: event.ack,
        }),
        Err(refusal) => Err(Box::new(Unsendable { event, refusal })),
    }
}
