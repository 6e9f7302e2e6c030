//! A compliance record → the event to ship: a repeat of a recent event is dropped, the rest
//! is normalized — a line of one object read as a tape, anything else from the tree the
//! general path parsed — and keeps its text as received as `raw`.

use super::records::ObjectLine;
use super::{ComplianceState, ComplianceStream, Totals, unix_seconds};
use crate::compliance::wire::LogFile;
use crate::normalize::{self, At, Event, Raw, Source, Tree};
use crate::openai::wire::Record;
use crate::pipeline::{CHUNK, Emitter};
use crate::streams::CycleError;

impl ComplianceStream {
    /// A line of one JSON object, read as a tape → the event to ship (its text, as received,
    /// becomes its `raw`), or `None` for a repeat or for a line `shipped` before a stop (its id
    /// is remembered again); the line back when it is not one object after all.
    pub(super) fn accept_line(
        &mut self,
        line: ObjectLine,
        shipped: bool,
        file: &LogFile,
        totals: &mut Totals,
    ) -> Result<Option<Event>, ObjectLine> {
        let Some(tape) = line.read() else {
            // Not one JSON value after all (a line beginning with `{` that parses is an object).
            return Err(line);
        };
        let root = At::root(line.text(), &tape);
        if shipped {
            let (key, at) = recent_key(root, file);
            self.state.recent.insert(&key, at);
            return Ok(None);
        }
        let Some(mut event) = self.event_of(root, file, totals) else {
            return Ok(None);
        };
        if event.raw.is_none() {
            event.raw = Some(Raw::taped(line.into_text(), tape));
        }
        Ok(Some(event))
    }

    /// A JSON record the general path parsed → the event to ship (the record, as received,
    /// becomes its `raw`), or `None` for a repeat.
    pub(super) fn accept(&mut self, record: Record, file: &LogFile, totals: &mut Totals) -> Option<Event> {
        let mut event = self.event_of(&*record, file, totals)?;
        // An incomplete record's `other` event already carries it. Otherwise its text is
        // written out as received, and its tree is there for rules and the content policy.
        if event.raw.is_none() {
            let (text, tree) = record.into_parts();
            event.raw = Some(Raw::received(text, tree));
        }
        Some(event)
    }

    /// The event of a record (without `raw`, unless it is an incomplete record's `other`
    /// event), or `None` for a repeat of a recent one.
    fn event_of<'a, T: Tree<'a>>(&mut self, record: T, file: &LogFile, totals: &mut Totals) -> Option<Event> {
        let (key, at) = recent_key(record, file);
        if !self.state.recent.insert(&key, at) {
            totals.duplicates += 1;
            return None;
        }
        totals.events += 1;
        let normalized = normalize::compliance_without_raw(record, &self.ctx);
        Some(crate::streams::to_event(
            &self.name,
            Source::Compliance,
            &self.ctx,
            &self.metrics,
            normalized,
            || record.to_value(),
        ))
    }
}

/// What a record of `file` is remembered by among the recent ids, and when it happened (Unix
/// seconds). A record without an `event_id` is remembered by the digest its `other` event is
/// named by, so reading its file again does not ship it again.
pub(super) fn recent_key<'a, T: Tree<'a>>(record: T, file: &LogFile) -> (String, i64) {
    let key = match record.get("event_id").and_then(T::as_str) {
        Some(event_id) => event_id.to_string(),
        None => normalize::unparseable_key(&record.to_value()),
    };
    let at = record
        .get("timestamp")
        .and_then(T::as_str)
        .map_or_else(|| unix_seconds(&file.end_time), unix_seconds);
    (key, at)
}

/// Queues an accepted event in `chunk`, sending the chunk on when it is full.
pub(super) async fn stage(
    out: &Emitter<ComplianceState>,
    chunk: &mut Vec<Event>,
    event: Event,
) -> Result<(), CycleError> {
    chunk.push(event);
    if chunk.len() >= CHUNK {
        out.emit_all(chunk.drain(..)).await?;
    }
    Ok(())
}
