//! The event ids a compliance stream shipped recently, kept in its checkpoint to drop the
//! platform's at-least-once repeats.
//!
//! A checkpoint state is cloned for every mark left inside a file (every
//! `CHECKPOINT_EVERY_LINES` lines), every page and every finished file, and each clone waits
//! in memory until its events are acknowledged. With up to 20,000 ids per stream, a plain set
//! made every clone copy 20,000 strings twice (a map and a time-ordered set): most of the
//! path's allocations, and most of its memory with eight streams side by side. Here the ids
//! are kept in sealed groups that every clone shares (an `Arc` each); only the ids added since
//! the last [`RecentEvents::seal`] are the stream's own, and the lookup index is built only
//! where it is used (the stream's copy, or a state loaded from disk), never for a clone that
//! only waits to be written.
//!
//! Order is the order of insertion (the order events were read, which is event-time order
//! within a type up to the platform's repeats): "the oldest go first" means the first read.
//! On disk the set is `[[id, time], …]`, as `crate::dedup::RecentIds` writes it.

use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};

use hashbrown::HashSet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

type Index = HashSet<Arc<str>, foldhash::fast::RandomState>;

/// An id and its event time.
type Entry = (Arc<str>, i64);

/// Ids with their event time (Unix seconds), oldest first.
#[derive(Debug, Default)]
pub struct RecentEvents {
    /// Sealed groups, oldest first; clones share them.
    sealed: VecDeque<Arc<[Entry]>>,
    /// Ids added since the last seal.
    open: Vec<Entry>,
    /// Every id held, built on first use.
    index: OnceLock<Index>,
    len: usize,
}

impl Clone for RecentEvents {
    /// Shares the sealed groups; the open ones are copied (none right after a seal) and the
    /// index is left to be built if the clone is ever asked.
    fn clone(&self) -> Self {
        Self {
            sealed: self.sealed.clone(),
            open: self.open.clone(),
            index: OnceLock::new(),
            len: self.len,
        }
    }
}

impl PartialEq for RecentEvents {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl RecentEvents {
    /// Every id with its time, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = (&str, i64)> {
        self.sealed
            .iter()
            .flat_map(|g| g.iter())
            .chain(&self.open)
            .map(|(id, t)| (&**id, *t))
    }

    fn index(&self) -> &Index {
        self.index.get_or_init(|| {
            self.sealed
                .iter()
                .flat_map(|g| g.iter())
                .chain(&self.open)
                .map(|(id, _)| Arc::clone(id))
                .collect()
        })
    }

    fn index_mut(&mut self) -> &mut Index {
        self.index();
        self.index
            .get_mut()
            .unwrap_or_else(|| unreachable!("initialized just above"))
    }

    pub fn contains(&self, id: &str) -> bool {
        self.index().contains(id)
    }

    /// Remembers `id`; returns false when it was already known (a repeat).
    pub fn insert(&mut self, id: &str, at: i64) -> bool {
        // One probe: the set grows exactly when the id is new.
        let index = self.index_mut();
        let before = index.len();
        let id = Arc::clone(index.get_or_insert_with(id, |id: &str| Arc::from(id)));
        if index.len() == before {
            return false;
        }
        self.open.push((id, at));
        self.len += 1;
        true
    }

    /// Moves the ids added since the last seal into a group clones share: call before
    /// cloning for a checkpoint.
    pub fn seal(&mut self) {
        if !self.open.is_empty() {
            self.sealed.push_back(std::mem::take(&mut self.open).into());
        }
    }

    /// Forgets every id older than `at`.
    pub fn prune_before(&mut self, at: i64) {
        self.seal();
        if !self.iter().any(|(_, t)| t < at) {
            return;
        }
        let mut dropped = Vec::new();
        let groups = std::mem::take(&mut self.sealed);
        for group in groups {
            if group.iter().all(|&(_, t)| t >= at) {
                self.sealed.push_back(group);
                continue;
            }
            let (old, kept): (Vec<_>, Vec<_>) = group.iter().cloned().partition(|&(_, t)| t < at);
            dropped.extend(old);
            if !kept.is_empty() {
                self.sealed.push_back(kept.into());
            }
        }
        self.forget(&dropped);
    }

    /// Keeps at most `cap` ids, dropping the oldest.
    pub fn truncate(&mut self, cap: usize) {
        self.seal();
        let mut dropped = Vec::new();
        while self.len - dropped.len() > cap {
            let Some(group) = self.sealed.pop_front() else { break };
            let excess = self.len - dropped.len() - cap;
            if group.len() <= excess {
                dropped.extend(group.iter().cloned());
            } else {
                dropped.extend(group[..excess].iter().cloned());
                self.sealed.push_front(group[excess..].into());
            }
        }
        self.forget(&dropped);
    }

    fn forget(&mut self, dropped: &[Entry]) {
        self.len -= dropped.len();
        if let Some(index) = self.index.get_mut() {
            for (id, _) in dropped {
                index.remove(id);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Serialize for RecentEvents {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for RecentEvents {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut pairs = Vec::<(String, i64)>::deserialize(d)?;
        // Oldest first, whatever order an older version wrote.
        pairs.sort_by_key(|&(_, t)| t);
        let mut set = RecentEvents::default();
        for (id, at) in pairs {
            set.insert(&id, at);
        }
        set.seal();
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_reported_and_old_entries_pruned() {
        let mut ids = RecentEvents::default();
        assert!(ids.insert("a", 10));
        ids.seal();
        assert!(ids.insert("b", 20));
        assert!(!ids.insert("a", 10), "a repeat");
        ids.prune_before(15);
        assert!(!ids.contains("a"));
        assert!(ids.contains("b"));
        assert_eq!(ids.len(), 1);
        assert!(ids.insert("a", 10), "forgotten, so new again");
    }

    #[test]
    fn the_cap_drops_the_first_read_even_inside_a_group() {
        let mut ids = RecentEvents::default();
        for (i, id) in ["x", "y", "z"].iter().enumerate() {
            ids.insert(id, i64::try_from(i).expect("small"));
        }
        ids.seal();
        ids.insert("w", 3);
        ids.truncate(2);
        assert_eq!(ids.iter().collect::<Vec<_>>(), [("z", 2), ("w", 3)]);
        assert!(!ids.contains("x") && !ids.contains("y"));
        assert_eq!(ids.len(), 2);
    }

    #[test]
    fn a_clone_shares_what_was_sealed_and_answers_like_the_original() {
        let mut ids = RecentEvents::default();
        for i in 0..1000 {
            ids.insert(&format!("e{i}"), i);
        }
        ids.seal();
        let copy = ids.clone();
        assert!(Arc::ptr_eq(&ids.sealed[0], &copy.sealed[0]), "shared, not copied");
        ids.insert("later", 2000);
        assert!(copy.contains("e999") && !copy.contains("later"));
        assert_eq!(copy.len(), 1000);
        assert_ne!(copy, ids);
    }

    #[test]
    fn it_reads_what_the_plain_set_wrote_and_writes_the_same_layout() {
        let mut old = crate::dedup::RecentIds::default();
        old.insert("b", 2);
        old.insert("a", 1);
        let text = serde_json::to_string(&old).expect("encode");
        let back: RecentEvents = serde_json::from_str(&text).expect("decode");
        assert!(back.contains("a") && back.contains("b"));
        assert_eq!(serde_json::to_string(&back).expect("encode"), text);
        let again: crate::dedup::RecentIds = serde_json::from_str(&text).expect("decode");
        assert_eq!(again, old);
    }
}
