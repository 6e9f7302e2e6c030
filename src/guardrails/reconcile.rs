//! Reconciliation of the inventory against the audit log: the memory of the two stateful
//! checks (`[rule.reconcile]`) and the kind → audit-type correspondence they share
//! (`reconcile_types.tsv`, as data). Pure: the clock is the events' own `ingested_at`.
//!
//! - `inventory_changes`: an object the inventory saw appear, disappear or change a
//!   reconciled field, with no audit-log event of a corresponding type naming it between the
//!   previous inventory run and this one (each end widened by the grace). Decided once a
//!   later inventory run has been seen and the grace has passed since the change, so late
//!   audit events still count.
//! - `audit_creations`: an audit-log event saying an object was created, with no such object
//!   in the first complete inventory of its kind from a run that started after the event
//!   arrived and at least the grace after it happened (unless an audit event says it was
//!   removed again).
//!
//! Limits: decisions need the audit log to have caught up with the period within the grace
//! (a first backfill longer than an inventory interval plus the grace can report changes
//! whose audit events are still on their way); memory is bounded ([`super::facts::MAX_FACTS`],
//! [`MAX_PENDING`], seven days of facts), and an item dropped by those bounds is never
//! reported.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use super::facts::{Facts, fact_key};
use super::stateful::fingerprint;
use crate::normalize::{Event, Source};

const TSV: &str = include_str!("reconcile_types.tsv");

/// Which way a reconciliation rule looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumString, strum::IntoStaticStr, strum::VariantNames)]
#[strum(serialize_all = "snake_case")]
pub enum Check {
    /// Inventory changes without an audit-log event (`inventory_change_not_in_audit_log`).
    InventoryChanges,
    /// Audit-log creations the inventory never shows (`audit_event_not_reflected`).
    AuditCreations,
}

/// Undecided items per rule; beyond it the oldest go (undecided, so never a false finding).
pub const MAX_PENDING: usize = 10_000;
/// Facts older than this (behind the newest ingestion time) are forgotten.
const RETAIN_MS: i64 = 7 * 86_400_000;
/// Window start of a change when no earlier inventory run is known.
const NO_PREVIOUS_RUN_MS: i64 = 86_400_000;

/// One row of the correspondence table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub kind: String,
    /// `added`, `removed` or `changed:<field>`.
    pub change: String,
    pub audit_types: Vec<String>,
}

/// The correspondence table, parsed once.
pub static TABLE: LazyLock<Vec<Row>> = LazyLock::new(|| parse(TSV).unwrap_or_default());

/// The table's rows, or the first malformed line.
pub fn parse(text: &str) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        let [kind, change, types] = cols[..] else {
            return Err(format!("line {}: expected 3 tab-separated columns", n + 1));
        };
        if !(change == "added" || change == "removed" || change.starts_with("changed:")) {
            return Err(format!(
                "line {}: change `{change}` is not added, removed or changed:<field>",
                n + 1
            ));
        }
        rows.push(Row {
            kind: kind.to_string(),
            change: change.to_string(),
            audit_types: types.split(',').map(|t| t.trim().to_string()).collect(),
        });
    }
    Ok(rows)
}

fn row(kind: &str, change: &str) -> Option<&'static Row> {
    TABLE.iter().find(|r| r.kind == kind && r.change == change)
}

/// What the table says about one audit-log type.
#[derive(Debug, Default)]
struct AuditType {
    /// The kind whose `added` row lists it: what an audit-log creation must show up as.
    created: Option<&'static str>,
    /// The kinds whose `removed` row lists it.
    removed: Vec<&'static str>,
}

/// The table by audit-log type (every type it lists), so an audit event costs one lookup.
static BY_AUDIT_TYPE: LazyLock<HashMap<&'static str, AuditType, foldhash::fast::RandomState>> = LazyLock::new(|| {
    let mut index: HashMap<&'static str, AuditType, foldhash::fast::RandomState> = HashMap::default();
    for r in TABLE.iter() {
        for t in &r.audit_types {
            let entry = index.entry(t.as_str()).or_default();
            match r.change.as_str() {
                "added" if entry.created.is_none() => entry.created = Some(r.kind.as_str()),
                "removed" => entry.removed.push(r.kind.as_str()),
                _ => {}
            }
        }
    }
    index
});

