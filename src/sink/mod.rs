//! The sink task: reads encoded events, cuts them into batches and delivers one batch at a
//! time to the ingestion service — retrying, pausing, splitting or dead-lettering as the
//! answer requires — acknowledging each event only once it is delivered or dead-lettered.
//!
//! ## Layout
//!
//! - [`batch`]: when a batch is full (pure).
//! - [`encode`]: body, compression and idempotency key (pure).
//! - [`transport`]: one POST and what its answer means.
//! - [`settings`]: what `[sink]` configures.
//!
//! Rejected events go to the state directory's dead-letter file ([`DeadLetter`]).

pub mod batch;
pub mod encode;
pub mod settings;
#[cfg(test)]
mod tests;
pub mod transport;

use std::time::Duration;

use reqwest::StatusCode;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::pipeline::Encoded;
use crate::pipeline::queue::ByteReceiver;
use crate::retry::{Class, Schedule};
use crate::state::DeadLetter;
use backon::BackoffBuilder;
use batch::{Batch, Limits};
pub use settings::{Compression, SinkFormat, SinkSettings};
pub use transport::{Failure, Response, Transport};

/// What the sink did before it stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SinkReport {
    /// Events the ingestion service acknowledged.
    pub delivered: u64,
    /// Events written to the dead-letter file.
    pub dead_lettered: u64,
    /// Requests acknowledged with a 2xx (halves of a split batch count separately).
    pub batches: u64,
    /// The shutdown deadline stopped the sink with events possibly unacknowledged.
    pub aborted: bool,
}

/// The shutdown deadline passed; the sink stops where it is.
#[derive(Debug)]
struct Aborted;

/// How one batch attempt ended, once retries and pauses are behind it.
enum Sent {
    Delivered,
    /// The receiver refused this batch as a whole (413, 4xx, 501): narrow it down.
    Refused(Failure),
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Same batch again after a backoff.
    Retry,
    /// Same batch again after a backoff, but nothing will change until an operator acts.
    Pause,
    /// Split the batch, or dead-letter it if it is one event.
    Narrow,
}

fn next_step(failure: &Failure) -> Next {
    match failure.class {
        Class::Transient => Next::Retry,
        Class::Auth => Next::Pause,
        Class::TooLarge => Next::Narrow,
        // A rejection says something about the events only when the receiver answered with
        // 4xx or 501; a redirect or a request we could not build says something about our
        // configuration, and narrowing would dead-letter every event for it.
        Class::Rejected => match failure.status {
            Some(s) if s.is_client_error() || s == StatusCode::NOT_IMPLEMENTED => Next::Narrow,
            _ => Next::Pause,
        },
    }
}

fn class_label(class: Class) -> &'static str {
    match class {
        Class::Transient => "transient",
        Class::Auth => "auth",
        Class::TooLarge => "too_large",
        Class::Rejected => "rejected",
    }
}

/// The sink and its running totals.
#[derive(Debug)]
pub struct Sink {
    /// One POST to the ingestion service and what its answer means.
    transport: Transport,
    /// When a batch is full (events and encoded bytes).
    limits: Limits,
    /// The body's shape.
    format: SinkFormat,
    /// Whether the body is gzipped.
    compression: Compression,
    /// How long the first event of a batch may wait for company.
    flush_interval: Duration,
    /// Backoff between attempts, and the pause while delivery is blocked.
    schedule: Schedule,
    /// Where an event the service rejects goes, with the reason, before it is acknowledged.
    dead_letter: DeadLetter,
    metrics: Metrics,
    /// Running totals, returned when the sink stops.
    report: SinkReport,
}

