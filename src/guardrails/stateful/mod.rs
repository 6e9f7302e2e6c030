//! State of the threshold, sequence, first-seen, velocity and reconciliation rules: bounded
//! per-group memories that survive restarts (serialized as the `guardrails` checkpoint) and are
//! pruned by time and capped in size.
//!
//! Events do not arrive in time order: an audit-log backfill pages newest first. So every
//! decision is made on event time (`occurred_at`), whatever the arrival order, and state is
//! only forgotten once a group has been idle for a while (counted in processed events) and its
//! entries are older than the newest event time minus the window.
//!
//! - `window`: threshold and sequence rules (entries within a sliding window).
//! - `first_seen`: values per group.
//! - `velocity`: places per group, and the distance and speed between consecutive ones.
//! - `budget`: what the groups hold, and forgetting the least recently touched when they
//!   hold more than `guardrails.max_state_bytes`.
//! - reconciliation memories live in `super::reconcile`.

mod budget;
mod first_seen;
mod json;
mod velocity;
mod window;

use hashbrown::HashMap;
use serde::{Deserialize, Deserializer, Serialize};

use super::reconcile::{Check, Memory, Pending};
use crate::normalize::Event;

pub use first_seen::Keep;
pub use json::write_state;
pub use velocity::{Limits, Point};
pub use window::Need;

/// Format version of the saved state. Version 1 kept a threshold entry's distinct value as
/// text; version 2 keeps a fingerprint per distinct field (64-bit FNV-1a) and adds velocity
/// groups; version 3 fingerprints with XXH3-64. A version 1 state is read as this one (each
/// text becomes its fingerprint); a version 2 state forgets the entries that carry
/// fingerprints (distinct-counting threshold rules' windows: hours of history), since they
/// cannot be recomputed; anything else is reset.
pub const VERSION: u32 = 3;

/// Groups per rule; beyond it the least recently touched group is forgotten.
pub const MAX_GROUPS: usize = 10_000;
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
    /// Fingerprints of the `distinct` fields' values, one per field, for threshold rules that
    /// count distinct values: the state holds no user text, and stays small.
    #[serde(
        default,
        skip_serializing_if = "Fingerprints::is_empty",
        deserialize_with = "fingerprints"
    )]
    pub v: Fingerprints,
}

/// An entry's fingerprints: up to two (what the built-in rules count) inside the entry, so
/// comparing an event's values with a group's entries reads the entries' own list instead of
/// following a pointer per entry into cold memory (~8 % of the guardrails' time with the
/// pipeline's other work between two events; benches/README.md). More spill to the heap.
pub type Fingerprints = smallvec::SmallVec<[u64; 2]>;

/// A value's fingerprint: XXH3-64 (seed 0), stable across builds and platforms (the state is
/// saved), so equal values match after a restart. Every sign-in fingerprints its user agent;
/// FNV-1a, one multiplication a byte, was 8 % of the guardrails' time (benches/README.md).
pub fn fingerprint(value: &str) -> u64 {
    twox_hash::XxHash3_64::oneshot(value.as_bytes())
}

/// Reads `v` as saved by versions 2 and 3 (a list of fingerprints) or version 1 (the value
/// itself).
fn fingerprints<'de, D: Deserializer<'de>>(d: D) -> Result<Fingerprints, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Saved {
        List(Fingerprints),
        Text(String),
    }
    Ok(match Option::<Saved>::deserialize(d)? {
        Some(Saved::List(v)) => v,
        Some(Saved::Text(text)) => Fingerprints::from_slice(&[fingerprint(&text)]),
        None => Fingerprints::new(),
    })
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

/// A velocity rule's group: where its events happened.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Track {
    /// Sorted by `t`.
    pub points: Vec<Point>,
    pub touched: u64,
}

/// A map keyed by rule id or group key. Every stateful rule looks up its rule and its group
/// for every event it sees, so the hash is foldhash (randomly seeded per process, which keeps
/// keys an outsider can choose, such as e-mail addresses, from being made to collide) rather
/// than the slower SipHash.
pub type Keyed<V> = HashMap<String, V, foldhash::fast::RandomState>;

