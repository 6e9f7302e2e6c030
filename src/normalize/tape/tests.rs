use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::normalize::{At, Tree};

/// The tape's document as a `serde_json` tree, or its error's text.
fn read(text: &str) -> Result<Value, TapeError> {
    let tape = parse(text)?;
    Ok(At::root(text, &tape).to_value())
}

/// What `serde_json` makes of `text`: the tree, or that it refuses it.
fn official(text: &str) -> Option<Value> {
    serde_json::from_str::<Value>(text).ok()
}

#[test]
fn strings_keep_their_text_and_escapes_are_written_out() {
    let text = r#"{"plain": "héllo", "esc": "a\"b\\c\/d\n\t\u00e9\ud83d\ude00", "": [], "k\u0041": 1}"#;
    assert_eq!(read(text), Ok(official(text).expect("json")));
    let tape = parse(text).expect("tape");
    let root = At::root(text, &tape);
    assert_eq!(root.get("esc").and_then(Tree::as_str), Some("a\"b\\c/d\n\té😀"));
    assert_eq!(
        root.get("kA").and_then(Tree::as_str),
        None,
        "a key's escape is read too: `kA` is `1`"
    );
    assert!(root.get("kA").is_some());
    assert_eq!(tape.unescaped, "a\"b\\c/d\n\té😀kA", "only escaped strings are copied");
}

#[test]
fn what_serde_json_refuses_is_refused() {
    for text in [
        "",
        " ",
        "{",
        "{\"a\":1",
        "{\"a\" 1}",
        "{a:1}",
        "{\"a\":1,}",
        "[1,]",
        "[1 2]",
        "01",
        "1.",
        ".5",
        "-",
        "1e",
        "1e+",
        "+1",
        "tru",
        "nul",
        "\"abc",
        "\"a\\x\"",
        "\"\\u12\"",
        "\"\\ud800\"",
        "\"\\udc00\"",
        "\"\\ud800\\u0041\"",
        "\"a\u{1}b\"",
        "\"line\nbreak\"",
        "1e400",
        "-1e400",
        "{} {}",
        "[] x",
        "\u{feff}{}",
    ] {
        assert_eq!(official(text), None, "{text:?} is refused by serde_json");
        assert!(read(text).is_err(), "{text:?} is refused by the tape too");
    }
}

#[test]
fn numbers_read_as_serde_json_reads_them() {
    for text in [
        "0",
        "-0",
        "1",
        "-1",
        "18446744073709551615",
        "18446744073709551616",
        "-9223372036854775808",
        "-9223372036854775809",
        "123456789012345678901234567890",
        "1.5",
        "-2.5e-3",
        "1E10",
        "1e-400",
        "1.7976931348623157e308",
    ] {
        assert_eq!(read(text).ok(), official(text), "{text}");
    }
}

#[test]
fn nesting_stops_where_serde_json_stops() {
    for depth in [126, 127, 128, 129] {
        let text = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert_eq!(read(&text).is_ok(), official(&text).is_some(), "depth {depth}");
        let text = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
        assert_eq!(
            read(&text).is_ok(),
            official(&text).is_some(),
            "depth {depth} of objects"
        );
    }
    assert!(read(&"[".repeat(127)).is_err(), "unclosed");
}

#[test]
fn an_error_names_what_and_where() {
    let err = parse(r#"{"a": tru}"#).expect_err("not JSON");
    assert_eq!(err.at, 6);
    assert_eq!(err.to_string(), "expected a value at byte 6");
}

proptest! {
    #![proptest_config(crate::props::config())]

    /// Any document, compact or indented, reads as the tree `serde_json` parses from the
    /// same text.
    #[test]
    fn any_document_reads_as_its_tree(value in crate::props::json(), pretty in any::<bool>()) {
        let text = if pretty {
            serde_json::to_string_pretty(&value).expect("json")
        } else {
            value.to_string()
        };
        prop_assert_eq!(read(&text).ok(), official(&text));
        prop_assert!(read(&text).is_ok());
    }

    /// Any text made of JSON's own characters (and a few others): the tape takes exactly
    /// what `serde_json` takes, as the same tree.
    #[test]
    fn any_text_is_taken_or_refused_as_serde_json_does(
        text in r#"[ \t\n{}\[\]:,"\\/a-fu0-9.eE+\-ntrsl\u{1}é😀]{0,40}"#
    ) {
        prop_assert_eq!(read(&text).ok(), official(&text), "{:?}", text);
    }

    /// A record's text with anything cut off its end, or one byte changed: taken or refused
    /// as `serde_json` does.
    #[test]
    fn a_damaged_record_is_taken_or_refused_as_serde_json_does(
        value in crate::props::json(),
        cut in any::<prop::sample::Index>(),
        byte in prop::sample::select(vec![b'"', b'\\', b'{', b'}', b'[', b']', b':', b',', b'0', b'e', b'-', b'u', 0x01]),
        damage in any::<bool>(),
    ) {
        let whole = json!({"record": value}).to_string();
        let mut bytes = whole.clone().into_bytes();
        let at = cut.index(bytes.len());
        if damage {
            bytes[at] = byte;
        } else {
            bytes.truncate(at);
        }
        // Damage can split a character: only text reaches the tape.
        if let Ok(text) = String::from_utf8(bytes) {
            prop_assert_eq!(read(&text).ok(), official(&text), "{:?}", text);
        }
    }
}
