//! One batch through the protocol's verdicts: the same bytes and idempotency key on every
//! retry, a pause with an ERROR per interval while only an operator can help, halves while
//! the receiver refuses a batch without naming the event, a new (smaller) batch for the
//! events it asks for again, the dead-letter file for the ones it names — and, when batch
//! after batch is refused whole, a pause instead of dead-lettering the feed.

use backon::BackoffBuilder;
use reqwest::Method;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::hec_acks::HecAcks;
use super::item::Item;
use super::protocol::{ItemVerdict, PauseCause, Piece, Protocol, Refusal, Trouble, Verdict, splunk_hec};
use super::{Aborted, Sink, encode, sleep_or_abort, sleep_until_some};
use crate::metrics::SinkPause;
use crate::pipeline::AckToken;
use crate::retry::Schedule;
use crate::state::DeadLetterError;

/// Batches in a row with every event refused before delivery pauses instead of
/// dead-lettering: a receiver that refuses everything is misconfigured, not fed bad data.
pub const REFUSED_BATCHES_BEFORE_PAUSE: u32 = 3;

/// How a batch ended up, once every event is settled.
#[derive(Debug, Default)]
struct Settled {
    /// Some event was taken (delivered, or waiting for an indexer acknowledgement).
    taken: bool,
    /// Events the receiver refused, with why, not yet dead-lettered.
    refused: Vec<(Item, Refusal)>,
}

fn pause_reason(cause: PauseCause) -> SinkPause {
    match cause {
        PauseCause::Auth => SinkPause::Auth,
        PauseCause::Config => SinkPause::Config,
    }
}

/// The first event-level pause in a verdict, if any.
fn pause_in(verdict: &Verdict) -> Option<(PauseCause, String)> {
    match verdict {
        Verdict::Pause(cause, trouble) => Some((*cause, trouble.reason.clone())),
        Verdict::Each(each) => each.iter().find_map(|v| match v {
            ItemVerdict::Pause(cause, reason) => Some((*cause, reason.clone())),
            _ => None,
        }),
        _ => None,
    }
}

/// What an operator most likely has to change for a configuration pause.
fn config_fix(protocol: Protocol, status: Option<u16>) -> String {
    let name = protocol.as_str();
    let standard = protocol
        .standard_path()
        .map(|p| format!("; {name}'s standard path is {p}, appended when sink.url has no path"))
        .unwrap_or_default();
    match status {
        Some(404) => {
            format!("nothing answers at this path (or the index/data stream is missing): check sink.url{standard}")
        }
        Some(405) => format!("the path does not take POST: check sink.url's path{standard}"),
        Some(415) => format!(
            "the service refuses {} bodies: check that sink.protocol (`{name}`) is what it speaks",
            protocol.content_type()
        ),
        Some(s) if (300..400).contains(&s) => "the service redirects: set sink.url to the final URL".to_string(),
        _ => format!(
            "check sink.url, sink.protocol (`{name}`), sink.index and sink.headers against the receiving side's settings"
        ),
    }
}

impl Sink {
    /// Delivers one batch; returns once every event is delivered, dead-lettered or handed to
    /// the indexer-acknowledgement wait.
    pub(super) async fn deliver(&mut self, items: Vec<Item>, abort: &CancellationToken) -> Result<(), Aborted> {
        let mut items = items;
        while !items.is_empty() {
            let settled = self.settle(items, abort).await?;
            let every_event_refused = !settled.taken && !settled.refused.is_empty();
            if every_event_refused {
                self.refused_streak += 1;
            } else if settled.taken {
                self.refused_streak = 0;
            }
            if every_event_refused && self.refused_streak >= REFUSED_BATCHES_BEFORE_PAUSE {
                items = self.wait_out_refusal(settled.refused, abort).await?;
                continue;
            }
            self.set_aside_all(settled.refused, abort).await?;
            break;
        }
        self.make_room_for_hec_acks(abort).await
    }

