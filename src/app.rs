//! The assembled daemon: [`App::build`] opens the state directory, loads every enabled
//! stream's checkpoint and hands each stream its typed state, and starts the pipeline;
//! [`App::run_until_stopped`] waits for a stop (signal, deadline, or the end of a `once`
//! cycle), then drains in order — streams stop, the processor and sink flush, checkpoint
//! writers save the last acknowledged state.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::compliance::ComplianceApi;
use crate::config::{OrgSettings, Settings};
use crate::guardrails::{self, Engine};
use crate::liveness::Liveness;
use crate::metrics::Metrics;
use crate::normalize::Context;
use crate::openai::AdminApi;
use crate::pipeline::guard::{self, Guard};
use crate::pipeline::share::Share;
use crate::pipeline::{Emitter, Envelope, Progress, StreamAcks, checkpoints, process, queue};
use crate::retry::Schedule;
use crate::secrets::Rotating;
use crate::server;
use crate::sink::{Sink, SinkReport};
use crate::state::{CheckpointError, CheckpointStore, StateDir, StateError};
use crate::streams::audit_logs::{AuditLogStream, Pass};
use crate::streams::compliance::{ComplianceStream, FilePlaces};
use crate::streams::inventory::{self, InventoryStream};
use crate::streams::{self, Checkpoint, Mode, Stream};
use crate::upstream::api::ClientBuildError;

/// Events waiting between the streams and the processing stage (two chunks of a page).
/// Small: the byte-bounded queue after it is where backlog is meant to sit. 64, not 256: a
/// Compliance Logs event here still holds its record's tree, and 256 of them were ~2.4 MiB
/// of the compliance benchmark's peak, for no gain in throughput (benches/README.md, "page
/// faults").
const PROCESS_QUEUE: usize = 2 * crate::pipeline::CHUNK;

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Client(#[from] ClientBuildError),
    #[error("failed to start the health/metrics server on {addr}: {source}")]
    Server {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    /// Every stream's last cycle succeeded (or, for `run`, the stop was clean).
    pub streams_ok: bool,
    /// Everything emitted was acknowledged before the end.
    pub all_delivered: bool,
    /// The drain hit its deadline and the sink was stopped mid-way.
    pub aborted: bool,
    pub sink: SinkReport,
}

impl RunReport {
    /// Exit status: `once` needs everything delivered; `run` only a clean stop.
    pub fn success(&self, mode: Mode) -> bool {
        match mode {
            Mode::Once => self.streams_ok && self.all_delivered && !self.aborted,
            Mode::Forever => true,
        }
    }
}

/// Whether every event a tracker handed out is acknowledged, whatever its state type.
type Settled = Box<dyn Fn() -> bool + Send + Sync>;

/// A running daemon.
pub struct App {
    /// Whether the streams run once or until stopped.
    mode: Mode,
    /// The stop token: cancelled by a signal, a caller or the end of `once`; streams stop
    /// fetching and the stages drain what they hold.
    stop: CancellationToken,
    /// The abort token: cancelled when the drain outlives `shutdown.timeout` or a second stop
    /// signal arrives; the sink then stops mid-batch and undelivered events stay behind their
    /// checkpoints.
    abort: CancellationToken,
    /// How long the drain may take.
    drain_timeout: Duration,
    /// One task per stream; each returns whether its last cycle succeeded.
    streams: Vec<JoinHandle<bool>>,
    /// The processing stage (guardrails, content policy, encoding).
    processor: JoinHandle<()>,
    /// The sink task.
    sink: JoinHandle<SinkReport>,
    /// One checkpoint writer per tracker; each ends once its tracker is gone.
    writers: Vec<JoinHandle<()>>,
    /// Per tracker: whether everything it handed out was acknowledged.
    settled: Vec<Settled>,
    /// The health and metrics server, if configured.
    server: Option<JoinHandle<()>>,
    /// The daemon's metrics, shared with every task.
    metrics: Metrics,
    /// Every configured secret; the ones read from files are read again on SIGHUP.
    secrets: Vec<Rotating>,
    /// The state directory, locked until the app is dropped.
    _state: StateDir,
}

/// Everything a stream needs to be spawned.
struct Wiring<'a> {
    mode: Mode,
    /// Every long-running task's sign of life, for `/healthz`.
    liveness: &'a Liveness,
    /// How long a busy task may go without progress before it counts as wedged.
    wedge_after: Duration,
    /// The least time between two progress lines of a backfill.
    progress_interval: Duration,
    tx: &'a queue::ByteSender<Envelope>,
    stop: &'a CancellationToken,
    schedule: Schedule,
    streams: Vec<JoinHandle<bool>>,
    writers: Vec<JoinHandle<()>>,
    settled: Vec<Settled>,
    /// The streams started, in order, for the start-up line.
    names: Vec<String>,
}

