//! The process collector: CPU time, resident memory, open and allowed file descriptors and
//! start time, read from `/proc/self` at each scrape under the names Prometheus' own client
//! libraries use (`process_cpu_seconds_total`, …), so existing dashboards and alerts apply.
//! Off Linux (no `/proc`), nothing is reported.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// `/proc` reports CPU times and start times in USER_HZ ticks, which Linux fixes at 100 for
/// every architecture's user-visible interface.
const USER_HZ: f64 = 100.0;

/// One reading of the process's figures; a figure `/proc` did not give is `None`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Reading {
    pub cpu_seconds: Option<f64>,
    pub resident_bytes: Option<f64>,
    /// The most resident memory the process has had (`VmHWM`).
    pub peak_resident_bytes: Option<f64>,
    pub virtual_bytes: Option<f64>,
    pub start_time_seconds: Option<f64>,
    pub open_fds: Option<f64>,
    pub max_fds: Option<f64>,
}

/// Reads `/proc/self` now.
pub fn read() -> Reading {
    let stat = std::fs::read_to_string("/proc/self/stat").ok();
    let (cpu_seconds, start_ticks) = stat.as_deref().map(parse_stat).unwrap_or((None, None));
    let boot_time = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|text| field_after(&text, "btime"));
    let status = std::fs::read_to_string("/proc/self/status").ok();
    let kib = |name: &str| status.as_deref().and_then(|s| field_after(s, name)).map(|k| k * 1024.0);
    Reading {
        cpu_seconds,
        resident_bytes: kib("VmRSS:"),
        peak_resident_bytes: kib("VmHWM:"),
        virtual_bytes: kib("VmSize:"),
        start_time_seconds: boot_time.zip(start_ticks).map(|(boot, ticks)| boot + ticks / USER_HZ),
        open_fds: std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count() as f64),
        max_fds: std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|text| parse_max_open_files(&text)),
    }
}

/// CPU seconds (user + system) and the start time in ticks after boot, from
/// `/proc/self/stat`. The command name (field 2) may hold spaces and parentheses, so fields
/// are counted after its last `)`.
fn parse_stat(stat: &str) -> (Option<f64>, Option<f64>) {
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return (None, None);
    };
    // `rest` starts at field 3 (state): field N is at index N - 3.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let number = |field: usize| fields.get(field - 3).and_then(|v| v.parse::<f64>().ok());
    let cpu = number(14)
        .zip(number(15))
        .map(|(user, system)| (user + system) / USER_HZ);
    (cpu, number(22))
}

/// The first number after `name` on the line that starts with it.
fn field_after(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// The soft limit of `Max open files` in `/proc/self/limits`.
fn parse_max_open_files(limits: &str) -> Option<f64> {
    limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Registered once; reads `/proc` on each scrape.
#[derive(Debug)]
pub struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let r = read();
        if let Some(cpu) = r.cpu_seconds {
            let counter = ConstCounter::new(cpu);
            let metric = encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds.",
                None,
                counter.metric_type(),
            )?;
            counter.encode(metric)?;
        }
        let gauges = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                r.resident_bytes,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                r.virtual_bytes,
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                r.start_time_seconds,
            ),
            ("process_open_fds", "Number of open file descriptors.", r.open_fds),
            ("process_max_fds", "Maximum number of open file descriptors.", r.max_fds),
        ];
        for (name, help, value) in gauges {
            let Some(value) = value else { continue };
            let gauge = ConstGauge::new(value);
            let metric = encoder.encode_descriptor(name, help, None, gauge.metric_type())?;
            gauge.encode(metric)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stat_line_is_read_after_the_command_name_whatever_it_holds() {
        let stat = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 150 0 0 20 0 9 0 123456 \
                    1000000 2000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        assert_eq!(parse_stat(stat), (Some(4.0), Some(123_456.0)));
        assert_eq!(parse_stat("garbage"), (None, None));
    }

    #[test]
    fn the_soft_open_files_limit_is_read_from_the_limits_table() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max cpu time              unlimited            unlimited            seconds   \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(parse_max_open_files(limits), Some(1024.0));
    }

    #[test]
    fn this_process_reports_every_figure_on_linux() {
        if !std::path::Path::new("/proc/self/stat").exists() {
            return;
        }
        let r = read();
        assert!(r.resident_bytes.is_some_and(|b| b > 0.0), "{r:?}");
        assert!(r.peak_resident_bytes >= r.resident_bytes, "{r:?}");
        assert!(r.open_fds.is_some_and(|n| n >= 1.0), "{r:?}");
        assert!(r.max_fds.is_some_and(|n| n >= 1.0), "{r:?}");
        let now = chrono::Utc::now().timestamp() as f64;
        assert!(
            r.start_time_seconds
                .is_some_and(|t| t > now - 86_400.0 * 365.0 && t <= now + 1.0),
            "{r:?}"
        );
        assert!(r.cpu_seconds.is_some(), "{r:?}");
    }
}
