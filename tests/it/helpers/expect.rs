//! What the receiver should hold, worked out from the simulator's own records with the event
//! id rule of DESIGN.md, and what it does hold.

use std::collections::HashSet;

use openai_audit_simulator::{Simulator, is_tenant_scoped};
use serde_json::Value;

use super::app::TestApp;

impl TestApp {
    /// The event id the daemon gives the audit-log record `raw_id` of the simulated org.
    pub fn audit_event_id(&self, raw_id: &str) -> String {
        format!("openai.audit_log:{}:{raw_id}", self.sim.org_id())
    }

    /// The event id the daemon gives the compliance record `raw_id` of the simulated
    /// workspace.
    pub fn compliance_event_id(&self, raw_id: &str) -> String {
        format!("chatgpt.compliance:{}:{raw_id}", self.sim.workspace_id())
    }

    /// The event ids the daemon must produce for every audit event the simulator holds.
    pub fn expected_audit_ids(&self) -> HashSet<String> {
        self.audit_ids(|_| true)
    }

    /// The same, for the normal pass only (no tenant-scoped types).
    pub fn normal_pass_ids(&self) -> HashSet<String> {
        self.audit_ids(|event_type| !is_tenant_scoped(event_type))
    }

    fn audit_ids(&self, keep: impl Fn(&str) -> bool) -> HashSet<String> {
        audit_ids_of(&self.sim, keep)
    }

    /// The event ids the daemon must produce for every audit event of the simulated
    /// organization `sim` (one of [`TestApp::sims`]).
    pub fn expected_audit_ids_of(&self, sim: &Simulator) -> HashSet<String> {
        audit_ids_of(sim, |_| true)
    }

    /// The event ids the daemon must produce for every filed compliance event of `types`.
    pub fn expected_compliance(&self, types: &[&str]) -> HashSet<String> {
        types
            .iter()
            .flat_map(|t| self.sim.org().compliance_event_ids(t))
            .map(|id| self.compliance_event_id(&id))
            .collect()
    }

    /// Every event the receiver got, as received.
    pub fn received_events(&self) -> Vec<Value> {
        self.sim.receiver().events()
    }

    /// Received ids of upstream events (guardrail finding events, which the simulated org
    /// triggers, are left out), and how many arrived more than once.
    pub fn received(&self) -> (HashSet<String>, usize) {
        let ids: Vec<String> = self
            .sim
            .receiver()
            .ids()
            .into_iter()
            .filter(|id| !id.starts_with("guardrails:"))
            .collect();
        let unique: HashSet<String> = ids.iter().cloned().collect();
        let dups = ids.len() - unique.len();
        (unique, dups)
    }
}

fn audit_ids_of(sim: &Simulator, keep: impl Fn(&str) -> bool) -> HashSet<String> {
    sim.org()
        .audit_events()
        .iter()
        .filter(|e| keep(e.get("type").and_then(Value::as_str).unwrap_or_default()))
        .filter_map(|e| e.get("id").and_then(Value::as_str))
        .map(|id| format!("openai.audit_log:{}:{id}", sim.org_id()))
        .collect()
}