/// Where a tracker belongs: one organization's checkpoint store, metric labels, share of the
/// queue and log span (or the root's, for the guardrails).
#[derive(Clone)]
struct Place {
    /// The organization's checkpoints; files keep the stream's own name (`audit_logs.json`).
    store: CheckpointStore,
    /// `org-a/` before each stream's name with `[[orgs]]`; nothing for one organization.
    prefix: String,
    /// Metrics whose stream labels carry the organization.
    metrics: Metrics,
    /// The organization's share of the queue, with several organizations.
    share: Option<Share>,
    /// Every log line of the organization's tasks carries its `org_id`.
    span: tracing::Span,
}

impl Wiring<'_> {
    /// A tracker for `name` at `place` with its checkpoint writer.
    fn track<S: checkpoints::Save>(&mut self, place: &Place, name: &str) -> Arc<StreamAcks<S>> {
        let (acks, released) = StreamAcks::<S>::new(&format!("{}{name}", place.prefix));
        self.writers.push(tokio::spawn(
            checkpoints::run_writer(place.store.clone(), name.to_string(), released, place.metrics.clone())
                .instrument(place.span.clone()),
        ));
        let tracker = Arc::clone(&acks);
        self.settled.push(Box::new(move || tracker.is_settled()));
        acks
    }

    /// Loads the checkpoint of stream `name` at `place`, builds the stream from it and starts it.
    fn spawn<S: Stream>(
        &mut self,
        place: &Place,
        name: &str,
        build: impl FnOnce(S::State) -> S,
    ) -> Result<(), CheckpointError> {
        let state = S::State::load_from(&place.store, name)?.unwrap_or_default();
        place.metrics.register_stream(name);
        if let Some(at) = state.complete_up_to() {
            place.metrics.set_watermark(name, at);
        }
        let stream = build(state);
        let full_name = format!("{}{name}", place.prefix);
        self.names.push(full_name.clone());
        let acks = self.track::<S::State>(place, name);
        let progress = Progress::new(name, place.metrics.clone(), self.progress_interval);
        let beat = self.liveness.register(&full_name, self.wedge_after);
        let out =
            Emitter::new(acks, self.tx.clone(), self.stop.clone(), progress, beat).with_share(place.share.clone());
        self.streams.push(tokio::spawn(
            streams::drive(stream, out, self.mode, self.schedule, place.metrics.clone()).instrument(place.span.clone()),
        ));
        Ok(())
    }
}

