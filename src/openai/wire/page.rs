//! A page of audit logs read in one pass. Read the plain way (`ListAuditLogsResponse`'s
//! derived `Deserialize`), each record is scanned once to keep it as a `RawValue` and again
//! when its [`Members`](super::Members) are read. Here the page is parsed once: each record
//! is visited member by member, every key and value borrowed from the body, and the record
//! keeps its text (from its `{` to its `}`, as received) with where each member lies in it.
//! The `actor` (the largest member, and one the normalizer always reads) is parsed into its
//! typed view on the way instead of being skipped here and parsed again from its text; an
//! actor off the spec's shape sends the page to the plain reading.
//!
//! This covers the pages OpenAI sends: every record a non-empty object. Anything else — a
//! record of another type, an empty one, a repeated or missing page field, a key with
//! escapes in the page itself, a body that is not UTF-8 — is read the plain way instead, so
//! the result (or the error) is always what the plain reading gives.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::{AuditLogActor, JsonText, ListAuditLogsResponse, MemberSpan, Record, is_json_space, string_end};

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
        let bytes = body.as_bytes();
        // Each member's key and value as (start, end) in the body.
        let mut found: Vec<[(usize, usize); 2]> = Vec::with_capacity(12);
        let mut actor = None;
        // The member whose value was parsed, not borrowed: its end is not known yet.
        let mut open: Option<usize> = None;
        let mut escaped_key = false;
        while let Some(key) = map.next_key::<&'de RawValue>()? {
            let key_at = place(body, key.get())?;
            escaped_key |= key.get().contains('\\');
            if let Some(i) = open.take() {
                found[i][1].1 = end_before(bytes, key_at.0);
            }
            if key.get() == ACTOR {
                // Parsed here rather than skipped now and parsed again by the normalizer. An
                // actor off the spec's shape fails this reading, and the page is read the
                // plain way, where the normalizer reads it leniently.
                let start = start_after(bytes, key_at.1);
                actor = map.next_value::<Option<AuditLogActor>>()?.map(Box::new);
                found.push([key_at, (start, start)]);
                open = Some(found.len() - 1);
            } else {
                let value = map.next_value::<&'de RawValue>()?;
                found.push([key_at, place(body, value.get())?]);
            }
        }
        if let Some(i) = open {
            let start = found[i][1].0;
            found[i][1].1 = value_end(bytes, start).ok_or_else(|| de::Error::custom("an actor without its end"))?;
        }
        // A key spelled with escapes may also name `actor`: the members are then left to say
        // which one counts.
        if escaped_key {
            actor = None;
        }
        let (Some([(first, _), _]), Some([_, (_, last)])) = (found.first(), found.last()) else {
            return Err(de::Error::custom("an empty record"));
        };
        // The record's braces: the nearest bytes other than whitespace around its members.
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
        // Sized up front: collected through a `Result`, the list grew from nothing and was
        // shrunk again, a reallocation per record.
        let mut spans = Vec::with_capacity(found.len());
        for &[key, value] in &found {
            spans.push(MemberSpan {
                key: within(key)?,
                value: within(value)?,
            });
        }
        Ok(Record::with_members(
            JsonText::parsed(body[start..=end].into()),
            spans.into_boxed_slice(),
            actor,
        ))
    }
}

/// The key of the member parsed while the page is read, quoted as received.
const ACTOR: &str = "\"actor\"";

/// Where a member's value begins, the key ending at `key_end`: past `:` and whitespace.
fn start_after(bytes: &[u8], key_end: usize) -> usize {
    let rest = &bytes[key_end..];
    key_end
        + rest
            .iter()
            .position(|&b| !is_json_space(b) && b != b':')
            .unwrap_or(rest.len())
}

/// Where a member's value ends, the next key beginning at `next_key`: before `,` and
/// whitespace.
fn end_before(bytes: &[u8], next_key: usize) -> usize {
    bytes[..next_key]
        .iter()
        .rposition(|&b| !is_json_space(b) && b != b',')
        .map_or(0, |i| i + 1)
}

