//! The ChatGPT Compliance Logs Platform: its client (`platform`) and wire types
//! ([`wire`]). The per-event-type streams that read it live in `crate::streams::compliance`.

pub(crate) mod platform;
pub mod wire;

pub use platform::{ComplianceApi, LocationError, MAX_LIST_LIMIT};
