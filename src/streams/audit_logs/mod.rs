//! The audit-log streams, `audit_logs` and `audit_logs_tenant`: page one closed
//! `effective_at` window newest-first with `after=<last_id>`, emit each page, checkpoint the
//! in-window cursor as pages are acknowledged, and promote the watermark only when the
//! window is complete. Repeats from the overlap are dropped by id. The decisions live in
//! `pass` (pure); this file drives them with the API and the emitter.

pub(crate) mod pass;
mod window;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::Utc;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio_util::task::AbortOnDropHandle;

use self::pass::{Slicing, WindowPass};
use super::{Checkpoint, CycleError, CycleReport, Stream};
use crate::dedup::RecentIds;
use crate::metrics::Metrics;
use crate::normalize::{self, Context, Raw, Source};
use crate::openai::wire::{ListAuditLogsResponse, Record};
use crate::openai::{AdminApi, AuditLogQuery};
use crate::pipeline::progress::BACKFILL_MIN_SPAN;
use crate::pipeline::{Emitter, Order};
use crate::upstream::{ApiError, ApiErrorKind, Fetched};
pub use window::Window;

/// No backfill slice is shorter than this.
const MIN_SLICE: Duration = Duration::from_secs(60 * 60);

/// Stream names.
pub const NORMAL: &str = "audit_logs";
pub const TENANT: &str = "audit_logs_tenant";

/// What the checkpoint of an audit-log stream holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditState {
    /// Every event with `effective_at` up to here has been delivered (late arrivals are
    /// caught by the overlap).
    pub watermark: Option<i64>,
    /// The window being paged, if a cycle stopped inside one.
    pub window: Option<Window>,
    /// A backfill window split for parallel paging: its slices not yet read to their end,
    /// each with its own cursor.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slices: Vec<Window>,
    /// Ids at or after the next window's start, to drop repeats.
    pub recent: RecentIds,
}

impl Checkpoint for AuditState {
    fn complete_up_to(&self) -> Option<i64> {
        self.watermark
    }

    fn keeps_watermark() -> bool {
        true
    }
}

/// The two audit-log streams' settings (`[audit_logs]`).
#[derive(Debug, Clone)]
pub struct AuditLogSettings {
    pub enabled: bool,
    pub poll_interval: Duration,
    /// How far back the first start reads.
    pub initial_lookback: Duration,
    /// Re-read window for late-arriving events; repeats are dropped by id.
    pub overlap: Duration,
    /// Run the second, `tenant_only=true` pass.
    pub tenant_events: bool,
    /// `limit` per page, 1..=100.
    pub page_size: u8,
    /// How many slices of a backfill are paged at once (1: a backfill is paged as one
    /// window).
    pub backfill_concurrency: usize,
}

/// What the parts of one cycle's window share while they are paged concurrently.
#[derive(Debug)]
struct Shared {
    /// The stream's state: the parts' cursors, the ids to drop repeats by.
    state: Mutex<AuditState>,
    report: Mutex<CycleReport>,
    /// Event time still to read in each part (by its start), for the progress line.
    remaining: Mutex<BTreeMap<i64, i64>>,
    /// The window's start.
    from: i64,
    /// A part failed: start no more.
    failed: AtomicBool,
}

impl Shared {
    fn new(state: AuditState, parts: &[WindowPass], from: i64) -> Self {
        let remaining = parts
            .iter()
            .map(|p| (p.window.start, p.window.end - p.window.start))
            .collect();
        Self {
            state: Mutex::new(state),
            report: Mutex::new(CycleReport::default()),
            remaining: Mutex::new(remaining),
            from,
            failed: AtomicBool::new(false),
        }
    }

    fn state(&self) -> MutexGuard<'_, AuditState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn report(&self) -> MutexGuard<'_, CycleReport> {
        self.report.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The part starting at `part` has `left` seconds of event time still to read; returns
    /// the time the whole window is read down to, as if it were read as one.
    fn reached(&self, part: i64, left: i64) -> i64 {
        let mut remaining = self.remaining.lock().unwrap_or_else(|e| e.into_inner());
        remaining.insert(part, left.max(0));
        self.from + remaining.values().sum::<i64>()
    }

    fn failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    fn fail(&self) {
        self.failed.store(true, Ordering::Relaxed);
    }
}

/// Which of the two passes a stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// `audit_logs`: everything but tenant-scoped types.
    Normal,
    /// `audit_logs_tenant`: `tenant_only=true`.
    Tenant,
}

impl Pass {
    /// The stream's name.
    pub fn name(self) -> &'static str {
        match self {
            Pass::Normal => NORMAL,
            Pass::Tenant => TENANT,
        }
    }
}

/// One audit-log pass (normal or tenant-scoped).
#[derive(Debug)]
pub struct AuditLogStream {
    pass: Pass,
    client: AdminApi,
    settings: AuditLogSettings,
    ctx: Context,
    state: AuditState,
    metrics: Metrics,
}

