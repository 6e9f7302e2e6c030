//! The guardrails' place in the pipeline: runs the engine on each event in the processing
//! stage and gives the finding events their own acknowledgement tracker (`guardrails`),
//! whose checkpoint is the rule state — saved only once the finding events emitted before it
//! are acknowledged, so a finding is never lost to a crash.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{AckToken, StreamAcks};
use crate::guardrails::{Engine, State};
use crate::normalize::Event;

impl super::checkpoints::Checkpoint for State {}

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
    acks: Arc<StreamAcks<State>>,
    /// When the state was last offered for saving.
    last_mark: Instant,
}

impl Guard {
    /// A guard around `engine` whose finding events are tracked by `acks`.
    pub fn new(engine: Engine, acks: Arc<StreamAcks<State>>) -> Self {
        Self {
            engine,
            acks,
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
    /// time (unless `always`), so a stalled sink cannot pile snapshots up in memory.
    fn mark(&mut self, always: bool) {
        self.last_mark = Instant::now();
        if !always && self.acks.pending_marks() > 0 {
            return;
        }
        if !self.engine.take_dirty() {
            return;
        }
        self.acks.mark(self.engine.state().clone());
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
        assert!(saved.state.processed >= 5);
        assert!(acks.is_settled());
    }
}
