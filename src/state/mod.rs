//! The state directory: the one place that knows its layout. Streams, the sink and the app
//! ask it for what they need; nobody else builds a path under `state.dir`.
//!
//! Every file is 0600 and opened without following a symlink; every directory is 0700 (an
//! existing one is tightened; one writable by everyone is refused, as is a link inside).
//!
//! ```text
//! state.dir/                     mode 0700
//!   lock                         held while a daemon runs: two would deliver everything twice
//!   checkpoints/<stream>.json    one versioned file per stream, replaced atomically
//!   dead-letter.ndjson           events the ingestion service rejected, malformed upstream lines
//!   dead-letter.replay.ndjson    while `replay` runs: the events rejected again, folded back after
//!   spool/<file>.part            a compliance log file while it is downloaded and read (any
//!                                left by a crash is removed when the directory is opened)
//!   quarantine/<file>.jsonl      a compliance log file that stays corrupt, beside <file>.reason.json
//!   inventory/snapshot-<n>.ndjson  the inventory's snapshot of run <n>: one object per line,
//!                                the current one and the one being written (`snapshots`)
//!   <org_id>/                    with `[[orgs]]`: one organization's checkpoints/, spool/ and
//!                                quarantine/, laid out as above (`orgs`)
//! ```
//!
//! The single organization of `[openai]` uses the root itself, so a state directory from
//! before `[[orgs]]` keeps working unchanged; the lock, the dead-letter file and the
//! guardrails' checkpoint are one each, at the root, whatever the number of organizations.

mod atomic_file;
mod checkpoint;
mod dead_letter;
mod orgs;
pub mod snapshots;
mod spool;

use std::fs::File;
use std::path::{Path, PathBuf};

pub use checkpoint::{CheckpointError, CheckpointStore, Pending};
pub use dead_letter::{DeadLetter, DeadLetterError, Entry as DeadLetterEntry};
pub use orgs::org_dir_problem;
pub use snapshots::SnapshotFiles;
pub use spool::Spool;

/// File and directory names under `state.dir`; part of the operator-facing contract.
const LOCK: &str = "lock";
const CHECKPOINTS: &str = "checkpoints";
const DEAD_LETTER: &str = "dead-letter.ndjson";
const REPLAY_SCRATCH: &str = "dead-letter.replay.ndjson";
const SPOOL: &str = "spool";
const QUARANTINE: &str = "quarantine";
const INVENTORY: &str = "inventory";

/// Where checkpoints, snapshots and the dead-letter file live.
#[derive(Debug, Clone)]
pub struct StateSettings {
    pub dir: PathBuf,
}

/// Why the state directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("failed to prepare the state directory {path}: {source}")]
    Prepare { path: PathBuf, source: std::io::Error },
    #[error("refusing to use the state directory: {0}")]
    Unsafe(String),
    #[error(
        "another openai-audit-ingest is already using the state directory {0} (two instances \
         would deliver everything twice and race on checkpoints); stop it or set a different state.dir"
    )]
    Locked(PathBuf),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

/// An open state directory, locked for this process until dropped.
#[derive(Debug)]
pub struct StateDir {
    root: PathBuf,
    /// Holds the advisory lock; released when the directory handle is dropped.
    _lock: File,
}

impl StateDir {
    /// Creates `root` (mode 0700) if needed and takes its lock.
    pub fn open(root: &Path) -> Result<Self, StateError> {
        let prepare = |path: &Path| {
            let path = path.to_path_buf();
            move |source: std::io::Error| {
                if atomic_file::is_unsafe(&source) {
                    StateError::Unsafe(source.to_string())
                } else {
                    StateError::Prepare { path, source }
                }
            }
        };
        // The operator's own state.dir may be a link (a mounted volume); nothing inside it may.
        atomic_file::ensure_private_dir(root, true).map_err(prepare(root))?;
        let path = root.join(LOCK);
        let file = atomic_file::open_lock(&path).map_err(prepare(&path))?;
        match file.try_lock() {
            Ok(()) => {
                let dir = Self {
                    root: root.to_path_buf(),
                    _lock: file,
                };
                Ok(dir)
            }
            Err(std::fs::TryLockError::WouldBlock) => Err(StateError::Locked(root.to_path_buf())),
            Err(std::fs::TryLockError::Error(source)) => Err(StateError::Prepare { path, source }),
        }
    }

    /// The directory itself, for messages.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The checkpoint store (`checkpoints/`, created on first use).
    pub fn checkpoints(&self) -> Result<CheckpointStore, CheckpointError> {
        CheckpointStore::open(&self.root.join(CHECKPOINTS))
    }

    /// The dead-letter file.
    pub fn dead_letter(&self) -> DeadLetter {
        DeadLetter::new(self.root.join(DEAD_LETTER))
    }

    /// Where `replay` writes the events rejected again, before it folds them back into the
    /// dead-letter file.
    pub fn replay_scratch(&self) -> DeadLetter {
        DeadLetter::new(self.root.join(REPLAY_SCRATCH))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_second_open_of_the_same_directory_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("state");
        let first = StateDir::open(&root).expect("open");
        let mode = std::fs::metadata(&root).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert!(matches!(StateDir::open(&root), Err(StateError::Locked(_))));
        drop(first);
        StateDir::open(&root).expect("free again");
        let lock = std::fs::metadata(root.join(LOCK)).expect("lock").permissions().mode() & 0o777;
        assert_eq!(lock, 0o600);
    }

    #[test]
    fn a_world_writable_state_directory_is_refused_and_a_loose_one_tightened() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("state");
        std::fs::create_dir(&root).expect("dir");
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let err = StateDir::open(&root).expect_err("world-writable");
        assert!(matches!(err, StateError::Unsafe(_)), "{err:?}");
        assert!(err.to_string().contains("chmod 700"), "{err}");
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let _open = StateDir::open(&root).expect("usable once not world-writable");
        let mode = std::fs::metadata(&root).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "tightened");
    }
}