impl App {
    /// Opens the state, loads checkpoints and starts every enabled stream, the processing
    /// stage, the sink and (if configured) the health/metrics server.
    pub async fn build(settings: &Settings, mode: Mode, metrics: Metrics) -> Result<Self, StartError> {
        let state = StateDir::open(&settings.state.dir)?;
        let store = state.checkpoints()?;
        let schedule = Schedule::new(settings.retry);
        let orgs = settings.organizations();

        let stop = CancellationToken::new();
        let abort = CancellationToken::new();
        let (tx, rx) = queue::byte_channel(PROCESS_QUEUE);
        let (encoded_tx, encoded_rx) = queue::byte_channel(settings.sink.max_queue_bytes);

        let liveness = Liveness::default();
        let wedge_after = wedge_after(settings);
        let mut wiring = Wiring {
            mode,
            liveness: &liveness,
            wedge_after,
            progress_interval: settings.log.progress_interval,
            tx: &tx,
            stop: &stop,
            schedule,
            streams: Vec::new(),
            writers: Vec::new(),
            settled: Vec::new(),
            names: Vec::new(),
        };
        let share = Share::per_org(orgs.len(), settings.sink.max_batch_events.get());
        for org in &orgs {
            let place = Place {
                store: state.org(org.scope.as_deref())?.checkpoints()?,
                prefix: org.scope.as_ref().map(|id| format!("{id}/")).unwrap_or_default(),
                metrics: metrics.for_org(org.scope.as_deref()),
                share: share.map(Share::new),
                span: tracing::info_span!("org", org_id = org.label()),
            };
            let _entered = place.span.clone().entered();
            spawn_org(settings, org, &state, &place, &mut wiring)?;
        }
        if !settings.orgs.is_empty() {
            note_unconfigured(&state, &orgs);
        }
        let root = Place {
            store: store.clone(),
            prefix: String::new(),
            metrics: metrics.clone(),
            share: None,
            span: tracing::Span::none(),
        };
        let guard = if settings.guardrails.enabled {
            Some(guard_for(settings, &root, &mut wiring)?)
        } else {
            None
        };
        let Wiring {
            streams,
            writers,
            settled,
            names,
            ..
        } = wiring;
        // Only emitters hold senders now, so the processor ends when the streams do.
        drop(tx);

        let processor = tokio::spawn(process::run(
            rx,
            encoded_tx,
            metrics.clone(),
            guard,
            settings.compliance.streams.content,
            liveness.register("processor", wedge_after),
        ));
        let dead_letter = state.dead_letter().limited(settings.sink.dead_letter_max_bytes);
        let sink = Sink::new(&settings.sink, schedule, dead_letter, metrics.clone())
            .map_err(ClientBuildError::Http)?
            .with_beat(liveness.register("sink", wedge_after));
        let sink = tokio::spawn(sink.run(encoded_rx, abort.clone()));
        let server = match settings.server.listen {
            Some(addr) => Some(
                server::spawn(addr, metrics.clone(), liveness.clone(), stop.clone())
                    .await
                    .map_err(|source| StartError::Server { addr, source })?,
            ),
            None => None,
        };
        tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            org_id = %orgs.iter().map(OrgSettings::label).collect::<Vec<_>>().join(","),
            streams = %names.join(","),
            sink_protocol = settings.sink.protocol.as_str(),
            sink_host = settings.sink.url.host_str().unwrap_or_default(),
            state_dir = %state.root().display(),
            "openai-audit-ingest started"
        );
        Ok(Self {
            mode,
            stop,
            abort,
            drain_timeout: settings.shutdown.timeout,
            streams,
            processor,
            sink,
            writers,
            settled,
            server,
            metrics,
            secrets: orgs
                .iter()
                .flat_map(|org| org.openai.admin_key.iter().chain(org.compliance.api.api_key.iter()))
                .chain(settings.sink.credentials.rotating())
                .cloned()
                .collect(),
            _state: state,
        })
    }

    /// The token that stops fetching; cancel it to begin a graceful stop.
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// The token that ends the drain at once; cancel it (a second stop signal) to stop without
    /// waiting for the sink. Undelivered events stay behind their checkpoints.
    pub fn abort_token(&self) -> CancellationToken {
        self.abort.clone()
    }

    /// Re-reads every `*_file` secret (SIGHUP): the clients use the new values from their
    /// next request on.
    pub fn reloader(&self) -> impl Fn() + Send + Sync + 'static {
        let secrets = self.secrets.clone();
        move || crate::secrets::reread_all(&secrets)
    }

    /// The daemon's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Runs until `stop` fires (signals, or a caller) — or, in `once` mode, until every
    /// stream finished its cycle or `deadline` passed — then drains and returns how it ended.
    pub async fn run_until_stopped(self, deadline: Option<Duration>) -> RunReport {
        let Self {
            mode,
            stop,
            abort,
            drain_timeout,
            streams,
            processor,
            mut sink,
            writers,
            settled,
            server,
            metrics: _,
            secrets: _,
            _state,
        } = self;
        let started = tokio::time::Instant::now();
        let deadline_at = deadline.map(|d| started + d);
        let sleep_until_deadline = async {
            match deadline_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };

        // Phase 1: the streams run (forever, or one cycle each).
        let streams_done = futures_util::future::join_all(streams);
        tokio::pin!(streams_done);
        let mut results = tokio::select! {
            results = &mut streams_done => Some(results),
            () = stop.cancelled() => None,
            () = sleep_until_deadline => {
                tracing::warn!("the deadline passed before every stream finished its cycle");
                None
            }
        };
        stop.cancel();
        if results.is_none() {
            results = Some(streams_done.await);
        }
        let streams_ok =
            results.unwrap_or_default().into_iter().all(|r| matches!(r, Ok(true))) || mode == Mode::Forever;

        // Phase 2: flush what was fetched, bounded by the drain timeout (and the deadline).
        let drain_until = match deadline_at {
            Some(at) => at
                .max(tokio::time::Instant::now())
                .min(tokio::time::Instant::now() + drain_timeout),
            None => tokio::time::Instant::now() + drain_timeout,
        };
        let drained = tokio::select! {
            drained = tokio::time::timeout_at(drain_until, async {
                let _ = processor.await;
                (&mut sink).await
            }) => drained.map_err(|_| "flushing took too long"),
            () = abort.cancelled() => Err("asked to stop at once"),
        };
        let (report, aborted) = match drained {
            Ok(Ok(report)) => (report, false),
            Ok(Err(join)) => {
                tracing::error!(error.message = %join, "the sink task failed");
                (SinkReport::default(), true)
            }
            Err(why) => {
                tracing::warn!(
                    timeout_s = drain_timeout.as_secs(),
                    "{why}; stopping the sink (undelivered events stay behind the checkpoints and are fetched again on the next start)"
                );
                abort.cancel();
                (sink.await.unwrap_or_default(), true)
            }
        };

        // Phase 3: every token is gone now; the writers save the last released states.
        let all_delivered = settled.iter().all(|is_settled| is_settled());
        drop(settled);
        for writer in writers {
            let _ = writer.await;
        }
        if let Some(server) = server {
            server.abort();
        }
        // The most memory the run needed, for whoever sizes the container.
        let peak_rss_bytes = crate::metrics::process::read().peak_resident_bytes.map(|b| b as u64);
        tracing::info!(
            delivered = report.delivered,
            dead_lettered = report.dead_lettered,
            all_delivered,
            aborted,
            peak_rss_bytes,
            "stopped"
        );
        RunReport {
            streams_ok,
            all_delivered,
            aborted,
            sink: report,
        }
    }
}

