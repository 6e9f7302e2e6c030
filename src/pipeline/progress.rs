//! How far a stream's current pass has got in event time, for the operator: the
//! `backfill_remaining_seconds` gauge, and — while the pass is a backfill (it covers more
//! than [`BACKFILL_MIN_SPAN`] of history) — a progress line at most every
//! `log.progress_interval` (events, window covered, percent, rate, ETA) and one line when it
//! catches up. Shared by the clones of a stream's emitter, which counts the events.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::metrics::Metrics;

/// A pass covering more event time than this is a backfill: it gets progress lines.
pub const BACKFILL_MIN_SPAN: Duration = Duration::from_secs(2 * 60 * 60);

/// The order in which a pass reads its span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// From `to` down to `from` (the audit logs page newest-first).
    NewestFirst,
    /// From `from` up to `to` (compliance files, ascending).
    OldestFirst,
}

/// One pass through `[from, to]` (Unix seconds).
#[derive(Debug)]
struct Pass {
    from: i64,
    to: i64,
    order: Order,
    /// The event time read up to (down to, newest-first).
    reached: i64,
    /// Events emitted when the pass began.
    events_before: u64,
    started: Instant,
    backfill: bool,
}

impl Pass {
    fn remaining(&self) -> i64 {
        match self.order {
            Order::NewestFirst => self.reached - self.from,
            Order::OldestFirst => self.to - self.reached,
        }
        .max(0)
    }

    fn fraction(&self) -> f64 {
        let span = (self.to - self.from).max(1) as f64;
        (1.0 - self.remaining() as f64 / span).clamp(0.0, 1.0)
    }

    /// The part of the window read so far, as `from..to`.
    fn covered(&self) -> (i64, i64) {
        match self.order {
            Order::NewestFirst => (self.reached, self.to),
            Order::OldestFirst => (self.from, self.reached),
        }
    }
}

#[derive(Debug)]
struct Inner {
    stream: String,
    metrics: Metrics,
    interval: Duration,
    events: u64,
    pass: Option<Pass>,
    last_line: Option<Instant>,
}

/// One stream's progress; clones share it.
#[derive(Debug, Clone)]
pub struct Progress(Arc<Mutex<Inner>>);

fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| t.to_string())
}

impl Progress {
    /// Progress of `stream`, logged at most every `interval`.
    pub fn new(stream: &str, metrics: Metrics, interval: Duration) -> Self {
        Self(Arc::new(Mutex::new(Inner {
            stream: stream.to_string(),
            metrics,
            interval,
            events: 0,
            pass: None,
            last_line: None,
        })))
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `n` more events emitted.
    pub(super) fn events(&self, n: usize) {
        self.inner().events += n as u64;
    }

    /// A pass through `[from, to]` begins (or, for the same span, resumes).
    pub fn begin(&self, from: i64, to: i64, order: Order) {
        let mut inner = self.inner();
        if inner.pass.as_ref().is_some_and(|p| p.from == from && p.to == to) {
            return;
        }
        let backfill = u64::try_from(to - from).is_ok_and(|span| span > BACKFILL_MIN_SPAN.as_secs());
        let pass = Pass {
            from,
            to,
            order,
            reached: if order == Order::NewestFirst { to } else { from },
            events_before: inner.events,
            started: Instant::now(),
            backfill,
        };
        inner
            .metrics
            .set_backfill_remaining(&inner.stream, if backfill { pass.remaining() } else { 0 });
        if backfill {
            tracing::info!(
                stream = %inner.stream,
                window_start = %rfc3339(from),
                window_end = %rfc3339(to),
                "backfill started"
            );
            inner.last_line = Some(Instant::now());
        }
        inner.pass = Some(pass);
    }

    /// Everything in the pass up to (newest-first: down to) event time `at` is emitted.
    pub fn reached(&self, at: i64) {
        let mut inner = self.inner();
        let Some(pass) = inner.pass.as_mut() else { return };
        pass.reached = match pass.order {
            Order::NewestFirst => at.clamp(pass.from, pass.reached),
            Order::OldestFirst => at.clamp(pass.reached, pass.to),
        };
        if !pass.backfill {
            return;
        }
        let remaining = pass.remaining();
        let stream = inner.stream.clone();
        inner.metrics.set_backfill_remaining(&stream, remaining);
        let due = inner.last_line.is_none_or(|last| last.elapsed() >= inner.interval);
        if due {
            inner.last_line = Some(Instant::now());
            inner.log_progress();
        }
    }

    /// The pass is complete: the stream is caught up.
    pub fn finish(&self) {
        let mut inner = self.inner();
        let Some(pass) = inner.pass.take() else { return };
        inner.metrics.set_backfill_remaining(&inner.stream, 0);
        if pass.backfill {
            let elapsed = pass.started.elapsed();
            tracing::info!(
                stream = %inner.stream,
                events = inner.events - pass.events_before,
                window_start = %rfc3339(pass.from),
                window_end = %rfc3339(pass.to),
                duration_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
                "backfill complete; the stream is caught up"
            );
        }
    }
}

impl Inner {
    fn log_progress(&self) {
        let Some(pass) = &self.pass else { return };
        let events = self.events - pass.events_before;
        let elapsed = pass.started.elapsed().as_secs_f64().max(0.001);
        let fraction = pass.fraction();
        let rate = events as f64 / elapsed;
        // Time left at the pace so far: the event time covered per second of work.
        let eta_s = (fraction > 0.0).then(|| (elapsed * (1.0 - fraction) / fraction).round() as u64);
        let (covered_from, covered_to) = pass.covered();
        tracing::info!(
            stream = %self.stream,
            events,
            covered_start = %rfc3339(covered_from),
            covered_end = %rfc3339(covered_to),
            window_start = %rfc3339(pass.from),
            window_end = %rfc3339(pass.to),
            percent = (fraction * 1000.0).round() / 10.0,
            events_per_s = (rate * 10.0).round() / 10.0,
            eta_s,
            "backfill progress"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remaining(metrics: &Metrics) -> String {
        metrics
            .render()
            .lines()
            .find(|l| l.starts_with("oai_ingest_backfill_remaining_seconds{"))
            .map(str::to_string)
            .unwrap_or_default()
    }

    #[test]
    fn a_backfill_counts_down_its_remaining_history_whichever_way_it_reads() {
        let metrics = Metrics::new();
        metrics.register_stream("s");
        let progress = Progress::new("s", metrics.clone(), Duration::from_secs(30));
        progress.begin(0, 100_000, Order::NewestFirst);
        assert!(remaining(&metrics).ends_with(" 100000"), "{}", remaining(&metrics));
        progress.reached(40_000);
        assert!(remaining(&metrics).ends_with(" 40000"), "{}", remaining(&metrics));
        progress.reached(90_000);
        assert!(
            remaining(&metrics).ends_with(" 40000"),
            "never backwards: {}",
            remaining(&metrics)
        );
        progress.finish();
        assert!(remaining(&metrics).ends_with(" 0"), "{}", remaining(&metrics));

        progress.begin(0, 100_000, Order::OldestFirst);
        progress.reached(75_000);
        assert!(remaining(&metrics).ends_with(" 25000"), "{}", remaining(&metrics));
    }

    #[test]
    fn a_short_pass_is_no_backfill() {
        let metrics = Metrics::new();
        metrics.register_stream("s");
        let progress = Progress::new("s", metrics.clone(), Duration::from_secs(30));
        progress.begin(0, 600, Order::NewestFirst);
        progress.reached(100);
        assert!(remaining(&metrics).ends_with(" 0"), "{}", remaining(&metrics));
    }
}
