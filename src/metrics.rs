//! Prometheus metrics: one registry, named counters and gauges, and the text exposition
//! served at `/metrics`. Every recording method is cheap and never fails.

use std::sync::Arc;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

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
    dead_lettered: Counter,
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
            "Events written to the dead-letter file",
            inner.dead_lettered.clone(),
        );
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

    pub fn dead_lettered(&self, n: u64) {
        self.0.dead_lettered.inc_by(n);
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
