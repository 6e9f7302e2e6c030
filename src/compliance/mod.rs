//! The ChatGPT Compliance Logs Platform: wire types, client and the per-event-type streams.

pub mod wire;
