//! Per-stream acknowledgement tracking: a contiguous watermark over event sequence numbers,
//! and the checkpoint states waiting for it.
//!
//! A stream numbers every event it emits (0, 1, 2, …) and, after emitting a page or a file,
//! leaves a *mark*: "once every event emitted so far is acknowledged, this state may be
//! saved". The sink acknowledges events in any order; a mark is released only when every
//! earlier sequence number is acknowledged, so a later success never jumps over an earlier
//! failure. Released states go to a `watch` channel that the checkpoint writer drains; newer
//! states replace older ones that were not written yet.

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

/// How many unreleased checkpoint states one stream keeps; see [`StreamAcks::mark`].
pub const MAX_PENDING_MARKS: usize = 16;

/// A state that may be saved, numbered so the writer can tell whether it saw it already.
#[derive(Debug, Clone, PartialEq)]
pub struct Committable<S> {
    /// Increases with every released mark.
    pub generation: u64,
    pub state: S,
}

#[derive(Debug)]
struct Inner<S> {
    /// Next sequence number to hand out.
    emitted: u64,
    /// Every sequence number below this is acknowledged.
    acked_below: u64,
    /// Acknowledged numbers above a gap, waiting for the gap to close.
    acked_ahead: BTreeSet<u64>,
    /// (emitted count when the mark was left, state), oldest first.
    marks: VecDeque<(u64, S)>,
    generation: u64,
}

/// The tracker of one stream, whose checkpoint state is `S`; shared by its emitter and every
/// [`AckToken`] in flight.
#[derive(Debug)]
pub struct StreamAcks<S> {
    stream: Arc<str>,
    inner: Mutex<Inner<S>>,
    committed: watch::Sender<Option<Committable<S>>>,
}

/// What an [`AckToken`] needs of its tracker, whatever the stream's state type: tokens of
/// every stream travel through the same queue to the sink.
trait Acknowledge: Send + Sync + std::fmt::Debug {
    fn ack(&self, seq: u64);
    fn stream(&self) -> &Arc<str>;
}

impl<S: Clone + Send + Sync + std::fmt::Debug + 'static> StreamAcks<S> {
    /// A tracker for `stream`, and the receiving end the checkpoint writer listens on.
    pub fn new(stream: &str) -> (Arc<Self>, watch::Receiver<Option<Committable<S>>>) {
        let (tx, rx) = watch::channel(None);
        let acks = Arc::new(Self {
            stream: Arc::from(stream),
            inner: Mutex::new(Inner {
                emitted: 0,
                acked_below: 0,
                acked_ahead: BTreeSet::new(),
                marks: VecDeque::new(),
                generation: 0,
            }),
            committed: tx,
        });
        (acks, rx)
    }

    /// The stream's name.
    pub fn stream(&self) -> &Arc<str> {
        &self.stream
    }

    fn lock(&self) -> MutexGuard<'_, Inner<S>> {
        // A panic while holding this lock leaves plain numbers behind, still consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands out the next sequence number.
    pub fn next_token(self: &Arc<Self>) -> AckToken {
        let mut inner = self.lock();
        let seq = inner.emitted;
        inner.emitted += 1;
        AckToken {
            acks: Arc::clone(self) as Arc<dyn Acknowledge>,
            seq,
        }
    }

    /// Leaves a mark: `state` may be saved once everything emitted so far is acknowledged.
    ///
    /// While the sink is slow, marks pile up, each holding a whole state. Past
    /// [`MAX_PENDING_MARKS`] the newest pending mark is replaced rather than a new one added:
    /// the checkpoint then advances in coarser steps, which is always safe (it can only lag).
    pub fn mark(&self, state: S) {
        let mut inner = self.lock();
        let at = inner.emitted;
        if inner.marks.len() >= MAX_PENDING_MARKS
            && let Some(last) = inner.marks.back_mut()
        {
            *last = (at, state);
        } else {
            inner.marks.push_back((at, state));
        }
        self.release(&mut inner);
    }

    fn acknowledge(&self, seq: u64) {
        let mut inner = self.lock();
        if seq == inner.acked_below {
            inner.acked_below += 1;
            loop {
                let next = inner.acked_below;
                if !inner.acked_ahead.remove(&next) {
                    break;
                }
                inner.acked_below += 1;
            }
        } else if seq > inner.acked_below {
            inner.acked_ahead.insert(seq);
        }
        self.release(&mut inner);
    }

    fn release(&self, inner: &mut Inner<S>) {
        let mut latest = None;
        while inner.marks.front().is_some_and(|(at, _)| *at <= inner.acked_below) {
            latest = inner.marks.pop_front().map(|(_, state)| state);
        }
        if let Some(state) = latest {
            inner.generation += 1;
            let generation = inner.generation;
            self.committed.send_replace(Some(Committable { generation, state }));
        }
    }

    /// The newest state released for saving, if any.
    pub fn committed<R>(&self, read: impl FnOnce(&S) -> R) -> Option<R> {
        self.committed.borrow().as_ref().map(|c| read(&c.state))
    }

    /// Events emitted but not yet acknowledged.
    pub fn outstanding(&self) -> u64 {
        let inner = self.lock();
        inner.emitted - inner.acked_below
    }

    /// Marks left but not yet released.
    pub fn pending_marks(&self) -> usize {
        self.lock().marks.len()
    }

    /// Whether every emitted event is acknowledged and every mark released.
    pub fn is_settled(&self) -> bool {
        let inner = self.lock();
        inner.acked_below == inner.emitted && inner.marks.is_empty()
    }

    /// Whether the event numbered `seq` (the `seq`-th token handed out, from 0) is
    /// acknowledged: `replay` asks event by event.
    pub fn is_acked(&self, seq: u64) -> bool {
        let inner = self.lock();
        seq < inner.acked_below || inner.acked_ahead.contains(&seq)
    }
}

