//! How a compliance stream's state lies on disk. Its recent event ids — up to
//! [`RECENT_EVENT_IDS`](super::RECENT_EVENT_IDS), nearly all of its size — are kept in a
//! numbered file of their own beside the checkpoint (stored as `<stream>.recent-<n>`, on disk
//! `compliance-<TYPE>-recent-<n>.json` as the store makes names safe), written once,
//! when the first state with that number is saved. A state gets a new number at each
//! boundary (a finished file, a list page); the marks left inside a file every
//! `CHECKPOINT_EVERY_LINES` lines keep the number of the ids as the file began, so each of
//! them writes only the small rest. Ids the file added since are not lost: they belong to
//! the lines before the mark, which a resume reads again (it starts at the file's first line
//! and skips to the mark), remembering their ids as the first reading did.
//!
//! Before, every mark rewrote the whole set: ~1 MB of JSON about every 500 lines, a tenth
//! of the path's CPU time (benches/README.md).
//!
//! Crash safety: the numbered file is made durable before a checkpoint names it, and a number
//! no checkpoint names any more is removed only after the one that replaced it is in place.
//! A checkpoint of an earlier version keeps its ids inline; it is read as it is.

use serde::{Deserialize, Serialize};

use super::recent::RecentEvents;
use super::{ComplianceState, FileProgress, MissingFile};
use crate::dedup::RecentIds;
use crate::state::{CheckpointError, CheckpointStore};

/// The checkpoint itself: the state but its ids, and the number of the file that has them.
#[derive(Serialize)]
struct Main<'a> {
    after: &'a Option<String>,
    file: &'a Option<FileProgress>,
    recent_files: &'a RecentIds,
    #[serde(skip_serializing_if = "Option::is_none")]
    missing: &'a Option<MissingFile>,
    recent_in: u64,
}

/// A numbered file's state: the ids, under the name they have in the state (every checkpoint
/// file holds an object).
#[derive(Serialize, Deserialize)]
struct Ids<R> {
    recent: R,
}

/// The name the numbered files of `stream` share, before their number.
fn family(stream: &str) -> String {
    format!("{stream}.recent-")
}

fn part(stream: &str, number: u64) -> String {
    format!("{}{number}", family(stream))
}

/// Saves `state` as `stream`'s checkpoint: its ids first when no file has them under its
/// number yet.
pub fn save(state: &ComplianceState, store: &CheckpointStore, stream: &str) -> Result<(), CheckpointError> {
    let number = state.recent_in.unwrap_or(0);
    let ids = part(stream, number);
    let new_number = !store.exists(&ids);
    if new_number {
        // The ids as they were numbered (a state without that copy, which the stream always
        // has, writes its own).
        let recent = state.numbered.as_ref().unwrap_or(&state.recent);
        store.save(&ids, &Ids { recent })?;
    }
    // Every field named, so one added to the state cannot be left out of the checkpoint.
    let ComplianceState {
        after,
        file,
        recent: _,
        recent_in: _,
        numbered: _,
        recent_files,
        missing,
    } = state;
    let main = Main {
        after,
        file,
        recent_files,
        missing,
        recent_in: number,
    };
    store.save(stream, &main)?;
    // Only a save that wrote a new number leaves an older one no checkpoint names; the
    // marks inside a file do not list the directory.
    if new_number {
        store.remove_numbered(&family(stream), Some(number));
    }
    Ok(())
}

