//! The ChatGPT Compliance Logs Platform: wire types, the client, the verified download to
//! disk, the bounded line reader and the per-event-type streams.
//!
//! ```text
//! list (after, has_more/last_end_time) ─► download: 307 → signed URL (no key) → spool + sha256
//!   ─► verify (retry, else quarantine/) ─► lines from disk ─► dedup event_id ─► normalize
//!   ─► content policy ─► emit ─► checkpoint {after, file + lines done, recent ids, recent files}
//! ```

pub mod client;
pub mod download;
pub mod lines;
pub mod stream;
pub mod wire;

pub use client::ComplianceClient;
pub use stream::{ComplianceState, ComplianceStream};
