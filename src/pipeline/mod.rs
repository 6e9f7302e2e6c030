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

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::liveness::Beat;
use crate::normalize::Event;
pub use ack::{AckToken, StreamAcks};
pub use progress::{Order, Progress};

/// An event on its way to the processing stage, with the right to acknowledge it.
#[derive(Debug)]
pub struct Envelope {
    pub event: Event,
    pub ack: AckToken,
    /// The event's unit of its organization's share of the queue (several organizations).
    pub share: Option<share::Held>,
}

/// An event encoded for the sink: its id (for the idempotency key and the dead-letter file),
/// its JSON, and the right to acknowledge it.
#[derive(Debug)]
pub struct Encoded {
    pub id: String,
    pub json: Vec<u8>,
    pub ack: AckToken,
}

impl queue::Weighed for Encoded {
    fn bytes(&self) -> usize {
        self.json.len() + self.id.len()
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
    /// Into the processing stage; bounded, so a full pipeline holds the stream back.
    tx: mpsc::Sender<Envelope>,
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
        tx: mpsc::Sender<Envelope>,
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
                    held = share.take() => held,
                };
                self.beat.busy();
                Some(held)
            }
            None => None,
        };
        let permit = match self.tx.try_reserve() {
            Ok(permit) => permit,
            Err(mpsc::error::TrySendError::Closed(())) => return Err(Stopped),
            Err(mpsc::error::TrySendError::Full(())) => {
                // Backpressure: waiting for the stages downstream is not being stuck.
                self.beat.waiting();
                let permit = tokio::select! {
                    biased;
                    () = self.stop.cancelled() => return Err(Stopped),
                    permit = self.tx.reserve() => permit.map_err(|_| Stopped)?,
                };
                self.beat.busy();
                permit
            }
        };
        permit.send(Envelope {
            event,
            ack: self.acks.next_token(),
            share,
        });
        self.progress.event();
        Ok(())
    }

    /// Sends events in order.
    pub async fn emit_all(&self, events: impl IntoIterator<Item = Event>) -> Result<(), Stopped> {
        for event in events {
            self.emit(event).await?;
        }
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
