//! The sink task: reads encoded events, makes each ready for the configured protocol and
//! schema, cuts them into batches and delivers one batch at a time to the ingestion service
//! — retrying, pausing, splitting, resending the events the receiver asks for again, or
//! dead-lettering the ones it names — acknowledging each event only once it is delivered or
//! dead-lettered.
//!
//! ## Layout
//!
//! - [`protocol`]: one encoder and one response interpreter per protocol (the verdicts).
//! - [`ocsf`]: the OCSF 1.5.0 mapping for `sink.schema = "ocsf"`.
//! - `item`: an event made ready for the wire once, as it arrives.
//! - [`batch`]: when a batch is full (pure). [`encode`]: body, compression, idempotency key.
//! - `deliver`: one batch through the verdicts: retry, pause, split, resend, dead-letter.
//! - `hec_acks`: batches waiting for Splunk's indexer acknowledgement.
//! - `pause`: the pauses an operator must end, their gauge and their alarm.
//! - [`transport`]: one request and its answer. [`auth`]: the auth header.
//! - [`probe`]: what `check` asks the receiver without writing anything.
//! - [`settings`]: what `[sink]` configures.
//!
//! Rejected events go to the state directory's dead-letter file (`state::DeadLetter`).

pub mod auth;
pub mod batch;
mod deliver;
pub mod encode;
mod hec_acks;
mod item;
pub mod ocsf;
mod pause;
pub mod probe;
pub mod protocol;
pub mod settings;
#[cfg(test)]
mod tests;
pub mod transport;

use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::liveness::Beat;
use crate::metrics::Metrics;
use crate::pipeline::Encoded;
use crate::pipeline::queue::ByteReceiver;
use crate::retry::Schedule;
use crate::state::DeadLetter;
use batch::{Batch, Limits};
use hec_acks::HecAcks;
use item::Item;
use pause::Pauses;
use protocol::{Protocol, Wire};
pub use settings::{Compression, Schema, SinkSettings};
pub use transport::Transport;

/// What the sink did before it stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SinkReport {
    /// Events the ingestion service acknowledged.
    pub delivered: u64,
    /// Events written to the dead-letter file.
    pub dead_lettered: u64,
    /// Requests acknowledged (halves of a split batch count separately).
    pub batches: u64,
    /// The shutdown deadline stopped the sink with events possibly unacknowledged.
    pub aborted: bool,
}

/// The shutdown deadline passed; the sink stops where it is.
#[derive(Debug)]
struct Aborted;

/// The sink and its running state.
#[derive(Debug)]
pub struct Sink {
    /// One request to the ingestion service and its answer.
    transport: Transport,
    /// The protocol's encoder and interpreter.
    wire: Box<dyn Wire>,
    protocol: Protocol,
    /// The event shape inside the envelope.
    schema: Schema,
    /// When a batch is full (events and encoded bytes).
    limits: Limits,
    /// Whether the body is gzipped, and at which level.
    compression: Compression,
    compression_level: u32,
    /// How long the first event of a batch may wait for company.
    flush_interval: Duration,
    /// Backoff between attempts.
    schedule: Schedule,
    /// Where an event the service rejects goes, with the reason, before it is acknowledged.
    dead_letter: DeadLetter,
    metrics: Metrics,
    /// The pauses only an operator can end, with their alarm.
    pauses: Pauses,
    /// Batches in a row whose every event was refused; past a few, delivery pauses instead
    /// of dead-lettering a whole feed for what is a configuration problem.
    refused_streak: u32,
    /// With Splunk HEC `ack = true`: batches waiting for the indexer.
    hec_acks: Option<HecAcks>,
    /// Running totals, returned when the sink stops.
    report: SinkReport,
    /// The sink's sign of life for `/healthz`: every attempt is progress; an empty queue is
    /// a wait.
    beat: Beat,
}

impl Sink {
    /// A sink for `settings`; fails only if the HTTP client cannot be built.
    pub fn new(
        settings: &SinkSettings,
        schedule: Schedule,
        dead_letter: DeadLetter,
        metrics: Metrics,
    ) -> Result<Self, reqwest::Error> {
        let wire = protocol::wire(settings.protocol, &settings.options);
        let transport = Transport::new(settings, wire.headers())?;
        let hec_acks = (settings.protocol == Protocol::SplunkHec && settings.options.ack)
            .then(|| HecAcks::new(settings.options.ack_timeout, schedule.initial_backoff()));
        Ok(Self {
            transport,
            limits: Limits {
                frame: wire.frame(),
                max_events: settings.max_batch_events,
                max_bytes: settings.max_batch_bytes,
            },
            wire,
            protocol: settings.protocol,
            schema: settings.schema,
            compression: settings.compression,
            compression_level: settings.compression_level,
            flush_interval: settings.flush_interval,
            pauses: Pauses::new(metrics.clone(), schedule.max_backoff()),
            schedule,
            dead_letter,
            metrics,
            refused_streak: 0,
            hec_acks,
            report: SinkReport::default(),
            beat: Beat::detached("sink"),
        })
    }

    /// The same sink reporting its progress on `beat`.
    pub fn with_beat(mut self, beat: Beat) -> Self {
        self.beat = beat;
        self
    }

    /// Delivers everything `rx` yields until every sender is gone and the queue is drained
    /// (then flushes the rest, waits for outstanding acknowledgements and returns), or until
    /// `abort` fires (then returns at once; unacknowledged events keep their streams'
    /// checkpoints behind them).
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
            let ack_poll = self.hec_acks.as_ref().and_then(HecAcks::poll_at);
            self.beat.waiting();
            let next = tokio::select! {
                biased;
                () = abort.cancelled() => return Err(Aborted),
                () = sleep_until_some(deadline) => {
                    deadline = None;
                    self.deliver(batch.take(), abort).await?;
                    continue;
                }
                () = sleep_until_some(ack_poll) => {
                    self.poll_hec_acks(abort).await?;
                    continue;
                }
                next = rx.recv() => next,
            };
            self.beat.busy();
            let Some(event) = next else {
                if !batch.is_empty() {
                    self.deliver(batch.take(), abort).await?;
                }
                return self.drain_hec_acks(abort).await;
            };
            self.add(event, &mut batch, &mut deadline, abort).await?;
            // What is queued already goes in without another wait: the events of a chunk
            // arrive together, and one pass of the wait above per event cost a timer's
            // registration each.
            while let Some(event) = rx.try_recv() {
                self.add(event, &mut batch, &mut deadline, abort).await?;
            }
        }
    }

    /// Adds one event to `batch`, delivering the batch when it is full (or when the event
    /// does not fit); an event the protocol cannot carry is set aside.
    async fn add(
        &mut self,
        event: Encoded,
        batch: &mut Batch<Item>,
        deadline: &mut Option<Instant>,
        abort: &CancellationToken,
    ) -> Result<(), Aborted> {
        let item = match item::prepare(self.wire.as_ref(), self.schema, event) {
            Ok(item) => item,
            Err(unsendable) => {
                let item::Unsendable { event, refusal } = *unsendable;
                return self.set_aside(&event.id, &event.json, event.ack, &refusal, abort).await;
            }
        };
        if !batch.fits(&item) {
            *deadline = None;
            self.deliver(batch.take(), abort).await?;
        }
        if batch.is_empty() {
            *deadline = Some(Instant::now() + self.flush_interval);
        }
        batch.push(item);
        if batch.is_full() {
            *deadline = None;
            self.deliver(batch.take(), abort).await?;
        }
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
