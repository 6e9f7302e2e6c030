//! The loop that drives one stream, inside a `stream` span so every line it causes (API
//! retries included) names the stream: a cycle, then a cancellable wait; failures back off
//! exponentially; a feed the upstream refuses is parked with one warning instead of failing
//! forever. It keeps the stream's pause gauge, its snapshot watermark and its sign of life.

use std::time::{Duration, Instant};

use backon::BackoffBuilder;
use tracing::Instrument;

use super::{Checkpoint, CycleError, Mode, PARKED_RETRY, Stream};
use crate::metrics::{Metrics, StreamPause};
use crate::pipeline::Emitter;
use crate::retry::Schedule;
use crate::upstream::ApiErrorKind;

/// Drives `stream` until shutdown (or for one cycle); returns whether the last cycle
/// succeeded.
pub async fn drive<S: Stream>(
    stream: S,
    out: Emitter<S::State>,
    mode: Mode,
    schedule: Schedule,
    metrics: Metrics,
) -> bool {
    let span = tracing::info_span!("stream", stream = %stream.name());
    run(stream, out, mode, schedule, metrics).instrument(span).await
}

/// Why a failed cycle means the stream is paused until an operator acts, if it does.
fn pause_of(err: &CycleError) -> Option<StreamPause> {
    match err {
        CycleError::Refused(_) => Some(StreamPause::Refused),
        CycleError::Api(e) if e.kind == ApiErrorKind::Unauthorized => Some(StreamPause::Unauthorized),
        CycleError::Api(e) if e.kind == ApiErrorKind::Forbidden => Some(StreamPause::Forbidden),
        CycleError::Upstream(_) => Some(StreamPause::Upstream),
        _ => None,
    }
}

async fn run<S: Stream>(
    mut stream: S,
    out: Emitter<S::State>,
    mode: Mode,
    schedule: Schedule,
    metrics: Metrics,
) -> bool {
    let name = stream.name().to_string();
    let mut failures = schedule.builder(None).build();
    let mut parked_warned = false;
    loop {
        let started = Instant::now();
        let started_at = chrono::Utc::now().timestamp();
        out.beat().busy();
        // A stop must not wait for a slow upstream or a retry backoff: dropping the cycle
        // mid-way is safe, because nothing it had not yet marked is checkpointed.
        let result = tokio::select! {
            result = stream.cycle(&out) => result,
            () = out.stopping() => return false,
        };
        let wait = match &result {
            Ok(report) => {
                metrics.cycle(&name, true);
                metrics.set_stream_paused(&name, None);
                if !S::State::keeps_watermark() {
                    // A snapshot stream is complete as of the cycle that read it.
                    metrics.set_watermark(&name, started_at);
                }
                if report.duplicates > 0 {
                    metrics.duplicates_dropped(&name, report.duplicates);
                }
                tracing::info!(
                    pages = report.pages,
                    events = report.events,
                    duplicates_dropped = report.duplicates,
                    committed_up_to = out.acks().committed(|s| s.complete_up_to()).flatten(),
                    duration_ms = millis(started.elapsed()),
                    summary = %report.summary,
                    "stream cycle complete"
                );
                failures = schedule.builder(None).build();
                stream.interval()
            }
            Err(CycleError::Stopped(_)) => return false,
            Err(err @ CycleError::Refused(message)) => {
                metrics.cycle(&name, false);
                metrics.set_stream_paused(&name, pause_of(err));
                if !parked_warned {
                    tracing::warn!(
                        error.kind = err.kind(),
                        error.message = %message,
                        delay_ms = millis(PARKED_RETRY),
                        "upstream refuses this stream; it is paused while the others keep running"
                    );
                    parked_warned = true;
                }
                PARKED_RETRY
            }
            Err(err) => {
                metrics.cycle(&name, false);
                if let Some(pause) = pause_of(err) {
                    metrics.set_stream_paused(&name, Some(pause));
                }
                let delay = Schedule::delay(failures.next(), None).unwrap_or(schedule.max_backoff());
                let api = match err {
                    CycleError::Api(e) => Some(e),
                    _ => None,
                };
                // An outage that outlasted the retries is worth a warning; a refusal, a
                // malformed answer or a stuck cursor needs someone to look.
                let transient = api.is_some_and(|e| e.is_transient()) || matches!(err, CycleError::Waiting(_));
                macro_rules! report {
                    ($level:ident) => {
                        tracing::$level!(
                            error.kind = err.kind(),
                            status = api.and_then(|e| e.status),
                            error_type = api.and_then(|e| e.error_type.as_deref()),
                            code = api.and_then(|e| e.code.as_deref()),
                            request_id = api.and_then(|e| e.request_id.as_deref()),
                            delay_ms = millis(delay),
                            error.message = %err,
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
            return matches!(result, Ok(_) | Err(CycleError::Refused(_)));
        }
        out.beat().waiting();
        tokio::select! {
            () = out.stopping() => return result.is_ok(),
            () = tokio::time::sleep(wait) => {}
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
