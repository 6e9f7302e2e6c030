//! What the stream keeps in memory of a snapshot: per object a 128-bit digest of its kind and
//! key (distinct objects never share one), the first 64 bits of its content hash (a change
//! goes unnoticed with odds of 2^-64) and where its line is in the snapshot file — 32 bytes
//! an object, whatever the object holds. Everything else stays on disk
//! ([`super::store`]).

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use super::kind::Kind;

/// Where an object is and what it looked like, in brief.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// The first 64 bits of the object's content hash.
    pub hash: u64,
    /// Where its line starts in the snapshot file.
    pub offset: u64,
}

/// Object digest → slot, for one snapshot.
#[derive(Debug, Default)]
pub struct Index {
    slots: HashMap<u128, Slot, foldhash::fast::RandomState>,
}

/// The digest of object `key` of `kind`.
pub fn object_digest(kind: Kind, key: &str) -> u128 {
    let mut h = Sha256::new();
    h.update(kind.name().as_bytes());
    h.update([0u8]);
    h.update(key.as_bytes());
    first_128(&h.finalize())
}

/// The first 64 bits of a hex content hash ([`super::diff::content_hash`]).
pub fn hash_digest(hex_hash: &str) -> u64 {
    hex_hash
        .get(..16)
        .and_then(|h| u64::from_str_radix(h, 16).ok())
        .unwrap_or_default()
}

fn first_128(bytes: &[u8]) -> u128 {
    let mut b = [0u8; 16];
    b.copy_from_slice(&bytes[..16]);
    u128::from_be_bytes(b)
}

impl Index {
    /// An index with room for `objects` without growing (a run expects about as many
    /// objects as the previous one had).
    pub fn with_capacity(objects: usize) -> Self {
        Self {
            slots: HashMap::with_capacity_and_hasher(objects, Default::default()),
        }
    }

    pub fn get(&self, object: u128) -> Option<Slot> {
        self.slots.get(&object).copied()
    }

    pub fn contains(&self, object: u128) -> bool {
        self.slots.contains_key(&object)
    }

    pub fn insert(&mut self, object: u128, slot: Slot) {
        self.slots.insert(object, slot);
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_key_of_two_kinds_is_two_objects_and_a_hash_keeps_its_first_64_bits() {
        assert_ne!(object_digest(Kind::User, "u1"), object_digest(Kind::ProjectUser, "u1"));
        assert_eq!(object_digest(Kind::User, "u1"), object_digest(Kind::User, "u1"));
        let hex = "00112233445566778899aabbccddeeff0123";
        assert_eq!(hash_digest(hex), 0x0011_2233_4455_6677);
        let mut index = Index::default();
        index.insert(7, Slot { hash: 1, offset: 2 });
        assert_eq!(index.get(7), Some(Slot { hash: 1, offset: 2 }));
        assert!(!index.contains(8));
        assert_eq!(index.len(), 1);
    }
}
