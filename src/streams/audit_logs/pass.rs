//! One pass through an audit-log window, without I/O: which window a cycle reads (refusing
//! a saved position from the future), what each page contributes (repeats from the overlap
//! dropped by id, cyclic paging refused), and the state to checkpoint after each page and at
//! the end. The stream drives it with the API and the emitter; the property tests drive it
//! with an in-memory upstream.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::{AuditState, Window};
use crate::dedup;
use crate::normalize;
use crate::openai::wire::{AuditLog, ListAuditLogsResponse};
use crate::streams::paging::with_request_id;
use crate::streams::{CLOCK_SKEW_ALLOWANCE, CursorGuard};

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// A saved position that lies in the future: the clock was fast when it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FutureCheckpoint {
    /// The latest time the checkpoint names (watermark or window end), Unix seconds.
    pub saved: i64,
    /// This host's clock when it was noticed.
    pub now: i64,
}

/// What one page contributes.
#[derive(Debug)]
pub struct Taken<'p> {
    /// The records to ship, in page order.
    pub records: Vec<&'p Value>,
    /// Records dropped as repeats already delivered.
    pub duplicates: u64,
    /// Whether the window has more pages.
    pub more: bool,
}

/// One window pass.
#[derive(Debug)]
pub struct WindowPass {
    /// The window read, with the cursor of the last page taken.
    pub window: Window,
    /// Ids of events at or after this time are remembered: the next window re-reads them.
    keep_from: i64,
    guard: CursorGuard,
    overlap: Duration,
}

/// The id a record is remembered by, and its time: its own id and `effective_at`, or — for a
/// record that cannot be read — the digest its `other` event is named by (see
/// `normalize::unparseable`) and `fallback_at`.
pub fn dedup_key(record: &Value, fallback_at: i64) -> (String, i64) {
    match AuditLog::deserialize(record) {
        Ok(view) => (view.id, view.effective_at),
        Err(_) => (
            normalize::unparseable_key(record),
            record
                .get("effective_at")
                .and_then(Value::as_i64)
                .unwrap_or(fallback_at),
        ),
    }
}

impl WindowPass {
    /// The pass a cycle at `now` makes: the saved window resumed, or the next one opened. A
    /// watermark or window more than [`CLOCK_SKEW_ALLOWANCE`] in the future is reported and
    /// forgotten, and the window starts again from `now - lookback`, as on a first start:
    /// what lay between the real time and that future mark is read, not skipped.
    pub fn begin(
        state: &mut AuditState,
        now: i64,
        overlap: Duration,
        lookback: Duration,
    ) -> (Self, Option<FutureCheckpoint>) {
        let saved = state
            .window
            .as_ref()
            .map(|w| w.start.max(w.end))
            .into_iter()
            .chain(state.watermark)
            .max();
        let future = saved
            .filter(|&t| t > now.saturating_add(secs(CLOCK_SKEW_ALLOWANCE)))
            .map(|saved| FutureCheckpoint { saved, now });
        if future.is_some() {
            state.watermark = None;
            state.window = None;
        }
        let window = state
            .window
            .clone()
            .unwrap_or_else(|| Window::next(state.watermark, now, overlap, lookback));
        let pass = Self {
            keep_from: window.next_start(overlap),
            guard: CursorGuard::new(window.after.as_deref()),
            window,
            overlap,
        };
        (pass, future)
    }

    /// Whether the pass continues a window a previous cycle began.
    pub fn resumed(&self) -> bool {
        self.window.after.is_some()
    }

