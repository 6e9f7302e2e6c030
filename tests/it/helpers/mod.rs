//! Shared set-up for every integration test, in one place: a simulator, settings pointing
//! the daemon at it, ways to run the pipeline once, in the background, or as the real binary,
//! and waiting for what it brings about.

#![allow(dead_code)]

pub mod binary;
mod wait;

pub use wait::{poll_until, wait_until};

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use openai_audit_ingest::app::{App, RunReport};
use openai_audit_ingest::config::{self, Requirements, Settings};
use openai_audit_ingest::metrics::Metrics;
use openai_audit_ingest::streams::Mode;
use openai_audit_simulator::{SimConfig, Simulator};
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The sink token every test uses; tests assert it never reaches a log line.
pub const SINK_TOKEN: &str = "it-sink-token-5f1c9a";

/// A quiet simulator (no background activity) with `history_events` past events.
pub async fn quiet_sim(history_events: usize) -> Simulator {
    sim_with(SimConfig {
        history_events,
        receiver_token: Some(SINK_TOKEN.to_string()),
        ..SimConfig::default()
    })
    .await
}

pub async fn sim_with(cfg: SimConfig) -> Simulator {
    openai_audit_simulator::start(cfg).await.expect("simulator starts")
}

/// Environment that points the daemon at `sim`, with fast timings for tests.
pub fn env_for(sim: &Simulator, state_dir: &Path) -> HashMap<String, String> {
    let pairs = [
        ("OPENAI_ADMIN_KEY", sim.admin_key().to_string()),
        ("OAI_INGEST__OPENAI__BASE_URL", sim.admin_base_url().to_string()),
        ("OAI_INGEST__OPENAI__ORGANIZATION_ID", sim.org_id().to_string()),
        ("OAI_INGEST__OPENAI__REQUESTS_PER_MINUTE", "100000".to_string()),
        ("OAI_INGEST__AUDIT_LOGS__INITIAL_LOOKBACK", "3h".to_string()),
        ("OAI_INGEST__AUDIT_LOGS__POLL_INTERVAL", "200ms".to_string()),
        ("OAI_INGEST__INVENTORY__ENABLED", "false".to_string()),
        ("OAI_INGEST__SINK__URL", sim.receiver_url().to_string()),
        (
            "OAI_INGEST__SINK__AUTH_TOKEN",
            sim.receiver_token().unwrap_or_default().to_string(),
        ),
        ("OAI_INGEST__SINK__FLUSH_INTERVAL", "50ms".to_string()),
        ("OAI_INGEST__RETRY__INITIAL_BACKOFF", "10ms".to_string()),
        ("OAI_INGEST__RETRY__MAX_BACKOFF", "200ms".to_string()),
        ("OAI_INGEST__STATE__DIR", state_dir.display().to_string()),
        ("OAI_INGEST__SERVER__LISTEN", String::new()),
        ("OAI_INGEST__SHUTDOWN__TIMEOUT", "10s".to_string()),
    ];
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// Validated settings from the embedded defaults plus `env_for(sim)` plus `extra`.
pub fn settings(sim: &Simulator, state_dir: &Path, extra: &[(&str, &str)]) -> Settings {
    let mut env = env_for(sim, state_dir);
    for (k, v) in extra {
        env.insert((*k).to_string(), (*v).to_string());
    }
    config::load(None, &env, Requirements::Pipeline).expect("valid test settings")
}

/// Runs one cycle of every stream and drains; panics if it takes over a minute.
pub async fn run_once(settings: &Settings) -> RunReport {
    let app = App::build(settings, Mode::Once, Metrics::new())
        .await
        .expect("app builds");
    tokio::time::timeout(
        Duration::from_secs(60),
        app.run_until_stopped(Some(Duration::from_secs(50))),
    )
    .await
    .expect("once finishes")
}

/// A daemon running in the background; cancel `stop` to end it gracefully.
pub struct Running {
    pub stop: CancellationToken,
    pub metrics: Metrics,
    pub handle: JoinHandle<RunReport>,
}

pub async fn spawn_run(settings: &Settings) -> Running {
    let app = App::build(settings, Mode::Forever, Metrics::new())
        .await
        .expect("app builds");
    let stop = app.stop_token();
    let metrics = app.metrics().clone();
    let handle = tokio::spawn(app.run_until_stopped(None));
    Running { stop, metrics, handle }
}

impl Running {
    pub async fn stop(self) -> RunReport {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.handle)
            .await
            .expect("stops in time")
            .expect("task")
    }
}

/// The event ids the daemon must produce for every audit event the simulator holds.
pub fn expected_audit_ids(sim: &Simulator) -> HashSet<String> {
    audit_ids(sim, |_| true)
}

/// The same, for the normal pass only (no tenant-scoped types).
pub fn normal_pass_ids(sim: &Simulator) -> HashSet<String> {
    audit_ids(sim, |event_type| !openai_audit_simulator::is_tenant_scoped(event_type))
}

fn audit_ids(sim: &Simulator, keep: impl Fn(&str) -> bool) -> HashSet<String> {
    let org = sim.org_id();
    sim.org()
        .audit_events()
        .iter()
        .filter(|e| keep(e.get("type").and_then(Value::as_str).unwrap_or_default()))
        .filter_map(|e| e.get("id").and_then(Value::as_str))
        .map(|id| format!("openai.audit_log:{org}:{id}"))
        .collect()
}

/// Received ids of upstream events (guardrail finding events, which the simulated org
/// triggers, are left out), and how many arrived more than once.
pub fn received(sim: &Simulator) -> (HashSet<String>, usize) {
    let ids: Vec<String> = sim
        .receiver()
        .ids()
        .into_iter()
        .filter(|id| !id.starts_with("guardrails:"))
        .collect();
    let unique: HashSet<String> = ids.iter().cloned().collect();
    let dups = ids.len() - unique.len();
    (unique, dups)
}

/// The saved checkpoint of `stream`, if any.
pub fn checkpoint(state_dir: &Path, stream: &str) -> Option<Value> {
    let path = state_dir
        .join("checkpoints")
        .join(format!("{}.json", stream.replace(':', "-")));
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice::<Value>(&bytes).ok().map(|v| v["state"].clone())
}
