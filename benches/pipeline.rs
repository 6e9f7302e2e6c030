//! Benchmark: the whole pipeline end to end — the release binary's `once` backfilling a large
//! audit-log history from the simulator and shipping it to the simulator's receiver with the
//! default settings (gzip, guardrails, `raw` kept) — reported as CPU µs per delivered event,
//! events/s and peak RSS of the daemon process.
//! Run: `cargo bench --bench pipeline` (`BENCH_EVENTS` activities in the history, `BENCH_RUNS`
//! runs, `BENCH_KEEP=1` keeps each run's state directory and daemon log, `BENCH_PERF_RECORD=FILE`
//! profiles the daemon with `perf record -g`; `BENCH_LATENCY_MS` makes every audit-log page a
//! slow round trip and `BENCH_RPM` sets the request budget, for the backfill time against the
//! budget's ceiling, pages ÷ allowed rate; see benches/README.md).
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use openai_audit_simulator::{Family, Fault, SimConfig, Simulator};

/// The daemon under test, built by cargo for this bench in the same profile.
const BINARY: &str = env!("CARGO_BIN_EXE_openai-audit-ingest");
/// The target: at most 10 µs of CPU per event.
const TARGET_US: f64 = 10.0;

/// One run's figures, from `/usr/bin/time` (the daemon's own rusage) and the receiver.
#[derive(Debug, Clone, Copy)]
struct Run {
    events: usize,
    wall_s: f64,
    cpu_s: f64,
    peak_rss_kib: u64,
    /// Uncompressed ÷ compressed bytes over the batches the receiver kept whole.
    gzip_ratio: f64,
    /// Audit-log pages requested.
    pages: u64,
}

