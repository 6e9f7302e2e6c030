//! The guardrails' place in the pipeline: runs the engine on each event in the processing
//! stage and gives the finding events their own acknowledgement tracker (`guardrails`),
//! whose checkpoint is the rule state — saved only once the finding events emitted before it
//! are acknowledged, so a finding is never lost to a crash.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

use super::{AckToken, StreamAcks};
use crate::guardrails::{Engine, State};
use crate::normalize::Event;

/// The rule state as it will be saved: its JSON, encoded when the mark is left.
///
/// A snapshot waits for its finding events' acknowledgements, then in the writer's channel,
/// then in the writer; as a copy of the state it was a second (and third) live copy of
/// every rule's groups, which after a large backfill held most of the daemon's memory. The
/// encoded form is smaller than the maps it came from, and its clones share one buffer.
/// The file it writes is the state's own JSON, read back as a [`State`].
#[derive(Debug, Clone)]
pub struct Snapshot(Arc<String>);

impl Snapshot {
    /// `state` encoded into a buffer of `capacity` bytes to start with: given the previous
    /// snapshot's size, a large state is not encoded through a buffer doubling past it (the
    /// doubling was the highest point of a large backfill's memory).
    pub fn of(state: &State, capacity: usize) -> serde_json::Result<Self> {
        let mut out = Vec::with_capacity(capacity);
        serde_json::to_writer(&mut out, state)?;
        let text = String::from_utf8(out).map_err(serde::ser::Error::custom)?;
        Ok(Self(Arc::new(text)))
    }

    /// Its size in bytes.
    pub fn bytes(&self) -> usize {
        self.0.len()
    }

    /// The state it holds, decoded.
    #[cfg(test)]
    pub fn state(&self) -> serde_json::Result<State> {
        serde_json::from_str(&self.0)
    }
}

impl Default for Snapshot {
    fn default() -> Self {
        Self::of(&State::default(), 0).unwrap_or_else(|_| unreachable!("an empty state encodes"))
    }
}

impl Serialize for Snapshot {
    /// Written as the JSON it is (checked as such by the writer, off the pipeline).
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let raw: &RawValue = serde_json::from_str(&self.0).map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Snapshot {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Box::<RawValue>::deserialize(deserializer).map(|raw| Self(Arc::new(Box::<str>::from(raw).into())))
    }
}

impl super::checkpoints::Checkpoint for Snapshot {
    fn drop_once_written() -> bool {
        true
    }
}

/// The tracker's (and checkpoint file's) name.
pub const STREAM: &str = "guardrails";

/// How often the rule state is offered for saving while it changes.
const SAVE_EVERY: Duration = Duration::from_secs(5);

/// The engine plus the bookkeeping that makes its state durable.
#[derive(Debug)]
pub struct Guard {
    /// The rules and their state.
    engine: Engine,
    /// The finding events' tracker, whose marks are the rule state.
    acks: Arc<StreamAcks<Snapshot>>,
    /// When the state was last offered for saving.
    last_mark: Instant,
    /// The size of the last snapshot, and so the next one's.
    last_len: usize,
}

impl Guard {
    /// A guard around `engine` whose finding events are tracked by `acks`.
    pub fn new(engine: Engine, acks: Arc<StreamAcks<Snapshot>>) -> Self {
        Self {
            engine,
            acks,
            last_mark: Instant::now(),
            last_len: 0,
        }
    }

    /// Checks `event` (findings attached, secrets redacted); returns the finding events to
    /// ship after it, each with the right to acknowledge it.
    pub fn inspect(&mut self, event: &mut Event) -> Vec<(Event, AckToken)> {
        let found = self.engine.inspect(event);
        let out = found.into_iter().map(|e| (e, self.acks.next_token())).collect();
        if self.last_mark.elapsed() >= SAVE_EVERY {
            self.mark(false);
        }
        out
    }

    /// Offers the state for saving. At most one snapshot waits for acknowledgements at a
    /// time (unless `always`), so a stalled sink cannot pile snapshots up in memory.
    fn mark(&mut self, always: bool) {
        self.last_mark = Instant::now();
        if !always && self.acks.pending_marks() > 0 {
            return;
        }
        if !self.engine.take_dirty() {
            return;
        }
        match Snapshot::of(self.engine.state(), self.last_len + self.last_len / 8) {
            Ok(snapshot) => {
                self.last_len = snapshot.bytes();
                self.acks.mark(snapshot);
            }
            // Not expected (string keys, plain numbers); the state's next change offers it again.
            Err(err) => tracing::error!(error.message = %err, "failed to encode the guardrails state for saving"),
        }
    }

    /// The processing stage is ending: offer the final state.
    pub fn finish(mut self) {
        self.mark(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guardrails::{Inputs, RuleSet};
    use crate::normalize::{Actor, Source};
    use chrono::DateTime;

    fn failed_login(i: u32) -> Event {
        let at = DateTime::from_timestamp(1_770_000_000 + i64::from(i), 0).expect("time");
        let mut e = Event::new(format!("a:{i}"), Source::AuditLog, None, "login.failed".into(), at);
        e.actor = Some(Actor {
            actor_type: "user".into(),
            email: Some("ann@example.com".into()),
            ip: Some(format!("203.0.113.{i}")),
            ..Actor::default()
        });
        e
    }

    #[test]
    fn the_rule_state_is_released_for_saving_only_after_its_finding_events_are_acknowledged() {
        let rules = Arc::new(RuleSet::build(&Inputs::default()).expect("pack"));
        let (acks, released) = StreamAcks::new(STREAM);
        let mut guard = Guard::new(Engine::new(rules, None), Arc::clone(&acks));
        let mut tokens = Vec::new();
        for i in 0..5 {
            tokens.extend(guard.inspect(&mut failed_login(i)));
        }
        assert_eq!(tokens.len(), 1, "one credential-stuffing finding event");
        guard.finish();
        assert!(released.borrow().is_none(), "the finding event is not acknowledged yet");
        for (_, token) in tokens {
            token.ack();
        }
        let saved = released.borrow().clone().expect("released");
        assert!(saved.state.state().expect("decodes").processed >= 5);
        assert!(acks.is_settled());
    }

    #[test]
    fn a_saved_snapshot_is_read_back_as_the_state_it_was_taken_of() {
        let rules = Arc::new(RuleSet::build(&Inputs::default()).expect("pack"));
        let mut engine = Engine::new(rules, None);
        for i in 0..7 {
            engine.inspect(&mut failed_login(i));
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let store = crate::state::StateDir::open(dir.path())
            .expect("state dir")
            .checkpoints()
            .expect("store");
        store
            .save(STREAM, &Snapshot::of(engine.state(), 0).expect("encodes"))
            .expect("saved");
        let loaded = store.load::<State>(STREAM).expect("reads").expect("present");
        assert_eq!(&loaded, engine.state());
        assert!(!loaded.rules.is_empty(), "the failed sign-ins left rule state");
    }
}
