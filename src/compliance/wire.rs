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

/// The freshness answer: the newest event time per asked type (`null` when the platform
/// has none).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Freshness {
    pub max_event_time: std::collections::HashMap<String, Option<String>>,
}

/// How a list body was laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum ListFormat {
    /// One JSON document, as documented.
    Json,
    /// Several documents one after another (pages, or file entries; JSON Lines included).
    Concatenated,
}

impl LogFilesPage {
    /// A list body: strictly one page document, else concatenated documents — pages (their
    /// files joined, `has_more` and `last_end_time` from the last) or bare file entries (no
    /// more pages claimed; the cursor moves to the last file's `end_time`). The strict
    /// error is the one reported when neither fits.
    pub fn from_body(bytes: &[u8]) -> Result<(Self, ListFormat), serde_json::Error> {
        let strict = match serde_json::from_slice::<Self>(bytes) {
            Ok(page) => return Ok((page, ListFormat::Json)),
            Err(e) => e,
        };
        let values = serde_json::Deserializer::from_slice(bytes)
            .into_iter::<serde_json::Value>()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| strict)?;
        let mut page = Self {
            data: Vec::new(),
            has_more: false,
            last_end_time: None,
        };
        for value in values {
            if value.get("data").is_some() {
                let part: Self = serde_json::from_value(value)?;
                page.data.extend(part.data);
                page.has_more = part.has_more;
                page.last_end_time = part.last_end_time.or(page.last_end_time);
            } else {
                let file: LogFile = serde_json::from_value(value)?;
                page.last_end_time = Some(file.end_time.clone());
                page.data.push(file);
            }
        }
        Ok((page, ListFormat::Concatenated))
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    const FILE_A: &str =
        r#"{"id":"eclf_a","event_type":"AUTH_LOG","end_time":"2026-11-30T10:00:00Z","file_sha256":"aa"}"#;
    const FILE_B: &str =
        r#"{"id":"eclf_b","event_type":"AUTH_LOG","end_time":"2026-11-30T11:00:00Z","file_sha256":"bb"}"#;

    #[test]
    fn a_list_body_is_one_page_or_concatenated_pages_or_bare_file_entries() {
        let one = format!(r#"{{"data":[{FILE_A}],"has_more":true,"last_end_time":"2026-11-30T10:00:00Z"}}"#);
        let (page, format) = LogFilesPage::from_body(one.as_bytes()).expect("json");
        assert_eq!((format, page.data.len(), page.has_more), (ListFormat::Json, 1, true));

        let pages = format!(
            "{{\n  \"data\": [{FILE_A}],\n  \"has_more\": true\n}}\n{{\"data\":[{FILE_B}],\"has_more\":false,\"last_end_time\":\"2026-11-30T11:00:00Z\"}}"
        );
        let (page, format) = LogFilesPage::from_body(pages.as_bytes()).expect("pages");
        assert_eq!(format, ListFormat::Concatenated);
        assert_eq!(
            page.data.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(),
            ["eclf_a", "eclf_b"]
        );
        assert!(!page.has_more);
        assert_eq!(page.last_end_time.as_deref(), Some("2026-11-30T11:00:00Z"));

        let entries = format!("{FILE_A}{FILE_B}");
        let (page, format) = LogFilesPage::from_body(entries.as_bytes()).expect("entries");
        assert_eq!(
            (format, page.data.len(), page.has_more),
            (ListFormat::Concatenated, 2, false)
        );
        assert_eq!(page.last_end_time.as_deref(), Some("2026-11-30T11:00:00Z"));
    }

    #[test]
    fn a_body_that_is_neither_reports_the_strict_error() {
        let err = LogFilesPage::from_body(br#"{"data": [}"#).expect_err("malformed");
        assert!(err.to_string().contains("line 1"), "{err}");
        assert!(LogFilesPage::from_body(br#"{"nothing":1}"#).is_err());
    }
}