impl Run {
    fn cpu_us_per_event(&self) -> f64 {
        self.cpu_s * 1e6 / self.events as f64
    }
    fn events_per_s(&self) -> f64 {
        self.events as f64 / self.wall_s
    }
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not meaningful here.
    let activities = env_number("BENCH_EVENTS", 50_000);
    let runs = env_number("BENCH_RUNS", 5);
    let latency_ms = env_number("BENCH_LATENCY_MS", 0);
    let rpm = env_number("BENCH_RPM", 1_000_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    println!("pipeline: `once` over {activities} simulated activities, {runs} runs, binary {BINARY}");
    let mut results = Vec::new();
    for i in 0..runs {
        let sim = runtime.block_on(openai_audit_simulator::start(SimConfig {
            history: Duration::from_secs(7 * 24 * 3600),
            history_events: activities,
            ..SimConfig::default()
        }));
        let sim = sim.unwrap();
        if latency_ms > 0 {
            let ms = u64::try_from(latency_ms).unwrap();
            sim.faults().set_always(Family::AuditLogs, Some(Fault::LatencyMs { ms }));
        }
        let run = run_once(&sim, rpm);
        println!(
            "run {}: {} events in {:.2} s wall, {:.2} s CPU → {:.1} µs CPU/event, {:.0} events/s, peak RSS {:.1} MiB, gzip ratio {:.2}",
            i + 1,
            run.events,
            run.wall_s,
            run.cpu_s,
            run.cpu_us_per_event(),
            run.events_per_s(),
            run.peak_rss_kib as f64 / 1024.0,
            run.gzip_ratio
        );
        if latency_ms > 0 {
            // Pages ÷ allowed rate; the budget's burst (a minute's worth) makes the real floor lower.
            let ceiling_s = run.pages as f64 / (rpm as f64 / 60.0);
            println!(
                "      {} pages at {latency_ms} ms each, budget {rpm}/min: ceiling {ceiling_s:.1} s, took {:.1} s = {:.2}× the ceiling",
                run.pages,
                run.wall_s,
                run.wall_s / ceiling_s
            );
        }
        results.push(run);
        runtime.block_on(sim.shutdown());
    }
    let cpu = median(results.iter().map(Run::cpu_us_per_event));
    let rate = median(results.iter().map(Run::events_per_s));
    let rss = median(results.iter().map(|r| r.peak_rss_kib as f64 / 1024.0));
    let ratio = median(results.iter().map(|r| r.gzip_ratio));
    println!(
        "median: {cpu:.1} µs CPU/event ({:.2}× the {TARGET_US} µs target), {rate:.0} events/s, peak RSS {rss:.1} MiB, gzip ratio {ratio:.2}",
        cpu / TARGET_US
    );
}

/// Runs the daemon's `once` against `sim` from a fresh state directory, under
/// `/usr/bin/time` for its CPU time and peak RSS.
fn run_once(sim: &Simulator, rpm: usize) -> Run {
    let state = tempfile::tempdir().unwrap();
    let times = state.path().join("time.txt");
    let keep = std::env::var_os("BENCH_KEEP").is_some();
    let mut command = Command::new("/usr/bin/time");
    command.args(["-f", "%e %U %S %M", "-o"]).arg(&times);
    // `BENCH_PERF_RECORD=FILE`: profile the daemon with `perf record -g` into FILE.
    if let Some(profile) = std::env::var_os("BENCH_PERF_RECORD") {
        command.args(["perf", "record", "-g", "-o"]).arg(profile).arg("--");
    }
    command
        .arg(BINARY)
        .args(["once", "--deadline", "30m"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(daemon_env(sim, &state.path().join("state"), rpm))
        // `BENCH_DAEMON_ENV="KEY=VALUE KEY=VALUE"`: extra settings, e.g. to switch a rule off.
        .envs(
            std::env::var("BENCH_DAEMON_ENV")
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|kv| kv.split_once('=')),
        );
    let log = std::fs::File::create(state.path().join("daemon.log")).unwrap();
    command.stdout(log.try_clone().unwrap()).stderr(log);
    let status = command
        .status()
        .expect("failed to start /usr/bin/time (is it installed?)");
    assert!(status.success(), "the daemon's `once` failed: {status}");
    let run = read_run(&times, sim);
    if keep {
        println!("kept state in {}", state.keep().display());
    }
    run
}

/// The defaults, except what a local benchmark needs: the simulator's URLs and keys, no
/// inventory (the audit-log backfill is what is measured), a request budget the fake never
/// limits, a 30-day lookback that covers the whole history, no metrics listener.
fn daemon_env(sim: &Simulator, state_dir: &Path, rpm: usize) -> Vec<(String, String)> {
    [
        ("OPENAI_ADMIN_KEY", sim.admin_key().to_string()),
        ("OAI_INGEST__OPENAI__BASE_URL", sim.admin_base_url().to_string()),
        ("OAI_INGEST__OPENAI__ORGANIZATION_ID", sim.org_id().to_string()),
        ("OAI_INGEST__OPENAI__REQUESTS_PER_MINUTE", rpm.to_string()),
        ("OAI_INGEST__INVENTORY__ENABLED", "false".to_string()),
        ("OAI_INGEST__SINK__URL", sim.receiver_url().to_string()),
        ("OAI_INGEST__STATE__DIR", state_dir.display().to_string()),
        ("OAI_INGEST__SERVER__LISTEN", String::new()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn read_run(times: &Path, sim: &Simulator) -> Run {
    let text = std::fs::read_to_string(times).unwrap();
    // `/usr/bin/time` may print a "Command exited …" line first; the figures are the last line.
    let figures: Vec<f64> = text
        .lines()
        .last()
        .unwrap_or_default()
        .split_whitespace()
        .map(|f| f.parse().unwrap())
        .collect();
    let ids = sim.receiver().ids();
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "no event is delivered twice");
    let (mut plain, mut wire) = (0usize, 0usize);
    for request in sim.receiver().requests() {
        if let Some(body) = &request.body {
            plain += body.len();
            wire += request.wire_bytes;
        }
    }
    Run {
        events: ids.len(),
        wall_s: figures[0],
        cpu_s: figures[1] + figures[2],
        peak_rss_kib: figures[3] as u64,
        gzip_ratio: plain as f64 / wire.max(1) as f64,
        pages: sim.faults().requests(Family::AuditLogs),
    }
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
