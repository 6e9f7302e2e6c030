//! The rule model: compiled [`Rule`]s, what each kind of rule does, and the [`RuleSet`] built
//! from the built-in pack and the operator's rule file.
//!
//! - `parse`: the TOML form, its validation, and errors naming the rule id and the field.

mod parse;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::detect::Detectors;
use super::matcher::{Field, Predicate};
use super::reconcile::Check;
use crate::normalize::Severity;

/// The built-in pack, embedded.
pub const BUILT_IN: &str = include_str!("../builtin.toml");

/// A rule file or rule that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: rule `{rule}`: `{field}`: {problem}")]
pub struct RuleError {
    /// `built-in pack` or the rule file's path.
    pub origin: String,
    /// The rule's id (`?` when the id itself is missing).
    pub rule: String,
    /// The field inside the rule (`threshold.window`, `match.actor.email`).
    pub field: String,
    pub problem: String,
}

/// The most `distinct` fields one threshold rule may count.
pub const MAX_DISTINCT_FIELDS: usize = 4;

/// One `distinct` condition of a threshold rule: at least `min` distinct values of `field`.
#[derive(Debug, Clone)]
pub struct Distinct {
    pub field: Field,
    pub min: usize,
}

/// What a rule does beyond matching one event.
#[derive(Debug, Clone)]
pub enum RuleKind {
    /// Every matching event gets a finding.
    Single,
    /// For one group within `window`: `count` matching events, or, when `distinct` is not
    /// empty, at least `min` distinct values of each of its fields (all of them at once).
    Threshold {
        group_by: Vec<Field>,
        count: usize,
        distinct: Vec<Distinct>,
        window: Duration,
    },
    /// `first_count` events matching `first`, then one matching `then`, for one group within
    /// `window`.
    Sequence {
        group_by: Vec<Field>,
        window: Duration,
        first: Predicate,
        first_count: usize,
        then: Predicate,
    },
    /// A value (or combination of values, one per field of `value`) not seen for the group
    /// within `retain`. With `baseline`, the group's earliest value is learned and every
    /// later new value reported (a user's usual country is not news, a second one is);
    /// without, every value is reported the first time it is seen, the group's first
    /// included (a plugin nobody installed before is news even when it is the first one).
    FirstSeen {
        group_by: Vec<Field>,
        value: Vec<Field>,
        retain: Duration,
        baseline: bool,
        /// Values remembered per group (the least recently seen is forgotten beyond it).
        max_values: usize,
    },
    /// Two events of one group, consecutive in time and at most `window` apart, whose
    /// places (`actor.geo` latitude/longitude) are at least `min_km` apart and would need a
    /// speed of at least `min_kmh`: impossible travel.
    Velocity {
        group_by: Vec<Field>,
        min_km: f64,
        min_kmh: f64,
        window: Duration,
    },
    /// The inventory reconciled against the audit log (see `reconcile`).
    Reconcile { check: Check, grace: Duration },
    /// Content detectors over message and tool-call text; `None` means all of them.
    Content { detectors: Option<HashSet<String>> },
}

/// A piece of a message template.
#[derive(Debug, Clone)]
pub enum Piece {
    Text(String),
    Field(Field),
}

/// One compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    /// `{dotted.path}` placeholders are filled from the event.
    pub message: Vec<Piece>,
    pub predicate: Predicate,
    pub kind: RuleKind,
    /// MITRE ATT&CK technique ids (`T1078.004`) of what the rule detects, carried into its
    /// findings so a SIEM can map them.
    pub attack: Vec<String>,
}

impl Rule {
    /// Whether the rule keeps state across events.
    pub fn is_stateful(&self) -> bool {
        !matches!(self.kind, RuleKind::Single | RuleKind::Content { .. })
    }

    /// Event types the rule can fire on, when known, for the engine's index.
    pub fn types(&self) -> Option<Vec<String>> {
        if let Some(t) = self.predicate.types() {
            return Some(t);
        }
        match &self.kind {
            RuleKind::Sequence { first, then, .. } => {
                let mut t = first.types()?;
                t.extend(then.types()?);
                Some(t)
            }
            _ => None,
        }
    }
}

/// Operator inputs a rule set is built from (the `[guardrails]` section).
#[derive(Debug, Clone, Default)]
pub struct Inputs<'a> {
    pub rules_file: Option<&'a Path>,
    pub disabled_rules: &'a [String],
    pub key_admins: &'a [String],
    pub custom_patterns: &'a [(String, String)],
}

/// The active rules and the detectors they use.
#[derive(Debug, Clone)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
    pub detectors: Detectors,
    /// Rules switched off because a list they consult is empty, with the reason.
    pub inactive: Vec<(String, String)>,
}

/// Either a bad rule or a bad `[guardrails]` key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleSetError {
    #[error(transparent)]
    Rule(#[from] RuleError),
    #[error("`{key}`: {problem}")]
    Input { key: String, problem: String },
}

impl RuleSet {
    /// The built-in pack minus `disabled_rules`, then the rule file (whose rules replace
    /// built-in rules of the same id).
    pub fn build(inputs: &Inputs<'_>) -> Result<Self, RuleSetError> {
        let detectors = Detectors::new(inputs.custom_patterns).map_err(|(name, e)| RuleSetError::Input {
            key: format!("guardrails.custom_patterns.{name}"),
            problem: format!("not a valid regular expression: {e}"),
        })?;
        let key_admins: HashSet<String> = inputs
            .key_admins
            .iter()
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect();
        let sets = Sets {
            key_admins: Arc::new(key_admins),
        };
        let mut rules = parse::parse("built-in pack", BUILT_IN, &sets, &detectors)?;
        if let Some(path) = inputs.rules_file {
            let text = std::fs::read_to_string(path).map_err(|e| RuleSetError::Input {
                key: "guardrails.rules_file".into(),
                problem: format!("cannot read `{}`: {e}", path.display()),
            })?;
            for rule in parse::parse(&path.display().to_string(), &text, &sets, &detectors)? {
                match rules.iter_mut().find(|r| r.0.id == rule.0.id) {
                    Some(existing) => *existing = rule,
                    None => rules.push(rule),
                }
            }
        }
        for id in inputs.disabled_rules {
            if !rules.iter().any(|(r, _)| &r.id == id) {
                return Err(RuleSetError::Input {
                    key: "guardrails.disabled_rules".into(),
                    problem: format!("`{id}` is not the id of a built-in or file rule"),
                });
            }
        }
        let mut active = Vec::new();
        let mut inactive = Vec::new();
        for (rule, needs) in rules {
            if inputs.disabled_rules.contains(&rule.id) {
                continue;
            }
            match needs {
                Some(set) if sets.get(&set).is_some_and(|s| s.is_empty()) => {
                    inactive.push((rule.id, format!("guardrails.{set} is empty")));
                }
                _ => active.push(rule),
            }
        }
        Ok(Self {
            rules: active,
            detectors,
            inactive,
        })
    }
}

/// The named operator lists rules may consult (`in_set = "key_admins"`).
struct Sets {
    key_admins: Arc<HashSet<String>>,
}

impl Sets {
    fn get(&self, name: &str) -> Option<&Arc<HashSet<String>>> {
        match name {
            "key_admins" => Some(&self.key_admins),
            _ => None,
        }
    }
}
