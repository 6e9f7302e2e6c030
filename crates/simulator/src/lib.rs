//! A faithful in-process simulator of OpenAI's Admin API (audit logs, inventory) and the
//! ChatGPT Compliance Logs Platform, plus a receiver standing in for the ingestion service.
//! The daemon's integration tests, `demo`, `simulate` and benchmarks run against it. It is a
//! crate of its own in the workspace and depends on nothing in the daemon: whether the daemon's
//! wire types read what it serves is checked on the daemon's side (`tests/it/conformance.rs`).
//!
//! ## Layout
//!
//! - `lib.rs`: [`SimConfig`], [`start`], the [`Simulator`] handle, routes, control endpoints.
//! - `org.rs` / `seed.rs` / `mutate.rs`: the seeded organization, its initial inventory, and
//!   the one mutation path that updates inventory and appends the audit event together.
//! - `activity.rs`: pre-generated history and background activity (audit + compliance).
//! - `audit_logs.rs`, `inventory.rs`, `compliance.rs`: the endpoints; `logfiles.rs` cuts
//!   compliance events into files, `records.rs` shapes them.
//! - `receiver.rs`: the sink's counterpart. `faults.rs`: run-time fault switches.
//! - `auth.rs`, `http.rs`, `geo.rs`: bearer checks, shared HTTP plumbing, network data.
//! - `ids.rs`, `clock.rs`: seeded ids and keys; wall time and its ISO 8601 forms.
//!
//! ## URL layout (one listener)
//!
//! `/v1/organization/…` Admin API · `/chatgpt/v1/compliance/…` Compliance Logs Platform ·
//! `/signed/{token}` file downloads · `/receiver/events` the sink · `/_sim/…` control.
//!
//! ## Control
//!
//! In process: [`Simulator::faults`] ([`Faults::inject`] for the next N responses,
//! [`Faults::set_always`] until cleared), [`Simulator::receiver`]
//! ([`Receiver::set_response`]) and [`Simulator::org`] (mutations that append audit events).
//! Over HTTP, for an outside process: `POST /_sim/faults` with a [`FaultCommand`]
//! (`{"family":"audit_logs","fault":{"kind":"too_many_requests","retry_after_secs":2},"times":1}`
//! or `{"clear":true}`), `POST /_sim/receiver/script` with a [`ReceiverScript`]
//! (`{"kind":"next","status":503,"times":2}`), `GET /_sim/receiver/stats`.
//!
//! ## Deliberate differences from the real APIs
//!
//! - One host serves everything; the signed download URL is on the same host (real: a
//!   storage host). It still rejects any `Authorization` header, like a pre-signed URL does.
//! - Audit-log cursors that name an unknown id get a 400 (the real behaviour is undocumented).
//!   Passing both `after` and `before` is a 400 too.
//! - The spec states no order for audit logs; like live data, the simulator lists newest
//!   first, ties broken by id descending.
//! - Compliance files are cut per event type every `compliance_file_interval` of wall time
//!   (real: roughly hourly), chunked at `compliance_file_max_events`; `end_time` is strictly
//!   increasing per type. The same files are served for the workspace and the organization
//!   principal, and error bodies use OpenAI's error shape (the real shape is unknown).
//!   Compliance `limit` defaults to 100 when absent (undocumented upstream).
//! - Inventory lists are ordered by creation; `after` naming an id that was deleted still
//!   continues from where it was. `owner_project_access` defaults to "any".
//! - Control endpoints under `/_sim/` need no key: the simulator listens on loopback.
//! - The signed URL answers 403 with a short text body (object stores answer XML).
//! - Fault responses carry `x-sim-fault: 1` so a failing test can tell injected from real.
//! - Keys are derived from the seed unless given, so a seeded run is reproducible; the
//!   download-URL signing secret is random per run.

mod activity;
mod audit_logs;
mod auth;
mod clock;
mod compliance;
mod faults;
mod geo;
mod http;
mod ids;
mod inventory;
mod logfiles;
mod mutate;
mod org;
mod receiver;
mod records;
mod seed;

#[cfg(test)]
mod testutil;

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use url::Url;

use clock::now_micros;

