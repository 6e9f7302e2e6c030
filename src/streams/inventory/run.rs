//! One inventory run in constant memory: every list read a page at a time, each object
//! compared with the previous snapshot's [`Index`] as it arrives, its events emitted through
//! the bounded queue at once and its line appended to this run's snapshot file. After every
//! list a checkpoint mark records how far the run got, so a run interrupted by a crash or a
//! stop resumes at the next list instead of starting over. Removals are derived only at the
//! end, from the previous snapshot file, and only for scopes listed completely.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::audit::Window;
use super::diff::{self, Item, KindSnapshot};
use super::events::{self, SnapshotSummary};
use super::fetch::{ListError, Pager};
use super::index::{self, Index, Slot};
use super::kind::{Kind, Parent};
use super::plan::Plan;
use super::store::{self, Record};
use super::{InventorySettings, InventoryState, NAME, Signals, signals};
use crate::metrics::Metrics;
use crate::normalize::{self, Context};
use crate::openai::AdminApi;
use crate::pipeline::Emitter;
use crate::state::SnapshotFiles;
use crate::state::snapshots::{Reader, Writer};
use crate::streams::CycleError;

mod progress;
mod reporting;

use progress::top_lists;
pub use progress::{RunProgress, Tally};

/// What a finished run leaves behind.
pub struct Finished {
    pub state: InventoryState,
    pub index: Index,
    pub summary: String,
    pub pages: u64,
    pub events: u64,
    /// The first failure, for the cycle's error.
    pub error: Option<CycleError>,
}

fn state_error(what: &str, err: std::io::Error) -> CycleError {
    CycleError::State(format!("failed to {what} the inventory snapshot: {err}"))
}

/// One run against the previous snapshot (generation `progress.generation - 1`).
pub struct Run<'a> {
    pub client: &'a AdminApi,
    pub metrics: &'a Metrics,
    pub ctx: &'a Context,
    pub settings: &'a InventorySettings,
    pub files: &'a SnapshotFiles,
    pub baselined: &'a BTreeSet<String>,
    pub signals: &'a Arc<Signals>,
    /// When the last full run was, kept by the checkpoint marks of an incremental run.
    pub last_full: Option<DateTime<Utc>>,
}

/// The mutable part of a run in progress.
struct Open {
    /// The previous snapshot's index; dropped before the signals are evaluated.
    prev: Index,
    progress: RunProgress,
    writer: Writer,
    next: Index,
    /// For random reads of what changed (`None`: no previous snapshot).
    prev_reader: Option<Reader>,
    /// Project id → name, from the previous snapshot and this run.
    project_names: HashMap<String, String>,
    /// Ids of projects and groups listed this run, in order: the parents of scoped lists.
    parents: BTreeMap<Kind, Vec<String>>,
    /// Ids of the previous snapshot's projects and groups: the parents of an incremental
    /// run's lists when it does not read the parents again.
    prev_parents: BTreeMap<Kind, BTreeSet<String>>,
    /// What the audit log said since the previous run (`None`: no previous run, or it could
    /// not be read).
    audit: Option<Window>,
    events: u64,
    error: Option<CycleError>,
}

