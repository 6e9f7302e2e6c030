//! Tests of the content shapes and policy: the table, the indexed walk held to a comparing
//! one, and what `keep`, `hash` and `drop` leave in `details` and `raw`.

use super::*;
use crate::normalize::{Source, Tree};

fn event(record_type: &str, raw: Value, details: Value) -> Event {
    let mut e = Event::new(
        "id".into(),
        Source::Compliance,
        None,
        record_type.into(),
        chrono::Utc::now(),
    );
    e.raw = Some(raw.into());
    e.details = details;
    e
}

fn message(text: &str) -> Value {
    json!({"message": {"id": "m1", "content": {"type": "text", "value": text, "annotations": []}}})
}

/// The indices in `bits`, ascending.
fn indices(mut bits: Bits) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        (bits != 0).then(|| {
            let i = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            i
        })
    })
}

fn matches(seg: &Seg, step: Step<'_>) -> bool {
    match (seg, step) {
        (Seg::Key(k), Step::Key(s)) => *k == s,
        (Seg::Any, Step::Index) => true,
        _ => false,
    }
}

/// [`Scope::child`] by comparing the step with every path of the set, as it was before
/// the paths were indexed: the reference the indexed steps must agree with.
fn child_by_scan<'a>(scope: Scope<'a>, step: Step<'_>) -> Scope<'a> {
    match scope {
        Scope::Kept => Scope::Kept,
        Scope::Outside {
            shape,
            depth,
            candidates,
        } => {
            let mut next = 0;
            for i in indices(candidates) {
                let c = &shape.containers[i];
                if !matches(&c.path[depth], step) {
                    continue;
                }
                if depth + 1 == c.path.len() {
                    return Scope::inside(c);
                }
                next |= 1 << i;
            }
            if next == 0 {
                Scope::Kept
            } else {
                Scope::Outside {
                    shape,
                    depth: depth + 1,
                    candidates: next,
                }
            }
        }
        Scope::Inside { container, depth, kept } => {
            let mut next = 0;
            for i in indices(kept) {
                let k = &container.kept[i];
                if matches(&k[depth], step) {
                    if k.len() == depth + 1 {
                        return Scope::Kept;
                    }
                    next |= 1 << i;
                }
            }
            Scope::Inside {
                container,
                depth: depth + 1,
                kept: next,
            }
        }
    }
}

fn same(a: Scope<'_>, b: Scope<'_>) -> bool {
    match (a, b) {
        (Scope::Kept, Scope::Kept) => true,
        (
            Scope::Outside {
                shape,
                depth,
                candidates,
            },
            Scope::Outside {
                shape: s2,
                depth: d2,
                candidates: c2,
            },
        ) => std::ptr::eq(shape, s2) && depth == d2 && candidates == c2,
        (
            Scope::Inside { container, depth, kept },
            Scope::Inside {
                container: c2,
                depth: d2,
                kept: k2,
            },
        ) => std::ptr::eq(container, c2) && depth == d2 && kept == k2,
        _ => false,
    }
}

/// Every key the table names, and two it does not.
fn vocabulary() -> Vec<&'static str> {
    let mut words: Vec<&'static str> = TABLE
        .lines()
        .filter(|l| !l.starts_with('#'))
        .flat_map(|l| l.split(['\t', ',', '.']))
        .filter(|w| !w.is_empty() && *w != "*" && *w != "-")
        .collect();
    words.extend(["unlisted", "value"]);
    words.sort_unstable();
    words.dedup();
    words
}

fn step_of(seg: &Seg) -> Step<'static> {
    match seg {
        Seg::Key(key) => Step::Key(key),
        Seg::Any => Step::Index,
    }
}

proptest::proptest! {
    /// Walking any record type's shape — along a container's path and one of its kept
    /// paths for a while, then anywhere — the indexed steps land where comparing with
    /// every path does.
    #[test]
    fn indexed_steps_walk_as_comparing_every_path_does(
        type_pick in 0usize..16,
        container_pick in 0usize..8,
        kept_pick in 0usize..64,
        along in 0usize..8,
        then in proptest::collection::vec(proptest::option::of(0usize..400), 0..4),
    ) {
        let types: Vec<&Shape> = SHAPES.by_type.values().chain([&SHAPES.other]).collect();
        let words = vocabulary();
        let shape = types[type_pick % types.len()];
        let mut walk: Vec<Step<'static>> = Vec::new();
        if let Some(c) = shape.containers.get(container_pick % shape.containers.len().max(1)) {
            walk.extend(c.path.iter().map(step_of));
            if let Some(k) = c.kept.get(kept_pick % c.kept.len().max(1)) {
                walk.extend(k.iter().map(step_of));
            }
        }
        walk.truncate(along);
        walk.extend(then.iter().map(|pick| match pick {
            Some(i) => Step::Key(words[i % words.len()]),
            None => Step::Index,
        }));
        let (mut indexed, mut scanned) = (Scope::root(shape), Scope::root(shape));
        for step in walk {
            indexed = indexed.child(step);
            scanned = child_by_scan(scanned, step);
            proptest::prop_assert!(same(indexed, scanned), "{indexed:?} against {scanned:?}");
        }
    }
}

