//! [`JsonText`]: one JSON value's text, exactly as received, known to be valid because a
//! parser accepted it. What a record's `raw` is carried as and written out from.
//!
//! `serde_json`'s `RawValue` is the same thing, but making one from text parses the text
//! again to check it. The readers here (a page of audit logs, a line of a compliance file)
//! have just parsed that text themselves, so they keep it as it is; the one writer that
//! matters (`normalize::write_event`) copies it out. Serializing through serde checks it
//! once more, which only tests and rare paths do.

use std::fmt;

use serde::ser::Error as _;
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

/// One JSON value's text (no whitespace around it).
#[derive(Clone, PartialEq, Eq)]
pub struct JsonText(Box<str>);

impl JsonText {
    /// `text`, which a JSON parser has just accepted as exactly one value with nothing
    /// around it. The caller vouches for that: it is what makes this cheaper than `RawValue`.
    pub(crate) fn parsed(text: Box<str>) -> Self {
        JsonText(text)
    }

    /// The text.
    pub fn get(&self) -> &str {
        &self.0
    }
}

/// Whitespace as JSON counts it (RFC 8259: space, tab, line feed, carriage return; not form
/// feed), for the readers that find where a value's text begins and ends.
pub fn is_json_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Past the closing quote of the JSON string whose contents begin at `from` (just after its
/// opening quote), stepping over escapes; `None` when `bytes` end first.
pub fn string_end(bytes: &[u8], mut from: usize) -> Option<usize> {
    loop {
        from += memchr::memchr2(b'"', b'\\', bytes.get(from..)?)?;
        if bytes[from] == b'"' {
            return Some(from + 1);
        }
        from += 2;
    }
}

impl From<Box<RawValue>> for JsonText {
    fn from(raw: Box<RawValue>) -> Self {
        JsonText(raw.into())
    }
}

impl fmt::Debug for JsonText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for JsonText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let raw: &RawValue = serde_json::from_str(&self.0).map_err(S::Error::custom)?;
        raw.serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_is_written_out_as_received() {
        let text: JsonText = RawValue::from_string(r#"{"z": 1.50, "a" : "\u00e9"}"#.into())
            .expect("json")
            .into();
        assert_eq!(text.get(), r#"{"z": 1.50, "a" : "\u00e9"}"#);
        assert_eq!(serde_json::to_string(&text).expect("encodes"), text.get());
        assert_eq!(format!("{text:?}"), text.get());
    }
}
