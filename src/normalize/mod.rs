//! Wire records → normalized [`Event`]s. Pure: no I/O, no clocks other than `ingested_at`.

mod event;

pub use event::*;
