//! Admin API wire types, exactly as OpenAI sends them (`openai-openapi.yaml`).

pub mod audit_log;
pub mod inventory;
mod members;
mod page;
mod text;

pub use audit_log::*;
pub use members::{Integer, MemberSpan, Members, WrongType};
pub use page::read_audit_log_page;
pub use text::{JsonText, is_json_space, string_end};
