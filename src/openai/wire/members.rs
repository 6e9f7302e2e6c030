//! The top-level members of a JSON record, read straight from its text: each value stays the
//! slice of text it was received as, and is parsed only when asked for, into the type asked
//! for. Reading a few fields of a record this way costs one scan of its text; building a
//! [`serde_json::Value`] tree of it costs an allocation per string, object and array, and as
//! much again to drop them.

use std::borrow::Cow;

use serde::de::{DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// The members of one record, in the order received. A repeated key reads as its last
/// occurrence, as it does in a [`serde_json::Value`].
#[derive(Debug, Default)]
pub struct Members<'a> {
    entries: Vec<(Cow<'a, str>, &'a str)>,
    object: bool,
}

/// A member that is present and not `null` but is not of the type asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrongType;

/// A member read as an integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Integer {
    /// Within `i64`.
    Fits(i64),
    /// A non-negative integer beyond `i64::MAX`.
    TooLarge(u64),
}

/// Where one member of a record lies in the record's text: its key (quoted, as received) and
/// its value, as byte ranges `start..end`. Found by a reader that has parsed the text already
/// (`wire::page`), so [`Members::at`] need not scan it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberSpan {
    pub key: (u32, u32),
    pub value: (u32, u32),
}

impl<'a> Members<'a> {
    /// The members of `text` found at `spans` (in order received). A key with escapes is
    /// decoded; every other key and every value is borrowed from `text`.
    pub fn at(text: &'a str, spans: &[MemberSpan]) -> Self {
        let slice = |(start, end): (u32, u32)| text.get(start as usize..end as usize).unwrap_or_default();
        let entries = spans
            .iter()
            .map(|span| {
                let quoted = slice(span.key);
                let inner = quoted.get(1..quoted.len().saturating_sub(1)).unwrap_or_default();
                let key = if inner.contains('\\') {
                    serde_json::from_str::<Text<'a>>(quoted).map_or(Cow::Borrowed(inner), |t| t.0)
                } else {
                    Cow::Borrowed(inner)
                };
                (key, slice(span.value))
            })
            .collect();
        Self { entries, object: true }
    }

    /// The members of `text`; none, and [`Members::is_object`] false, when it is not an object.
    pub fn of(text: &'a str) -> Self {
        match serde_json::from_str::<Entries<'a>>(text) {
            Ok(Entries(entries)) => Self { entries, object: true },
            Err(_) => Self::default(),
        }
    }

    /// Whether the record is a JSON object.
    pub fn is_object(&self) -> bool {
        self.object
    }

    /// The text of member `key`, as received; `None` when absent.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.entries.iter().rev().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// The text of member `key` unless it is absent or `null`.
    pub fn present(&self, key: &str) -> Option<&'a str> {
        self.get(key).filter(|v| *v != "null")
    }

    /// Member `key` as a string: `Ok(None)` when absent or `null`. Borrowed from the record's
    /// text unless it holds escapes.
    pub fn str(&self, key: &str) -> Result<Option<Cow<'a, str>>, WrongType> {
        let Some(v) = self.present(key) else { return Ok(None) };
        // Every value here is text a parser accepted: one that is quoted and holds no
        // backslash is a string whose contents are exactly what lies between the quotes.
        if let Some(inner) = v.strip_prefix('"').and_then(|v| v.strip_suffix('"'))
            && memchr::memchr(b'\\', inner.as_bytes()).is_none()
        {
            return Ok(Some(Cow::Borrowed(inner)));
        }
        serde_json::from_str::<Text<'a>>(v)
            .map(|t| Some(t.0))
            .map_err(|_| WrongType)
    }

    /// Member `key` as an integer: `Ok(None)` when absent or `null`; a fraction, an exponent,
    /// a negative number below `i64::MIN` or any other type is [`WrongType`], as with
    /// [`serde_json::Value::as_i64`] and [`serde_json::Value::as_u64`].
    pub fn integer(&self, key: &str) -> Result<Option<Integer>, WrongType> {
        let Some(v) = self.present(key) else { return Ok(None) };
        // Accepted JSON that Rust reads as an `i64` is an integer written plainly (JSON has no
        // `+` sign, and a fraction or an exponent does not read).
        if let Ok(n) = v.parse::<i64>() {
            return Ok(Some(Integer::Fits(n)));
        }
        if let Ok(n) = serde_json::from_str::<i64>(v) {
            return Ok(Some(Integer::Fits(n)));
        }
        serde_json::from_str::<u64>(v)
            .map(|n| Some(Integer::TooLarge(n)))
            .map_err(|_| WrongType)
    }

    /// Member `key` parsed into `T`; `None` when absent, `null` or not a `T`.
    pub fn parse<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        self.present(key).and_then(|v| serde_json::from_str(v).ok())
    }
}

