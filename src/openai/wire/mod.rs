//! Admin API wire types, exactly as OpenAI sends them (`openai-openapi.yaml`).

pub mod audit_log;
pub mod inventory;
mod members;
mod text;

pub use audit_log::*;
pub use members::{Integer, Members, WrongType};
pub use text::JsonText;
