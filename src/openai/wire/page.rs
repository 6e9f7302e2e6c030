//! A page of audit logs read in one pass. Read the plain way (`ListAuditLogsResponse`'s
//! derived `Deserialize`), each record is scanned once to keep it as a `RawValue` and again
//! when its [`Members`](super::Members) are read. Here the page is parsed once: each record
//! is visited member by member, every key and value borrowed from the body, and the record
//! keeps its text (from its `{` to its `}`, as received) with where each member lies in it.
//!
//! This covers the pages OpenAI sends: every record a non-empty object. Anything else — a
//! record of another type, an empty one, a repeated or missing page field, a key with
//! escapes in the page itself, a body that is not UTF-8 — is read the plain way instead, so
//! the result (or the error) is always what the plain reading gives.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::{JsonText, ListAuditLogsResponse, MemberSpan, Record, is_json_space};

/// `body` as a page of audit logs.
pub fn read_audit_log_page(body: &[u8]) -> Result<ListAuditLogsResponse, serde_json::Error> {
    match std::str::from_utf8(body).map(one_pass) {
        Ok(Ok(page)) => Ok(page),
        _ => serde_json::from_slice(body),
    }
}

/// `body` read in one pass; an error for a page outside the usual shape.
fn one_pass(body: &str) -> Result<ListAuditLogsResponse, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(body);
    let page = Page(body).deserialize(&mut de)?;
    de.end()?;
    Ok(page)
}

/// Reads the page object; `.0` is the whole body, which every record is a part of.
struct Page<'b>(&'b str);

impl<'de> DeserializeSeed<'de> for Page<'de> {
    type Value = ListAuditLogsResponse;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Page<'de> {
    type Value = ListAuditLogsResponse;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a page of audit logs")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut object, mut data, mut first_id, mut last_id, mut has_more) = (None, None, None, None, None);
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "object" => once(&mut object, map.next_value::<String>()?)?,
                "data" => once(&mut data, map.next_value_seed(Data(self.0))?)?,
                "first_id" => once(&mut first_id, map.next_value::<Option<String>>()?)?,
                "last_id" => once(&mut last_id, map.next_value::<Option<String>>()?)?,
                "has_more" => once(&mut has_more, map.next_value::<bool>()?)?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let missing = || de::Error::custom("a page field is missing");
        Ok(ListAuditLogsResponse {
            object: object.ok_or_else(missing)?,
            data: data.ok_or_else(missing)?,
            first_id: first_id.flatten(),
            last_id: last_id.flatten(),
            has_more: has_more.ok_or_else(missing)?,
        })
    }
}

/// Sets a page field the first time it is seen; a repeat is an error (as for the plain reading).
fn once<T, E: de::Error>(slot: &mut Option<T>, value: T) -> Result<(), E> {
    match slot {
        Some(_) => Err(E::custom("a page field is repeated")),
        None => {
            *slot = Some(value);
            Ok(())
        }
    }
}

/// Reads `data`, the page's records.
struct Data<'b>(&'b str);

impl<'de> DeserializeSeed<'de> for Data<'de> {
    type Value = Vec<Record>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Data<'de> {
    type Value = Vec<Record>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut records = Vec::with_capacity(seq.size_hint().unwrap_or(100));
        while let Some(record) = seq.next_element_seed(One(self.0))? {
            records.push(record);
        }
        Ok(records)
    }
}

/// Reads one record.
struct One<'b>(&'b str);

impl<'de> DeserializeSeed<'de> for One<'de> {
    type Value = Record;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for One<'de> {
    type Value = Record;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a record")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let body = self.0;
        // Each member's key and value as (start, end) in the body.
        let mut found: Vec<[(usize, usize); 2]> = Vec::with_capacity(12);
        while let Some(key) = map.next_key::<&'de RawValue>()? {
            let value = map.next_value::<&'de RawValue>()?;
            found.push([place(body, key.get())?, place(body, value.get())?]);
        }
        let (Some([(first, _), _]), Some([_, (_, last)])) = (found.first(), found.last()) else {
            return Err(de::Error::custom("an empty record"));
        };
        // The record's braces: the nearest bytes other than whitespace around its members.
        let bytes = body.as_bytes();
        let start = bytes[..*first].iter().rposition(|&b| !is_json_space(b));
        let end = bytes[*last..].iter().position(|&b| !is_json_space(b)).map(|i| last + i);
        let (start, end) = match (start, end) {
            (Some(start), Some(end)) if bytes[start] == b'{' && bytes[end] == b'}' => (start, end),
            _ => return Err(de::Error::custom("a record without braces")),
        };
        let within = |(from, to): (usize, usize)| -> Result<(u32, u32), A::Error> {
            let offset = |at: usize| u32::try_from(at - start).map_err(|_| de::Error::custom("a record too large"));
            Ok((offset(from)?, offset(to)?))
        };
        let spans = found
            .iter()
            .map(|&[key, value]| {
                Ok(MemberSpan {
                    key: within(key)?,
                    value: within(value)?,
                })
            })
            .collect::<Result<Box<[MemberSpan]>, A::Error>>()?;
        Ok(Record::with_members(JsonText::parsed(body[start..=end].into()), spans))
    }
}