impl Sink {
    /// A sink for `settings`; fails only if the HTTP client cannot be built.
    pub fn new(
        settings: &SinkSettings,
        schedule: Schedule,
        dead_letter: DeadLetter,
        metrics: Metrics,
    ) -> Result<Self, reqwest::Error> {
        Ok(Self {
            transport: Transport::new(settings)?,
            limits: Limits::from_settings(settings),
            format: settings.format,
            compression: settings.compression,
            flush_interval: settings.flush_interval,
            schedule,
            dead_letter,
            metrics,
            report: SinkReport::default(),
        })
    }

    /// Delivers everything `rx` yields until every sender is gone and the queue is drained
    /// (then flushes the rest and returns), or until `abort` fires (then returns at once;
    /// unacknowledged events keep their streams' checkpoints behind them).
    pub async fn run(mut self, mut rx: ByteReceiver<Encoded>, abort: CancellationToken) -> SinkReport {
        let aborted = self.pump(&mut rx, &abort).await.is_err();
        if aborted {
            tracing::warn!(
                delivered = self.report.delivered,
                "sink stopped by the shutdown deadline; undelivered events will be fetched again"
            );
        }
        SinkReport { aborted, ..self.report }
    }

    async fn pump(&mut self, rx: &mut ByteReceiver<Encoded>, abort: &CancellationToken) -> Result<(), Aborted> {
        let mut batch = Batch::new(self.limits);
        // When the batch's first event has waited `flush_interval`.
        let mut deadline: Option<Instant> = None;
        loop {
            let next = tokio::select! {
                biased;
                () = abort.cancelled() => return Err(Aborted),
                () = sleep_until_some(deadline) => {
                    deadline = None;
                    self.deliver(batch.take(), abort).await?;
                    continue;
                }
                next = rx.recv() => next,
            };
            let Some(event) = next else {
                if !batch.is_empty() {
                    self.deliver(batch.take(), abort).await?;
                }
                return Ok(());
            };
            let len = event.json.len();
            if !batch.fits(len) {
                deadline = None;
                self.deliver(batch.take(), abort).await?;
            }
            if batch.is_empty() {
                deadline = Some(Instant::now() + self.flush_interval);
            }
            batch.push(event, len);
            if batch.is_full() {
                deadline = None;
                self.deliver(batch.take(), abort).await?;
            }
        }
    }

    /// Delivers one batch, splitting it in halves as long as the receiver refuses it, and
    /// dead-lettering each single event it still refuses. Halves go out in order, one at a
    /// time, so at most one request is ever in flight.
    async fn deliver(&mut self, events: Vec<Encoded>, abort: &CancellationToken) -> Result<(), Aborted> {
        let mut work = vec![events];
        while let Some(mut events) = work.pop() {
            if events.is_empty() {
                continue;
            }
            match self.send(&events, abort).await? {
                Sent::Delivered => {
                    let n = events.len() as u64;
                    for event in events {
                        event.ack.ack();
                    }
                    self.report.delivered += n;
                    self.report.batches += 1;
                    self.metrics.delivered(n);
                    self.metrics.sink_batch("delivered");
                    tracing::debug!(events = n, "batch delivered");
                }
                Sent::Refused(failure) if events.len() == 1 => {
                    if let Some(event) = events.pop() {
                        self.dead_letter(event, &failure, abort).await?;
                    }
                }
                Sent::Refused(failure) => {
                    let second = events.split_off(events.len() / 2);
                    tracing::info!(
                        status = ?failure.status.map(|s| s.as_u16()),
                        first = events.len(),
                        second = second.len(),
                        reason = %failure.reason,
                        "ingestion service refused a batch; splitting it"
                    );
                    // A stack: the first half goes out first.
                    work.push(second);
                    work.push(events);
                }
            }
        }
        Ok(())
    }