    /// Sends `items` until every event is taken or refused: retries and pauses inside
    /// [`Sink::exchange`], halves for a refusal that names no event, new batches for the
    /// events the receiver asks for again.
    async fn settle(&mut self, items: Vec<Item>, abort: &CancellationToken) -> Result<Settled, Aborted> {
        let mut settled = Settled::default();
        let mut work = vec![items];
        let mut bounds = self.schedule.builder(None).build();
        while let Some(mut batch) = work.pop() {
            if batch.is_empty() {
                continue;
            }
            match self.exchange(&batch, abort).await? {
                Verdict::Delivered => {
                    settled.taken = true;
                    self.delivered(batch);
                }
                Verdict::Dropped { rejected, reason } => {
                    settled.taken = true;
                    tracing::warn!(
                        events = batch.len(),
                        rejected,
                        error.message = %reason,
                        "the receiver took the batch but reports dropping some of its events (not retried, as its protocol requires)"
                    );
                    self.metrics.dropped_by_receiver(rejected);
                    self.delivered(batch);
                }
                Verdict::AwaitAck(id) => {
                    settled.taken = true;
                    self.report.batches += 1;
                    match &mut self.hec_acks {
                        Some(acks) => acks.add(id, batch),
                        None => self.delivered(batch),
                    }
                }
                Verdict::Refused(refusal) if batch.len() == 1 => {
                    if let Some(item) = batch.pop() {
                        settled.refused.push((item, refusal));
                    }
                }
                Verdict::Refused(refusal) => {
                    let second = batch.split_off(batch.len() / 2);
                    tracing::info!(
                        status = refusal.status,
                        first = batch.len(),
                        second = second.len(),
                        error.message = %refusal.reason,
                        "ingestion service refused a batch; splitting it"
                    );
                    // A stack: the first half goes out first.
                    work.push(second);
                    work.push(batch);
                }
                Verdict::Each(verdicts) if verdicts.len() == batch.len() => {
                    let mut again = Vec::new();
                    let mut why_again = String::new();
                    let mut paused = None;
                    let mut delivered = Vec::new();
                    for (item, verdict) in batch.into_iter().zip(verdicts) {
                        match verdict {
                            ItemVerdict::Delivered => delivered.push(item),
                            ItemVerdict::Refused(refusal) => settled.refused.push((item, refusal)),
                            ItemVerdict::Retry(reason) => {
                                why_again = reason;
                                again.push(item);
                            }
                            ItemVerdict::Pause(cause, reason) => {
                                paused = Some((cause, reason));
                                again.push(item);
                            }
                        }
                    }
                    if !delivered.is_empty() {
                        settled.taken = true;
                        self.delivered(delivered);
                    }
                    if again.is_empty() {
                        continue;
                    }
                    if let Some((cause, reason)) = paused {
                        self.paused(cause, None, &reason, abort).await?;
                    } else {
                        let delay = Schedule::delay(bounds.next(), None).unwrap_or(self.schedule.max_backoff());
                        tracing::warn!(
                            events = again.len(),
                            delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                            error.message = %why_again,
                            "the receiver asked for some events of a batch again; resending only those"
                        );
                        self.metrics.retry("sink");
                        sleep_or_abort(delay, abort).await?;
                    }
                    work.push(again);
                }
                // A verdict per event that does not match the batch, or a whole-batch retry
                // that `exchange` never returns: send the batch again.
                Verdict::Each(_) | Verdict::Retry(_) | Verdict::Pause(..) => {
                    let delay = Schedule::delay(bounds.next(), None).unwrap_or(self.schedule.max_backoff());
                    sleep_or_abort(delay, abort).await?;
                    work.push(batch);
                }
            }
        }
        Ok(settled)
    }

