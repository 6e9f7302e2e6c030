//! State of the threshold, sequence and first-seen rules: bounded per-group memories that
//! survive restarts (serialized as the `guardrails` checkpoint) and are pruned by time and
//! capped in size.
//!
//! Events do not arrive in time order: an audit-log backfill pages newest first. So every
//! decision is made on event time (`occurred_at`), whatever the arrival order, and state is
//! only forgotten once a group has been idle for a while (counted in processed events) and its
//! entries are older than the newest event time minus the window.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::reconcile::{Check, Memory, Pending};
use crate::normalize::Event;

/// Format version of the saved state.
pub const VERSION: u32 = 1;

/// Groups per rule; beyond it the least recently touched group is forgotten.
pub const MAX_GROUPS: usize = 10_000;
/// First-seen values per group; beyond it the least recently seen value is forgotten.
pub const MAX_VALUES: usize = 32;
/// A group untouched for this many processed events may be pruned by time.
pub const IDLE_EVENTS: u64 = 10_000;
/// Evidence ids named by one finding event.
pub const MAX_EVIDENCE: usize = 50;

/// One remembered event of a threshold or sequence group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Event time, Unix milliseconds.
    pub t: i64,
    pub id: String,
    /// The `distinct` field's value, for threshold rules that count distinct values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v: Option<String>,
}

/// A threshold rule's group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counted {
    /// Sorted by `t`.
    pub entries: Vec<Entry>,
    pub touched: u64,
}

/// A sequence rule's group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Steps {
    /// Sorted by `t`.
    pub first: Vec<Entry>,
    pub then: Vec<Entry>,
    pub touched: u64,
}

/// One value a first-seen group has shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    pub value: String,
    /// Earliest event time with this value, and that event's id (the evidence).
    pub first_t: i64,
    pub first_id: String,
    pub last_t: i64,
    /// Already reported as new.
    pub reported: bool,
}

/// A first-seen rule's group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Values {
    pub values: Vec<Seen>,
    pub touched: u64,
}

/// One rule's memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RuleState {
    Threshold { groups: HashMap<String, Counted> },
    Sequence { groups: HashMap<String, Steps> },
    FirstSeen { groups: HashMap<String, Values> },
    Reconcile { memory: Box<Memory> },
}

/// Everything the stateful rules remember; the `guardrails` checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    /// Events processed so far (the clock idleness is measured on).
    pub processed: u64,
    /// Newest event time seen, Unix milliseconds.
    pub watermark: i64,
    pub rules: BTreeMap<String, RuleState>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            version: VERSION,
            processed: 0,
            watermark: i64::MIN,
            rules: BTreeMap::new(),
        }
    }
}

/// What the threshold and sequence checks decided.
pub type Evidence = Vec<Entry>;

impl State {
    fn threshold_groups(&mut self, rule: &str) -> &mut HashMap<String, Counted> {
        // Looked up before inserting, so the rule id is not copied for every event.
        if !matches!(self.rules.get(rule), Some(RuleState::Threshold { .. })) {
            self.rules
                .insert(rule.to_string(), RuleState::Threshold { groups: HashMap::new() });
        }
        match self.rules.get_mut(rule) {
            Some(RuleState::Threshold { groups }) => groups,
            _ => unreachable!("inserted above"),
        }
    }

    fn sequence_groups(&mut self, rule: &str) -> &mut HashMap<String, Steps> {
        // Looked up before inserting, so the rule id is not copied for every event.
        if !matches!(self.rules.get(rule), Some(RuleState::Sequence { .. })) {
            self.rules
                .insert(rule.to_string(), RuleState::Sequence { groups: HashMap::new() });
        }
        match self.rules.get_mut(rule) {
            Some(RuleState::Sequence { groups }) => groups,
            _ => unreachable!("inserted above"),
        }
    }

    fn first_seen_groups(&mut self, rule: &str) -> &mut HashMap<String, Values> {
        // Looked up before inserting, so the rule id is not copied for every event.
        if !matches!(self.rules.get(rule), Some(RuleState::FirstSeen { .. })) {
            self.rules
                .insert(rule.to_string(), RuleState::FirstSeen { groups: HashMap::new() });
        }
        match self.rules.get_mut(rule) {
            Some(RuleState::FirstSeen { groups }) => groups,
            _ => unreachable!("inserted above"),
        }
    }