impl Run<'_> {
    fn prev_generation(progress: &RunProgress) -> u64 {
        progress.generation - 1
    }

    /// Opens the run's snapshot file where `progress` left it (from the start when the
    /// file lost what the checkpoint vouched for) and rebuilds what the lists done so far
    /// learnt.
    fn open(&self, prev: Index, mut progress: RunProgress) -> Result<Open, CycleError> {
        let writer = match self.files.writer(progress.generation, progress.written) {
            Ok(Some(w)) => w,
            Ok(None) => {
                tracing::warn!(
                    stream = NAME,
                    generation = progress.generation,
                    "the interrupted inventory run's snapshot file is shorter than its checkpoint says; starting the run over"
                );
                progress = RunProgress::new(progress.generation, progress.at);
                self.files
                    .writer(progress.generation, 0)
                    .map_err(|e| state_error("create", e))?
                    .ok_or_else(|| CycleError::State("failed to create the inventory snapshot".into()))?
            }
            Err(e) => return Err(state_error("open", e)),
        };
        let prev_gen = Self::prev_generation(&progress);
        let prev_reader = self.files.reader(prev_gen).map_err(|e| state_error("read", e))?;
        let next = Index::with_capacity(prev.len());
        let mut open = Open {
            prev,
            progress,
            writer,
            next,
            prev_reader,
            project_names: HashMap::new(),
            parents: BTreeMap::new(),
            prev_parents: BTreeMap::new(),
            audit: None,
            events: 0,
            error: None,
        };
        // Project names of the previous snapshot, for projects this run has not listed yet.
        if let Some(mut r) = self.files.reader(prev_gen).map_err(|e| state_error("read", e))? {
            while let Some((_, rec)) = store::next(&mut r, u64::MAX).map_err(|e| state_error("read", e))? {
                if rec.kind == Kind::Project.name()
                    && let Some(name) = rec.fields.get("name").and_then(Value::as_str)
                {
                    open.project_names.insert(rec.id.clone(), name.to_string());
                }
                if let Some(kind @ (Kind::Project | Kind::Group)) = Kind::from_name(&rec.kind) {
                    open.prev_parents.entry(kind).or_default().insert(rec.id.clone());
                }
            }
        }
        // What the lists done before an interruption wrote.
        if open.progress.written > 0 {
            let mut r = self
                .files
                .reader(open.progress.generation)
                .map_err(|e| state_error("read", e))?
                .ok_or_else(|| CycleError::State("the interrupted inventory run's snapshot is gone".into()))?;
            let limit = open.progress.written;
            while let Some((at, rec)) = store::next(&mut r, limit).map_err(|e| state_error("read", e))? {
                let Some(kind) = Kind::from_name(&rec.kind) else {
                    continue;
                };
                open.learn(kind, &rec);
                let object = index::object_digest(kind, &rec.key());
                open.next.insert(
                    object,
                    Slot {
                        hash: index::hash_digest(&rec.hash),
                        offset: at,
                    },
                );
            }
        }
        Ok(open)
    }

    /// Reads every list not read yet, comparing with `prev` (the index of the previous
    /// snapshot), then derives removals, snapshot summaries and signals.
    pub async fn run(
        &self,
        prev: Index,
        progress: RunProgress,
        out: &Emitter<InventoryState>,
    ) -> Result<Finished, CycleError> {
        let mut open = self.open(prev, progress)?;
        self.read_audit(&mut open).await?;
        let plan = match (&open.audit, open.progress.incremental) {
            (Some(window), true) => Some(window.plan.clone()),
            _ => None,
        };
        let mut lists = match &plan {
            Some(plan) => plan.org_lists().into_iter().map(|k| (k, None)).collect(),
            None => top_lists(),
        };
        let top = lists.len();
        let mut index = open.progress.lists_done.min(top);
        // The organization-level lists first; their projects and groups name the rest.
        while index < top {
            let (kind, scope) = lists[index].clone();
            self.read_list(&mut open, kind, scope.as_deref(), out).await?;
            index += 1;
            self.mark(&mut open, index, out)?;
        }
        match &plan {
            Some(plan) => lists.extend(Self::planned_lists(&open, plan)),
            None => lists.extend(self.scoped_lists(&mut open)),
        }
        while index < lists.len() {
            if index >= open.progress.lists_done {
                let (kind, scope) = lists[index].clone();
                self.read_list(&mut open, kind, scope.as_deref(), out).await?;
                self.mark(&mut open, index + 1, out)?;
            }
            index += 1;
        }
        self.finish(open, out).await
    }

    /// What the audit log said since the previous run: the plan of an incremental run, the
    /// yardstick of a full one. An incremental run that cannot read it becomes a full run
    /// when it has not started yet, and fails (to be retried) when it has.
    async fn read_audit(&self, open: &mut Open) -> Result<(), CycleError> {
        let Some(since) = open.progress.since else {
            open.progress.incremental = false;
            return Ok(());
        };
        match Window::read(self.client, since, open.progress.at.timestamp()).await {
            Ok(window) => open.audit = Some(window),
            Err(err) if open.progress.incremental && open.progress.lists_done > 0 => return Err(CycleError::Api(err)),
            Err(err) => {
                tracing::warn!(
                    stream = NAME,
                    error.message = %err.summary(),
                    "failed to read the audit log since the previous inventory run; listing everything"
                );
                open.progress.incremental = false;
            }
        }
        Ok(())
    }

    /// An incremental run's scoped lists: those the audit log named, `Every` over the
    /// projects and groups of the previous snapshot and of this run.
    fn planned_lists(open: &Open, plan: &Plan) -> Vec<(Kind, Option<String>)> {
        let parents = |kind: Kind| -> Vec<String> {
            let mut ids = open.prev_parents.get(&kind).cloned().unwrap_or_default();
            ids.extend(open.parents.get(&kind).into_iter().flatten().cloned());
            ids.into_iter().collect()
        };
        plan.scoped_lists(&parents(Kind::Project), &parents(Kind::Group))
            .into_iter()
            .map(|(kind, scope)| (kind, Some(scope)))
            .collect()
    }

    /// Whether a full run's change was announced by no audit event since the previous
    /// run. The audit log is read again up to now (at most once a minute) before saying so:
    /// the change may have been made while the run was going on.
    async fn unannounced(&self, open: &mut Open, kind: Kind, scope: Option<&str>) -> bool {
        let Some(window) = open.audit.as_mut() else {
            return false;
        };
        if open.progress.incremental || window.plan.names(kind, scope) {
            return false;
        }
        let now = Utc::now().timestamp();
        if now - window.until >= REREAD_SECS
            && let Err(err) = window.extend(self.client, now).await
        {
            tracing::warn!(stream = NAME, error.message = %err.summary(), "failed to read the audit log again");
            return false;
        }
        !window.plan.names(kind, scope)
    }

    /// Every project's and group's children, or — when the parent list failed — the kind
    /// marked as not knowing its parents.
    fn scoped_lists(&self, open: &mut Open) -> Vec<(Kind, Option<String>)> {
        let mut lists = Vec::new();
        for kind in Kind::ALL {
            let parent = match kind.parent() {
                Parent::Org => continue,
                Parent::Project => Kind::Project,
                Parent::Group => Kind::Group,
            };
            if open.progress.tally(parent).complete() {
                let ids = open.parents.get(&parent).cloned().unwrap_or_default();
                lists.extend(ids.into_iter().map(|id| (kind, Some(id))));
            } else {
                open.progress.tally(kind).parents_unknown = true;
            }
        }
        lists
    }

    /// A checkpoint mark: once this run's events so far are delivered, a restart resumes
    /// after list `lists_done`.
    fn mark(&self, open: &mut Open, lists_done: usize, out: &Emitter<InventoryState>) -> Result<(), CycleError> {
        open.progress.lists_done = lists_done;
        open.progress.written = open.writer.flush().map_err(|e| state_error("write", e))?;
        out.checkpoint(InventoryState {
            generation: Self::prev_generation(&open.progress),
            baselined: self.baselined.clone(),
            signals: Arc::clone(self.signals),
            run: Some(open.progress.clone()),
            last_run: open.progress.since,
            last_full: self.last_full,
            ..InventoryState::default()
        });
        Ok(())
    }

    /// One list, page by page: each object compared, emitted and written as it arrives. A
    /// failure is recorded on the kind, not fatal.
    async fn read_list(
        &self,
        open: &mut Open,
        kind: Kind,
        scope: Option<&str>,
        out: &Emitter<InventoryState>,
    ) -> Result<(), CycleError> {
        let mut pager = Pager::new(kind, scope);
        let incremental = open.progress.incremental;
        loop {
            let page = tokio::select! {
                biased;
                () = out.stopping() => return Err(CycleError::Stopped(crate::pipeline::Stopped)),
                page = pager.next_page(self.client, self.metrics, NAME) => page,
            };
            match page {
                Ok(Some(items)) => {
                    open.progress.pages += 1;
                    open.progress.tally(kind).pages += 1;
                    for raw in items {
                        self.take(open, kind, scope, raw, out).await?;
                    }
                }
                Ok(None) => {
                    if incremental {
                        open.progress.tally(kind).listed.insert(scope.unwrap_or("").to_string());
                    }
                    return Ok(());
                }
                Err(err) if scope.is_none() && err.is_unavailable() => {
                    if let ListError::Api(e) = &err {
                        open.progress.tally(kind).unavailable = Some(e.summary());
                    }
                    return Ok(());
                }
                Err(err) => {
                    let tally = open.progress.tally(kind);
                    tally.failures.push(format!("{}: {err}", scope.unwrap_or(kind.name())));
                    if let Some(s) = scope {
                        tally.failed_scopes.insert(s.to_string());
                    }
                    if open.error.is_none() {
                        open.error = Some(match err {
                            ListError::Api(e) => CycleError::Api(e),
                            ListError::Upstream(m) => CycleError::Upstream(m),
                        });
                    }
                    return Ok(());
                }
            }
        }
    }

    /// One listed object.
    async fn take(
        &self,
        open: &mut Open,
        kind: Kind,
        scope: Option<&str>,
        raw: Value,
        out: &Emitter<InventoryState>,
    ) -> Result<(), CycleError> {
        let Some((id, fields)) = kind.view(&raw) else {
            // It still travels; without an id it cannot be tracked, so the kind cannot claim
            // to know everything that exists and derives no removals.
            open.progress.tally(kind).unreadable += 1;
            let event = normalize::unparseable(
                normalize::Source::Inventory,
                &raw,
                self.ctx,
                &format!("an inventory {} item without a string id", kind.name()),
            );
            open.events += 1;
            return Ok(out.emit(event).await?);
        };
        let item = Item {
            id,
            scope: scope.map(str::to_string),
            fields,
            raw,
        };
        let object = index::object_digest(kind, &item.key());
        // A repeated item (a page served twice) counts once.
        if open.next.contains(object) {
            return Ok(());
        }
        let hash = diff::content_hash(&item.fields);
        let digest = index::hash_digest(&hash);
        let before = open.prev.get(object);
        if before.map(|b| b.hash) != Some(digest) {
            let stored = match (before, open.prev_reader.as_mut()) {
                (Some(slot), Some(reader)) => Some(
                    store::read_at(reader, slot.offset)
                        .map_err(|e| state_error("read", e))?
                        .stored(),
                ),
                _ => None,
            };
            let baselined = self.baselined.contains(kind.name());
            for change in diff::compare(stored.as_ref(), &item, &hash, baselined) {
                self.emit_change(open, kind, &change, out).await?;
            }
        }
        let record = Record {
            kind: kind.name().to_string(),
            id: item.id,
            scope: item.scope,
            hash,
            fields: item.fields,
        };
        let offset = store::append(&mut open.writer, &record).map_err(|e| state_error("write", e))?;
        open.next.insert(object, Slot { hash: digest, offset });
        open.progress.tally(kind).count += 1;
        open.learn(kind, &record);
        Ok(())
    }

    /// One change's event, counted on its kind.
    async fn emit_change(
        &self,
        open: &mut Open,
        kind: Kind,
        change: &diff::Change,
        out: &Emitter<InventoryState>,
    ) -> Result<(), CycleError> {
        let tally = open.progress.tally(kind);
        match change.change {
            diff::ChangeKind::Observed => tally.observed += 1,
            diff::ChangeKind::Added => tally.added += 1,
            diff::ChangeKind::Changed => tally.changed += 1,
            diff::ChangeKind::Removed => tally.removed += 1,
        }
        let unannounced =
            change.change != diff::ChangeKind::Observed && self.unannounced(open, kind, change.scope.as_deref()).await;
        let project = change.scope.as_ref().and_then(|s| open.project_names.get(s));
        let mut event = events::inventory_change(
            kind,
            change,
            open.progress.generation,
            project.map(String::as_str),
            self.ctx,
            open.progress.at,
        );
        if unannounced {
            // Made without an audit event (or one the audit log lost): the incremental runs
            // since the last full run could not see it.
            open.progress.unannounced += 1;
            if let Some(details) = event.details.as_object_mut() {
                details.insert("unannounced".into(), Value::Bool(true));
            }
        }
        open.events += 1;
        Ok(out.emit(event).await?)
    }

    /// Removals (and what stays because its scope was not listed completely), the snapshot
    /// summaries, the signals; then the state that makes this run's snapshot current.
    async fn finish(&self, mut open: Open, out: &Emitter<InventoryState>) -> Result<Finished, CycleError> {
        let prev_gen = Self::prev_generation(&open.progress);
        if let Some(mut r) = self.files.reader(prev_gen).map_err(|e| state_error("read", e))? {
            while let Some((_, rec)) = store::next(&mut r, u64::MAX).map_err(|e| state_error("read", e))? {
                let Some(kind) = Kind::from_name(&rec.kind) else {
                    continue;
                };
                let object = index::object_digest(kind, &rec.key());
                if open.next.contains(object) {
                    continue;
                }
                let incremental = open.progress.incremental;
                if open.progress.tally(kind).covers(rec.scope.as_deref(), incremental) {
                    if self.baselined.contains(kind.name()) {
                        let change = diff::removal(rec.id.clone(), rec.stored());
                        self.emit_change(&mut open, kind, &change, out).await?;
                    }
                } else {
                    // Not listed, and its scope was not listed completely: it stays.
                    let offset = store::append(&mut open.writer, &rec).map_err(|e| state_error("write", e))?;
                    open.next.insert(
                        object,
                        Slot {
                            hash: index::hash_digest(&rec.hash),
                            offset,
                        },
                    );
                }
            }
        }
        let Open {
            progress,
            writer,
            next,
            project_names,
            mut events,
            error,
            prev,
            prev_reader,
            parents,
            prev_parents,
            audit,
        } = open;
        drop((prev, prev_reader, parents, prev_parents, audit));
        writer.finish().map_err(|e| state_error("write", e))?;

        let generation = progress.generation;
        let mut baselined = self.baselined.clone();
        let mut incomplete = Vec::new();
        let (mut objects, mut observed, mut added, mut changed, mut unreadable) = (0, 0, 0, 0, 0);
        let mut removed_total = 0;
        for kind in Kind::ALL {
            let tally = progress.kinds.get(kind.name()).cloned().unwrap_or_default();
            self.metrics
                .set_inventory_run_requests(progress.label(), kind.name(), tally.pages);
            if progress.incremental {
                // Only what changed is reported; a kind not read again is as it was.
                objects += tally.count;
                added += tally.added;
                changed += tally.changed;
                removed_total += tally.removed;
                unreadable += tally.unreadable;
                if !tally.failures.is_empty() {
                    incomplete.push(kind.name());
                }
                continue;
            }
            let complete = tally.complete();
            if complete {
                baselined.insert(kind.name().to_string());
            } else if tally.unavailable.is_none() {
                incomplete.push(kind.name());
            }
            let mut failures = tally.failures.clone();
            if tally.parents_unknown {
                failures.push("the parent list failed, so not every parent was listed".to_string());
            }
            if let Some(err) = &tally.unavailable {
                failures.push(format!("not offered to this organization: {err}"));
            }
            if tally.unreadable > 0 {
                failures.push(format!("{} item(s) without a string id", tally.unreadable));
            }
            let summary = SnapshotSummary {
                kind: kind.name(),
                snapshot_id: generation.to_string(),
                generation,
                complete,
                count: tally.count,
                observed: tally.observed,
                added: tally.added,
                removed: tally.removed,
                changed: tally.changed,
                failures,
            };
            objects += tally.count;
            observed += tally.observed;
            added += tally.added;
            changed += tally.changed;
            unreadable += tally.unreadable;
            removed_total += summary.removed;
            events += 1;
            out.emit(events::inventory_snapshot(&summary, self.ctx, progress.at))
                .await?;
        }

        // The signals read the whole snapshot in the order a full run writes it; between
        // full runs they keep what they reported.
        let (signals, signal_events) = if progress.incremental {
            (Arc::clone(self.signals), 0)
        } else {
            let (signals, n) = self.signals(&progress, &project_names, out).await?;
            (Arc::new(signals), n)
        };
        events += signal_events;
        // A list that failed is read again next time: an incremental run leaves the audit
        // window where it began, an incomplete full run is not taken for a full one.
        let failed = error.is_some() || !incomplete.is_empty();
        let state = InventoryState {
            generation,
            baselined,
            signals,
            run: None,
            last_run: if failed && progress.incremental {
                progress.since
            } else {
                Some(progress.at)
            },
            last_full: if progress.incremental || failed {
                self.last_full
            } else {
                Some(progress.at)
            },
            ..InventoryState::default()
        };
        if progress.unannounced > 0 {
            tracing::warn!(
                stream = NAME,
                generation,
                changes = progress.unannounced,
                "the full inventory run found changes no audit event announced (marked `unannounced`)"
            );
        }
        let summary = format!(
            "{} snapshot {generation}: {} lists, {objects} objects, {observed} observed, {added} added, {removed_total} removed, {changed} changed, {} unannounced, {signal_events} signals, {unreadable} unreadable{}",
            progress.label(),
            progress.lists_done,
            progress.unannounced,
            if incomplete.is_empty() {
                String::new()
            } else {
                format!("; incomplete: {}", incomplete.join(", "))
            }
        );
        let error = error.or_else(|| {
            (!incomplete.is_empty()).then(|| {
                CycleError::Upstream(format!(
                    "inventory kinds {} could not be read completely",
                    incomplete.join(", ")
                ))
            })
        });
        Ok(Finished {
            state,
            index: next,
            summary,
            pages: progress.pages,
            events,
            error,
        })
    }
}

/// How often a full run reads the audit log again before calling a change unannounced.
const REREAD_SECS: i64 = 60;

impl Open {
    /// What later lists need of a listed object: project names and the parents' ids.
    fn learn(&mut self, kind: Kind, record: &Record) {
        match kind {
            Kind::Project => {
                if let Some(name) = record.fields.get("name").and_then(Value::as_str) {
                    self.project_names.insert(record.id.clone(), name.to_string());
                }
                self.parents.entry(kind).or_default().push(record.id.clone());
            }
            Kind::Group => self.parents.entry(kind).or_default().push(record.id.clone()),
            _ => {}
        }
    }
}
