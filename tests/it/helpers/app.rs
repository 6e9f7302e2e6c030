//! [`TestApp`]: what one test owns (a simulator, a state directory, the daemon's environment)
//! and the ways it runs the daemon's pipeline against them: one cycle, or in the background.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use openai_audit_ingest::app::{App, RunReport};
use openai_audit_ingest::config::{self, Requirements, Settings};
use openai_audit_ingest::metrics::Metrics;
use openai_audit_ingest::streams::Mode;
use openai_audit_simulator::{Faults, Org, Receiver, Simulator};
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::builder::TestAppBuilder;

/// Everything one integration test needs, built by [`TestApp::builder`] and dropped with the
/// test: nothing is shared between tests, so they run in parallel.
pub struct TestApp {
    /// The simulated OpenAI Admin API, Compliance Logs Platform and receiver. The test drives
    /// its activity and faults, and reads what the receiver got.
    pub(super) sim: Simulator,
    /// The other simulated organizations (`.orgs(n)`), each its own simulator; they ship to
    /// the first one's receiver.
    pub(super) more: Vec<Simulator>,
    /// The daemon's `state.dir` (lock, checkpoints, dead letters, spool, quarantine). A fresh
    /// directory per test, removed when the test ends; a second run in the same test resumes
    /// from what the first left here.
    pub(super) state: TempDir,
    /// The environment the daemon is configured from: the simulator's URLs and keys, fast
    /// timings, then the test's own keys. [`TestApp::settings`] validates it as `config::load`
    /// does at start-up; the real binary gets it as its environment.
    pub(super) env: HashMap<String, String>,
    /// Holds the `[[orgs]]` configuration file (`OAI_INGEST_CONFIG`) while the test runs.
    pub(super) _config: Option<TempDir>,
}

impl TestApp {
    /// A builder for a quiet simulator (no background activity, the sink token required)
    /// and the daemon's default test settings: audit logs on, inventory and compliance off.
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder::default()
    }

    /// The simulator, for what the shortcuts below do not cover (ids, keys, URLs).
    pub fn sim(&self) -> &Simulator {
        &self.sim
    }

    /// Every simulated organization's simulator, the first being [`TestApp::sim`].
    pub fn sims(&self) -> Vec<&Simulator> {
        std::iter::once(&self.sim).chain(&self.more).collect()
    }

    /// The simulated organization: its history, and activity a test adds.
    pub fn org(&self) -> &Org {
        self.sim.org()
    }

    /// The simulator's fault switches and request counters.
    pub fn faults(&self) -> &Faults {
        self.sim.faults()
    }

    /// The simulated ingestion service: what it received, and how it answers.
    pub fn receiver(&self) -> &Receiver {
        self.sim.receiver()
    }

    /// The daemon's state directory.
    pub fn state_path(&self) -> &Path {
        self.state.path()
    }

    /// Sets one key of the daemon's environment, for a value only the started simulator
    /// knows (its organization id, say); later runs and settings use it.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.insert(key.to_string(), value.to_string());
    }

    /// One key of the daemon's environment, as set.
    pub fn env_value(&self, key: &str) -> Option<&str> {
        self.env.get(key).map(String::as_str)
    }

    /// Validated settings, as the daemon would load them from [`TestApp`]'s environment.
    pub fn settings(&self) -> Settings {
        self.settings_with(&[])
    }

    /// The same settings with `extra` keys set on top, for one use that differs from the
    /// rest (`check` with a wrong key, say).
    pub fn settings_with(&self, extra: &[(&str, &str)]) -> Settings {
        let mut env = self.env.clone();
        env.extend(extra.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())));
        let file = env.get("OAI_INGEST_CONFIG").map(Path::new);
        config::load(file, &env, Requirements::Pipeline).expect("valid test settings")
    }

    /// Runs one cycle of every enabled stream and drains; panics if it takes over two minutes.
    pub async fn run_once(&self) -> RunReport {
        self.run_once_with_metrics().await.0
    }

    /// [`TestApp::run_once`], also handing back the run's metrics.
    pub async fn run_once_with_metrics(&self) -> (RunReport, Metrics) {
        let metrics = Metrics::new();
        let app = App::build(&self.settings(), Mode::Once, metrics.clone())
            .await
            .expect("app builds");
        // Generous: the whole suite runs many daemons at once on a small machine, and the
        // heaviest cycle (a 20 MB compliance file in a debug build) takes ~40 s alone.
        let report = tokio::time::timeout(
            Duration::from_secs(120),
            app.run_until_stopped(Some(Duration::from_secs(110))),
        )
        .await
        .expect("once finishes");
        (report, metrics)
    }

    /// Starts the daemon in the background, as `run` does; [`Running::stop`] ends it.
    pub async fn spawn(&self) -> Running {
        let metrics = Metrics::new();
        let app = App::build(&self.settings(), Mode::Forever, metrics.clone())
            .await
            .expect("app builds");
        let stop = app.stop_token();
        let handle = tokio::spawn(app.run_until_stopped(None));
        Running { stop, handle, metrics }
    }

    /// Ends the test by stopping the simulator's servers and waiting for them.
    pub async fn shutdown(self) {
        self.sim.shutdown().await;
        for sim in self.more {
            sim.shutdown().await;
        }
    }
}

/// A daemon running in the background.
pub struct Running {
    /// Cancelling it asks for a graceful stop, as SIGTERM does.
    stop: CancellationToken,
    /// The run itself; it ends with the report once the drain is done.
    handle: JoinHandle<RunReport>,
    /// The running daemon's metrics, as `/metrics` and `/readyz` read them.
    metrics: Metrics,
}

impl Running {
    /// The daemon's metrics while it runs.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Asks for a graceful stop and waits (up to 30 s) for the drain to finish.
    pub async fn stop(self) -> RunReport {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.handle)
            .await
            .expect("stops in time")
            .expect("task")
    }
}
