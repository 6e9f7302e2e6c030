//! Property tests of everything that parses outside input, and of the paging logic, with
//! `proptest`. Arbitrary input and mutations of real samples (byte flips, cuts, insertions,
//! repeats) must never panic: each parser answers with a value or its typed error. Case
//! counts stay modest ([`CASES`]) so the suite stays fast; `PROPTEST_CASES` raises them for a
//! longer local run.
//!
//! - `wire`: audit-log pages, inventory pages of both pagination families, compliance list
//!   bodies and records, `Retry-After` headers.
//! - `checkpoints`: every stream's checkpoint file.
//! - `paging`: the audit-log window pass over an in-memory upstream, with ties, late
//!   arrivals and crashes.
//! - `sink`: the ingestion service's answers, read by every protocol.
//!
//! Compliance JSON Lines are tested beside their reader (`streams::compliance::lines`), and
//! configuration values (durations, sizes, booleans, lists, URLs) inside `config` (`props`),
//! whose parsers are private to it.

mod checkpoints;
mod paging;
mod sink;
mod wire;

use proptest::prelude::*;
use serde_json::Value;

/// Cases per property unless `PROPTEST_CASES` says otherwise.
pub const CASES: u32 = 96;

/// The default configuration of every property here.
pub fn config() -> ProptestConfig {
    config_with(CASES)
}

/// The configuration of a property whose cases are costly: `cases` unless `PROPTEST_CASES`
/// says otherwise.
pub fn config_with(default_cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(default_cases);
    ProptestConfig {
        cases,
        // Failures are reported with their minimal input; nothing is written to the tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Any JSON value, a few levels deep, with the keys real records use mixed into random ones
/// so the parsers meet the fields they look for with the wrong types.
pub fn json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        3 => prop::sample::select(vec![
            "id", "type", "effective_at", "object", "data", "has_more", "last_id", "first_id",
            "next", "event_id", "timestamp", "principal", "actor", "project", "end_time",
            "file_sha256", "file_size", "last_end_time", "session", "user", "email", "name",
            "created_at", "role", "status", "api_key", "ip_address", "details", "message",
        ])
        .prop_map(str::to_string),
        1 => "[a-z_.]{0,12}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,24}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..8)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

/// One way to damage a byte string.
#[derive(Debug, Clone)]
pub enum Mutation {
    Flip { at: usize, byte: u8 },
    Cut { at: usize },
    Insert { at: usize, bytes: Vec<u8> },
    Delete { at: usize, len: usize },
    Repeat { at: usize, len: usize },
}

impl Mutation {
    fn apply(&self, bytes: &mut Vec<u8>) {
        let at = |i: usize| if bytes.is_empty() { 0 } else { i % (bytes.len() + 1) };
        match self {
            Self::Flip { at: i, byte } => {
                if !bytes.is_empty() {
                    let i = i % bytes.len();
                    bytes[i] = *byte;
                }
            }
            Self::Cut { at: i } => {
                let i = at(*i);
                bytes.truncate(i);
            }
            Self::Insert { at: i, bytes: extra } => {
                let i = at(*i);
                bytes.splice(i..i, extra.iter().copied());
            }
            Self::Delete { at: i, len } => {
                let i = at(*i);
                let end = (i + len).min(bytes.len());
                bytes.drain(i..end);
            }
            Self::Repeat { at: i, len } => {
                let i = at(*i);
                let end = (i + len).min(bytes.len());
                let copy = bytes[i..end].to_vec();
                bytes.splice(end..end, copy);
            }
        }
    }
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let interesting = prop::sample::select(b"{}[]\":,0-. \n\\ex".to_vec());
    prop_oneof![
        (any::<usize>(), prop_oneof![interesting, any::<u8>()]).prop_map(|(at, byte)| Mutation::Flip { at, byte }),
        any::<usize>().prop_map(|at| Mutation::Cut { at }),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (any::<usize>(), 1..64usize).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (any::<usize>(), 1..64usize).prop_map(|(at, len)| Mutation::Repeat { at, len }),
    ]
}

/// `sample` with a few mutations applied.
pub fn mutated(sample: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(mutation(), 1..5).prop_map(move |mutations| {
        let mut bytes = sample.clone();
        for m in &mutations {
            m.apply(&mut bytes);
        }
        bytes
    })
}

/// Outside input of every kind for a parser that was written for `sample`: arbitrary bytes,
/// arbitrary JSON, and the sample damaged.
pub fn inputs_like(sample: &[u8]) -> impl Strategy<Value = Vec<u8>> + use<> {
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..256),
        2 => json().prop_map(|v| v.to_string().into_bytes()),
        4 => mutated(sample.to_vec()),
    ]
}
