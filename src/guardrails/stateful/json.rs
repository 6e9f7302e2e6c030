//! The rule state written as JSON: byte for byte the text the derived `Serialize` makes of it
//! (the tests hold the two equal; loading stays the derived `Deserialize`), in about half the
//! instructions. The state is saved whole, every few seconds while a run goes on and once at
//! its end; after the pipeline bench's 50,000 events it is 7.2 MB. `serde_json` escapes its
//! event ids and group keys a byte at a time; here strings go through the event writer's
//! check-then-copy (callgrind, one save after 22,500 events: 121.9M → 65.9M instructions, the
//! four kinds of group 93.7M → 37.7M). The text is handed to the file in chunks, so the state
//! is never held a second time as bytes. The reconciliation rules' memory (rarer, nested
//! deeper: 28M of that save) is still `serde_json`'s.

use std::io::{self, Write};

use super::velocity::{Point, Since};
use super::{Counted, Entry, Keyed, RuleState, Seen, State, Steps, Track, Values};
use crate::normalize::{write_json_string as string, write_json_value as number};

/// Bytes gathered before each write to `out`.
const CHUNK: usize = 64 * 1024;

/// Writes `state` as JSON into `out`.
pub fn write_state(state: &State, out: &mut dyn Write) -> io::Result<()> {
    let mut w = Chunks {
        buf: Vec::with_capacity(2 * CHUNK),
        out,
    };
    int(&mut w.buf, "{\"version\":", state.version);
    int(&mut w.buf, ",\"processed\":", state.processed);
    int(&mut w.buf, ",\"watermark\":", state.watermark);
    w.buf.extend_from_slice(b",\"rules\":{");
    for (i, (id, rule)) in state.rules.iter().enumerate() {
        comma(&mut w.buf, i);
        string(&mut w.buf, id);
        w.buf.push(b':');
        match rule {
            RuleState::Threshold { groups } => groups_of(&mut w, "threshold", groups, counted)?,
            RuleState::Sequence { groups } => groups_of(&mut w, "sequence", groups, steps)?,
            RuleState::FirstSeen { groups } => groups_of(&mut w, "first_seen", groups, values)?,
            RuleState::Velocity { groups } => groups_of(&mut w, "velocity", groups, track)?,
            RuleState::Reconcile { .. } => w.serde(rule)?,
        }
        w.spill()?;
    }
    w.buf.extend_from_slice(b"}}");
    w.out.write_all(&w.buf)
}

/// Text on its way to the file.
struct Chunks<'o> {
    buf: Vec<u8>,
    out: &'o mut dyn Write,
}

impl Chunks<'_> {
    /// Writes `value` through `serde_json` straight into the file (a reconciliation memory
    /// can be megabytes: gathered here first, it raised the bench's peak RSS by 3.5 MiB).
    fn serde(&mut self, value: &impl serde::Serialize) -> io::Result<()> {
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        serde_json::to_writer(&mut *self.out, value).map_err(io::Error::other)
    }

    /// Hands what is gathered to the file once it is a chunk.
    fn spill(&mut self) -> io::Result<()> {
        if self.buf.len() >= CHUNK {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }
}

/// `{"kind":<kind>,"groups":{<key>:<group>,…}}`, as the internally tagged enum writes it.
fn groups_of<V>(w: &mut Chunks<'_>, kind: &str, groups: &Keyed<V>, group: fn(&mut Vec<u8>, &V)) -> io::Result<()> {
    w.buf.extend_from_slice(b"{\"kind\":\"");
    w.buf.extend_from_slice(kind.as_bytes());
    w.buf.extend_from_slice(b"\",\"groups\":{");
    for (i, (key, value)) in groups.iter().enumerate() {
        comma(&mut w.buf, i);
        string(&mut w.buf, key);
        w.buf.push(b':');
        group(&mut w.buf, value);
        w.spill()?;
    }
    w.buf.extend_from_slice(b"}}");
    Ok(())
}