    /// Records `entry` for a threshold rule; the evidence when `count` entries (or distinct
    /// values) now fall within one `window`. The group forgets what it reported.
    pub fn threshold(
        &mut self,
        rule: &str,
        key: String,
        entry: Entry,
        count: usize,
        window_ms: i64,
    ) -> Option<Evidence> {
        let now = self.processed;
        let groups = self.threshold_groups(rule);
        cap_groups(groups, |g| g.touched);
        let group = groups.entry(key).or_default();
        group.touched = now;
        if group.entries.iter().any(|e| e.id == entry.id) {
            return None;
        }
        let t_new = entry.t;
        insert_sorted(&mut group.entries, entry, count.saturating_mul(4).clamp(64, 4096));
        let distinct = group.entries.iter().any(|e| e.v.is_some());
        // Only windows that contain the new entry can have changed.
        for end in group
            .entries
            .iter()
            .filter(|e| e.t >= t_new && e.t - t_new <= window_ms)
            .map(|e| e.t)
            .collect::<Vec<_>>()
        {
            let inside: Vec<usize> = (0..group.entries.len())
                .filter(|&i| {
                    let t = group.entries[i].t;
                    t <= end && end - t <= window_ms
                })
                .collect();
            let reached = if distinct {
                let mut values: Vec<&str> = inside.iter().filter_map(|&i| group.entries[i].v.as_deref()).collect();
                values.sort_unstable();
                values.dedup();
                values.len()
            } else {
                inside.len()
            };
            if reached >= count {
                let evidence = take(&mut group.entries, &inside);
                return Some(evidence);
            }
        }
        None
    }

    /// Records an event for a sequence rule (as a `first` step, a `then` step or both); the
    /// evidence when a `then` event follows at least `first_count` `first` events within
    /// `window`. The group forgets what it reported.
    #[allow(clippy::too_many_arguments)]
    pub fn sequence(
        &mut self,
        rule: &str,
        key: String,
        entry: Entry,
        is_first: bool,
        is_then: bool,
        first_count: usize,
        window_ms: i64,
    ) -> Option<Evidence> {
        let now = self.processed;
        let groups = self.sequence_groups(rule);
        cap_groups(groups, |g| g.touched);
        let group = groups.entry(key).or_default();
        group.touched = now;
        let t_new = entry.t;
        if is_first && !group.first.iter().any(|e| e.id == entry.id) {
            insert_sorted(
                &mut group.first,
                entry.clone(),
                first_count.saturating_mul(4).clamp(64, 4096),
            );
        }
        if is_then && !group.then.iter().any(|e| e.id == entry.id) {
            insert_sorted(&mut group.then, entry.clone(), 16);
        }
        // A new `then` closes a sequence ending at it; a new (possibly older) `first` may
        // complete one for a `then` already seen.
        let candidates: Vec<usize> = (0..group.then.len())
            .filter(|&i| {
                let s = &group.then[i];
                if is_then && s.id == entry.id {
                    return true;
                }
                is_first && s.t >= t_new && s.t - t_new <= window_ms
            })
            .collect();
        for i in candidates {
            let end = group.then[i].clone();
            let firsts: Vec<usize> = (0..group.first.len())
                .filter(|&j| {
                    let f = &group.first[j];
                    f.id != end.id && f.t <= end.t && end.t - f.t <= window_ms
                })
                .collect();
            if firsts.len() >= first_count {
                let mut evidence = take(&mut group.first, &firsts);
                group.then.retain(|e| e.id != end.id);
                evidence.push(end);
                return Some(evidence);
            }
        }
        None
    }

    /// Takes `event` into a reconciliation rule's memory; the items now decided as
    /// unexplained.
    pub fn reconcile(&mut self, rule: &str, check: Check, grace_ms: i64, event: &Event) -> Vec<Pending> {
        if !matches!(self.rules.get(rule), Some(RuleState::Reconcile { .. })) {
            self.rules
                .insert(rule.to_string(), RuleState::Reconcile { memory: Box::default() });
        }
        match self.rules.get_mut(rule) {
            Some(RuleState::Reconcile { memory }) => memory.observe(check, grace_ms, event),
            _ => unreachable!("inserted above"),
        }
    }