    /// Sends one batch until it is delivered or refused, retrying transient failures and
    /// pausing on ones an operator must fix, always with the same body and idempotency key.
    async fn send(&self, events: &[Encoded], abort: &CancellationToken) -> Result<Sent, Aborted> {
        let pairs: Vec<(&str, &[u8])> = events.iter().map(|e| (e.id.as_str(), e.json.as_slice())).collect();
        let payload = encode::payload(self.format, self.compression, &pairs);
        let mut bounds = self.schedule.builder(None).build();
        let max_backoff = self.schedule.max_backoff();
        let mut last_alarm: Option<Instant> = None;
        let mut attempt: u32 = 0;
        loop {
            attempt = attempt.saturating_add(1);
            let outcome = tokio::select! {
                biased;
                () = abort.cancelled() => return Err(Aborted),
                outcome = self.transport.send(&payload) => outcome,
            };
            let failure = match outcome {
                Response::Delivered => return Ok(Sent::Delivered),
                Response::Failed(failure) => failure,
            };
            self.metrics.sink_batch(class_label(failure.class));
            let step = next_step(&failure);
            if step == Next::Narrow {
                return Ok(Sent::Refused(failure));
            }
            let delay = Schedule::delay(bounds.next(), failure.retry_after).unwrap_or(max_backoff);
            let status = failure.status.map(|s| s.as_u16());
            if step == Next::Retry {
                tracing::warn!(
                    attempt,
                    status,
                    delay = %humantime::format_duration(delay),
                    events = payload.events,
                    reason = %failure.reason,
                    "ingestion service failed; retrying the batch"
                );
            } else if last_alarm.is_none_or(|at| at.elapsed() >= max_backoff) {
                // Once per interval: loud enough to be seen, not so loud it buries other logs.
                last_alarm = Some(Instant::now());
                if failure.class == Class::Auth {
                    tracing::error!(
                        attempt,
                        status,
                        "ingestion service refused the credentials; delivery is paused and data \
                         stays queued; fix sink.auth_token"
                    );
                } else {
                    tracing::error!(
                        attempt,
                        status,
                        reason = %failure.reason,
                        "ingestion service cannot take batches as configured; delivery is paused \
                         and data stays queued; check sink.url and sink.headers"
                    );
                }
            }
            self.metrics.retry("sink");
            sleep_or_abort(delay, abort).await?;
        }
    }

    /// Writes `event` to the dead-letter file, then acknowledges it. A failed write is
    /// retried: acknowledging an event that is on disk nowhere would lose it.
    async fn dead_letter(
        &mut self,
        event: Encoded,
        failure: &Failure,
        abort: &CancellationToken,
    ) -> Result<(), Aborted> {
        let status = failure.status.map(|s| s.as_u16());
        let mut bounds = self.schedule.builder(None).build();
        loop {
            let written = tokio::select! {
                biased;
                () = abort.cancelled() => return Err(Aborted),
                written = self.dead_letter.write(event.ack.stream(), &event.id, &event.json, &failure.reason, status) => written,
            };
            match written {
                Ok(()) => break,
                Err(err) => {
                    let delay = Schedule::delay(bounds.next(), None).unwrap_or(self.schedule.max_backoff());
                    tracing::error!(
                        path = %self.dead_letter.path().display(),
                        id = %event.id,
                        error = %err,
                        delay = %humantime::format_duration(delay),
                        "failed to write a rejected event to the dead-letter file; delivery waits for it"
                    );
                    sleep_or_abort(delay, abort).await?;
                }
            }
        }
        tracing::warn!(
            stream = %event.ack.stream(),
            id = %event.id,
            status,
            reason = %failure.reason,
            path = %self.dead_letter.path().display(),
            "ingestion service rejected an event; dead-lettered"
        );
        event.ack.ack();
        self.report.dead_lettered += 1;
        self.metrics.dead_lettered(1);
        Ok(())
    }
}

/// Completes at `deadline`, or never when there is none.
async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn sleep_or_abort(delay: Duration, abort: &CancellationToken) -> Result<(), Aborted> {
    tokio::select! {
        biased;
        () = abort.cancelled() => Err(Aborted),
        () = tokio::time::sleep(delay) => Ok(()),
    }
}
