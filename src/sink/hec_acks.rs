//! Splunk HEC indexer acknowledgement (`sink.ack = true`): batches Splunk took with an
//! `ackId` wait here, unacknowledged, until `/services/collector/ack` reports the id true;
//! one not confirmed within `sink.ack_timeout` is sent again. Pure bookkeeping: the sink
//! does the polling and the resending.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use super::item::Item;

/// Batches allowed to wait for their acknowledgement at once; past it the sink polls until
/// one clears before it sends more.
pub const MAX_PENDING: usize = 16;

/// The longest wait between two acknowledgement queries.
const MAX_POLL_DELAY: Duration = Duration::from_secs(10);

/// A batch Splunk took, waiting for the indexer.
#[derive(Debug)]
struct Pending {
    id: u64,
    items: Vec<Item>,
    sent_at: Instant,
}

/// The batches waiting for their acknowledgement, and when to ask next.
#[derive(Debug)]
pub struct HecAcks {
    /// How long a batch may wait before it is sent again.
    timeout: Duration,
    pending: Vec<Pending>,
    /// When to query next; `None` while nothing waits.
    next_poll: Option<Instant>,
    /// The first delay after a new batch or progress, doubling while nothing clears.
    initial_delay: Duration,
    delay: Duration,
}

impl HecAcks {
    pub fn new(timeout: Duration, initial_delay: Duration) -> Self {
        let initial_delay = initial_delay.min(MAX_POLL_DELAY);
        Self {
            timeout,
            pending: Vec::new(),
            next_poll: None,
            initial_delay,
            delay: initial_delay,
        }
    }

    /// `items` were taken as `ack_id` and wait for the indexer.
    pub fn add(&mut self, ack_id: u64, items: Vec<Item>) {
        self.pending.push(Pending {
            id: ack_id,
            items,
            sent_at: Instant::now(),
        });
        if self.next_poll.is_none() {
            self.delay = self.initial_delay;
            self.next_poll = Some(Instant::now() + self.delay);
        }
    }

    pub fn is_full(&self) -> bool {
        self.pending.len() >= MAX_PENDING
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// When the next query is due, if anything waits.
    pub fn poll_at(&self) -> Option<Instant> {
        self.next_poll
    }

    /// The ids to ask about.
    pub fn ids(&self) -> Vec<u64> {
        self.pending.iter().map(|p| p.id).collect()
    }

    /// Applies a query's answer at `now`: the batches whose id came back true (delivered),
    /// and those past the timeout (to send again). Splunk forgets a status once it has
    /// reported it true, so a true is acted on at once.
    pub fn settle(&mut self, status: &HashMap<u64, bool>, now: Instant) -> (Vec<Vec<Item>>, Vec<Vec<Item>>) {
        let (done, waiting): (Vec<Pending>, Vec<Pending>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|p| status.get(&p.id).copied().unwrap_or(false));
        self.pending = waiting;
        let progressed = !done.is_empty();
        let expired = self.expire(now);
        self.schedule(progressed, now);
        (done.into_iter().map(|p| p.items).collect(), expired)
    }

    /// After a query that failed: nothing is confirmed, but the timeout still runs.
    pub fn failed(&mut self, now: Instant) -> Vec<Vec<Item>> {
        let expired = self.expire(now);
        self.schedule(false, now);
        expired
    }

    fn expire(&mut self, now: Instant) -> Vec<Vec<Item>> {
        let timeout = self.timeout;
        let (expired, waiting): (Vec<Pending>, Vec<Pending>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|p| now.duration_since(p.sent_at) >= timeout);
        self.pending = waiting;
        expired.into_iter().map(|p| p.items).collect()
    }

    fn schedule(&mut self, progressed: bool, now: Instant) {
        if self.pending.is_empty() {
            self.next_poll = None;
            return;
        }
        self.delay = if progressed {
            self.initial_delay
        } else {
            (self.delay * 2).min(MAX_POLL_DELAY)
        };
        self.next_poll = Some(now + self.delay);
    }
}
