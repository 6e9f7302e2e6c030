//! The `compliance:<EVENT_TYPE>` streams: list files after the cursor (ascending by
//! `end_time`, `has_more` / `last_end_time`), download and verify each one, read it line by
//! line from disk, drop repeated `event_id`s (delivery is at-least-once) and files seen
//! before, and checkpoint the position inside a file as its events are acknowledged, so a
//! stop mid-file resumes at the next line. A file whose download answers 404 is retried
//! (`missing`) until it has been missing for `compliance.missing_file_grace`; a saved cursor
//! from the future is not trusted.

mod accept;
pub mod files;
mod lines;
mod missing;
mod recent;
mod records;
mod saved;

use std::time::Duration;

use self::accept::{recent_key, stage};
use self::files::{DownloadError, Downloaded, Spooled};
use self::missing::{MissingFile, Verdict};
use self::recent::RecentEvents;
use self::records::{Parsed, Piece, Pieces};
use super::paging::with_request_id;
use super::{Checkpoint, CursorGuard, CycleError, CycleReport, Stream};
use crate::compliance::wire::{ListFormat, LogFile};
use crate::compliance::{ComplianceApi, LocationError};
use crate::dedup::RecentIds;
use crate::metrics::Metrics;
use crate::normalize::content::{self, ContentMode};
use crate::normalize::{Context, Event};
use crate::pipeline::{CHUNK, Emitter, Order};
use crate::state::{CheckpointError, CheckpointStore, DeadLetter, Spool};
use crate::upstream::ApiErrorKind;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Stream names are this prefix plus the event type.
pub const STREAM_PREFIX: &str = "compliance:";

/// `limit` per list request (the platform's maximum).
pub const PAGE_LIMIT: u8 = crate::compliance::MAX_LIST_LIMIT;

/// A position inside a file is checkpointed at most this often (in lines), and only once the
/// previous position is acknowledged, so at most one mid-file state waits in memory.
pub const CHECKPOINT_EVERY_LINES: u64 = 500;

/// Recent event ids kept to drop at-least-once repeats across files (they reappear in the
/// next files, so the newest ids matter; the oldest go first).
pub const RECENT_EVENT_IDS: usize = 20_000;

/// Event ids are also forgotten once their event time is this far behind the list cursor:
/// repeats come in the next files, hours apart at most (the slowest type, `COSTS`, lags
/// 3–5 h), so a quiet stream does not carry a month of ids in every checkpoint.
pub const RECENT_EVENT_HORIZON: Duration = Duration::from_secs(2 * 86_400);

/// Recent file ids kept: more than a page, so re-listing the same `after` skips what is done.
pub const RECENT_FILE_IDS: usize = 1_000;

/// What the checkpoint of a compliance stream holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ComplianceState {
    /// List cursor: every file with `end_time` up to here is done. `None` on a first start.
    pub after: Option<String>,
    /// The file being read when this state was taken, and how many of its lines are done.
    pub file: Option<FileProgress>,
    /// Event ids recently shipped, with their event time (Unix seconds). On disk they are a
    /// file of their own beside the checkpoint (`saved`).
    #[serde(default)]
    pub recent: RecentEvents,
    /// The number of the file that holds `recent` on disk; a new one at each boundary (a
    /// finished file, a list page). `None` before the first (and in a checkpoint of an
    /// earlier version, which holds `recent` itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recent_in: Option<u64>,
    /// `recent` as it was when `recent_in` was numbered: what that file holds, whichever
    /// later state is the first saved (it shares its groups with `recent`).
    #[serde(skip)]
    pub numbered: Option<RecentEvents>,
    /// Files fully handled (shipped or quarantined), keyed by `end_time` (Unix seconds).
    pub recent_files: RecentIds,
    /// A listed file whose download answers 404, and since when: retried until
    /// `compliance.missing_file_grace` has passed, across restarts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<MissingFile>,
}

impl Checkpoint for ComplianceState {
    /// Every file that ends at or before the list cursor is done.
    fn complete_up_to(&self) -> Option<i64> {
        self.after.as_deref().map(unix_seconds).filter(|&t| t > 0)
    }

    fn keeps_watermark() -> bool {
        true
    }

    fn save_to(&self, store: &CheckpointStore, stream: &str) -> Result<(), CheckpointError> {
        saved::save(self, store, stream)
    }

    fn load_from(store: &CheckpointStore, stream: &str) -> Result<Option<Self>, CheckpointError> {
        saved::load(store, stream)
    }
}

