//! The exposition served at `/metrics`: the classic Prometheus text format (0.0.4), which
//! `promtool check metrics`, every Prometheus and every agent read. `prometheus-client`
//! writes OpenMetrics, where a counter family is named without its `_total` and the text
//! ends in `# EOF`; read as the classic format, that leaves every counter without help text.
//! This turns one into the other.

/// The content type of [`to_prometheus_text`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// OpenMetrics text as the classic Prometheus text format: each counter family's `# HELP`
/// and `# TYPE` name its `_total` samples, and the `# EOF` marker is gone.
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let counters: Vec<&str> = openmetrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .filter(|name| !name.ends_with("_total"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len() + counters.len() * 16);
    for line in openmetrics.lines() {
        if line == "# EOF" {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters.contains(&name).then(|| format!("{prefix}{name}_total {tail}"))
        });
        match renamed {
            Some(line) => out.push_str(&line),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_described_under_their_sample_names_and_the_eof_marker_goes() {
        let openmetrics = "# HELP oai_ingest_events Events processed.\n\
                           # TYPE oai_ingest_events counter\n\
                           oai_ingest_events_total{stream=\"a\"} 3\n\
                           # HELP oai_ingest_queued_bytes Encoded bytes.\n\
                           # TYPE oai_ingest_queued_bytes gauge\n\
                           oai_ingest_queued_bytes 0\n\
                           # EOF\n";
        assert_eq!(
            to_prometheus_text(openmetrics),
            "# HELP oai_ingest_events_total Events processed.\n\
             # TYPE oai_ingest_events_total counter\n\
             oai_ingest_events_total{stream=\"a\"} 3\n\
             # HELP oai_ingest_queued_bytes Encoded bytes.\n\
             # TYPE oai_ingest_queued_bytes gauge\n\
             oai_ingest_queued_bytes 0\n"
        );
    }
}
