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
//! - Edges a process starts from: [`cli`], [`config`], [`telemetry`], [`shutdown`],
//!   [`commands`] (one function per command), [`app`] (build the pipeline, run it, drain it).
//! - Upstream: [`api_client`] (one authenticated JSON client: [`rate_limit`] → request →
//!   [`retry`] classification and schedule), [`http`] (the one client builder), [`openai`]
//!   (Admin API wire types, client and the audit-log streams), [`compliance`] (Compliance Logs
//!   Platform client, verified download to disk, bounded line reader, per-event-type streams).
//! - Pure logic: [`normalize`] (wire → [`normalize::Event`], mapping table as data),
//!   [`dedup`] (bounded id set), window math in [`openai::window`].
//! - The pipeline: [`pipeline`] (emitter, ack tracking, byte-bounded queue, stream driver,
//!   processing stage), [`sink`] (batch, encode, HTTP, dead-letter), [`checkpoint`] (atomic
//!   per-stream files, see [`atomic_file`]).
//! - Operations: [`metrics`], [`server`] (`/healthz`, `/readyz`, `/metrics`), [`check`].
//! - The simulator is not in this crate: `crates/simulator` is its own workspace crate,
//!   `openai_audit_simulator` (the simulated OpenAI Admin + Compliance APIs and a receiver),
//!   used by [`demo`], `simulate`, the integration tests and the benchmarks. It depends on
//!   nothing here.

pub mod app;
pub mod check;
pub mod cli;
pub mod commands;
pub mod compliance;
pub mod config;
pub mod dedup;
pub mod demo;
pub mod errors;
pub mod guardrails;
pub mod metrics;
pub mod normalize;
pub mod openai;
pub mod pipeline;
pub mod retry;
pub mod server;
pub mod shutdown;
pub mod sink;
pub mod state;
pub mod streams;
pub mod telemetry;
pub mod upstream;
