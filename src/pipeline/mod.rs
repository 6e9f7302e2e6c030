//! The stages between the streams and the sink, and the bookkeeping that lets a stream's
//! checkpoint follow the sink's acknowledgements.
//!
//! ```text
//! stream ─emit─► [events, bounded] ─► process (guardrails, encode) ─► [bytes, bounded] ─► sink
//!    │                                                                                 │
//!    └─mark(state)─► StreamAcks ◄──────────────── ack(seq) on 2xx / dead-letter ───────┘
//!                        │ released state
//!                        ▼
//!                 checkpoint writer ─► state.dir
//! ```

pub mod ack;
pub mod checkpoints;
pub mod guard;
pub mod process;
pub mod progress;
pub mod queue;
pub mod share;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::liveness::Beat;
use crate::normalize::Event;
pub use ack::{AckToken, StreamAcks};
pub use progress::{Order, Progress};

/// Consecutive events of one stream on their way to the processing stage, each with the
/// right to acknowledge it: a page goes in chunks of up to [`CHUNK`], so the stages hand
/// over (and wake each other) once per chunk rather than once per event.
#[derive(Debug)]
pub struct Envelope {
    pub events: Vec<(Event, AckToken)>,
    /// The events' units of their organization's share of the queue (several
    /// organizations), one per event.
    pub share: Option<share::Held>,
}

/// The queue into the processing stage counts events.
impl queue::Weighed for Envelope {
    fn bytes(&self) -> usize {
        self.events.len()
    }
}

/// The most events one [`Envelope`] carries. Handing events over one by one cost more than
/// processing them: every event woke the processing task (and a sleeping worker thread,
/// through a system call) and then the stream again when its place in the queue freed
/// (benches/README.md, "events handed over in chunks").
pub const CHUNK: usize = 32;

/// An event encoded for the sink: its id (for the idempotency key and the dead-letter file),
/// its JSON, and the right to acknowledge it.
#[derive(Debug)]
pub struct Encoded {
    pub id: String,
    pub json: Vec<u8>,
    pub ack: AckToken,
}

impl queue::Weighed for Encoded {
    /// What the event holds in memory, room to grow included.
    fn bytes(&self) -> usize {
        self.json.capacity() + self.id.len()
    }
}

/// The stream stopped emitting: shutdown was requested or the pipeline is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the pipeline is stopping")]
pub struct Stopped;

/// A stream's way into the pipeline: numbered events out, checkpoint marks (of the stream's
/// own state type `S`) alongside.
#[derive(Debug)]
pub struct Emitter<S> {
    /// The stream's acknowledgement tracker: numbers events and holds the marks.
    acks: Arc<StreamAcks<S>>,
    /// Into the processing stage; bounded (in events), so a full pipeline holds the stream
    /// back.
    tx: queue::ByteSender<Envelope>,
    /// The stop token: once cancelled, nothing more is emitted.
    stop: CancellationToken,
    /// The organization's share of the queue, with several organizations.
    share: Option<share::Share>,
    /// How far the stream's pass has got, for the progress lines and the backfill gauge.
    progress: Progress,
    /// The stream's sign of life for `/healthz`: each event is progress; a full pipeline is
    /// a wait, not a stall.
    beat: Beat,
}

impl<S> Clone for Emitter<S> {
    fn clone(&self) -> Self {
        Self {
            acks: Arc::clone(&self.acks),
            tx: self.tx.clone(),
            stop: self.stop.clone(),
            share: self.share.clone(),
            progress: self.progress.clone(),
            beat: self.beat.clone(),
        }
    }
}