    /// Takes one page of the window: checks that paging can go on safely (else nothing is
    /// taken and the error, naming `request_id`, is for the cycle to back off on), and picks
    /// the records not delivered before.
    pub fn take<'p>(
        &mut self,
        state: &mut AuditState,
        page: &'p ListAuditLogsResponse,
        request_id: Option<&str>,
    ) -> Result<Taken<'p>, String> {
        let ids = page.data.iter().filter_map(|r| r.get("id").and_then(Value::as_str));
        let next = self
            .guard
            .next(page.has_more, page.last_id.clone(), page.data.len(), ids)
            .map_err(|why| with_request_id(why, request_id))?;
        let mut taken = Taken {
            records: Vec::with_capacity(page.data.len()),
            duplicates: 0,
            more: next.is_some(),
        };
        for record in &page.data {
            let (key, at) = dedup_key(record, self.window.end);
            if state.recent.contains(&key) {
                taken.duplicates += 1;
                continue;
            }
            if at >= self.keep_from {
                state.recent.insert(&key, at);
            }
            taken.records.push(record);
        }
        self.window.pages += 1;
        if let Some(next) = next {
            self.window.after = Some(next);
        }
        Ok(taken)
    }

    /// The state to checkpoint once the page just taken is delivered, while the window goes on:
    /// it resumes at the next page.
    pub fn mark(&self, state: &mut AuditState) -> AuditState {
        // A fast backfill can put more ids in the re-read horizon than the cap allows;
        // dropping the oldest only risks a repeat, never a loss.
        state.recent.truncate(dedup::DEFAULT_CAP);
        state.window = Some(self.window.clone());
        state.clone()
    }

    /// The window is read to its end: the watermark moves to it, and only the ids the next
    /// window re-reads are kept. Returns the state to checkpoint.
    pub fn finish(self, state: &mut AuditState) -> AuditState {
        state.watermark = Some(self.window.end);
        state.window = None;
        state.recent.prune_before(self.window.next_start(self.overlap));
        state.recent.truncate(dedup::DEFAULT_CAP);
        state.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const HOUR: Duration = Duration::from_secs(3_600);
    const MIN5: Duration = Duration::from_secs(300);

    #[test]
    fn a_watermark_in_the_future_is_reported_and_the_lookback_is_read_again() {
        let now = 1_000_000;
        let mut state = AuditState {
            watermark: Some(now + 86_400),
            ..AuditState::default()
        };
        let (pass, future) = WindowPass::begin(&mut state, now, MIN5, HOUR);
        assert_eq!(
            future,
            Some(FutureCheckpoint {
                saved: now + 86_400,
                now
            })
        );
        assert_eq!((pass.window.start, pass.window.end), (now - 3_600, now));
        assert_eq!(state.watermark, None, "the future mark is not saved again");
    }

    #[test]
    fn a_window_saved_in_the_future_is_not_resumed() {
        let now = 1_000_000;
        let mut state = AuditState {
            window: Some(Window {
                start: now + 500,
                end: now + 900,
                after: Some("audit_log-x".into()),
                pages: 3,
            }),
            ..AuditState::default()
        };
        let (pass, future) = WindowPass::begin(&mut state, now, MIN5, HOUR);
        assert!(future.is_some());
        assert_eq!((pass.window.start, pass.window.after), (now - 3_600, None));
    }

    #[test]
    fn a_watermark_within_the_skew_allowance_is_trusted() {
        let now = 1_000_000;
        let mut state = AuditState {
            watermark: Some(now + 30),
            ..AuditState::default()
        };
        let (pass, future) = WindowPass::begin(&mut state, now, MIN5, HOUR);
        assert_eq!(future, None);
        assert_eq!(pass.window.start, now + 30 - 300);
    }

    #[test]
    fn an_unreadable_record_is_remembered_by_its_digest_and_dropped_when_read_again() {
        let now = 1_000_000;
        let broken = json!({"id": 7, "type": "login.succeeded", "effective_at": now - 10});
        let page = ListAuditLogsResponse {
            object: "list".into(),
            data: vec![broken],
            first_id: None,
            last_id: None,
            has_more: false,
        };
        let mut state = AuditState::default();
        for (round, expected) in [(0, 1), (1, 0), (2, 0)] {
            let (mut pass, _) = WindowPass::begin(&mut state, now + round, MIN5, HOUR);
            let taken = pass.take(&mut state, &page, None).expect("a page");
            assert_eq!(taken.records.len(), expected, "round {round}");
            pass.finish(&mut state);
        }
    }
}
