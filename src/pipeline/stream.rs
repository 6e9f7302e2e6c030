//! What a stream is (one upstream feed with its own cursor) and the loop that drives one:
//! a cycle, then a cancellable wait; failures back off exponentially; a feed the upstream
//! refuses is parked with one warning instead of failing forever.

use std::time::Duration;

use backon::BackoffBuilder;

use super::{Emitter, Stopped};
use crate::api_client::ApiError;
use crate::metrics::Metrics;
use crate::retry::Schedule;

/// How long a refused stream waits before asking again.
pub const PARKED_RETRY: Duration = Duration::from_secs(60 * 60);

/// Why a cycle did not complete.
#[derive(Debug, thiserror::Error)]
pub enum CycleError {
    #[error(transparent)]
    Stopped(#[from] Stopped),
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The upstream answered, but not in a way that lets the stream make progress.
    #[error("{0}")]
    Upstream(String),
    /// The upstream refuses this feed for this account (plan, permission, feature off).
    #[error("{0}")]
    Refused(String),
}

impl CycleError {
    /// A stable label for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Stopped(_) => "stopped",
            Self::Api(e) => e.kind.as_str(),
            Self::Upstream(_) => "upstream",
            Self::Refused(_) => "refused",
        }
    }
}

/// One upstream feed with its own cursor.
pub trait Stream: Send + 'static {
    /// The stream's name: `audit_logs`, `audit_logs_tenant`, `inventory`, `compliance:<TYPE>`.
    fn name(&self) -> &str;

    /// How long to wait between successful cycles.
    fn interval(&self) -> Duration;

    /// Fetches what is new, emits it, and leaves checkpoint marks as it goes.
    fn cycle(&mut self, out: &Emitter) -> impl Future<Output = Result<(), CycleError>> + Send;
}

/// Whether a stream runs once or until stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Once,
    Forever,
}

/// Drives `stream` until shutdown (or for one cycle); returns whether the last cycle
/// succeeded.
pub async fn drive<S: Stream>(mut stream: S, out: Emitter, mode: Mode, schedule: Schedule, metrics: Metrics) -> bool {
    let name = stream.name().to_string();
    let mut failures = schedule.builder(None).build();
    let mut parked_warned = false;
    loop {
        // A stop must not wait for a slow upstream or a retry backoff: dropping the cycle
        // mid-way is safe, because nothing it had not yet marked is checkpointed.
        let result = tokio::select! {
            result = stream.cycle(&out) => result,
            () = out.stopping() => return false,
        };
        let wait = match &result {
            Ok(()) => {
                metrics.cycle(&name, true);
                failures = schedule.builder(None).build();
                stream.interval()
            }
            Err(CycleError::Stopped(_)) => return false,
            Err(CycleError::Refused(message)) => {
                metrics.cycle(&name, false);
                if !parked_warned {
                    tracing::warn!(stream = %name, reason = %message, retry_in_s = PARKED_RETRY.as_secs(), "upstream refuses this stream; it is paused while the others keep running");
                    parked_warned = true;
                }
                PARKED_RETRY
            }
            Err(err) => {
                metrics.cycle(&name, false);
                let delay = Schedule::delay(failures.next(), None).unwrap_or(schedule.max_backoff());
                let api = match err {
                    CycleError::Api(e) => Some(e),
                    _ => None,
                };
                // An outage that outlasted the retries is worth a warning; a refusal, a
                // malformed answer or a stuck cursor needs someone to look.
                let transient = api.is_some_and(|e| e.is_transient());
                macro_rules! report {
                    ($level:ident) => {
                        tracing::$level!(
                            stream = %name,
                            kind = err.kind(),
                            status = api.and_then(|e| e.status),
                            error_type = api.and_then(|e| e.error_type.as_deref()),
                            code = api.and_then(|e| e.code.as_deref()),
                            request_id = api.and_then(|e| e.request_id.as_deref()),
                            retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                            error = %err,
                            "stream cycle failed; nothing is skipped, the stream resumes from where it stopped"
                        )
                    };
                }
                if transient {
                    report!(warn);
                } else {
                    report!(error);
                }
                delay
            }
        };
        if mode == Mode::Once {
            // A refused feed is the account's situation, not a failed run.
            return matches!(result, Ok(()) | Err(CycleError::Refused(_)));
        }
        tokio::select! {
            () = out.stopping() => return result.is_ok(),
            () = tokio::time::sleep(wait) => {}
        }
    }
}