impl ComplianceState {
    /// This state for a checkpoint at a boundary (a finished file, a list page): the
    /// remembered event ids bounded and sealed, so the copy shares them (see `recent`), under
    /// a new number, so they are written beside the checkpoint once (see `saved`).
    fn snapshot(&mut self) -> Self {
        self.bound_recent();
        self.recent_in = Some(self.recent_in.map_or(1, |n| n + 1));
        self.numbered = Some(self.recent.clone());
        self.clone()
    }

    /// This state for a checkpoint inside a file: the ids keep their number, so only the
    /// small rest is written (a resume reads the file's lines before the mark again).
    fn snapshot_within_file(&mut self) -> Self {
        self.bound_recent();
        self.clone()
    }

    /// Bounds the remembered event ids by time (within [`RECENT_EVENT_HORIZON`] of the
    /// cursor) and by count ([`RECENT_EVENT_IDS`], the oldest go first).
    fn bound_recent(&mut self) {
        if let Some(after) = self.after.as_deref() {
            let horizon = i64::try_from(RECENT_EVENT_HORIZON.as_secs()).unwrap_or(i64::MAX);
            self.recent.prune_before(unix_seconds(after).saturating_sub(horizon));
        }
        self.recent.truncate(RECENT_EVENT_IDS);
    }
}

/// The compliance streams' own settings (the stream half of `[compliance]`).
#[derive(Debug, Clone)]
pub struct ComplianceStreamSettings {
    /// One stream per event type.
    pub event_types: Vec<String>,
    pub poll_interval: Duration,
    pub initial_lookback: Duration,
    /// What a malformed line's text becomes in the dead-letter file.
    pub content: ContentMode,
    /// The least time one file's download may take (`compliance.download_timeout`); a file
    /// that announces its size gets more (see `files::budget`).
    pub download_timeout: Duration,
    /// How long a listed file may keep answering 404 before it is given up as lost
    /// (`compliance.missing_file_grace`).
    pub missing_file_grace: Duration,
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
    client: ComplianceApi,
    settings: ComplianceStreamSettings,
    ctx: Context,
    spool: Spool,
    dead_letter: DeadLetter,
    state: ComplianceState,
    metrics: Metrics,
    /// Whether the saved cursor has been checked against the clock (once, at the first
    /// cycle: later cursors come from the platform, not from this host's clock).
    cursor_checked: bool,
    /// The list body layout last logged, so a change of layout is logged once.
    list_format: Option<ListFormat>,
    /// The client for the freshness figure: few tries, since it must never hold the
    /// stream up; `None` once the platform has refused it (not offered).
    freshness: Option<ComplianceApi>,
}

/// What one cycle did.
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

/// Where a stream's files go and where its rejects are kept (parts of the state directory).
#[derive(Debug, Clone)]
pub struct FilePlaces {
    pub spool: Spool,
    pub dead_letter: DeadLetter,
}

fn unix_seconds(iso: &str) -> i64 {
    DateTime::parse_from_rfc3339(iso).map_or(0, |t| t.timestamp())
}

impl ComplianceStream {
    /// The stream name of `event_type`.
    pub fn name_of(event_type: &str) -> String {
        format!("{STREAM_PREFIX}{event_type}")
    }

    /// The stream of `event_type` for the platform principal `client` reads, resuming from
    /// `state` (its checkpoint, or the default on a first start).
    pub fn new(
        event_type: &str,
        client: ComplianceApi,
        settings: ComplianceStreamSettings,
        places: FilePlaces,
        mut state: ComplianceState,
        metrics: Metrics,
    ) -> Self {
        // The ids as loaded (none on a first start) are what the numbered file holds, or is
        // to hold when this process saves under that number first.
        state.recent.seal();
        state.numbered.get_or_insert_with(|| state.recent.clone());
        Self {
            ctx: Context {
                org_id: Some(client.principal_id().to_string()),
            },
            name: Self::name_of(event_type),
            event_type: event_type.to_string(),
            freshness: Some(client.clone().with_attempts(2)),
            client,
            settings,
            spool: places.spool,
            dead_letter: places.dead_letter,
            state,
            metrics,
            cursor_checked: false,
            list_format: None,
        }
    }

