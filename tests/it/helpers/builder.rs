//! [`TestAppBuilder`]: how a test says what it needs (history, streams, keys, an upstream of
//! its own), and the environment that points the daemon at the simulator with fast timings.

use std::collections::HashMap;
use std::path::Path;

use openai_audit_simulator::{SimConfig, Simulator};

use super::app::TestApp;
use super::{SINK_TOKEN, sim_with};

/// What a test asks of its [`TestApp`]; [`TestAppBuilder::start`] builds it.
pub struct TestAppBuilder {
    /// How the simulator starts: quiet (no background activity), demanding [`SINK_TOKEN`].
    sim: SimConfig,
    /// Cut every compliance file filed so far as soon as the simulator is up, so the
    /// history is there to list and download.
    cut_compliance_files: bool,
    /// The compliance event types to stream, in place of the audit logs; `None` keeps
    /// compliance off.
    compliance: Option<Vec<String>>,
    /// Compliance events of one type added and filed as soon as the simulator is up.
    filed: Vec<(String, usize)>,
    /// The sink protocol spoken to the receiver (`None`: the generic ndjson), with the
    /// receiver's root as `sink.url` so the daemon appends the protocol's standard path
    /// (the generic protocols, which have none, get the receiver's generic endpoint).
    protocol: Option<String>,
    /// The test's own keys, in the order given; they win over everything above.
    env: Vec<(String, String)>,
    /// How many simulated organizations; more than one makes a configuration file of
    /// `[[orgs]]` blocks, one per simulator, all shipping to the first one's receiver.
    orgs: usize,
}

impl Default for TestAppBuilder {
    fn default() -> Self {
        Self {
            sim: SimConfig {
                receiver_token: Some(SINK_TOKEN.to_string()),
                ..SimConfig::default()
            },
            cut_compliance_files: false,
            compliance: None,
            filed: Vec::new(),
            protocol: None,
            env: Vec::new(),
            orgs: 1,
        }
    }
}

impl TestAppBuilder {
    /// How many past activities the simulated organization holds (300 unless set).
    pub fn history(mut self, events: usize) -> Self {
        self.sim.history_events = events;
        self
    }

    /// Grows the simulated organization to `users` members and `projects` projects (each
    /// grown project: 40 members, 3 service accounts, 10 keys, its rate limits).
    pub fn size(mut self, users: usize, projects: usize) -> Self {
        self.sim.size = openai_audit_simulator::OrgSize {
            users: Some(users),
            projects: Some(projects),
        };
        self
    }

    /// How far back the history's activities are spread (2 h unless set).
    pub fn history_span(mut self, span: std::time::Duration) -> Self {
        self.sim.history = span;
        self
    }

    /// The chance that an event of one compliance file appears again in the next.
    pub fn compliance_repeats(mut self, probability: f64) -> Self {
        self.sim.compliance_duplicate_probability = probability;
        self
    }

    /// The most events one compliance file holds.
    pub fn compliance_file_max_events(mut self, events: usize) -> Self {
        self.sim.compliance_file_max_events = events;
        self
    }

    /// Files the compliance history before the test begins: every event filed so far is cut
    /// into files the daemon can list and download.
    pub fn cut_compliance_files(mut self) -> Self {
        self.cut_compliance_files = true;
        self
    }

    /// Streams only the compliance logs of `types` from the simulated platform; the audit
    /// logs are off.
    pub fn compliance(mut self, types: &[&str]) -> Self {
        self.compliance = Some(types.iter().map(|t| (*t).to_string()).collect());
        self
    }

    /// Streams only the compliance logs of `event_type`, from a quiet simulator (no history,
    /// no repeats) holding just `events` of that type, filed before the test begins.
    pub fn only_filed_compliance(mut self, event_type: &str, events: usize) -> Self {
        self.filed.push((event_type.to_string(), events));
        self.history(0).compliance(&[event_type]).compliance_repeats(0.0)
    }

    /// Streams only the inventory, every run a full one; the audit logs are off.
    pub fn inventory(self) -> Self {
        self.env("OAI_INGEST__INVENTORY__ENABLED", "true")
            .env("OAI_INGEST__INVENTORY__FULL_INTERVAL", "0s")
            .env("OAI_INGEST__AUDIT_LOGS__ENABLED", "false")
    }

    /// [`TestAppBuilder::inventory`] with the default `inventory.full_interval` (24 h): the
    /// runs after the first re-read only what the audit log named.
    pub fn incremental_inventory(self) -> Self {
        self.inventory().env("OAI_INGEST__INVENTORY__FULL_INTERVAL", "24h")
    }

    /// The Admin API at `url` (a wiremock server with hand-made answers) instead of the
    /// simulator's.
    pub fn upstream(self, url: &str) -> Self {
        self.env("OAI_INGEST__OPENAI__BASE_URL", url)
    }

    /// Speaks `protocol` (a `sink.protocol` name) to the simulated receiver, at its
    /// standard path, with the protocol's default auth scheme and compression.
    pub fn protocol(mut self, protocol: &str) -> Self {
        self.protocol = Some(protocol.to_string());
        self
    }

