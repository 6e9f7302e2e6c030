//! Wire records → normalized [`Event`]s. Pure: no I/O, no clocks other than `ingested_at`.

mod event;
mod mapping;

pub use event::*;
pub use mapping::{CATEGORIES, Mapping, MappingTable, TableError, audit_log_mapping};
