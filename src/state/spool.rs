//! Compliance log files on disk: the spool a file is downloaded into and read from, and the
//! quarantine a file that stays corrupt is set aside in with its reason, so nothing is
//! dropped silently. File names come from upstream ids, so they are sanitized here.

use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::atomic_file;

/// The spool and quarantine directories.
#[derive(Debug, Clone)]
pub struct Spool {
    spool: PathBuf,
    quarantine: PathBuf,
}

/// An upstream id as a file name: ids are `eclf_…`, but nothing upstream may choose a path.
fn safe_name(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl Spool {
    pub(super) fn new(spool: PathBuf, quarantine: PathBuf) -> Self {
        Self { spool, quarantine }
    }

    /// The quarantine directory, for messages.
    pub fn quarantine_dir(&self) -> &Path {
        &self.quarantine
    }

    /// Creates (or truncates) the spool file of `file_id`, mode 0600, for writing; a symlink
    /// planted at its place is refused, not followed.
    pub async fn create(&self, file_id: &str) -> io::Result<(tokio::fs::File, PathBuf)> {
        let path = self.spool.join(format!("{}.part", safe_name(file_id)));
        let (dir, at) = (self.spool.clone(), path.clone());
        let file = tokio::task::spawn_blocking(move || {
            atomic_file::ensure_private_dir(&dir, false)?;
            atomic_file::open_private(
                &at,
                atomic_file::private_options().write(true).create(true).truncate(true),
            )
        })
        .await
        .map_err(io::Error::other)??;
        Ok((tokio::fs::File::from_std(file), path))
    }

    /// Opens a spooled file for reading, without following a symlink.
    pub async fn open(path: &Path) -> io::Result<tokio::fs::File> {
        let at = path.to_path_buf();
        let file = tokio::task::spawn_blocking(move || {
            let mut options = atomic_file::private_options();
            options.read(true);
            atomic_file::open_private(&at, &options)
        })
        .await
        .map_err(io::Error::other)??;
        Ok(tokio::fs::File::from_std(file))
    }

    /// Moves the spooled bytes at `from` to `quarantine/<file_id>.jsonl`, with `reason`
    /// written beside them as `<file_id>.reason.json`; returns where the bytes now are.
    pub async fn quarantine(&self, file_id: &str, from: PathBuf, reason: &impl Serialize) -> io::Result<PathBuf> {
        let name = safe_name(file_id);
        let target = self.quarantine.join(format!("{name}.jsonl"));
        let reason_path = self.quarantine.join(format!("{name}.reason.json"));
        let record = serde_json::to_vec_pretty(reason).map_err(io::Error::other)?;
        let dir = self.quarantine.clone();
        let moved = target.clone();
        tokio::task::spawn_blocking(move || {
            atomic_file::ensure_private_dir(&dir, false)?;
            std::fs::rename(&from, &moved)?;
            atomic_file::write_atomic(&reason_path, &record)
        })
        .await
        .map_err(io::Error::other)??;
        Ok(target)
    }

    /// Removes the `.part` files a crash left behind (a file being downloaded or read when
    /// the process died: its stream downloads it again from its checkpoint). Only while the
    /// state directory's lock is held, so no other process is using them. Returns how many
    /// were removed; a symlink is removed itself, never followed.
    pub(super) fn remove_leftovers(&self) -> io::Result<usize> {
        let entries = match std::fs::read_dir(&self.spool) {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(err) => return Err(err),
        };
        let mut removed = 0;
        for entry in entries {
            let entry = entry?;
            let is_part = entry.path().extension().is_some_and(|e| e == "part");
            if is_part && !entry.file_type()?.is_dir() {
                std::fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Removes a spool file that is no longer needed; a failure only leaves a stale temp
    /// file that the next download of that file overwrites.
    pub async fn discard(path: &Path) {
        if let Err(err) = tokio::fs::remove_file(path).await {
            tracing::warn!(path = %path.display(), error.message = %err, "failed to remove a spooled log file");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftover_part_files_are_removed_and_everything_else_stays() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = Spool::new(dir.path().join("spool"), dir.path().join("quarantine"));
        assert_eq!(spool.remove_leftovers().expect("no spool yet"), 0);
        std::fs::create_dir(dir.path().join("spool")).expect("spool");
        std::fs::write(dir.path().join("spool/eclf_1.part"), b"{\"half\":").expect("part");
        std::fs::write(dir.path().join("spool/notes.txt"), b"keep").expect("other");
        std::fs::write(dir.path().join("outside.part"), b"keep").expect("outside");
        std::os::unix::fs::symlink(dir.path().join("outside.part"), dir.path().join("spool/eclf_2.part"))
            .expect("link");
        assert_eq!(spool.remove_leftovers().expect("removed"), 2);
        assert!(!dir.path().join("spool/eclf_1.part").exists());
        assert!(dir.path().join("spool/notes.txt").exists());
        assert!(
            dir.path().join("outside.part").exists(),
            "a link's target is not touched"
        );
    }

    #[test]
    fn an_upstream_file_id_cannot_choose_a_path() {
        assert_eq!(safe_name("eclf_01K0AUTH"), "eclf_01K0AUTH");
        assert_eq!(safe_name("../../etc/passwd"), "______etc_passwd");
    }
}
