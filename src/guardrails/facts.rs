//! The reconciliation rules' facts in compact form: what the other stream said about an
//! object, keyed by a 128-bit digest of the fact's parts (`org`, kind or audit type, object
//! id) instead of the parts as text, each with up to [`TIMES_PER_FACT`] event times, one of
//! them without a heap allocation. About 40 bytes a fact instead of ~160, so the rules'
//! bound of [`MAX_FACTS`] facts costs ~2.5 MiB and a copy of it for the checkpoint is cheap.
//!
//! The digest is the first 128 bits of SHA-256 over the parts, each preceded by its length,
//! so parts never run into each other (`["ab", "c"]` and `["a", "bc"]` differ) and distinct
//! facts share a key with odds of about n²/2^129 — for 50,000 facts, ~10^-30. Saved state
//! keeps the digests (32 hex digits); a state saved with text keys (`org␟kind␟id`) is read
//! by digesting the text's parts, so nothing is forgotten across the upgrade.

use std::collections::HashMap;
use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// Facts remembered per rule; beyond it the oldest go.
pub const MAX_FACTS: usize = 50_000;
/// Times kept per fact (the same object named by several events).
pub const TIMES_PER_FACT: usize = 8;

/// The separator of the parts in the text keys of earlier saved states.
const OLD_SEPARATOR: char = '\u{1f}';

/// A fact's key: a digest of its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FactKey(u128);

/// The key of the fact made of `parts`.
pub fn fact_key(parts: &[&str]) -> FactKey {
    let mut h = Sha256::new();
    for part in parts {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    let digest = h.finalize();
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest[..16]);
    FactKey(u128::from_be_bytes(first))
}

/// A fact's event times (ms), sorted, at most [`TIMES_PER_FACT`], never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Times {
    One(i64),
    Many(Box<[i64]>),
}

impl Times {
    pub fn as_slice(&self) -> &[i64] {
        match self {
            Self::One(t) => std::slice::from_ref(t),
            Self::Many(ts) => ts,
        }
    }

    /// The latest time.
    pub fn latest(&self) -> i64 {
        self.as_slice().last().copied().unwrap_or(i64::MIN)
    }

    /// From sorted, distinct times (the newest [`TIMES_PER_FACT`] kept); `None` when empty.
    fn from_sorted(mut ts: Vec<i64>) -> Option<Self> {
        if ts.len() > TIMES_PER_FACT {
            ts.drain(..ts.len() - TIMES_PER_FACT);
        }
        match ts[..] {
            [] => None,
            [t] => Some(Self::One(t)),
            _ => Some(Self::Many(ts.into_boxed_slice())),
        }
    }

    /// With `t` added (unless there), the oldest dropped beyond the bound.
    fn with(&self, t: i64) -> Self {
        let mut ts = self.as_slice().to_vec();
        if let Err(at) = ts.binary_search(&t) {
            ts.insert(at, t);
        }
        Self::from_sorted(ts).unwrap_or(Self::One(t))
    }

    /// Only the times at or after `cutoff`; `None` when none is left.
    fn since(&self, cutoff: i64) -> Option<Self> {
        Self::from_sorted(self.as_slice().iter().copied().filter(|t| *t >= cutoff).collect())
    }
}

/// Fact key → times, bounded by [`MAX_FACTS`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    map: HashMap<FactKey, Times, foldhash::fast::RandomState>,
}

impl Facts {
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn contains(&self, key: FactKey) -> bool {
        self.map.contains_key(&key)
    }

    pub fn times(&self, key: FactKey) -> &[i64] {
        self.map.get(&key).map_or(&[], Times::as_slice)
    }

    /// Records that `key` was said at `t`, making room first when full.
    pub fn record(&mut self, key: FactKey, t: i64) {
        if self.map.len() >= MAX_FACTS && !self.map.contains_key(&key) {
            // The oldest tenth (by latest time) go at once: a full memory costs one scan per
            // MAX_FACTS / 10 new facts instead of one per fact.
            let mut by_age: Vec<(i64, FactKey)> = self.map.iter().map(|(k, ts)| (ts.latest(), *k)).collect();
            let cut = (MAX_FACTS / 10).clamp(1, by_age.len());
            by_age.select_nth_unstable(cut - 1);
            for (_, k) in &by_age[..cut] {
                self.map.remove(k);
            }
        }
        match self.map.get_mut(&key) {
            Some(times) if !times.as_slice().contains(&t) => *times = times.with(t),
            Some(_) => {}
            None => {
                self.map.insert(key, Times::One(t));
            }
        }
    }

