//! Benchmark: the whole pipeline end to end — the release binary's `once` backfilling a large
//! audit-log history from the simulator and shipping it to the simulator's receiver with the
//! default settings (gzip, guardrails, `raw` kept) — reported as CPU µs per delivered event,
//! events/s and peak RSS of the daemon process.
//! `BENCH_LATENCY_MS` makes every audit-log page a slow round trip and `BENCH_RPM` sets the
//! request budget, for the backfill time against the budget's ceiling (pages ÷ allowed rate).
//! `BENCH_INDENTED_PAGES=1` has the simulator answer in indented JSON, as OpenAI does (the
//! default is one line per page, as the earlier figures were measured).
//! Run: `cargo bench --bench pipeline` (`BENCH_EVENTS` activities in the history, `BENCH_RUNS`
//! runs, `BENCH_KEEP=1` keeps each run's state directory and daemon log, `BENCH_PERF_RECORD=FILE`
//! profiles the daemon with `perf record -g`; see benches/README.md).
#![allow(clippy::print_stdout, clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Run, env_number, pairs, print_medians, run_once, sink_env};
use openai_audit_simulator::{Family, Fault, SimConfig, Simulator};

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not meaningful here.
    // The yardstick is a 50,000-event backfill: 112,000 activities give ~49,900
    // audit-log records (50,000 gave 22,461, so start-up and the final save weighed twice
    // as much per event as in the measure the figures are held to).
    let activities = env_number("BENCH_EVENTS", 112_000);
    let runs = env_number("BENCH_RUNS", 5);
    let latency_ms = env_number("BENCH_LATENCY_MS", 0);
    let rpm = env_number("BENCH_RPM", 1_000_000);
    let indented_pages = env_number("BENCH_INDENTED_PAGES", 0) == 1;
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
        let started = std::time::Instant::now();
        let sim = runtime.block_on(openai_audit_simulator::start(SimConfig {
            history: Duration::from_secs(7 * 24 * 3600),
            history_events: activities,
            // The audit log is what is measured; a million-activity history's compliance
            // files would only fill this process.
            history_compliance: false,
            indented_pages,
            ..SimConfig::default()
        }));
        let sim = sim.unwrap();
        println!(
            "history: {} audit events, built in {:.1} s",
            sim.org().audit_len(),
            started.elapsed().as_secs_f64()
        );
        if latency_ms > 0 {
            let ms = u64::try_from(latency_ms).unwrap();
            sim.faults()
                .set_always(Family::AuditLogs, Some(Fault::LatencyMs { ms }));
        }
        let run = run_once(&sim, &daemon_env(&sim, rpm));
        run.print(i + 1);
        if latency_ms > 0 {
            // Pages ÷ allowed rate; the budget's burst (a minute's worth) makes the real floor lower.
            let pages = sim.faults().requests(Family::AuditLogs);
            let ceiling_s = pages as f64 / (rpm as f64 / 60.0);
            println!(
                "      {pages} pages at {latency_ms} ms each, budget {rpm}/min: ceiling {ceiling_s:.1} s, took {:.1} s = {:.2}× the ceiling",
                run.wall_s,
                run.wall_s / ceiling_s
            );
        }
        results.push(run);
        runtime.block_on(sim.shutdown());
    }
    print_medians(&results);
}

/// The defaults, except what a local benchmark needs: the simulator's URLs and keys, no
/// inventory (the audit-log backfill is what is measured), a request budget the fake never
/// limits, a 30-day lookback that covers the whole history.
fn daemon_env(sim: &Simulator, rpm: usize) -> Vec<(String, String)> {
    let mut env = sink_env(sim);
    env.extend(pairs(&[
        ("OPENAI_ADMIN_KEY", sim.admin_key().to_string()),
        ("OAI_INGEST__OPENAI__BASE_URL", sim.admin_base_url().to_string()),
        ("OAI_INGEST__OPENAI__ORGANIZATION_ID", sim.org_id().to_string()),
        ("OAI_INGEST__OPENAI__REQUESTS_PER_MINUTE", rpm.to_string()),
        ("OAI_INGEST__INVENTORY__ENABLED", "false".to_string()),
    ]));
    env
}
