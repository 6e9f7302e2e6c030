//! The audit-log streams, `audit_logs` and `audit_logs_tenant`: page one closed
//! `effective_at` window newest-first with `after=<last_id>`, emit each page, checkpoint the
//! in-window cursor as pages are acknowledged, and promote the watermark only when the
//! window is complete. Repeats from the overlap are dropped by id.

use std::time::{Duration, Instant};

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api_client::ApiErrorKind;
use crate::checkpoint::{CheckpointError, CheckpointStore};
use crate::config::AuditLogSettings;
use crate::dedup::{self, RecentIds};
use crate::metrics::Metrics;
use crate::normalize::{self, Context};
use crate::openai::client::{AdminClient, AuditLogQuery};
use crate::openai::window::Window;
use crate::openai::wire::AuditLog;
use crate::pipeline::Emitter;
use crate::pipeline::stream::{CycleError, Stream};

/// Stream names.
pub const NORMAL: &str = "audit_logs";
pub const TENANT: &str = "audit_logs_tenant";

/// What the checkpoint of an audit-log stream holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditState {
    /// Every event with `effective_at` up to here has been delivered (late arrivals are
    /// caught by the overlap).
    pub watermark: Option<i64>,
    /// The window being paged, if a cycle stopped inside one.
    pub window: Option<Window>,
    /// Ids at or after the next window's start, to drop repeats.
    pub recent: RecentIds,
}

/// One audit-log pass (normal or tenant-scoped).
#[derive(Debug)]
pub struct AuditLogStream {
    name: &'static str,
    tenant_only: bool,
    client: AdminClient,
    settings: AuditLogSettings,
    ctx: Context,
    state: AuditState,
    metrics: Metrics,
}

impl AuditLogStream {
    /// The normal (`tenant_only = false`) or tenant pass, resuming from its checkpoint.
    pub fn new(
        tenant_only: bool,
        client: AdminClient,
        settings: AuditLogSettings,
        ctx: Context,
        store: &CheckpointStore,
        metrics: Metrics,
    ) -> Result<Self, CheckpointError> {
        let name = if tenant_only { TENANT } else { NORMAL };
        let state = store.load::<AuditState>(name)?.unwrap_or_default();
        Ok(Self {
            name,
            tenant_only,
            client,
            settings,
            ctx,
            state,
            metrics,
        })
    }

    /// The stream's current (not necessarily committed) state.
    pub fn state(&self) -> &AuditState {
        &self.state
    }

    fn overlap(&self) -> Duration {
        self.settings.overlap
    }

    async fn page_window(&mut self, out: &Emitter, window: &mut Window, totals: &mut Totals) -> Result<(), CycleError> {
        let keep_from = window.next_start(self.overlap());
        loop {
            let query = AuditLogQuery {
                gte: window.start,
                lte: window.end,
                after: window.after.clone(),
                limit: self.settings.page_size,
                tenant_only: self.tenant_only,
            };
            let page = self.client.audit_logs(&query).await.map_err(|e| self.refusal(e))?;
            self.metrics.page_fetched(self.name);
            if page.has_more && page.last_id.is_none() {
                return Err(CycleError::Upstream(
                    "a page says has_more but carries no last_id to continue from".into(),
                ));
            }
            if page.data.is_empty() && page.has_more {
                return Err(CycleError::Upstream(
                    "an empty page says has_more; the cursor cannot advance".into(),
                ));
            }
            if page.last_id.is_some() && page.last_id == window.after {
                return Err(CycleError::Upstream(format!(
                    "the cursor did not advance (last_id {} returned twice); retrying later instead of looping",
                    window.after.as_deref().unwrap_or_default()
                )));
            }
            let mut events = Vec::with_capacity(page.data.len());
            for record in &page.data {
                match self.accept(record, keep_from) {
                    Accepted::New(event) => events.push(*event),
                    Accepted::Repeat => totals.duplicates += 1,
                }
            }
            totals.events += events.len() as u64;
            out.emit_all(events).await?;
            window.pages += 1;
            totals.pages += 1;
            if let Some(last) = page.last_id {
                window.after = Some(last);
            }
            if !page.has_more {
                return Ok(());
            }
            // A fast backfill can put more ids in the re-read horizon than the cap allows;
            // dropping the oldest only risks a repeat, never a loss.
            self.state.recent.truncate(dedup::DEFAULT_CAP);
            // Resume point: the next page, once this one is acknowledged.
            self.state.window = Some(window.clone());
            out.checkpoint(&self.state);
        }
    }

