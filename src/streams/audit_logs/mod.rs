//! The audit-log streams, `audit_logs` and `audit_logs_tenant`: page one closed
//! `effective_at` window newest-first with `after=<last_id>`, emit each page, checkpoint the
//! in-window cursor as pages are acknowledged, and promote the watermark only when the
//! window is complete. Repeats from the overlap are dropped by id.

mod window;

use std::time::Duration;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Checkpoint, CursorGuard, CycleError, CycleReport, Stream};
use crate::dedup::{self, RecentIds};
use crate::metrics::Metrics;
use crate::normalize::{self, Context, Source};
use crate::openai::wire::AuditLog;
use crate::openai::{AdminApi, AuditLogQuery};
use crate::pipeline::Emitter;
use crate::upstream::{ApiError, ApiErrorKind};
pub use window::Window;

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

impl Checkpoint for AuditState {
    fn complete_up_to(&self) -> Option<i64> {
        self.watermark
    }
}

/// The two audit-log streams' settings (`[audit_logs]`).
#[derive(Debug, Clone)]
pub struct AuditLogSettings {
    pub enabled: bool,
    pub poll_interval: Duration,
    /// How far back the first start reads.
    pub initial_lookback: Duration,
    /// Re-read window for late-arriving events; repeats are dropped by id.
    pub overlap: Duration,
    /// Run the second, `tenant_only=true` pass.
    pub tenant_events: bool,
    /// `limit` per page, 1..=100.
    pub page_size: u8,
}

/// Which of the two passes a stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// `audit_logs`: everything but tenant-scoped types.
    Normal,
    /// `audit_logs_tenant`: `tenant_only=true`.
    Tenant,
}

impl Pass {
    /// The stream's name.
    pub fn name(self) -> &'static str {
        match self {
            Pass::Normal => NORMAL,
            Pass::Tenant => TENANT,
        }
    }
}

/// One audit-log pass (normal or tenant-scoped).
#[derive(Debug)]
pub struct AuditLogStream {
    pass: Pass,
    client: AdminApi,
    settings: AuditLogSettings,
    ctx: Context,
    state: AuditState,
    metrics: Metrics,
}

impl AuditLogStream {
    /// The `pass` stream, resuming from `state` (its checkpoint, or the default on a first
    /// start).
    pub fn new(
        pass: Pass,
        client: AdminApi,
        settings: AuditLogSettings,
        ctx: Context,
        state: AuditState,
        metrics: Metrics,
    ) -> Self {
        Self {
            pass,
            client,
            settings,
            ctx,
            state,
            metrics,
        }
    }

    fn overlap(&self) -> Duration {
        self.settings.overlap
    }

    async fn page_window(
        &mut self,
        out: &Emitter<AuditState>,
        window: &mut Window,
        totals: &mut CycleReport,
    ) -> Result<(), CycleError> {
        let keep_from = window.next_start(self.overlap());
        let mut guard = CursorGuard::new(window.after.as_deref());
        let name = self.pass.name();
        loop {
            let query = AuditLogQuery {
                gte: window.start,
                lte: window.end,
                after: window.after.clone(),
                limit: self.settings.page_size,
                tenant_only: self.pass == Pass::Tenant,
            };
            let page = self.client.audit_logs(&query).await.map_err(|e| self.refusal(e))?;
            self.metrics.page_fetched(name);
            let next = guard
                .next(page.has_more, page.last_id.clone(), page.data.is_empty())
                .map_err(CycleError::Upstream)?;
            let mut events = Vec::with_capacity(page.data.len());
            for record in &page.data {
                match self.accept(record, keep_from) {
                    Some(event) => events.push(event),
                    None => totals.duplicates += 1,
                }
            }
            totals.events += events.len() as u64;
            out.emit_all(events).await?;
            window.pages += 1;
            totals.pages += 1;
            let Some(next) = next else {
                return Ok(());
            };
            window.after = Some(next);
            // A fast backfill can put more ids in the re-read horizon than the cap allows;
            // dropping the oldest only risks a repeat, never a loss.
            self.state.recent.truncate(dedup::DEFAULT_CAP);
            // Resume point: the next page, once this one is acknowledged.
            self.state.window = Some(window.clone());
            out.checkpoint(self.state.clone());
        }
    }

    /// The event for `record`, or `None` for a repeat from the overlap.
    fn accept(&mut self, record: &Value, keep_from: i64) -> Option<normalize::Event> {
        if let Ok(view) = AuditLog::deserialize(record) {
            if self.state.recent.contains(&view.id) {
                return None;
            }
            if view.effective_at >= keep_from {
                self.state.recent.insert(&view.id, view.effective_at);
            }
        }
        Some(super::to_event(
            self.pass.name(),
            Source::AuditLog,
            record,
            &self.ctx,
            &self.metrics,
            normalize::audit_log,
        ))
    }

    /// A tenant pass the organization cannot use is refused, not failed.
    fn refusal(&self, err: ApiError) -> CycleError {
        let refused = matches!(err.kind, ApiErrorKind::Forbidden | ApiErrorKind::NotFound)
            || (err.kind == ApiErrorKind::Rejected && err.status == Some(400));
        if self.pass == Pass::Tenant && refused {
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

impl Stream for AuditLogStream {
    type State = AuditState;

    fn name(&self) -> &str {
        self.pass.name()
    }

    fn interval(&self) -> Duration {
        self.settings.poll_interval
    }

    async fn cycle(&mut self, out: &Emitter<AuditState>) -> Result<CycleReport, CycleError> {
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
        let mut report = CycleReport::default();
        let result = self.page_window(out, &mut window, &mut report).await;
        if let Err(err) = result {
            // Keep the cursor in memory so the next attempt continues inside the window.
            self.state.window = Some(window);
            return Err(err);
        }
        self.state.watermark = Some(window.end);
        self.state.window = None;
        self.state.recent.prune_before(window.next_start(self.overlap()));
        self.state.recent.truncate(dedup::DEFAULT_CAP);
        out.checkpoint(self.state.clone());
        report.summary = format!(
            "window {}..{}{}",
            window.start,
            window.end,
            if resumed { " (resumed mid-window)" } else { "" }
        );
        Ok(report)
    }
}
