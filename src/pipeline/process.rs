//! The processing stage: every event from every stream passes here once, in arrival order,
//! to be checked by the guardrails and encoded for the sink.

use tokio::sync::mpsc;

use super::queue::ByteSender;
use super::{Encoded, Envelope};
use crate::metrics::Metrics;

/// Runs until every emitter is gone and the queue is drained, or the sink's queue closes.
pub async fn run(mut rx: mpsc::Receiver<Envelope>, out: ByteSender<Encoded>, metrics: Metrics) {
    while let Some(Envelope { event, ack }) = rx.recv().await {
        let json = match serde_json::to_vec(&event) {
            Ok(json) => json,
            Err(err) => {
                // Not expected for plain data; the unacknowledged token keeps the stream's
                // checkpoint behind this event, so nothing is lost.
                tracing::error!(stream = %ack.stream(), id = %event.id, error = %err, "failed to encode an event");
                continue;
            }
        };
        metrics.event_processed(ack.stream(), event.source.as_str(), &event.category);
        let encoded = Encoded {
            id: event.id,
            json,
            ack,
        };
        if out.send(encoded).await.is_err() {
            tracing::debug!("sink queue closed; processing stops");
            return;
        }
        metrics.set_queued_bytes(out.queued_bytes());
    }
}
