//! The `compliance:<EVENT_TYPE>` streams: list files after the cursor (ascending by
//! `end_time`, `has_more` / `last_end_time`), download and verify each one, read it line by
//! line from disk, drop repeated `event_id`s (delivery is at-least-once) and files seen
//! before, and checkpoint the position inside a file as its events are acknowledged, so a
//! stop mid-file resumes at the next line.

use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::BufReader;

use super::client::{ComplianceClient, LocationError};
use super::download::{self, DownloadError, Downloaded, FileStore, Spooled};
use super::lines::{BoundedLines, Line, MAX_LINE_BYTES, READ_BUFFER};
use super::wire::LogFile;
use crate::api_client::ApiErrorKind;
use crate::checkpoint::{CheckpointError, CheckpointStore};
use crate::config::ComplianceSettings;
use crate::dedup::RecentIds;
use crate::metrics::Metrics;
use crate::normalize::{self, Context, Event, Source, content};
use crate::pipeline::Emitter;
use crate::pipeline::stream::{CycleError, Stream};
use crate::sink::DeadLetter;

/// Stream names are this prefix plus the event type.
pub const STREAM_PREFIX: &str = "compliance:";

/// `limit` per list request (the platform's maximum).
pub const PAGE_LIMIT: u8 = 100;

/// A position inside a file is checkpointed at most this often (in lines), and only once the
/// previous position is acknowledged, so at most one mid-file state waits in memory.
pub const CHECKPOINT_EVERY_LINES: u64 = 500;

/// Recent event ids kept to drop at-least-once repeats across files (they reappear in the
/// next files, so the newest ids matter; the oldest go first).
pub const RECENT_EVENT_IDS: usize = 20_000;

/// Recent file ids kept: more than a page, so re-listing the same `after` skips what is done.
pub const RECENT_FILE_IDS: usize = 1_000;

/// What the checkpoint of a compliance stream holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ComplianceState {
    /// List cursor: every file with `end_time` up to here is done. `None` on a first start.
    pub after: Option<String>,
    /// The file being read when this state was taken, and how many of its lines are done.
    pub file: Option<FileProgress>,
    /// Event ids recently shipped, keyed by event time (Unix seconds).
    pub recent: RecentIds,
    /// Files fully handled (shipped or quarantined), keyed by `end_time` (Unix seconds).
    pub recent_files: RecentIds,
}

/// A file interrupted part-way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileProgress {
    pub file: LogFile,
    /// Physical lines (blank and malformed ones included) already handled.
    pub lines_done: u64,
}

/// One event type's stream.
#[derive(Debug)]
pub struct ComplianceStream {
    name: String,
    event_type: String,
    client: ComplianceClient,
    settings: ComplianceSettings,
    ctx: Context,
    files: FileStore,
    dead_letter: DeadLetter,
    state: ComplianceState,
    metrics: Metrics,
}

#[derive(Debug, Default)]
struct Totals {
    pages: u64,
    files: u64,
    files_skipped: u64,
    quarantined: u64,
    events: u64,
    duplicates: u64,
    malformed_lines: u64,
}

fn unix_seconds(iso: &str) -> i64 {
    DateTime::parse_from_rfc3339(iso).map_or(0, |t| t.timestamp())
}

impl ComplianceStream {
    /// The stream of `event_type`, resuming from its checkpoint. `state_dir` holds the spool,
    /// quarantine and dead-letter files.
    pub fn new(
        event_type: &str,
        client: ComplianceClient,
        settings: ComplianceSettings,
        state_dir: &std::path::Path,
        store: &CheckpointStore,
        metrics: Metrics,
    ) -> Result<Self, CheckpointError> {
        let name = format!("{STREAM_PREFIX}{event_type}");
        let state = store.load::<ComplianceState>(&name)?.unwrap_or_default();
        Ok(Self {
            ctx: Context {
                org_id: Some(settings.principal_id.clone()),
            },
            name,
            event_type: event_type.to_string(),
            client,
            settings,
            files: FileStore::new(state_dir),
            dead_letter: DeadLetter::new(state_dir),
            state,
            metrics,
        })
    }

    /// The stream's current (not necessarily committed) state.
    pub fn state(&self) -> &ComplianceState {
        &self.state
    }

    fn cursor(&mut self) -> String {
        self.state
            .after
            .get_or_insert_with(|| {
                let lookback =
                    chrono::Duration::from_std(self.settings.initial_lookback).unwrap_or(chrono::Duration::MAX);
                let start = Utc::now()
                    .checked_sub_signed(lookback)
                    .unwrap_or(DateTime::<Utc>::MIN_UTC);
                start.to_rfc3339_opts(SecondsFormat::Secs, true)
            })
            .clone()
    }

