//! What `[guardrails]` configures: whether the engine runs and the rules it runs, compiled
//! when the configuration is loaded so a bad rule stops start-up.

use std::path::PathBuf;
use std::sync::Arc;

use super::RuleSet;

/// The guardrails rule engine's settings.
#[derive(Debug, Clone)]
pub struct GuardrailSettings {
    pub enabled: bool,
    /// Memory for the per-group state of threshold, sequence, first-seen and velocity
    /// rules; beyond it the least recently touched groups are forgotten.
    pub max_state_bytes: usize,
    /// Operator rules, added to (or replacing by id) the built-in pack.
    pub rules_file: Option<PathBuf>,
    pub disabled_rules: Vec<String>,
    /// Emails or user ids allowed to create API and admin keys.
    pub key_admins: Vec<String>,
    /// Operator content detectors: (name, regex).
    pub custom_patterns: Vec<(String, String)>,
    /// The rules compiled from the keys above.
    pub rules: Arc<RuleSet>,
}
