//! Benchmark: the Compliance Logs path end to end — the release binary's `once` reading every
//! file of the simulated Compliance Logs Platform (all eight event types, one stream each)
//! and shipping the events to the simulator's receiver with the default settings (gzip,
//! guardrails, `raw` kept, `compliance.content = keep` unless `BENCH_CONTENT` says otherwise)
//! — reported as CPU µs per delivered event, events/s and peak RSS of the daemon process.
//!
//! Two shapes (see benches/README.md):
//! - the mix (default): `BENCH_EVENTS_PER_TYPE` (20,000) events of each of the eight types,
//!   cut into files of `BENCH_FILE_EVENTS` (5,000) — 160,000 events in 32 JSON Lines files;
//! - one large file: `BENCH_ONE_FILE_EVENTS=N` puts N `CONVERSATION_MESSAGE` events in one
//!   file and nothing else;
//! - one generated file: `BENCH_ONE_FILE_BYTES=N` (e.g. 1000000000 for the 1 GB)
//!   one `CONVERSATION_MESSAGE` file of at least N bytes that the simulator makes line by
//!   line while serving it, so this process holds no copy of it.
//!
//! Run: `cargo bench --bench compliance` (`BENCH_RUNS` runs, `BENCH_CONTENT=hash`,
//! `BENCH_KEEP=1`, `BENCH_PERF_RECORD=FILE`, `BENCH_DAEMON_ENV`, `BENCH_BINARY=PATH` to measure
//! another build of the daemon).
#![allow(clippy::print_stdout, clippy::unwrap_used)]

mod common;

use common::{Run, env_number, pairs, print_medians, run_once, sink_env};
use openai_audit_simulator::{COMPLIANCE_EVENT_TYPES, SimConfig, Simulator};

fn main() {
    let runs = env_number("BENCH_RUNS", 5);
    let one_file = env_number("BENCH_ONE_FILE_EVENTS", 0);
    let one_file_bytes = env_number("BENCH_ONE_FILE_BYTES", 0);
    let per_type = env_number("BENCH_EVENTS_PER_TYPE", 20_000);
    let file_events = env_number("BENCH_FILE_EVENTS", 5_000);
    let content = std::env::var("BENCH_CONTENT").unwrap_or_else(|_| "keep".to_string());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (types, per_file): (&[&str], usize) = if one_file > 0 || one_file_bytes > 0 {
        (&["CONVERSATION_MESSAGE"], one_file)
    } else {
        (COMPLIANCE_EVENT_TYPES, file_events)
    };
    let mut results: Vec<Run> = Vec::new();
    for i in 0..runs {
        let sim = runtime
            .block_on(openai_audit_simulator::start(SimConfig {
                history_events: 0,
                compliance_file_max_events: per_file,
                ..SimConfig::default()
            }))
            .unwrap();
        if one_file_bytes > 0 {
            let started = std::time::Instant::now();
            let (events, bytes) = sim
                .org()
                .add_generated_compliance_file(types[0], one_file_bytes)
                .unwrap();
            println!(
                "generated file: {events} events, {bytes} bytes, hashed in {:.1} s",
                started.elapsed().as_secs_f64()
            );
        } else {
            for ty in types {
                sim.org()
                    .add_compliance_events(ty, if one_file > 0 { one_file } else { per_type });
            }
            sim.org().cut_compliance_files();
        }
        if i == 0 {
            let bytes: usize = types.iter().map(|t| sim.org().compliance_total_bytes(t)).sum();
            println!(
                "compliance: `once` over {} types, {} MB of files, content {content}, {runs} runs, binary {}",
                types.len(),
                bytes / 1_000_000,
                common::BINARY
            );
        }
        let run = run_once(&sim, &daemon_env(&sim, types, &content));
        run.print(i + 1);
        results.push(run);
        runtime.block_on(sim.shutdown());
    }
    print_medians(&results);
}

/// The defaults, except what a local benchmark needs: the simulator's URLs and keys, only
/// the compliance streams, a request budget the fake never limits.
fn daemon_env(sim: &Simulator, types: &[&str], content: &str) -> Vec<(String, String)> {
    let mut env = sink_env(sim);
    env.extend(pairs(&[
        ("OAI_INGEST__AUDIT_LOGS__ENABLED", "false".to_string()),
        ("OAI_INGEST__INVENTORY__ENABLED", "false".to_string()),
        ("OAI_INGEST__COMPLIANCE__ENABLED", "true".to_string()),
        ("OAI_INGEST__COMPLIANCE__API_KEY", sim.compliance_key().to_string()),
        (
            "OAI_INGEST__COMPLIANCE__BASE_URL",
            sim.compliance_base_url().to_string(),
        ),
        ("OAI_INGEST__COMPLIANCE__PRINCIPAL_ID", sim.workspace_id().to_string()),
        ("OAI_INGEST__COMPLIANCE__EVENT_TYPES", types.join(",")),
        ("OAI_INGEST__COMPLIANCE__REQUESTS_PER_MINUTE", "1000000".to_string()),
        ("OAI_INGEST__COMPLIANCE__CONTENT", content.to_string()),
    ]));
    env
}
