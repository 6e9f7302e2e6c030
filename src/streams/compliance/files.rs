//! One log file from the platform to disk: follow the 307 to the signed URL without the
//! bearer key, spool the body (see `crate::state::Spool`) while hashing it (memory stays
//! flat whatever the file size), verify `file_sha256` (a mismatch is fetched again), and set
//! aside a file that stays corrupt in the quarantine with the reason, so nothing is dropped
//! silently.
//!
//! Time: the client gives up on a connection that stalls (no bytes for `openai.timeout`), and
//! the whole transfer has a budget that grows with the size the list announced, so a large
//! file on a slow link completes instead of being cut off at a fixed per-request timeout.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::compliance::wire::LogFile;
use crate::compliance::{ComplianceApi, LocationError};
use crate::state::Spool;

/// How many times a file whose bytes do not match `file_sha256` is downloaded before it is
/// quarantined (a fresh signed URL each time).
pub const CHECKSUM_ATTEMPTS: u32 = 3;

/// What a download gathers before writing it to the spool. Each write is a trip to Tokio's
/// blocking threads and back (`tokio::fs`); written as each network chunk arrived (~90 kB on
/// loopback), the 88 MB compliance mix made ~1,000 of them (benches/README.md, "the spool's
/// buffers").
const DOWNLOAD_BUFFER: usize = 512 * 1024;

/// The slowest transfer a download's budget allows for: 256 KiB/s, far below any link that
/// can carry compliance logs at all.
pub const FLOOR_BYTES_PER_SEC: u64 = 256 * 1024;

/// How long one download of a file announcing `file_size` bytes may take in all: the larger
/// of `minimum` (`compliance.download_timeout`) and the file's size at
/// [`FLOOR_BYTES_PER_SEC`]. A 10m minimum covers files up to 150 MiB; a 1 GiB file gets
/// 4096 s (68 min). A file that announces no size gets the minimum.
pub fn budget(minimum: Duration, file_size: Option<u64>) -> Duration {
    let by_size = Duration::from_secs(file_size.unwrap_or(0).div_ceil(FLOOR_BYTES_PER_SEC));
    minimum.max(by_size)
}

/// Why a download failed (the caller's cycle backs off and tries the file again).
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error(transparent)]
    Location(#[from] LocationError),
    #[error(
        "timeout: downloading log file `{file_id}` took longer than its budget of {}s ({bytes} of {} bytes arrived); raise compliance.download_timeout (the least time a file may take; larger files get more at {} KiB/s)",
        budget.as_secs(), expected.map_or_else(|| "?".to_string(), |b| b.to_string()), FLOOR_BYTES_PER_SEC / 1024
    )]
    TimedOut {
        file_id: String,
        budget: Duration,
        bytes: u64,
        expected: Option<u64>,
    },
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
/// [`CHECKSUM_ATTEMPTS`] are used; each attempt may take [`budget`]`(minimum, file_size)`.
pub async fn download(
    api: &ComplianceApi,
    spool: &Spool,
    file: &LogFile,
    minimum: Duration,
) -> Result<Downloaded, DownloadError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let spooled = fetch_once(api, spool, file, budget(minimum, file.file_size)).await?;
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

/// One download: a fresh signed URL, its body streamed to the spool file and hashed, all
/// within `budget`.
async fn fetch_once(
    api: &ComplianceApi,
    spool: &Spool,
    file: &LogFile,
    budget: Duration,
) -> Result<Spooled, DownloadError> {
    let location = api.download_location(&file.id).await?;
    let signed_err = |e: reqwest::Error| DownloadError::SignedUrl {
        file_id: file.id.clone(),
        message: signed_url_reason(e),
    };
    let timed_out = |bytes: u64| DownloadError::TimedOut {
        file_id: file.id.clone(),
        budget,
        bytes,
        expected: file.file_size,
    };
    let deadline = tokio::time::Instant::now() + budget;
    // A plain request: no Authorization header ever goes to the signed URL's host. The
    // URL itself is a credential, so it is never put in an error or a log line.
    let mut response = match tokio::time::timeout_at(deadline, api.http().get(location).send()).await {
        Ok(sent) => sent.map_err(signed_err)?,
        Err(_) => return Err(timed_out(0)),
    };
    let status = response.status();
    if !status.is_success() {
        let body = tokio::time::timeout_at(deadline, response.text())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        let body: String = crate::secrets::redact(&body).chars().take(200).collect();
        return Err(DownloadError::SignedUrl {
            file_id: file.id.clone(),
            message: format!("HTTP {}: {}", status.as_u16(), body.trim()),
        });
    }
    let (out, path) = spool.create(&file.id).await.map_err(|source| DownloadError::Io {
        file_id: file.id.clone(),
        path: None,
        source,
    })?;
    let mut out = tokio::io::BufWriter::with_capacity(DOWNLOAD_BUFFER, out);
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    let copied = tokio::time::timeout_at(deadline, async {
        while let Some(chunk) = response.chunk().await.map_err(signed_err)? {
            hasher.update(&chunk);
            bytes += chunk.len() as u64;
            out.write_all(&chunk).await.map_err(|source| DownloadError::Io {
                file_id: file.id.clone(),
                path: Some(path.clone()),
                source,
            })?;
        }
        Ok::<(), DownloadError>(())
    })
    .await;
    match copied {
        Ok(result) => result?,
        Err(_) => return Err(timed_out(bytes)),
    }
    out.flush().await.map_err(|source| DownloadError::Io {
        file_id: file.id.clone(),
        path: Some(path.clone()),
        source,
    })?;
    Ok(Spooled {
        path,
        bytes,
        sha256: hex::encode(hasher.finalize()),
    })
}

/// A transport failure on the signed URL, without the URL; a stall says it is a timeout and
/// which setting bounds it.
fn signed_url_reason(err: reqwest::Error) -> String {
    let stalled = err.is_timeout();
    let text = crate::errors::chain(&err.without_url());
    if stalled {
        format!("timeout: no bytes arrived for openai.timeout (raise it for a slow link): {text}")
    } else {
        text
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_the_minimum_or_the_size_at_the_floor_rate_whichever_is_longer() {
        let ten_minutes = Duration::from_secs(600);
        assert_eq!(budget(ten_minutes, None), ten_minutes);
        assert_eq!(budget(ten_minutes, Some(1024)), ten_minutes);
        assert_eq!(budget(ten_minutes, Some(1024 * 1024 * 1024)), Duration::from_secs(4096));
        assert_eq!(
            budget(Duration::from_secs(1), Some(FLOOR_BYTES_PER_SEC + 1)),
            Duration::from_secs(2)
        );
    }
}