/// One rule's memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RuleState {
    Threshold { groups: Keyed<Counted> },
    Sequence { groups: Keyed<Steps> },
    FirstSeen { groups: Keyed<Values> },
    Velocity { groups: Keyed<Track> },
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
    pub rules: Keyed<RuleState>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            version: VERSION,
            processed: 0,
            watermark: i64::MIN,
            rules: Keyed::default(),
        }
    }
}

/// What the threshold and sequence checks decided.
pub type Evidence = Vec<Entry>;

/// A rule's groups of one kind, created on first use.
macro_rules! groups_of {
    ($name:ident, $variant:ident, $group:ty) => {
        fn $name(&mut self, rule: &str) -> &mut Keyed<$group> {
            // One probe; the rule id is copied only when the rule's state is created.
            let empty = || RuleState::$variant {
                groups: Keyed::default(),
            };
            let state = self.rules.entry_ref(rule).or_insert_with(empty);
            if !matches!(state, RuleState::$variant { .. }) {
                *state = empty();
            }
            match state {
                RuleState::$variant { groups } => groups,
                _ => unreachable!("replaced above"),
            }
        }
    };
}

impl State {
    groups_of!(threshold_groups, Threshold, Counted);
    groups_of!(sequence_groups, Sequence, Steps);
    groups_of!(first_seen_groups, FirstSeen, Values);
    groups_of!(velocity_groups, Velocity, Track);

    /// Takes `event` into a reconciliation rule's memory; the items now decided as
    /// unexplained.
    pub fn reconcile(&mut self, rule: &str, check: Check, grace_ms: i64, event: &Event) -> Vec<Pending> {
        // It sees every event: one lookup when the memory exists.
        if let Some(RuleState::Reconcile { memory }) = self.rules.get_mut(rule) {
            return memory.observe(check, grace_ms, event);
        }
        let mut memory = Box::<Memory>::default();
        let decided = memory.observe(check, grace_ms, event);
        self.rules.insert(rule.to_string(), RuleState::Reconcile { memory });
        decided
    }

