//! The `inventory` stream: every `inventory.interval` (and once at start) a run compares the
//! organization with the previous snapshot and emits observations and changes; the new
//! snapshot becomes current only once every event of the run is acknowledged. A full run
//! (at least every `inventory.full_interval`) lists everything and adds one snapshot event
//! per kind and the derived signals; the runs between list only what the audit log named
//! since the run before ([`plan`], [`audit`]).
//!
//! Memory does not grow with the organization: the previous snapshot is an [`index::Index`]
//! of 32 bytes an object, the objects' fields live in snapshot files under the state
//! directory ([`store`]), lists are read and compared a page at a time ([`run`]).
//!
//! Layout: [`kind`] (what is listed and compared), [`fetch`] (one list, page by page),
//! [`plan`] (audit events → lists, pure) and [`audit`] (reading the audit log for it),
//! [`diff`] and [`signals`] (pure), [`events`] (their normalized events, pure), [`index`] and
//! [`store`] (the snapshot in memory and on disk), [`run`] (one run, resumable), this file
//! (the stream and its state).

pub(crate) mod audit;
pub(crate) mod diff;
pub(crate) mod events;
pub(crate) mod fetch;
pub(crate) mod index;
pub(crate) mod kind;
pub(crate) mod plan;
pub(crate) mod run;
pub(crate) mod signals;
pub(crate) mod store;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};

use self::diff::KindSnapshot;
use self::index::{Index, Slot};
use self::kind::Kind;
use self::run::{Run, RunProgress};
use self::store::Record;
use super::{Checkpoint, CycleError, CycleReport, Stream};
use crate::metrics::Metrics;
use crate::normalize::Context;
use crate::openai::AdminApi;
use crate::pipeline::Emitter;
use crate::state::SnapshotFiles;

/// Stream name.
pub const NAME: &str = "inventory";

/// Signal name → subject → hash of the condition last reported.
pub type Signals = BTreeMap<String, BTreeMap<String, String>>;

/// What the inventory checkpoint holds. The objects themselves are in the snapshot file of
/// `generation`; this stays small, so the checkpoint marks a run leaves after every list
/// cost little.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InventoryState {
    /// The last completed run, whose snapshot file is current; the next run is
    /// `generation + 1`, so a run replayed after a crash reuses the snapshot ids of the run
    /// it repeats.
    #[serde(default)]
    pub generation: u64,
    /// Kinds listed completely at least once. Until then a difference is an observation,
    /// not an addition: an object missing from a partial first listing was not "added" later.
    #[serde(default)]
    pub baselined: BTreeSet<String>,
    /// What the signals last reported; shared, not copied, by the marks of a run.
    #[serde(default)]
    pub signals: Arc<Signals>,
    /// The run in progress, to resume after a crash or a stop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunProgress>,
    /// When the last run began: the next run reads the audit log from there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<DateTime<Utc>>,
    /// When the last full run began; the next one is due `inventory.full_interval` later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_full: Option<DateTime<Utc>>,
    /// Checkpoints written before the snapshot moved to files held every object here; read
    /// once, written to the snapshot file of `generation`, never written back.
    #[serde(default, skip_serializing)]
    pub kinds: BTreeMap<String, KindSnapshot>,
}

impl Checkpoint for InventoryState {}

/// The inventory stream's settings (`[inventory]`).
#[derive(Debug, Clone)]
pub struct InventorySettings {
    pub enabled: bool,
    pub interval: Duration,
    /// A full listing at least this often; the runs between re-read only the scopes the
    /// audit log named since the run before (`inventory.full_interval`; 0: every run full).
    pub full_interval: Duration,
    /// A key unused for longer than this is reported as stale.
    pub stale_key_days: u32,
    /// The share (0 < share ≤ 1) of the Admin API request budget a run may use; the audit
    /// logs are served first whatever it is (`inventory.budget_share`).
    pub budget_share: f64,
}

/// The organization inventory.
#[derive(Debug)]
pub struct InventoryStream {
    client: AdminApi,
    settings: InventorySettings,
    ctx: Context,
    state: InventoryState,
    metrics: Metrics,
    files: SnapshotFiles,
    /// The index of the snapshot of `state.generation`, once read.
    index: Option<Index>,
    /// The generation the checkpoint on disk names: its snapshot file is kept until a newer
    /// one is saved.
    saved_generation: u64,
}

impl InventoryStream {
    /// The stream, resuming from `state` (its checkpoint, or the default on a first start),
    /// with its snapshot files in `files`.
    pub fn new(
        client: AdminApi,
        settings: InventorySettings,
        ctx: Context,
        state: InventoryState,
        metrics: Metrics,
        files: SnapshotFiles,
    ) -> Self {
        let saved_generation = state.generation;
        Self {
            client,
            settings,
            ctx,
            state,
            metrics,
            files,
            index: None,
            saved_generation,
        }
    }

