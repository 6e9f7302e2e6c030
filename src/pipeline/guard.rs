//! The guardrails' place in the pipeline: runs the engine on each event in the processing
//! stage and gives the finding events their own acknowledgement tracker (`guardrails`),
//! whose checkpoint is the rule state — saved only once the finding events emitted before it
//! are acknowledged, so a finding is never lost to a crash.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::checkpoints::Save;
use super::{AckToken, StreamAcks};
use crate::guardrails::{Engine, write_state};
use crate::normalize::Event;
use crate::state::{CheckpointError, CheckpointStore, Pending};

/// The rule state as it will be saved: written ahead, when the mark is left, as a pending
/// checkpoint file that is put in place once the finding events before it are acknowledged.
///
/// A snapshot waits for those acknowledgements, then in the writer's channel, then in the
/// writer. Held in memory — a clone of the state, later its JSON — it was a second (and
/// third) copy of every rule's groups, the largest part of a large backfill's memory; on
/// disk it costs nothing, and the bytes were going to be written anyway.
#[derive(Debug, Clone)]
pub struct Snapshot(Arc<Pending>);

impl Save for Snapshot {
    fn save(&self, store: &CheckpointStore, stream: &str) -> Result<(), CheckpointError> {
        store.place(stream, &self.0)
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
    /// Where snapshots are written ahead.
    store: CheckpointStore,
    /// Snapshots written so far (each one's file number).
    written: u64,
    /// When the state was last offered for saving.
    last_mark: Instant,
}

impl Guard {
    /// A guard around `engine` whose finding events are tracked by `acks` and whose state is
    /// saved in `store` (where snapshots an earlier process left unplaced are removed).
    pub fn new(engine: Engine, acks: Arc<StreamAcks<Snapshot>>, store: CheckpointStore) -> Self {
        store.forget_pending(STREAM);
        Self {
            engine,
            acks,
            store,
            written: 0,
            last_mark: Instant::now(),
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
    /// time (unless `always`), so a stalled sink cannot pile snapshots up.
    fn mark(&mut self, always: bool) {
        self.last_mark = Instant::now();
        if !always && self.acks.pending_marks() > 0 {
            return;
        }
        if !self.engine.take_dirty() {
            return;
        }
        // Written on the processing task: to the page cache, as fast as encoding it into
        // memory was; placing it (fsync, rename) happens in the checkpoint writer.
        self.written += 1;
        let state = self.engine.state();
        match self
            .store
            .write_pending(STREAM, self.written, |out| write_state(state, out))
        {
            Ok(pending) => self.acks.mark(Snapshot(Arc::new(pending))),
            // The state's next change offers it again.
            Err(err) => tracing::error!(error.message = %err, "failed to write the guardrails state ahead for saving"),
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
    use crate::guardrails::{Inputs, RuleSet, State};
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

    fn store(dir: &std::path::Path) -> CheckpointStore {
        crate::state::StateDir::open(dir)
            .expect("state dir")
            .checkpoints()
            .expect("store")
    }

    /// Names of the files in the checkpoint directory.
    fn files(dir: &std::path::Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir.join("checkpoints"))
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn the_rule_state_is_saved_only_after_its_finding_events_are_acknowledged_and_as_it_was() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store(dir.path());
        let rules = Arc::new(RuleSet::build(&Inputs::default()).expect("pack"));
        let (acks, released) = StreamAcks::new(STREAM);
        let mut guard = Guard::new(Engine::new(rules, None), Arc::clone(&acks), store.clone());
        let mut tokens = Vec::new();
        for i in 0..5 {
            tokens.extend(guard.inspect(&mut failed_login(i)));
        }
        assert_eq!(tokens.len(), 1, "one credential-stuffing finding event");
        let expected = guard.engine.state().clone();
        guard.finish();
        assert!(released.borrow().is_none(), "the finding event is not acknowledged yet");
        assert_eq!(
            files(dir.path()),
            ["guardrails.pending-1"],
            "written ahead, not in place"
        );
        for (_, token) in tokens {
            token.ack();
        }
        let saved = released.borrow().clone().expect("released");
        assert!(acks.is_settled());
        assert_eq!(
            store.load::<State>(STREAM).expect("reads"),
            None,
            "not placed until written"
        );
        saved.state.save(&store, STREAM).expect("placed");
        let loaded = store.load::<State>(STREAM).expect("reads").expect("present");
        assert_eq!(loaded, expected);
        assert!(loaded.processed >= 5 && !loaded.rules.is_empty());
        drop((saved, released, acks));
        assert_eq!(files(dir.path()), ["guardrails.json"]);
    }

    #[test]
    fn a_snapshot_that_never_counts_leaves_no_file_and_neither_does_a_crash() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store(dir.path());
        let rules = Arc::new(RuleSet::build(&Inputs::default()).expect("pack"));
        let (acks, released) = StreamAcks::new(STREAM);
        let mut guard = Guard::new(Engine::new(Arc::clone(&rules), None), Arc::clone(&acks), store.clone());
        for i in 0..5 {
            // The finding event's token is dropped unacknowledged (its delivery failed).
            drop(guard.inspect(&mut failed_login(i)));
        }
        guard.finish();
        assert_eq!(files(dir.path()), ["guardrails.pending-1"]);
        drop((acks, released));
        assert!(
            files(dir.path()).is_empty(),
            "an unreleased snapshot is removed with its mark"
        );

        // A file a killed process left behind is removed by the next one.
        std::fs::write(dir.path().join("checkpoints/guardrails.pending-9"), b"{").expect("write");
        let (acks, _released) = StreamAcks::new(STREAM);
        let _guard = Guard::new(Engine::new(rules, None), acks, store);
        assert!(files(dir.path()).is_empty());
    }
}
