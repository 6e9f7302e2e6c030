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
    fn a_watermark_in_the_future_never_makes_an_inverted_window() {
        let w = Window::next(Some(20_000), 10_000, Duration::ZERO, MIN);
        assert!(w.start <= w.end);
    }
}
