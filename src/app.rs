//! The assembled daemon: [`App::build`] opens the state directory, loads every enabled
//! stream's checkpoint and starts the pipeline; [`App::run_until_stopped`] waits for a stop
//! (signal, deadline, or the end of a `once` cycle), then drains in order — streams stop,
//! the processor and sink flush, checkpoint writers save the last acknowledged state.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::checkpoint::{self, CheckpointError, CheckpointStore};
use crate::compliance::{ComplianceClient, ComplianceStream};
use crate::config::Settings;
use crate::metrics::Metrics;
use crate::normalize::Context;
use crate::openai::audit_logs::AuditLogStream;
use crate::openai::client::{AdminClient, BuildError};
use crate::openai::inventory::InventoryStream;
use crate::pipeline::stream::{self, Mode, Stream};
use crate::pipeline::{Emitter, StreamAcks, process, queue};
use crate::retry::Schedule;
use crate::sink::{DeadLetter, Sink, SinkReport};
use crate::{atomic_file, guardrails, server};

/// Events waiting between the streams and the processing stage. Small: the byte-bounded
/// queue after it is where backlog is meant to sit.
const PROCESS_QUEUE: usize = 256;

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("failed to prepare the state directory {path}: {source}")]
    StateDir { path: PathBuf, source: std::io::Error },
    #[error(
        "another openai-audit-ingest is already using the state directory {0} (two instances \
         would deliver everything twice and race on checkpoints); stop it or set a different state.dir"
    )]
    Locked(PathBuf),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Client(#[from] BuildError),
    #[error("failed to start the health/metrics server on {addr}: {source}")]
    Server {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Every stream's last cycle succeeded (or, for `run`, the stop was clean).
    pub streams_ok: bool,
    /// Everything emitted was acknowledged before the end.
    pub all_delivered: bool,
    /// The drain hit its deadline and the sink was stopped mid-way.
    pub aborted: bool,
    pub sink: SinkReport,
}

impl Outcome {
    /// Exit status: `once` needs everything delivered; `run` only a clean stop.
    pub fn success(&self, mode: Mode) -> bool {
        match mode {
            Mode::Once => self.streams_ok && self.all_delivered && !self.aborted,
            Mode::Forever => true,
        }
    }
}

/// A running daemon.
pub struct App {
    mode: Mode,
    stop: CancellationToken,
    abort: CancellationToken,
    drain_timeout: Duration,
    streams: Vec<JoinHandle<bool>>,
    processor: JoinHandle<()>,
    sink: JoinHandle<SinkReport>,
    writers: Vec<JoinHandle<()>>,
    trackers: Vec<Arc<StreamAcks>>,
    server: Option<JoinHandle<()>>,
    metrics: Metrics,
    _lock: File,
}

/// Everything a stream needs to be spawned.
struct Wiring<'a> {
    mode: Mode,
    store: &'a CheckpointStore,
    tx: &'a mpsc::Sender<Envelope>,
    stop: &'a CancellationToken,
    schedule: Schedule,
    metrics: &'a Metrics,
    streams: Vec<JoinHandle<bool>>,
    writers: Vec<JoinHandle<()>>,
    trackers: Vec<Arc<StreamAcks>>,
}

use crate::pipeline::Envelope;

impl Wiring<'_> {
    fn spawn<S: Stream>(&mut self, stream: S) {
        let name = stream.name().to_string();
        let (acks, released) = StreamAcks::new(&name);
        self.writers.push(tokio::spawn(checkpoint::run_writer(
            self.store.clone(),
            name,
            released,
            self.metrics.clone(),
        )));
        let out = Emitter::new(Arc::clone(&acks), self.tx.clone(), self.stop.clone());
        self.trackers.push(acks);
        self.streams.push(tokio::spawn(stream::drive(
            stream,
            out,
            self.mode,
            self.schedule,
            self.metrics.clone(),
        )));
    }
}

