//! Compliance log files: events queued per type, cut into JSONL files on interval
//! boundaries (chunked, `end_time` strictly increasing per type), with seeded at-least-once
//! repeats of an event from the previous file.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::clock::iso_auto;
use super::ids::alnum;

/// A pending "record" holding this key is written verbatim as its line (tests put malformed
/// JSON Lines in a file this way).
pub(crate) const RAW_LINE_KEY: &str = "__sim_raw_line";

/// The lines of a file made on request: line `i` is the same text on every call, so the
/// file can be hashed once and served again without ever being held in memory.
pub(crate) trait LineSource: Send + Sync + std::fmt::Debug {
    /// How many lines.
    fn count(&self) -> usize;
    /// Line `i` (`i < count()`), without its newline.
    fn line(&self, i: usize) -> String;
}

/// What a file holds: its bytes, or lines made on request (a file of a GB).
#[derive(Debug, Clone)]
pub(crate) enum FileBody {
    Bytes(Bytes),
    Lines(Arc<dyn LineSource>),
}

#[derive(Debug)]
pub(crate) struct LogFile {
    id: String,
    event_type: String,
    end_us: i64,
    max_event_us: i64,
    pub(crate) body: FileBody,
    /// Bytes in the file.
    pub(crate) size: usize,
    sha256: String,
}

/// Pending events and cut files, per event type.
#[derive(Debug)]
pub(crate) struct ComplianceStore {
    interval_us: i64,
    max_events: usize,
    duplicate_probability: f64,
    rng: ChaCha8Rng,
    pending: BTreeMap<String, Vec<(i64, Value)>>,
    files: BTreeMap<String, Vec<LogFile>>,
    by_id: HashMap<String, (String, usize)>,
    /// Events of the latest file per type: the pool an at-least-once repeat is drawn from.
    previous: BTreeMap<String, Vec<Value>>,
    event_ids: HashMap<String, Vec<String>>,
    /// Lay files cut from now on, and list bodies, out as concatenated pretty-printed JSON
    /// documents instead of JSON Lines and one document (as other collectors have seen).
    pub(crate) concatenated: bool,
    /// Drop pushed events (records are still built, so the seeded history is the same).
    pub(crate) discard: bool,
}

