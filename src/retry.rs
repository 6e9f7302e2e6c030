//! Retry policy, kept in two halves: *classification* (is this failure worth another try, and
//! did the other side say when?) and the *schedule* (exponential, capped, full jitter, via
//! `backon`). Callers combine them; neither knows about the other's caller.

use std::time::{Duration, SystemTime};

use backon::ExponentialBuilder;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// The retry schedule's settings (`[retry]`): exponential, full jitter, capped.
#[derive(Debug, Clone, Copy)]
pub struct RetrySettings {
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

/// The longest `Retry-After` honoured; a larger value is treated as this, so a misbehaving
/// server cannot park a stream for days.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(15 * 60);

/// What a failed HTTP exchange means for the next attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Connect/reset/timeout, 408, 425, 429, 5xx except 501: try again later.
    Transient,
    /// 401/403: credentials are wrong or lack permission; an operator must act.
    Auth,
    /// 413: the request body is too large.
    TooLarge,
    /// Any other 4xx, and 501: the same request will fail the same way.
    Rejected,
}

/// Classifies a response status (success statuses are not failures and must not be passed).
pub fn classify_status(status: StatusCode) -> Class {
    match status.as_u16() {
        408 | 425 | 429 => Class::Transient,
        401 | 403 => Class::Auth,
        413 => Class::TooLarge,
        501 => Class::Rejected,
        500..=599 => Class::Transient,
        _ => Class::Rejected,
    }
}

/// Classifies a transport error: anything that never produced a response is transient
/// (connect, reset, timeout, body read); a request we could not even build is not.
pub fn classify_transport(err: &reqwest::Error) -> Class {
    if err.is_builder() {
        Class::Rejected
    } else {
        Class::Transient
    }
}

/// The delay a `Retry-After` header asks for: delta-seconds or an HTTP date. Unparseable
/// values are ignored (the schedule applies); the result is capped at [`MAX_RETRY_AFTER`].
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let delay = match text.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => {
            let at = httpdate::parse_http_date(text).ok()?;
            at.duration_since(now).unwrap_or(Duration::ZERO)
        }
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

/// The shared schedule: exponential from `initial_backoff`, doubling, capped at
/// `max_backoff`, each delay drawn uniformly from zero to that bound ("full jitter").
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    settings: RetrySettings,
}

impl Schedule {
    pub fn new(settings: RetrySettings) -> Self {
        Self { settings }
    }

    /// The capped exponential bounds; `max_times` `None` means forever. Jitter is applied by
    /// [`Schedule::delay`], because backon's own jitter adds to the bound instead of drawing
    /// below it.
    pub fn builder(&self, max_times: Option<usize>) -> ExponentialBuilder {
        let builder = ExponentialBuilder::default()
            .with_min_delay(self.settings.initial_backoff)
            .with_max_delay(self.settings.max_backoff)
            .with_factor(2.0);
        match max_times {
            Some(n) => builder.with_max_times(n),
            None => builder.without_max_times(),
        }
    }

    /// The delay before the next attempt: what the server asked for (`Retry-After`) if it
    /// did, otherwise a full-jitter draw below the schedule's bound. `None` when the schedule
    /// is exhausted.
    pub fn delay(bound: Option<Duration>, asked: Option<Duration>) -> Option<Duration> {
        let bound = bound?;
        Some(match asked {
            Some(asked) => asked,
            None => bound.mul_f64(rand::random::<f64>()),
        })
    }

    /// The first delay of the schedule.
    pub fn initial_backoff(&self) -> Duration {
        self.settings.initial_backoff
    }

    /// The configured cap, used as the pause between attempts while delivery is blocked on
    /// something only an operator can fix.
    pub fn max_backoff(&self) -> Duration {
        self.settings.max_backoff
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use backon::BackoffBuilder;
    use reqwest::header::HeaderValue;

    #[test]
    fn statuses_are_classified_as_the_design_says() {
        for s in [408, 425, 429, 500, 502, 503, 504] {
            assert_eq!(
                classify_status(StatusCode::from_u16(s).expect("status")),
                Class::Transient,
                "{s}"
            );
        }
        assert_eq!(classify_status(StatusCode::NOT_IMPLEMENTED), Class::Rejected);
        assert_eq!(classify_status(StatusCode::UNAUTHORIZED), Class::Auth);
        assert_eq!(classify_status(StatusCode::FORBIDDEN), Class::Auth);
        assert_eq!(classify_status(StatusCode::PAYLOAD_TOO_LARGE), Class::TooLarge);
        assert_eq!(classify_status(StatusCode::BAD_REQUEST), Class::Rejected);
        assert_eq!(classify_status(StatusCode::UNPROCESSABLE_ENTITY), Class::Rejected);
    }

    #[test]
    fn retry_after_accepts_seconds_and_http_dates_and_is_capped() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        h.insert(RETRY_AFTER, HeaderValue::from_str(&later).expect("header"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(30)));
        h.insert(RETRY_AFTER, HeaderValue::from_static("999999"));
        assert_eq!(retry_after(&h, now), Some(MAX_RETRY_AFTER));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h, now), None);
    }

    #[test]
    fn the_schedule_doubles_up_to_the_cap_and_jitter_stays_below_the_bound() {
        let schedule = Schedule::new(RetrySettings {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(8),
        });
        let bounds: Vec<_> = schedule.builder(Some(6)).build().collect();
        let secs: Vec<u64> = bounds.iter().map(|d| d.as_secs()).collect();
        assert_eq!(secs, vec![1, 2, 4, 8, 8, 8]);
        for _ in 0..100 {
            let d = Schedule::delay(Some(Duration::from_secs(8)), None).expect("delay");
            assert!(d <= Duration::from_secs(8));
        }
        assert_eq!(
            Schedule::delay(Some(Duration::from_secs(8)), Some(Duration::from_secs(20))),
            Some(Duration::from_secs(20))
        );
        assert_eq!(Schedule::delay(None, None), None);
    }
}