impl App {
    /// Opens the state, loads checkpoints and starts every enabled stream, the processing
    /// stage, the sink and (if configured) the health/metrics server.
    pub async fn build(settings: &Settings, mode: Mode, metrics: Metrics) -> Result<Self, StartError> {
        let state_dir = &settings.state.dir;
        let lock = lock_state_dir(state_dir)?;
        let store = CheckpointStore::open(state_dir)?;
        let schedule = Schedule::new(settings.retry);
        let ctx = Context {
            org_id: settings.openai.organization_id.clone(),
        };
        if settings.openai.organization_id.is_none() && (settings.audit_logs.enabled || settings.inventory.enabled) {
            tracing::warn!(
                "openai.organization_id is not set: event ids use `_` for the organization, so they are not unique across organizations"
            );
        }

        let stop = CancellationToken::new();
        let abort = CancellationToken::new();
        let (tx, rx) = mpsc::channel(PROCESS_QUEUE);
        let (encoded_tx, encoded_rx) = queue::byte_channel(settings.sink.max_queue_bytes);

        let mut wiring = Wiring {
            mode,
            store: &store,
            tx: &tx,
            stop: &stop,
            schedule,
            metrics: &metrics,
            streams: Vec::new(),
            writers: Vec::new(),
            trackers: Vec::new(),
        };
        // One Admin API client for every stream that reads it: one shared request budget.
        let admin = if settings.audit_logs.enabled || settings.inventory.enabled {
            Some(AdminClient::new(&settings.openai, settings.retry, metrics.clone())?)
        } else {
            None
        };
        if let (true, Some(client)) = (settings.audit_logs.enabled, &admin) {
            let passes = if settings.audit_logs.tenant_events {
                vec![false, true]
            } else {
                vec![false]
            };
            for tenant_only in passes {
                let stream = AuditLogStream::new(
                    tenant_only,
                    client.clone(),
                    settings.audit_logs.clone(),
                    ctx.clone(),
                    &store,
                    metrics.clone(),
                )?;
                wiring.spawn(stream);
            }
        }
        if let (true, Some(client)) = (settings.inventory.enabled, &admin) {
            wiring.spawn(InventoryStream::new(
                client.clone(),
                settings.inventory.clone(),
                ctx.clone(),
                &store,
                metrics.clone(),
            )?);
        }
        if settings.compliance.enabled {
            // One client for every event type: the per-route budget is the platform's, shared.
            let client = ComplianceClient::new(
                &settings.compliance,
                settings.openai.timeout,
                settings.retry,
                metrics.clone(),
            )?;
            for event_type in &settings.compliance.event_types {
                let stream = ComplianceStream::new(
                    event_type,
                    client.clone(),
                    settings.compliance.clone(),
                    state_dir,
                    &store,
                    metrics.clone(),
                )?;
                wiring.spawn(stream);
            }
        }
        let guard = if settings.guardrails.enabled {
            Some(guardrails_hook(settings, &store, &metrics, &mut wiring)?)
        } else {
            None
        };
        let Wiring {
            streams,
            writers,
            trackers,
            ..
        } = wiring;
        // Only emitters hold senders now, so the processor ends when the streams do.
        drop(tx);

        let processor = tokio::spawn(process::run(
            rx,
            encoded_tx,
            metrics.clone(),
            guard,
            settings.compliance.content,
        ));
        let sink = Sink::new(&settings.sink, schedule, DeadLetter::new(state_dir), metrics.clone())
            .map_err(BuildError::Http)?;
        let sink = tokio::spawn(sink.run(encoded_rx, abort.clone()));
        let server = match settings.server.listen {
            Some(addr) => Some(
                server::spawn(addr, metrics.clone(), stop.clone())
                    .await
                    .map_err(|source| StartError::Server { addr, source })?,
            ),
            None => None,
        };
        tracing::info!(streams = streams.len(), state_dir = %state_dir.display(), sink = %redacted_url(&settings.sink.url), "pipeline started");
        Ok(Self {
            mode,
            stop,
            abort,
            drain_timeout: settings.shutdown.timeout,
            streams,
            processor,
            sink,
            writers,
            trackers,
            server,
            metrics,
            _lock: lock,
        })
    }

    /// The token that stops fetching; cancel it to begin a graceful stop.
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// The daemon's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Runs until `stop` fires (signals, or a caller) — or, in `once` mode, until every
    /// stream finished its cycle or `deadline` passed — then drains and returns how it ended.
    pub async fn run_until_stopped(self, deadline: Option<Duration>) -> Outcome {
        let Self {
            mode,
            stop,
            abort,
            drain_timeout,
            streams,
            processor,
            mut sink,
            writers,
            trackers,
            server,
            metrics: _,
            _lock,
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
        let drained = tokio::time::timeout_at(drain_until, async {
            let _ = processor.await;
            (&mut sink).await
        })
        .await;
        let (report, aborted) = match drained {
            Ok(Ok(report)) => (report, false),
            Ok(Err(join)) => {
                tracing::error!(error = %join, "the sink task failed");
                (SinkReport::default(), true)
            }
            Err(_) => {
                tracing::warn!(
                    timeout_s = drain_timeout.as_secs(),
                    "flushing took too long; stopping the sink (undelivered events stay behind the checkpoints and are fetched again on the next start)"
                );
                abort.cancel();
                (sink.await.unwrap_or_default(), true)
            }
        };

        // Phase 3: every token is gone now; the writers save the last released states.
        let all_delivered = trackers.iter().all(|t| t.is_settled());
        drop(trackers);
        for writer in writers {
            let _ = writer.await;
        }
        if let Some(server) = server {
            server.abort();
        }
        tracing::info!(
            delivered = report.delivered,
            dead_lettered = report.dead_lettered,
            all_delivered,
            aborted,
            "stopped"
        );
        Outcome {
            streams_ok,
            all_delivered,
            aborted,
            sink: report,
        }
    }
}

/// The guardrails engine resumed from its saved state, with its own acknowledgement tracker
/// and checkpoint writer (the rule state is saved once the finding events before it are
/// acknowledged).
fn guardrails_hook(
    settings: &Settings,
    store: &CheckpointStore,
    metrics: &Metrics,
    wiring: &mut Wiring<'_>,
) -> Result<guardrails::Hook, StartError> {
    let saved = store.load::<guardrails::State>(guardrails::hook::STREAM)?;
    let rules = &settings.guardrails.rules;
    for (rule, why) in &rules.inactive {
        tracing::info!(rule = %rule, reason = %why, "guardrails rule inactive");
    }
    let engine = guardrails::Engine::new(Arc::clone(rules), saved);
    let (acks, released) = StreamAcks::new(guardrails::hook::STREAM);
    wiring.writers.push(tokio::spawn(checkpoint::run_writer(
        store.clone(),
        guardrails::hook::STREAM.to_string(),
        released,
        metrics.clone(),
    )));
    wiring.trackers.push(Arc::clone(&acks));
    tracing::info!(rules = rules.rules.len(), "guardrails enabled");
    Ok(guardrails::Hook::new(engine, acks))
}

/// Takes the state directory's lock so two instances never share checkpoints.
fn lock_state_dir(dir: &Path) -> Result<File, StartError> {
    atomic_file::ensure_private_dir(dir).map_err(|source| StartError::StateDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let path = dir.join("lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| StartError::StateDir {
            path: path.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StartError::Locked(dir.to_path_buf())),
        Err(std::fs::TryLockError::Error(source)) => Err(StartError::StateDir { path, source }),
    }
}

/// The sink URL without credentials or query, for logs.
pub fn redacted_url(url: &url::Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.to_string()
}
