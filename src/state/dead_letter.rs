//! The dead-letter file: one durable JSON line per event the ingestion service rejected, so
//! a rejected event is set aside with its reason instead of being dropped.

use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use super::atomic_file;

/// Where rejected events go.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    path: PathBuf,
}

#[derive(Serialize)]
struct Line<'a> {
    dead_lettered_at: String,
    reason: &'a str,
    status: Option<u16>,
    stream: &'a str,
    id: &'a str,
    event: Value,
}

impl DeadLetter {
    /// The dead-letter file at `path` (the state directory decides where).
    pub(super) fn new(path: PathBuf) -> Self {
        Self { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends the event `id` of `stream` (its JSON `event`) with why it was rejected, and
    /// returns once the line is on disk; only then may the caller acknowledge the event.
    pub async fn write(
        &self,
        stream: &str,
        id: &str,
        event: &[u8],
        reason: &str,
        status: Option<u16>,
    ) -> io::Result<()> {
        let line = line(stream, id, event, reason, status, chrono::Utc::now())?;
        self.append(line).await
    }
}

#[derive(Serialize)]
struct RawLine<'a> {
    dead_lettered_at: String,
    reason: &'a str,
    stream: &'a str,
    /// Where the line came from (for compliance: `{"file_id": …, "line": n}`).
    origin: &'a Value,
    raw_line: &'a str,
}

impl DeadLetter {
    /// Appends an upstream line that never became an event (malformed JSON Lines), with its
    /// origin and why, and returns once it is on disk; only then may the stream move past it.
    pub async fn write_raw(&self, stream: &str, reason: &str, origin: &Value, raw_line: &str) -> io::Result<()> {
        let mut line = serde_json::to_vec(&RawLine {
            dead_lettered_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            reason,
            stream,
            origin,
            raw_line,
        })
        .map_err(io::Error::other)?;
        line.push(b'\n');
        self.append(line).await
    }

    async fn append(&self, line: Vec<u8>) -> io::Result<()> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            if let Some(dir) = path.parent() {
                // The state directory itself, which may be the operator's link.
                atomic_file::ensure_private_dir(dir, true)?;
            }
            atomic_file::append_durable(&path, &line)
        })
        .await
        .map_err(io::Error::other)?
    }
}

/// One dead-letter line, newline included.
fn line(
    stream: &str,
    id: &str,
    event: &[u8],
    reason: &str,
    status: Option<u16>,
    now: chrono::DateTime<chrono::Utc>,
) -> io::Result<Vec<u8>> {
    // The event as an object, so the file can be read back with any JSON tool; if it is
    // somehow not JSON, keep its text rather than lose it.
    let event_value =
        serde_json::from_slice(event).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(event).into_owned()));
    let mut bytes = serde_json::to_vec(&Line {
        dead_lettered_at: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        reason,
        status,
        stream,
        id,
        event: event_value,
    })
    .map_err(io::Error::other)?;
    bytes.push(b'\n');
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[tokio::test]
    async fn each_rejected_event_is_one_owner_only_json_line_with_its_reason() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dead = DeadLetter::new(dir.path().join("state").join("dead-letter.ndjson"));
        for n in 0..2 {
            let json = format!(r#"{{"id":"ev-{n}","n":{n}}}"#);
            dead.write(
                "audit_logs",
                &format!("ev-{n}"),
                json.as_bytes(),
                "HTTP 400 Bad Request: bad field",
                Some(400),
            )
            .await
            .expect("written");
        }
        let text = std::fs::read_to_string(dead.path()).expect("read");
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["id"], "ev-1");
        assert_eq!(lines[1]["stream"], "audit_logs");
        assert_eq!(lines[1]["status"], 400);
        assert_eq!(lines[1]["reason"], "HTTP 400 Bad Request: bad field");
        assert_eq!(lines[1]["event"], serde_json::json!({"id": "ev-1", "n": 1}));
        assert!(lines[1]["dead_lettered_at"].as_str().is_some_and(|t| t.ends_with('Z')));
        let mode = std::fs::metadata(dead.path()).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[tokio::test]
    async fn a_malformed_upstream_line_is_kept_with_its_origin() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dead = DeadLetter::new(dir.path().join("dead-letter.ndjson"));
        let origin = serde_json::json!({"file_id": "eclf_1", "line": 7});
        dead.write_raw("compliance:AUTH_LOG", "not JSON: expected value", &origin, "{oops")
            .await
            .expect("written");
        let text = std::fs::read_to_string(dead.path()).expect("read");
        let line: Value = serde_json::from_str(text.trim_end()).expect("json line");
        assert_eq!(line["stream"], "compliance:AUTH_LOG");
        assert_eq!(line["origin"], origin);
        assert_eq!(line["raw_line"], "{oops");
        assert_eq!(line["reason"], "not JSON: expected value");
    }
}
