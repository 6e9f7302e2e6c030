use serde_json::{Value, json};

use super::*;
use crate::normalize::tape;

#[test]
fn a_tape_reads_as_the_tree_of_the_same_text_does() {
    let text =
        r#"{"b": {"x": [1, {"y": null}], "t": true}, "a": "first", "é\"k": "v", "a": "last", "n": [], "f": false}"#;
    let tree: Value = serde_json::from_str(text).expect("json");
    let tape = tape(text).expect("tape");
    let root = At::root(text, &tape);
    assert_eq!(
        root.to_value(),
        tree,
        "a repeated key: the last one, as serde_json keeps it"
    );
    assert_eq!(root.get("a").and_then(Tree::as_str), Some("last"));
    assert_eq!(root.get("é\"k").and_then(Tree::as_str), Some("v"));
    let x = root.get("b").and_then(|b| b.get("x")).expect("x");
    assert!(x.is_array() && !x.is_object() && !x.is_null());
    assert_eq!(x.items().count(), 2, "a nested object is one element");
    assert!(x.at_index(1).and_then(|o| o.get("y")).is_some_and(Tree::is_null));
    assert_eq!(x.at_index(2).map(Tree::to_value), None);
    assert_eq!(
        root.get("b").and_then(|b| b.get("t")).and_then(Tree::as_bool),
        Some(true)
    );
    assert_eq!(root.get("f").and_then(Tree::as_bool), Some(false));
    assert_eq!(root.get("missing").map(Tree::to_value), None);
    assert_eq!(root.get("n").map(|n| n.items().count()), Some(0));
    let of_tape: Vec<(&str, Value)> = root.members().map(|(k, v)| (k, v.to_value())).collect();
    let of_tree: Vec<(&str, Value)> = (&tree).members().map(|(k, v)| (k, v.clone())).collect();
    assert_eq!(of_tape, of_tree, "key order, a repeated key once with its last value");
    assert_eq!(
        root.get("a").map(|a| a.members().count()),
        Some(0),
        "a string has no members"
    );
}

#[test]
fn a_tree_reads_through_the_same_handles() {
    let tree = json!({"a": [1, "two"], "b": {"c": true}});
    let root = &tree;
    assert_eq!(
        root.get("a").and_then(|a| a.at_index(1)).and_then(Tree::as_str),
        Some("two")
    );
    assert_eq!(root.get("a").map(|a| a.items().count()), Some(2));
    assert_eq!(
        root.get("b").and_then(|b| b.get("c")).and_then(Tree::as_bool),
        Some(true)
    );
    assert_eq!(root.members().map(|(k, _)| k).collect::<Vec<_>>(), ["a", "b"]);
}
