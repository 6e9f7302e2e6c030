//! A state written as JSON by a writer of its own rather than `serde_json` (whose strings are
//! escaped a byte at a time), handed to its file in chunks: the large states — the guardrails'
//! rule state, a compliance stream's recent event ids — are never held a second time as bytes.

use std::fmt::Display;
use std::io::{self, Write};

use serde::Serialize;

/// Bytes gathered before each write to the file.
const CHUNK: usize = 64 * 1024;

/// JSON text on its way to a file: written into [`JsonChunks::buf`], handed over by
/// [`JsonChunks::spill`] once a chunk is gathered and by [`JsonChunks::finish`] at the end.
pub struct JsonChunks<'o> {
    buf: Vec<u8>,
    out: &'o mut dyn Write,
}

impl<'o> JsonChunks<'o> {
    pub fn new(out: &'o mut dyn Write) -> Self {
        Self {
            buf: Vec::with_capacity(2 * CHUNK),
            out,
        }
    }

    /// Where the text goes next.
    pub fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Hands what is gathered to the file once it is a chunk: call between pieces of
    /// bounded size.
    pub fn spill(&mut self) -> io::Result<()> {
        if self.buf.len() >= CHUNK {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Writes `value` through `serde_json` straight into the file (gathered here first, a
    /// reconciliation memory of a few MB raised the pipeline bench's peak RSS by 3.5 MiB).
    pub fn serde(&mut self, value: &impl Serialize) -> io::Result<()> {
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        serde_json::to_writer(&mut *self.out, value).map_err(io::Error::other)
    }

    /// Hands over the rest.
    pub fn finish(self) -> io::Result<()> {
        self.out.write_all(&self.buf)
    }
}

/// An integer as `serde_json` spells it (decimal, `-` for negatives).
pub fn number(b: &mut Vec<u8>, n: impl Display) {
    // Writing to memory cannot fail.
    let _ = write!(b, "{n}");
}

/// `,` before every item but the first.
pub fn comma(b: &mut Vec<u8>, i: usize) {
    if i > 0 {
        b.push(b',');
    }
}
