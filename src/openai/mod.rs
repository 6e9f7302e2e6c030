//! The OpenAI Admin API: its client (`admin`) and wire types ([`wire`]). The streams that
//! read it live in `crate::streams`.

pub(crate) mod admin;
pub mod wire;

pub use admin::{AdminApi, AuditLogQuery};
