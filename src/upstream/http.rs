//! The one HTTP client builder every outbound connection uses: rustls, a per-request
//! timeout, our user agent, and redirects off (the compliance download follows its 307 by
//! hand so the bearer token never reaches the signed URL's host).

use std::time::Duration;

/// `openai-audit-ingest/<version>`.
pub const USER_AGENT: &str = concat!(env!("CARGO_PKG_NAME"), "/", env!("CARGO_PKG_VERSION"));

/// A client with `timeout` per request.
pub fn client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
}
