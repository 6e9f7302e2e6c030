//! Checkpoints: one versioned JSON file per stream under `<state.dir>/checkpoints/`, holding
//! that stream's own typed state, replaced atomically.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use chrono::Utc;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::atomic_file;

/// Format version of the checkpoint file; bumped when a stream's state changes shape.
pub const VERSION: u32 = 1;

/// Why a checkpoint could not be used or saved.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error(
        "checkpoint {path} is corrupt ({reason}). To reset this stream, stop the daemon and \
         delete or move that file: the stream then starts again from its initial lookback \
         (events already delivered may arrive again; receivers drop them by id)"
    )]
    Corrupt { path: PathBuf, reason: String },
    #[error("failed to {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct File<T> {
    version: u32,
    stream: String,
    saved_at: String,
    state: T,
}

/// A checkpoint written ahead beside its stream's file (`<stream>.pending-<n>`), put in place
/// by [`CheckpointStore::place`] once it may count; removed when dropped without that.
#[derive(Debug)]
pub struct Pending {
    path: PathBuf,
}

impl Drop for Pending {
    fn drop(&mut self) {
        // Gone already once placed (renamed).
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Where checkpoints live.
#[derive(Debug, Clone)]
pub struct CheckpointStore {
    dir: PathBuf,
}

impl CheckpointStore {
    /// Opens (creating, mode 0700) the checkpoint directory `dir`.
    pub(super) fn open(dir: &Path) -> Result<Self, CheckpointError> {
        let dir = dir.to_path_buf();
        atomic_file::ensure_private_dir(&dir, false).map_err(|source| CheckpointError::Io {
            action: "create",
            path: dir.clone(),
            source,
        })?;
        Ok(Self { dir })
    }

    /// The file that holds `stream`'s checkpoint (`compliance:AUTH_LOG` →
    /// `compliance-AUTH_LOG.json`).
    pub fn path(&self, stream: &str) -> PathBuf {
        let safe: String = stream
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        self.dir.join(format!("{safe}.json"))
    }

    /// The saved state of `stream`, `None` on a first start. A file that cannot be read as
    /// this stream's state is an error that says how to reset it, never silently ignored.
    pub fn load<T: DeserializeOwned>(&self, stream: &str) -> Result<Option<T>, CheckpointError> {
        let path = self.path(stream);
        let bytes = match atomic_file::read_private(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(CheckpointError::Io {
                    action: "read",
                    path,
                    source,
                });
            }
        };
        let corrupt = |reason: String| CheckpointError::Corrupt {
            path: path.clone(),
            reason,
        };
        // The state is read as text first and decoded once into its type: through a `Value`
        // tree, a large guardrails state took several times its size in memory at start.
        let file: File<&RawValue> =
            serde_json::from_slice(&bytes).map_err(|e| corrupt(format!("not valid JSON: {e}")))?;
        if file.version != VERSION {
            return Err(corrupt(format!(
                "version {} is not the supported version {VERSION}",
                file.version
            )));
        }
        if file.stream != stream {
            return Err(corrupt(format!(
                "it belongs to stream `{}`, not `{stream}`",
                file.stream
            )));
        }
        let state = serde_json::from_str(file.state.get()).map_err(|e| corrupt(format!("unexpected content: {e}")))?;
        Ok(Some(state))
    }

    /// Atomically replaces `stream`'s checkpoint with `state`, encoded straight into the file
    /// (a large state is not held a second time as bytes).
    pub fn save<S: Serialize>(&self, stream: &str, state: &S) -> Result<(), CheckpointError> {
        let path = self.path(stream);
        atomic_file::write_atomic_with(&path, |out| encode(out, stream, state)).map_err(|source| CheckpointError::Io {
            action: "write",
            path,
            source,
        })
    }

    /// Writes a checkpoint of `stream` that is not in place yet (number `n`, so several can
    /// wait at once), its state written as JSON by `state` (a state with a writer of its own,
    /// rather than `serde_json`); a crash before [`CheckpointStore::place`] leaves the stream's
    /// checkpoint as it was. Written to the page cache only: placing it makes it durable.
    pub fn write_pending(
        &self,
        stream: &str,
        n: u64,
        state: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> Result<Pending, CheckpointError> {
        let pending = Pending {
            path: self.pending_path(stream, n),
        };
        // Made before writing, so a write that fails halfway removes what it wrote.
        atomic_file::write_new(&pending.path, |out| encode_with(out, stream, state)).map_err(|source| {
            CheckpointError::Io {
                action: "write",
                path: pending.path.clone(),
                source,
            }
        })?;
        Ok(pending)
    }

    /// Makes `pending` `stream`'s checkpoint, atomically and durably.
    pub fn place(&self, stream: &str, pending: &Pending) -> Result<(), CheckpointError> {
        let path = self.path(stream);
        atomic_file::put_in_place(&pending.path, &path).map_err(|source| CheckpointError::Io {
            action: "put in place",
            path,
            source,
        })
    }

    /// Whether `stream` has a checkpoint on disk.
    pub fn exists(&self, stream: &str) -> bool {
        self.path(stream).exists()
    }

    /// Removes the checkpoints of the streams named `family` followed by a number (the
    /// numbered parts a state keeps beside its own checkpoint), except number `keep`'s. Best
    /// effort: a file left behind is removed next time.
    pub fn remove_numbered(&self, family: &str, keep: Option<u64>) {
        let path = self.path(family);
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name();
            let number = name
                .to_str()
                .and_then(|n| n.strip_prefix(stem.as_str()))
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(|n| n.parse::<u64>().ok());
            if number.is_some_and(|n| Some(n) != keep) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    /// Removes pending checkpoints of `stream` that an earlier process left (it stopped
    /// before they could count).
    pub fn forget_pending(&self, stream: &str) {
        let prefix = self.pending_prefix(stream);
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.filter_map(Result::ok) {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    /// `<stream>.pending-`: never a checkpoint's name (those end in `.json`).
    fn pending_prefix(&self, stream: &str) -> String {
        let path = self.path(stream);
        let stem = path.file_stem().map(|s| s.to_string_lossy()).unwrap_or_default();
        format!("{stem}.pending-")
    }

    fn pending_path(&self, stream: &str, n: u64) -> PathBuf {
        self.dir.join(format!("{}{n}", self.pending_prefix(stream)))
    }
}

/// What is gathered before each `write` of a checkpoint file: a compliance stream's
/// checkpoint carries up to 20,000 recent event ids (~800 kB) and is saved after every batch
/// the sink delivers, which took a hundred system calls a save in std's default 8 kB.
const WRITE_BUFFER: usize = 64 * 1024;

/// Writes `state` as `stream`'s checkpoint file into `out`.
fn encode<S: Serialize>(out: &mut std::fs::File, stream: &str, state: &S) -> io::Result<()> {
    encode_with(out, stream, |out| {
        serde_json::to_writer(out, state).map_err(io::Error::other)
    })
}

/// [`encode`] with the state written by `state`: the text the derived `Serialize` of [`File`]
/// makes, around it.
fn encode_with(
    out: &mut std::fs::File,
    stream: &str,
    state: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let mut out = io::BufWriter::with_capacity(WRITE_BUFFER, out);
    write!(out, "{{\"version\":{VERSION},\"stream\":")?;
    serde_json::to_writer(&mut out, stream).map_err(io::Error::other)?;
    out.write_all(b",\"saved_at\":")?;
    serde_json::to_writer(&mut out, &Utc::now().to_rfc3339()).map_err(io::Error::other)?;
    out.write_all(b",\"state\":")?;
    state(&mut out)?;
    out.write_all(b"}")?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use serde_json::json;

    fn store(dir: &Path) -> CheckpointStore {
        CheckpointStore::open(&dir.join("checkpoints")).expect("open")
    }

    #[test]
    fn a_checkpoint_file_is_the_text_serde_json_makes_of_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store(dir.path());
        let state = json!({"cursor": "log_\u{1f}\"x\"", "n": -1});
        store.save("compliance:AUTH_LOG", &state).expect("save");
        let written = std::fs::read_to_string(store.path("compliance:AUTH_LOG")).expect("read");
        let saved_at = serde_json::from_str::<Value>(&written).expect("json")["saved_at"]
            .as_str()
            .expect("saved_at")
            .to_string();
        let file = File {
            version: VERSION,
            stream: "compliance:AUTH_LOG".to_string(),
            saved_at,
            state,
        };
        assert_eq!(written, serde_json::to_string(&file).expect("json"));
    }

    #[test]
    fn a_saved_state_loads_back_and_a_first_start_has_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store(dir.path());
        assert_eq!(store.load::<Value>("audit_logs").expect("load"), None);
        store.save("audit_logs", &json!({"watermark": 5})).expect("save");
        assert_eq!(
            store.load::<Value>("audit_logs").expect("load"),
            Some(json!({"watermark": 5}))
        );
    }

    #[test]
    fn a_corrupt_checkpoint_is_refused_with_how_to_reset_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store(dir.path());
        std::fs::write(store.path("audit_logs"), b"{\"version\":1,\"stre").expect("write");
        let err = store.load::<Value>("audit_logs").expect_err("corrupt");
        let text = err.to_string();
        assert!(text.contains("audit_logs.json") && text.contains("delete"), "{text}");
    }

    #[test]
    fn stream_names_become_safe_file_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store(dir.path());
        assert!(
            store
                .path("compliance:AUTH_LOG")
                .ends_with("checkpoints/compliance-AUTH_LOG.json")
        );
    }
}