    /// Sends one batch until the answer is more than "try again" or "wait for an operator",
    /// always with the same body and idempotency key.
    async fn exchange(&mut self, batch: &[Item], abort: &CancellationToken) -> Result<Verdict, Aborted> {
        let pieces: Vec<(&str, &Piece)> = batch.iter().map(|i| (i.id.as_str(), &i.piece)).collect();
        let payload = encode::payload(
            self.wire.as_ref(),
            self.protocol.content_type(),
            self.compression,
            self.compression_level,
            &pieces,
        );
        let mut bounds = self.schedule.builder(None).build();
        let mut attempt: u32 = 0;
        loop {
            attempt = attempt.saturating_add(1);
            self.beat.busy();
            let sent_at = Instant::now();
            let outcome = tokio::select! {
                biased;
                () = abort.cancelled() => return Err(Aborted),
                outcome = self.transport.send(&payload) => outcome,
            };
            self.metrics.sink_request(sent_at.elapsed());
            let verdict = match outcome {
                Ok(answer) => self.wire.interpret(&answer, batch.len()),
                Err(failure) if failure.transient => Verdict::Retry(Trouble {
                    status: None,
                    retry_after: None,
                    reason: failure.reason,
                }),
                Err(failure) => Verdict::Pause(
                    PauseCause::Config,
                    Trouble {
                        status: None,
                        retry_after: None,
                        reason: failure.reason,
                    },
                ),
            };
            self.metrics.sink_batch(result_label(&verdict));
            match verdict {
                Verdict::Retry(trouble) => {
                    let delay =
                        Schedule::delay(bounds.next(), trouble.retry_after).unwrap_or(self.schedule.max_backoff());
                    tracing::warn!(
                        attempt,
                        status = trouble.status,
                        delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                        events = payload.events,
                        error.message = %trouble.reason,
                        "ingestion service failed; retrying the batch"
                    );
                    self.metrics.retry("sink");
                    sleep_or_abort(delay, abort).await?;
                }
                Verdict::Pause(cause, trouble) => {
                    self.paused(cause, trouble.status, &trouble.reason, abort).await?;
                }
                verdict => {
                    if pause_in(&verdict).is_none() {
                        self.pauses.clear(SinkPause::Auth);
                        self.pauses.clear(SinkPause::Config);
                    }
                    return Ok(verdict);
                }
            }
        }
    }

    /// Raises the alarm for `cause` (once per interval) and waits out the interval.
    async fn paused(
        &mut self,
        cause: PauseCause,
        status: Option<u16>,
        reason: &str,
        abort: &CancellationToken,
    ) -> Result<(), Aborted> {
        if self.pauses.alarm_due(pause_reason(cause)) {
            let path = self.transport.url().path().to_string();
            match cause {
                PauseCause::Auth => tracing::error!(
                    status,
                    path = %path,
                    error.message = %reason,
                    fix = "check sink.auth_token (or sink.username / sink.password) and sink.auth_scheme against the receiving side",
                    "ingestion service refused the credentials; delivery is paused and data stays queued"
                ),
                PauseCause::Config => tracing::error!(
                    status,
                    path = %path,
                    error.message = %reason,
                    fix = %config_fix(self.protocol, status),
                    "ingestion service cannot take batches as configured; delivery is paused and data stays queued"
                ),
            }
        }
        self.metrics.retry("sink");
        sleep_or_abort(self.pauses.interval(), abort).await
    }