impl ComplianceStore {
    pub(crate) fn new(interval: Duration, max_events: usize, dup: f64, seed: u64) -> Self {
        ComplianceStore {
            interval_us: i64::try_from(interval.as_micros()).unwrap_or(i64::MAX).max(1),
            max_events: max_events.max(1),
            duplicate_probability: dup.clamp(0.0, 1.0),
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0xc0ff_ee00),
            pending: BTreeMap::new(),
            files: BTreeMap::new(),
            by_id: HashMap::new(),
            previous: BTreeMap::new(),
            event_ids: HashMap::new(),
            concatenated: false,
            discard: false,
        }
    }

    pub(crate) fn push(&mut self, event_type: &str, at_us: i64, record: Value) {
        if self.discard {
            return;
        }
        if let Some(id) = record["event_id"].as_str() {
            self.event_ids
                .entry(event_type.to_owned())
                .or_default()
                .push(id.to_owned());
        }
        self.pending
            .entry(event_type.to_owned())
            .or_default()
            .push((at_us, record));
    }

    /// Whether `ty` has ever had an event: a type the platform "added" by a test writing
    /// records of it, beyond the ones the simulator produces itself.
    pub(crate) fn knows(&self, ty: &str) -> bool {
        self.pending.contains_key(ty) || self.files.contains_key(ty)
    }

    /// Latest event time in any file of `ty` (what `max_event_time` reports).
    pub(crate) fn max_event_time(&self, ty: &str) -> Option<i64> {
        self.files.get(ty)?.iter().map(|f| f.max_event_us).max()
    }

    pub(crate) fn event_ids(&self, event_type: &str) -> Vec<String> {
        self.event_ids.get(event_type).cloned().unwrap_or_default()
    }

    /// Cut every interval that closed before `now_us` into files.
    pub(crate) fn cut_until(&mut self, now_us: i64) {
        let boundary = now_us - now_us.rem_euclid(self.interval_us);
        let types: Vec<String> = self.pending.keys().cloned().collect();
        for ty in types {
            let mut due = self.take_pending(&ty, |ts| ts < boundary);
            due.sort_by_key(|(ts, _)| *ts);
            let mut start = 0;
            while start < due.len() {
                let bucket = due[start].0.div_euclid(self.interval_us);
                let end = due[start..]
                    .iter()
                    .position(|(ts, _)| ts.div_euclid(self.interval_us) != bucket)
                    .map_or(due.len(), |p| start + p);
                let bucket_end = (bucket + 1) * self.interval_us;
                self.emit(&ty, due[start..end].to_vec(), bucket_end);
                start = end;
            }
        }
    }

    /// Cut everything pending now, whatever the interval.
    pub(crate) fn cut_all(&mut self, now_us: i64) {
        let types: Vec<String> = self.pending.keys().cloned().collect();
        for ty in types {
            let mut due = self.take_pending(&ty, |_| true);
            due.sort_by_key(|(ts, _)| *ts);
            if !due.is_empty() {
                self.emit(&ty, due, now_us);
            }
        }
    }

    fn take_pending(&mut self, ty: &str, pred: impl Fn(i64) -> bool) -> Vec<(i64, Value)> {
        let Some(p) = self.pending.get_mut(ty) else {
            return Vec::new();
        };
        let (due, keep): (Vec<_>, Vec<_>) = p.drain(..).partition(|(ts, _)| pred(*ts));
        *p = keep;
        due
    }

    /// Files for `events` (sorted), chunked, every `end_time` strictly after the last one of
    /// the type so an exclusive `after` cursor never skips a file.
    fn emit(&mut self, ty: &str, events: Vec<(i64, Value)>, end_us: i64) {
        let chunks: Vec<Vec<(i64, Value)>> = events.chunks(self.max_events).map(<[_]>::to_vec).collect();
        let n = chunks.len() as i64;
        for (i, chunk) in chunks.into_iter().enumerate() {
            let last_end = self.files.get(ty).and_then(|f| f.last()).map_or(i64::MIN, |f| f.end_us);
            let end = (end_us - (n - 1 - i as i64)).max(last_end.saturating_add(1));
            let mut lines: Vec<&Value> = Vec::new();
            let repeat = match self.previous.get(ty) {
                Some(prev) if !prev.is_empty() && self.rng.random_bool(self.duplicate_probability) => {
                    Some(prev[self.rng.random_range(0..prev.len())].clone())
                }
                _ => None,
            };
            if let Some(r) = &repeat {
                lines.push(r);
            }
            lines.extend(chunk.iter().map(|(_, v)| v));
            let mut body = String::new();
            for (i, l) in lines.iter().enumerate() {
                match l.get(RAW_LINE_KEY).and_then(Value::as_str) {
                    Some(raw) => body.push_str(raw),
                    None if self.concatenated => {
                        body.push_str(&serde_json::to_string_pretty(l).unwrap_or_else(|_| l.to_string()));
                    }
                    None => body.push_str(&l.to_string()),
                }
                // Concatenated documents: every other one directly after the previous.
                if !self.concatenated || i % 2 == 1 {
                    body.push('\n');
                }
            }
            let sha256 = hex::encode(Sha256::digest(body.as_bytes()));
            let id = format!("eclf_{}", alnum(&mut self.rng, 26).to_uppercase());
            let max_event_us = chunk.iter().map(|(ts, _)| *ts).max().unwrap_or(end);
            let size = body.len();
            self.file_away(LogFile {
                id,
                event_type: ty.to_owned(),
                end_us: end,
                max_event_us,
                body: FileBody::Bytes(Bytes::from(body)),
                size,
                sha256,
            });
            self.previous
                .insert(ty.to_owned(), chunk.into_iter().map(|(_, v)| v).collect());
        }
    }

    fn file_away(&mut self, file: LogFile) {
        let files = self.files.entry(file.event_type.clone()).or_default();
        self.by_id
            .insert(file.id.clone(), (file.event_type.clone(), files.len()));
        files.push(file);
    }

    /// One file of `ty` whose lines `lines` makes on request (events at `max_event_us` and
    /// before), ending at `end_us` or just after the type's last file; its size in bytes.
    /// Reading it through once here gives its size and checksum; it is never held whole.
    pub(crate) fn add_generated(
        &mut self,
        ty: &str,
        lines: Arc<dyn LineSource>,
        max_event_us: i64,
        end_us: i64,
    ) -> usize {
        let mut hash = Sha256::new();
        let mut size = 0;
        for i in 0..lines.count() {
            let mut line = lines.line(i);
            line.push('\n');
            hash.update(line.as_bytes());
            size += line.len();
        }
        let last_end = self.files.get(ty).and_then(|f| f.last()).map_or(i64::MIN, |f| f.end_us);
        let id = format!("eclf_{}", alnum(&mut self.rng, 26).to_uppercase());
        self.file_away(LogFile {
            id,
            event_type: ty.to_owned(),
            end_us: end_us.max(last_end.saturating_add(1)),
            max_event_us,
            body: FileBody::Lines(lines),
            size,
            sha256: hex::encode(hash.finalize()),
        });
        size
    }

    /// Size in bytes of the largest file of `ty`.
    pub(crate) fn largest_file(&self, ty: &str) -> usize {
        self.files
            .get(ty)
            .and_then(|files| files.iter().map(|f| f.size).max())
            .unwrap_or(0)
    }

    /// Size in bytes of every file of `ty`.
    pub(crate) fn total_bytes(&self, ty: &str) -> usize {
        self.files.get(ty).map_or(0, |files| files.iter().map(|f| f.size).sum())
    }

    pub(crate) fn file(&self, id: &str) -> Option<&LogFile> {
        let (ty, i) = self.by_id.get(id)?;
        self.files.get(ty)?.get(*i)
    }

    /// One list page: files of `ty` with `after < end_time (< before)`, ascending.
    pub(crate) fn page(&self, ty: &str, after_us: i64, before_us: Option<i64>, limit: usize) -> Value {
        let files = self.files.get(ty).map(Vec::as_slice).unwrap_or_default();
        let start = files.partition_point(|f| f.end_us <= after_us);
        let matching = files[start..]
            .iter()
            .take_while(|f| before_us.is_none_or(|b| f.end_us < b));
        let mut page: Vec<&LogFile> = matching.take(limit + 1).collect();
        let has_more = page.len() > limit;
        page.truncate(limit);
        let data: Vec<Value> = page
            .iter()
            .map(|f| {
                let end = iso_auto(f.end_us);
                json!({"id": f.id, "event_type": f.event_type, "end_time": end,
                    "file_name": format!("{}_{}.jsonl", f.event_type, end.replace('Z', "+00:00")),
                    "file_size": f.size, "file_sha256": f.sha256})
            })
            .collect();
        let last = page.last().map(|f| json!(iso_auto(f.end_us))).unwrap_or(Value::Null);
        json!({"data": data, "has_more": has_more, "last_end_time": last})
    }

    /// A list page as two concatenated, pretty-printed documents: the first half of its
    /// files (more to come), then the rest with the page's own `has_more` and cursor.
    pub(crate) fn concatenated_page(page: &Value) -> String {
        let data = page["data"].as_array().cloned().unwrap_or_default();
        let (first, rest) = data.split_at(data.len() / 2);
        let head = json!({"data": first, "has_more": true});
        let tail = json!({"data": rest, "has_more": page["has_more"], "last_end_time": page["last_end_time"]});
        let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
        format!("{}\n{}", pretty(&head), pretty(&tail))
    }
}