/// The end of the value at `start` in text the parser has accepted: `null`, or an object
/// (its braces counted outside strings); `None` for anything else (an actor written as an
/// array, which `serde` also accepts, is left to the plain reading).
fn value_end(bytes: &[u8], start: usize) -> Option<usize> {
    match bytes.get(start)? {
        b'n' => Some(start + "null".len()),
        b'{' => {
            let (mut depth, mut at) = (0usize, start);
            loop {
                at += memchr::memchr3(b'"', b'{', b'}', bytes.get(at..)?)?;
                match bytes[at] {
                    b'"' => at = string_end(bytes, at + 1)?,
                    b'{' => (depth, at) = (depth + 1, at + 1),
                    _ => {
                        (depth, at) = (depth - 1, at + 1);
                        if depth == 0 {
                            return Some(at);
                        }
                    }
                }
            }
        }
        _ => None,
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
    use serde::Deserialize;
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

    /// The actor the page reader parsed, and the one the members give, as JSON.
    fn actors(body: &str) -> Vec<(Value, Value)> {
        let page = one_pass(body).expect("read in one pass");
        page.data
            .into_iter()
            .map(|mut r| {
                let parsed = serde_json::to_value(r.take_actor()).expect("json");
                let read = serde_json::to_value(r.members().parse::<AuditLogActor>("actor")).expect("json");
                (parsed, read)
            })
            .collect()
    }

    #[test]
    fn the_actor_is_parsed_on_the_way_wherever_it_lies_and_its_member_kept() {
        let session = r#"{"type": "session", "session": {"user": {"id": "user-1", "email": "a@b.c"},
            "ip_address": "81.2.69.142", "user_agent": "x {\"}\\ y }", "extra": [{"}": "{"}],
            "ip_address_details": {"country": "GB", "latitude": "51.5", "longitude": "-0.1"}}}"#;
        let body = format!(
            "{{\"object\": \"list\", \"data\": [\n  {{\"id\": \"a\", \"actor\" :  {session}\n  }},\n  \
             {{\"id\":\"b\",\"actor\":{session},\"login.failed\":{{\"error_code\":\"x\"}}}},\n  \
             {{\"id\":\"c\",\"actor\":null}}, {{\"actor\":{{\"type\":\"api_key\",\"api_key\":{{\"id\":\"k\"}}}},\"id\":\"d\"}},\
             {{\"id\":\"e\"}}], \"has_more\": false}}"
        );
        let found = actors(&body);
        assert_eq!(found.len(), 5);
        for (parsed, read) in &found[..2] {
            assert_eq!(parsed, read);
            assert_eq!(parsed["session"]["user_agent"], "x {\"}\\ y }");
        }
        assert_eq!(found[2], (Value::Null, Value::Null), "a null actor is none");
        assert_eq!(found[3].0["api_key"]["id"], "k");
        assert_eq!(found[3].0, found[3].1);
        assert_eq!(found[4], (Value::Null, Value::Null));
        let (fast, plain) = both(&body);
        assert_eq!(
            fast, plain,
            "members, the actor's among them, as the plain reading has them"
        );
    }

    #[test]
    fn an_actor_off_the_spec_sends_the_page_to_the_plain_reading() {
        for actor in [
            r#""x""#,
            r#"{"type": 5}"#,
            r#"["session"]"#,
            r#"{"session": {"ip_address": []}}"#,
        ] {
            let body = format!(r#"{{"object":"list","data":[{{"id":"a","actor":{actor}}}],"has_more":false}}"#);
            assert!(one_pass(&body).is_err(), "not read in one pass: {actor}");
            let (fast, plain) = both(&body);
            assert_eq!(fast, plain, "{actor}");
        }
    }

    #[test]
    fn the_end_of_a_value_is_found_only_in_whole_text() {
        let text = br#"{"a": "x\"}", "b": {"c": "}"}} tail"#;
        assert_eq!(value_end(text, 0), Some(text.len() - " tail".len()));
        assert_eq!(value_end(b"null, 1", 0), Some(4));
        for cut in [&text[..10], &br#"{"a": "x\"#[..], &b"{"[..]] {
            assert_eq!(value_end(cut, 0), None, "{}", String::from_utf8_lossy(cut));
        }
        assert_eq!(value_end(b"[1]", 0), None, "an array is left to the plain reading");
    }

    #[test]
    fn an_actor_key_spelled_with_escapes_leaves_the_actor_to_the_members() {
        let body = r#"{"object":"list","data":[{"actor":{"type":"session"},"\u0061ctor":{"type":"api_key"}}],"has_more":false}"#;
        let mut page = one_pass(body).expect("read in one pass");
        assert!(page.data[0].take_actor().is_none());
        let read = page.data[0]
            .members()
            .parse::<AuditLogActor>("actor")
            .expect("an actor");
        assert_eq!(read.actor_type.as_deref(), Some("api_key"), "the last one counts");
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
            // An actor off the spec's shape is the one thing left to the plain reading.
            let off_spec = data.iter().any(|r| {
                r.get("actor")
                    .is_some_and(|a| !(a.is_null() || a.is_object() && AuditLogActor::deserialize(a).is_ok()))
            });
            prop_assert!(one_pass(&body).is_ok() || off_spec, "read in one pass");
            let (fast, plain) = both(&body);
            prop_assert_eq!(fast, plain);
        }
        /// Actors of any strings, anywhere in a record, compact or pretty-printed: parsed on
        /// the way as the members would parse them, every member where the plain reading has it.
        #[test]
        fn an_actor_reads_as_its_member_reads(
            strings in proptest::collection::vec(any::<String>(), 6),
            before in any::<bool>(),
            pretty in any::<bool>(),
        ) {
            let actor = json!({"type": strings[0], "session": {
                "user": {"id": strings[1], "email": strings[2]}, strings[3].clone(): [strings[4]],
                "user_agent": strings[5], "ip_address_details": {"country": strings[4]}}});
            // Written out by hand: a map of `serde_json` would sort `actor` first.
            let text = |v: &Value| if pretty { serde_json::to_string_pretty(v) } else { serde_json::to_string(v) };
            let (actor, id) = (text(&actor).expect("json"), text(&json!(strings[0])).expect("json"));
            let space = if pretty { "\n  " } else { "" };
            let record = if before {
                format!("{{{space}\"actor\": {actor},{space}\"id\": {id}{space}}}")
            } else {
                format!("{{{space}\"id\": {id},{space}\"actor\": {actor}{space}}}")
            };
            let body = format!(
                "{{\"object\": \"list\", \"data\": [{record}, {{\"id\": \"x\", \"actor\": null}}], \"has_more\": false}}"
            );
            for (parsed, read) in actors(&body) {
                prop_assert_eq!(parsed, read);
            }
            let (fast, plain) = both(&body);
            prop_assert_eq!(fast, plain);
        }
    }
}
