//! An event's `raw`: the upstream record, carried as the JSON text it arrived as and written
//! out unchanged — parsed into a tree only when something reads or edits inside it (a rule's
//! `raw.…` field, the content policy, the detectors' redaction).

use std::borrow::Cow;
use std::sync::OnceLock;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

use super::tape::Tape;
use super::tree::{At, Tree};
use crate::openai::wire::{JsonText, is_json_space, string_end, tree_of};

/// The upstream record of an event.
#[derive(Debug, Clone)]
pub enum Raw {
    /// The record's JSON text exactly as received, with its tree once something asked for it.
    Text {
        text: JsonText,
        tree: OnceLock<Value>,
        tape: Option<Tape>,
    },
    /// A tree: a record built here, or one a stage has edited.
    Tree(Value),
}

impl Raw {
    /// The record as received (on one line: see [`one_line`]).
    pub fn text(text: impl Into<JsonText>) -> Self {
        Raw::Text {
            text: one_line(text.into()),
            tree: OnceLock::new(),
            tape: None,
        }
    }

    /// The record as received, on one line already, and its tape over that text.
    pub fn taped(text: JsonText, tape: Tape) -> Self {
        Raw::Text {
            text,
            tree: OnceLock::new(),
            tape: Some(tape),
        }
    }

    /// The record's tape, when it was read as one and nothing has made it a tree.
    pub fn tape(&self) -> Option<At<'_>> {
        match self {
            Raw::Text {
                text,
                tape: Some(tape),
                tree,
            } if tree.get().is_none() => Some(At::root(text.get(), tape)),
            _ => None,
        }
    }

    /// The record as received (on one line), whose tree the caller has parsed already.
    pub fn received(text: impl Into<JsonText>, tree: Value) -> Self {
        Raw::Text {
            text: one_line(text.into()),
            tree: OnceLock::from(tree),
            tape: None,
        }
    }

    /// The record as a tree, parsed the first time it is asked for.
    pub fn tree(&self) -> &Value {
        match self {
            Raw::Text { text, tree, tape } => tree.get_or_init(|| built(text, tape.as_ref())),
            Raw::Tree(value) => value,
        }
    }

    /// Whether the record has been parsed into a tree (or was one from the start).
    #[cfg(test)]
    pub fn is_parsed(&self) -> bool {
        match self {
            Raw::Text { tree, .. } => tree.get().is_some(),
            Raw::Tree(_) => true,
        }
    }

    /// The record as a tree to edit: from here on it is written out from the tree.
    pub fn tree_mut(&mut self) -> &mut Value {
        if let Raw::Text { text, tree, tape } = self {
            let value = tree.take().unwrap_or_else(|| built(text, tape.as_ref()));
            *self = Raw::Tree(value);
        }
        match self {
            Raw::Tree(value) => value,
            Raw::Text { .. } => unreachable!("converted to a tree above"),
        }
    }

    /// The record's JSON text: as received, or the tree's serialization.
    pub fn json(&self) -> Cow<'_, str> {
        match self {
            Raw::Text { text, .. } => Cow::Borrowed(text.get()),
            Raw::Tree(value) => Cow::Owned(value.to_string()),
        }
    }
}

/// The tree of a received record: built from its tape when it was read as one, else parsed.
fn built(text: &JsonText, tape: Option<&Tape>) -> Value {
    match tape {
        Some(tape) => At::root(text.get(), tape).to_value(),
        None => tree_of(text),
    }
}

