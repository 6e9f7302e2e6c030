//! What the end-to-end benchmarks share: running the release daemon's `once` against a
//! simulator under `/usr/bin/time` (its own CPU time and peak RSS), checking what the
//! receiver got, and medians.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use openai_audit_simulator::Simulator;

/// The daemon under test, built by cargo for this bench in the same profile.
pub const BINARY: &str = env!("CARGO_BIN_EXE_openai-audit-ingest");
/// The issues' target: at most 10 µs of CPU per event.
pub const TARGET_US: f64 = 10.0;

/// One run's figures, from `/usr/bin/time` (the daemon's own rusage) and the receiver.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    pub events: usize,
    pub wall_s: f64,
    pub cpu_s: f64,
    pub peak_rss_kib: u64,
    /// Uncompressed ÷ compressed bytes over every request that stored events.
    pub gzip_ratio: f64,
}

impl Run {
    pub fn cpu_us_per_event(&self) -> f64 {
        self.cpu_s * 1e6 / self.events as f64
    }
    pub fn events_per_s(&self) -> f64 {
        self.events as f64 / self.wall_s
    }
    pub fn rss_mib(&self) -> f64 {
        self.peak_rss_kib as f64 / 1024.0
    }

    pub fn print(&self, i: usize) {
        println!(
            "run {i}: {} events in {:.2} s wall, {:.2} s CPU → {:.1} µs CPU/event, {:.0} events/s, peak RSS {:.1} MiB, gzip ratio {:.2}",
            self.events,
            self.wall_s,
            self.cpu_s,
            self.cpu_us_per_event(),
            self.events_per_s(),
            self.rss_mib(),
            self.gzip_ratio
        );
    }
}

/// Prints the medians of `results`.
pub fn print_medians(results: &[Run]) {
    let cpu = median(results.iter().map(Run::cpu_us_per_event));
    let rate = median(results.iter().map(Run::events_per_s));
    let rss = median(results.iter().map(Run::rss_mib));
    let ratio = median(results.iter().map(|r| r.gzip_ratio));
    println!(
        "median: {cpu:.1} µs CPU/event ({:.2}× the {TARGET_US} µs target), {rate:.0} events/s, peak RSS {rss:.1} MiB, gzip ratio {ratio:.2}",
        cpu / TARGET_US
    );
}

pub fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Runs the daemon's `once` with `settings` (plus `BENCH_DAEMON_ENV`) from a fresh state
/// directory, under `/usr/bin/time` for its CPU time and peak RSS, and reads what `sim`'s
/// receiver got.
pub fn run_once(sim: &Simulator, settings: &[(String, String)]) -> Run {
    // A million events kept as `Value`s would need GBs in this process; counts are enough.
    sim.receiver().keep_counts_only();
    let state = tempfile::tempdir().unwrap();
    let times = state.path().join("time.txt");
    let keep = std::env::var_os("BENCH_KEEP").is_some();
    let mut command = Command::new("/usr/bin/time");
    command.args(["-f", "%e %U %S %M", "-o"]).arg(&times);
    // `BENCH_PERF_RECORD=FILE`: profile the daemon with `perf record -g` into FILE.
    if let Some(profile) = std::env::var_os("BENCH_PERF_RECORD") {
        command.args(["perf", "record", "-g", "-o"]).arg(profile).arg("--");
    }
    // `BENCH_BINARY=PATH`: another build of the daemon (a copy of the one before a change).
    command
        .arg(std::env::var_os("BENCH_BINARY").unwrap_or_else(|| BINARY.into()))
        .args(["once", "--deadline", "60m"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("OAI_INGEST__STATE__DIR", state.path().join("state"))
        .envs(settings.iter().map(|(k, v)| (k, v)))
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

/// Settings every end-to-end bench shares: the simulator's receiver, no metrics listener.
pub fn sink_env(sim: &Simulator) -> Vec<(String, String)> {
    pairs(&[
        ("OAI_INGEST__SINK__URL", sim.receiver_url().to_string()),
        ("OAI_INGEST__SERVER__LISTEN", String::new()),
    ])
}

pub fn pairs(pairs: &[(&str, String)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
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
    let tally = sim.receiver().tally();
    assert_eq!(tally.unique_ids, tally.events, "no event is delivered twice");
    Run {
        events: tally.events,
        wall_s: figures[0],
        cpu_s: figures[1] + figures[2],
        peak_rss_kib: figures[3] as u64,
        gzip_ratio: tally.plain_bytes as f64 / tally.wire_bytes.max(1) as f64,
    }
}

pub fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
