//! The memory budget of the stateful rules' groups (`guardrails.max_state_bytes`): what each
//! group holds, and forgetting the least recently touched groups, whatever their rule, when
//! they hold more.

use super::{Counted, Entry, Keyed, Point, RuleState, State, Steps, Track, Values};

/// What one group of a stateful rule holds, for the memory budget.
trait Group {
    /// When it was last touched (in processed events).
    fn touched(&self) -> u64;
    /// The heap bytes it holds (its lists and their texts), approximately: the allocator's
    /// rounding comes on top.
    fn bytes(&self) -> usize;
}

/// The heap bytes of a list of `T` and of what each item holds besides.
fn list_bytes<T>(items: &[T], capacity: usize, held: impl Fn(&T) -> usize) -> usize {
    capacity * size_of::<T>() + items.iter().map(held).sum::<usize>()
}

fn entries_bytes(entries: &Vec<Entry>) -> usize {
    list_bytes(entries, entries.capacity(), |e| {
        e.id.capacity()
            + if e.v.spilled() {
                e.v.capacity() * size_of::<u64>()
            } else {
                0
            }
    })
}

impl Group for Counted {
    fn touched(&self) -> u64 {
        self.touched
    }
    fn bytes(&self) -> usize {
        entries_bytes(&self.entries)
    }
}

impl Group for Steps {
    fn touched(&self) -> u64 {
        self.touched
    }
    fn bytes(&self) -> usize {
        entries_bytes(&self.first) + entries_bytes(&self.then)
    }
}

impl Group for Values {
    fn touched(&self) -> u64 {
        self.touched
    }
    fn bytes(&self) -> usize {
        list_bytes(&self.values, self.values.capacity(), |s| {
            s.value.capacity() + s.first_id.capacity()
        })
    }
}

impl Group for Track {
    fn touched(&self) -> u64 {
        self.touched
    }
    fn bytes(&self) -> usize {
        list_bytes(&self.points, self.points.capacity(), Point::bytes)
    }
}

/// A group's bytes with its slot in the rule's map and its key.
fn slot_bytes<G: Group>(key: &String, group: &G) -> usize {
    size_of::<(String, G)>() + key.capacity() + group.bytes()
}

/// A rule's groups, whatever their kind, as the budget sees them.
trait Groups {
    /// The bytes they hold, with their slots and keys.
    fn bytes(&self) -> usize;
    /// Appends each group's (last touched, `rule`, key, bytes) to `out`.
    fn ages<'a>(&'a self, rule: &'a str, out: &mut Vec<(u64, &'a str, &'a str, usize)>);
    /// Forgets the groups that order at or before `cut` by (last touched, rule, key).
    fn forget_up_to(&mut self, rule: &str, cut: (u64, &str, &str));
}

impl<G: Group> Groups for Keyed<G> {
    fn bytes(&self) -> usize {
        self.iter().map(|(k, g)| slot_bytes(k, g)).sum()
    }

    fn ages<'a>(&'a self, rule: &'a str, out: &mut Vec<(u64, &'a str, &'a str, usize)>) {
        out.extend(
            self.iter()
                .map(|(k, g)| (g.touched(), rule, k.as_str(), slot_bytes(k, g))),
        );
    }

    fn forget_up_to(&mut self, rule: &str, cut: (u64, &str, &str)) {
        self.retain(|k, g| (g.touched(), rule, k.as_str()) > cut);
    }
}

impl RuleState {
    /// Its groups, for a rule that keeps them by group.
    fn groups(&self) -> Option<&dyn Groups> {
        match self {
            Self::Threshold { groups } => Some(groups),
            Self::Sequence { groups } => Some(groups),
            Self::FirstSeen { groups } => Some(groups),
            Self::Velocity { groups } => Some(groups),
            Self::Reconcile { .. } => None,
        }
    }

    fn groups_mut(&mut self) -> Option<&mut dyn Groups> {
        match self {
            Self::Threshold { groups } => Some(groups),
            Self::Sequence { groups } => Some(groups),
            Self::FirstSeen { groups } => Some(groups),
            Self::Velocity { groups } => Some(groups),
            Self::Reconcile { .. } => None,
        }
    }
}

/// After forgetting for the budget, the groups fill at most this share of it, so that the
/// next few thousand events do not each start another round.
const REFILL_FROM: f64 = 0.9;

impl State {
    /// The approximate heap bytes held by the groups of threshold, sequence, first-seen and
    /// velocity rules (reconciliation memories are bounded by their own caps).
    pub fn group_bytes(&self) -> usize {
        self.rules
            .values()
            .filter_map(RuleState::groups)
            .map(Groups::bytes)
            .sum()
    }

    /// Keeps the groups within `budget` bytes (as [`State::group_bytes`] counts them): when
    /// over it, forgets the least recently touched groups, whatever their rule, until they
    /// fill at most [`REFILL_FROM`] of it. Returns how many groups it forgot and the bytes
    /// the groups hold now.
    pub fn fit(&mut self, budget: usize) -> (usize, usize) {
        let total = self.group_bytes();
        if total <= budget {
            return (0, total);
        }
        let mut by_age = Vec::new();
        for (rule, state) in &self.rules {
            if let Some(groups) = state.groups() {
                groups.ages(rule, &mut by_age);
            }
        }
        // Oldest first; ties by rule and key, so the choice is the same on every run.
        by_age.sort_unstable();
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let goal = (budget as f64 * REFILL_FROM) as usize;
        let (mut left, mut forgot) = (total, 0usize);
        for &(_, _, _, bytes) in &by_age {
            if left <= goal {
                break;
            }
            left -= bytes;
            forgot += 1;
        }
        let Some(&(touched, rule, key, _)) = forgot.checked_sub(1).and_then(|last| by_age.get(last)) else {
            return (0, total);
        };
        let (rule, key) = (rule.to_string(), key.to_string());
        for (name, state) in &mut self.rules {
            if let Some(groups) = state.groups_mut() {
                groups.forget_up_to(name, (touched, &rule, &key));
            }
        }
        (forgot, left)
    }
}