    /// Serves `n` simulated organizations (distinct seeds: ids, keys and histories) from one
    /// daemon configured with an `[[orgs]]` block each; [`TestApp::sims`] lists them, the
    /// first being [`TestApp::sim`], whose receiver they share.
    pub fn orgs(mut self, n: usize) -> Self {
        self.orgs = n.max(1);
        self
    }

    /// Sets one key of the daemon's environment, over the defaults.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Sets several keys, as [`TestAppBuilder::env`] does one.
    pub fn envs(self, pairs: &[(&str, &str)]) -> Self {
        pairs.iter().fold(self, |builder, (k, v)| builder.env(k, v))
    }

    /// Starts the simulator, makes the state directory and writes the environment.
    pub async fn start(self) -> TestApp {
        let mut more = if self.orgs > 1 {
            openai_audit_simulator::start_orgs(self.sim, self.orgs)
                .await
                .expect("simulators start")
        } else {
            vec![sim_with(self.sim).await]
        };
        let sim = more.remove(0);
        for one in std::iter::once(&sim).chain(&more) {
            for (event_type, events) in &self.filed {
                one.org().add_compliance_events(event_type, *events);
            }
            if self.cut_compliance_files || !self.filed.is_empty() {
                one.org().cut_compliance_files();
            }
        }
        let state = tempfile::tempdir().expect("tempdir");
        let mut env = env_for(&sim, state.path());
        let config = if more.is_empty() {
            None
        } else {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("orgs.toml");
            std::fs::write(&path, orgs_file(&sim, &more, self.compliance.is_some())).expect("config written");
            env.insert("OAI_INGEST_CONFIG".into(), path.display().to_string());
            Some(dir)
        };
        if let Some(types) = &self.compliance {
            env.extend(compliance_env(&sim, types));
        }
        if let Some(protocol) = &self.protocol {
            // The generic protocols have no standard path: the URL is taken as given.
            let url = match protocol.as_str() {
                "ndjson" | "json" => sim.receiver_url(),
                _ => sim.receiver_root(),
            };
            env.insert("OAI_INGEST__SINK__PROTOCOL".into(), protocol.clone());
            env.insert("OAI_INGEST__SINK__URL".into(), url.to_string());
        }
        env.extend(self.env);
        TestApp {
            sim,
            more,
            state,
            env,
            _config: config,
        }
    }
}

/// `[[orgs]]` blocks for `first` and `more`, fast budgets, compliance on when `compliance`.
fn orgs_file(first: &Simulator, more: &[Simulator], compliance: bool) -> String {
    let blocks: String = std::iter::once(first)
        .chain(more)
        .map(|sim| {
            let block = openai_audit_simulator::orgs_toml(std::slice::from_ref(sim));
            format!(
                "{}\nrequests_per_minute = 100000\ncompliance_requests_per_minute = 100000\ncompliance = {compliance}\n\n",
                block.trim_end()
            )
        })
        .collect();
    blocks
}

/// Environment that points the daemon at `sim`, with fast timings for tests.
fn env_for(sim: &Simulator, state_dir: &Path) -> HashMap<String, String> {
    let pairs = [
        ("OPENAI_ADMIN_KEY", sim.admin_key().to_string()),
        ("OAI_INGEST__OPENAI__BASE_URL", sim.admin_base_url().to_string()),
        ("OAI_INGEST__OPENAI__ORGANIZATION_ID", sim.org_id().to_string()),
        ("OAI_INGEST__OPENAI__REQUESTS_PER_MINUTE", "100000".to_string()),
        ("OAI_INGEST__AUDIT_LOGS__INITIAL_LOOKBACK", "3h".to_string()),
        // One window per pass, so a test reads the checkpoint's one cursor; the tests of
        // parallel slices ask for them (tests/it/backfill.rs).
        ("OAI_INGEST__AUDIT_LOGS__BACKFILL_CONCURRENCY", "1".to_string()),
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

/// The compliance streams of `types` against the simulated platform, in place of the audit
/// logs.
fn compliance_env(sim: &Simulator, types: &[String]) -> HashMap<String, String> {
    let pairs = [
        ("OAI_INGEST__AUDIT_LOGS__ENABLED", "false".to_string()),
        ("OAI_INGEST__COMPLIANCE__ENABLED", "true".to_string()),
        ("OAI_INGEST__COMPLIANCE__API_KEY", sim.compliance_key().to_string()),
        (
            "OAI_INGEST__COMPLIANCE__BASE_URL",
            sim.compliance_base_url().to_string(),
        ),
        ("OAI_INGEST__COMPLIANCE__PRINCIPAL_ID", sim.workspace_id().to_string()),
        ("OAI_INGEST__COMPLIANCE__EVENT_TYPES", types.join(",")),
        ("OAI_INGEST__COMPLIANCE__POLL_INTERVAL", "200ms".to_string()),
        ("OAI_INGEST__COMPLIANCE__REQUESTS_PER_MINUTE", "100000".to_string()),
    ];
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}
