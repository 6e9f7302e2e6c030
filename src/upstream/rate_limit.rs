//! Request budgets: one governor limiter per API, keyed by route so the Compliance platform's
//! per-method-and-route limit and the Admin API's single shared budget use the same code.
//!
//! Within one budget, requests travel in one of two lanes. The audit logs ride the
//! [`Lane::Priority`] lane; the inventory rides [`Lane::Background`], which (a) is capped at
//! its own share of the budget, so a full inventory run never takes more than that share of
//! it, and (b) steps aside while a priority request waits, so an audit-log poll during an
//! inventory run waits for at most the one background request already on its way.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Jitter, Quota};
use tokio::sync::Notify;

/// Which lane a request travels in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lane {
    /// Served first, up to the whole budget (the audit logs).
    #[default]
    Priority,
    /// Served within its share and only when no priority request waits (the inventory).
    Background,
}

/// A requests-per-minute budget per route key.
#[derive(Debug)]
pub struct RateLimit {
    limiter: DefaultKeyedRateLimiter<&'static str>,
    /// The background lane's own cap (its share of the budget); `None` when it has all of it.
    background: Option<DefaultDirectRateLimiter>,
    /// Priority requests waiting for the budget now.
    priority_waiting: AtomicUsize,
    /// Wakes background requests when the last waiting priority request got its turn.
    priority_served: Notify,
    /// The limiters' clock, to tell a background request how long until the next turn.
    clock: governor::clock::DefaultClock,
}

/// Keeps a priority request counted as waiting until it has its turn (or is cancelled).
struct Waiting<'a>(&'a RateLimit);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.0.priority_waiting.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.priority_served.notify_waiters();
        }
    }
}

const JITTER: Duration = Duration::from_millis(20);

impl RateLimit {
    /// `per_minute` requests per minute for each route key, bursting up to the same number.
    #[cfg(test)]
    pub fn per_minute(per_minute: NonZeroU32) -> Self {
        Self::with_background_share(per_minute, 1.0)
    }

    /// As [`RateLimit::per_minute`], with the background lane capped at `share` (0 < share
    /// ≤ 1) of it: `max(1, floor(per_minute × share))` requests per minute.
    pub fn with_background_share(per_minute: NonZeroU32, share: f64) -> Self {
        let background = (share < 1.0).then(|| {
            let n = (f64::from(per_minute.get()) * share).floor() as u32;
            DefaultDirectRateLimiter::direct(Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)))
        });
        Self {
            limiter: DefaultKeyedRateLimiter::keyed(Quota::per_minute(per_minute)),
            background,
            priority_waiting: AtomicUsize::new(0),
            priority_served: Notify::new(),
            clock: governor::clock::DefaultClock::default(),
        }
    }

    /// Waits until `route` may send a request in `lane`. A little jitter keeps concurrent
    /// callers from waking in lockstep.
    pub async fn wait(&self, route: &'static str, lane: Lane) {
        match lane {
            Lane::Priority => {
                self.priority_waiting.fetch_add(1, Ordering::AcqRel);
                let _waiting = Waiting(self);
                self.limiter
                    .until_key_ready_with_jitter(&route, Jitter::up_to(JITTER))
                    .await;
            }
            Lane::Background => {
                if let Some(share) = &self.background {
                    share.until_ready_with_jitter(Jitter::up_to(JITTER)).await;
                }
                // Take a turn only at a moment no priority request waits; otherwise sleep
                // until the budget has one again and look once more.
                loop {
                    loop {
                        let served = self.priority_served.notified();
                        if self.priority_waiting.load(Ordering::Acquire) == 0 {
                            break;
                        }
                        served.await;
                    }
                    match self.limiter.check_key(&route) {
                        Ok(()) => return,
                        Err(not_until) => {
                            let wait = not_until.wait_time_from(governor::clock::Clock::now(&self.clock));
                            tokio::time::sleep(wait + Duration::from_millis(1 + rand::random_range(0..20))).await;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn rpm(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).expect("non-zero")
    }

    #[tokio::test]
    async fn the_background_lane_gets_its_share_and_leaves_the_rest_to_the_priority_lane() {
        let limit = RateLimit::with_background_share(rpm(600), 0.5);
        for _ in 0..300 {
            limit.wait("openai", Lane::Background).await;
        }
        let share = limit.background.as_ref().expect("capped");
        assert!(share.check().is_err(), "the share is used up");
        let left = (0..300).filter(|_| limit.limiter.check_key(&"openai").is_ok()).count();
        assert!(left >= 290, "the other half stays for the audit logs: {left}");
    }

    #[tokio::test]
    async fn a_waiting_priority_request_waits_for_at_most_one_background_request() {
        let limit = Arc::new(RateLimit::per_minute(rpm(600)));
        // Use up the burst: from here on one request every 100 ms.
        for _ in 0..600 {
            limit.wait("openai", Lane::Background).await;
        }
        let served = Arc::new(AtomicUsize::new(0));
        let mut background = Vec::new();
        for _ in 0..4 {
            let (limit, served) = (Arc::clone(&limit), Arc::clone(&served));
            background.push(tokio::spawn(async move {
                for _ in 0..3 {
                    limit.wait("openai", Lane::Background).await;
                    served.fetch_add(1, Ordering::AcqRel);
                }
            }));
        }
        tokio::task::yield_now().await;
        let before = served.load(Ordering::Acquire);
        limit.wait("openai", Lane::Priority).await;
        let behind = served.load(Ordering::Acquire) - before;
        assert!(
            behind <= 1,
            "the priority request waited behind {behind} background requests"
        );
        for t in background {
            t.await.expect("task");
        }
    }

    /// The audit-log stream's lag bound, in budget grants rather than in time: during an
    /// inventory run that would take every request it can get (four lists at once, the whole
    /// budget as its share), each of a series of polls waits behind at most the one inventory
    /// request already on its way. So an audit event waits for the next poll (at most one
    /// poll interval) plus at most one inventory request — never for the run.
    #[tokio::test]
    async fn every_poll_during_an_inventory_run_waits_for_at_most_one_background_request() {
        let limit = Arc::new(RateLimit::per_minute(rpm(6000)));
        // Use up the burst: from here on one request every 10 ms.
        for _ in 0..6000 {
            limit.wait("openai", Lane::Background).await;
        }
        let served = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut run = Vec::new();
        for _ in 0..4 {
            let (limit, served, stop) = (Arc::clone(&limit), Arc::clone(&served), Arc::clone(&stop));
            run.push(tokio::spawn(async move {
                while !stop.load(Ordering::Acquire) {
                    limit.wait("openai", Lane::Background).await;
                    served.fetch_add(1, Ordering::AcqRel);
                }
            }));
        }
        let mut behind = Vec::new();
        let mut between = Vec::new();
        let mut last = served.load(Ordering::Acquire);
        for _ in 0..10 {
            // The poll interval, during which the run takes the budget.
            while served.load(Ordering::Acquire) < last + 3 {
                tokio::task::yield_now().await;
            }
            let before = served.load(Ordering::Acquire);
            between.push(before - last);
            limit.wait("openai", Lane::Priority).await;
            last = served.load(Ordering::Acquire);
            behind.push(last - before);
        }
        stop.store(true, Ordering::Release);
        for t in run {
            t.await.expect("task");
        }
        assert!(
            between.iter().all(|n| *n >= 3),
            "the run kept going between polls: {between:?}"
        );
        assert!(
            behind.iter().all(|n| *n <= 1),
            "background requests ahead of each poll: {behind:?}"
        );
    }
}
