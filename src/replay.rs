//! `replay`: sends the dead-lettered events again through the current sink configuration
//! (protocol, schema, URL, credentials) and removes from the dead-letter file only what the
//! ingestion service acknowledged. An event rejected again keeps its line, with the new
//! reason; one not attempted before the deadline keeps its old line; lines that never were
//! events (malformed upstream lines) stay as they are. The file is rewritten atomically, so
//! a crash leaves the old file or the new, never a mix.
#![allow(clippy::print_stdout)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::metrics::Metrics;
use crate::pipeline::queue::byte_channel;
use crate::pipeline::{Encoded, StreamAcks};
use crate::retry::Schedule;
use crate::sink::Sink;
use crate::state::{DeadLetterEntry, StateDir, StateError};
use crate::telemetry::{say_err, say_out};

/// What a replay did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Dead-lettered events found in the file.
    pub events: usize,
    /// Acknowledged by the ingestion service and removed from the file.
    pub delivered: usize,
    /// Rejected again; kept with the new reason.
    pub rejected_again: usize,
    /// Not settled before the deadline; kept as they were.
    pub left: usize,
    /// Lines that are not events (malformed upstream lines); kept.
    pub other_lines: usize,
}

/// Why a replay could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("failed to read or rewrite the dead-letter file: {0}")]
    File(#[from] std::io::Error),
    #[error("failed to build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// Where each line of the file stands.
enum Line {
    Other,
    /// The `seq`-th event replayed for `stream`, with its id.
    Event {
        stream: String,
        seq: u64,
        id: String,
    },
}

/// Replays the dead-letter file of `settings.state.dir`, giving up after `deadline`.
pub async fn replay(settings: &Settings, deadline: Duration, metrics: Metrics) -> Result<ReplayReport, ReplayError> {
    let state = StateDir::open(&settings.state.dir)?;
    let dead = state.dead_letter();
    // Events rejected again land here first, and are folded back below.
    let scratch = state.replay_scratch();
    scratch.remove()?;
    let entries = {
        let dead = dead.clone();
        tokio::task::spawn_blocking(move || dead.entries())
            .await
            .map_err(std::io::Error::other)??
    };

    let (tx, rx) = byte_channel::<Encoded>(settings.sink.max_queue_bytes);
    let abort = CancellationToken::new();
    let sink = Sink::new(&settings.sink, Schedule::new(settings.retry), scratch.clone(), metrics)?;
    let mut sink_task = tokio::spawn(sink.run(rx, abort.clone()));

    let mut trackers: HashMap<String, (Arc<StreamAcks<()>>, u64)> = HashMap::new();
    let mut plan = Vec::with_capacity(entries.len());
    let mut report = ReplayReport::default();
    let feed = async {
        for (_, entry) in entries {
            let DeadLetterEntry::Event { stream, id, event } = entry else {
                plan.push(Line::Other);
                report.other_lines += 1;
                continue;
            };
            let (acks, next) = trackers
                .entry(stream.clone())
                .or_insert_with(|| (StreamAcks::new(&stream).0, 0));
            let seq = *next;
            *next += 1;
            report.events += 1;
            let encoded = Encoded {
                id: id.clone(),
                json: serde_json::to_vec(&event).unwrap_or_default(),
                ack: acks.next_token(),
            };
            plan.push(Line::Event { stream, seq, id });
            if tx.send(encoded).await.is_err() {
                break;
            }
        }
        drop(tx);
    };
    let finished = tokio::time::timeout(deadline, async {
        feed.await;
        (&mut sink_task).await
    })
    .await;
    if finished.is_err() {
        tracing::warn!("the replay deadline passed; what was not delivered stays in the dead-letter file");
        abort.cancel();
        let _ = sink_task.await;
    }

    let mut again = {
        let scratch = scratch.clone();
        tokio::task::spawn_blocking(move || scratch.lines_by_id())
            .await
            .map_err(std::io::Error::other)??
    };
    let acked = |stream: &str, seq: u64| trackers.get(stream).is_some_and(|(acks, _)| acks.is_acked(seq));
    let mut decided = Vec::with_capacity(plan.len());
    for line in &plan {
        decided.push(match line {
            Line::Other => Keep::Same,
            Line::Event { stream, seq, id } if acked(stream, *seq) => match again.get_mut(id).and_then(Vec::pop) {
                Some(new_line) => {
                    report.rejected_again += 1;
                    Keep::Replace(new_line)
                }
                None => {
                    report.delivered += 1;
                    Keep::Drop
                }
            },
            Line::Event { .. } => {
                report.left += 1;
                Keep::Same
            }
        });
    }
    let dead_for_rewrite = dead.clone();
    tokio::task::spawn_blocking(move || {
        dead_for_rewrite.rewrite(|n, line| match decided.get_mut(n).map(std::mem::take) {
            Some(Keep::Drop) => None,
            Some(Keep::Replace(new_line)) => Some(new_line),
            Some(Keep::Same) | None => Some(line.to_string()),
        })
    })
    .await
    .map_err(std::io::Error::other)??;
    scratch.remove()?;
    Ok(report)
}

/// What becomes of one line of the file.
#[derive(Default)]
enum Keep {
    /// Kept as it is (also: lines added since it was read).
    #[default]
    Same,
    /// Delivered: removed.
    Drop,
    /// Rejected again: the new line, with the new reason.
    Replace(String),
}

/// The `replay` command: prints what happened; exit 0 when every event was settled.
pub async fn run(settings: &Settings, deadline: Duration) -> std::process::ExitCode {
    say_out(&format!(
        "replay: sending the dead-lettered events of {} again through the {} sink at {}\n",
        settings.state.dir.display(),
        settings.sink.protocol.as_str(),
        crate::secrets::redact_url(&settings.sink.url)
    ));
    match replay(settings, deadline, Metrics::new()).await {
        Ok(report) => {
            say_out(&format!(
                "  events in the dead-letter file:               {}\n\
                 \x20 delivered and removed from the file:          {}\n\
                 \x20 rejected again (kept, with the new reason):   {}\n\
                 \x20 not settled before the deadline (kept):       {}\n\
                 \x20 other lines kept (never were events):         {}\n",
                report.events, report.delivered, report.rejected_again, report.left, report.other_lines
            ));
            if report.left == 0 {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::FAILURE
            }
        }
        Err(err) => {
            say_err(&format!("openai-audit-ingest replay: {}", crate::errors::chain(&err)));
            std::process::ExitCode::FAILURE
        }
    }
}