    /// Records `value` for a first-seen group; every value that is now known to have
    /// appeared after the group's earliest value (or, without `baseline`, at all) and was
    /// not reported before. Order-free: a backfill that arrives newest first reports the same
    /// values as one in time order.
    pub fn first_seen(
        &mut self,
        rule: &str,
        key: String,
        value: String,
        t: i64,
        id: &str,
        baseline: bool,
    ) -> Vec<Seen> {
        let now = self.processed;
        let groups = self.first_seen_groups(rule);
        cap_groups(groups, |g| g.touched);
        let group = groups.entry(key).or_default();
        group.touched = now;
        match group.values.iter_mut().find(|s| s.value == value) {
            Some(seen) => {
                if t < seen.first_t {
                    seen.first_t = t;
                    seen.first_id = id.to_string();
                }
                seen.last_t = seen.last_t.max(t);
            }
            None => {
                if group.values.len() >= MAX_VALUES
                    && let Some(oldest) = (0..group.values.len()).min_by_key(|&i| group.values[i].last_t)
                {
                    group.values.remove(oldest);
                }
                group.values.push(Seen {
                    value,
                    first_t: t,
                    first_id: id.to_string(),
                    last_t: t,
                    reported: false,
                });
            }
        }
        let Some(earliest) = group.values.iter().map(|s| s.first_t).min() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for seen in &mut group.values {
            if !seen.reported && (!baseline || seen.first_t > earliest) {
                seen.reported = true;
                out.push(seen.clone());
            }
        }
        out
    }

    /// Counts one processed event at event time `t` (ms).
    pub fn tick(&mut self, t: i64) {
        self.processed += 1;
        self.watermark = self.watermark.max(t);
    }

    /// Forgets what can no longer matter: entries of idle groups older than the newest event
    /// time minus `horizon(rule)`, first-seen values not seen within their retention, empty
    /// groups, and state of rules that no longer exist.
    pub fn prune(&mut self, horizon: impl Fn(&str) -> Option<i64>) {
        let (now, watermark) = (self.processed, self.watermark);
        let idle = |touched: u64| now.saturating_sub(touched) >= IDLE_EVENTS;
        self.rules.retain(|rule, state| {
            let Some(keep_ms) = horizon(rule) else {
                return false;
            };
            let cutoff = watermark.saturating_sub(keep_ms);
            match state {
                RuleState::Threshold { groups } => {
                    groups.retain(|_, g| {
                        if idle(g.touched) {
                            g.entries.retain(|e| e.t >= cutoff);
                        }
                        !g.entries.is_empty()
                    });
                    !groups.is_empty()
                }
                RuleState::Sequence { groups } => {
                    groups.retain(|_, g| {
                        if idle(g.touched) {
                            g.first.retain(|e| e.t >= cutoff);
                            g.then.retain(|e| e.t >= cutoff);
                        }
                        !(g.first.is_empty() && g.then.is_empty())
                    });
                    !groups.is_empty()
                }
                RuleState::FirstSeen { groups } => {
                    groups.retain(|_, g| {
                        g.values.retain(|s| s.last_t >= cutoff);
                        !g.values.is_empty()
                    });
                    !groups.is_empty()
                }
                RuleState::Reconcile { memory } => {
                    memory.prune();
                    true
                }
            }
        });
    }
}

/// Keeps `entries` sorted by time and at most `cap` long (the oldest go).
fn insert_sorted(entries: &mut Vec<Entry>, entry: Entry, cap: usize) {
    let at = entries.partition_point(|e| e.t <= entry.t);
    entries.insert(at, entry);
    if entries.len() > cap {
        let excess = entries.len() - cap;
        entries.drain(..excess);
    }
}

/// Removes `indices` (ascending) from `entries` and returns them, at most
/// [`MAX_EVIDENCE`] of them (the newest).
fn take(entries: &mut Vec<Entry>, indices: &[usize]) -> Vec<Entry> {
    let mut taken = Vec::with_capacity(indices.len());
    for &i in indices.iter().rev() {
        taken.push(entries.remove(i));
    }
    taken.reverse();
    if taken.len() > MAX_EVIDENCE {
        taken.drain(..taken.len() - MAX_EVIDENCE);
    }
    taken
}

