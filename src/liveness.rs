//! Whether the daemon is wedged: each long-running task (every stream, the processing
//! stage, the sink) holds a [`Beat`] and says when it makes progress and when it waits by
//! design (between cycles, for input, on a full queue downstream). A task that is neither
//! waiting nor making progress for longer than its limit has stopped: `/healthz` fails, so
//! an orchestrator restarts the process (the checkpoints make that safe). A slow upstream, a
//! sink that is down or paused, or a quiet hour are not wedged: those tasks keep retrying,
//! and every retry is progress.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// One task's last sign of life.
#[derive(Debug)]
struct State {
    /// When the task last made progress or began to wait.
    since: Instant,
    /// Waiting by design: no progress is expected until something else happens.
    waiting: bool,
}

#[derive(Debug)]
struct Task {
    name: String,
    limit: Duration,
    state: Mutex<State>,
}

/// A task's handle for reporting progress; cheap to clone (clones report for the same task).
#[derive(Debug, Clone)]
pub struct Beat(Arc<Task>);

impl Beat {
    /// A beat nobody watches (tests, `replay`).
    pub fn detached(name: &str) -> Self {
        Self(Arc::new(Task {
            name: name.to_string(),
            limit: Duration::MAX,
            state: Mutex::new(State {
                since: Instant::now(),
                waiting: true,
            }),
        }))
    }

    fn set(&self, waiting: bool) {
        let mut state = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
        state.since = Instant::now();
        state.waiting = waiting;
    }

    /// The task made progress and has more to do.
    pub fn busy(&self) {
        self.set(false);
    }

    /// The task waits by design (for input, for the next cycle, on a full queue).
    pub fn waiting(&self) {
        self.set(true);
    }
}

/// A task that stopped making progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stalled {
    pub task: String,
    /// How long since its last progress.
    pub for_s: u64,
}

/// Every watched task.
#[derive(Debug, Clone, Default)]
pub struct Liveness(Arc<Mutex<Vec<Beat>>>);

impl Liveness {
    /// Watches a new task named `name` that must show progress at least every `limit`
    /// while it is not waiting. It starts busy.
    pub fn register(&self, name: &str, limit: Duration) -> Beat {
        let beat = Beat(Arc::new(Task {
            name: name.to_string(),
            limit,
            state: Mutex::new(State {
                since: Instant::now(),
                waiting: false,
            }),
        }));
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(beat.clone());
        beat
    }

    /// The tasks that are busy but past their limit without progress.
    pub fn stalled(&self) -> Vec<Stalled> {
        let now = Instant::now();
        let tasks = self.0.lock().unwrap_or_else(|e| e.into_inner());
        tasks
            .iter()
            .filter_map(|beat| {
                let state = beat.0.state.lock().unwrap_or_else(|e| e.into_inner());
                let quiet = now.saturating_duration_since(state.since);
                (!state.waiting && quiet > beat.0.limit).then(|| Stalled {
                    task: beat.0.name.clone(),
                    for_s: quiet.as_secs(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_secs(600);

    #[tokio::test(start_paused = true)]
    async fn only_a_busy_task_past_its_limit_is_stalled() {
        let liveness = Liveness::default();
        let stream = liveness.register("audit_logs", LIMIT);
        let sink = liveness.register("sink", LIMIT);
        sink.waiting();
        tokio::time::advance(LIMIT + Duration::from_secs(1)).await;
        assert_eq!(
            liveness.stalled(),
            vec![Stalled {
                task: "audit_logs".into(),
                for_s: 601
            }],
            "a task waiting for input is never stalled, however long it waits"
        );
        stream.busy();
        assert!(liveness.stalled().is_empty(), "progress clears it");
        tokio::time::advance(LIMIT - Duration::from_secs(1)).await;
        assert!(liveness.stalled().is_empty(), "within its limit");
    }
}