    async fn run(&mut self, out: &Emitter, totals: &mut Totals) -> Result<(), CycleError> {
        // A file a stop interrupted comes first: its remaining lines, then the list (which
        // may return it again; it is skipped by id then).
        if let Some(progress) = self.state.file.clone() {
            self.handle_file(out, &progress.file, progress.lines_done, totals)
                .await?;
        }
        loop {
            let after = self.cursor();
            let page = self.client.list(&self.event_type, &after, PAGE_LIMIT).await?;
            self.metrics.page_fetched(&self.name);
            totals.pages += 1;
            for file in &page.data {
                if self.state.recent_files.contains(&file.id) {
                    totals.files_skipped += 1;
                    continue;
                }
                self.handle_file(out, file, 0, totals).await?;
            }
            match page.last_end_time {
                Some(last) if page.has_more && last == after => {
                    return Err(CycleError::Upstream(format!(
                        "the file list did not advance (last_end_time {last} equals after); retrying later instead of looping"
                    )));
                }
                Some(last) => self.state.after = Some(last),
                None if page.has_more => {
                    return Err(CycleError::Upstream(
                        "a page says has_more but carries no last_end_time to continue from".into(),
                    ));
                }
                // An empty page: the old cursor stands.
                None => {}
            }
            out.checkpoint(&self.state);
            if !page.has_more {
                return Ok(());
            }
        }
    }

    /// Downloads, verifies and ships one file from line `skip + 1` on; a file that stays
    /// corrupt is quarantined and the stream moves on.
    async fn handle_file(
        &mut self,
        out: &Emitter,
        file: &LogFile,
        skip: u64,
        totals: &mut Totals,
    ) -> Result<(), CycleError> {
        let downloaded = match self.files.download(&self.client, file).await {
            Ok(d) => d,
            Err(DownloadError::Location(LocationError::Api(err))) if err.kind == ApiErrorKind::NotFound => {
                // Listed, then gone (retention ran out while we were behind): nothing left to
                // fetch, and waiting would stop the stream for good.
                tracing::error!(stream = %self.name, file_id = %file.id, end_time = %file.end_time, request_id = err.request_id.as_deref(), "a listed log file is no longer available upstream; its events cannot be fetched");
                self.finish_file(out, file);
                return Ok(());
            }
            Err(err) => return Err(cycle_error(err)),
        };
        totals.files += 1;
        match downloaded {
            Downloaded::Verified(spooled) => {
                let result = self.read_file(out, file, &spooled, skip, totals).await;
                download::discard(&spooled).await;
                result?;
            }
            Downloaded::Corrupt { spooled, attempts } => {
                let reason = format!(
                    "SHA-256 mismatch on {attempts} downloads: listed {}, received {} ({} bytes)",
                    file.file_sha256, spooled.sha256, spooled.bytes
                );
                let path = self.files.quarantine(file, spooled, &reason).await.map_err(|e| {
                    CycleError::Upstream(format!(
                        "failed to quarantine corrupt log file `{}` under {}: {e}",
                        file.id,
                        self.files.quarantine_dir().display()
                    ))
                })?;
                tracing::error!(
                    stream = %self.name,
                    file_id = %file.id,
                    path = %path.display(),
                    reason = %reason,
                    "a log file stays corrupt; its bytes are quarantined for an operator and the stream moves on"
                );
                self.metrics.upstream_reject(&self.name, "quarantined_file");
                totals.quarantined += 1;
            }
        }
        self.finish_file(out, file);
        Ok(())
    }

    fn finish_file(&mut self, out: &Emitter, file: &LogFile) {
        self.state.file = None;
        self.state.recent_files.insert(&file.id, unix_seconds(&file.end_time));
        self.state.recent_files.truncate(RECENT_FILE_IDS);
        self.state.recent.truncate(RECENT_EVENT_IDS);
        out.checkpoint(&self.state);
    }

