//! Prometheus metrics: one registry, named counters and gauges, and the text exposition
//! served at `/metrics`. Every recording method is cheap and never fails. Label values that
//! are not fixed words (stream names, event types, categories, sources, HTTP statuses — some
//! of them chosen by upstream data) are bounded: past [`MAX_LABEL_VALUES`] distinct values of
//! one label, further ones are counted as [`OVERFLOW_LABEL`], so invented event types cannot
//! grow the series without end.
//!
//! - `streams`: per-stream freshness (watermark, lag, backfill remaining) and pauses.
//! - `process`: the process collector (CPU, memory, file descriptors, start time).
//! - `processed`: the processing stage's handles on the events-processed counters.
//! - `text`: the classic Prometheus text format `/metrics` serves.

pub(crate) mod process;
mod processed;
mod streams;
mod text;

pub use processed::ProcessedCounter;
pub use streams::StreamPause;
pub use text::CONTENT_TYPE;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// The most distinct values one label takes before the rest share [`OVERFLOW_LABEL`].
pub const MAX_LABEL_VALUES: usize = 100;

/// Unknown event types warned about per process; past it they are only counted.
pub const MAX_WARNED_TYPES: usize = 1_000;

/// The most distinct stream names: they come from the configuration (one per stream of each
/// `[[orgs]]` block), so the bound only guards against a mistake, not against upstream data.
pub const MAX_STREAM_LABEL_VALUES: usize = 1000;

/// The value a label takes once it has seen [`MAX_LABEL_VALUES`] others.
pub const OVERFLOW_LABEL: &str = "other";

/// The values one label has taken so far.
#[derive(Debug, Default)]
struct LabelValues(Mutex<HashSet<String>>);

impl LabelValues {
    /// `value` if it is known or there is room for it, else [`OVERFLOW_LABEL`].
    fn bounded(&self, value: &str) -> String {
        self.bounded_to(value, MAX_LABEL_VALUES)
    }

    /// [`LabelValues::bounded`] with room for `cap` values.
    fn bounded_to(&self, value: &str, cap: usize) -> String {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if seen.contains(value) {
            return value.to_string();
        }
        if seen.len() < cap {
            seen.insert(value.to_string());
            return value.to_string();
        }
        OVERFLOW_LABEL.to_string()
    }
}

/// Why an event went to the dead-letter file: the bounded label of
/// `oai_ingest_events_dead_lettered_total{reason}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::EnumIter)]
pub enum DeadLetterReason {
    /// A 4xx for the whole batch, narrowed down to this event.
    #[strum(serialize = "rejected_4xx")]
    Rejected4xx,
    /// A permanent 5xx (501; OTLP's 500), narrowed down to this event.
    #[strum(serialize = "rejected_5xx")]
    Rejected5xx,
    /// The receiver named this event in a per-item error (Elasticsearch bulk).
    #[strum(serialize = "item_error")]
    ItemError,
    /// The receiver stopped at this event as invalid (Splunk HEC `invalid-event-number`).
    #[strum(serialize = "invalid_event")]
    InvalidEvent,
    /// Loki's 400 (too old, line too long, …), narrowed down to this event.
    #[strum(serialize = "loki_400")]
    Loki400,
    /// Too large for the receiver even alone (413, or over the protocol's own limit).
    #[strum(serialize = "too_large")]
    TooLarge,
    /// The event could not be put in the protocol's envelope at all.
    #[strum(serialize = "unencodable")]
    Unencodable,
    /// An upstream line that never became an event (malformed JSON Lines).
    #[strum(serialize = "malformed_line")]
    MalformedLine,
}

/// Why delivery is paused: the `reason` of `oai_ingest_sink_paused{reason}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::EnumIter)]
#[strum(serialize_all = "snake_case")]
pub enum SinkPause {
    /// The receiver refuses the credentials.
    Auth,
    /// The receiver cannot take batches as configured (404, 405, 415, wrong index, …).
    Config,
    /// Several batches in a row had every event refused.
    Refused,
    /// The dead-letter file reached `sink.dead_letter_max_bytes`.
    DeadLetterFull,
    /// The dead-letter file cannot be written (permissions, a link planted in its place, a
    /// full disk).
    DeadLetterUnwritable,
}

