//! Checkpoint files as a crash, a full disk or a careless hand may leave them: every stream's
//! state loads, or is refused as corrupt with how to reset it — never a panic, never a guess.

use std::path::Path;

use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::{config, inputs_like};
use crate::dedup::RecentIds;
use crate::guardrails;
use crate::state::{CheckpointError, CheckpointStore, StateDir};
use crate::streams::audit_logs::{AuditState, Window};
use crate::streams::compliance::ComplianceState;
use crate::streams::inventory::InventoryState;

/// A state directory for one property run.
fn store(dir: &Path) -> (StateDir, CheckpointStore) {
    let state = StateDir::open(&dir.join("state")).expect("state dir");
    let store = state.checkpoints().expect("checkpoints");
    (state, store)
}

/// The bytes the daemon itself writes for `state`.
fn sample<S: Serialize>(stream: &str, state: &S) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_lock, store) = store(dir.path());
    store.save(stream, state).expect("saved");
    std::fs::read(store.path(stream)).expect("read back")
}

/// Loads `bytes` as `stream`'s checkpoint of type `S`: a state, or a refusal as corrupt.
fn load<S: DeserializeOwned>(stream: &str, bytes: &[u8]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_lock, store) = store(dir.path());
    std::fs::write(store.path(stream), bytes).expect("written");
    match store.load::<S>(stream) {
        Ok(Some(_)) | Err(CheckpointError::Corrupt { .. }) => Ok(()),
        Ok(None) => Err(TestCaseError::fail("a file that exists loaded as none")),
        Err(other) => Err(TestCaseError::fail(format!("not a corrupt-file error: {other}"))),
    }
}

fn audit_sample() -> Vec<u8> {
    let mut recent = RecentIds::default();
    recent.insert("audit_log-1", 1_700_000_000);
    sample(
        "audit_logs",
        &AuditState {
            watermark: Some(1_700_000_000),
            window: Some(Window {
                start: 1_699_999_000,
                end: 1_700_000_100,
                after: Some("audit_log-9".into()),
                pages: 3,
            }),
            slices: vec![Window {
                start: 1_699_999_000,
                end: 1_699_999_599,
                after: Some("audit_log-4".into()),
                pages: 1,
            }],
            recent,
        },
    )
}

fn compliance_sample() -> Vec<u8> {
    let state: ComplianceState = serde_json::from_value(json!({
        "after": "2026-07-15T11:00:00Z",
        "file": {"file": {"id": "eclf_1", "event_type": "AUTH_LOG", "end_time": "2026-07-15T12:00:00Z",
                          "file_name": null, "file_size": 10, "file_sha256": "00"}, "lines_done": 4},
        "recent": [["e1", 1_700_000_000]],
        "recent_files": [["eclf_0", 1_700_000_000]],
        "missing": {"file_id": "eclf_1", "since": 1_700_000_000},
    }))
    .expect("a compliance state");
    sample("compliance:AUTH_LOG", &state)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn audit_log_checkpoints_load_or_are_refused_as_corrupt(bytes in inputs_like(&audit_sample())) {
        load::<AuditState>("audit_logs", &bytes)?;
    }

    #[test]
    fn compliance_checkpoints_load_or_are_refused_as_corrupt(bytes in inputs_like(&compliance_sample())) {
        load::<ComplianceState>("compliance:AUTH_LOG", &bytes)?;
    }

    #[test]
    fn inventory_and_guardrail_checkpoints_load_or_are_refused_as_corrupt(
        inventory in inputs_like(&sample("inventory", &InventoryState::default())),
        rules in inputs_like(&sample("guardrails", &guardrails::State::default())),
    ) {
        load::<InventoryState>("inventory", &inventory)?;
        load::<guardrails::State>("guardrails", &rules)?;
    }

    #[test]
    fn an_audit_log_state_survives_its_checkpoint(
        watermark in proptest::option::of(any::<i64>()),
        window in proptest::option::of((any::<i64>(), any::<i64>(), proptest::option::of(".{0,20}"), any::<u64>())),
        ids in prop::collection::vec((".{1,12}", any::<i64>()), 0..20),
    ) {
        let mut recent = RecentIds::default();
        for (id, at) in &ids {
            recent.insert(id, *at);
        }
        let state = AuditState {
            watermark,
            window: window.clone().map(|(start, end, after, pages)| Window { start, end, after, pages }),
            slices: window.into_iter().map(|(start, end, after, pages)| Window { start, end, after, pages }).collect(),
            recent,
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let (_lock, store) = store(dir.path());
        store.save("audit_logs", &state).expect("saved");
        prop_assert_eq!(store.load::<AuditState>("audit_logs").expect("loads"), Some(state));
    }
}
