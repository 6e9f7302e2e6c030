//! A bounded set of recently delivered ids, each with the time of its event, used to drop the
//! repeats an overlapping re-read or an at-least-once source produces. It is persisted inside
//! the stream's checkpoint, so it must stay small: entries older than the re-read horizon are
//! pruned, and past `cap` entries the oldest go first (a repeat may then get through, which
//! receivers drop by id; nothing is ever lost).

use std::collections::BTreeSet;

use hashbrown::HashMap;
use hashbrown::hash_map::EntryRef;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Ids with their event time (Unix seconds or microseconds, as the stream chooses).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecentIds {
    /// Hashed with foldhash: every record of every stream is looked up here, and SipHash
    /// over an id cost several times as much.
    by_id: HashMap<String, i64, foldhash::fast::RandomState>,
    by_time: BTreeSet<(i64, String)>,
}

/// The largest set a stream keeps unless it asks for another bound.
pub const DEFAULT_CAP: usize = 50_000;

impl RecentIds {
    pub fn contains(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    /// Remembers `id`; returns false when it was already known (a repeat).
    pub fn insert(&mut self, id: &str, at: i64) -> bool {
        // One probe finds a repeat or makes the new entry.
        let EntryRef::Vacant(vacant) = self.by_id.entry_ref(id) else {
            return false;
        };
        vacant.insert(at);
        self.by_time.insert((at, id.to_string()));
        true
    }

    /// Forgets everything older than `at`.
    pub fn prune_before(&mut self, at: i64) {
        while let Some((t, _)) = self.by_time.first() {
            if *t >= at {
                break;
            }
            if let Some((_, id)) = self.by_time.pop_first() {
                self.by_id.remove(&id);
            }
        }
    }

    /// Keeps at most `cap` entries, dropping the oldest.
    pub fn truncate(&mut self, cap: usize) {
        while self.by_id.len() > cap {
            if let Some((_, id)) = self.by_time.pop_first() {
                self.by_id.remove(&id);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

impl Serialize for RecentIds {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Oldest first, as `[[id, time], …]`: compact and stable.
        s.collect_seq(self.by_time.iter().map(|(t, id)| (id, t)))
    }
}

impl<'de> Deserialize<'de> for RecentIds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let pairs = Vec::<(String, i64)>::deserialize(d)?;
        let mut set = RecentIds::default();
        for (id, at) in pairs {
            set.insert(&id, at);
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_reported_and_old_entries_pruned() {
        let mut ids = RecentIds::default();
        assert!(ids.insert("a", 10));
        assert!(ids.insert("b", 20));
        assert!(!ids.insert("a", 10), "a repeat");
        ids.prune_before(15);
        assert!(!ids.contains("a"));
        assert!(ids.contains("b"));
    }

    #[test]
    fn the_cap_drops_the_oldest_first() {
        let mut ids = RecentIds::default();
        for (i, id) in ["x", "y", "z"].iter().enumerate() {
            ids.insert(id, i64::try_from(i).expect("small"));
        }
        ids.truncate(2);
        assert!(!ids.contains("x") && ids.contains("y") && ids.contains("z"));
    }

    #[test]
    fn it_survives_a_round_trip_through_json() {
        let mut ids = RecentIds::default();
        ids.insert("b", 2);
        ids.insert("a", 1);
        let text = serde_json::to_string(&ids).expect("encode");
        assert_eq!(text, r#"[["a",1],["b",2]]"#);
        let back: RecentIds = serde_json::from_str(&text).expect("decode");
        assert_eq!(back, ids);
    }
}