impl AuditLogStream {
    /// The `pass` stream, resuming from `state` (its checkpoint, or the default on a first
    /// start).
    pub fn new(
        pass: Pass,
        client: AdminApi,
        settings: AuditLogSettings,
        ctx: Context,
        state: AuditState,
        metrics: Metrics,
    ) -> Self {
        Self {
            pass,
            client,
            settings,
            ctx,
            state,
            metrics,
        }
    }

    /// Starts fetching the page of `window` after its cursor, on its own task: the request
    /// and the parse of the answer overlap the normalizing and emitting of the page before.
    /// Dropping the handle cancels the request.
    fn fetch(&self, window: &Window) -> AbortOnDropHandle<Result<Fetched<ListAuditLogsResponse>, ApiError>> {
        let client = self.client.clone();
        let query = AuditLogQuery {
            gte: window.start,
            lte: window.end,
            after: window.after.clone(),
            limit: self.settings.page_size,
            tenant_only: self.pass == Pass::Tenant,
        };
        AbortOnDropHandle::new(tokio::spawn(async move { client.audit_logs(&query).await }))
    }

    /// Pages one part of the window — the whole window, or one slice — to its end: emit each
    /// page, checkpoint the cursor behind it, and fetch the next page while this one is
    /// emitted. Returns whether the whole window is now complete. On an error the part's
    /// cursor stays in `shared.state` (in memory) so the next attempt continues after the
    /// last page emitted.
    async fn page_part(
        &self,
        out: &Emitter<AuditState>,
        mut pass: WindowPass,
        shared: &Shared,
    ) -> Result<bool, CycleError> {
        let name = self.pass.name();
        let mut next = Some(self.fetch(&pass.window));
        while let Some(fetching) = next.take() {
            let fetched = fetching
                .await
                .map_err(|join| CycleError::Upstream(format!("the page request's task failed: {join}")))?;
            let mut page = match fetched {
                Ok(page) => page,
                Err(err) => {
                    pass.mark(&mut shared.state());
                    return Err(self.refusal(err));
                }
            };
            self.metrics.page_fetched(name);
            // Actors the page reader parsed, by record, handed to the normalizer.
            let mut actors: Vec<_> = page.body.data.iter_mut().map(Record::take_actor).collect();
            let (events, more, oldest) = {
                let mut state = shared.state();
                let taken = match pass.take(&mut state, &page.body, page.request_id.as_deref()) {
                    Ok(taken) => taken,
                    Err(why) => {
                        pass.mark(&mut state);
                        return Err(CycleError::Upstream(why));
                    }
                };
                drop(state);
                let (events, kept): (Vec<normalize::Event>, Vec<usize>) = taken
                    .records
                    .iter()
                    .map(|(place, record, members)| {
                        let actor = actors.get_mut(*place).and_then(Option::take);
                        let normalized = normalize::audit_log_with(members, actor, &self.ctx);
                        let event =
                            super::to_event(name, Source::AuditLog, &self.ctx, &self.metrics, normalized, || {
                                serde_json::Value::clone(record)
                            });
                        (event, *place)
                    })
                    .unzip();
                let mut report = shared.report();
                report.duplicates += taken.duplicates;
                report.events += events.len() as u64;
                report.pages += 1;
                let (more, oldest) = (taken.more, taken.oldest);
                drop(taken);
                (with_raw(events, &kept, page.body.data), more, oldest)
            };
            next = more.then(|| self.fetch(&pass.window));
            out.emit_all(events).await?;
            // Newest-first: the oldest record of the page is how far down the part is read.
            let reached = if more { oldest } else { Some(pass.window.start) };
            if let Some(at) = reached {
                out.progress()
                    .reached(shared.reached(pass.window.start, at - pass.window.start));
            }
            // The checkpoint is marked under the state's lock, so marks follow the state's
            // versions in order whichever part makes them.
            let mut state = shared.state();
            if !more {
                let (saved, complete) = pass.finish(&mut state);
                out.checkpoint(saved);
                return Ok(complete);
            }
            // Resume point: the next page, once this one is acknowledged.
            out.checkpoint(pass.mark(&mut state));
        }
        unreachable!("the loop returns after the last page")
    }