/// `stream`'s saved state with its ids, `None` on a first start. Numbered files no
/// checkpoint names (a crash before the checkpoint that would have) are removed, so a number
/// is never taken for ids it does not hold.
pub fn load(store: &CheckpointStore, stream: &str) -> Result<Option<ComplianceState>, CheckpointError> {
    let Some(mut state) = store.load::<ComplianceState>(stream)? else {
        store.remove_numbered(&family(stream), None);
        return Ok(None);
    };
    if let Some(number) = state.recent_in {
        let ids = part(stream, number);
        let saved = store
            .load::<Ids<RecentEvents>>(&ids)?
            .ok_or_else(|| CheckpointError::Corrupt {
                path: store.path(&ids),
                reason: format!(
                    "the file is missing, and checkpoint {} names it for the stream's recent event ids",
                    store.path(stream).display()
                ),
            })?;
        state.recent = saved.recent;
    }
    store.remove_numbered(&family(stream), state.recent_in);
    Ok(Some(state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StateDir;

    const STREAM: &str = "compliance:AUTH_LOG";

    fn store(dir: &std::path::Path) -> CheckpointStore {
        StateDir::open(dir).expect("state dir").checkpoints().expect("store")
    }

    fn ids(state: &ComplianceState) -> Vec<String> {
        state.recent.iter().map(|(id, _)| id.to_string()).collect()
    }

    fn with_ids(state: &mut ComplianceState, names: &[&str]) {
        for name in names {
            let at = 1_700_000_000 + state.recent.len() as i64;
            state.recent.insert(name, at);
        }
    }

    #[test]
    fn a_boundary_writes_the_ids_once_and_marks_inside_a_file_only_the_rest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store(dir.path());
        let mut state = ComplianceState::default();
        with_ids(&mut state, &["a", "b"]);
        save(&state.snapshot(), &store, STREAM).expect("saved");
        let numbered = store.path(&part(STREAM, 1));
        let written = std::fs::read(&numbered).expect("the ids' file");

        with_ids(&mut state, &["c"]);
        save(&state.snapshot_within_file(), &store, STREAM).expect("saved");
        assert_eq!(std::fs::read(&numbered).expect("still there"), written, "not rewritten");
        let main: serde_json::Value =
            serde_json::from_slice(&std::fs::read(store.path(STREAM)).expect("checkpoint")).expect("JSON");
        assert_eq!(main["state"]["recent_in"], 1);
        assert!(main["state"].get("recent").is_none(), "{main}");

        let loaded = load(&store, STREAM).expect("loads").expect("present");
        assert_eq!(ids(&loaded), ["a", "b"], "the ids as the file began");

        save(&state.snapshot(), &store, STREAM).expect("saved");
        let loaded = load(&store, STREAM).expect("loads").expect("present");
        assert_eq!(ids(&loaded), ["a", "b", "c"]);
        assert!(!numbered.exists(), "a number no checkpoint names is removed");
    }

    #[test]
    fn a_number_written_before_a_crash_is_removed_and_never_taken_for_other_ids() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store(dir.path());
        let mut state = ComplianceState::default();
        with_ids(&mut state, &["a"]);
        save(&state.snapshot(), &store, STREAM).expect("saved");
        // Number 2's ids were written, and the process died before its checkpoint.
        let mut lost = state.clone();
        with_ids(&mut lost, &["never", "named"]);
        store
            .save(&part(STREAM, 2), &Ids { recent: &lost.recent })
            .expect("written");

        let mut resumed = load(&store, STREAM).expect("loads").expect("present");
        assert_eq!(ids(&resumed), ["a"]);
        assert!(!store.exists(&part(STREAM, 2)), "removed at load");
        resumed.numbered = None;
        with_ids(&mut resumed, &["b"]);
        save(&resumed.snapshot(), &store, STREAM).expect("saved");
        let loaded = load(&store, STREAM).expect("loads").expect("present");
        assert_eq!(loaded.recent_in, Some(2));
        assert_eq!(ids(&loaded), ["a", "b"]);
    }

    #[test]
    fn a_checkpoint_of_an_earlier_version_keeps_its_ids_inline() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store(dir.path());
        let earlier =
            serde_json::json!({"after": null, "file": null, "recent": [["e1", 1_700_000_000]], "recent_files": []});
        store.save(STREAM, &earlier).expect("saved");
        let loaded = load(&store, STREAM).expect("loads").expect("present");
        assert_eq!(ids(&loaded), ["e1"]);
        assert_eq!(loaded.recent_in, None);
    }

    #[test]
    fn a_missing_ids_file_makes_the_checkpoint_corrupt_and_names_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store(dir.path());
        let mut state = ComplianceState::default();
        save(&state.snapshot(), &store, STREAM).expect("saved");
        std::fs::remove_file(store.path(&part(STREAM, 1))).expect("removed");
        match load(&store, STREAM) {
            Err(CheckpointError::Corrupt { path, reason }) => {
                assert_eq!(path, store.path(&part(STREAM, 1)));
                assert!(reason.contains("missing"), "{reason}");
            }
            other => panic!("expected a corrupt checkpoint, got {other:?}"),
        }
    }
}