/// Something waiting to be explained by the other stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub org: String,
    pub kind: String,
    pub object_id: String,
    /// `added`, `removed`, `changed:<field>` (inventory) or the audit-log type (creation).
    pub change: String,
    /// Event time (ms) of the event behind it.
    pub t: i64,
    /// Inventory changes: the start (ms) of the window an explanation may fall in (the
    /// previous inventory run). Audit creations: when the event happened.
    pub since: i64,
    /// Inventory changes: the run that saw the change. Audit creations: the latest run seen
    /// when the event arrived, so only a listing that started after it decides (a backfill
    /// that has not yet reached a later removal is waited for).
    #[serde(default)]
    pub generation: u64,
    /// The event behind it: the finding's evidence.
    pub event_id: String,
}

/// The inventory runs of one organization, as their snapshot events tell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Runs {
    /// The latest run's generation and time (ms), and the time of the run before it.
    pub generation: u64,
    pub at: i64,
    pub previous_at: Option<i64>,
}

/// One rule's memory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memory {
    /// Newest `ingested_at` seen (ms): the clock the grace is measured on.
    pub now: i64,
    /// Per org: the latest inventory runs.
    pub runs: BTreeMap<String, Runs>,
    /// Per `org␟kind`: the generation and time (ms) of the latest complete listing of it.
    pub snapshots: BTreeMap<String, (u64, i64)>,
    /// What the other stream said, by the digest of its parts, with event times (ms): audit
    /// events (`org, type, target`) for `inventory_changes`; objects the inventory showed
    /// (`org, kind, id`) and audit removals (`org, -, kind, id`) for `audit_creations`.
    pub facts: Facts,
    /// Oldest first: the oldest goes when there are [`MAX_PENDING`].
    pub pending: VecDeque<Pending>,
    /// When an undecided item not yet due at the last look comes due (ms).
    #[serde(skip)]
    pub next_due: NextDue,
    /// What identifies each of `pending`'s items, so a repeat is found without comparing it
    /// with up to [`MAX_PENDING`] others (that scan was 5 % of a 1,000,000-event backfill).
    #[serde(skip)]
    waiting: Waiting,
}

/// The identities ([`identity`]) of the undecided items; `None` until first needed after a
/// restore, then built from the list and kept with it. Not saved, and equal whatever it
/// holds: it only caches what the list says.
#[derive(Debug, Clone, Default)]
struct Waiting(Option<Identities>);

/// Identities are hashes already: the set hashes them with the project's fast hasher.
type Identities = HashSet<u64, foldhash::fast::RandomState>;

impl PartialEq for Waiting {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Waiting {}

impl Waiting {
    /// The set, built from `pending` when it is not yet.
    fn of(&mut self, pending: &VecDeque<Pending>) -> &mut Identities {
        self.0.get_or_insert_with(|| pending.iter().map(identity).collect())
    }

