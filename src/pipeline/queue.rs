//! A channel bounded by bytes, not items: the sender waits while the items in the queue add
//! up to the budget, which is how a slow or absent sink holds the pollers back. An item may
//! also hold a unit of its organization's share (`share`), returned when it leaves the queue.
//! What an item weighs is its own to say: the sink's queue weighs encoded bytes, the queue
//! into the processing stage weighs events (a chunk of a page weighs its events).

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::share::Held;
use crate::liveness::Beat;

/// Something that knows how many bytes it holds.
pub trait Weighed {
    /// Bytes this item holds while queued.
    fn bytes(&self) -> usize;
}

/// The sending half.
#[derive(Debug)]
pub struct ByteSender<T> {
    tx: mpsc::UnboundedSender<Queued<T>>,
    budget: Arc<Semaphore>,
    capacity: usize,
}

impl<T> Clone for ByteSender<T> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            budget: Arc::clone(&self.budget),
            capacity: self.capacity,
        }
    }
}

/// The receiving half.
#[derive(Debug)]
pub struct ByteReceiver<T> {
    rx: mpsc::UnboundedReceiver<Queued<T>>,
    budget: Arc<Semaphore>,
}

/// An item in the queue with the bytes it holds of the budget and, with several
/// organizations, its unit of its organization's share; both return when it is taken out.
type Queued<T> = (T, OwnedSemaphorePermit, Option<Held>);

/// The receiver is gone; the item comes back.
#[derive(Debug)]
pub struct Closed<T>(pub T);

/// A queue that holds at most `capacity` bytes (an item larger than the whole budget is let
/// through alone rather than blocking forever).
pub fn byte_channel<T: Weighed>(capacity: usize) -> (ByteSender<T>, ByteReceiver<T>) {
    let capacity = capacity.clamp(1, Semaphore::MAX_PERMITS);
    let budget = Arc::new(Semaphore::new(capacity));
    // The item count needs no bound of its own: the semaphore bounds the bytes.
    let (tx, rx) = mpsc::unbounded_channel();
    (
        ByteSender {
            tx,
            budget: Arc::clone(&budget),
            capacity,
        },
        ByteReceiver { rx, budget },
    )
}

fn permits(size: usize, capacity: usize) -> u32 {
    u32::try_from(size.clamp(1, capacity)).unwrap_or(u32::MAX)
}

/// Room for one item, taken ahead of building it (so whatever building it hands out — an
/// event's sequence number — is only handed out once the item can be queued).
#[derive(Debug)]
pub struct Room<'a, T> {
    tx: &'a mpsc::UnboundedSender<Queued<T>>,
    permit: OwnedSemaphorePermit,
}

impl<T> Room<'_, T> {
    /// Queues `item` in the room taken for it.
    pub fn send(self, item: T, share: Option<Held>) -> Result<(), Closed<T>> {
        self.tx.send((item, self.permit, share)).map_err(|e| Closed(e.0.0))
    }
}

impl<T> ByteSender<T> {
    /// Waits until `weight` fits; `None` once the receiver is gone.
    pub async fn reserve(&self, weight: usize) -> Option<Room<'_, T>> {
        let n = permits(weight, self.capacity);
        let permit = Arc::clone(&self.budget).acquire_many_owned(n).await.ok()?;
        Some(Room { tx: &self.tx, permit })
    }

    /// [`ByteSender::reserve`] for a task whose waiting for room is backpressure, not being
    /// stuck: `beat` says it waits while it does (and nothing when there is room at once).
    pub async fn reserve_noting(&self, weight: usize, beat: &Beat) -> Option<Room<'_, T>> {
        let n = permits(weight, self.capacity);
        if let Ok(permit) = Arc::clone(&self.budget).try_acquire_many_owned(n) {
            return Some(Room { tx: &self.tx, permit });
        }
        beat.waiting();
        let room = self.reserve(weight).await;
        beat.busy();
        room
    }
}

impl<T: Weighed> ByteSender<T> {
    /// Waits for room, then queues the item.
    pub async fn send(&self, item: T) -> Result<(), Closed<T>> {
        match self.reserve(item.bytes()).await {
            Some(room) => room.send(item, None),
            None => Err(Closed(item)),
        }
    }

    /// Bytes currently queued.
    pub fn queued_bytes(&self) -> usize {
        self.capacity - self.budget.available_permits()
    }
}

impl<T> ByteReceiver<T> {
    /// The next item, its bytes returned to the budget; `None` once every sender is gone and
    /// the queue is empty.
    pub async fn recv(&mut self) -> Option<T> {
        self.rx.recv().await.map(|(item, _permit, _share)| item)
    }

    /// The next item if one is queued now, without waiting.
    pub fn try_recv(&mut self) -> Option<T> {
        self.rx.try_recv().ok().map(|(item, _permit, _share)| item)
    }
}

impl<T> Drop for ByteReceiver<T> {
    /// A sender waiting for room must learn that none will come, or it would wait forever.
    fn drop(&mut self) {
        self.budget.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    #[derive(Debug)]
    struct Blob(usize);
    impl Weighed for Blob {
        fn bytes(&self) -> usize {
            self.0
        }
    }

    #[tokio::test]
    async fn a_full_queue_holds_the_sender_back_until_bytes_are_taken_out() {
        let (tx, mut rx) = byte_channel::<Blob>(100);
        tx.send(Blob(60)).await.expect("room");
        tx.send(Blob(40)).await.expect("room");
        assert_eq!(tx.queued_bytes(), 100);
        assert!(
            tx.send(Blob(10)).now_or_never().is_none(),
            "the sender must wait while the queue is full"
        );
        assert_eq!(rx.recv().await.map(|b| b.0), Some(60));
        tx.send(Blob(10))
            .now_or_never()
            .expect("room after a receive")
            .expect("open");
        assert_eq!(tx.queued_bytes(), 50);
    }

    #[tokio::test]
    async fn an_item_larger_than_the_budget_still_passes_alone() {
        let (tx, mut rx) = byte_channel::<Blob>(10);
        tx.send(Blob(1000)).await.expect("passes");
        assert_eq!(rx.recv().await.map(|b| b.0), Some(1000));
    }

    #[tokio::test]
    async fn dropping_the_receiver_releases_a_waiting_sender() {
        let (tx, rx) = byte_channel::<Blob>(10);
        tx.send(Blob(10)).await.expect("room");
        let waiting = tokio::spawn(async move { tx.send(Blob(5)).await.is_err() });
        tokio::task::yield_now().await;
        drop(rx);
        assert!(waiting.await.expect("joined"));
    }
}
