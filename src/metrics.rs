//! Prometheus metrics: one registry, named counters and gauges, and the text exposition
//! served at `/metrics`. Every recording method is cheap and never fails.

use std::sync::Arc;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

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
}

#[derive(Debug, Default)]
struct Inner {
    registry: Registry,
    events: Family<Labels, Counter>,
    duplicates: Family<Labels, Counter>,
    unknown_types: Family<Labels, Counter>,
    pages: Family<Labels, Counter>,
    cycles: Family<Labels, Counter>,
    last_success: Family<Labels, Gauge>,
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
}

/// Shared handle to the daemon's metrics.
#[derive(Debug, Clone)]
pub struct Metrics(Arc<Inner>);

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Self {
        let mut inner = Inner::default();
        let r = &mut inner.registry;
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
            "Upstream data set aside instead of shipped (malformed lines dead-lettered, corrupt files quarantined), by stream and kind",
            inner.upstream_rejects.clone(),
        );
        Self(Arc::new(inner))
    }

    pub fn event_processed(&self, stream: &str, source: &str, category: &str) {
        self.0
            .events
            .get_or_create(&vec![
                ("stream", stream.to_string()),
                ("source", source.to_string()),
                ("category", category.to_string()),
            ])
            .inc();
    }

    pub fn duplicates_dropped(&self, stream: &str, n: u64) {
        self.0
            .duplicates
            .get_or_create(&vec![("stream", stream.to_string())])
            .inc_by(n);
    }

    pub fn unknown_type(&self, stream: &str, event_type: &str) {
        self.0
            .unknown_types
            .get_or_create(&vec![("stream", stream.to_string()), ("type", event_type.to_string())])
            .inc();
    }

    pub fn page_fetched(&self, stream: &str) {
        self.0.pages.get_or_create(&vec![("stream", stream.to_string())]).inc();
    }

    pub fn cycle(&self, stream: &str, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.0
            .cycles
            .get_or_create(&vec![("stream", stream.to_string()), ("result", result.to_string())])
            .inc();
        if ok {
            self.0
                .last_success
                .get_or_create(&vec![("stream", stream.to_string())])
                .set(chrono::Utc::now().timestamp());
        }
    }

    pub fn api_response(&self, service: &str, status: &str) {
        self.0
            .api_requests
            .get_or_create(&vec![("service", service.to_string()), ("status", status.to_string())])
            .inc();
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
            .get_or_create(&vec![("stream", stream.to_string())])
            .inc();
    }

    /// Upstream data set aside: `kind` is `malformed_line` or `quarantined_file`.
    pub fn upstream_reject(&self, stream: &str, kind: &'static str) {
        self.0
            .upstream_rejects
            .get_or_create(&vec![("stream", stream.to_string()), ("kind", kind.to_string())])
            .inc();
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.0.registry).is_err() {
            out.clear();
        }
        out
    }
}