fn texts<'a, T: Tree<'a>>(record_type: &str, doc: T) -> Vec<(String, String)> {
    let mut out = Vec::new();
    shape(record_type).for_each_text(doc, &mut |p, t| out.push((p.to_string(), t.to_string())));
    out
}

proptest::proptest! {
    #![proptest_config(crate::props::config())]
    /// A record read as a tape yields the texts its tree yields, at the same pointers and in
    /// the same order (what the detectors scan, within their byte budget), whatever JSON
    /// stands in it — repeated keys included, where the last one counts.
    #[test]
    fn a_record_read_in_place_has_the_texts_its_tree_has(
        record_type in proptest::sample::select(vec![
            "AUTH_LOG", "CONVERSATION_MESSAGE", "APP_LOG", "CODEX_LOG", "CUSTOM_AGENTS_LOG", "NEW_TYPE",
        ]),
        inside in crate::props::json(),
        container in proptest::sample::select(vec!["message", "input", "output", "event_details", "other"]),
        repeated in proptest::option::of(crate::props::json()),
    ) {
        let record = json!({"type": record_type, "event_id": "e", container: inside, "conversation": {"title": "t"}});
        let mut text = record.to_string();
        if let Some(earlier) = repeated {
            // The same member twice: serde_json keeps the last.
            text.insert_str(1, &format!("{}:{earlier},", json!(container)));
        }
        let tree: Value = serde_json::from_str(&text).expect("json");
        let tape = crate::normalize::tape(&text).expect("tape");
        let view = crate::normalize::At::root(&text, &tape);
        proptest::prop_assert_eq!(texts(record_type, view), texts(record_type, &tree));
    }
}

#[test]
fn the_table_has_no_malformed_rows() {
    let (shapes, errors) = parse_table(TABLE);
    assert!(errors.is_empty(), "{errors:#?}");
    for t in ["AUTH_LOG", "AUDIT_LOG", "APP_AUTH_LOG"] {
        assert!(!shapes.by_type[t].has_text(), "{t} carries no text");
    }
    for t in [
        "CONVERSATION_MESSAGE",
        "APP_LOG",
        "CODEX_LOG",
        "CODEX_SECURITY_LOG",
        "CUSTOM_AGENTS_LOG",
    ] {
        assert!(shapes.by_type[t].has_text(), "{t} carries text");
    }
    assert!(shapes.other.has_text());
}

#[test]
fn hash_replaces_the_text_with_its_sha256_and_length_in_details_and_raw() {
    let mut e = event("CONVERSATION_MESSAGE", message("secret plan"), message("secret plan"));
    apply(ContentMode::Hash, &mut e);
    let expected = json!({"sha256": hex::encode(Sha256::digest(b"secret plan")), "length": 11});
    assert_eq!(e.details["message"]["content"]["value"], expected);
    assert_eq!(
        e.raw.as_ref().expect("raw").tree()["message"]["content"]["value"],
        expected
    );
    assert_eq!(e.details["message"]["content"]["type"], "text", "only the text changes");
    assert_eq!(e.details["message"]["id"], "m1");
    let text = serde_json::to_string(&e).expect("json");
    assert!(!text.contains("secret plan"), "{text}");
}

#[test]
fn drop_removes_the_text_and_keep_leaves_it() {
    let mut dropped = event("CONVERSATION_MESSAGE", message("secret"), message("secret"));
    apply(ContentMode::Drop, &mut dropped);
    assert!(dropped.details["message"]["content"].get("value").is_none());
    assert_eq!(dropped.details["message"]["content"]["type"], "text");
    assert!(!serde_json::to_string(&dropped).expect("json").contains("secret"));
    let mut kept = event("CONVERSATION_MESSAGE", message("secret"), message("secret"));
    apply(ContentMode::Keep, &mut kept);
    assert_eq!(kept.details["message"]["content"]["value"], "secret");
}

