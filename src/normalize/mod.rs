//! Wire records → normalized [`Event`]s. Pure: no I/O, no clocks other than `ingested_at`.

mod audit_log;
mod compliance;
pub mod content;
mod context;
mod error;
mod event;
mod id;
mod json;
mod mapping;
mod raw;
mod tape;
mod timestamp;
mod tree;
mod unparseable;

pub use audit_log::{audit_log, audit_log_with};
pub use compliance::{compliance, compliance_without_raw};
pub use context::Context;
pub use error::NormalizeError;
pub use event::*;
pub use id::event_id;
pub use json::{serde_value as write_json_value, string as write_json_string, write_event};
pub use mapping::{CATEGORIES, Mapping, MappingTable, TableError, audit_log_mapping, compliance_mapping};
pub use raw::Raw;
pub use tape::{Tape, TapeError, parse as tape};
pub use tree::{At, Tree};
pub use unparseable::{unparseable, unparseable_key};
