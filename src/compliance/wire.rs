//! Compliance Logs Platform wire types, as the platform sends them (reference §D).

use serde::{Deserialize, Serialize};

/// One page of log-file metadata, ascending by `end_time`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct LogFilesPage {
    pub data: Vec<LogFile>,
    pub has_more: bool,
    /// Next `after`; `null` on an empty page (keep the old cursor).
    #[serde(default)]
    pub last_end_time: Option<String>,
}

/// Metadata of one JSONL log file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct LogFile {
    pub id: String,
    pub event_type: String,
    /// ISO 8601; the list's cursor.
    pub end_time: String,
    #[serde(default)]
    pub file_name: Option<String>,
    #[serde(default)]
    pub file_size: Option<u64>,
    /// Lower-case hex SHA-256 of the file's bytes.
    pub file_sha256: String,
}

/// The envelope every JSONL line shares; the rest of the line is read from the raw record.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ComplianceRecord {
    /// UUID; the de-duplication key (delivery is at-least-once).
    pub event_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// ISO 8601 UTC, often with microseconds.
    pub timestamp: String,
    #[serde(default)]
    pub principal: Option<Principal>,
}

/// The workspace or organization a record belongs to.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Principal {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(rename = "type", default)]
    pub principal_type: Option<String>,
}
