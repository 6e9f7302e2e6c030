//! The OpenAI Admin API: wire types, client and the streams built on it.

pub mod audit_logs;
pub mod client;
pub mod inventory;
pub mod inventory_wire;
pub mod window;
pub mod wire;