/// Forgets the least recently touched group once a rule has [`MAX_GROUPS`].
fn cap_groups<G>(groups: &mut HashMap<String, G>, touched: impl Fn(&G) -> u64) {
    if groups.len() < MAX_GROUPS {
        return;
    }
    if let Some(key) = groups.iter().min_by_key(|(_, g)| touched(g)).map(|(k, _)| k.clone()) {
        groups.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(t: i64, id: &str, v: Option<&str>) -> Entry {
        Entry {
            t,
            id: id.into(),
            v: v.map(str::to_string),
        }
    }

    const MIN: i64 = 60_000;

    #[test]
    fn a_threshold_counts_distinct_values_within_the_window_in_any_arrival_order() {
        let mut s = State::default();
        // Newest first, as a backfill arrives.
        for i in (0..4).rev() {
            let ip = format!("10.0.0.{i}");
            assert!(
                s.threshold("r", "u".into(), e(i * MIN, &format!("e{i}"), Some(&ip)), 5, 30 * MIN)
                    .is_none()
            );
        }
        // A repeat of an address does not count twice; a repeat of an id not at all.
        assert!(
            s.threshold("r", "u".into(), e(MIN, "e1", Some("10.0.0.1")), 5, 30 * MIN)
                .is_none()
        );
        assert!(
            s.threshold("r", "u".into(), e(5 * MIN, "e5", Some("10.0.0.1")), 5, 30 * MIN)
                .is_none()
        );
        let fired = s
            .threshold("r", "u".into(), e(6 * MIN, "e6", Some("10.0.0.9")), 5, 30 * MIN)
            .expect("fires");
        assert_eq!(fired.len(), 6);
        assert!(
            s.threshold("r", "u".into(), e(7 * MIN, "e7", Some("10.0.0.8")), 5, 30 * MIN)
                .is_none()
        );
    }

    #[test]
    fn a_threshold_spread_wider_than_the_window_does_not_fire() {
        let mut s = State::default();
        for i in 0..10 {
            let ip = format!("10.0.0.{i}");
            assert!(
                s.threshold(
                    "r",
                    "u".into(),
                    e(i * 10 * MIN, &format!("e{i}"), Some(&ip)),
                    5,
                    30 * MIN
                )
                .is_none()
            );
        }
    }

    #[test]
    fn a_sequence_fires_when_the_success_arrives_before_its_failures() {
        let mut s = State::default();
        assert!(
            s.sequence("r", "u".into(), e(10 * MIN, "ok", None), false, true, 3, 30 * MIN)
                .is_none()
        );
        assert!(
            s.sequence("r", "u".into(), e(9 * MIN, "f1", None), true, false, 3, 30 * MIN)
                .is_none()
        );
        assert!(
            s.sequence("r", "u".into(), e(9 * MIN, "f2", None), true, false, 3, 30 * MIN)
                .is_none()
        );
        let fired = s
            .sequence("r", "u".into(), e(8 * MIN, "f3", None), true, false, 3, 30 * MIN)
            .expect("fires");
        assert_eq!(fired.last().map(|e| e.id.as_str()), Some("ok"));
        assert_eq!(fired.len(), 4);
    }

    #[test]
    fn first_seen_reports_the_later_value_whatever_the_arrival_order() {
        let mut forward = State::default();
        assert!(
            forward
                .first_seen("r", "u".into(), "US".into(), 1, "a", true)
                .is_empty()
        );
        assert!(
            forward
                .first_seen("r", "u".into(), "US".into(), 2, "b", true)
                .is_empty()
        );
        let new = forward.first_seen("r", "u".into(), "BR".into(), 3, "c", true);
        assert_eq!(new.iter().map(|s| s.first_id.as_str()).collect::<Vec<_>>(), ["c"]);
        assert!(
            forward
                .first_seen("r", "u".into(), "BR".into(), 4, "d", true)
                .is_empty()
        );

        let mut backward = State::default();
        assert!(
            backward
                .first_seen("r", "u".into(), "BR".into(), 3, "c", true)
                .is_empty()
        );
        let new = backward.first_seen("r", "u".into(), "US".into(), 2, "b", true);
        assert_eq!(new.iter().map(|s| s.first_id.as_str()).collect::<Vec<_>>(), ["c"]);
        let again = backward.first_seen("r", "u".into(), "US".into(), 1, "a", true);
        assert!(again.is_empty(), "reported once");
    }

    #[test]
    fn idle_groups_are_pruned_by_time_and_groups_are_capped() {
        let mut s = State::default();
        s.threshold("r", "old".into(), e(0, "x", None), 5, MIN);
        s.tick(100 * MIN);
        s.prune(|_| Some(MIN));
        assert!(!s.rules.is_empty(), "not idle yet");
        for _ in 0..IDLE_EVENTS {
            s.tick(100 * MIN);
        }
        s.prune(|_| Some(MIN));
        assert!(s.rules.is_empty());
        for i in 0..(MAX_GROUPS + 10) {
            s.first_seen("f", format!("u{i}"), "US".into(), 1, "a", true);
        }
        match &s.rules["f"] {
            RuleState::FirstSeen { groups } => assert!(groups.len() <= MAX_GROUPS),
            other => panic!("{other:?}"),
        }
        s.prune(|rule| (rule != "f").then_some(MIN));
        assert!(!s.rules.contains_key("f"), "state of a removed rule is dropped");
    }
}