    /// Holds a batch whose every event was refused — after several such batches in a row —
    /// instead of dead-lettering it: each interval an ERROR, then one of its events alone
    /// (a different one each time) as a probe. Once one is taken, the rest go back to
    /// normal delivery.
    async fn wait_out_refusal(
        &mut self,
        refused: Vec<(Item, Refusal)>,
        abort: &CancellationToken,
    ) -> Result<Vec<Item>, Aborted> {
        let mut last = refused.last().map(|(_, r)| r.clone());
        let mut held: std::collections::VecDeque<Item> = refused.into_iter().map(|(item, _)| item).collect();
        loop {
            if self.pauses.alarm_due(SinkPause::Refused) {
                let (status, reason) = last
                    .as_ref()
                    .map(|r| (r.status, r.reason.as_str()))
                    .unwrap_or((None, ""));
                tracing::error!(
                    batches = self.refused_streak,
                    held = held.len(),
                    status,
                    path = %self.transport.url().path(),
                    error.message = %reason,
                    fix = %config_fix(self.protocol, status),
                    "the ingestion service refused every event of several batches in a row; this looks like a \
                     configuration problem, not bad data, so delivery is paused and data stays queued"
                );
            }
            sleep_or_abort(self.pauses.interval(), abort).await?;
            let Some(probe) = held.pop_front() else {
                return Ok(Vec::new());
            };
            let settled = self.settle(vec![probe], abort).await?;
            if settled.taken {
                self.refused_streak = 0;
                self.pauses.clear(SinkPause::Refused);
                return Ok(held.into());
            }
            for (item, refusal) in settled.refused {
                last = Some(refusal);
                held.push_back(item);
            }
        }
    }

    /// Acknowledges delivered events.
    fn delivered(&mut self, items: Vec<Item>) {
        let n = items.len() as u64;
        for item in items {
            item.ack.ack();
        }
        self.report.delivered += n;
        self.report.batches += 1;
        self.metrics.delivered(n);
        tracing::debug!(events = n, "batch delivered");
    }

    async fn set_aside_all(&mut self, refused: Vec<(Item, Refusal)>, abort: &CancellationToken) -> Result<(), Aborted> {
        for (item, refusal) in refused {
            let event = item.into_encoded();
            self.set_aside(&event.id, &event.json, event.ack, &refusal, abort)
                .await?;
        }
        Ok(())
    }

    /// Writes an event to the dead-letter file, then acknowledges it. A failed write is
    /// retried and a full file pauses delivery: acknowledging an event that is on disk
    /// nowhere would lose it.
    pub(super) async fn set_aside(
        &mut self,
        id: &str,
        json: &[u8],
        ack: AckToken,
        refusal: &Refusal,
        abort: &CancellationToken,
    ) -> Result<(), Aborted> {
        let mut bounds = self.schedule.builder(None).build();
        loop {
            let written = tokio::select! {
                biased;
                () = abort.cancelled() => return Err(Aborted),
                written = self.dead_letter.write(ack.stream(), id, json, &refusal.reason, refusal.status) => written,
            };
            match written {
                Ok(()) => break,
                Err(err @ DeadLetterError::Full { .. }) => {
                    if self.pauses.alarm_due(SinkPause::DeadLetterFull) {
                        tracing::error!(
                            error.message = %err,
                            fix = "find why events are refused (the file's `reason` fields), fix it, stop the daemon and run \
                                   `openai-audit-ingest replay`; or move the file away; or raise sink.dead_letter_max_bytes",
                            "the dead-letter file is full; delivery is paused rather than dropping events"
                        );
                    }
                    sleep_or_abort(self.pauses.interval(), abort).await?;
                }
                Err(err) => {
                    let delay = Schedule::delay(bounds.next(), None).unwrap_or(self.schedule.max_backoff());
                    if self.pauses.alarm_due(SinkPause::DeadLetterUnwritable) {
                        tracing::error!(
                            path = %self.dead_letter.path().display(),
                            id = %id,
                            error.message = %err,
                            delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                            "failed to write a rejected event to the dead-letter file; delivery is paused until it \
                             can be written"
                        );
                    }
                    sleep_or_abort(delay, abort).await?;
                }
            }
        }
        self.pauses.clear(SinkPause::DeadLetterFull);
        self.pauses.clear(SinkPause::DeadLetterUnwritable);
        tracing::warn!(
            stream = %ack.stream(),
            id = %id,
            status = refusal.status,
            error.message = %refusal.reason,
            path = %self.dead_letter.path().display(),
            "ingestion service rejected an event; dead-lettered"
        );
        ack.ack();
        self.report.dead_lettered += 1;
        self.metrics.dead_lettered(refusal.label);
        Ok(())
    }

