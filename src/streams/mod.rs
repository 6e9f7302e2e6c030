//! The streams: one upstream feed each, with its own cursor and typed checkpoint.
//!
//! - `audit_logs`: `audit_logs` and `audit_logs_tenant`, one closed window at a time.
//! - `inventory`: the organization inventory, one full listing per interval.
//! - [`compliance`]: `compliance:<TYPE>`, one per Compliance Logs Platform event type.
//! - `driver`: the loop every stream runs in.

pub(crate) mod audit_logs;
pub mod compliance;
pub(crate) mod driver;
pub(crate) mod inventory;

pub(crate) mod paging;

use std::time::Duration;

use crate::metrics::Metrics;
use crate::normalize::{self, Context, Event, NormalizeError, Source};
pub use crate::pipeline::checkpoints::Checkpoint;
use crate::pipeline::{Emitter, Stopped};
use crate::upstream::ApiError;
use serde_json::Value;

pub(crate) use paging::CursorGuard;

pub use driver::drive;

/// How far ahead of this host's clock a saved position may be before it is treated as written
/// by a fast clock (and read again instead of trusted). Within it, the audit logs' overlap
/// (5 min by default) re-reads what a small skew could have hidden.
pub const CLOCK_SKEW_ALLOWANCE: Duration = Duration::from_secs(60);

/// How long a refused stream waits before asking again.
pub const PARKED_RETRY: Duration = Duration::from_secs(60 * 60);

/// Why a cycle did not complete.
#[derive(Debug, thiserror::Error)]
pub enum CycleError {
    #[error(transparent)]
    Stopped(#[from] Stopped),
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The upstream answered, but not in a way that lets the stream make progress.
    #[error("{0}")]
    Upstream(String),
    /// The upstream refuses this feed for this account (plan, permission, feature off).
    #[error("{0}")]
    Refused(String),
    /// Something the upstream should soon provide is not there yet (a listed file answering
    /// 404): retried with backoff, and worth a warning rather than an error until then.
    #[error("{0}")]
    Waiting(String),
    /// The stream's own files under the state directory could not be read or written.
    #[error("{0}")]
    State(String),
}

impl CycleError {
    /// A stable label for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Stopped(_) => "stopped",
            Self::Api(e) => e.kind.as_str(),
            Self::Upstream(_) => "upstream",
            Self::Refused(_) => "refused",
            Self::Waiting(_) => "waiting",
            Self::State(_) => "state",
        }
    }
}

/// What one cycle did, for the driver's end-of-cycle line and metrics.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CycleReport {
    /// Pages or files read.
    pub pages: u64,
    /// Events emitted.
    pub events: u64,
    /// Upstream repeats dropped by id.
    pub duplicates: u64,
    /// What the cycle covered, in the stream's own terms (`window 1770000000..1770000600`).
    pub summary: String,
}

/// One upstream feed with its own cursor.
pub trait Stream: Send + 'static {
    /// What the stream's checkpoint holds.
    type State: Checkpoint;

    /// The stream's name: `audit_logs`, `audit_logs_tenant`, `inventory`, `compliance:<TYPE>`.
    fn name(&self) -> &str;

    /// How long to wait between successful cycles.
    fn interval(&self) -> Duration;

    /// Fetches what is new, emits it, and leaves checkpoint marks as it goes.
    fn cycle(&mut self, out: &Emitter<Self::State>) -> impl Future<Output = Result<CycleReport, CycleError>> + Send;
}

/// A wire record as an event: `normalized`, or — when it could not be — an `other` event
/// holding the record (`record` makes its tree, wanted only then), so nothing is dropped.
/// Types the mapping table does not know are counted, and the first of each type in this
/// process is a WARN naming it and an example event id, so drift shows up the hour it happens.
pub(crate) fn to_event(
    stream: &str,
    source: Source,
    ctx: &Context,
    metrics: &Metrics,
    normalized: Result<Event, NormalizeError>,
    record: impl FnOnce() -> Value,
) -> Event {
    match normalized {
        Ok(event) => {
            if event.category == "other" && metrics.unknown_type(stream, &event.event_type) {
                tracing::warn!(
                    stream,
                    source = event.source.as_str(),
                    event_type = %event.event_type,
                    example_event_id = %event.id,
                    "an event type no mapping table knows arrived (warned once per type): it is delivered as category `other`, counted in oai_ingest_unknown_event_types_total and reported once by the guardrail `unknown_event_type`"
                );
            }
            event
        }
        Err(err) => {
            tracing::warn!(stream, error.message = %err, error.kind = err.kind(), "an upstream record is incomplete; shipping it as an `other` event");
            normalize::unparseable(source, &record(), ctx, &err.to_string())
        }
    }
}

/// Whether a stream runs once or until stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Once,
    Forever,
}