fn counted(b: &mut Vec<u8>, c: &Counted) {
    one_list(b, "entries", &c.entries, entry, c.touched);
}

fn steps(b: &mut Vec<u8>, s: &Steps) {
    b.extend_from_slice(b"{\"first\":");
    list(b, &s.first, entry);
    b.extend_from_slice(b",\"then\":");
    list(b, &s.then, entry);
    touched(b, s.touched);
}

fn values(b: &mut Vec<u8>, v: &Values) {
    one_list(b, "values", &v.values, seen, v.touched);
}

fn track(b: &mut Vec<u8>, t: &Track) {
    one_list(b, "points", &t.points, point, t.touched);
}

/// `{"<name>":[…],"touched":<n>}`: a group of one list.
fn one_list<T>(b: &mut Vec<u8>, name: &str, items: &[T], item: fn(&mut Vec<u8>, &T), n: u64) {
    b.extend_from_slice(b"{\"");
    b.extend_from_slice(name.as_bytes());
    b.extend_from_slice(b"\":");
    list(b, items, item);
    touched(b, n);
}

/// `,"touched":<n>}`: every group's last member.
fn touched(b: &mut Vec<u8>, n: u64) {
    int(b, ",\"touched\":", n);
    b.push(b'}');
}

fn entry(b: &mut Vec<u8>, e: &Entry) {
    int(b, "{\"t\":", e.t);
    text(b, ",\"id\":", &e.id);
    if !e.v.is_empty() {
        b.extend_from_slice(b",\"v\":");
        list(b, &e.v, number);
    }
    b.push(b'}');
}

fn seen(b: &mut Vec<u8>, s: &Seen) {
    text(b, "{\"value\":", &s.value);
    int(b, ",\"first_t\":", s.first_t);
    text(b, ",\"first_id\":", &s.first_id);
    int(b, ",\"last_t\":", s.last_t);
    b.extend_from_slice(if s.reported {
        b",\"reported\":true}"
    } else {
        b",\"reported\":false}"
    });
}

fn point(b: &mut Vec<u8>, p: &Point) {
    int(b, "{\"t\":", p.t);
    text(b, ",\"id\":", &p.id);
    int(b, ",\"lat\":", p.lat);
    int(b, ",\"lon\":", p.lon);
    if let Some(Since { t, id }) = &p.since {
        int(b, ",\"since\":{\"t\":", *t);
        text(b, ",\"id\":", id);
        b.push(b'}');
    }
    b.push(b'}');
}

/// `key` (the text before a member's value, punctuation included), then the string `s`.
fn text(b: &mut Vec<u8>, key: &str, s: &str) {
    b.extend_from_slice(key.as_bytes());
    string(b, s);
}

/// `key`, then the integer `n` as `serde_json` writes it (`itoa`; `write!` went through
/// `core::fmt` and was a third of this writer's instructions).
fn int<N: serde::Serialize>(b: &mut Vec<u8>, key: &str, n: N) {
    b.extend_from_slice(key.as_bytes());
    number(b, &n);
}

fn list<T>(b: &mut Vec<u8>, items: &[T], item: impl Fn(&mut Vec<u8>, &T)) {
    b.push(b'[');
    for (i, x) in items.iter().enumerate() {
        comma(b, i);
        item(b, x);
    }
    b.push(b']');
}