/// The record's text without the whitespace between its tokens, when it spans lines. Every
/// event is one line of NDJSON (and of each protocol's body), and upstream APIs pretty-print
/// (OpenAI's pages do; so may a compliance file). A JSON string cannot hold a raw line break,
/// so every one lies between tokens; spaces and tabs there go too, while everything inside
/// strings, key order and number spelling stay as received. A record on one line is kept
/// byte for byte.
fn one_line(text: JsonText) -> JsonText {
    let json = text.get().as_bytes();
    if memchr::memchr2(b'\n', b'\r', json).is_none() {
        return text;
    }
    let mut out = Vec::with_capacity(json.len());
    let mut at = 0;
    while let Some(&b) = json.get(at) {
        if b == b'"' {
            // A string is copied whole, up to its closing quote.
            let end = string_end(json, at + 1).unwrap_or(json.len());
            out.extend_from_slice(&json[at..end]);
            at = end;
        } else {
            if !is_json_space(b) {
                out.push(b);
            }
            at += 1;
        }
    }
    // Only ASCII whitespace outside strings was dropped, so this is the same JSON, still UTF-8:
    // no second parse to check it (the tests do, in debug builds, on every record they see).
    match String::from_utf8(out) {
        Ok(compact) => {
            debug_assert!(serde_json::from_str::<&RawValue>(&compact).is_ok(), "{compact}");
            JsonText::parsed(compact.into_boxed_str())
        }
        Err(_) => text,
    }
}

impl From<Value> for Raw {
    fn from(value: Value) -> Self {
        Raw::Tree(value)
    }
}

impl PartialEq for Raw {
    fn eq(&self, other: &Self) -> bool {
        self.tree() == other.tree()
    }
}

impl PartialEq<Value> for Raw {
    fn eq(&self, other: &Value) -> bool {
        self.tree() == other
    }
}

impl Serialize for Raw {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Raw::Text { text, .. } => text.serialize(serializer),
            Raw::Tree(value) => value.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(Raw::Tree)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn received(text: &str) -> Raw {
        Raw::text(RawValue::from_string(text.to_string()).expect("json"))
    }

    #[test]
    fn a_received_record_is_written_out_byte_for_byte() {
        // Spacing, key order and number spelling as the upstream sent them.
        let text = r#"{"z": 1.50, "a" : "\u00e9", "n": [1,2]}"#;
        let raw = received(text);
        assert_eq!(serde_json::to_string(&raw).expect("encodes"), text);
        assert_eq!(raw.tree()["a"], "é", "still readable as a tree");
        assert_eq!(
            serde_json::to_string(&raw).expect("encodes"),
            text,
            "reading does not change it"
        );
    }

    #[test]
    fn a_record_spanning_lines_is_written_on_one_line_with_its_strings_untouched() {
        let text = "{\n  \"z\": 1.50,\r\n\t\"s\": \"two  spaces, \\\"quoted\\\" and \\\\\",\n  \"n\": [\n    1,\n    {\"e\": \"\\n\"}\n  ]\n}";
        let raw = received(text);
        let line = serde_json::to_string(&raw).expect("encodes");
        assert_eq!(
            line,
            r#"{"z":1.50,"s":"two  spaces, \"quoted\" and \\","n":[1,{"e":"\n"}]}"#
        );
        assert_eq!(
            serde_json::from_str::<Value>(&line).expect("json"),
            serde_json::from_str::<Value>(text).expect("json"),
            "the same record"
        );
    }

    proptest::proptest! {
        #![proptest_config(crate::props::config())]
        /// Made one line, a pretty-printed record is exactly its compact serialization.
        #[test]
        fn a_pretty_printed_record_becomes_its_compact_text(value in crate::props::json()) {
            let pretty = serde_json::to_string_pretty(&value).expect("encodes");
            let raw = received(&pretty);
            proptest::prop_assert_eq!(
                serde_json::to_string(&raw).expect("encodes"),
                serde_json::to_string(&value).expect("encodes")
            );
        }
    }

    #[test]
    fn an_edited_record_is_written_out_from_its_tree() {
        let mut raw = received(r#"{"text": "secret", "id": "x"}"#);
        raw.tree_mut()["text"] = json!("[REDACTED]");
        assert_eq!(
            serde_json::to_value(&raw).expect("encodes"),
            json!({"text": "[REDACTED]", "id": "x"})
        );
        assert_eq!(raw, json!({"text": "[REDACTED]", "id": "x"}));
    }

    #[test]
    fn text_and_tree_of_the_same_record_are_equal() {
        assert_eq!(received(r#"{"a":1}"#), Raw::from(json!({"a": 1})));
        assert_ne!(received(r#"{"a":1}"#), Raw::from(json!({"a": 2})));
    }
}