impl<S: Clone + Send + Sync + std::fmt::Debug + 'static> Acknowledge for StreamAcks<S> {
    fn ack(&self, seq: u64) {
        self.acknowledge(seq);
    }

    fn stream(&self) -> &Arc<str> {
        &self.stream
    }
}

/// The right to acknowledge one event. Dropping it without [`AckToken::ack`] leaves the event
/// unacknowledged, so its stream's checkpoint stays behind it.
#[derive(Debug)]
pub struct AckToken {
    acks: Arc<dyn Acknowledge>,
    seq: u64,
}

impl AckToken {
    /// The event reached the ingestion service (or the dead-letter file).
    pub fn ack(self) {
        self.acks.ack(self.seq);
    }

    /// The stream this event belongs to.
    pub fn stream(&self) -> &Arc<str> {
        self.acks.stream()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use serde_json::Value;

    fn latest(rx: &watch::Receiver<Option<Committable<Value>>>) -> Option<Value> {
        rx.borrow().as_ref().map(|c| c.state.clone())
    }

    #[test]
    fn a_mark_with_nothing_outstanding_is_released_at_once() {
        let (acks, rx) = StreamAcks::<Value>::new("s");
        acks.mark(json!(1));
        assert_eq!(latest(&rx), Some(json!(1)));
        assert!(acks.is_settled());
    }

    #[test]
    fn a_later_success_never_jumps_over_an_earlier_failure() {
        let (acks, rx) = StreamAcks::<Value>::new("s");
        let first = acks.next_token();
        acks.mark(json!("after first page"));
        let second = acks.next_token();
        acks.mark(json!("after second page"));
        second.ack();
        assert_eq!(latest(&rx), None, "the first page is not acknowledged yet");
        first.ack();
        assert_eq!(latest(&rx), Some(json!("after second page")));
        assert!(acks.is_settled());
    }

    #[test]
    fn pending_marks_are_bounded_and_the_newest_state_still_arrives() {
        let (acks, rx) = StreamAcks::<Value>::new("s");
        let tokens: Vec<_> = (0..100)
            .map(|i| {
                let t = acks.next_token();
                acks.mark(json!(i));
                t
            })
            .collect();
        assert_eq!(acks.pending_marks(), MAX_PENDING_MARKS);
        let mut tokens = tokens.into_iter();
        tokens.next().expect("first").ack();
        assert_eq!(latest(&rx), Some(json!(0)), "early marks keep their fine steps");
        for t in tokens {
            t.ack();
        }
        assert_eq!(
            latest(&rx),
            Some(json!(99)),
            "the coalesced tail still reaches the newest state"
        );
        assert!(acks.is_settled());
    }

    #[test]
    fn a_dropped_token_holds_the_checkpoint_back() {
        let (acks, rx) = StreamAcks::<Value>::new("s");
        let lost = acks.next_token();
        acks.mark(json!("page"));
        drop(lost);
        assert_eq!(latest(&rx), None);
        assert_eq!(acks.outstanding(), 1);
    }

    #[test]
    fn only_the_newest_released_state_is_kept_and_generations_increase() {
        let (acks, rx) = StreamAcks::<Value>::new("s");
        let tokens: Vec<_> = (0..3)
            .map(|i| {
                let t = acks.next_token();
                acks.mark(json!(i));
                t
            })
            .collect();
        for t in tokens {
            t.ack();
        }
        let c = rx.borrow().clone().expect("released");
        assert_eq!(c.state, json!(2));
        assert_eq!(c.generation, 3);
    }
}