/// A JSON string, borrowed from the text when it holds no escapes.
#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

/// An object's members, each value left as its text.
struct Entries<'a>(Vec<(Cow<'a, str>, &'a str)>);

impl<'de> Deserialize<'de> for Entries<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Each;
        impl<'de> Visitor<'de> for Each {
            type Value = Entries<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::with_capacity(8);
                while let Some((Text(key), value)) = map.next_entry::<Text<'de>, &'de RawValue>()? {
                    entries.push((key, value.get()));
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(Each)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_string()).expect("valid JSON")
    }

    #[test]
    fn members_are_read_from_the_text_as_received() {
        let text = raw(r#"{"id": "a1", "n": 7, "obj": {"x": [1, 2]}, "nothing": null}"#);
        let m = Members::of(text.get());
        assert!(m.is_object());
        assert_eq!(m.str("id"), Ok(Some(Cow::Borrowed("a1"))));
        assert_eq!(m.integer("n"), Ok(Some(Integer::Fits(7))));
        assert_eq!(m.get("obj"), Some(r#"{"x": [1, 2]}"#));
        assert_eq!(m.get("nothing"), Some("null"));
        assert!(m.present("nothing").is_none());
        assert_eq!(m.str("nothing"), Ok(None));
        assert_eq!(m.str("absent"), Ok(None));
        assert_eq!(m.str("n"), Err(WrongType));
        assert_eq!(m.integer("id"), Err(WrongType));
        assert_eq!(m.parse::<Value>("obj"), Some(json!({"x": [1, 2]})));
    }

    #[test]
    fn escaped_keys_and_strings_are_decoded_and_the_last_repeat_wins() {
        let text = raw(r#"{"\u0069d": "first", "id": "tab\there", "id": "l\u00e4st"}"#);
        let m = Members::of(text.get());
        assert_eq!(m.str("id"), Ok(Some(Cow::Owned("läst".to_string()))));
        let tree: Value = serde_json::from_str(text.get()).expect("json");
        assert_eq!(tree["id"], "läst", "a Value tree agrees");
    }

    #[test]
    fn integers_read_as_a_value_tree_reads_them() {
        let text = raw(
            r#"{"big": 18446744073709551615, "huge": 1e30, "neg": -9223372036854775808, "frac": 1.5, "exp": 1e3, "text": "1"}"#,
        );
        let m = Members::of(text.get());
        let tree: Value = serde_json::from_str(text.get()).expect("json");
        for key in ["big", "huge", "neg", "frac", "exp", "text"] {
            let expected = match (tree[key].as_i64(), tree[key].as_u64()) {
                (Some(n), _) => Ok(Some(Integer::Fits(n))),
                (None, Some(n)) => Ok(Some(Integer::TooLarge(n))),
                (None, None) => Err(WrongType),
            };
            assert_eq!(m.integer(key), expected, "{key}");
        }
    }

    proptest::proptest! {
        #![proptest_config(crate::props::config())]
        /// Any value reads as a string or an integer exactly when a value tree says it is one.
        #[test]
        fn strings_and_integers_read_as_a_value_tree_reads_them(value in crate::props::json(), pretty in proptest::bool::ANY) {
            let record = json!({"k": value});
            let text = if pretty { serde_json::to_string_pretty(&record) } else { serde_json::to_string(&record) };
            let text = raw(&text.expect("json"));
            let m = Members::of(text.get());
            let value = &record["k"];
            let string = match value {
                Value::Null => Ok(None),
                Value::String(s) => Ok(Some(s.clone())),
                _ => Err(WrongType),
            };
            proptest::prop_assert_eq!(m.str("k").map(|s| s.map(Cow::into_owned)), string);
            let integer = match (value.as_i64(), value.as_u64(), value.is_null()) {
                (_, _, true) => Ok(None),
                (Some(n), _, _) => Ok(Some(Integer::Fits(n))),
                (None, Some(n), _) => Ok(Some(Integer::TooLarge(n))),
                (None, None, _) => Err(WrongType),
            };
            proptest::prop_assert_eq!(m.integer("k"), integer);
        }
    }

    #[test]
    fn anything_but_an_object_has_no_members() {
        for text in ["[1, 2]", "\"id\"", "7", "null"] {
            let text = raw(text);
            let m = Members::of(text.get());
            assert!(!m.is_object(), "{}", text.get());
            assert!(m.get("id").is_none());
        }
    }
}
