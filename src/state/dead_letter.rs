//! The dead-letter file: one durable JSON line per event the ingestion service rejected (and
//! per upstream line that never became an event), so nothing is dropped without a trace. It
//! has a size limit past which it takes no more lines — the caller pauses instead — and
//! `replay` reads it back and rewrites it without what was delivered.

use std::collections::HashMap;
use std::io::{self, BufRead};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::atomic_file;

/// Where rejected events go.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    path: PathBuf,
    /// Past this many bytes, no more lines are written (`sink.dead_letter_max_bytes`).
    limit: Option<u64>,
}

/// Why a line was not written.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    #[error(
        "the dead-letter file {path} holds {size} bytes; one more line would pass its limit of {limit} \
         bytes (sink.dead_letter_max_bytes)"
    )]
    Full { path: PathBuf, size: u64, limit: u64 },
    #[error("failed to write the dead-letter file: {0}")]
    Io(#[from] io::Error),
}

/// One line of the file, as `replay` sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// An event the ingestion service rejected: it can be sent again.
    Event { stream: String, id: String, event: Value },
    /// Anything else (an upstream line that never became an event, a line this version
    /// cannot read): kept as it is.
    Other,
}

#[derive(Deserialize)]
struct EventLine {
    stream: String,
    id: String,
    event: Value,
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
        Self { path, limit: None }
    }

    /// The same file, refusing lines past `max_bytes`.
    pub fn limited(self, max_bytes: u64) -> Self {
        Self {
            limit: Some(max_bytes),
            ..self
        }
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
    ) -> Result<(), DeadLetterError> {
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
    pub async fn write_raw(
        &self,
        stream: &str,
        reason: &str,
        origin: &Value,
        raw_line: &str,
    ) -> Result<(), DeadLetterError> {
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

    async fn append(&self, line: Vec<u8>) -> Result<(), DeadLetterError> {
        let path = self.path.clone();
        let limit = self.limit;
        tokio::task::spawn_blocking(move || {
            if let Some(limit) = limit {
                let size = match std::fs::metadata(&path) {
                    Ok(meta) => meta.len(),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
                    Err(e) => return Err(e.into()),
                };
                if size.saturating_add(line.len() as u64) > limit {
                    return Err(DeadLetterError::Full { path, size, limit });
                }
            }
            if let Some(dir) = path.parent() {
                // The state directory itself, which may be the operator's link.
                atomic_file::ensure_private_dir(dir, true)?;
            }
            atomic_file::append_durable(&path, &line)?;
            Ok(())
        })
        .await
        .map_err(io::Error::other)?
    }

    /// Every line with its number (0-based), read back for `replay`; an absent file has none.
    pub fn entries(&self) -> io::Result<Vec<(usize, Entry)>> {
        let file = match std::fs::File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for (number, line) in io::BufReader::new(file).lines().enumerate() {
            let line = line?;
            let entry = match serde_json::from_str::<EventLine>(&line) {
                Ok(EventLine { stream, id, event }) if event.is_object() => Entry::Event { stream, id, event },
                _ => Entry::Other,
            };
            out.push((number, entry));
        }
        Ok(out)
    }

    /// The lines as they are, by event id (a line per id, latest last), for `replay` to
    /// take a re-rejected event's new line from a scratch file.
    pub fn lines_by_id(&self) -> io::Result<HashMap<String, Vec<String>>> {
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        let file = match std::fs::File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e),
        };
        for line in io::BufReader::new(file).lines() {
            let line = line?;
            if let Ok(EventLine { id, .. }) = serde_json::from_str::<EventLine>(&line) {
                out.entry(id).or_default().push(line);
            }
        }
        Ok(out)
    }

    /// Replaces the file atomically: `decide` gets each line's number and text and returns
    /// what to keep in its place (`None` drops it). A crash leaves the old file or the new.
    pub fn rewrite(&self, mut decide: impl FnMut(usize, &str) -> Option<String>) -> io::Result<()> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let mut out = String::with_capacity(text.len());
        for (number, line) in text.lines().enumerate() {
            if let Some(kept) = decide(number, line) {
                out.push_str(&kept);
                out.push('\n');
            }
        }
        atomic_file::write_atomic(&self.path, out.as_bytes())
    }

    /// Removes the file (a replay's scratch file once it is folded back).
    pub fn remove(&self) -> io::Result<()> {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
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
    async fn past_its_limit_the_file_takes_no_more_lines_and_says_so() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dead = DeadLetter::new(dir.path().join("dead-letter.ndjson")).limited(400);
        let mut written = 0;
        let full = loop {
            match dead
                .write(
                    "s",
                    "ev",
                    br#"{"id":"ev","pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#,
                    "HTTP 400",
                    Some(400),
                )
                .await
            {
                Ok(()) => written += 1,
                Err(err) => break err,
            }
        };
        assert!(written >= 1);
        assert!(matches!(full, DeadLetterError::Full { limit: 400, .. }), "{full}");
        assert!(full.to_string().contains("sink.dead_letter_max_bytes"));
        let size = std::fs::metadata(dead.path()).expect("meta").len();
        assert!(size <= 400, "the file stays within its limit: {size}");
    }

    #[tokio::test]
    async fn replay_reads_events_back_and_a_rewrite_keeps_only_what_it_is_told() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dead = DeadLetter::new(dir.path().join("dead-letter.ndjson"));
        dead.write("audit_logs", "a", br#"{"id":"a"}"#, "HTTP 400", Some(400))
            .await
            .expect("a");
        dead.write_raw(
            "compliance:AUTH_LOG",
            "not JSON",
            &serde_json::json!({"line": 1}),
            "{oops",
        )
        .await
        .expect("raw");
        dead.write("audit_logs", "b", br#"{"id":"b"}"#, "HTTP 422", Some(422))
            .await
            .expect("b");
        let entries = dead.entries().expect("entries");
        assert_eq!(entries.len(), 3);
        assert_eq!(
            entries[0].1,
            Entry::Event {
                stream: "audit_logs".into(),
                id: "a".into(),
                event: serde_json::json!({"id": "a"})
            }
        );
        assert_eq!(entries[1].1, Entry::Other);
        assert_eq!(dead.lines_by_id().expect("by id")["b"].len(), 1);
        dead.rewrite(|n, line| (n != 0).then(|| line.to_string()))
            .expect("rewrite");
        let left: Vec<(usize, Entry)> = dead.entries().expect("entries");
        assert_eq!(left.len(), 2);
        assert_eq!(left[0].1, Entry::Other, "the malformed upstream line stays");
        assert!(matches!(&left[1].1, Entry::Event { id, .. } if id == "b"));
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
