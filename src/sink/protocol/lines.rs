//! The generic protocols: `ndjson` (one event per line) and `json` (one array). Any 2xx
//! acknowledges the whole batch.

use super::{Answer, Doc, Frame, NEWLINE_DELIMITED, Piece, Refusal, Verdict, Wire, by_status};

/// `ndjson` or `json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    Ndjson,
    Array,
}

impl Wire for Lines {
    fn frame(&self) -> Frame {
        match self {
            Lines::Ndjson => NEWLINE_DELIMITED,
            Lines::Array => Frame {
                prefix: "[",
                suffix: "]",
                separator: ",",
                group_close: "",
            },
        }
    }

    fn item(&self, doc: &Doc<'_>) -> Result<Piece, Refusal> {
        Ok(Piece {
            bytes: doc.json.to_vec(),
            group: None,
        })
    }

    fn interpret(&self, answer: &Answer, _items: usize) -> Verdict {
        by_status(answer)
    }

    fn needs_event(&self) -> bool {
        false
    }

    fn verbatim(&self) -> bool {
        true
    }
}
