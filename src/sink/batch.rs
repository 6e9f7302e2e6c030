//! Batch sizing (pure): decides whether one more event fits a batch under the event count and
//! body byte bounds, counting exactly the bytes the protocol's frame adds (brackets,
//! separators, group headers such as Loki's stream labels).

use std::num::NonZeroUsize;
use std::sync::Arc;

use super::protocol::{Frame, Group, Piece};

/// The bounds a batch is cut by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The protocol's framing, which counts towards the bytes.
    pub frame: Frame,
    pub max_events: NonZeroUsize,
    /// Encoded body size before compression; only a lone event may exceed it.
    pub max_bytes: usize,
}

/// What the batcher needs to know of an item: its encoded size and group.
pub trait Weigh {
    fn piece(&self) -> &Piece;
}

impl Weigh for Piece {
    fn piece(&self) -> &Piece {
        self
    }
}

/// A batch being filled: the items and the size of the body they will encode to.
#[derive(Debug)]
pub struct Batch<T> {
    limits: Limits,
    items: Vec<T>,
    bytes: usize,
    /// Groups already opened in the body.
    groups: Vec<Arc<str>>,
}

impl<T: Weigh> Batch<T> {
    /// An empty batch.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            items: Vec::new(),
            bytes: 0,
            groups: Vec::new(),
        }
    }

    /// Bytes `piece` adds to the body as it stands.
    fn added(&self, piece: &Piece) -> usize {
        let frame = &self.limits.frame;
        let mut added = piece.bytes.len();
        if self.items.is_empty() {
            added += frame.prefix.len() + frame.suffix.len();
        }
        match &piece.group {
            Some(Group { key, overhead }) if !self.groups.contains(key) => {
                added += overhead;
                if !self.groups.is_empty() {
                    added += frame.separator.len();
                }
            }
            // Joins its group (or the flat list) after another piece.
            _ if !self.items.is_empty() => added += frame.separator.len(),
            _ => {}
        }
        added
    }

    /// Whether `item` may join without breaking a bound. An empty batch takes anything, so
    /// an event larger than `max_bytes` travels alone instead of blocking delivery forever.
    pub fn fits(&self, item: &T) -> bool {
        self.items.is_empty()
            || (self.items.len() < self.limits.max_events.get()
                && self.bytes.saturating_add(self.added(item.piece())) <= self.limits.max_bytes)
    }

    /// Adds `item`; the caller checks [`Batch::fits`] first and flushes when it says no.
    pub fn push(&mut self, item: T) {
        let piece = item.piece();
        self.bytes = self.bytes.saturating_add(self.added(piece));
        if let Some(group) = &piece.group
            && !self.groups.contains(&group.key)
        {
            self.groups.push(Arc::clone(&group.key));
        }
        self.items.push(item);
    }

    /// Whether no further event can join, whatever its size: the count bound is reached.
    pub fn is_full(&self) -> bool {
        self.items.len() >= self.limits.max_events.get()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// The encoded body size so far, before compression.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Empties the batch, returning its items in arrival order.
    pub fn take(&mut self) -> Vec<T> {
        self.bytes = 0;
        self.groups.clear();
        std::mem::take(&mut self.items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NDJSON: Frame = Frame {
        prefix: "",
        suffix: "\n",
        separator: "\n",
        group_close: "",
    };
    const ARRAY: Frame = Frame {
        prefix: "[",
        suffix: "]",
        separator: ",",
        group_close: "",
    };

    fn limits(frame: Frame, max_events: usize, max_bytes: usize) -> Limits {
        Limits {
            frame,
            max_events: NonZeroUsize::new(max_events).expect("non-zero"),
            max_bytes,
        }
    }

    fn piece(len: usize) -> Piece {
        Piece {
            bytes: vec![b'x'; len],
            group: None,
        }
    }

    fn grouped(len: usize, key: &str, overhead: usize) -> Piece {
        Piece {
            bytes: vec![b'x'; len],
            group: Some(Group {
                key: Arc::from(key),
                overhead,
            }),
        }
    }

    /// Cuts `pieces` into batches the way the sink does: push until refused, then flush.
    fn cut(limits: Limits, pieces: Vec<Piece>) -> Vec<Vec<usize>> {
        let mut batch = Batch::new(limits);
        let mut out = Vec::new();
        for piece in pieces {
            if !batch.fits(&piece) {
                out.push(batch.take().iter().map(|p| p.bytes.len()).collect());
            }
            batch.push(piece);
            if batch.is_full() {
                out.push(batch.take().iter().map(|p| p.bytes.len()).collect());
            }
        }
        if !batch.is_empty() {
            out.push(batch.take().iter().map(|p| p.bytes.len()).collect());
        }
        out
    }

    fn counted(frame: Frame, pieces: &[Piece]) -> usize {
        let mut batch = Batch::new(limits(frame, 1000, usize::MAX));
        for p in pieces {
            batch.push(p.clone());
        }
        batch.bytes()
    }

    #[test]
    fn body_length_counts_newlines_for_ndjson_and_brackets_and_commas_for_json() {
        assert_eq!(counted(NDJSON, &[piece(3), piece(4)]), 3 + 1 + 4 + 1);
        assert_eq!(counted(ARRAY, &[piece(3), piece(4)]), 2 + 3 + 1 + 4);
        assert_eq!(counted(ARRAY, &[piece(3)]), 5);
        assert_eq!(counted(ARRAY, &[]), 0);
    }

    #[test]
    fn a_group_header_is_counted_once_per_group_and_groups_are_separated() {
        let frame = Frame {
            prefix: "{[",
            suffix: "]}",
            separator: ",",
            group_close: "]}",
        };
        // Envelope 4; group a: 10 + 3, then 1 + 4 in the same group; group b: 1 + 7 + 2.
        let pieces = [grouped(3, "a", 10), grouped(4, "a", 10), grouped(2, "b", 7)];
        assert_eq!(counted(frame, &pieces), 4 + 10 + 3 + 1 + 4 + 1 + 7 + 2);
    }

    #[test]
    fn batches_are_cut_by_event_count() {
        let batches = cut(limits(NDJSON, 3, 1 << 20), (0..7).map(|_| piece(1)).collect());
        let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![3, 3, 1]);
    }

    #[test]
    fn batches_are_cut_by_encoded_bytes_and_never_exceed_them() {
        // Ten-byte events: NDJSON costs 11 each, so 3 fit in 33 bytes but not in 32.
        let exact = cut(limits(NDJSON, 100, 33), (0..7).map(|_| piece(10)).collect());
        assert_eq!(exact.iter().map(Vec::len).collect::<Vec<_>>(), vec![3, 3, 1]);
        let tight = cut(limits(NDJSON, 100, 32), (0..7).map(|_| piece(10)).collect());
        assert_eq!(tight.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 2, 2, 1]);
    }

    #[test]
    fn json_array_batches_count_the_brackets_and_commas() {
        // [a,b,c] of ten-byte events is 2 + 30 + 2 = 34 bytes.
        let fits = cut(limits(ARRAY, 100, 34), (0..3).map(|_| piece(10)).collect());
        assert_eq!(fits.len(), 1);
        let split = cut(limits(ARRAY, 100, 33), (0..3).map(|_| piece(10)).collect());
        assert_eq!(split.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 1]);
    }

    #[test]
    fn an_event_larger_than_the_byte_bound_goes_alone() {
        let batches = cut(
            limits(NDJSON, 100, 50),
            vec![piece(10), piece(500), piece(10), piece(10)],
        );
        assert_eq!(batches, vec![vec![10], vec![500], vec![10, 10]]);
    }

    #[test]
    fn a_full_batch_refuses_more_and_taking_empties_it() {
        let mut batch = Batch::new(limits(NDJSON, 1, 1000));
        assert!(batch.fits(&piece(5000)), "an empty batch takes anything");
        batch.push(piece(1));
        assert!(batch.is_full());
        assert!(!batch.fits(&piece(1)));
        assert_eq!((batch.len(), batch.bytes()), (1, 2));
        assert_eq!(batch.take().len(), 1);
        assert_eq!((batch.len(), batch.bytes()), (0, 0));
    }
}
