//! Shared set-up for every integration test, in one place: [`TestApp`] (a simulator, a state
//! directory and the daemon's settings, built by one builder), what a test expects of it, the
//! real binary, and waiting for what the daemon brings about.
//!
//! - `app.rs`: [`TestApp`] and running the pipeline once or in the background.
//! - `builder.rs`: `TestAppBuilder` and the environment pointing the daemon at the simulator.
//! - `expect.rs`: expected and received event ids.
//! - `state.rs`: checkpoints, dead letters and quarantine in the state directory.
//! - `binary.rs`: the real binary as an operator runs it.
//! - `wait.rs`: polling for a condition.

#![allow(dead_code)]

mod app;
pub mod binary;
mod builder;
mod expect;
mod state;
mod wait;

pub use app::TestApp;
pub use wait::{poll_until, wait_until};

use std::collections::HashSet;
use std::path::Path;

use openai_audit_simulator::{SimConfig, Simulator};
use serde_json::Value;

use builder::env_for;

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

/// A simulator started exactly as `cfg` says (for tests of the simulator itself).
pub async fn sim_with(cfg: SimConfig) -> Simulator {
    openai_audit_simulator::start(cfg).await.expect("simulator starts")
}

/// The event ids the daemon must produce for every audit event the simulator holds.
pub fn expected_audit_ids(sim: &Simulator) -> HashSet<String> {
    let org = sim.org_id();
    sim.org()
        .audit_events()
        .iter()
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