pub use audit_logs::is_tenant_scoped;
pub use compliance::COMPLIANCE_EVENT_TYPES;
pub use faults::{Family, Fault, FaultCommand, Faults};
pub use org::Org;
pub use receiver::{ReceivedBatch, ReceivedRequest, Receiver, ReceiverScript};

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
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            seed: 42,
            events_per_second: 0.0,
            history: Duration::from_secs(2 * 3600),
            history_events: 300,
            compliance_file_interval: Duration::from_secs(60),
            compliance_file_max_events: 1000,
            compliance_duplicate_probability: 0.03,
            signed_url_ttl: Duration::from_secs(300),
            admin_key: None,
            compliance_key: None,
            receiver_token: None,
            receiver_file: None,
        }
    }
}

/// State every handler shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub org: Org,
    pub faults: Faults,
    pub receiver: Receiver,
    pub admin_key: String,
    pub compliance_key: String,
    /// Fixed at seeding; kept outside the org lock so accessors can hand out `&str`.
    pub org_id: String,
    pub workspace_id: String,
    /// `http://127.0.0.1:PORT`, for absolute `Location` headers.
    pub base: Url,
    /// Signs download URLs; random per run so URLs from an old run never verify.
    pub signing_secret: String,
    pub signed_url_ttl: Duration,
}

/// A running simulator. Dropping it without [`Simulator::shutdown`] leaves the server
/// running until the runtime ends.
#[derive(Debug)]
pub struct Simulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// Bind, seed the organization, spawn the server (and the activity task), return at once.
pub async fn start(cfg: SimConfig) -> std::io::Result<Simulator> {
    let listener = tokio::net::TcpListener::bind(cfg.listen).await?;
    let addr = listener.local_addr()?;
    let base =
        Url::parse(&format!("http://{addr}")).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let mut key_rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x5eed_cafe);
    let admin_key = cfg
        .admin_key
        .clone()
        .unwrap_or_else(|| format!("sk-admin-{}", ids::alnum(&mut key_rng, 48)));
    let compliance_key = cfg
        .compliance_key
        .clone()
        .unwrap_or_else(|| format!("sk-admin-cmp-{}", ids::alnum(&mut key_rng, 44)));
    let signing_secret = ids::alnum(&mut ChaCha8Rng::from_os_rng(), 32);
    let state = seed::build(&cfg, now_micros());
    let (org_id, workspace_id) = (state.org_id.clone(), state.workspace_id.clone());
    let shared = Arc::new(Shared {
        org: Org {
            state: Mutex::new(state),
        },
        faults: Faults::default(),
        receiver: Receiver::new(cfg.receiver_token.clone(), cfg.receiver_file.clone()),
        admin_key,
        compliance_key,
        org_id,
        workspace_id,
        base,
        signing_secret,
        signed_url_ttl: cfg.signed_url_ttl,
    });
    let (stop, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    let app = router(shared.clone());
    let mut server_stop = stop_rx.clone();
    tasks.push(tokio::spawn(async move {
        let shutdown = async move {
            // Either a `true` or a dropped sender ends the server.
            let _ = server_stop.wait_for(|s| *s).await;
        };
        if let Err(error) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
            tracing::error!(%error, "simulator server failed");
        }
    }));
    if cfg.events_per_second > 0.0 {
        tasks.push(tokio::spawn(activity::run(
            shared.clone(),
            cfg.events_per_second,
            stop_rx,
        )));
    }
    Ok(Simulator {
        shared,
        addr,
        stop,
        tasks,
    })
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/organization/audit_logs", get(audit_logs::list))
        .merge(inventory::routes())
        .merge(compliance::routes())
        .route(
            "/receiver/events",
            post(receiver::ingest).layer(DefaultBodyLimit::max(256 * 1024 * 1024)),
        )
        .route("/_sim/faults", post(control_faults))
        .route("/_sim/receiver/stats", get(receiver::stats))
        .route("/_sim/receiver/script", post(receiver::script))
        .with_state(shared)
}

async fn control_faults(State(sh): State<Arc<Shared>>, axum::Json(cmd): axum::Json<FaultCommand>) -> Response {
    sh.faults.apply(cmd);
    http::json_response(StatusCode::OK, &serde_json::json!({"ok": true}))
}