    /// Forgets times before `cutoff`, and facts left without one.
    pub fn forget_before(&mut self, cutoff: i64) {
        self.map.retain(|_, ts| match ts.since(cutoff) {
            Some(kept) => {
                *ts = kept;
                true
            }
            None => false,
        });
    }
}

impl Serialize for Facts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.map.len()))?;
        for (key, times) in &self.map {
            map.serialize_entry(&format!("{:032x}", key.0), times.as_slice())?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Facts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Read;
        impl<'de> Visitor<'de> for Read {
            type Value = Facts;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of fact keys to event times")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Facts, A::Error> {
                let mut facts = Facts::default();
                while let Some((text, mut times)) = access.next_entry::<String, Vec<i64>>()? {
                    let key = if text.contains(OLD_SEPARATOR) {
                        fact_key(&text.split(OLD_SEPARATOR).collect::<Vec<_>>())
                    } else {
                        let digest = u128::from_str_radix(&text, 16)
                            .map_err(|_| serde::de::Error::custom(format!("fact key `{text}` is not 32 hex digits")))?;
                        FactKey(digest)
                    };
                    times.sort_unstable();
                    times.dedup();
                    if let Some(times) = Times::from_sorted(times) {
                        facts.map.insert(key, times);
                    }
                }
                Ok(facts)
            }
        }
        d.deserialize_map(Read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_different_parts_differ_even_where_their_text_would_join_alike() {
        let keys = [
            fact_key(&["org-1", "user", "user-1"]),
            fact_key(&["org-1", "user", "user-2"]),
            fact_key(&["org-1", "api_key", "user-1"]),
            fact_key(&["org-1", "-", "user", "user-1"]),
            fact_key(&["org-1", "useruser-1"]),
            fact_key(&["org-1", "user", "", "user-1"]),
            fact_key(&["org-1user", "user-1"]),
            fact_key(&["org-1\u{1f}user", "user-1"]),
        ];
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(keys[0], fact_key(&["org-1", "user", "user-1"]), "stable");
        // Saved states depend on this exact number.
        assert_eq!(
            format!("{:032x}", fact_key(&["a"]).0),
            "ae6121c88ba555f64c3d812123eb799d"
        );
    }

    #[test]
    fn times_stay_sorted_distinct_and_bounded_and_a_full_memory_drops_its_oldest_tenth() {
        let mut f = Facts::default();
        let k = fact_key(&["o", "k", "1"]);
        for t in [5, 3, 5, 9, 1, 7, 2, 8, 6, 4] {
            f.record(k, t);
        }
        assert_eq!(f.times(k), [2, 3, 4, 5, 6, 7, 8, 9]);
        f.forget_before(9);
        assert_eq!(f.times(k), [9]);
        f.forget_before(10);
        assert!(f.is_empty());

        let key = |i: usize| fact_key(&["o", "k", &i.to_string()]);
        for i in 0..(MAX_FACTS + 10) {
            f.record(key(i), i64::try_from(i).unwrap_or(0));
        }
        assert!(f.len() <= MAX_FACTS);
        assert!(!f.contains(key(0)), "the oldest go");
        assert!(f.contains(key(MAX_FACTS + 9)), "the newest stay");
    }

    #[test]
    fn saved_digests_and_text_keys_of_earlier_versions_are_read_back_as_the_same_facts() {
        let mut f = Facts::default();
        f.record(fact_key(&["org-1", "user", "user-1"]), 10);
        f.record(fact_key(&["org-1", "user", "user-1"]), 20);
        f.record(fact_key(&["org-1", "-", "api_key", "key-1"]), 30);
        let round_trip: Facts = serde_json::from_str(&serde_json::to_string(&f).expect("json")).expect("reads");
        assert_eq!(round_trip, f);

        let old = serde_json::json!({
            "org-1\u{1f}user\u{1f}user-1": [20, 10],
            "org-1\u{1f}-\u{1f}api_key\u{1f}key-1": [30],
        });
        let upgraded: Facts = serde_json::from_value(old).expect("text keys read");
        assert_eq!(upgraded, f);

        let bad = serde_json::from_value::<Facts>(serde_json::json!({"zz": [1]}));
        assert!(
            bad.expect_err("refused")
                .to_string()
                .contains("`zz` is not 32 hex digits")
        );
    }
}