/// Where `part` (a slice the parser borrowed from `body`) lies in `body`: (start, end).
fn place<E: de::Error>(body: &str, part: &str) -> Result<(usize, usize), E> {
    let at = part.as_ptr().addr().wrapping_sub(body.as_ptr().addr());
    let end = at.checked_add(part.len());
    match end.and_then(|end| body.get(at..end).map(|slice| (slice, end))) {
        Some((slice, end)) if std::ptr::eq(slice.as_ptr(), part.as_ptr()) => Ok((at, end)),
        _ => Err(E::custom("a member not borrowed from the page")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    /// A page as both readers give it: its fields, and each record's text and members.
    fn seen(page: Result<ListAuditLogsResponse, serde_json::Error>) -> Result<String, String> {
        page.map(|p| {
            let records: Vec<String> = p
                .data
                .iter()
                .map(|r| format!("{} {:?}", r.text().get(), r.members()))
                .collect();
            format!(
                "{} {:?} {:?} {} {records:?}",
                p.object, p.first_id, p.last_id, p.has_more
            )
        })
        .map_err(|e| e.to_string())
    }

    fn both(body: &str) -> (Result<String, String>, Result<String, String>) {
        (
            seen(read_audit_log_page(body.as_bytes())),
            seen(serde_json::from_slice(body.as_bytes())),
        )
    }

    #[test]
    fn records_keep_their_text_and_members_as_received() {
        let body = "{\"object\": \"list\", \"data\": [ {\"id\" : \"a\", \"n\": 1.50,\n \"\\u0069x\": {\"k\": [1]}} ,{\"id\":\"b\"}],\
                    \"first_id\": \"a\", \"last_id\": \"b\", \"has_more\": true, \"extra\": {\"x\": 1}}";
        let page = one_pass(body).expect("read in one pass");
        assert_eq!(
            page.data[0].text().get(),
            "{\"id\" : \"a\", \"n\": 1.50,\n \"\\u0069x\": {\"k\": [1]}}"
        );
        let members = page.data[0].members();
        assert_eq!(members.get("n"), Some("1.50"));
        assert_eq!(members.get("ix"), Some(r#"{"k": [1]}"#), "an escaped key is decoded");
        assert_eq!(members.str("id"), Ok(Some("a".into())));
        assert_eq!(page.data[1].text().get(), r#"{"id":"b"}"#);
        let (fast, plain) = both(body);
        assert_eq!(fast, plain);
    }

    #[test]
    fn pages_outside_the_usual_shape_read_as_the_plain_reading_reads_them() {
        for body in [
            r#"{"object":"list","data":[{"id":"a"},{}],"has_more":false}"#,
            r#"{"object":"list","data":[{"id":"a"}, "text", 7, null, [1]],"has_more":false}"#,
            r#"{"object":"list","data":[{"id":"a"}],"has_more":false,"has_more":true}"#,
            r#"{"object":"list","data":[{"id":"a"}]}"#,
            r#"{"\u006fbject":"list","data":[{"id":"a"}],"has_more":false,"first_id":null}"#,
            r#"{"object":"list","data":[{"id":"a"}],"has_more":false} trailing"#,
            r#"{"object":"list","data":[{"id":"a"}],"has_more":"no"}"#,
            r#"[]"#,
        ] {
            let (fast, plain) = both(body);
            assert_eq!(fast, plain, "{body}");
            assert!(one_pass(body).is_err(), "not read in one pass: {body}");
        }
        let not_utf8 = b"{\"object\":\"list\",\"data\":[{\"id\":\"\xff\"}],\"has_more\":false}";
        assert_eq!(
            seen(read_audit_log_page(not_utf8)),
            seen(serde_json::from_slice(not_utf8))
        );
    }

    #[test]
    fn a_member_is_placed_only_when_it_lies_in_the_body() {
        let body = r#"{"data":[{"id":"a"}]}"#;
        let inside = &body[10..14];
        assert_eq!(
            place::<serde_json::Error>(body, inside).ok().map(|(at, _)| at),
            Some(10)
        );
        let elsewhere = String::from(inside);
        assert!(place::<serde_json::Error>(body, &elsewhere).is_err());
        assert!(
            place::<serde_json::Error>(&body[12..], inside).is_err(),
            "begins before the body"
        );
    }

    proptest! {
        #![proptest_config(crate::props::config())]
        /// Any page of objects, compact or pretty-printed, reads as the plain reading reads it.
        #[test]
        fn a_page_reads_as_the_plain_reading_reads_it(
            records in proptest::collection::vec(crate::props::json(), 0..6),
            pretty in any::<bool>(),
            more in any::<bool>(),
        ) {
            let data: Vec<Value> = records
                .into_iter()
                .map(|r| match r {
                    Value::Object(m) if !m.is_empty() => Value::Object(m),
                    other => json!({"v": other}),
                })
                .collect();
            let page = json!({"object": "list", "data": data, "first_id": "a", "last_id": null, "has_more": more});
            let body = if pretty { serde_json::to_string_pretty(&page) } else { serde_json::to_string(&page) }
                .expect("json");
            prop_assert!(one_pass(&body).is_ok(), "read in one pass");
            let (fast, plain) = both(&body);
            prop_assert_eq!(fast, plain);
        }
    }
}
