//! The processing stage: every event from every stream passes here once, in arrival order,
//! to be checked by the guardrails, stripped of message text per `compliance.content`, and
//! encoded for the sink. Content policy runs after the guardrails so their detectors still
//! see the text the operator chose not to ship.

use super::guard::Guard;
use super::queue::{self, ByteReceiver, ByteSender};
use super::share::Held;
use super::{AckToken, Encoded, Envelope};
use crate::liveness::Beat;
use crate::metrics::{Metrics, ProcessedCounter};
use crate::normalize::content::{self, ContentMode};
use crate::normalize::{Event, Source};

/// Runs until every emitter is gone and the queue is drained, or the sink's queue closes.
/// With `guard`, every event is checked first and the finding events it yields are shipped
/// right after it (they go through the same bounded queue, so backpressure and shutdown
/// apply to them alike).
pub async fn run(
    mut rx: ByteReceiver<Envelope>,
    out: ByteSender<Encoded>,
    metrics: Metrics,
    mut guard: Option<Guard>,
    content_mode: ContentMode,
    beat: Beat,
) {
    let mut to_sink = ToSink {
        out,
        metrics,
        beat,
        counted: ProcessedCounter::default(),
        room: 0,
    };
    'chunks: loop {
        to_sink.beat.waiting();
        let Some(Envelope { events, mut share }) = rx.recv().await else {
            break;
        };
        to_sink.beat.busy();
        for (mut event, ack) in events {
            let found = guard.as_mut().map(|g| g.inspect(&mut event)).unwrap_or_default();
            if event.source == Source::Compliance {
                content::apply(content_mode, &mut event);
            }
            let held = share.as_mut().and_then(Held::split_one);
            let mut open = to_sink.send(event, ack, held).await;
            for (finding, token) in found {
                if !open {
                    break;
                }
                open = to_sink.send(finding, token, None).await;
            }
            if !open {
                tracing::debug!("sink queue closed; processing stops");
                break 'chunks;
            }
        }
        to_sink.metrics.set_queued_bytes(to_sink.out.queued_bytes());
    }
    if let Some(guard) = guard {
        guard.finish();
    }
}

/// The way out of the processing stage: encodes events into the sink's queue.
struct ToSink {
    out: ByteSender<Encoded>,
    metrics: Metrics,
    /// The processing task's sign of life: waiting for room in the sink's queue is
    /// backpressure, not being stuck.
    beat: Beat,
    counted: ProcessedCounter,
    /// The room given to the next event's JSON: the last one's size and an eighth. Each
    /// event is written straight into the buffer the sink's queue holds, with no copy out of
    /// a scratch buffer; a stream's events are alike in size, so the buffer rarely grows,
    /// and one a quarter too large is trimmed.
    room: usize,
}

impl ToSink {
    /// Encodes one event and queues it for the sink; `false` once the sink's queue is closed.
    async fn send(&mut self, event: Event, ack: AckToken, share: Option<Held>) -> bool {
        let mut json = Vec::with_capacity(self.room);
        crate::normalize::write_event(&event, &mut json);
        if json.capacity() - json.len() > json.len() / 4 {
            json.shrink_to_fit();
        }
        self.room = json.len() + json.len() / 8;
        self.counted
            .inc(&self.metrics, ack.stream(), event.source.as_str(), &event.category);
        let encoded = Encoded {
            id: event.id,
            json,
            ack,
        };
        match self
            .out
            .reserve_noting(queue::Weighed::bytes(&encoded), &self.beat)
            .await
        {
            Some(room) => room.send(encoded, share).is_ok(),
            None => false,
        }
    }
}
