//! Request budgets: one governor limiter per API, keyed by route so the Compliance platform's
//! per-method-and-route limit and the Admin API's single shared budget use the same code.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Jitter, Quota};

/// A requests-per-minute budget per route key.
#[derive(Debug)]
pub struct RateLimit {
    limiter: DefaultKeyedRateLimiter<&'static str>,
}

impl RateLimit {
    /// `per_minute` requests per minute for each route key, bursting up to the same number.
    pub fn per_minute(per_minute: NonZeroU32) -> Self {
        Self {
            limiter: DefaultKeyedRateLimiter::keyed(Quota::per_minute(per_minute)),
        }
    }

    /// Waits until `route` may send a request. A little jitter keeps concurrent callers from
    /// waking in lockstep.
    pub async fn wait(&self, route: &'static str) {
        self.limiter
            .until_key_ready_with_jitter(&route, Jitter::up_to(Duration::from_millis(20)))
            .await;
    }
}
