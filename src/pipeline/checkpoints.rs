//! The last step of the data flow: the writer task that saves whatever state a stream's
//! acknowledgements release, so a checkpoint on disk never moves past an undelivered event.

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use super::ack::Committable;
use crate::metrics::Metrics;
use crate::state::{CheckpointError, CheckpointStore};

/// A tracker's checkpoint: a stream's own typed state (or the guardrails' rule state), saved as `checkpoints/<stream>.json` once the
/// events before it are acknowledged, and handed back to the stream by the app on start.
pub trait Checkpoint: Serialize + DeserializeOwned + Clone + Default + Send + Sync + std::fmt::Debug + 'static {
    /// Event time (Unix seconds) up to which this state has everything, for streams that
    /// keep such a watermark.
    fn complete_up_to(&self) -> Option<i64> {
        None
    }

    /// Whether the stream keeps such a watermark; one that does not reads snapshots, which
    /// are complete as of the cycle that read them.
    fn keeps_watermark() -> bool
    where
        Self: Sized,
    {
        false
    }

    /// Makes this state `stream`'s checkpoint in `store`: one file, unless the state lays
    /// itself out otherwise.
    fn save_to(&self, store: &CheckpointStore, stream: &str) -> Result<(), CheckpointError> {
        store.save(stream, self)
    }

    /// `stream`'s saved state, `None` on a first start: the counterpart of
    /// [`Checkpoint::save_to`].
    fn load_from(store: &CheckpointStore, stream: &str) -> Result<Option<Self>, CheckpointError>
    where
        Self: Sized,
    {
        store.load(stream)
    }
}

/// What the writer needs of a released state: a stream's [`Checkpoint`], or the guardrails'
/// snapshot, which was written ahead and only needs putting in place.
pub trait Save: Clone + Send + Sync + std::fmt::Debug + 'static {
    /// Makes it `stream`'s checkpoint in `store`.
    fn save(&self, store: &CheckpointStore, stream: &str) -> Result<(), CheckpointError>;

    /// As [`Checkpoint::complete_up_to`].
    fn complete_up_to(&self) -> Option<i64> {
        None
    }
}

impl<C: Checkpoint> Save for C {
    fn save(&self, store: &CheckpointStore, stream: &str) -> Result<(), CheckpointError> {
        self.save_to(store, stream)
    }

    fn complete_up_to(&self) -> Option<i64> {
        Checkpoint::complete_up_to(self)
    }
}

/// Saves every state the stream's acknowledgements release, newest first, until the tracker
/// is gone; then saves the last one if it is newer than what was written.
pub async fn run_writer<S: Save>(
    store: CheckpointStore,
    stream: String,
    mut released: watch::Receiver<Option<Committable<S>>>,
    metrics: Metrics,
) {
    let mut written = 0u64;
    loop {
        let open = released.changed().await.is_ok();
        let latest = released.borrow_and_update().clone();
        if let Some(Committable { generation, state }) = latest
            && generation > written
        {
            let (store, name) = (store.clone(), stream.clone());
            let up_to = state.complete_up_to();
            let saved = tokio::task::spawn_blocking(move || state.save(&store, &name)).await;
            match saved {
                Ok(Ok(())) => {
                    written = generation;
                    metrics.checkpoint_saved(&stream);
                    if let Some(at) = up_to {
                        metrics.set_watermark(&stream, at);
                    }
                }
                // The next release retries; the old checkpoint stays valid meanwhile.
                Ok(Err(err)) => {
                    tracing::error!(stream = %stream, error.message = %err, "failed to save a checkpoint; events since the last saved one may be delivered again after a restart")
                }
                Err(err) => tracing::error!(stream = %stream, error.message = %err, "checkpoint writer task failed"),
            }
        }
        if !open {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::StreamAcks;
    use crate::state::StateDir;
    use serde_json::{Value, json};

    impl Checkpoint for Value {}

    #[tokio::test]
    async fn the_writer_saves_released_states_and_the_last_one_before_it_stops() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = StateDir::open(dir.path()).expect("state dir");
        let store = state.checkpoints().expect("store");
        let (acks, rx) = StreamAcks::<Value>::new("s");
        let writer = tokio::spawn(run_writer(store.clone(), "s".into(), rx, Metrics::new()));
        let token = acks.next_token();
        acks.mark(json!({"page": 1}));
        token.ack();
        drop(acks);
        writer.await.expect("writer ends when the tracker is gone");
        assert_eq!(store.load::<Value>("s").expect("load"), Some(json!({"page": 1})));
    }
}