    /// Pages `parts` of the window, up to `backfill_concurrency` at once, all under the one
    /// request budget. After the first error no further part starts; those running finish
    /// (or fail) on their own, so no page is left half emitted. Returns whether the window is
    /// complete, or the first error.
    async fn page_parts(
        &mut self,
        out: &Emitter<AuditState>,
        parts: Vec<WindowPass>,
        window: &Window,
    ) -> Result<CycleReport, CycleError> {
        let shared = Shared::new(std::mem::take(&mut self.state), &parts, window.start);
        let concurrency = self.settings.backfill_concurrency.max(1);
        let this = &*self;
        let results: Vec<Result<bool, CycleError>> = futures_util::stream::iter(parts)
            .map(|part| {
                let shared = &shared;
                async move {
                    if shared.failed() {
                        return Ok(false);
                    }
                    let result = this.page_part(out, part, shared).await;
                    if result.is_err() {
                        shared.fail();
                    }
                    result
                }
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        let Shared { state, report, .. } = shared;
        self.state = state.into_inner().unwrap_or_else(|e| e.into_inner());
        let mut complete = false;
        for result in results {
            complete |= result?;
        }
        debug_assert!(complete, "every part ended without error, so the window is complete");
        Ok(report.into_inner().unwrap_or_else(|e| e.into_inner()))
    }

    /// How a backfill window is cut: windows longer than a backfill
    /// ([`BACKFILL_MIN_SPAN`]) into up to four slices per concurrent pager, each at least an
    /// hour — enough slices that the last ones to finish leave little of the budget unused.
    fn slicing(&self) -> Slicing {
        Slicing {
            min_window: BACKFILL_MIN_SPAN,
            // One pager: the window is read as one, as before slices existed.
            parts: match self.settings.backfill_concurrency {
                0 | 1 => 1,
                n => n.saturating_mul(4),
            },
            min_slice: MIN_SLICE,
        }
    }

    /// A tenant pass the organization cannot use is refused, not failed.
    fn refusal(&self, err: ApiError) -> CycleError {
        let refused = matches!(err.kind, ApiErrorKind::Forbidden | ApiErrorKind::NotFound)
            || (err.kind == ApiErrorKind::Rejected && err.status == Some(400));
        if self.pass == Pass::Tenant && refused {
            CycleError::Refused(format!(
                "the tenant-scoped audit-log pass (tenant_only=true) was refused: HTTP {}: {}; set audit_logs.tenant_events = false to stop asking",
                err.status.unwrap_or_default(),
                err.message
            ))
        } else {
            CycleError::Api(err)
        }
    }
}

/// `events`, made from the records of `page` at `kept` (ascending), each with its record as
/// `raw`: the text as received, moved from the page rather than copied, and written out
/// unchanged, never re-serialized.
fn with_raw(mut events: Vec<normalize::Event>, kept: &[usize], page: Vec<Record>) -> Vec<normalize::Event> {
    let mut kept = kept.iter().copied().peekable();
    let mut each = events.iter_mut();
    for (at, record) in page.into_iter().enumerate() {
        if kept.next_if_eq(&at).is_some()
            && let Some(event) = each.next()
        {
            event.raw = Some(Raw::text(record.into_text()));
        }
    }
    events
}

impl Stream for AuditLogStream {
    type State = AuditState;

    fn name(&self) -> &str {
        self.pass.name()
    }

    fn interval(&self) -> Duration {
        self.settings.poll_interval
    }

    async fn cycle(&mut self, out: &Emitter<AuditState>) -> Result<CycleReport, CycleError> {
        let now = Utc::now().timestamp();
        let (pass, future) = WindowPass::begin(
            &mut self.state,
            now,
            self.settings.overlap,
            self.settings.initial_lookback,
        );
        if let Some(future) = future {
            tracing::error!(
                stream = self.pass.name(),
                saved = future.saved,
                now = future.now,
                ahead_s = future.saved - future.now,
                allowance_s = super::CLOCK_SKEW_ALLOWANCE.as_secs(),
                reread_from = pass.window.start,
                "the checkpoint's position is in the future (this host's clock was fast when it was saved): reading again from audit_logs.initial_lookback instead of skipping to it; events already delivered may arrive again (receivers drop them by id)"
            );
        }
        let resumed = pass.resumed() || !self.state.slices.is_empty();
        let window = pass.window.clone();
        out.progress().begin(window.start, window.end, Order::NewestFirst);
        let slicing = self.slicing();
        let parts = pass.split(&mut self.state, slicing).unwrap_or_else(|| vec![pass]);
        let sliced = parts.len() > 1;
        let mut report = self.page_parts(out, parts, &window).await?;
        let (start, end) = (window.start, window.end);
        out.progress().finish();
        report.summary = format!(
            "window {start}..{end}{}{}",
            if sliced { " (in parallel slices)" } else { "" },
            if resumed { " (resumed mid-window)" } else { "" }
        );
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::value::RawValue;

    #[test]
    fn each_event_gets_the_text_of_its_own_record_when_records_between_were_dropped() {
        let page: Vec<Record> = ["a", "b", "c", "d"]
            .iter()
            .map(|id| Record::new(RawValue::from_string(format!(r#"{{"id":"{id}"}}"#)).expect("json")))
            .collect();
        let event = |id: &str| {
            normalize::Event::new(
                id.into(),
                Source::AuditLog,
                None,
                "x".into(),
                chrono::DateTime::UNIX_EPOCH,
            )
        };
        let events = with_raw(vec![event("a"), event("c"), event("d")], &[0, 2, 3], page);
        let raws: Vec<String> = events
            .iter()
            .map(|e| e.raw.as_ref().map(|r| r.json().into_owned()).unwrap_or_default())
            .collect();
        assert_eq!(raws, [r#"{"id":"a"}"#, r#"{"id":"c"}"#, r#"{"id":"d"}"#]);
    }
}