    /// A saved cursor more than the skew allowance in the future (written while this host's
    /// clock was fast, or restored from elsewhere) would skip every file up to it: it is
    /// reported and the stream reads again from `initial_lookback` (files already shipped are
    /// skipped by id).
    fn distrust_a_future_cursor(&mut self) {
        let allowance = super::CLOCK_SKEW_ALLOWANCE;
        let now = Utc::now();
        let Some(after) = self.state.after.clone() else { return };
        let Ok(saved) = DateTime::parse_from_rfc3339(&after) else {
            return;
        };
        let ahead = saved.with_timezone(&Utc) - now;
        if ahead.to_std().is_ok_and(|a| a > allowance) {
            self.state.after = None;
            tracing::error!(
                stream = %self.name,
                saved = %after,
                now = %now.to_rfc3339_opts(SecondsFormat::Secs, true),
                ahead_s = ahead.num_seconds(),
                allowance_s = allowance.as_secs(),
                "the checkpoint's cursor is in the future (this host's clock was fast when it was saved): listing again from compliance.initial_lookback instead of skipping to it; files already shipped are skipped by id"
            );
        }
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

    async fn run(&mut self, out: &Emitter<ComplianceState>, totals: &mut Totals) -> Result<(), CycleError> {
        // A file a stop interrupted comes first: its remaining lines, then the list (which
        // may return it again; it is skipped by id then).
        if let Some(progress) = self.state.file.clone() {
            self.handle_file(out, &progress.file, progress.lines_done, totals)
                .await?;
        }
        if !self.cursor_checked {
            self.distrust_a_future_cursor();
            self.cursor_checked = true;
        }
        let mut guard = CursorGuard::new(Some(&self.cursor()));
        out.progress()
            .begin(unix_seconds(&self.cursor()), Utc::now().timestamp(), Order::OldestFirst);
        loop {
            let after = self.cursor();
            let fetched = self.client.list(&self.event_type, &after, PAGE_LIMIT).await?;
            let (page, format) = fetched.body;
            if self.list_format != Some(format) {
                self.list_format = Some(format);
                tracing::info!(stream = %self.name, format = <&str>::from(format), "the file list arrives in this format");
            }
            self.metrics.page_fetched(&self.name);
            totals.pages += 1;
            for file in &page.data {
                if self.state.recent_files.contains(&file.id) {
                    totals.files_skipped += 1;
                    continue;
                }
                self.handle_file(out, file, 0, totals).await?;
            }
            let ids = page.data.iter().map(|f| f.id.as_str());
            let next = guard
                .next(page.has_more, page.last_end_time.clone(), page.data.len(), ids)
                .map_err(|why| CycleError::Upstream(with_request_id(why, fetched.request_id.as_deref())))?;
            // An empty last page has no `last_end_time`: the old cursor stands.
            if let Some(last) = next.or(page.last_end_time) {
                self.state.after = Some(last);
            }
            out.checkpoint(self.state.snapshot());
            if !page.has_more {
                out.progress().finish();
                return Ok(());
            }
        }
    }

    /// Downloads, verifies and ships one file from line `skip + 1` on; a file that stays
    /// corrupt is quarantined and the stream moves on.
    async fn handle_file(
        &mut self,
        out: &Emitter<ComplianceState>,
        file: &LogFile,
        skip: u64,
        totals: &mut Totals,
    ) -> Result<(), CycleError> {
        let downloaded = match files::download(&self.client, &self.spool, file, self.settings.download_timeout).await {
            Ok(d) => d,
            Err(DownloadError::Location(LocationError::Api(err))) if err.kind == ApiErrorKind::NotFound => {
                return self.missing(out, file, &err);
            }
            Err(err) => return Err(cycle_error(err)),
        };
        totals.files += 1;
        match downloaded {
            Downloaded::Verified(spooled) => {
                let result = self.read_file(out, file, &spooled, skip, totals).await;
                Spool::discard(&spooled.path).await;
                result?;
            }
            Downloaded::Corrupt { spooled, attempts } => {
                let reason = format!(
                    "SHA-256 mismatch on {attempts} downloads: listed {}, received {} ({} bytes)",
                    file.file_sha256, spooled.sha256, spooled.bytes
                );
                let path = files::quarantine(&self.spool, file, spooled, &reason)
                    .await
                    .map_err(|e| {
                        CycleError::Upstream(format!(
                            "failed to quarantine corrupt log file `{}` under {}: {e}",
                            file.id,
                            self.spool.quarantine_dir().display()
                        ))
                    })?;
                tracing::error!(
                    stream = %self.name,
                    file_id = %file.id,
                    path = %path.display(),
                    error.message = %reason,
                    "a log file stays corrupt; its bytes are quarantined for an operator and the stream moves on"
                );
                self.metrics.upstream_reject(&self.name, "quarantined_file");
                totals.quarantined += 1;
            }
        }
        self.finish_file(out, file);
        Ok(())
    }

    /// Sets `oai_ingest_compliance_freshness_lag_seconds` for this type: the platform's newest
    /// event time (`max_event_time`) minus the list cursor, 0 when caught up. A failure only
    /// leaves the figure as it was; a refusal (the endpoint not offered) stops asking.
    async fn measure_freshness(&mut self) {
        let Some(client) = &self.freshness else { return };
        match client.max_event_time(&self.event_type).await {
            Ok(newest) => {
                let newest = newest.as_deref().map_or(0, unix_seconds);
                let cursor = self.state.after.as_deref().map_or(0, unix_seconds);
                self.metrics
                    .compliance_freshness_lag(&self.event_type, newest.saturating_sub(cursor).max(0));
            }
            Err(err) if !err.is_transient() => {
                tracing::warn!(stream = %self.name, error.message = %err.summary(), "the platform's freshness endpoint (max_event_time) is not usable; no freshness figure for this type");
                self.freshness = None;
            }
            Err(err) => {
                tracing::debug!(stream = %self.name, error.message = %err.summary(), "freshness figure not updated")
            }
        }
    }

    /// A listed file whose download answers 404: a transient gap until it has been missing for
    /// the grace period (the cycle fails and backs off; the stream waits for it), then a loss
    /// reported as an ERROR naming the file and its events' time span, and the stream moves on.
    fn missing(
        &mut self,
        out: &Emitter<ComplianceState>,
        file: &LogFile,
        err: &crate::upstream::ApiError,
    ) -> Result<(), CycleError> {
        let now = Utc::now().timestamp();
        let grace = self.settings.missing_file_grace;
        let verdict = missing::judge(&mut self.state.missing, &file.id, now, grace);
        let events_after = self.state.after.clone().unwrap_or_default();
        match verdict {
            Verdict::Wait { first, missing_for } => {
                if first {
                    // Remember since when, so a restart does not start the grace again.
                    out.checkpoint(self.state.snapshot());
                }
                Err(CycleError::Waiting(with_request_id(
                    format!(
                        "log file `{}` (events after {events_after} up to {}) answers 404 on download; retrying with backoff, and only after it has been missing for compliance.missing_file_grace ({}s; {missing_for}s so far) is it given up",
                        file.id,
                        file.end_time,
                        grace.as_secs()
                    ),
                    err.request_id.as_deref(),
                )))
            }
            Verdict::GiveUp { missing_for } => {
                tracing::error!(
                    stream = %self.name,
                    file_id = %file.id,
                    file_name = file.file_name.as_deref(),
                    events_after = %events_after,
                    events_until = %file.end_time,
                    missing_for_s = missing_for,
                    grace_s = grace.as_secs(),
                    request_id = err.request_id.as_deref(),
                    "a listed log file stayed missing upstream (HTTP 404) for longer than compliance.missing_file_grace: its events, from events_after to events_until, are lost; the stream moves on"
                );
                self.metrics.upstream_reject(&self.name, "missing_file");
                self.finish_file(out, file);
                Ok(())
            }
        }
    }

    fn finish_file(&mut self, out: &Emitter<ComplianceState>, file: &LogFile) {
        self.state.file = None;
        self.state.missing = None;
        self.state.recent_files.insert(&file.id, unix_seconds(&file.end_time));
        out.progress().reached(unix_seconds(&file.end_time));
        self.state.recent_files.truncate(RECENT_FILE_IDS);
        out.checkpoint(self.state.snapshot());
    }

    async fn read_file(
        &mut self,
        out: &Emitter<ComplianceState>,
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
        // Strict JSON Lines first; concatenated documents (on a line, or across lines) as
        // the fallback. The same file always reads the same way, so a resumed position
        // (lines, or documents) means the same place.
        let format = records::sniff(&spooled.path).await.map_err(io_error)?;
        tracing::info!(stream = %self.name, file_id = %file.id, format = <&str>::from(format), "reading a log file");
        let mut pieces = Pieces::open(&spooled.path, format).await.map_err(io_error)?;
        let (mut lines_since_mark, mut emitted_since_mark) = (0u64, 0u64);
        // Accepted events go downstream a chunk at a time, and always before a mark.
        let mut chunk: Vec<Event> = Vec::with_capacity(CHUNK);
        while let Some((number, piece)) = pieces.next().await.map_err(io_error)? {
            // A shipped piece (`number <= skip`) was shipped before the stop: its ids are
            // remembered again, as the first reading did (the checkpoint holds the ids as the
            // file began; see `saved`).
            let shipped = number <= skip;
            let parsed = match piece {
                Piece::Blank => None,
                // Nearly every line: one object, read as a tape.
                Piece::Object(line) => match self.accept_line(line, shipped, file, totals) {
                    Ok(event) => {
                        if let Some(event) = event {
                            stage(out, &mut chunk, event).await?;
                            emitted_since_mark += 1;
                        }
                        None
                    }
                    Err(line) => Some(line.into_parsed()),
                },
                Piece::Parsed(parsed) => Some(parsed),
            };
            if shipped {
                if let Some(Parsed::Records(records)) = &parsed {
                    for record in records {
                        let (key, at) = recent_key(&**record, file);
                        self.state.recent.insert(&key, at);
                    }
                }
                continue;
            }
            match parsed {
                None => {}
                Some(Parsed::Records(records)) => {
                    for record in records {
                        if let Some(event) = self.accept(record, file, totals) {
                            stage(out, &mut chunk, event).await?;
                            emitted_since_mark += 1;
                        }
                    }
                }
                Some(Parsed::Malformed { text, reason }) => {
                    let text = String::from_utf8_lossy(&text);
                    self.reject_line(file, number, &text, &reason, totals).await?;
                }
            }
            lines_since_mark += 1;
            if lines_since_mark >= CHECKPOINT_EVERY_LINES {
                out.emit_all(chunk.drain(..)).await?;
                // Everything before the previous mark is acknowledged when no more than what
                // was emitted since is outstanding: only then leave the next one.
                if out.acks().outstanding() <= emitted_since_mark {
                    self.state.file = Some(FileProgress {
                        file: file.clone(),
                        lines_done: number,
                    });
                    out.checkpoint(self.state.snapshot_within_file());
                    (lines_since_mark, emitted_since_mark) = (0, 0);
                }
            }
        }
        out.emit_all(chunk).await?;
        Ok(())
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
            ContentMode::Keep => text.to_string(),
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
        self.metrics
            .dead_lettered(crate::metrics::DeadLetterReason::MalformedLine);
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
    type State = ComplianceState;

    fn name(&self) -> &str {
        &self.name
    }

    fn interval(&self) -> Duration {
        self.settings.poll_interval
    }

    async fn cycle(&mut self, out: &Emitter<ComplianceState>) -> Result<CycleReport, CycleError> {
        let resumed_file = self.state.file.as_ref().map(|p| p.file.id.clone());
        let mut totals = Totals::default();
        let result = self.run(out, &mut totals).await;
        // A stream stuck behind a file still reports how far behind it is.
        if !matches!(result, Err(CycleError::Stopped(_))) {
            self.measure_freshness().await;
        }
        result?;
        Ok(CycleReport {
            pages: totals.pages,
            events: totals.events,
            duplicates: totals.duplicates,
            summary: format!(
                "files after {}: {} read, {} skipped as done, {} quarantined, {} malformed lines{}",
                self.state.after.as_deref().unwrap_or("-"),
                totals.files,
                totals.files_skipped,
                totals.quarantined,
                totals.malformed_lines,
                resumed_file
                    .map(|f| format!("; resumed inside {f}"))
                    .unwrap_or_default()
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_event_ids_are_bounded_by_time_behind_the_cursor_as_well_as_by_count() {
        let now = unix_seconds("2026-11-30T12:00:00Z");
        let mut state = ComplianceState {
            after: Some("2026-11-30T12:00:00Z".into()),
            ..ComplianceState::default()
        };
        state.recent.insert("fresh", now - 3600);
        state.recent.insert("a-day-ago", now - 86_400);
        state.recent.insert("last-week", now - 7 * 86_400);
        state.bound_recent();
        assert!(state.recent.contains("fresh") && state.recent.contains("a-day-ago"));
        assert!(!state.recent.contains("last-week"), "older than the horizon");

        for i in 0..(RECENT_EVENT_IDS + 5) {
            state.recent.insert(&format!("e{i}"), now - 60);
        }
        state.bound_recent();
        assert_eq!(state.recent.len(), RECENT_EVENT_IDS);
    }
}