    fn accept(&mut self, record: &Value, keep_from: i64) -> Accepted {
        let view = AuditLog::deserialize(record).ok();
        if let Some(view) = &view {
            if self.state.recent.contains(&view.id) {
                return Accepted::Repeat;
            }
            if view.effective_at >= keep_from {
                self.state.recent.insert(&view.id, view.effective_at);
            }
        }
        match normalize::audit_log(record, &self.ctx) {
            Ok(event) => {
                if event.category == "other" {
                    self.metrics.unknown_type(self.name, &event.event_type);
                }
                Accepted::New(Box::new(event))
            }
            // A record without id, type or time cannot be normalized; it still travels, as
            // an `other` event built from its content, so nothing is dropped.
            Err(err) => {
                tracing::error!(stream = self.name, error = %err, "an audit-log record is malformed; shipping it as an `other` event");
                Accepted::New(Box::new(normalize::unparseable(
                    normalize::Source::AuditLog,
                    record,
                    &self.ctx,
                    &err.to_string(),
                )))
            }
        }
    }

    /// A tenant pass the organization cannot use is refused, not failed.
    fn refusal(&self, err: crate::api_client::ApiError) -> CycleError {
        let refused = matches!(err.kind, ApiErrorKind::Forbidden | ApiErrorKind::NotFound)
            || (err.kind == ApiErrorKind::Rejected && err.status == Some(400));
        if self.tenant_only && refused {
            CycleError::Refused(format!(
                "the tenant-scoped audit-log pass (tenant_only=true) was refused: HTTP {}: {}; set audit_logs.tenant_events = false to stop asking",
                err.status.unwrap_or_default(),
                err.message
            ))
        } else {
            CycleError::Api(err)
        }
    }
}

enum Accepted {
    New(Box<normalize::Event>),
    Repeat,
}

#[derive(Debug, Default)]
struct Totals {
    pages: u64,
    events: u64,
    duplicates: u64,
}

impl Stream for AuditLogStream {
    fn name(&self) -> &str {
        self.name
    }

    fn interval(&self) -> Duration {
        self.settings.poll_interval
    }

    async fn cycle(&mut self, out: &Emitter) -> Result<(), CycleError> {
        let started = Instant::now();
        let now = Utc::now().timestamp();
        let mut window = self.state.window.clone().unwrap_or_else(|| {
            Window::next(
                self.state.watermark,
                now,
                self.overlap(),
                self.settings.initial_lookback,
            )
        });
        let resumed = window.after.is_some();
        let mut totals = Totals::default();
        let result = self.page_window(out, &mut window, &mut totals).await;
        if totals.duplicates > 0 {
            self.metrics.duplicates_dropped(self.name, totals.duplicates);
        }
        if let Err(err) = result {
            // Keep the cursor in memory so the next attempt continues inside the window.
            self.state.window = Some(window);
            return Err(err);
        }
        self.state.watermark = Some(window.end);
        self.state.window = None;
        self.state.recent.prune_before(window.next_start(self.overlap()));
        self.state.recent.truncate(dedup::DEFAULT_CAP);
        out.checkpoint(&self.state);
        tracing::info!(
            stream = self.name,
            window_start = window.start,
            window_end = window.end,
            resumed,
            pages = totals.pages,
            events = totals.events,
            duplicates_dropped = totals.duplicates,
            duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            watermark = window.end,
            committed_watermark = committed_watermark(out),
            "audit-log window complete"
        );
        Ok(())
    }
}

/// The watermark of the last checkpoint the sink's acknowledgements released.
fn committed_watermark(out: &Emitter) -> Option<i64> {
    out.acks()
        .committed()
        .and_then(|state| state.get("watermark").and_then(Value::as_i64))
}