    /// `item` left the list.
    fn left(&mut self, item: &Pending) {
        if let Some(set) = &mut self.0 {
            set.remove(&identity(item));
        }
    }
}

/// The same event has the same time: an item is its event's time, id and change. Two items
/// that differ but hash alike would make the second look like a repeat and go undecided,
/// which never makes a finding.
fn identity(p: &Pending) -> u64 {
    let parts = fingerprint(&p.event_id) ^ fingerprint(&p.change).rotate_left(21);
    parts ^ (p.t as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// When the undecided items need another look, if nothing else happens: the earliest time
/// (ms, on [`Memory::now`]) at which an item that was not yet due becomes due; `None` when
/// unknown (a fresh or restored memory), which means look now. An item that is due but not
/// ready waits for an inventory run, so only a snapshot or this time can decide anything
/// already pending. Not saved, and equal whatever it holds: it only caches what the saved
/// fields say.
#[derive(Debug, Clone, Copy, Default)]
pub struct NextDue(Option<i64>);

impl PartialEq for NextDue {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for NextDue {}

fn key(parts: &[&str]) -> String {
    parts.join("\u{1f}")
}

impl Memory {
    /// Takes in `event` and returns the items now decided as unexplained.
    pub fn observe(&mut self, check: Check, grace_ms: i64, event: &Event) -> Vec<Pending> {
        self.now = self.now.max(event.ingested_at.timestamp_millis());
        let added = match event.source {
            Source::AuditLog | Source::Inventory => self.take_in(check, event),
            _ => 0,
        };
        // Only a new inventory run or the clock reaching an item's due time can decide an
        // item that was already waiting; otherwise only the items this event added (at the
        // end of the list) are looked at.
        let snapshot = event.source == Source::Inventory && event.event_type == "inventory.snapshot";
        let from = match self.next_due.0 {
            Some(due) if !snapshot && self.now < due => self.pending.len().saturating_sub(added),
            _ => 0,
        };
        if from == self.pending.len() && self.next_due.0.is_some() {
            return Vec::new();
        }
        self.decide(check, grace_ms, from)
    }

    /// Takes in what `event` (audit log or inventory) says; how many items it added to the
    /// end of `pending`.
    fn take_in(&mut self, check: Check, event: &Event) -> usize {
        let org = event.org_id.as_deref().unwrap_or_default();
        let t = event.occurred_at.timestamp_millis();
        let target = event.target.as_ref().and_then(|t| t.id.as_deref());
        if event.source == Source::Inventory {
            return self.inventory(check, org, t, event);
        }
        let (Some(id), Some(known)) = (target, BY_AUDIT_TYPE.get(event.event_type.as_str())) else {
            return 0;
        };
        match check {
            Check::InventoryChanges => {
                self.facts.record(fact_key(&[org, &event.event_type, id]), t);
                0
            }
            Check::AuditCreations => {
                for kind in &known.removed {
                    self.facts.record(fact_key(&[org, "-", kind, id]), t);
                }
                let Some(kind) = known.created else {
                    return 0;
                };
                let generation = self.runs.get(org).map_or(0, |r| r.generation);
                self.wait(Pending {
                    org: org.to_string(),
                    kind: kind.to_string(),
                    object_id: id.to_string(),
                    change: event.event_type.clone(),
                    t,
                    since: t,
                    generation,
                    event_id: event.id.clone(),
                })
            }
        }
    }

    fn inventory(&mut self, check: Check, org: &str, t: i64, event: &Event) -> usize {
        let generation = event.details["generation"]
            .as_u64()
            .or_else(|| event.details["snapshot_id"].as_str().and_then(|g| g.parse().ok()))
            .unwrap_or(0);
        if event.event_type == "inventory.snapshot" {
            let run = self.runs.entry(org.to_string()).or_default();
            if generation > run.generation {
                *run = Runs {
                    generation,
                    at: t,
                    previous_at: (run.generation > 0).then_some(run.at),
                };
            }
            let complete = event.details["complete"].as_bool().unwrap_or(false);
            if let (Some(kind), true) = (event.details["kind"].as_str(), complete) {
                let latest = self.snapshots.entry(key(&[org, kind])).or_insert((0, i64::MIN));
                if generation >= latest.0 {
                    *latest = (generation, t);
                }
            }
            return 0;
        }
        let (Some(kind), Some(id)) = (event.details["kind"].as_str(), event.details["object_id"].as_str()) else {
            return 0;
        };
        let verb = event.details["change"].as_str().unwrap_or_default();
        match check {
            Check::AuditCreations => {
                if matches!(verb, "observed" | "added" | "changed") {
                    self.facts.record(fact_key(&[org, kind, id]), t);
                }
                0
            }
            Check::InventoryChanges => {
                let changes: Vec<String> = match verb {
                    "added" | "removed" => vec![verb.to_string()],
                    "changed" => event.details["changed_fields"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|f| f.as_str().map(|f| format!("changed:{f}")))
                        .collect(),
                    _ => Vec::new(),
                };
                // The previous run: the latest before this one (a kind listed earlier in
                // this run may already have made this run the latest).
                let since = match self.runs.get(org) {
                    Some(r) if r.generation > 0 && r.generation < generation => Some(r.at),
                    Some(r) if r.generation == generation => r.previous_at,
                    _ => None,
                }
                .unwrap_or_else(|| t.saturating_sub(NO_PREVIOUS_RUN_MS));
                let mut added = 0;
                for change in changes.into_iter().filter(|c| row(kind, c).is_some()) {
                    added += self.wait(Pending {
                        org: org.to_string(),
                        kind: kind.to_string(),
                        object_id: id.to_string(),
                        change,
                        t,
                        since,
                        generation,
                        event_id: event.id.clone(),
                    });
                }
                added
            }
        }
    }

    /// Adds `item` to the undecided ones unless it is there already; how many were added.
    fn wait(&mut self, item: Pending) -> usize {
        if !self.waiting.of(&self.pending).insert(identity(&item)) {
            return 0;
        }
        if self.pending.len() >= MAX_PENDING
            && let Some(oldest) = self.pending.pop_front()
        {
            self.waiting.left(&oldest);
        }
        self.pending.push_back(item);
        1
    }

    /// Removes every item from `pending[from..]` that can now be decided; returns those
    /// nothing explained. Keeps [`Memory::next_due`] for the items left.
    fn decide(&mut self, check: Check, grace_ms: i64, from: usize) -> Vec<Pending> {
        let now = self.now;
        let mut out = Vec::new();
        let mut next_due = if from == 0 { None } else { self.next_due.0 };
        let looked_at = self.pending.split_off(from.min(self.pending.len()));
        for p in looked_at {
            let due_at = p.t.saturating_add(grace_ms);
            let ready = now >= due_at
                && match check {
                    // A later inventory run has been seen.
                    Check::InventoryChanges => self.runs.get(&p.org).is_some_and(|r| r.generation > p.generation),
                    // A complete listing of the kind from a run that started after the event
                    // arrived, taken at least the grace after the event happened.
                    Check::AuditCreations => self
                        .snapshots
                        .get(&key(&[&p.org, &p.kind]))
                        .is_some_and(|(g, at)| *g > p.generation && *at >= due_at),
                };
            if !ready {
                if now < due_at {
                    next_due = Some(next_due.map_or(due_at, |d: i64| d.min(due_at)));
                }
                self.pending.push_back(p);
                continue;
            }
            self.waiting.left(&p);
            if !self.explained(check, grace_ms, &p) {
                out.push(p);
            }
        }
        // Nothing not yet due: only an inventory run can decide the rest.
        self.next_due = NextDue(Some(next_due.unwrap_or(i64::MAX)));
        out
    }

    fn explained(&self, check: Check, grace_ms: i64, p: &Pending) -> bool {
        match check {
            Check::InventoryChanges => {
                let (from, to) = (p.since.saturating_sub(grace_ms), p.t.saturating_add(grace_ms));
                row(&p.kind, &p.change).is_some_and(|r| {
                    r.audit_types.iter().any(|ty| {
                        self.facts
                            .times(fact_key(&[&p.org, ty, &p.object_id]))
                            .iter()
                            .any(|t| (from..=to).contains(t))
                    })
                })
            }
            Check::AuditCreations => {
                self.facts.contains(fact_key(&[&p.org, &p.kind, &p.object_id]))
                    || self.facts.contains(fact_key(&[&p.org, "-", &p.kind, &p.object_id]))
            }
        }
    }

    /// Forgets facts older than the retention behind the newest ingestion time.
    pub fn prune(&mut self) {
        let cutoff = self.now.saturating_sub(RETAIN_MS);
        self.facts.forget_before(cutoff);
        let waiting = &mut self.waiting;
        self.pending.retain(|p| {
            let keep = p.t >= cutoff;
            if !keep {
                waiting.left(p);
            }
            keep
        });
    }
}

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;