impl<S: Clone + Send + Sync + std::fmt::Debug + 'static> Emitter<S> {
    /// An emitter for the stream `acks` tracks, feeding `tx` until `stop` fires.
    pub fn new(
        acks: Arc<StreamAcks<S>>,
        tx: queue::ByteSender<Envelope>,
        stop: CancellationToken,
        progress: Progress,
        beat: Beat,
    ) -> Self {
        Self {
            acks,
            tx,
            stop,
            progress,
            beat,
            share: None,
        }
    }

    /// The same emitter, holding its events to the organization's `share` of the queue.
    pub fn with_share(mut self, share: Option<share::Share>) -> Self {
        self.share = share;
        self
    }

    /// Sends one event downstream, waiting while the pipeline is full (backpressure).
    pub async fn emit(&self, event: Event) -> Result<(), Stopped> {
        self.send(vec![event]).await
    }

    /// Sends events in order, in chunks of up to [`CHUNK`].
    pub async fn emit_all(&self, events: impl IntoIterator<Item = Event>) -> Result<(), Stopped> {
        let mut events = events.into_iter().peekable();
        while events.peek().is_some() {
            self.send(events.by_ref().take(CHUNK).collect()).await?;
        }
        Ok(())
    }

    /// Sends one chunk, waiting for its organization's share and for room in the queue
    /// first; the events are numbered only once they can be queued.
    async fn send(&self, events: Vec<Event>) -> Result<(), Stopped> {
        if self.stop.is_cancelled() {
            return Err(Stopped);
        }
        let share = match &self.share {
            Some(share) => {
                // Waiting for the organization's share is backpressure too.
                self.beat.waiting();
                let held = tokio::select! {
                    biased;
                    () = self.stop.cancelled() => return Err(Stopped),
                    held = share.take(events.len()) => held,
                };
                self.beat.busy();
                Some(held)
            }
            None => None,
        };
        let room = tokio::select! {
            biased;
            () = self.stop.cancelled() => return Err(Stopped),
            room = self.tx.reserve_noting(events.len(), &self.beat) => room.ok_or(Stopped)?,
        };
        let n = events.len();
        let events = events.into_iter().map(|e| (e, self.acks.next_token())).collect();
        room.send(Envelope { events, share }, None).map_err(|_| Stopped)?;
        self.progress.events(n);
        Ok(())
    }

    /// `state` may be saved as the stream's checkpoint once every event emitted so far has
    /// been acknowledged.
    pub fn checkpoint(&self, state: S) {
        self.acks.mark(state);
    }

    /// The stream's progress through its current pass.
    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// The stream's sign of life.
    pub fn beat(&self) -> &Beat {
        &self.beat
    }

    /// The tracker behind this emitter.
    pub fn acks(&self) -> &Arc<StreamAcks<S>> {
        &self.acks
    }

    /// Completes when shutdown is requested, for cancellable waits inside a stream.
    pub async fn stopping(&self) {
        self.stop.cancelled().await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::DateTime;
    use futures_util::FutureExt;
    use serde_json::Value;

    use super::*;
    use crate::metrics::Metrics;
    use crate::normalize::Source;

    fn event(i: usize) -> Event {
        let at = DateTime::from_timestamp(1_770_000_000, 0).expect("time");
        Event::new(format!("e{i}"), Source::AuditLog, None, "login.succeeded".into(), at)
    }

    #[tokio::test]
    async fn a_page_goes_in_chunks_in_order_numbered_only_once_each_chunk_has_room() {
        let (acks, _released) = StreamAcks::<Value>::new("audit_logs");
        let (tx, mut rx) = queue::byte_channel::<Envelope>(2 * CHUNK);
        let progress = Progress::new("audit_logs", Metrics::new(), Duration::from_secs(60));
        let emitter = Emitter::new(
            Arc::clone(&acks),
            tx,
            CancellationToken::new(),
            progress,
            Beat::detached("s"),
        );
        let total = 2 * CHUNK + 6;
        let mut emitting = Box::pin(emitter.emit_all((0..total).map(event)));

        assert!(
            (&mut emitting).now_or_never().is_none(),
            "the third chunk waits: the queue holds two"
        );
        assert_eq!(
            acks.outstanding(),
            2 * CHUNK as u64,
            "the waiting chunk's events are not numbered yet"
        );
        let first = rx.recv().await.expect("a chunk");
        assert_eq!(first.events.len(), CHUNK);
        (&mut emitting)
            .now_or_never()
            .expect("room for the last chunk once one was taken")
            .expect("not stopped");
        assert_eq!(acks.outstanding(), total as u64);

        let mut ids: Vec<String> = first.events.into_iter().map(|(e, _)| e.id).collect();
        for size in [CHUNK, 6] {
            let chunk = rx.recv().await.expect("a chunk");
            assert_eq!(chunk.events.len(), size);
            ids.extend(chunk.events.into_iter().map(|(e, _)| e.id));
        }
        let expected: Vec<String> = (0..total).map(|i| format!("e{i}")).collect();
        assert_eq!(ids, expected, "every event once, in the order emitted");
    }

    #[tokio::test]
    async fn a_stop_while_a_chunk_waits_for_room_numbers_none_of_it() {
        let (acks, _released) = StreamAcks::<Value>::new("audit_logs");
        let (tx, _rx) = queue::byte_channel::<Envelope>(CHUNK);
        let stop = CancellationToken::new();
        let progress = Progress::new("audit_logs", Metrics::new(), Duration::from_secs(60));
        let emitter = Emitter::new(Arc::clone(&acks), tx, stop.clone(), progress, Beat::detached("s"));
        let mut emitting = Box::pin(emitter.emit_all((0..2 * CHUNK).map(event)));
        assert!((&mut emitting).now_or_never().is_none());
        stop.cancel();
        assert_eq!(emitting.await, Err(Stopped));
        assert_eq!(
            acks.outstanding(),
            CHUNK as u64,
            "only the chunk that was queued is numbered"
        );
    }
}
