//! The one integration-test binary: real HTTP against the in-process simulator (OpenAI Admin
//! API, Compliance platform, receiver) and, where a test needs a hand-made answer, wiremock.

mod helpers;

mod audit_logs;
mod backfill;
mod binary;
mod clock;
mod compliance;
mod conformance;
mod content_policy;
mod crash_loop;
mod delivery;
mod detections;
mod drift;
mod guardrails;
mod hostile_upstream;
mod inventory;
mod inventory_incremental;
mod inventory_runs;
mod operations;
mod orgs;
mod partial_failures;
mod protocols;
mod reconcile;
mod secrets;
mod signals;
mod state_dir;
mod tls;
