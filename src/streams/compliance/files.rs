//! One log file from the platform to disk: follow the 307 to the signed URL without the
//! bearer key, spool the body (see `crate::state::Spool`) while hashing it (memory stays
//! flat whatever the file size), verify `file_sha256` (a mismatch is fetched again), and set
//! aside a file that stays corrupt in the quarantine with the reason, so nothing is dropped
//! silently.

use std::io;
use std::path::PathBuf;

use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::compliance::wire::LogFile;
use crate::compliance::{ComplianceApi, LocationError};
use crate::state::Spool;

/// How many times a file whose bytes do not match `file_sha256` is downloaded before it is
/// quarantined (a fresh signed URL each time).
pub const CHECKSUM_ATTEMPTS: u32 = 3;

/// Why a download failed (the caller's cycle backs off and tries the file again).
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error(transparent)]
    Location(#[from] LocationError),
    #[error("failed to fetch log file `{file_id}` from its signed URL: {message}")]
    SignedUrl { file_id: String, message: String },
    #[error("failed to spool log file `{file_id}`{}: {source}", path.as_ref().map(|p| format!(" to {}", p.display())).unwrap_or_default())]
    Io {
        file_id: String,
        path: Option<PathBuf>,
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

/// Downloads `file` into `spool` until its bytes match `file_sha256` or
/// [`CHECKSUM_ATTEMPTS`] are used.
pub async fn download(api: &ComplianceApi, spool: &Spool, file: &LogFile) -> Result<Downloaded, DownloadError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let spooled = fetch_once(api, spool, file).await?;
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
async fn fetch_once(api: &ComplianceApi, spool: &Spool, file: &LogFile) -> Result<Spooled, DownloadError> {
    let location = api.download_location(&file.id).await?;
    let signed_err = |message: String| DownloadError::SignedUrl {
        file_id: file.id.clone(),
        message,
    };
    // A plain request: no Authorization header ever goes to the signed URL's host. The
    // URL itself is a credential, so it is never put in an error or a log line.
    let mut response = api
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
    let (mut out, path) = spool.create(&file.id).await.map_err(|source| DownloadError::Io {
        file_id: file.id.clone(),
        path: None,
        source,
    })?;
    let io_err = |source: io::Error| DownloadError::Io {
        file_id: file.id.clone(),
        path: Some(path.clone()),
        source,
    };
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

/// Moves a file that stays corrupt into the quarantine with why; returns where it now is.
pub async fn quarantine(spool: &Spool, file: &LogFile, spooled: Spooled, reason: &str) -> io::Result<PathBuf> {
    let record = Reason {
        quarantined_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        reason,
        file,
        actual_sha256: &spooled.sha256,
        actual_bytes: spooled.bytes,
    };
    spool.quarantine(&file.id, spooled.path, &record).await
}

#[derive(Serialize)]
struct Reason<'a> {
    quarantined_at: String,
    reason: &'a str,
    file: &'a LogFile,
    actual_sha256: &'a str,
    actual_bytes: u64,
}