#[derive(Debug)]
struct Inner {
    registry: Registry,
    events: Family<Labels, Counter>,
    duplicates: Family<Labels, Counter>,
    unknown_types: Family<Labels, Counter>,
    pages: Family<Labels, Counter>,
    cycles: Family<Labels, Counter>,
    last_success: Family<Labels, Gauge>,
    compliance_freshness_lag: Family<Labels, Gauge>,
    api_requests: Family<Labels, Counter>,
    retries: Family<Labels, Counter>,
    sink_batches: Family<Labels, Counter>,
    delivered: Counter,
    dead_lettered: Family<Labels, Counter>,
    dropped_by_receiver: Counter,
    sink_paused: Family<Labels, Gauge>,
    queued_bytes: Gauge,
    checkpoints: Family<Labels, Counter>,
    upstream_rejects: Family<Labels, Counter>,
    build_info: Family<Labels, Gauge>,
    watermark: Family<Labels, Gauge>,
    lag: Family<Labels, Gauge>,
    backfill_remaining: Family<Labels, Gauge>,
    stream_paused: Family<Labels, Gauge>,
    sink_request_duration: Histogram,
    credential_expiry: Family<Labels, Gauge>,
    /// Requests the last inventory run of each type made, by kind.
    inventory_run_requests: Family<Labels, Gauge>,
    /// The streams registered, in order, whose per-stream series exist from the start.
    stream_names: Mutex<Vec<String>>,
    credentials: LabelValues,
    /// Values seen per label, shared by every metric that carries the label.
    streams: LabelValues,
    types: LabelValues,
    sources: LabelValues,
    categories: LabelValues,
    services: LabelValues,
    statuses: LabelValues,
    /// Unknown event types already reported in this process (each is warned about once).
    warned_types: Mutex<HashSet<String>>,
}

