//! The loop that drives one stream: a cycle, then a cancellable wait; failures back off
//! exponentially; a feed the upstream refuses is parked with one warning instead of failing
//! forever. Whatever pauses a stream (a refused key or feed, a stuck cursor) shows in
//! `oai_ingest_stream_paused{stream,reason}` until a cycle succeeds again.

use std::time::{Duration, Instant};

use backon::BackoffBuilder;

use super::{Checkpoint, CycleError, Mode, PARKED_RETRY, Stream};
use crate::metrics::{Metrics, StreamPause};
use crate::pipeline::Emitter;
use crate::retry::Schedule;
use crate::upstream::ApiErrorKind;

/// Drives `stream` until shutdown (or for one cycle); returns whether the last cycle
/// succeeded.
pub async fn drive<S: Stream>(
    mut stream: S,
    out: Emitter<S::State>,
    mode: Mode,
    schedule: Schedule,
    metrics: Metrics,
) -> bool {
    let name = stream.name().to_string();
    let mut failures = schedule.builder(None).build();
    let mut parked_warned = false;
    metrics.set_stream_paused(&name, None);
    loop {
        let started = Instant::now();
        // A stop must not wait for a slow upstream or a retry backoff: dropping the cycle
        // mid-way is safe, because nothing it had not yet marked is checkpointed.
        let result = tokio::select! {
            result = stream.cycle(&out) => result,
            () = out.stopping() => return false,
        };
        if let Some(paused) = pause_of(&result) {
            metrics.set_stream_paused(&name, paused);
        }
        let wait = match &result {
            Ok(report) => {
                metrics.cycle(&name, true);
                if report.duplicates > 0 {
                    metrics.duplicates_dropped(&name, report.duplicates);
                }
                tracing::info!(
                    stream = %name,
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
                let transient = api.is_some_and(|e| e.is_transient()) || matches!(err, CycleError::Waiting(_));
                macro_rules! report {
                    ($level:ident) => {
                        tracing::$level!(
                            stream = %name,
                            kind = err.kind(),
                            status = api.and_then(|e| e.status),
                            error_type = api.and_then(|e| e.error_type.as_deref()),
                            code = api.and_then(|e| e.code.as_deref()),
                            request_id = api.and_then(|e| e.request_id.as_deref()),
                            retry_in_ms = millis(delay),
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
            return matches!(result, Ok(_) | Err(CycleError::Refused(_)));
        }
        tokio::select! {
            () = out.stopping() => return result.is_ok(),
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// What a cycle's result says about the stream's pause: cleared by a success, set by a
/// refusal (of the key, of the feed) or a stream that cannot progress; left as it was by a
/// passing outage (`None`), which says nothing about the key.
fn pause_of(result: &Result<super::CycleReport, CycleError>) -> Option<Option<StreamPause>> {
    match result {
        Ok(_) => Some(None),
        Err(CycleError::Refused(_)) => Some(Some(StreamPause::Refused)),
        Err(CycleError::Upstream(_)) => Some(Some(StreamPause::Upstream)),
        Err(CycleError::Api(e)) if matches!(e.kind, ApiErrorKind::Unauthorized | ApiErrorKind::Forbidden) => {
            Some(Some(StreamPause::Auth))
        }
        Err(_) => None,
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
