//! Each organization's share of the queue: with several organizations, one that is
//! backfilling a month could fill the queue and make another's live events wait behind all
//! of it. Every event holds one unit of its organization's share from the moment its stream
//! emits it until the sink takes it out of the byte-bounded queue, so no organization holds
//! more than its share of what waits for the sink, and another's event always finds room.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The fewest events one organization may have waiting: two full batches, so a lone
/// backfilling organization still keeps the sink busy with whole batches.
const MIN_BATCHES: usize = 2;

/// One organization's budget of waiting events; clones share it.
#[derive(Debug, Clone)]
pub struct Share {
    budget: Arc<Semaphore>,
    events: usize,
}

/// Units of an organization's share (one per event), returned when dropped.
#[derive(Debug)]
pub struct Held(OwnedSemaphorePermit);

impl Held {
    /// One unit taken out, for one event of a chunk to carry on alone; `None` when none is
    /// left.
    pub fn split_one(&mut self) -> Option<Held> {
        self.0.split(1).map(Held)
    }
}

impl Share {
    /// A share of `events` waiting events.
    pub fn new(events: usize) -> Self {
        let events = events.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            budget: Arc::new(Semaphore::new(events)),
            events,
        }
    }

    /// The share each of `orgs` organizations gets when batches hold `max_batch_events`, or
    /// `None` for a single organization, which has nobody to share with.
    pub fn per_org(orgs: usize, max_batch_events: usize) -> Option<usize> {
        (orgs > 1).then(|| MIN_BATCHES * max_batch_events.max(1))
    }

    /// Waits until the organization has room for `events` more events (for a chunk larger
    /// than the whole share, room for the whole share: its last events then hold no unit).
    pub async fn take(&self, events: usize) -> Held {
        let n = u32::try_from(events.clamp(1, self.events)).unwrap_or(u32::MAX);
        let permit = Arc::clone(&self.budget)
            .acquire_many_owned(n)
            .await
            .unwrap_or_else(|_| unreachable!("a share's semaphore is never closed"));
        Held(permit)
    }

    /// Events of this organization waiting now.
    pub fn waiting(&self) -> usize {
        self.events - self.budget.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    #[tokio::test]
    async fn an_organization_at_its_share_waits_while_another_still_finds_room() {
        let (busy, quiet) = (Share::new(3), Share::new(3));
        let held: Vec<Held> = futures_util::future::join_all((0..3).map(|_| busy.take(1))).await;
        assert_eq!(busy.waiting(), 3);
        assert!(
            busy.take(1).now_or_never().is_none(),
            "a full share holds its organization back"
        );
        assert!(
            quiet.take(1).now_or_never().is_some(),
            "the other organization is not held back"
        );
        drop(held);
        assert!(
            busy.take(1).now_or_never().is_some(),
            "room again once the sink took them"
        );
    }

    #[tokio::test]
    async fn a_chunk_takes_a_unit_per_event_and_hands_them_out_one_by_one() {
        let share = Share::new(3);
        let mut held = share.take(2).await;
        assert_eq!(share.waiting(), 2);
        let one = held.split_one().expect("a unit");
        drop(held);
        assert_eq!(share.waiting(), 1, "the unit handed out stays taken");
        drop(one);
        assert_eq!(share.waiting(), 0);
        // A chunk larger than the share takes the whole share rather than waiting forever.
        let mut held = share.take(5).now_or_never().expect("the whole share is free");
        assert_eq!(share.waiting(), 3);
        let units: Vec<Held> = std::iter::from_fn(|| held.split_one()).collect();
        assert_eq!(units.len(), 3, "the events past the share's size carry no unit");
    }

    #[test]
    fn one_organization_has_no_share_and_several_get_two_batches_each() {
        assert_eq!(Share::per_org(1, 500), None);
        assert_eq!(Share::per_org(3, 500), Some(1000));
    }
}
