//! The sink: batches encoded events and delivers them to the ingestion service.

pub mod batch;
pub mod client;
pub mod dead_letter;
pub mod encode;
