//! The inventory's snapshot records: one object per line of a snapshot file (kind, id, scope,
//! content hash, compared fields), so the stream keeps only a compact
//! [`super::index::Index`] in memory and reads an object's fields back only when it changed
//! or went away.

use std::io;

use serde::{Deserialize, Serialize};

use super::diff::{Fields, Stored};
use crate::state::snapshots::{Reader, Writer};

/// One object as a snapshot file line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The kind's name (`user`, `project.api_key`, …).
    pub kind: String,
    pub id: String,
    /// The project or group it is listed under, for scoped kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Hex sha256 of `fields` ([`super::diff::content_hash`]).
    pub hash: String,
    pub fields: Fields,
}

impl Record {
    /// Unique within its kind (`<id>` or `<scope>/<id>`).
    pub fn key(&self) -> String {
        super::diff::key(self.scope.as_deref(), &self.id)
    }

    /// What the comparison needs of it.
    pub fn stored(self) -> Stored {
        Stored {
            hash: self.hash,
            scope: self.scope,
            fields: self.fields,
        }
    }
}

/// Appends `record`; returns where its line starts.
pub fn append(writer: &mut Writer, record: &Record) -> io::Result<u64> {
    let line = serde_json::to_vec(record).map_err(io::Error::other)?;
    writer.append(&line)
}

fn parse(at: u64, line: &str) -> io::Result<Record> {
    serde_json::from_str(line)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("snapshot line at byte {at}: {e}")))
}

/// The next record and where it starts, within the first `limit` bytes.
pub fn next(reader: &mut Reader, limit: u64) -> io::Result<Option<(u64, Record)>> {
    match reader.next_until(limit)? {
        Some((at, line)) => parse(at, line).map(|r| Some((at, r))),
        None => Ok(None),
    }
}

/// The record at `offset`.
pub fn read_at(reader: &mut Reader, offset: u64) -> io::Result<Record> {
    let line = reader.read_at(offset)?;
    parse(offset, line)
}
