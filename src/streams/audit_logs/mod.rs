//! The audit-log streams, `audit_logs` and `audit_logs_tenant`: page one closed
//! `effective_at` window newest-first with `after=<last_id>`, emit each page, checkpoint the
//! in-window cursor as pages are acknowledged, and promote the watermark only when the
//! window is complete. Repeats from the overlap are dropped by id. The decisions live in
//! `pass` (pure); this file drives them with the API and the emitter.

pub(crate) mod pass;
mod window;

use std::time::Duration;

use chrono::Utc;
use serde::{Deserialize, Serialize};

use self::pass::WindowPass;
use super::{Checkpoint, CycleError, CycleReport, Stream};
use crate::dedup::RecentIds;
use crate::metrics::Metrics;
use crate::normalize::{self, Context, Source};
use crate::openai::{AdminApi, AuditLogQuery};
use crate::pipeline::{Emitter, Order};
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

    fn keeps_watermark() -> bool {
        true
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

    async fn page_window(
        &mut self,
        out: &Emitter<AuditState>,
        pass: &mut WindowPass,
        totals: &mut CycleReport,
    ) -> Result<(), CycleError> {
        let name = self.pass.name();
        loop {
            let query = AuditLogQuery {
                gte: pass.window.start,
                lte: pass.window.end,
                after: pass.window.after.clone(),
                limit: self.settings.page_size,
                tenant_only: self.pass == Pass::Tenant,
            };
            let page = self.client.audit_logs(&query).await.map_err(|e| self.refusal(e))?;
            self.metrics.page_fetched(name);
            let taken = pass
                .take(&mut self.state, &page.body, page.request_id.as_deref())
                .map_err(CycleError::Upstream)?;
            totals.duplicates += taken.duplicates;
            let events: Vec<normalize::Event> = taken
                .records
                .iter()
                .map(|record| {
                    super::to_event(
                        name,
                        Source::AuditLog,
                        record,
                        &self.ctx,
                        &self.metrics,
                        normalize::audit_log,
                    )
                })
                .collect();
            totals.events += events.len() as u64;
            totals.pages += 1;
            out.emit_all(events).await?;
            // Newest-first: the oldest record of the page is how far down the window is read.
            let oldest = page
                .body
                .data
                .iter()
                .filter_map(|r| r.get("effective_at").and_then(serde_json::Value::as_i64))
                .min();
            match (taken.more, oldest) {
                (true, Some(at)) => out.progress().reached(at),
                (false, _) => out.progress().reached(pass.window.start),
                (true, None) => {}
            }
            if !taken.more {
                return Ok(());
            }
            // Resume point: the next page, once this one is acknowledged.
            out.checkpoint(pass.mark(&mut self.state));
        }
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
        let (mut pass, future) = WindowPass::begin(
            &mut self.state,
            now,
            self.settings.overlap,
            self.settings.initial_lookback,
        );
        if let Some(future) = future {
            tracing::error!(
                stream = self.pass.name(),
                saved = future.saved,
                now = future.now,
                ahead_s = future.saved - future.now,
                allowance_s = super::CLOCK_SKEW_ALLOWANCE.as_secs(),
                reread_from = pass.window.start,
                "the checkpoint's position is in the future (this host's clock was fast when it was saved): reading again from audit_logs.initial_lookback instead of skipping to it; events already delivered may arrive again (receivers drop them by id)"
            );
        }
        let resumed = pass.resumed();
        out.progress()
            .begin(pass.window.start, pass.window.end, Order::NewestFirst);
        let mut report = CycleReport::default();
        let result = self.page_window(out, &mut pass, &mut report).await;
        if let Err(err) = result {
            // Keep the cursor in memory so the next attempt continues inside the window.
            self.state.window = Some(pass.window);
            return Err(err);
        }
        let (start, end) = (pass.window.start, pass.window.end);
        out.checkpoint(pass.finish(&mut self.state));
        out.progress().finish();
        report.summary = format!(
            "window {start}..{end}{}",
            if resumed { " (resumed mid-window)" } else { "" }
        );
        Ok(report)
    }
}
