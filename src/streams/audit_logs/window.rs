//! Window math for the audit-log streams (pure): which closed `effective_at` range a cycle
//! reads, and where the next one starts.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One closed window `[start, end]` in Unix seconds, and how far paging inside it got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// `effective_at[gte]`.
    pub start: i64,
    /// `effective_at[lte]`; fixed when the window opens, so new events never shift the pages.
    pub end: i64,
    /// `after` cursor: the `last_id` of the last page whose events were emitted.
    pub after: Option<String>,
    /// Pages read so far in this window.
    pub pages: u64,
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

impl Window {
    /// The window a cycle at `now` reads: from the watermark minus the overlap (or, on a
    /// first start, `now - lookback`) up to `now`.
    pub fn next(watermark: Option<i64>, now: i64, overlap: Duration, lookback: Duration) -> Self {
        let start = match watermark {
            Some(w) => w.saturating_sub(secs(overlap)),
            None => now.saturating_sub(secs(lookback)),
        };
        Self {
            start: start.min(now),
            end: now,
            after: None,
            pages: 0,
        }
    }

    /// The window cut into at most `parts` consecutive closed slices of at least `min_span`
    /// seconds each, oldest first, that together cover it exactly once. The newest slice
    /// always holds the whole re-read horizon `[next_start(overlap), end]`, so only one slice
    /// ever remembers ids for the next window. A window too short to cut is one slice.
    pub fn split(&self, parts: usize, min_span: Duration, overlap: Duration) -> Vec<Window> {
        let horizon = self.next_start(overlap).max(self.start);
        // Cut only below the horizon; the newest slice runs from its cut to `end`.
        let span = horizon - self.start;
        let by_length = usize::try_from(span / secs(min_span).max(1)).unwrap_or(usize::MAX);
        let parts = parts.min(by_length).max(1);
        let step = span / i64::try_from(parts).unwrap_or(i64::MAX);
        let mut out = Vec::with_capacity(parts);
        let mut from = self.start;
        for i in 1..=parts {
            let to = if i == parts {
                self.end
            } else {
                self.start + step * i64::try_from(i).unwrap_or(i64::MAX) - 1
            };
            out.push(Window {
                start: from,
                end: to,
                after: None,
                pages: 0,
            });
            from = to + 1;
        }
        out
    }

    /// Whether an event time lies inside the window.
    #[cfg(test)]
    pub fn contains(&self, t: i64) -> bool {
        (self.start..=self.end).contains(&t)
    }

    /// The earliest event time the next window will re-read; ids at or after it must be
    /// remembered to drop repeats.
    pub fn next_start(&self, overlap: Duration) -> i64 {
        self.end.saturating_sub(secs(overlap))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn a_first_start_reads_the_whole_lookback() {
        let w = Window::next(None, 10_000, 5 * MIN, Duration::from_secs(3_600));
        assert_eq!((w.start, w.end, w.after), (6_400, 10_000, None));
    }

    #[test]
    fn later_windows_start_one_overlap_before_the_watermark() {
        let w = Window::next(Some(9_000), 10_000, 5 * MIN, Duration::from_secs(3_600));
        assert_eq!((w.start, w.end), (8_700, 10_000));
        assert_eq!(w.next_start(5 * MIN), 9_700);
        assert!(w.contains(8_700) && w.contains(10_000) && !w.contains(10_001));
    }

    #[test]
    fn a_split_covers_the_window_exactly_once_and_keeps_the_horizon_in_the_newest_slice() {
        let w = Window::next(None, 1_000_000, 5 * MIN, Duration::from_secs(7 * 86_400));
        let slices = w.split(64, 60 * MIN, 5 * MIN);
        assert_eq!(slices.len(), 64);
        assert_eq!(slices[0].start, w.start);
        assert_eq!(slices.last().map(|s| s.end), Some(w.end));
        for pair in slices.windows(2) {
            assert_eq!(pair[0].end + 1, pair[1].start, "no gap, no overlap");
            assert!(pair[0].start <= pair[0].end);
        }
        let newest = slices.last().expect("a slice");
        assert!(
            newest.start <= w.next_start(5 * MIN),
            "the re-read horizon is one slice's"
        );
    }

    #[test]
    fn a_short_window_is_cut_into_slices_no_shorter_than_the_minimum() {
        let w = Window::next(None, 100_000, 5 * MIN, Duration::from_secs(3 * 3_600));
        let slices = w.split(64, 60 * MIN, 5 * MIN);
        assert_eq!(slices.len(), 2, "2 h 55 min below the horizon: two 1 h slices at most");
        assert_eq!(
            w.split(64, 60 * MIN, 3 * 3_600 * MIN).len(),
            1,
            "all horizon: one slice"
        );
        let one = w.split(1, 60 * MIN, 5 * MIN);
        assert_eq!((one[0].start, one[0].end), (w.start, w.end));
    }

    #[test]
    fn a_watermark_in_the_future_never_makes_an_inverted_window() {
        let w = Window::next(Some(20_000), 10_000, Duration::ZERO, MIN);
        assert!(w.start <= w.end);
    }
}