/// Starts one organization's streams: its own Admin API and Compliance clients (so its own
/// request budgets, as OpenAI counts per key), its own checkpoints and spool.
fn spawn_org(
    settings: &Settings,
    org: &OrgSettings,
    state: &StateDir,
    place: &Place,
    wiring: &mut Wiring<'_>,
) -> Result<(), StartError> {
    let metrics = &place.metrics;
    let ctx = Context {
        org_id: org.openai.organization_id.clone(),
    };
    if org.openai.organization_id.is_none() && (org.audit_logs.enabled || org.inventory.enabled) {
        tracing::warn!(
            "openai.organization_id is not set: event ids use `_` for the organization, so they are not unique across organizations"
        );
    }
    // One Admin API client for every stream that reads it: one shared request budget.
    let admin = if org.audit_logs.enabled || org.inventory.enabled {
        Some(AdminApi::with_background_share(
            &org.openai,
            settings.retry,
            metrics.clone(),
            org.inventory.budget_share,
        )?)
    } else {
        None
    };
    if let (true, Some(client)) = (org.audit_logs.enabled, &admin) {
        let mut passes = vec![Pass::Normal];
        if org.audit_logs.tenant_events {
            passes.push(Pass::Tenant);
        }
        for pass in passes {
            wiring.spawn(place, pass.name(), |saved| {
                AuditLogStream::new(
                    pass,
                    client.clone(),
                    org.audit_logs.clone(),
                    ctx.clone(),
                    saved,
                    metrics.clone(),
                )
            })?;
        }
    }
    if let (true, Some(client)) = (org.inventory.enabled, &admin) {
        let snapshots = state.org(org.scope.as_deref())?.inventory_snapshots();
        wiring.spawn(place, inventory::NAME, |saved| {
            InventoryStream::new(
                client.background(),
                org.inventory.clone(),
                ctx.clone(),
                saved,
                metrics.clone(),
                snapshots.clone(),
            )
        })?;
    }
    if org.compliance.enabled {
        // One client for every event type: the per-route budget is the platform's, shared.
        let client = ComplianceApi::new(&org.compliance.api, settings.retry, metrics.clone())?;
        let places = FilePlaces {
            spool: state.org(org.scope.as_deref())?.spool(),
            dead_letter: state.dead_letter().limited(settings.sink.dead_letter_max_bytes),
        };
        for event_type in &org.compliance.streams.event_types {
            if crate::normalize::compliance_mapping(event_type, None).is_none() {
                // The platform adds types without notice; collecting one the day it appears
                // beats refusing to start. Its records travel as `other` until mapped.
                tracing::warn!(
                    event_type = %event_type,
                    "compliance.event_types names a type this version does not know; it is collected and shipped with category `other`"
                );
            }
            wiring.spawn(place, &ComplianceStream::name_of(event_type), |saved| {
                ComplianceStream::new(
                    event_type,
                    client.clone(),
                    org.compliance.streams.clone(),
                    places.clone(),
                    saved,
                    metrics.clone(),
                )
            })?;
        }
    }
    Ok(())
}