    /// The state as this version keeps it: a saved state of this version, of version 1
    /// (whose values were read as fingerprints) or of version 2 (without its entries'
    /// fingerprints of another hash), or `None` for a version it cannot read.
    pub fn migrate(mut self) -> Option<Self> {
        match self.version {
            VERSION | 1 => {}
            2 => {
                for state in self.rules.values_mut() {
                    if let RuleState::Threshold { groups } = state {
                        groups.retain(|_, g| {
                            g.entries.retain(|e| e.v.is_empty());
                            !g.entries.is_empty()
                        });
                    }
                }
            }
            _ => return None,
        }
        self.version = VERSION;
        Some(self)
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
                RuleState::Velocity { groups } => {
                    groups.retain(|_, g| {
                        if idle(g.touched) {
                            g.points.retain(|p| p.t >= cutoff);
                        }
                        !g.points.is_empty()
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

/// Makes room for one more item in `items`, growing by half its length rather than doubling:
/// most groups hold one or two items for their whole life, and a doubled (or Vec's minimum
/// of four) capacity was most of a large state.
fn room<T>(items: &mut Vec<T>) {
    if items.len() == items.capacity() {
        items.reserve_exact((items.len() / 2).max(1));
    }
}

/// How many groups a full rule forgets at once. Forgetting one at a time meant a scan of
/// all [`MAX_GROUPS`] for the least recently touched on every new key once a rule was full:
/// in a million-event backfill the guardrails' cost per event tripled.
const FORGET_AT_ONCE: usize = MAX_GROUPS / 10;

/// The group of `key`, created empty on first use (the key is copied only then), after
/// making room under [`MAX_GROUPS`] by forgetting the least recently touched tenth. One probe
/// finds a known group (every stateful rule does this for every event it sees).
fn group<'a, G: Default>(groups: &'a mut Keyed<G>, key: &str, touched: impl Fn(&G) -> u64) -> &'a mut G {
    if groups.len() >= MAX_GROUPS && !groups.contains_key(key) {
        forget_least_recent(groups, touched);
    }
    groups.entry_ref(key).or_default()
}

/// Forgets the [`FORGET_AT_ONCE`] least recently touched groups (ties by key, so the choice
/// is the same on every run).
fn forget_least_recent<G>(groups: &mut Keyed<G>, touched: impl Fn(&G) -> u64) {
    let mut by_age: Vec<(u64, &String)> = groups.iter().map(|(k, g)| (touched(g), k)).collect();
    let n = FORGET_AT_ONCE.min(by_age.len());
    if n == 0 {
        return;
    }
    by_age.select_nth_unstable(n - 1);
    let oldest: Vec<String> = by_age[..n].iter().map(|&(_, k)| k.clone()).collect();
    for key in oldest {
        groups.remove(&key);
    }
}

/// Whether `entries` (sorted by time) hold the event `(t, id)`: only entries of that time
/// are compared. Most events are older than all a group holds (a backfill pages newest
/// first) or newer (live ones come in order): the ends tell, without a binary search whose
/// every probe is a cache line of a group the other stages have since pushed out.
fn holds(entries: &[Entry], t: i64, id: &str) -> bool {
    match (entries.first(), entries.last()) {
        (Some(first), Some(last)) if first.t <= t && t <= last.t => {
            let from = entries.partition_point(|e| e.t < t);
            entries[from..].iter().take_while(|e| e.t == t).any(|e| e.id == id)
        }
        _ => false,
    }
}

/// Whether [`insert_sorted`] would drop an entry at `t` at once: `entries` are `cap` long
/// and all newer.
fn drops_at_once(entries: &[Entry], t: i64, cap: usize) -> bool {
    entries.len() >= cap && entries.first().is_some_and(|e| e.t > t)
}

/// Keeps `entries` sorted by time and at most `cap` long (the oldest go).
fn insert_sorted(entries: &mut Vec<Entry>, entry: Entry, cap: usize) {
    // At either end, as in [`holds`], without a search.
    let at = match (entries.first(), entries.last()) {
        (_, Some(last)) if last.t <= entry.t => entries.len(),
        (Some(first), _) if entry.t < first.t => 0,
        _ => entries.partition_point(|e| e.t <= entry.t),
    };
    room(entries);
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

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;
    /// Five events within a minute.
    const FIVE_A_MINUTE: Need<'static> = Need {
        count: 5,
        minimums: &[],
        window_ms: MIN,
    };

    #[test]
    fn idle_groups_are_pruned_by_time_and_groups_are_capped() {
        let mut s = State::default();
        s.threshold("r", "old", (0, "x"), &[], &FIVE_A_MINUTE);
        s.tick(100 * MIN);
        s.prune(|_| Some(MIN));
        assert!(!s.rules.is_empty(), "not idle yet");
        for _ in 0..IDLE_EVENTS {
            s.tick(100 * MIN);
        }
        s.prune(|_| Some(MIN));
        assert!(s.rules.is_empty());
        for i in 0..(MAX_GROUPS + 10) {
            s.first_seen("f", &format!("u{i}"), "US", (1, "a"), Keep::default());
        }
        match &s.rules["f"] {
            RuleState::FirstSeen { groups } => assert!(groups.len() <= MAX_GROUPS),
            other => panic!("{other:?}"),
        }
        s.prune(|rule| (rule != "f").then_some(MIN));
        assert!(!s.rules.contains_key("f"), "state of a removed rule is dropped");
    }

    #[test]
    fn a_full_rule_forgets_its_least_recently_touched_tenth_at_once() {
        let mut s = State::default();
        for i in 0..MAX_GROUPS {
            s.tick(1);
            s.first_seen("f", &format!("u{i}"), "US", (1, "a"), Keep::default());
        }
        // u0 is touched again: now the most recent.
        s.tick(1);
        s.first_seen("f", "u0", "US", (1, "a"), Keep::default());
        s.tick(1);
        s.first_seen("f", "new", "US", (1, "a"), Keep::default());
        let RuleState::FirstSeen { groups } = &s.rules["f"] else {
            panic!("{:?}", s.rules["f"]);
        };
        assert_eq!(groups.len(), MAX_GROUPS - FORGET_AT_ONCE + 1);
        for kept in [
            "new",
            "u0",
            &format!("u{}", FORGET_AT_ONCE + 1),
            &format!("u{}", MAX_GROUPS - 1),
        ] {
            assert!(groups.contains_key(kept), "{kept} was touched recently");
        }
        for forgotten in ["u1", &format!("u{FORGET_AT_ONCE}")] {
            assert!(
                !groups.contains_key(forgotten),
                "{forgotten} was among the oldest tenth"
            );
        }
    }

    #[test]
    fn a_state_over_its_budget_forgets_its_least_recently_touched_groups_whatever_their_rule() {
        let mut s = State::default();
        // Groups touched in turns, alternating between two rules of different kinds.
        for i in 0..200 {
            s.tick(1);
            if i % 2 == 0 {
                s.threshold("t", &format!("u{i}"), (1, &format!("e{i}")), &[], &FIVE_A_MINUTE);
            } else {
                s.first_seen("f", &format!("u{i}"), "US", (1, &format!("e{i}")), Keep::default());
            }
        }
        let total = s.group_bytes();
        assert_eq!(s.fit(total), (0, total), "within the budget nothing is forgotten");
        assert_eq!(s.group_bytes(), total);

        let budget = total / 2;
        let (forgot, left) = s.fit(budget);
        assert!(forgot > 0);
        assert_eq!(left, s.group_bytes());
        assert!(s.group_bytes() <= budget, "{} > {budget}", s.group_bytes());
        let has = |rule: &str, key: &str| match &s.rules[rule] {
            RuleState::Threshold { groups } => groups.contains_key(key),
            RuleState::FirstSeen { groups } => groups.contains_key(key),
            other => panic!("{other:?}"),
        };
        // The newest of each rule stay, the oldest of each go.
        assert!(has("t", "u198") && has("f", "u199"));
        assert!(!has("t", "u0") && !has("f", "u1"));
        let kept = |rule: &str| match &s.rules[rule] {
            RuleState::Threshold { groups } => groups.len(),
            RuleState::FirstSeen { groups } => groups.len(),
            other => panic!("{other:?}"),
        };
        assert_eq!(kept("t") + kept("f") + forgot, 200);
    }

    #[test]
    fn a_group_of_one_event_holds_room_for_one() {
        let mut s = State::default();
        s.threshold("t", "u", (1, "e1"), &[], &FIVE_A_MINUTE);
        s.first_seen("f", "u", "US", (1, "e1"), Keep::default());
        let RuleState::Threshold { groups } = &s.rules["t"] else {
            panic!("{:?}", s.rules["t"]);
        };
        assert_eq!(groups["u"].entries.capacity(), 1);
        let RuleState::FirstSeen { groups } = &s.rules["f"] else {
            panic!("{:?}", s.rules["f"]);
        };
        assert_eq!(groups["u"].values.capacity(), 1);
    }

    #[test]
    fn two_distinct_fingerprints_live_inside_the_entry_and_the_budget_counts_only_its_id() {
        let mut s = State::default();
        let need = Need {
            count: 0,
            minimums: &[3, 2],
            window_ms: MIN,
        };
        s.threshold("t", "u", (1, "e1"), &[7, 8], &need);
        let RuleState::Threshold { groups } = &s.rules["t"] else {
            panic!("{:?}", s.rules["t"]);
        };
        let entry = &groups["u"].entries[0];
        assert_eq!(entry.v.as_slice(), [7, 8]);
        assert!(!entry.v.spilled(), "no allocation for two fingerprints");
        let slot = size_of::<(String, Counted)>() + "u".len();
        assert_eq!(s.group_bytes(), slot + size_of::<Entry>() + entry.id.capacity());
        // Saved and read back, the fingerprints are a plain list, as before.
        let json = serde_json::to_value(&s).expect("json");
        assert_eq!(
            json["rules"]["t"]["groups"]["u"]["entries"][0]["v"],
            serde_json::json!([7, 8])
        );
        let back: State = serde_json::from_value(json.clone()).expect("reads back");
        assert_eq!(back, s);
        // Read from text, as the checkpoint store does (no length known ahead): still inline.
        let back: State = serde_json::from_str(&json.to_string()).expect("reads back");
        let RuleState::Threshold { groups } = &back.rules["t"] else {
            panic!("{:?}", back.rules["t"]);
        };
        assert!(!groups["u"].entries[0].v.spilled(), "read back inline too");
    }

    #[test]
    fn a_version_1_state_is_read_with_its_values_as_fingerprints_and_others_are_refused() {
        let saved = serde_json::json!({
            "version": 1, "processed": 7, "watermark": 1000,
            "rules": {"credential_stuffing": {"kind": "threshold", "groups": {"u": {
                "entries": [{"t": 1, "id": "e1", "v": "203.0.113.1"}, {"t": 2, "id": "e2"}],
                "touched": 3}}}}
        });
        let state: State = serde_json::from_value(saved).expect("version 1 reads");
        let state = state.migrate().expect("migrates");
        assert_eq!(state.version, VERSION);
        match &state.rules["credential_stuffing"] {
            RuleState::Threshold { groups } => {
                let entries = &groups["u"].entries;
                assert_eq!(entries[0].v.as_slice(), [fingerprint("203.0.113.1")]);
                assert!(entries[1].v.is_empty());
            }
            other => panic!("{other:?}"),
        }
        let round_trip: State =
            serde_json::from_str(&serde_json::to_string(&state).expect("json")).expect("reads back");
        assert_eq!(round_trip, state);
        let future = State {
            version: 99,
            ..State::default()
        };
        assert_eq!(future.migrate(), None);
    }

    #[test]
    fn a_version_2_state_forgets_only_the_entries_fingerprinted_with_fnv() {
        let saved = serde_json::json!({
            "version": 2, "processed": 7, "watermark": 1000,
            "rules": {
                "many_countries": {"kind": "threshold", "groups": {
                    "u": {"entries": [{"t": 1, "id": "e1", "v": [1, 2]}], "touched": 3},
                    "w": {"entries": [{"t": 1, "id": "e2", "v": [3]}, {"t": 2, "id": "e3"}], "touched": 4}}},
                "stuffing": {"kind": "threshold", "groups": {
                    "ip": {"entries": [{"t": 5, "id": "e4"}], "touched": 5}}}}
        });
        let state: State = serde_json::from_value(saved).expect("version 2 reads");
        let state = state.migrate().expect("migrates");
        assert_eq!(state.version, VERSION);
        let groups = |rule: &str| match &state.rules[rule] {
            RuleState::Threshold { groups } => groups.clone(),
            other => panic!("{other:?}"),
        };
        let many = groups("many_countries");
        assert!(!many.contains_key("u"), "a group left empty is dropped");
        assert_eq!(many["w"].entries.len(), 1);
        assert_eq!(many["w"].entries[0].id, "e3");
        assert_eq!(
            groups("stuffing")["ip"].entries.len(),
            1,
            "counting rules keep their entries"
        );
    }

    #[test]
    fn fingerprints_are_stable() {
        // Saved state depends on these exact numbers: XXH3-64 with seed 0, the reference
        // implementation's values (xxhsum -H3 of an empty input and of "a").
        assert_eq!(fingerprint(""), 0x2d06_8005_38d3_94c2);
        assert_eq!(fingerprint("a"), 0xe6c6_32b6_1e96_4e1f);
        assert_ne!(fingerprint("US"), fingerprint("GB"));
    }
}
