//! Start a simulator: bind, derive the keys, seed the organization, route every endpoint,
//! serve; and [`Simulator`], the handle `demo`, `simulate` and the tests hold.

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use url::Url;

use super::clock::now_micros;
use super::config::SimConfig;
use super::faults::{FaultCommand, Faults};
use super::org::Org;
use super::receiver::Receiver;
use super::shared::Shared;
use super::{activity, audit_logs, compliance, http, ids, inventory, receiver, seed};

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
        receiver: Arc::new(Receiver::new(cfg.receiver_token.clone(), cfg.receiver_file.clone())),
        admin_key,
        compliance_key,
        org_id,
        workspace_id,
        base,
        signing_secret,
        signed_url_ttl: cfg.signed_url_ttl,
        indented_pages: cfg.indented_pages,
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
    // Like the real Admin API, every answer names the key's organization.
    let admin = Router::new()
        .route("/v1/organization/audit_logs", get(audit_logs::list))
        .merge(inventory::routes())
        .layer(axum::middleware::map_response_with_state(
            shared.clone(),
            organization_header,
        ));
    Router::new()
        .merge(admin)
        .merge(compliance::routes())
        .merge(receiver::routes(shared.receiver.clone()))
        .route("/_sim/faults", post(control_faults))
        .with_state(shared)
}

/// `openai-organization: <org id>`, as the real API sends on each answer.
async fn organization_header(State(sh): State<Arc<Shared>>, mut response: Response) -> Response {
    if let Ok(value) = axum::http::HeaderValue::from_str(&sh.org_id) {
        response.headers_mut().insert("openai-organization", value);
    }
    response
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
    /// What the daemon's `sink.url` points at (ndjson or json).
    pub fn receiver_url(&self) -> Url {
        self.url("/receiver/events")
    }
    /// Where the receiver takes `protocol` (the daemon's `sink.protocol` name) at its
    /// standard path; `None` for a protocol it does not play.
    pub fn receiver_url_for(&self, protocol: &str) -> Option<Url> {
        super::receiver_wire::Wire::from_protocol(protocol).map(|w| self.url(w.path()))
    }
    /// The receiver's root: `sink.url` with no path, so the daemon appends the standard one.
    pub fn receiver_root(&self) -> Url {
        self.url("/")
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
            "simulator listening on {addr}\n  admin api:      {admin}  (Authorization: Bearer {ak})\n  compliance api: {comp}  (Authorization: Bearer {ck})\n  principal:      workspace {ws} | organization {org}\n  receiver:       {recv}  ({rt})\n  other sink protocols at their standard paths under http://{addr}: akto /api/ingestData, splunk_hec /services/collector/event, elasticsearch /_bulk, otlp /v1/logs, loki /loki/api/v1/push (each with its own auth header form)\n",
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

/// The `simulate` command for one organization: start, print the banner, serve until
/// `shutdown` resolves.
pub async fn serve_until(cfg: SimConfig, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
    super::many::serve_orgs_until(cfg, 1, shutdown).await
}
