//! Admin API wire types, exactly as OpenAI sends them (`openai-openapi.yaml`).

pub mod audit_log;
pub mod inventory;

pub use audit_log::*;