    /// The index of the current snapshot: written from a checkpoint of the older format
    /// first, then read from its file.
    fn current_index(&mut self) -> Result<Index, CycleError> {
        if let Some(index) = self.index.take() {
            return Ok(index);
        }
        let fail =
            |what: &str, e: std::io::Error| CycleError::State(format!("failed to {what} the inventory snapshot: {e}"));
        let generation = self.state.generation;
        if !self.state.kinds.is_empty() {
            let kinds = std::mem::take(&mut self.state.kinds);
            let mut writer = self
                .files
                .writer(generation, 0)
                .map_err(|e| fail("write", e))?
                .ok_or_else(|| CycleError::State("failed to create the inventory snapshot".into()))?;
            for (name, snapshot) in kinds {
                if snapshot.baselined {
                    self.state.baselined.insert(name.clone());
                }
                for (key, stored) in snapshot.objects {
                    let id = match &stored.scope {
                        Some(s) => key.strip_prefix(&format!("{s}/")).unwrap_or(&key).to_string(),
                        None => key.clone(),
                    };
                    let record = Record {
                        kind: name.clone(),
                        id,
                        scope: stored.scope,
                        hash: stored.hash,
                        fields: stored.fields,
                    };
                    store::append(&mut writer, &record).map_err(|e| fail("write", e))?;
                }
            }
            writer.finish().map_err(|e| fail("write", e))?;
        }
        let mut index = Index::default();
        if let Some(mut reader) = self.files.reader(generation).map_err(|e| fail("read", e))? {
            while let Some((at, rec)) = store::next(&mut reader, u64::MAX).map_err(|e| fail("read", e))? {
                if let Some(kind) = Kind::from_name(&rec.kind) {
                    let slot = Slot {
                        hash: index::hash_digest(&rec.hash),
                        offset: at,
                    };
                    index.insert(index::object_digest(kind, &rec.key()), slot);
                }
            }
        } else if generation > 0 {
            tracing::warn!(
                stream = NAME,
                generation,
                "the inventory snapshot file is missing; this run observes everything again instead of reporting changes"
            );
            self.state.baselined.clear();
        }
        Ok(index)
    }

    /// Removes snapshot files no checkpoint can name any more.
    fn remove_old_files(&mut self, out: &Emitter<InventoryState>) {
        if let Some(saved) = out.acks().committed(|s| s.generation) {
            self.saved_generation = saved;
        }
        let keep = [self.saved_generation, self.state.generation, self.state.generation + 1];
        if let Err(err) = self.files.remove_except(&keep) {
            tracing::warn!(stream = NAME, error.message = %err, "failed to remove old inventory snapshot files");
        }
    }
}

impl Stream for InventoryStream {
    type State = InventoryState;

    fn name(&self) -> &str {
        NAME
    }

    fn interval(&self) -> Duration {
        self.settings.interval
    }

    async fn cycle(&mut self, out: &Emitter<InventoryState>) -> Result<CycleReport, CycleError> {
        let prev = self.current_index()?;
        self.remove_old_files(out);
        let generation = self.state.generation + 1;
        let progress = match self.state.run.take() {
            Some(p) if p.generation == generation => {
                tracing::info!(
                    stream = NAME,
                    generation,
                    lists_done = p.lists_done,
                    "resuming the interrupted inventory run"
                );
                p
            }
            _ => {
                let at = Utc::now().trunc_subsecs(0);
                let mut progress = RunProgress::new(generation, at);
                progress.since = self.state.last_run;
                let full_due = self.settings.full_interval.is_zero()
                    || self
                        .state
                        .last_full
                        .is_none_or(|last| (at - last).to_std().unwrap_or_default() >= self.settings.full_interval);
                progress.incremental = progress.since.is_some() && !full_due;
                progress
            }
        };
        let run = Run {
            client: &self.client,
            metrics: &self.metrics,
            ctx: &self.ctx,
            settings: &self.settings,
            files: &self.files,
            baselined: &self.state.baselined,
            signals: &self.state.signals,
            last_full: self.state.last_full,
        };
        let started = progress.clone();
        let result = run.run(prev, progress, out).await;
        let finished = match result {
            Ok(finished) => finished,
            Err(err) => {
                // The run resumes when the stream runs again (reading the previous
                // snapshot's index from its file again): from its last delivered mark, or
                // from where it started when none is delivered yet.
                let delivered = out
                    .acks()
                    .committed(|s| s.run.clone())
                    .flatten()
                    .filter(|p| p.generation == generation && p.lists_done >= started.lists_done);
                self.state.run = Some(delivered.unwrap_or(started));
                return Err(err);
            }
        };
        // The new snapshot replaces the old one only once all of the run's events are
        // acknowledged; a crash before that resumes or replays the run with the same ids.
        self.state = finished.state;
        self.index = Some(finished.index);
        out.checkpoint(self.state.clone());
        let report = CycleReport {
            pages: finished.pages,
            events: finished.events,
            duplicates: 0,
            summary: finished.summary,
        };
        // A partial run has done what it safely could; failing the cycle makes the driver
        // retry with backoff instead of waiting a whole interval, and `once` report it.
        match finished.error {
            Some(err) => Err(err),
            None => Ok(report),
        }
    }
}
