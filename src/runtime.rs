//! The async runtime the daemon runs on: Tokio's multi-thread scheduler with **one** worker
//! thread unless `TOKIO_WORKER_THREADS` asks for more.
//!
//! The pipeline's stages hand every event from task to task (pager → processing → sink).
//! With a worker per core those tasks wander between cores, and each event's bytes, the
//! guardrails' state and the allocator's caches follow them; on one worker they stay in one
//! core's cache. Measured on the benches (benches/README.md, "one worker thread"): up to
//! ~1 µs of CPU less per event on a 50,000-event backfill, as fast in wall time; at 1,000,000
//! events against the local simulator the same CPU but ~30 % more wall time, since paging and
//! processing no longer run on two cores at once. Against the real APIs a backfill waits on
//! the request budget (a page a second at the default 60 requests a minute), not on the
//! CPU, so the default spends less CPU; an operator who wants more workers sets the variable
//! Tokio itself defines. Checkpoint and spool files are written on Tokio's blocking threads
//! either way.

use tokio::runtime::{Builder, Runtime};

/// The environment variable that sets the number of worker threads (Tokio's own name).
pub const WORKERS_VAR: &str = "TOKIO_WORKER_THREADS";

/// Worker threads when [`WORKERS_VAR`] is not set.
pub const DEFAULT_WORKERS: usize = 1;

/// The number of worker threads `value` (of [`WORKERS_VAR`]) asks for: a positive integer,
/// or [`DEFAULT_WORKERS`] when unset; otherwise what is wrong with it.
pub fn workers(value: Option<&str>) -> Result<usize, String> {
    let Some(value) = value else {
        return Ok(DEFAULT_WORKERS);
    };
    match value.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!(
            "{WORKERS_VAR} must be a positive whole number of worker threads, got {value:?}"
        )),
    }
}

/// The runtime with `workers` worker threads, timers and I/O enabled.
pub fn build(workers: usize) -> std::io::Result<Runtime> {
    Builder::new_multi_thread().worker_threads(workers).enable_all().build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_worker_unless_the_variable_asks_for_more() {
        assert_eq!(workers(None), Ok(1));
        assert_eq!(workers(Some("4")), Ok(4));
        assert_eq!(workers(Some(" 2 ")), Ok(2));
    }

    #[test]
    fn a_worker_count_that_is_not_a_positive_number_is_refused_by_name() {
        for bad in ["0", "-1", "two", "", "1.5"] {
            let err = workers(Some(bad)).expect_err(bad);
            assert!(err.contains("TOKIO_WORKER_THREADS"), "{err}");
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn the_runtime_has_the_workers_asked_for() {
        for n in [1, 3] {
            let runtime = build(n).expect("runtime");
            assert_eq!(runtime.metrics().num_workers(), n);
        }
    }
}
