//! Benchmark: the whole pipeline end to end — the release binary's `once` backfilling a large
//! audit-log history from the simulator and shipping it to the simulator's receiver with the
//! default settings (gzip, guardrails, `raw` kept) — reported as CPU µs per delivered event,
//! events/s and peak RSS of the daemon process.
//! Run: `cargo bench --bench pipeline` (`BENCH_EVENTS` activities in the history, `BENCH_RUNS`
//! runs, `BENCH_KEEP=1` keeps each run's state directory and daemon log, `BENCH_PERF_RECORD=FILE`
//! profiles the daemon with `perf record -g`; see benches/README.md).
#![allow(clippy::print_stdout, clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Run, env_number, pairs, print_medians, run_once, sink_env};
use openai_audit_simulator::{SimConfig, Simulator};

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not meaningful here.
    let activities = env_number("BENCH_EVENTS", 50_000);
    let runs = env_number("BENCH_RUNS", 5);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "pipeline: `once` over {activities} simulated activities, {runs} runs, binary {}",
        common::BINARY
    );
    let mut results: Vec<Run> = Vec::new();
    for i in 0..runs {
        let sim = runtime.block_on(openai_audit_simulator::start(SimConfig {
            history: Duration::from_secs(7 * 24 * 3600),
            history_events: activities,
            ..SimConfig::default()
        }));
        let sim = sim.unwrap();
        let run = run_once(&sim, &daemon_env(&sim));
        run.print(i + 1);
        results.push(run);
        runtime.block_on(sim.shutdown());
    }
    print_medians(&results);
}

/// The defaults, except what a local benchmark needs: the simulator's URLs and keys, no
/// inventory (the audit-log backfill is what is measured), a request budget the fake never
/// limits, a 30-day lookback that covers the whole history.
fn daemon_env(sim: &Simulator) -> Vec<(String, String)> {
    let mut env = sink_env(sim);
    env.extend(pairs(&[
        ("OPENAI_ADMIN_KEY", sim.admin_key().to_string()),
        ("OAI_INGEST__OPENAI__BASE_URL", sim.admin_base_url().to_string()),
        ("OAI_INGEST__OPENAI__ORGANIZATION_ID", sim.org_id().to_string()),
        ("OAI_INGEST__OPENAI__REQUESTS_PER_MINUTE", "1000000".to_string()),
        ("OAI_INGEST__INVENTORY__ENABLED", "false".to_string()),
    ]));
    env
}