impl Simulator {
    fn url(&self, path: &str) -> Url {
        let mut u = self.shared.base.clone();
        u.set_path(path);
        u
    }
    /// What the daemon's `openai.base_url` points at.
    pub fn admin_base_url(&self) -> Url {
        self.url("/v1")
    }
    /// What the daemon's `compliance.base_url` points at.
    pub fn compliance_base_url(&self) -> Url {
        self.url("/chatgpt/v1")
    }
    /// What the daemon's `sink.url` points at.
    pub fn receiver_url(&self) -> Url {
        self.url("/receiver/events")
    }
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
    pub fn admin_key(&self) -> &str {
        &self.shared.admin_key
    }
    pub fn compliance_key(&self) -> &str {
        &self.shared.compliance_key
    }
    /// The token the receiver demands, if any.
    pub fn receiver_token(&self) -> Option<&str> {
        self.shared.receiver.token()
    }
    /// The `org-…` id: audit-log labels and the `organizations` compliance principal.
    pub fn org_id(&self) -> &str {
        &self.shared.org_id
    }
    /// The ChatGPT workspace UUID: the `workspaces` compliance principal.
    pub fn workspace_id(&self) -> &str {
        &self.shared.workspace_id
    }
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }
    pub fn receiver(&self) -> &Receiver {
        &self.shared.receiver
    }
    pub fn org(&self) -> &Org {
        &self.shared.org
    }

    /// The start-up banner: URLs and the keys each accepts. These are simulator keys, made
    /// to be pasted into a test config, so printing them is the point.
    pub fn banner(&self) -> String {
        format!(
            "simulator listening on {addr}\n  admin api:      {admin}  (Authorization: Bearer {ak})\n  compliance api: {comp}  (Authorization: Bearer {ck})\n  principal:      workspace {ws} | organization {org}\n  receiver:       {recv}  ({rt})\n",
            addr = self.addr,
            admin = self.admin_base_url(),
            ak = self.admin_key(),
            comp = self.compliance_base_url(),
            ck = self.compliance_key(),
            ws = self.workspace_id(),
            org = self.org_id(),
            recv = self.receiver_url(),
            rt = self.receiver_token().map_or_else(
                || "no token required".to_owned(),
                |t| format!("Authorization: Bearer {t}")
            ),
        )
    }

    /// Write [`Simulator::banner`] to stdout.
    pub fn print_banner(&self) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        out.write_all(self.banner().as_bytes())?;
        out.flush()
    }

    /// Stop the server and the activity task, and wait for both.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// The `simulate` command: start, print the banner, serve until `shutdown` resolves.
pub async fn serve_until(cfg: SimConfig, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
    let sim = start(cfg).await?;
    sim.print_banner()?;
    shutdown.await;
    sim.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::testutil::{admin, client, sim};

    #[tokio::test]
    async fn the_banner_names_every_url_and_key() {
        let sim = sim().await;
        let banner = sim.banner();
        for needle in [
            sim.admin_base_url().to_string(),
            sim.compliance_base_url().to_string(),
            sim.receiver_url().to_string(),
            sim.admin_key().to_owned(),
            sim.compliance_key().to_owned(),
            sim.workspace_id().to_owned(),
        ] {
            assert!(banner.contains(&needle), "banner lacks {needle}: {banner}");
        }
        assert!(sim.admin_base_url().as_str().ends_with("/v1"));
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn faults_can_be_driven_through_the_control_endpoint() {
        let sim = sim().await;
        let resp = client()
            .post(format!("http://{}/_sim/faults", sim.local_addr()))
            .json(&serde_json::json!({"family": "inventory", "fault": {"kind": "status", "status": 502}, "times": 1}))
            .send()
            .await
            .expect("sent");
        assert_eq!(resp.status().as_u16(), 200);
        assert_eq!(admin(&sim, "users").await.0, 502);
        assert_eq!(admin(&sim, "users").await.0, 200);
        let client = client();
        let scripted = client
            .post(format!("http://{}/_sim/receiver/script", sim.local_addr()))
            .json(&serde_json::json!({"kind": "next", "status": 503, "times": 1}))
            .send()
            .await
            .expect("sent");
        assert_eq!(scripted.status().as_u16(), 200);
        let post = || {
            client
                .post(sim.receiver_url())
                .header("content-type", "application/x-ndjson")
                .body("{\"id\":\"z\"}\n")
                .send()
        };
        assert_eq!(post().await.expect("sent").status().as_u16(), 503);
        assert_eq!(post().await.expect("sent").status().as_u16(), 200);
        sim.shutdown().await;
    }
}