fn comma(b: &mut Vec<u8>, i: usize) {
    if i > 0 {
        b.push(b',');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guardrails::stateful::{Fingerprints, Memory};
    use proptest::prelude::*;

    fn ours(state: &State) -> String {
        let mut out = Vec::new();
        write_state(state, &mut out).expect("written to memory");
        String::from_utf8(out).expect("utf-8")
    }

    fn entry(t: i64, id: &str, v: &[u64]) -> Entry {
        Entry {
            t,
            id: id.to_string(),
            v: Fingerprints::from_slice(v),
        }
    }

    /// A state with every kind of rule and every optional member both present and absent,
    /// and texts that need escaping.
    fn every_kind(text: &str, n: i64) -> State {
        let mut state = State {
            processed: n.unsigned_abs(),
            ..State::default()
        };
        let key = |k: &str| format!("openai.audit_log\u{1f}{k}{text}");
        let mut counted = Keyed::default();
        counted.insert(
            key("a"),
            Counted {
                entries: vec![
                    entry(n, text, &[]),
                    entry(2, "b", &[7]),
                    entry(-3, "c\"", &[1, u64::MAX, 3]),
                ],
                touched: 9,
            },
        );
        counted.insert(key("empty"), Counted::default());
        let mut steps = Keyed::default();
        steps.insert(
            key("s"),
            Steps {
                first: vec![entry(1, "f", &[])],
                then: vec![],
                touched: 1,
            },
        );
        let mut values = Keyed::default();
        values.insert(
            key("v"),
            Values {
                values: vec![
                    Seen {
                        value: text.to_string(),
                        first_t: n,
                        first_id: "x\\y".into(),
                        last_t: i64::MAX,
                        reported: true,
                    },
                    Seen {
                        value: "US".into(),
                        first_t: 0,
                        first_id: String::new(),
                        last_t: 1,
                        reported: false,
                    },
                ],
                touched: 3,
            },
        );
        let mut tracks = Keyed::default();
        tracks.insert(
            key("p"),
            Track {
                points: vec![
                    Point::new(5, text, -33.86, 151.2),
                    Point {
                        since: Some(Since { t: 4, id: text.into() }),
                        ..Point::new(6, "q", 48.85, 2.35)
                    },
                ],
                touched: 2,
            },
        );
        state.rules.extend([
            ("threshold".to_string(), RuleState::Threshold { groups: counted }),
            ("sequence\n".to_string(), RuleState::Sequence { groups: steps }),
            ("first_seen".to_string(), RuleState::FirstSeen { groups: values }),
            ("velocity".to_string(), RuleState::Velocity { groups: tracks }),
            (
                "none".to_string(),
                RuleState::Threshold {
                    groups: Keyed::default(),
                },
            ),
            (
                "reconcile".to_string(),
                RuleState::Reconcile {
                    memory: Box::<Memory>::default(),
                },
            ),
        ]);
        state
    }

    #[test]
    fn the_state_is_written_as_serde_json_writes_it_and_loads_back() {
        for text in ["plain", "tab\there, \"quoted\", back\\slash, \u{1} and é ☃ 🦀", ""] {
            let state = every_kind(text, -42);
            let written = ours(&state);
            assert_eq!(written, serde_json::to_string(&state).expect("json"), "{text:?}");
            let back: State = serde_json::from_str(&written).expect("loads back");
            assert_eq!(back, state);
        }
        let fresh = State::default();
        assert_eq!(ours(&fresh), serde_json::to_string(&fresh).expect("json"));
    }

    #[test]
    fn a_state_larger_than_a_chunk_is_written_whole() {
        let mut state = every_kind("x", 1);
        let mut groups = Keyed::default();
        for i in 0..5_000 {
            groups.insert(
                format!("k{i}"),
                Counted {
                    entries: vec![entry(
                        i,
                        &format!("openai.audit_log:org-1:audit_log-{i:040}"),
                        &[i as u64],
                    )],
                    touched: 1,
                },
            );
        }
        state.rules.insert("big".into(), RuleState::Threshold { groups });
        let written = ours(&state);
        assert!(written.len() > 4 * CHUNK, "{} bytes", written.len());
        assert_eq!(written, serde_json::to_string(&state).expect("json"));
    }

    proptest! {
        #[test]
        fn any_texts_and_numbers_are_written_as_serde_json_writes_them(
            text in any::<String>(),
            n in any::<i64>(),
        ) {
            let state = every_kind(&text, n);
            prop_assert_eq!(ours(&state), serde_json::to_string(&state).expect("json"));
        }
    }
}
