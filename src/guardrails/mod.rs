//! Guardrails: a small rule engine that runs in the processing stage, after normalization and
//! before the sink, and the built-in rule pack.
//!
//! - `rule`: the rule model and its TOML form (parsing, validation), built-in pack in
//!   `builtin.toml`.
//! - `field`: dotted field paths over an event (`raw."api_key.created".data`).
//! - `matcher`: the conditions rules test.
//! - `stateful`: threshold, sequence, first-seen, velocity and reconciliation memories
//!   (bounded, persisted).
//! - `reconcile`: the inventory reconciled against the audit log, with its kind → audit-type
//!   table (`reconcile_types.tsv`); `facts`: its facts, keyed by digest.
//! - `detect`: content detectors for secrets and card numbers (pure over `&Event`).
//! - `engine`: runs the rules over one event.
//! - `settings`: what `[guardrails]` configures.
//!
//! The engine's place in the pipeline (its own acknowledgement tracker and checkpoint) is
//! `crate::pipeline::guard`.

pub(crate) mod detect;
pub(crate) mod engine;
pub(crate) mod facts;
pub(crate) mod field;
pub(crate) mod matcher;
pub(crate) mod reconcile;
pub(crate) mod rule;
pub(crate) mod settings;
pub(crate) mod stateful;

pub use detect::{Detection, Detectors};
pub use engine::Engine;
pub use rule::{Inputs, RuleError, RuleSet, RuleSetError};
pub use settings::GuardrailSettings;
pub use stateful::{State, write_state};

#[cfg(test)]
mod drift_tests;
#[cfg(test)]
mod pack_tests;