#[test]
fn every_string_in_tool_arguments_is_text_but_client_context_and_numbers_are_not() {
    let raw = json!({
        "app_id": "asdk_app_1", "log_type": "request",
        "input": {"query": "in:general salaries", "limit": 20, "filters": {"who": ["cfo"]},
                  "_meta": {"openai/userAgent": "ChatGPT/1.2026", "openai/userLocation": {"city": "London"}}},
    });
    let found = texts("APP_LOG", &raw);
    assert_eq!(
        found,
        vec![
            ("/input/filters/who/0".to_string(), "cfo".to_string()),
            ("/input/query".to_string(), "in:general salaries".to_string())
        ]
    );
    let mut e = event("APP_LOG", raw.clone(), json!({"input": raw["input"]}));
    apply(ContentMode::Hash, &mut e);
    let raw = e.raw.as_ref().expect("raw").tree();
    assert_eq!(raw["input"]["limit"], 20);
    assert_eq!(raw["input"]["_meta"]["openai/userAgent"], "ChatGPT/1.2026");
    assert_eq!(raw["input"]["query"]["length"], 19);
    assert_eq!(raw["app_id"], "asdk_app_1");
}

#[test]
fn a_field_nobody_listed_under_a_container_is_text() {
    let raw = json!({"event_type": "PROMPT_RESPONSE_RECEIVED",
                     "event_details": {"detail_type": "PROMPT_RESPONSE_RECEIVED", "model": "gpt-5",
                                       "brand_new_field": "what the user typed"}});
    let found: Vec<String> = texts("CODEX_LOG", &raw).into_iter().map(|(p, _)| p).collect();
    assert_eq!(found, ["/event_details/brand_new_field"]);
}

#[test]
fn a_record_type_nobody_has_read_is_text_everywhere_but_its_envelope() {
    let raw = json!({"event_id": "e1", "type": "CHATGPT_PLUGIN_SPREADSHEET_LOG", "timestamp": "2026-01-01T00:00:00Z",
                     "actor": {"type": "ACCOUNT_USER", "user_email": "a@b.c"},
                     "sheet": {"name": "Payroll", "cells": ["Ann 120k"]}});
    let found: Vec<String> = texts("CHATGPT_PLUGIN_SPREADSHEET_LOG", &raw)
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    assert_eq!(found, ["Ann 120k", "Payroll"], "keys in order: cells, name");
}

#[test]
fn every_text_of_a_record_with_more_texts_than_are_remembered_gets_its_own_digest() {
    let n = Digests::KEPT * 3;
    let input: Map<String, Value> = (0..n).map(|i| (format!("q{i}"), json!(format!("text {i}")))).collect();
    let raw = json!({"app_id": "a1", "input": input});
    let mut e = event("APP_LOG", raw.clone(), json!({"input": raw["input"]}));
    apply(ContentMode::Hash, &mut e);
    let raw = e.raw.as_ref().expect("raw").tree();
    for i in 0..n {
        let expected = digest(&format!("text {i}"));
        assert_eq!(e.details["input"][format!("q{i}")], expected, "details q{i}");
        assert_eq!(raw["input"][format!("q{i}")], expected, "raw q{i}");
    }
}

#[test]
fn hashing_twice_changes_nothing_and_the_conversation_title_is_hashed_in_the_target_too() {
    let raw = json!({"message": {"content": {"type": "text", "value": "hi"}},
                     "conversation": {"id": "c1", "title": "Payroll questions"}});
    let mut e = event("CONVERSATION_MESSAGE", raw.clone(), raw);
    e.target = Some(crate::normalize::Target {
        target_type: "conversation".into(),
        id: Some("c1".into()),
        name: Some("Payroll questions".into()),
    });
    apply(ContentMode::Hash, &mut e);
    let once = e.clone();
    apply(ContentMode::Hash, &mut e);
    assert_eq!(e, once);
    let shipped = serde_json::to_string(&e).expect("json");
    assert!(!shipped.contains("Payroll"), "{shipped}");
    assert!(
        e.target
            .as_ref()
            .and_then(|t| t.name.as_deref())
            .is_some_and(|n| n.starts_with("sha256:"))
    );
    apply(ContentMode::Drop, &mut e);
    assert_eq!(e.target.and_then(|t| t.name), None);
}

#[test]
fn a_record_type_without_text_is_shipped_as_it_arrived_under_every_mode() {
    let text = r#"{"type": "AUTH_LOG", "action_data": {"action": "LOGIN"}, "n": 1.50}"#;
    for mode in [ContentMode::Hash, ContentMode::Drop] {
        let mut e = event("AUTH_LOG", json!({}), json!({"sub_type": "LOGIN"}));
        e.raw = Some(crate::normalize::Raw::text(
            serde_json::value::RawValue::from_string(text.to_string()).expect("json"),
        ));
        apply(mode, &mut e);
        let raw = e.raw.as_ref().expect("raw");
        assert_eq!(raw.json(), text, "{mode:?}: the text as received");
        assert!(!raw.is_parsed(), "{mode:?}: not parsed to change nothing");
    }
}