/// One line per organization whose directory is there but whose `[[orgs]]` block is not
/// (its state stays untouched), and one for checkpoints a single-organization configuration
/// left at the root.
fn note_unconfigured(state: &StateDir, orgs: &[OrgSettings]) {
    let configured: Vec<&str> = orgs.iter().filter_map(|o| o.scope.as_deref()).collect();
    for dir in state.unconfigured_orgs(&configured) {
        tracing::info!(
            state = %dir.display(),
            "an organization is no longer configured; its state stays there untouched (add its [[orgs]] block again to resume it, or delete the directory)"
        );
    }
    if state.has_single_org_checkpoints(&[guard::STREAM]) {
        tracing::warn!(
            state = %state.root().join("checkpoints").display(),
            "checkpoints of a single-organization configuration stay untouched and unused under [[orgs]]; to carry them over, stop the daemon and move them into <state.dir>/<org_id>/checkpoints/ of their organization"
        );
    }
}

/// How long a busy task may go without progress before `/healthz` calls the process wedged:
/// far longer than any one request, retry wait or compliance download may take.
fn wedge_after(settings: &Settings) -> Duration {
    let slowest_wait = [
        settings.openai.timeout,
        settings.sink.timeout,
        settings.retry.max_backoff,
    ]
    .into_iter()
    .max()
    .unwrap_or_default();
    [
        Duration::from_secs(15 * 60),
        slowest_wait * 10,
        settings.compliance.streams.download_timeout + Duration::from_secs(5 * 60),
    ]
    .into_iter()
    .max()
    .unwrap_or_default()
}

/// The guardrails engine resumed from its saved state, with its own acknowledgement tracker
/// and checkpoint writer (the rule state is saved once the finding events before it are
/// acknowledged).
fn guard_for(settings: &Settings, root: &Place, wiring: &mut Wiring<'_>) -> Result<Guard, StartError> {
    let saved = root.store.load::<guardrails::State>(guard::STREAM)?;
    let rules = &settings.guardrails.rules;
    for (rule, why) in &rules.inactive {
        tracing::info!(rule = %rule, reason = %why, "guardrails rule inactive");
    }
    let engine = Engine::new(Arc::clone(rules), saved).with_budget(settings.guardrails.max_state_bytes);
    let acks = wiring.track::<guard::Snapshot>(root, guard::STREAM);
    tracing::info!(rules = rules.rules.len(), "guardrails enabled");
    Ok(Guard::new(engine, acks, root.store.clone()))
}
