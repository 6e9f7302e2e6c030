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

mod app;
pub mod binary;
mod builder;
mod expect;
mod state;
mod wait;

pub use app::{Running, TestApp};
pub use wait::{poll_until, wait_until};

use std::sync::LazyLock;

use openai_audit_simulator::{SimConfig, Simulator};
use tokio::sync::{Mutex, MutexGuard};

/// The sink token every test uses; tests assert it never reaches a log line.
pub const SINK_TOKEN: &str = "it-sink-token-5f1c9a";

/// A simulator started exactly as `cfg` says: the builder's, or a test of the simulator's
/// own answers that runs no daemon.
pub async fn sim_with(cfg: SimConfig) -> Simulator {
    openai_audit_simulator::start(cfg).await.expect("simulator starts")
}

/// Held by the tests that keep the machine's cores busy for tens of seconds.
static HEAVY: LazyLock<Mutex<()>> = LazyLock::new(|| Mutex::new(()));

/// Waits for the other heavy tests (the crash loop, the SIGKILL rounds, the 20 MB file) to
/// finish, so none of them misses its deadline because another is using the cores; hold the
/// guard for the whole test.
pub async fn heavy() -> MutexGuard<'static, ()> {
    HEAVY.lock().await
}
