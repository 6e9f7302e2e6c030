//! Request body encoding (pure): a batch's body in the protocol's frame, its optional gzip
//! compression, and the batch's idempotency key.

use std::io;

use bytes::Bytes;
use flate2::Compression as Level;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

use super::protocol::{Piece, Wire, assemble, plain_len, write_body};
use super::settings::Compression;

/// One batch, ready to POST: built once and sent unchanged on every retry, so the receiver
/// sees the same bytes and the same key each time.
#[derive(Debug, Clone)]
pub struct Payload {
    pub body: Bytes,
    pub content_type: &'static str,
    /// `Some("gzip")` when the body is compressed.
    pub content_encoding: Option<&'static str>,
    pub idempotency_key: String,
    /// Events in the body, for logs.
    pub events: usize,
}

/// How much of the body is gathered before the compressor sees it.
const GZIP_INPUT_CHUNK: usize = 64 * 1024;

/// The body of `pieces` gzipped at `level` (1–9), written into the compressor through a
/// small buffer: no plain copy of the body is made (at 1 MiB a batch, it was the largest
/// buffer the sink allocated and freed per request), and the compressor is called once per
/// 64 KiB rather than once per event and separator, each call's set-up costing about a
/// quarter of what compressing a 400-byte event does (benches/README.md).
pub fn gzip(wire: &dyn Wire, pieces: &[&Piece], level: u32) -> io::Result<Vec<u8>> {
    let encoder = GzEncoder::new(Vec::with_capacity(plain_len(pieces) / 4), Level::new(level));
    let mut input = io::BufWriter::with_capacity(GZIP_INPUT_CHUNK, encoder);
    write_body(wire, pieces, &mut input)?;
    input.into_inner().map_err(io::IntoInnerError::into_error)?.finish()
}

/// Lower-hex SHA-256 of the event ids joined with `\n`: the same batch always gets the same
/// key, so a receiver can drop a retry of a batch it already took; a split half — or the
/// subset of a batch a receiver asked for again — holds other ids and so gets its own key.
pub fn idempotency_key<'a>(ids: impl IntoIterator<Item = &'a str>) -> String {
    let mut hasher = Sha256::new();
    for (i, id) in ids.into_iter().enumerate() {
        if i > 0 {
            hasher.update(b"\n");
        }
        hasher.update(id.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// Encodes a batch given as `(id, piece)` pairs in `wire`'s frame.
pub fn payload(
    wire: &dyn Wire,
    content_type: &'static str,
    compression: Compression,
    level: u32,
    events: &[(&str, &Piece)],
) -> Payload {
    let pieces: Vec<&Piece> = events.iter().map(|(_, piece)| *piece).collect();
    let (body, content_encoding) = match compression {
        Compression::None => (assemble(wire, &pieces), None),
        Compression::Gzip => match gzip(wire, &pieces, level) {
            Ok(zipped) => (zipped, Some("gzip")),
            // Writing into memory does not fail in practice; if it ever does, sending the
            // batch uncompressed is correct, only larger.
            Err(err) => {
                tracing::warn!(error.message = %err, "failed to gzip a batch; sending it uncompressed");
                (assemble(wire, &pieces), None)
            }
        },
    };
    Payload {
        body: Bytes::from(body),
        content_type,
        content_encoding,
        idempotency_key: idempotency_key(events.iter().map(|(id, _)| *id)),
        events: events.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::protocol::{Doc, Protocol};
    use crate::sink::settings::ProtocolOptions;
    use flate2::read::GzDecoder;
    use std::io::Read;

    const EVENTS: [(&str, &[u8]); 2] = [("a", br#"{"id":"a"}"#), ("b", br#"{"id":"b"}"#)];

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        GzDecoder::new(bytes).read_to_end(&mut out).expect("valid gzip");
        out
    }

    fn wire(protocol: Protocol) -> Box<dyn Wire> {
        crate::sink::protocol::wire(protocol, &ProtocolOptions::default())
    }

    fn encode(protocol: Protocol, compression: Compression, events: &[(&str, &[u8])]) -> Payload {
        let wire = wire(protocol);
        let pieces: Vec<(&str, Piece)> = events
            .iter()
            .map(|(id, json)| {
                let doc = Doc { id, event: None, json };
                (*id, wire.item(&doc).expect("piece"))
            })
            .collect();
        let refs: Vec<(&str, &Piece)> = pieces.iter().map(|(id, p)| (*id, p)).collect();
        payload(wire.as_ref(), protocol.content_type(), compression, 6, &refs)
    }

    #[test]
    fn ndjson_is_one_event_per_line_with_a_trailing_newline() {
        let p = encode(Protocol::Ndjson, Compression::None, &EVENTS);
        assert_eq!(&p.body[..], b"{\"id\":\"a\"}\n{\"id\":\"b\"}\n");
        assert_eq!(p.content_type, "application/x-ndjson");
        assert_eq!(p.content_encoding, None);
        assert_eq!(p.events, 2);
    }

    #[test]
    fn json_is_one_array_that_parses() {
        let p = encode(Protocol::Json, Compression::None, &EVENTS);
        assert_eq!(p.content_type, "application/json");
        let parsed: serde_json::Value = serde_json::from_slice(&p.body).expect("json");
        assert_eq!(parsed, serde_json::json!([{"id": "a"}, {"id": "b"}]));
    }

    #[test]
    fn gzip_round_trips_to_the_plain_body() {
        let p = encode(Protocol::Ndjson, Compression::Gzip, &EVENTS);
        assert_eq!(p.content_encoding, Some("gzip"));
        assert_eq!(gunzip(&p.body), b"{\"id\":\"a\"}\n{\"id\":\"b\"}\n");
    }

    #[test]
    fn the_key_is_the_hex_sha256_of_the_ids_joined_by_newlines() {
        let expected = hex::encode(Sha256::digest(b"a\nb"));
        assert_eq!(idempotency_key(["a", "b"]), expected);
        assert_eq!(expected.len(), 64);
        assert!(
            expected
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
    }

    #[test]
    fn the_key_is_stable_for_the_same_ids_and_differs_after_a_split() {
        let first = encode(Protocol::Ndjson, Compression::Gzip, &EVENTS);
        let again = encode(Protocol::Json, Compression::None, &EVENTS);
        assert_eq!(first.idempotency_key, again.idempotency_key);
        let half = encode(Protocol::Ndjson, Compression::Gzip, &EVENTS[..1]);
        assert_ne!(half.idempotency_key, first.idempotency_key);
        assert_eq!(half.idempotency_key, idempotency_key(["a"]));
        // Joining with a separator keeps ["ab"] and ["a", "b"] apart.
        assert_ne!(idempotency_key(["ab"]), idempotency_key(["a", "b"]));
    }

    #[test]
    fn the_same_batch_encodes_to_the_same_bytes_every_time() {
        let first = encode(Protocol::Ndjson, Compression::Gzip, &EVENTS);
        let again = encode(Protocol::Ndjson, Compression::Gzip, &EVENTS);
        assert_eq!(first.body, again.body);
    }
}
