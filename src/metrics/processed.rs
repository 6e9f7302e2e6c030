//! `oai_ingest_events_total{stream,source,category}` (events processed) counted from the processing
//! stage, which sees every event: a cache of the counters' handles, so an event costs one
//! lookup instead of building the label set's strings and taking the bounding sets' locks
//! and the family's lock (2,600 instructions per event in callgrind, benches/README.md).

use std::collections::HashMap;

use foldhash::fast::RandomState;
use prometheus_client::metrics::counter::Counter;

use super::Metrics;

/// How many (stream, source, category) handles are kept; past it an event's counter is
/// looked up in the family each time, as before. Label values are bounded in the family
/// anyway; this only bounds the cache.
const MAX_HANDLES: usize = 1024;

/// The processing stage's counter handles by stream and source (a few), then category.
#[derive(Default)]
pub struct ProcessedCounter {
    by_stream: Vec<(String, &'static str, HashMap<String, Counter, RandomState>)>,
    handles: usize,
}

impl ProcessedCounter {
    /// Counts one processed event in its `oai_ingest_events_total` series.
    pub fn inc(&mut self, metrics: &Metrics, stream: &str, source: &'static str, category: &str) {
        let at = match self
            .by_stream
            .iter()
            .position(|(s, src, _)| *src == source && s == stream)
        {
            Some(at) => at,
            None => {
                self.by_stream.push((stream.to_string(), source, HashMap::default()));
                self.by_stream.len() - 1
            }
        };
        let categories = &mut self.by_stream[at].2;
        if let Some(counter) = categories.get(category) {
            counter.inc();
            return;
        }
        let counter = metrics.event_counter(stream, source, category);
        counter.inc();
        if self.handles < MAX_HANDLES {
            self.handles += 1;
            categories.insert(category.to_string(), counter);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_land_in_the_same_series_as_counting_through_metrics() {
        let metrics = Metrics::new();
        let mut counter = ProcessedCounter::default();
        for _ in 0..3 {
            counter.inc(&metrics, "audit_logs", "openai.audit_log", "authentication");
        }
        counter.inc(&metrics, "audit_logs", "openai.audit_log", "credential");
        counter.inc(&metrics, "audit_logs_tenant", "openai.audit_log", "authentication");
        metrics
            .event_counter("audit_logs", "openai.audit_log", "authentication")
            .inc();
        let text = metrics.render();
        let series = |labels: &str| {
            text.lines()
                .find(|l| l.starts_with("oai_ingest_events_total{") && l.contains(labels))
                .and_then(|l| l.rsplit(' ').next())
                .map(str::to_string)
        };
        assert_eq!(
            series(r#"stream="audit_logs",source="openai.audit_log",category="authentication""#).as_deref(),
            Some("4")
        );
        assert_eq!(
            series(r#"stream="audit_logs",source="openai.audit_log",category="credential""#).as_deref(),
            Some("1")
        );
        assert_eq!(
            series(r#"stream="audit_logs_tenant",source="openai.audit_log",category="authentication""#).as_deref(),
            Some("1")
        );
    }
}
