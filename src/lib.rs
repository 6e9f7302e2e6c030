//! # openai-audit-ingest
//!
//! A daemon that polls OpenAI's Admin API (audit logs, normal and tenant-scoped, and the
//! organization inventory) and the ChatGPT Compliance Logs Platform, normalizes every record
//! into one schema, evaluates guardrails, and ships batches over HTTP to an ingestion
//! service, at least once and with nothing lost across crashes.
//!
//! ## Layout
//!
//! Data flows one way: fetch → normalize → guardrails → batch → send → ack → checkpoint.
//!
//! - [`cli`], [`config`], [`telemetry`]: the edges a process starts from.
//! - [`normalize`]: wire records → [`normalize::Event`] (pure), with the event-type mapping
//!   table as data.
//! - [`openai`]: wire types of the Admin API.
//! - [`compliance`]: wire types of the Compliance Logs Platform.

pub mod cli;
pub mod compliance;
pub mod config;
pub mod normalize;
pub mod openai;
pub mod simulator;
