//! The processing stage: every event from every stream passes here once, in arrival order,
//! to be checked by the guardrails, stripped of message text per `compliance.content`, and
//! encoded for the sink. Content policy runs after the guardrails so their detectors still
//! see the text the operator chose not to ship.

use tokio::sync::mpsc;

use super::guard::Guard;
use super::queue::ByteSender;
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
    mut rx: mpsc::Receiver<Envelope>,
    out: ByteSender<Encoded>,
    metrics: Metrics,
    mut guard: Option<Guard>,
    content_mode: ContentMode,
    beat: Beat,
) {
    let mut scratch = Vec::with_capacity(64 * 1024);
    let mut counted = ProcessedCounter::default();
    loop {
        beat.waiting();
        let Some(Envelope { mut event, ack, share }) = rx.recv().await else {
            break;
        };
        beat.busy();
        let found = guard.as_mut().map(|g| g.inspect(&mut event)).unwrap_or_default();
        if event.source == Source::Compliance {
            content::apply(content_mode, &mut event);
        }
        // Waiting for room in the sink's queue is backpressure, not being stuck.
        beat.waiting();
        let mut open = send(event, ack, share, &out, &mut counted, &metrics, &mut scratch).await;
        for (finding, token) in found {
            if !open {
                break;
            }
            open = send(finding, token, None, &out, &mut counted, &metrics, &mut scratch).await;
        }
        if !open {
            tracing::debug!("sink queue closed; processing stops");
            break;
        }
        metrics.set_queued_bytes(out.queued_bytes());
    }
    if let Some(guard) = guard {
        guard.finish();
    }
}

/// Encodes one event and queues it for the sink; `false` once the sink's queue is closed.
async fn send(
    event: Event,
    ack: AckToken,
    share: Option<Held>,
    out: &ByteSender<Encoded>,
    counted: &mut ProcessedCounter,
    metrics: &Metrics,
    scratch: &mut Vec<u8>,
) -> bool {
    // Written into a buffer kept across events, then copied out at its exact size: growing a
    // fresh buffer by doubling copied each event several times over, and the copy the sink's
    // queue holds should not carry spare capacity.
    scratch.clear();
    let json = match serde_json::to_writer(&mut *scratch, &event) {
        Ok(()) => scratch.as_slice().to_vec(),
        Err(err) => {
            // Not expected for plain data; the unacknowledged token keeps the stream's
            // checkpoint behind this event, so nothing is lost.
            tracing::error!(stream = %ack.stream(), id = %event.id, error.message = %err, "failed to encode an event");
            return true;
        }
    };
    counted.inc(metrics, ack.stream(), event.source.as_str(), &event.category);
    let encoded = Encoded {
        id: event.id,
        json,
        ack,
    };
    out.send_holding(encoded, share).await.is_ok()
}