    async fn read_file(
        &mut self,
        out: &Emitter,
        file: &LogFile,
        spooled: &Spooled,
        skip: u64,
        totals: &mut Totals,
    ) -> Result<(), CycleError> {
        let io_error = |e: std::io::Error| {
            CycleError::Upstream(format!(
                "failed to read spooled log file {}: {e}",
                spooled.path.display()
            ))
        };
        let handle = tokio::fs::File::open(&spooled.path).await.map_err(io_error)?;
        let mut lines = BoundedLines::new(BufReader::with_capacity(READ_BUFFER, handle), MAX_LINE_BYTES);
        let (mut lines_since_mark, mut emitted_since_mark) = (0u64, 0u64);
        while let Some((number, line)) = lines.next_line().await.map_err(io_error)? {
            if number <= skip {
                continue;
            }
            match line {
                Line::Text(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => {}
                Line::Text(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                    Ok(record) => {
                        if let Some(event) = self.accept(&record, totals) {
                            out.emit(event).await?;
                            emitted_since_mark += 1;
                        }
                    }
                    Err(e) => {
                        let text = String::from_utf8_lossy(&bytes);
                        self.reject_line(file, number, &text, &format!("not valid JSON: {e}"), totals)
                            .await?;
                    }
                },
                Line::TooLong { len, prefix } => {
                    let text = String::from_utf8_lossy(&prefix);
                    let reason = format!(
                        "line of {len} bytes exceeds the {MAX_LINE_BYTES}-byte limit; its first bytes are kept"
                    );
                    self.reject_line(file, number, &text, &reason, totals).await?;
                }
            }
            lines_since_mark += 1;
            // Everything before the previous mark is acknowledged when no more than what was
            // emitted since is outstanding: only then leave the next one.
            if lines_since_mark >= CHECKPOINT_EVERY_LINES && out.acks().outstanding() <= emitted_since_mark {
                self.state.recent.truncate(RECENT_EVENT_IDS);
                self.state.file = Some(FileProgress {
                    file: file.clone(),
                    lines_done: number,
                });
                out.checkpoint(&self.state);
                (lines_since_mark, emitted_since_mark) = (0, 0);
            }
        }
        Ok(())
    }

    /// A JSON record → the event to ship, or `None` for a repeat.
    fn accept(&mut self, record: &Value, totals: &mut Totals) -> Option<Event> {
        if let Some(event_id) = record.get("event_id").and_then(Value::as_str) {
            let at = record.get("timestamp").and_then(Value::as_str).map_or(0, unix_seconds);
            if !self.state.recent.insert(event_id, at) {
                totals.duplicates += 1;
                return None;
            }
        }
        let event = match normalize::compliance(record, &self.ctx) {
            Ok(event) => {
                if event.category == "other" {
                    self.metrics.unknown_type(&self.name, &event.event_type);
                }
                event
            }
            // It still travels, as an `other` event carrying the record, so nothing is dropped.
            Err(err) => {
                tracing::warn!(stream = %self.name, error = %err, kind = err.kind(), "a compliance record is incomplete; shipping it as an `other` event");
                normalize::unparseable(Source::Compliance, record, &self.ctx, &err.to_string())
            }
        };
        totals.events += 1;
        Some(event)
    }

    async fn reject_line(
        &self,
        file: &LogFile,
        number: u64,
        text: &str,
        reason: &str,
        totals: &mut Totals,
    ) -> Result<(), CycleError> {
        // A malformed line may still hold message text; the policy covers it when it is JSON
        // enough to find it, and otherwise only its hash is kept under `hash` / `drop`.
        let kept = match self.settings.content {
            crate::config::ContentMode::Keep => text.to_string(),
            _ => content::digest(text).to_string(),
        };
        let origin = json!({"file_id": file.id, "line": number, "event_type": file.event_type});
        self.dead_letter
            .write_raw(&self.name, reason, &origin, &kept)
            .await
            .map_err(|e| {
                CycleError::Upstream(format!(
                    "failed to write a malformed line of log file `{}` to the dead-letter file: {e}",
                    file.id
                ))
            })?;
        tracing::warn!(stream = %self.name, file_id = %file.id, line = number, reason, "a malformed log line was written to the dead-letter file; the rest of the file still flows");
        self.metrics.upstream_reject(&self.name, "malformed_line");
        totals.malformed_lines += 1;
        Ok(())
    }
}

fn cycle_error(err: DownloadError) -> CycleError {
    match err {
        DownloadError::Location(LocationError::Api(e)) => CycleError::Api(e),
        other => CycleError::Upstream(other.to_string()),
    }
}

impl Stream for ComplianceStream {
    fn name(&self) -> &str {
        &self.name
    }

    fn interval(&self) -> Duration {
        self.settings.poll_interval
    }

    async fn cycle(&mut self, out: &Emitter) -> Result<(), CycleError> {
        let started = Instant::now();
        let resumed_file = self.state.file.as_ref().map(|p| p.file.id.clone());
        let mut totals = Totals::default();
        let result = self.run(out, &mut totals).await;
        if totals.duplicates > 0 {
            self.metrics.duplicates_dropped(&self.name, totals.duplicates);
        }
        result?;
        tracing::info!(
            stream = %self.name,
            after = self.state.after.as_deref(),
            resumed_file,
            pages = totals.pages,
            files = totals.files,
            files_skipped = totals.files_skipped,
            quarantined = totals.quarantined,
            events = totals.events,
            duplicates_dropped = totals.duplicates,
            malformed_lines = totals.malformed_lines,
            duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "compliance files read"
        );
        Ok(())
    }
}
