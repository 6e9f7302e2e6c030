//! The content policy (`compliance.content = keep | hash | drop`) for message and tool-call
//! text: one pure function over a normalized event that rewrites the text wherever it sits,
//! in `details` and in `raw` alike, so with `hash` or `drop` no text is shipped at all.
//!
//! It runs on finished events, not inside a normalizer, so it can move after the guardrails
//! stage (whose content detectors must still see the text) without changing.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::Event;
use crate::config::ContentMode;

/// Where text lives, as JSON paths (`*` = every array element). The same paths apply to a
/// compliance record (`raw`) and to the `details` its normalizer builds, which keeps text
/// at the record's own paths for exactly this reason.
pub const CONTENT_PATHS: &[&[&str]] = &[
    // CONVERSATION_MESSAGE: the message body.
    &["message", "content", "value"],
    &["message", "content", "text"],
    &["message", "content", "parts", "*"],
    // APP_LOG: tool-call arguments and what the tool answered.
    &["input"],
    &["output", "*", "response", "result", "content", "*", "text"],
    &["output_text", "*"],
    // CODEX_LOG / CUSTOM_AGENTS_LOG details that carry prompts or tool payloads.
    &["event_details", "prompt"],
    &["event_details", "response"],
    &["event_details", "input"],
    &["event_details", "output"],
    &["event_details", "message"],
    &["event_details", "text"],
    &["event_details", "content"],
];

/// Applies `mode` to every text field of `event` (its `details` and its `raw` record).
pub fn apply(mode: ContentMode, event: &mut Event) {
    if mode == ContentMode::Keep {
        return;
    }
    apply_to_value(mode, &mut event.details);
    if let Some(raw) = event.raw.as_mut() {
        apply_to_value(mode, raw);
    }
}

/// Applies `mode` to the text fields of one JSON document shaped like a compliance record.
pub fn apply_to_value(mode: ContentMode, value: &mut Value) {
    if mode == ContentMode::Keep {
        return;
    }
    for path in CONTENT_PATHS {
        rewrite(mode, value, path);
    }
}

/// What replaces a text under `hash`: its SHA-256 and its length in characters, so equal
/// texts can still be correlated and sizes compared without the text.
pub fn digest(text: &Value) -> Value {
    let bytes = match text {
        Value::String(s) => s.as_bytes().to_vec(),
        // Tool arguments are objects: hash their compact JSON.
        other => other.to_string().into_bytes(),
    };
    let length = match text {
        Value::String(s) => s.chars().count(),
        _ => bytes.len(),
    };
    json!({"sha256": hex::encode(Sha256::digest(&bytes)), "length": length})
}

fn rewrite(mode: ContentMode, value: &mut Value, path: &[&str]) {
    let Some((head, rest)) = path.split_first() else {
        return;
    };
    match (*head, value) {
        ("*", Value::Array(items)) => {
            if rest.is_empty() {
                match mode {
                    ContentMode::Drop => items.clear(),
                    _ => items.iter_mut().filter(|v| !is_digest(v)).for_each(|v| *v = digest(v)),
                }
            } else {
                for item in items {
                    rewrite(mode, item, rest);
                }
            }
        }
        (key, Value::Object(object)) if key != "*" => {
            if rest.is_empty() {
                replace_field(mode, object, key);
            } else if let Some(child) = object.get_mut(key) {
                rewrite(mode, child, rest);
            }
        }
        _ => {}
    }
}

fn replace_field(mode: ContentMode, object: &mut Map<String, Value>, key: &str) {
    match mode {
        ContentMode::Keep => {}
        ContentMode::Drop => {
            object.remove(key);
        }
        ContentMode::Hash => {
            if let Some(v) = object.get_mut(key)
                && !v.is_null()
                && !is_digest(v)
            {
                *v = digest(v);
            }
        }
    }
}

/// Already hashed (the policy may run twice on the same event, e.g. once it moves).
fn is_digest(v: &Value) -> bool {
    v.as_object()
        .is_some_and(|o| o.len() == 2 && o.get("sha256").is_some_and(Value::is_string) && o.contains_key("length"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::Source;

    fn event(raw: Value, details: Value) -> Event {
        let mut e = Event::new(
            "id".into(),
            Source::Compliance,
            None,
            "CONVERSATION_MESSAGE".into(),
            chrono::Utc::now(),
        );
        e.raw = Some(raw);
        e.details = details;
        e
    }

    fn message(text: &str) -> Value {
        json!({"message": {"id": "m1", "content": {"type": "text", "value": text, "annotations": []}}})
    }

    #[test]
    fn hash_replaces_the_text_with_its_sha256_and_length_in_details_and_raw() {
        let mut e = event(message("secret plan"), message("secret plan"));
        apply(ContentMode::Hash, &mut e);
        let expected = json!({"sha256": hex::encode(Sha256::digest(b"secret plan")), "length": 11});
        assert_eq!(e.details["message"]["content"]["value"], expected);
        assert_eq!(e.raw.as_ref().expect("raw")["message"]["content"]["value"], expected);
        assert_eq!(e.details["message"]["content"]["type"], "text", "only the text changes");
        let text = serde_json::to_string(&e).expect("json");
        assert!(!text.contains("secret plan"), "{text}");
    }

    #[test]
    fn drop_removes_the_text_and_keep_leaves_it() {
        let mut dropped = event(message("secret"), message("secret"));
        apply(ContentMode::Drop, &mut dropped);
        assert!(dropped.details["message"]["content"].get("value").is_none());
        assert!(!serde_json::to_string(&dropped).expect("json").contains("secret"));
        let mut kept = event(message("secret"), message("secret"));
        apply(ContentMode::Keep, &mut kept);
        assert_eq!(kept.details["message"]["content"]["value"], "secret");
    }

    #[test]
    fn tool_call_arguments_and_results_are_covered_and_hashing_twice_changes_nothing() {
        let raw = json!({
            "input": {"query": "in:general salaries"},
            "output": [{"response": {"result": {"content": [{"type": "text", "text": "salary table"}], "isError": false},
                                     "action_name": "search"}}]
        });
        let mut e = event(
            raw.clone(),
            json!({"input": raw["input"], "output_text": ["salary table"]}),
        );
        apply(ContentMode::Hash, &mut e);
        let once = e.clone();
        apply(ContentMode::Hash, &mut e);
        assert_eq!(e, once);
        let text = serde_json::to_string(&e).expect("json");
        assert!(!text.contains("salar"), "{text}");
        assert_eq!(
            e.raw.as_ref().expect("raw")["output"][0]["response"]["action_name"],
            "search"
        );
        assert_eq!(e.details["output_text"][0]["length"], 12);
    }
}