    /// Asks Splunk which waiting batches the indexer has confirmed: confirmed ones are
    /// delivered, ones past `sink.ack_timeout` are sent again.
    pub(super) async fn poll_hec_acks(&mut self, abort: &CancellationToken) -> Result<(), Aborted> {
        let Some(acks) = &self.hec_acks else {
            return Ok(());
        };
        let url = splunk_hec::ack_url(self.transport.url());
        let query = splunk_hec::ack_query(&acks.ids());
        let answer = tokio::select! {
            biased;
            () = abort.cancelled() => return Err(Aborted),
            answer = self.transport.call(Method::POST, url, Some(query)) => answer,
        };
        let now = Instant::now();
        let status = match answer {
            Ok(answer) if answer.status.is_success() => {
                splunk_hec::ack_status(&answer.body).map_err(|e| format!("{}: {e}", answer.reason))
            }
            Ok(answer) => Err(answer.reason),
            Err(failure) => Err(failure.reason),
        };
        let Some(acks) = &mut self.hec_acks else {
            return Ok(());
        };
        let (done, expired) = match status {
            Ok(status) => acks.settle(&status, now),
            Err(reason) => {
                tracing::warn!(
                    error.message = %reason,
                    "Splunk's indexer-acknowledgement query failed; the batches stay unacknowledged and are sent again after sink.ack_timeout"
                );
                (Vec::new(), acks.failed(now))
            }
        };
        for items in done {
            let n = items.len() as u64;
            for item in items {
                item.ack.ack();
            }
            self.report.delivered += n;
            self.metrics.delivered(n);
        }
        for items in expired {
            tracing::warn!(
                events = items.len(),
                "Splunk did not confirm indexing a batch within sink.ack_timeout; sending it again"
            );
            let settled = self.settle(items, abort).await?;
            self.set_aside_all(settled.refused, abort).await?;
        }
        Ok(())
    }

    /// Polls until fewer than the most batches allowed wait for their acknowledgement.
    async fn make_room_for_hec_acks(&mut self, abort: &CancellationToken) -> Result<(), Aborted> {
        self.poll_hec_acks_while(HecAcks::is_full, abort).await
    }

    /// At the end of the input: polls until every waiting batch is confirmed (or sent again).
    pub(super) async fn drain_hec_acks(&mut self, abort: &CancellationToken) -> Result<(), Aborted> {
        self.poll_hec_acks_while(|acks| !acks.is_empty(), abort).await
    }

    /// Polls at each due time while `waiting` holds of the batches awaiting acknowledgement.
    async fn poll_hec_acks_while(
        &mut self,
        waiting: impl Fn(&HecAcks) -> bool,
        abort: &CancellationToken,
    ) -> Result<(), Aborted> {
        while let Some(acks) = &self.hec_acks
            && waiting(acks)
        {
            let at = acks.poll_at();
            tokio::select! {
                biased;
                () = abort.cancelled() => return Err(Aborted),
                () = sleep_until_some(at) => {}
            }
            self.poll_hec_acks(abort).await?;
        }
        Ok(())
    }
}

/// The `result` label of `oai_ingest_sink_batches_total` for an answer.
fn result_label(verdict: &Verdict) -> &'static str {
    match verdict {
        Verdict::Delivered | Verdict::AwaitAck(_) => "delivered",
        Verdict::Dropped { .. } | Verdict::Each(_) => "partial",
        Verdict::Retry(_) => "transient",
        Verdict::Pause(PauseCause::Auth, _) => "auth",
        Verdict::Pause(PauseCause::Config, _) => "config",
        Verdict::Refused(r) if r.label == crate::metrics::DeadLetterReason::TooLarge => "too_large",
        Verdict::Refused(_) => "rejected",
    }
}
