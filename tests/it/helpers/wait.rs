//! Waiting for something the daemon brings about: poll a condition, never sleep a fixed time.

use std::time::Duration;

/// How often a condition is checked.
const POLL_EVERY: Duration = Duration::from_millis(10);

/// Waits up to 30 s for `cond`, which the daemon brings about.
pub async fn poll_until(cond: impl FnMut() -> bool) {
    wait_until(Duration::from_secs(30), "condition", cond).await;
}

/// Polls `cond` until it holds; fails the test, naming `what`, after `limit`.
pub async fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not reached within {limit:?}"
        );
        tokio::time::sleep(POLL_EVERY).await;
    }
}
