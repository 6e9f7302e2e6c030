//! A faithful in-process simulator of OpenAI's Admin API (audit logs, inventory) and the
//! ChatGPT Compliance Logs Platform, plus a receiver standing in for the ingestion service.
//! The daemon's integration tests, `demo`, `simulate` and benchmarks run against it. It is a
//! crate of its own in the workspace and depends on nothing in the daemon: whether the daemon's
//! wire types read what it serves is checked on the daemon's side (`tests/it/conformance.rs`).
//!
//! ## Layout
//!
//! - `lib.rs`: wiring only: these docs, the modules, the public names.
//! - `server.rs`: [`start`], the [`Simulator`] handle, the routes, `/_sim/faults`.
//!   `many.rs`: [`start_orgs`], several organizations at once (one simulator each).
//!   `config.rs`: [`SimConfig`]. `shared.rs`: the state the API endpoints share.
//! - `org.rs` / `seed.rs` / `mutate.rs`: the seeded organization, its initial inventory, and
//!   the one mutation path that updates inventory and appends the audit event together.
//! - `activity.rs`: pre-generated history and background activity (audit + compliance);
//!   `generated.rs`: a compliance file made line by line on request (a GB, never held).
//! - `audit_logs.rs`, `inventory.rs`, `compliance.rs`: the endpoints; `audit_store.rs` holds
//!   the audit events and pages them, `logfiles.rs` cuts compliance events into files,
//!   `records.rs` shapes them.
//! - `receiver.rs`: the sink's counterpart, its scripts and routes; `receiver_state.rs`: what
//!   it holds and how each service decides what to store and answer; `receiver_wire.rs`: each
//!   ingestion protocol it plays (paths, auth header forms, envelopes, answer shapes).
//!   `faults.rs`: run-time fault switches.
//! - `auth.rs`, `http.rs`, `geo.rs`: bearer checks, shared HTTP plumbing, network data.
//! - `ids.rs`, `clock.rs`: seeded ids and keys; wall time and its ISO 8601 forms.
//!
//! Imports run one way, with no loops; each layer imports only from the layers below it:
//!
//! 1. `many`, then `server`
//! 2. the endpoints `audit_logs`, `inventory`, `compliance`; `seed`; `mutate`
//! 3. `activity`, `generated`
//! 4. `shared`, `records`
//! 5. `org`, `receiver`
//! 6. `audit_store`, `logfiles`, `receiver_state`
//! 7. `receiver_wire`
//! 8. `auth`, `ids`, `clock`, `geo`, `config`
//! 9. `http`, then `faults`
//!
//! Nothing imports `lib.rs`: a type several modules share gets a module of its own.
//!
//! Tests: the pure pieces (`auth`, `faults`, `http`) are unit-tested beside their code; what
//! the simulator serves is tested over real HTTP through its public surface from `tests/it/`,
//! one integration binary, so no module's tests reach back up through the server.
//!
//! ## URL layout (one listener)
//!
//! `/v1/organization/…` Admin API · `/chatgpt/v1/compliance/…` Compliance Logs Platform ·
//! `/signed/{token}` file downloads · the sink, per protocol: `/receiver/events` (ndjson,
//! json), `/api/ingestData` (akto), `/services/collector/event` + `/ack` + `/health`
//! (splunk_hec), `/_bulk` + `/_security/…` (elasticsearch), `/v1/logs` (otlp),
//! `/loki/api/v1/push` + `/ready` (loki) · `/_sim/…` control.
//!
//! ## Control
//!
//! In process: [`Simulator::faults`] ([`Faults::inject`] for the next N responses,
//! [`Faults::set_always`] until cleared), [`Simulator::receiver`]
//! ([`Receiver::set_response`]) and [`Simulator::org`] (mutations that append audit events).
//! Over HTTP, for an outside process: `POST /_sim/faults` with a [`FaultCommand`]
//! (`{"family":"audit_logs","fault":{"kind":"too_many_requests","retry_after_secs":2},"times":1}`
//! or `{"clear":true}`), `POST /_sim/receiver/script` with a [`ReceiverScript`]
//! (`{"kind":"next","status":503,"times":2}`, `{"kind":"item_status","needle":"x","status":429}`,
//! `{"kind":"partial_success","rejected":2,"times":1}`, `{"kind":"withhold_acks","times":1}`),
//! `GET /_sim/receiver/stats`.
//!
//! ## Deliberate differences from the real APIs
//!
//! - One host serves everything; the signed download URL is on the same host (real: a
//!   storage host). It still rejects any `Authorization` header, like a pre-signed URL does.
//! - Audit-log cursors that name an unknown id get a 400 (the real behaviour is undocumented).
//!   Passing both `after` and `before` is a 400 too.
//! - The spec states no order for audit logs; like live data, the simulator lists newest
//!   first, ties broken by id descending.
//! - Compliance files are cut per event type every `compliance_file_interval` of wall time
//!   (real: roughly hourly), chunked at `compliance_file_max_events`; `end_time` is strictly
//!   increasing per type. The same files are served for the workspace and the organization
//!   principal, and error bodies use OpenAI's error shape (the real shape is unknown).
//!   Compliance `limit` defaults to 100 when absent (undocumented upstream).
//! - Inventory lists are ordered by creation; `after` naming an id that was deleted still
//!   continues from where it was. `owner_project_access` defaults to "any".
//! - Control endpoints under `/_sim/` need no key: the simulator listens on loopback.
//! - The signed URL answers 403 with a short text body (object stores answer XML).
//! - The receiver checks each protocol's auth header *form* against one token (real Akto
//!   verifies a JWT, Elasticsearch an API key's id and secret); HEC acknowledgement ids are
//!   true on the first query (real Splunk may take minutes); Loki's refusal text always says
//!   "timestamp too old"; Elasticsearch dedupes `_id` across the whole receiver (real: per
//!   backing index).
//! - Fault responses carry `x-sim-fault: 1` so a failing test can tell injected from real.
//! - Keys are derived from the seed unless given, so a seeded run is reproducible; the
//!   download-URL signing secret is random per run.

mod activity;
mod audit_logs;
mod audit_store;
mod auth;
mod clock;
mod compliance;
mod config;
mod faults;
mod generated;
mod geo;
mod http;
mod ids;
mod inventory;
mod logfiles;
mod many;
mod mutate;
mod org;
mod receiver;
mod receiver_state;
mod receiver_wire;
mod records;
mod seed;
mod server;
mod shared;
mod size;

pub use audit_store::is_tenant_scoped;
pub use compliance::COMPLIANCE_EVENT_TYPES;
pub use config::SimConfig;
pub use faults::{Family, Fault, FaultCommand, Faults};
pub use many::{orgs_toml, serve_orgs_until, start_orgs};
pub use org::Org;
pub use receiver::{Receiver, ReceiverScript};
pub use receiver_state::{ReceivedBatch, ReceivedRequest, Tally};
pub use server::{Simulator, serve_until, start};
pub use size::OrgSize;
