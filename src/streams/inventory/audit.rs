//! What the audit log said since the last run, as a [`Plan`]: the inventory reads the audit
//! log itself, for its own window, through its own (background) client. The `audit_logs`
//! stream delivers to the sink and keeps no in-process feed; reading again costs a page or so
//! a run and keeps the inventory correct whether or not that stream is enabled or caught up.

use chrono::{DateTime, Utc};

use super::plan::Plan;
use crate::openai::{AdminApi, AuditLogQuery};
use crate::upstream::ApiError;

/// How far before the previous run the window starts: the audit log files some events late.
pub const OVERLAP_SECS: i64 = 300;

/// The audit log read so far in one run.
#[derive(Debug)]
pub struct Window {
    pub plan: Plan,
    /// `effective_at[lte]` of the last read; the next read starts there.
    pub until: i64,
}

impl Window {
    /// The plan of the audit events from `OVERLAP_SECS` before `since` to `until`.
    pub async fn read(client: &AdminApi, since: DateTime<Utc>, until: i64) -> Result<Self, ApiError> {
        let mut window = Window {
            plan: Plan::default(),
            until: since.timestamp(),
        };
        window.extend(client, until).await?;
        Ok(window)
    }

    /// Adds the events from where the last read ended (less the overlap) to `until`.
    pub async fn extend(&mut self, client: &AdminApi, until: i64) -> Result<(), ApiError> {
        let mut query = AuditLogQuery {
            gte: self.until.saturating_sub(OVERLAP_SECS).max(0),
            lte: until,
            after: None,
            limit: 100,
            tenant_only: false,
        };
        loop {
            let page = client.audit_logs(&query).await?.body;
            self.plan.add(page.data.iter().map(|r| &**r));
            match page.last_id {
                Some(last) if page.has_more => query.after = Some(last),
                _ => break,
            }
        }
        self.until = until;
        Ok(())
    }
}
