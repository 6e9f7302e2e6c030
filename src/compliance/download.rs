//! One log file from the platform to disk: follow the 307 to the signed URL without the
//! bearer key, spool the body to a file under `state.dir` while hashing it (memory stays
//! flat whatever the file size), verify `file_sha256` (a mismatch is fetched again), and set
//! aside a file that stays corrupt in `quarantine/` with the reason, so nothing is dropped
//! silently.

use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::client::{ComplianceClient, LocationError};
use super::wire::LogFile;
use crate::atomic_file;

/// How many times a file whose bytes do not match `file_sha256` is downloaded before it is
/// quarantined (a fresh signed URL each time).
pub const CHECKSUM_ATTEMPTS: u32 = 3;

/// Directories under `state.dir`.
pub const SPOOL_DIR: &str = "spool";
pub const QUARANTINE_DIR: &str = "quarantine";

/// Why a download failed (the caller's cycle backs off and tries the file again).
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error(transparent)]
    Location(#[from] LocationError),
    #[error("failed to fetch log file `{file_id}` from its signed URL: {message}")]
    SignedUrl { file_id: String, message: String },
    #[error("failed to spool log file `{file_id}` to {path}: {source}")]
    Io {
        file_id: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// A file's bytes on disk.
#[derive(Debug)]
pub struct Spooled {
    pub path: PathBuf,
    pub bytes: u64,
    /// Lower-case hex SHA-256 of what was written.
    pub sha256: String,
}

/// What came of downloading a file.
#[derive(Debug)]
pub enum Downloaded {
    /// The bytes match `file_sha256`.
    Verified(Spooled),
    /// Every attempt produced bytes that do not match; the last attempt's bytes.
    Corrupt { spooled: Spooled, attempts: u32 },
}

/// Where files are spooled and quarantined.
#[derive(Debug, Clone)]
pub struct FileStore {
    spool: PathBuf,
    quarantine: PathBuf,
}

/// A file id as a file name: upstream ids are `eclf_…`, but nothing upstream may choose a path.
fn safe_name(file_id: &str) -> String {
    file_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl FileStore {
    /// Spool and quarantine directories under `state_dir` (created on first use).
    pub fn new(state_dir: &Path) -> Self {
        Self {
            spool: state_dir.join(SPOOL_DIR),
            quarantine: state_dir.join(QUARANTINE_DIR),
        }
    }

    /// The quarantine directory.
    pub fn quarantine_dir(&self) -> &Path {
        &self.quarantine
    }

    /// Downloads `file` until its bytes match `file_sha256` or [`CHECKSUM_ATTEMPTS`] are used.
    pub async fn download(&self, client: &ComplianceClient, file: &LogFile) -> Result<Downloaded, DownloadError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let spooled = self.fetch_once(client, file).await?;
            if spooled.sha256.eq_ignore_ascii_case(&file.file_sha256) {
                return Ok(Downloaded::Verified(spooled));
            }
            if attempt >= CHECKSUM_ATTEMPTS {
                return Ok(Downloaded::Corrupt {
                    spooled,
                    attempts: attempt,
                });
            }
            tracing::warn!(
                file_id = %file.id,
                event_type = %file.event_type,
                expected_sha256 = %file.file_sha256,
                actual_sha256 = %spooled.sha256,
                bytes = spooled.bytes,
                attempt,
                "a log file's bytes do not match its checksum; downloading it again"
            );
        }
    }

    /// One download: a fresh signed URL, its body streamed to the spool file and hashed.
    async fn fetch_once(&self, client: &ComplianceClient, file: &LogFile) -> Result<Spooled, DownloadError> {
        let location = client.download_location(&file.id).await?;
        let signed_err = |message: String| DownloadError::SignedUrl {
            file_id: file.id.clone(),
            message,
        };
        // A plain request: no Authorization header ever goes to the signed URL's host. The
        // URL itself is a credential, so it is never put in an error or a log line.
        let mut response = client
            .http()
            .get(location)
            .send()
            .await
            .map_err(|e| signed_err(e.without_url().to_string()))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            let body: String = body.chars().take(200).collect();
            return Err(signed_err(format!("HTTP {}: {}", status.as_u16(), body.trim())));
        }
        let path = self.spool.join(format!("{}.part", safe_name(&file.id)));
        let io_err = |source: io::Error| DownloadError::Io {
            file_id: file.id.clone(),
            path: path.clone(),
            source,
        };
        atomic_file::ensure_private_dir(&self.spool).map_err(io_err)?;
        let mut out = tokio::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .await
            .map_err(io_err)?;
        let mut hasher = Sha256::new();
        let mut bytes = 0u64;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| signed_err(e.without_url().to_string()))?
        {
            hasher.update(&chunk);
            bytes += chunk.len() as u64;
            out.write_all(&chunk).await.map_err(io_err)?;
        }
        out.flush().await.map_err(io_err)?;
        Ok(Spooled {
            path,
            bytes,
            sha256: hex::encode(hasher.finalize()),
        })
    }

    /// Moves a file that stays corrupt to `quarantine/<file_id>.jsonl`, with
    /// `<file_id>.reason.json` beside it; returns where the bytes now are.
    pub async fn quarantine(&self, file: &LogFile, spooled: Spooled, reason: &str) -> io::Result<PathBuf> {
        let name = safe_name(&file.id);
        let target = self.quarantine.join(format!("{name}.jsonl"));
        let reason_path = self.quarantine.join(format!("{name}.reason.json"));
        let record = serde_json::to_vec_pretty(&Reason {
            quarantined_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            reason,
            file,
            actual_sha256: &spooled.sha256,
            actual_bytes: spooled.bytes,
        })
        .map_err(io::Error::other)?;
        let dir = self.quarantine.clone();
        let source = spooled.path;
        let moved = target.clone();
        tokio::task::spawn_blocking(move || {
            atomic_file::ensure_private_dir(&dir)?;
            std::fs::rename(&source, &moved)?;
            atomic_file::write_atomic(&reason_path, &record)
        })
        .await
        .map_err(io::Error::other)??;
        Ok(target)
    }
}

#[derive(Serialize)]
struct Reason<'a> {
    quarantined_at: String,
    reason: &'a str,
    file: &'a LogFile,
    actual_sha256: &'a str,
    actual_bytes: u64,
}

/// Removes a spool file that is no longer needed; a failure only leaves a stale temp file
/// that the next download of that file overwrites.
pub async fn discard(spooled: &Spooled) {
    if let Err(err) = tokio::fs::remove_file(&spooled.path).await {
        tracing::warn!(path = %spooled.path.display(), error = %err, "failed to remove a spooled log file");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upstream_file_id_cannot_choose_a_path() {
        assert_eq!(safe_name("eclf_01K0AUTH"), "eclf_01K0AUTH");
        assert_eq!(safe_name("../../etc/passwd"), "______etc_passwd");
    }
}
