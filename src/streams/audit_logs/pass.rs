//! One pass through an audit-log window, without I/O: which window a cycle reads (refusing
//! a saved position from the future), what each page contributes (repeats from the overlap
//! dropped by id, cyclic paging refused), and the state to checkpoint after each page and at
//! the end. The stream drives it with the API and the emitter; the property tests drive it
//! with an in-memory upstream.

use std::time::Duration;

use super::{AuditState, Window};
use crate::dedup;
use crate::normalize;
use crate::openai::wire::{Integer, ListAuditLogsResponse, Members, Record};
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
    /// The records to ship, in page order, each with its place on the page and its members
    /// read.
    pub records: Vec<(usize, &'p Record, Members<'p>)>,
    /// The oldest `effective_at` on the page, repeats included: how far down the window the
    /// page reaches (pages are newest first).
    pub oldest: Option<i64>,
    /// Records dropped as repeats already delivered.
    pub duplicates: u64,
    /// Whether the window has more pages.
    pub more: bool,
}

/// One pass through a window, or through one slice of a window split for a parallel backfill.
#[derive(Debug)]
pub struct WindowPass {
    /// The window (or slice) read, with the cursor of the last page taken.
    pub window: Window,
    /// Ids of events at or after this time are remembered: the next window re-reads them.
    keep_from: i64,
    guard: CursorGuard,
    overlap: Duration,
    /// A slice of `state.window`, saved in `state.slices`.
    slice: bool,
    /// Ids taken but not yet remembered: they join `state.recent` with the checkpoint that
    /// follows their delivery, never before — a slice paging beside this one must not save
    /// them while their page could still be lost.
    taken: Vec<(String, i64)>,
}

/// How a backfill window is cut for parallel paging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slicing {
    /// A window spanning more than this is split; shorter ones are paged as one.
    pub min_window: Duration,
    /// At most this many slices.
    pub parts: usize,
    /// No slice shorter than this.
    pub min_slice: Duration,
}

/// The id a record is remembered by, and its time: its own id and `effective_at`, or — for a
/// record that cannot be read — the digest its `other` event is named by (see
/// `normalize::unparseable`) and `fallback_at`.
pub fn dedup_key(record: &Record, members: &Members<'_>, fallback_at: i64) -> (String, i64) {
    let text = |field| members.str(field).ok().flatten().filter(|s| !s.is_empty());
    let at = effective_at(members);
    match (text("id"), text("type"), at) {
        (Some(id), Some(_), Some(at)) => (id.into_owned(), at),
        _ => (normalize::unparseable_key(record), at.unwrap_or(fallback_at)),
    }
}

