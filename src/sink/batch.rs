//! Batch sizing (pure): decides whether one more encoded event fits a batch under the event
//! count and encoded-body byte bounds, counting the bytes the body format adds.

use std::num::NonZeroUsize;

use super::settings::{SinkFormat, SinkSettings};

/// The bounds a batch is cut by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Separators and brackets depend on the body format, so they count towards the bytes.
    pub format: SinkFormat,
    pub max_events: NonZeroUsize,
    /// Encoded body size before compression; only a lone event may exceed it.
    pub max_bytes: usize,
}

impl Limits {
    /// The bounds configured for the sink.
    pub fn from_settings(settings: &SinkSettings) -> Self {
        Self {
            format: settings.format,
            max_events: settings.max_batch_events,
            max_bytes: settings.max_batch_bytes,
        }
    }
}

/// Bytes an event of `len` bytes adds to a body that already holds `count` events.
fn added_bytes(format: SinkFormat, count: usize, len: usize) -> usize {
    match format {
        // The event and its newline.
        SinkFormat::Ndjson => len.saturating_add(1),
        // The first event brings the brackets, every later one a comma.
        SinkFormat::Json if count == 0 => len.saturating_add(2),
        SinkFormat::Json => len.saturating_add(1),
    }
}

/// The encoded body size, before compression, of events with these lengths.
#[cfg(test)]
pub fn body_len(format: SinkFormat, lens: impl IntoIterator<Item = usize>) -> usize {
    let mut total = 0usize;
    for (count, len) in lens.into_iter().enumerate() {
        total = total.saturating_add(added_bytes(format, count, len));
    }
    total
}

/// A batch being filled: the items and the size of the body they will encode to.
#[derive(Debug)]
pub struct Batch<T> {
    limits: Limits,
    items: Vec<T>,
    bytes: usize,
}

impl<T> Batch<T> {
    /// An empty batch.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            items: Vec::new(),
            bytes: 0,
        }
    }

    /// Whether an event whose encoding is `len` bytes may join without breaking a bound. An
    /// empty batch takes any event, so one larger than `max_bytes` travels alone instead of
    /// blocking delivery forever.
    pub fn fits(&self, len: usize) -> bool {
        self.items.is_empty()
            || (self.items.len() < self.limits.max_events.get()
                && self
                    .bytes
                    .saturating_add(added_bytes(self.limits.format, self.items.len(), len))
                    <= self.limits.max_bytes)
    }

    /// Adds `item`, whose encoding is `len` bytes; the caller checks [`Batch::fits`] first and
    /// flushes when it says no.
    pub fn push(&mut self, item: T, len: usize) {
        let added = added_bytes(self.limits.format, self.items.len(), len);
        self.items.push(item);
        self.bytes = self.bytes.saturating_add(added);
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
        std::mem::take(&mut self.items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(format: SinkFormat, max_events: usize, max_bytes: usize) -> Limits {
        Limits {
            format,
            max_events: NonZeroUsize::new(max_events).expect("non-zero"),
            max_bytes,
        }
    }

    /// Cuts `lens` into batches the way the sink does: push until refused, then flush.
    fn cut(limits: Limits, lens: &[usize]) -> Vec<Vec<usize>> {
        let mut batch = Batch::new(limits);
        let mut out = Vec::new();
        for &len in lens {
            if !batch.fits(len) {
                out.push(batch.take());
            }
            batch.push(len, len);
            if batch.is_full() {
                out.push(batch.take());
            }
        }
        if !batch.is_empty() {
            out.push(batch.take());
        }
        out
    }

    #[test]
    fn body_length_counts_newlines_for_ndjson_and_brackets_and_commas_for_json() {
        assert_eq!(body_len(SinkFormat::Ndjson, [3, 4]), 3 + 1 + 4 + 1);
        assert_eq!(body_len(SinkFormat::Json, [3, 4]), 2 + 3 + 1 + 4);
        assert_eq!(body_len(SinkFormat::Json, [3]), 5);
        assert_eq!(body_len(SinkFormat::Json, []), 0);
    }

    #[test]
    fn batches_are_cut_by_event_count() {
        let batches = cut(limits(SinkFormat::Ndjson, 3, 1 << 20), &[1; 7]);
        let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![3, 3, 1]);
    }

    #[test]
    fn batches_are_cut_by_encoded_bytes_and_never_exceed_them() {
        // Ten-byte events: NDJSON costs 11 each, so 3 fit in 33 bytes but not in 32.
        let exact = cut(limits(SinkFormat::Ndjson, 100, 33), &[10; 7]);
        assert_eq!(exact.iter().map(Vec::len).collect::<Vec<_>>(), vec![3, 3, 1]);
        let tight = cut(limits(SinkFormat::Ndjson, 100, 32), &[10; 7]);
        assert_eq!(tight.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 2, 2, 1]);
        for batch in exact.iter().chain(&tight) {
            assert!(body_len(SinkFormat::Ndjson, batch.iter().copied()) <= 33);
        }
    }

    #[test]
    fn json_array_batches_count_the_brackets_and_commas() {
        // [a,b,c] of ten-byte events is 2 + 30 + 2 = 34 bytes.
        let fits = cut(limits(SinkFormat::Json, 100, 34), &[10; 3]);
        assert_eq!(fits.len(), 1);
        let split = cut(limits(SinkFormat::Json, 100, 33), &[10; 3]);
        assert_eq!(split.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 1]);
        assert_eq!(body_len(SinkFormat::Json, split[0].iter().copied()), 23);
    }

    #[test]
    fn an_event_larger_than_the_byte_bound_goes_alone() {
        let batches = cut(limits(SinkFormat::Ndjson, 100, 50), &[10, 500, 10, 10]);
        assert_eq!(batches, vec![vec![10], vec![500], vec![10, 10]]);
    }

    #[test]
    fn a_full_batch_refuses_more_and_taking_empties_it() {
        let mut batch = Batch::new(limits(SinkFormat::Ndjson, 1, 1000));
        assert!(batch.fits(5000), "an empty batch takes anything");
        batch.push("a", 1);
        assert!(batch.is_full());
        assert!(!batch.fits(1));
        assert_eq!((batch.len(), batch.bytes()), (1, 2));
        assert_eq!(batch.take(), vec!["a"]);
        assert_eq!((batch.len(), batch.bytes()), (0, 0));
    }
}
