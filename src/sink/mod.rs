//! The sink: batches encoded events and delivers them to the ingestion service.

pub mod batch;
pub mod encode;
