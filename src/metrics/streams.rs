//! Per-stream freshness and pauses: how far each stream's data is complete
//! (`stream_watermark_timestamp_seconds`), how far behind now that is (`stream_lag_seconds`,
//! computed at each scrape), how much history a backfill still has to read
//! (`backfill_remaining_seconds`), and whether the upstream refuses the stream
//! (`stream_paused{stream,reason}`). Every series of a stream exists, at 0, from the moment
//! the stream is registered.

use super::Metrics;

/// Why a stream is paused: the `reason` of `oai_ingest_stream_paused{stream,reason}`. Each
/// needs an operator; a transient outage is not a pause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::EnumIter)]
#[strum(serialize_all = "snake_case")]
pub enum StreamPause {
    /// The upstream refuses the key (401): invalid, expired or revoked.
    Unauthorized,
    /// The key lacks a permission (403).
    Forbidden,
    /// The upstream refuses this feed for this account (plan, feature off); re-asked hourly.
    Refused,
    /// The upstream answers in a way the stream cannot make progress with (a stuck cursor).
    Upstream,
}

fn label(reason: StreamPause) -> String {
    let text: &'static str = reason.into();
    text.to_string()
}

impl Metrics {
    /// Creates every per-stream series of `stream` at 0 (once; later calls do nothing).
    pub fn register_stream(&self, stream: &str) {
        let stream = self.stream(stream);
        {
            let mut known = self.0.stream_names.lock().unwrap_or_else(|e| e.into_inner());
            if known.contains(&stream) {
                return;
            }
            known.push(stream.clone());
        }
        let one = vec![("stream", stream.clone())];
        drop(self.0.watermark.get_or_create(&one));
        drop(self.0.lag.get_or_create(&one));
        drop(self.0.backfill_remaining.get_or_create(&one));
        for reason in <StreamPause as strum::IntoEnumIterator>::iter() {
            drop(
                self.0
                    .stream_paused
                    .get_or_create(&vec![("stream", stream.clone()), ("reason", label(reason))]),
            );
        }
    }

    /// The stream's data is complete up to `at` (Unix seconds).
    pub fn set_watermark(&self, stream: &str, at: i64) {
        self.0
            .watermark
            .get_or_create(&vec![("stream", self.stream(stream))])
            .set(at);
    }

    /// Seconds of history the stream's backfill still has to read (0 when caught up).
    pub fn set_backfill_remaining(&self, stream: &str, seconds: i64) {
        self.0
            .backfill_remaining
            .get_or_create(&vec![("stream", self.stream(stream))])
            .set(seconds.max(0));
    }

    /// Marks `stream` paused for `reason`, or — with `None` — running.
    pub fn set_stream_paused(&self, stream: &str, reason: Option<StreamPause>) {
        let stream = self.stream(stream);
        for each in <StreamPause as strum::IntoEnumIterator>::iter() {
            self.0
                .stream_paused
                .get_or_create(&vec![("stream", stream.clone()), ("reason", label(each))])
                .set(i64::from(reason == Some(each)));
        }
    }

    /// Every registered stream and why it is paused, if it is: what `/readyz` reports.
    pub fn stream_pauses(&self) -> Vec<(String, Option<StreamPause>)> {
        let names = self.0.stream_names.lock().unwrap_or_else(|e| e.into_inner()).clone();
        names
            .into_iter()
            .map(|stream| {
                let paused = <StreamPause as strum::IntoEnumIterator>::iter().find(|reason| {
                    self.0
                        .stream_paused
                        .get_or_create(&vec![("stream", stream.clone()), ("reason", label(*reason))])
                        .get()
                        == 1
                });
                (stream, paused)
            })
            .collect()
    }

    /// Sets each stream's lag from its watermark, as of `now` (at each scrape).
    pub(super) fn refresh_lag(&self, now: i64) {
        let names = self.0.stream_names.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for stream in names {
            let one = vec![("stream", stream)];
            let watermark = self.0.watermark.get_or_create(&one).get();
            let lag = if watermark > 0 { (now - watermark).max(0) } else { 0 };
            self.0.lag.get_or_create(&one).set(lag);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registered_stream_has_every_series_at_zero_and_its_lag_follows_the_watermark() {
        let metrics = Metrics::new();
        metrics.register_stream("audit_logs");
        let text = metrics.render();
        for series in [
            "oai_ingest_stream_watermark_timestamp_seconds{stream=\"audit_logs\"} 0",
            "oai_ingest_stream_lag_seconds{stream=\"audit_logs\"} 0",
            "oai_ingest_backfill_remaining_seconds{stream=\"audit_logs\"} 0",
            "oai_ingest_stream_paused{stream=\"audit_logs\",reason=\"unauthorized\"} 0",
            "oai_ingest_stream_paused{stream=\"audit_logs\",reason=\"refused\"} 0",
        ] {
            assert!(text.contains(series), "{series} in:\n{text}");
        }
        metrics.set_watermark("audit_logs", chrono::Utc::now().timestamp() - 600);
        let lag_line = metrics
            .render()
            .lines()
            .find(|l| l.starts_with("oai_ingest_stream_lag_seconds{"))
            .map(str::to_string)
            .expect("a lag line");
        let lag: i64 = lag_line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .expect("a number");
        assert!((600..=660).contains(&lag), "{lag_line}");
    }

    #[test]
    fn a_pause_has_one_reason_at_a_time_and_is_reported_per_stream() {
        let metrics = Metrics::new();
        metrics.register_stream("a");
        metrics.register_stream("b");
        metrics.set_stream_paused("a", Some(StreamPause::Unauthorized));
        metrics.set_stream_paused("a", Some(StreamPause::Forbidden));
        assert_eq!(
            metrics.stream_pauses(),
            vec![("a".to_string(), Some(StreamPause::Forbidden)), ("b".to_string(), None)]
        );
        metrics.set_stream_paused("a", None);
        assert_eq!(metrics.stream_pauses()[0].1, None);
    }
}
