//! Delivery pauses — the states only an operator can end (credentials, configuration, a
//! receiver refusing everything, a full dead-letter file): the `oai_ingest_sink_paused`
//! gauge `/readyz` reads, and an ERROR at most once per interval per reason, loud enough to
//! be seen and not so loud it buries everything else.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::metrics::{Metrics, SinkPause};

/// Which pauses are on, and when each last raised its alarm.
#[derive(Debug)]
pub struct Pauses {
    metrics: Metrics,
    /// The least time between two alarms for the same reason.
    interval: Duration,
    /// Active pauses and their last alarm.
    active: HashMap<SinkPause, Instant>,
}

impl Pauses {
    pub fn new(metrics: Metrics, interval: Duration) -> Self {
        Self {
            metrics,
            interval,
            active: HashMap::new(),
        }
    }

    /// Delivery is paused for `reason`; `true` when the alarm should be raised now (the
    /// first time, then once per interval).
    pub fn alarm_due(&mut self, reason: SinkPause) -> bool {
        let now = Instant::now();
        match self.active.get_mut(&reason) {
            Some(last) if now.duration_since(*last) < self.interval => false,
            Some(last) => {
                *last = now;
                true
            }
            None => {
                self.active.insert(reason, now);
                self.metrics.set_sink_paused(reason, true);
                true
            }
        }
    }

    /// The cause of `reason` is gone.
    pub fn clear(&mut self, reason: SinkPause) {
        if self.active.remove(&reason).is_some() {
            self.metrics.set_sink_paused(reason, false);
            let label: &'static str = reason.into();
            tracing::info!(reason = label, "delivery resumed");
        }
    }

    /// The pause between attempts while paused.
    pub fn interval(&self) -> Duration {
        self.interval
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_alarm_sounds_once_per_interval_and_the_gauge_follows_the_pause() {
        let metrics = Metrics::new();
        let mut pauses = Pauses::new(metrics.clone(), Duration::from_secs(60));
        assert_eq!(metrics.sink_paused(), None);
        assert!(pauses.alarm_due(SinkPause::Auth));
        assert_eq!(metrics.sink_paused(), Some(SinkPause::Auth));
        assert!(!pauses.alarm_due(SinkPause::Auth), "not again within the interval");
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(pauses.alarm_due(SinkPause::Auth));
        pauses.clear(SinkPause::Auth);
        assert_eq!(metrics.sink_paused(), None);
        assert!(pauses.alarm_due(SinkPause::Auth), "a new pause alarms at once");
    }
}
