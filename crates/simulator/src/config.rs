//! [`SimConfig`]: how to run a simulator (listen address, seed, activity, history, file
//! cutting, keys, receiver). A leaf, read by seeding and by the server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::size::OrgSize;

/// How to run a simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Where to listen; port 0 picks a free one (tests run in parallel).
    pub listen: SocketAddr,
    /// Seeds the organization, ids, keys and activity: same seed, same org.
    pub seed: u64,
    /// Background activity rate; 0 means the org only changes when a test changes it.
    pub events_per_second: f64,
    /// How far back the pre-generated history reaches.
    pub history: Duration,
    /// How many activities the history holds (spread over `history`, plus fixed scenarios).
    pub history_events: usize,
    /// Whether the history's compliance events are kept (cut into files). A benchmark of
    /// the audit log alone turns this off: the history's activities (and so its audit log)
    /// stay the same, but a million-record history then holds no compliance files.
    pub history_compliance: bool,
    /// Compliance files are cut on boundaries of this much wall time.
    pub compliance_file_interval: Duration,
    /// Upper bound on events per compliance file.
    pub compliance_file_max_events: usize,
    /// Chance that an event of one file reappears in the next (at-least-once delivery).
    pub compliance_duplicate_probability: f64,
    /// Lifetime of signed download URLs.
    pub signed_url_ttl: Duration,
    /// Admin key to accept; derived from the seed when unset.
    pub admin_key: Option<String>,
    /// Compliance key to accept; derived from the seed when unset.
    pub compliance_key: Option<String>,
    /// When set, the receiver demands `Authorization: Bearer <token>`.
    pub receiver_token: Option<String>,
    /// When set, every received event is appended to this NDJSON file.
    pub receiver_file: Option<PathBuf>,
    /// Grow the organization to this many users and projects (benchmarks at enterprise scale).
    pub size: OrgSize,
    /// Answer audit-log pages in indented JSON, as OpenAI's API does, instead of on one line
    /// (cheaper to serve; what the tests and the default benchmarks use).
    pub indented_pages: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            seed: 42,
            events_per_second: 0.0,
            history: Duration::from_secs(2 * 3600),
            history_events: 300,
            history_compliance: true,
            compliance_file_interval: Duration::from_secs(60),
            compliance_file_max_events: 1000,
            compliance_duplicate_probability: 0.03,
            signed_url_ttl: Duration::from_secs(300),
            admin_key: None,
            compliance_key: None,
            receiver_token: None,
            receiver_file: None,
            size: OrgSize::default(),
            indented_pages: false,
        }
    }
}
