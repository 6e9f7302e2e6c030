//! # openai-audit-ingest
//!
//! A daemon that polls OpenAI's Admin API (audit logs, normal and tenant-scoped, and the
//! organization inventory) and the ChatGPT Compliance Logs Platform, normalizes every record
//! into one schema, evaluates guardrails, and ships batches over HTTP to an ingestion
//! service, at least once and with nothing lost across crashes.
//!
//! ## Layout
//!
//! Data flows one way, and each module only imports the ones before it in this list:
//!
//! ```text
//! streams ─► normalize ─► pipeline (guardrails, content policy, encode) ─► sink ─► ack ─► checkpoint
//! ```
//!
//! 1. Leaves, used everywhere: [`metrics`], `errors` (the one error-chain printer), `retry`
//!    (failure classification apart from the backoff schedule), `dedup` (bounded id set),
//!    [`secrets`] (every configured secret's value, redacted from whatever is printed),
//!    `state` (the state directory: lock, checkpoint store, dead-letter file, compliance
//!    spool and quarantine, atomic writes), `telemetry` (and the JSON line that flattens a
//!    stream's span), `shutdown` (stop signals and SIGHUP), `liveness` (each long-running
//!    task's sign of life, for `/healthz`), [`cli`].
//! 2. Upstream clients: [`upstream`] (the one HTTP client builder, request budgets, the
//!    authenticated JSON client and its error type), [`openai`] (Admin API client and wire
//!    types), [`compliance`] (Compliance Logs Platform client and wire types).
//! 3. Pure logic: [`normalize`] (wire record → [`normalize::Event`], the mapping tables and
//!    the content table as data, the one event-id rule), [`guardrails`] (rules over events).
//! 4. `pipeline`: the emitter a stream writes into, per-stream acknowledgement tracking, the
//!    byte-bounded queue, the processing stage (guardrails, content policy, encoding) and the
//!    checkpoint writer.
//! 5. [`streams`]: one folder per stream (audit logs, inventory, compliance), the driver loop
//!    they share, the cursor guard every pager uses. [`sink`]: one encoder and response
//!    interpreter per protocol (ndjson, json, akto, splunk_hec, elasticsearch, otlp, loki)
//!    and the OCSF mapping, over one batching, retry, split, pause and dead-letter loop.
//! 6. Assembly: [`config`] (layer the sources, validate, build each component's settings;
//!    `[[orgs]]` gives one [`config::OrgSettings`] per organization), [`app`] (open the state,
//!    start each organization's streams with its own clients, checkpoints, metric labels,
//!    log span and share of the queue, start and drain everything).
//! 7. Commands: [`runtime`] (the async runtime: one worker thread by default),
//!    [`commands`] (one function per command), [`check`], [`replay`], `demo`,
//!    `server` (`/healthz`, `/readyz`, `/metrics`).
//!
//! One audit-log event, from the poll to the checkpoint: `app` loads the `audit_logs`
//! checkpoint and starts `streams::audit_logs::AuditLogStream` under `streams::drive`; a
//! cycle asks `openai::AdminApi::audit_logs` for a page of its window (rate limit → request
//! → retry in `upstream::api`; the page read in one pass by `openai::wire::read_audit_log_page`);
//! `normalize::audit_log` turns each record into an `Event`
//! (id from `normalize::event_id`), and `pipeline::Emitter::emit` numbers it and queues it;
//! after the page the stream leaves its next state with `Emitter::checkpoint`. The processing
//! stage runs the guardrails (`pipeline::guard`) and encodes the event (`normalize::write_event`)
//! into the byte-bounded queue; the sink makes it ready for the configured protocol and schema (`sink::item`),
//! batches and POSTs it (`sink::deliver`), and acknowledges it once the protocol's answer says
//! it was delivered (`sink::protocol`) or it is dead-lettered; once every event before the
//! mark is acknowledged, `pipeline::checkpoints::run_writer` saves the state
//! through `state::CheckpointStore`.
//!
//! Tests: beside the code, plus `props` (test-only): property tests of every parser of
//! outside input and of the audit-log window pass.
//!
//! The simulator is not in this crate: `crates/simulator` is its own workspace crate,
//! `openai_audit_simulator` (the simulated OpenAI Admin + Compliance APIs and a receiver),
//! used by `demo`, `simulate`, the integration tests and the benchmarks. It depends on
//! nothing here.

pub mod app;
pub mod check;
pub mod cli;
pub mod commands;
pub mod compliance;
pub mod config;
pub(crate) mod dedup;
pub(crate) mod demo;
pub(crate) mod errors;
pub mod guardrails;
pub(crate) mod liveness;
pub mod metrics;
pub mod normalize;
pub mod openai;
pub(crate) mod pipeline;
#[cfg(test)]
mod props;
pub mod replay;
pub(crate) mod retry;
pub mod runtime;
pub mod secrets;
pub(crate) mod server;
pub(crate) mod shutdown;
pub mod sink;
pub(crate) mod state;
pub mod streams;
pub(crate) mod telemetry;
pub mod upstream;