/// Shared handle to the daemon's metrics; [`Metrics::for_org`] gives a handle whose stream
/// labels carry the organization (`org-a/audit_logs`).
#[derive(Debug, Clone)]
pub struct Metrics(Arc<Inner>, Option<Arc<str>>);

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Self {
        let mut inner = Inner {
            registry: Registry::default(),
            events: Family::default(),
            duplicates: Family::default(),
            unknown_types: Family::default(),
            pages: Family::default(),
            cycles: Family::default(),
            last_success: Family::default(),
            compliance_freshness_lag: Family::default(),
            api_requests: Family::default(),
            retries: Family::default(),
            sink_batches: Family::default(),
            delivered: Counter::default(),
            dead_lettered: Family::default(),
            dropped_by_receiver: Counter::default(),
            sink_paused: Family::default(),
            queued_bytes: Gauge::default(),
            checkpoints: Family::default(),
            upstream_rejects: Family::default(),
            build_info: Family::default(),
            watermark: Family::default(),
            lag: Family::default(),
            backfill_remaining: Family::default(),
            stream_paused: Family::default(),
            // 5 ms to ~41 s: a fast local receiver up to the default 30 s sink timeout.
            sink_request_duration: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            credential_expiry: Family::default(),
            inventory_run_requests: Family::default(),
            stream_names: Mutex::default(),
            credentials: LabelValues::default(),
            streams: LabelValues::default(),
            types: LabelValues::default(),
            sources: LabelValues::default(),
            categories: LabelValues::default(),
            services: LabelValues::default(),
            statuses: LabelValues::default(),
            warned_types: Mutex::default(),
        };
        let r = &mut inner.registry;
        r.register(
            "oai_ingest_build_info",
            "Always 1; the version label says which build is running",
            inner.build_info.clone(),
        );
        inner
            .build_info
            .get_or_create(&vec![("version", env!("CARGO_PKG_VERSION").to_string())])
            .set(1);
        r.register(
            "oai_ingest_stream_watermark_timestamp_seconds",
            "Unix time up to which each stream's data is complete (0 until the first complete pass)",
            inner.watermark.clone(),
        );
        r.register(
            "oai_ingest_stream_lag_seconds",
            "Seconds between now and each stream's watermark (0 until it has one)",
            inner.lag.clone(),
        );
        r.register(
            "oai_ingest_backfill_remaining_seconds",
            "Seconds of event time each stream's backfill still has to read (0 when caught up)",
            inner.backfill_remaining.clone(),
        );
        r.register(
            "oai_ingest_stream_paused",
            "1 while the upstream refuses this stream for this reason (an operator must act), else 0",
            inner.stream_paused.clone(),
        );
        r.register(
            "oai_ingest_sink_request_duration_seconds",
            "Time from sending a batch to the ingestion service to reading its whole answer",
            inner.sink_request_duration.clone(),
        );
        r.register(
            "oai_ingest_credential_expiry_timestamp_seconds",
            "Unix time at which each admin key with an expiry date expires, from the inventory",
            inner.credential_expiry.clone(),
        );
        r.register(
            "oai_ingest_inventory_run_requests",
            "Admin API pages the last inventory run read, by run type (full, incremental) and kind",
            inner.inventory_run_requests.clone(),
        );
        r.register_collector(Box::new(process::ProcessCollector));
        r.register(
            "oai_ingest_events",
            "Events processed, by stream, source and category",
            inner.events.clone(),
        );
        r.register(
            "oai_ingest_duplicates_dropped",
            "Upstream repeats dropped by id",
            inner.duplicates.clone(),
        );
        r.register(
            "oai_ingest_unknown_event_types",
            "Events whose type is not in the mapping table",
            inner.unknown_types.clone(),
        );
        r.register(
            "oai_ingest_pages",
            "Upstream pages or files fetched",
            inner.pages.clone(),
        );
        r.register("oai_ingest_cycles", "Stream cycles, by result", inner.cycles.clone());
        r.register(
            "oai_ingest_last_success_timestamp_seconds",
            "Unix time of each stream's last successful cycle",
            inner.last_success.clone(),
        );
        r.register(
            "oai_ingest_compliance_freshness_lag_seconds",
            "How far the compliance list cursor is behind the platform's newest event, by event type (its max_event_time)",
            inner.compliance_freshness_lag.clone(),
        );
        r.register(
            "oai_ingest_api_requests",
            "Upstream API responses, by service and status",
            inner.api_requests.clone(),
        );
        r.register(
            "oai_ingest_retries",
            "Retries scheduled, by component",
            inner.retries.clone(),
        );
        r.register(
            "oai_ingest_sink_batches",
            "Batches sent to the ingestion service, by result",
            inner.sink_batches.clone(),
        );
        r.register(
            "oai_ingest_events_delivered",
            "Events acknowledged by the ingestion service",
            inner.delivered.clone(),
        );
        r.register(
            "oai_ingest_events_dead_lettered",
            "Events written to the dead-letter file, by reason",
            inner.dead_lettered.clone(),
        );
        r.register(
            "oai_ingest_events_dropped_by_receiver",
            "Events the receiver took but reported dropping without naming them (OTLP partial success)",
            inner.dropped_by_receiver.clone(),
        );
        r.register(
            "oai_ingest_sink_paused",
            "1 while delivery is paused for this reason (an operator must act), else 0",
            inner.sink_paused.clone(),
        );
        // Every series is there from the start, at 0.
        for reason in <DeadLetterReason as strum::IntoEnumIterator>::iter() {
            let label: &'static str = reason.into();
            drop(inner.dead_lettered.get_or_create(&vec![("reason", label.to_string())]));
        }
        for reason in <SinkPause as strum::IntoEnumIterator>::iter() {
            let label: &'static str = reason.into();
            drop(inner.sink_paused.get_or_create(&vec![("reason", label.to_string())]));
        }
        r.register(
            "oai_ingest_queued_bytes",
            "Encoded bytes waiting for the sink",
            inner.queued_bytes.clone(),
        );
        r.register(
            "oai_ingest_checkpoints_saved",
            "Checkpoints written, by stream",
            inner.checkpoints.clone(),
        );
        r.register(
            "oai_ingest_upstream_rejects",
            "Upstream data set aside instead of shipped (malformed lines dead-lettered, corrupt files quarantined, files missing past their grace period), by stream and kind",
            inner.upstream_rejects.clone(),
        );
        Self(Arc::new(inner), None)
    }

    /// The same metrics, with every stream label prefixed by `org_id/`.
    pub fn for_org(&self, org_id: Option<&str>) -> Self {
        Self(Arc::clone(&self.0), org_id.map(Arc::from))
    }

    /// The bounded `stream` label, with the organization when this handle has one.
    fn stream(&self, stream: &str) -> String {
        match &self.1 {
            Some(org) => self
                .0
                .streams
                .bounded_to(&format!("{org}/{stream}"), MAX_STREAM_LABEL_VALUES),
            None => self.0.streams.bounded_to(stream, MAX_STREAM_LABEL_VALUES),
        }
    }

    /// The counter of events processed for these labels (bounded like every label), to keep
    /// and count on: [`ProcessedCounter`].
    fn event_counter(&self, stream: &str, source: &str, category: &str) -> Counter {
        self.0
            .events
            .get_or_create(&vec![
                ("stream", self.stream(stream)),
                ("source", self.0.sources.bounded(source)),
                ("category", self.0.categories.bounded(category)),
            ])
            .clone()
    }

    pub fn duplicates_dropped(&self, stream: &str, n: u64) {
        self.0
            .duplicates
            .get_or_create(&vec![("stream", self.stream(stream))])
            .inc_by(n);
    }

    /// Counts one event of a type no mapping table knows; `true` the first time this
    /// process sees the type (the caller warns then), for at most [`MAX_WARNED_TYPES`] types.
    pub fn unknown_type(&self, stream: &str, event_type: &str) -> bool {
        self.0
            .unknown_types
            .get_or_create(&vec![
                ("stream", self.stream(stream)),
                ("type", self.0.types.bounded(event_type)),
            ])
            .inc();
        let mut warned = self.0.warned_types.lock().unwrap_or_else(|e| e.into_inner());
        warned.len() < MAX_WARNED_TYPES && warned.insert(event_type.to_string())
    }

    pub fn page_fetched(&self, stream: &str) {
        self.0.pages.get_or_create(&vec![("stream", self.stream(stream))]).inc();
    }

    pub fn cycle(&self, stream: &str, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.0
            .cycles
            .get_or_create(&vec![("stream", self.stream(stream)), ("result", result.to_string())])
            .inc();
        if ok {
            self.0
                .last_success
                .get_or_create(&vec![("stream", self.stream(stream))])
                .set(chrono::Utc::now().timestamp());
        }
    }

    /// How far `event_type`'s compliance stream is behind the platform's newest event.
    pub fn compliance_freshness_lag(&self, event_type: &str, seconds: i64) {
        self.0
            .compliance_freshness_lag
            .get_or_create(&vec![("event_type", self.0.types.bounded(event_type))])
            .set(seconds);
    }

    pub fn api_response(&self, service: &str, status: &str) {
        self.0
            .api_requests
            .get_or_create(&vec![
                ("service", self.0.services.bounded(service)),
                ("status", self.0.statuses.bounded(status)),
                // Empty (the same as absent to PromQL) for the single organization of `[openai]`.
                ("org_id", self.org_label()),
            ])
            .inc();
    }

    /// The organization this handle counts for: its `[[orgs]]` id (from the configuration,
    /// so bounded by it), or empty.
    fn org_label(&self) -> String {
        self.1.as_deref().unwrap_or_default().to_string()
    }

    pub fn retry(&self, component: &str) {
        self.0
            .retries
            .get_or_create(&vec![("component", component.to_string())])
            .inc();
    }

    pub fn sink_batch(&self, result: &str) {
        self.0
            .sink_batches
            .get_or_create(&vec![("result", result.to_string())])
            .inc();
    }

    pub fn delivered(&self, n: u64) {
        self.0.delivered.inc_by(n);
    }

    pub fn dead_lettered(&self, reason: DeadLetterReason) {
        let label: &'static str = reason.into();
        self.0
            .dead_lettered
            .get_or_create(&vec![("reason", label.to_string())])
            .inc();
    }

    pub fn dropped_by_receiver(&self, n: u64) {
        self.0.dropped_by_receiver.inc_by(n);
    }

    /// Marks delivery paused (or no longer paused) for `reason`.
    pub fn set_sink_paused(&self, reason: SinkPause, paused: bool) {
        let label: &'static str = reason.into();
        self.0
            .sink_paused
            .get_or_create(&vec![("reason", label.to_string())])
            .set(i64::from(paused));
    }

    /// Why delivery is paused right now, if it is: what `/readyz` reports.
    pub fn sink_paused(&self) -> Option<SinkPause> {
        <SinkPause as strum::IntoEnumIterator>::iter().find(|reason| {
            let label: &'static str = (*reason).into();
            self.0
                .sink_paused
                .get_or_create(&vec![("reason", label.to_string())])
                .get()
                == 1
        })
    }

    pub fn set_queued_bytes(&self, n: usize) {
        self.0.queued_bytes.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub fn checkpoint_saved(&self, stream: &str) {
        self.0
            .checkpoints
            .get_or_create(&vec![("stream", self.stream(stream))])
            .inc();
    }

    /// Upstream data set aside: `kind` is `malformed_line`, `quarantined_file` or `missing_file`.
    pub fn upstream_reject(&self, stream: &str, kind: &'static str) {
        self.0
            .upstream_rejects
            .get_or_create(&vec![("stream", self.stream(stream)), ("kind", kind.to_string())])
            .inc();
    }

    /// One sink request's duration, from sending to the whole answer.
    pub fn sink_request(&self, took: std::time::Duration) {
        self.0.sink_request_duration.observe(took.as_secs_f64());
    }

    /// The admin keys with an expiry date, by id, and when each expires (Unix seconds):
    /// replaces what was known before, so a deleted key's series goes away.
    pub fn set_credential_expiries(&self, expiries: &[(String, i64)]) {
        self.0.credential_expiry.clear();
        for (credential, at) in expiries {
            self.0
                .credential_expiry
                .get_or_create(&vec![("credential", self.0.credentials.bounded(credential))])
                .set(*at);
        }
    }

    /// The pages the inventory run of type `run` (`full`, `incremental`) that just ended read
    /// of `kind`.
    pub fn set_inventory_run_requests(&self, run: &'static str, kind: &'static str, pages: u64) {
        self.0
            .inventory_run_requests
            .get_or_create(&vec![("run", run.to_string()), ("kind", kind.to_string())])
            .set(i64::try_from(pages).unwrap_or(i64::MAX));
    }

    /// The Prometheus text exposition (classic format, [`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        self.refresh_lag(chrono::Utc::now().timestamp());
        let mut out = String::new();
        if encode(&mut out, &self.0.registry).is_err() {
            out.clear();
        }
        text::to_prometheus_text(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invented_event_types_stop_making_new_series_past_the_cap() {
        let metrics = Metrics::new();
        for n in 0..20_250 {
            metrics.unknown_type("audit_logs", &format!("invented.type_{n}"));
        }
        let text = metrics.render();
        let series: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("oai_ingest_unknown_event_types_total{"))
            .collect();
        assert_eq!(series.len(), MAX_LABEL_VALUES + 1, "{} series", series.len());
        let overflow = series
            .iter()
            .find(|l| l.contains("type=\"other\""))
            .expect("an `other` series");
        assert!(
            overflow.ends_with(&format!(" {}", 20_250 - MAX_LABEL_VALUES)),
            "{overflow}"
        );
    }

    #[test]
    fn statuses_from_upstream_are_bounded_too() {
        let metrics = Metrics::new();
        for status in 100..1000u16 {
            metrics.api_response("openai", &status.to_string());
        }
        let series = metrics
            .render()
            .lines()
            .filter(|l| l.starts_with("oai_ingest_api_requests_total{"))
            .count();
        assert_eq!(series, MAX_LABEL_VALUES + 1);
    }
}