/// A record's `effective_at`, when it is an integer within `i64`.
fn effective_at(members: &Members<'_>) -> Option<i64> {
    match members.integer("effective_at") {
        Ok(Some(Integer::Fits(at))) => Some(at),
        _ => None,
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
            slice: false,
            taken: Vec::new(),
        };
        (pass, future)
    }

    /// The slices to page in parallel instead of this whole-window pass: the saved ones when
    /// a split window is resumed, or — for a fresh window longer than `slicing.min_window` —
    /// a new split, saved in `state.slices`. `None`: page the window as one.
    pub fn split(&self, state: &mut AuditState, slicing: Slicing) -> Option<Vec<WindowPass>> {
        let fresh = self.window.after.is_none() && self.window.pages == 0;
        let long = self.window.end - self.window.start > secs(slicing.min_window);
        if state.slices.is_empty() {
            if !(fresh && long && slicing.parts > 1) {
                return None;
            }
            let slices = self.window.split(slicing.parts, slicing.min_slice, self.overlap);
            if slices.len() < 2 {
                return None;
            }
            state.window = Some(self.window.clone());
            state.slices = slices;
        }
        let passes = state
            .slices
            .iter()
            .map(|slice| Self {
                keep_from: self.keep_from,
                guard: CursorGuard::new(slice.after.as_deref()),
                window: slice.clone(),
                overlap: self.overlap,
                slice: true,
                taken: Vec::new(),
            })
            .collect();
        Some(passes)
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
        let read: Vec<(&Record, Members<'_>)> = page.data.iter().map(|r| (r, r.members())).collect();
        let ids = read.iter().filter_map(|(_, m)| m.str("id").ok().flatten());
        let next = self
            .guard
            .next(page.has_more, page.last_id.clone(), page.data.len(), ids)
            .map_err(|why| with_request_id(why, request_id))?;
        let mut taken = Taken {
            records: Vec::with_capacity(read.len()),
            oldest: read.iter().filter_map(|(_, m)| effective_at(m)).min(),
            duplicates: 0,
            more: next.is_some(),
        };
        for (place, (record, members)) in read.into_iter().enumerate() {
            let (key, at) = dedup_key(record, &members, self.window.end);
            if state.recent.contains(&key) || self.taken.iter().any(|(k, _)| *k == key) {
                taken.duplicates += 1;
                continue;
            }
            if at >= self.keep_from {
                self.taken.push((key, at));
            }
            taken.records.push((place, record, members));
        }
        self.window.pages += 1;
        if let Some(next) = next {
            self.window.after = Some(next);
        }
        Ok(taken)
    }

    /// Moves the ids of the pages taken into `state.recent`: call once they are emitted.
    fn remember(&mut self, state: &mut AuditState) {
        for (key, at) in self.taken.drain(..) {
            state.recent.insert(&key, at);
        }
    }

    /// The state to checkpoint once the page just taken is delivered, while the window (or
    /// slice) goes on: it resumes at the next page.
    pub fn mark(&mut self, state: &mut AuditState) -> AuditState {
        self.remember(state);
        // A fast backfill can put more ids in the re-read horizon than the cap allows;
        // dropping the oldest only risks a repeat, never a loss.
        state.recent.truncate(dedup::DEFAULT_CAP);
        if self.slice {
            if let Some(saved) = state.slices.iter_mut().find(|s| s.start == self.window.start) {
                *saved = self.window.clone();
            }
        } else {
            state.window = Some(self.window.clone());
        }
        state.clone()
    }

    /// The window (or slice) is read to its end, its last page delivered. A slice leaves
    /// `state.slices`; once none is left — or for a whole-window pass — the watermark moves to
    /// the window's end and only the ids the next window re-reads are kept. Returns the state
    /// to checkpoint and whether the whole window is now complete.
    pub fn finish(mut self, state: &mut AuditState) -> (AuditState, bool) {
        self.remember(state);
        let end = if self.slice {
            state.slices.retain(|s| s.start != self.window.start);
            match (&state.window, state.slices.is_empty()) {
                (Some(whole), true) => Some(whole.clone()),
                _ => None,
            }
        } else {
            Some(self.window.clone())
        };
        let Some(whole) = end else {
            state.recent.truncate(dedup::DEFAULT_CAP);
            return (state.clone(), false);
        };
        state.watermark = Some(whole.end);
        state.window = None;
        state.recent.prune_before(whole.next_start(self.overlap));
        state.recent.truncate(dedup::DEFAULT_CAP);
        (state.clone(), true)
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
    fn unreadable_records_nested_past_the_parsers_limit_are_told_apart() {
        let now = 1_000_000;
        let deep = |n: u32| format!("{}{n}{}", "[".repeat(200), "]".repeat(200));
        let page = format!(
            r#"{{"object": "list", "has_more": false, "data": [{{"type": "x", "effective_at": {}, "a": {}}}, {{"type": "x", "effective_at": {}, "a": {}}}]}}"#,
            now - 10,
            deep(1),
            now - 10,
            deep(2)
        );
        let page: ListAuditLogsResponse = serde_json::from_str(&page).expect("the page reads");
        let mut state = AuditState::default();
        let (mut pass, _) = WindowPass::begin(&mut state, now, MIN5, HOUR);
        let taken = pass.take(&mut state, &page, None).expect("a page");
        assert_eq!(taken.records.len(), 2, "neither is taken for a repeat of the other");
        assert_eq!(taken.oldest, Some(now - 10));
    }

    #[test]
    fn an_unreadable_record_is_remembered_by_its_digest_and_dropped_when_read_again() {
        let now = 1_000_000;
        let broken = json!({"id": 7, "type": "login.succeeded", "effective_at": now - 10});
        let page = ListAuditLogsResponse {
            object: "list".into(),
            data: vec![broken.into()],
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
