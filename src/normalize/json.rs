//! An [`Event`] written as JSON: byte for byte the text `serde_json::to_writer` makes of it
//! (the derived `Serialize`, which stays the definition; the tests hold the two equal), at a
//! fraction of the cost. Every event is written once, on the processing stage, so this is
//! the hot path of every stream.
//!
//! The saving is in the strings. `serde_json` escapes a string one byte at a time through a
//! table, about five instructions per byte, for text that almost never holds a byte JSON
//! must escape. Here each string is first checked for such a byte in one pass with no early
//! exit (which the compiler turns into vector compares) and, without one, copied as it is;
//! the rare string with one is handed to `serde_json`. Numbers and findings (rare, or cheap)
//! are written by `serde_json` too, so their spelling cannot drift.

use serde::Serialize;
use serde_json::Value;

use super::event::{Actor, Event, Geo, Project, Target};
use super::{Raw, timestamp};

/// Appends `event` as one line of JSON (no newline) to `out`.
pub fn write_event(event: &Event, out: &mut Vec<u8>) {
    let mut o = Object::open(out);
    serde_value(o.key("schema_version"), &event.schema_version);
    o.str("id", &event.id);
    o.str("source", event.source.as_str());
    o.optional("org_id", event.org_id.as_deref());
    o.str("type", &event.event_type);
    o.str("category", &event.category);
    o.str("action", &event.action);
    o.str("outcome", event.outcome.as_str());
    timestamp::write_quoted(&event.occurred_at, o.key("occurred_at"));
    timestamp::write_quoted(&event.ingested_at, o.key("ingested_at"));
    o.nested("actor", event.actor.as_ref(), write_actor);
    o.nested("target", event.target.as_ref(), write_target);
    o.nested("project", event.project.as_ref(), write_project);
    value(o.key("details"), &event.details);
    match event.findings.as_slice() {
        [] => o.key("findings").extend_from_slice(b"[]"),
        findings => serde_value(o.key("findings"), findings),
    }
    match &event.raw {
        Some(Raw::Text { text, .. }) => o.key("raw").extend_from_slice(text.get().as_bytes()),
        Some(Raw::Tree(tree)) => value(o.key("raw"), tree),
        None => {}
    }
    o.close();
}

fn write_actor(actor: &Actor, out: &mut Vec<u8>) {
    let mut o = Object::open(out);
    o.str("type", &actor.actor_type);
    o.optional("id", actor.id.as_deref());
    o.optional("email", actor.email.as_deref());
    o.optional("api_key_id", actor.api_key_id.as_deref());
    o.optional("ip", actor.ip.as_deref());
    o.optional("user_agent", actor.user_agent.as_deref());
    o.nested("geo", actor.geo.as_ref(), write_geo);
    o.close();
}

fn write_geo(geo: &Geo, out: &mut Vec<u8>) {
    let mut o = Object::open(out);
    o.optional("country", geo.country.as_deref());
    o.optional("city", geo.city.as_deref());
    // The derived `Serialize` leaves these out when absent.
    if let Some(region) = &geo.region {
        o.str("region", region);
    }
    if let Some(asn) = &geo.asn {
        o.str("asn", asn);
    }
    if let Some(latitude) = geo.latitude {
        serde_value(o.key("latitude"), &latitude);
    }
    if let Some(longitude) = geo.longitude {
        serde_value(o.key("longitude"), &longitude);
    }
    o.close();
}

fn write_target(target: &Target, out: &mut Vec<u8>) {
    let mut o = Object::open(out);
    o.str("type", &target.target_type);
    o.optional("id", target.id.as_deref());
    o.optional("name", target.name.as_deref());
    o.close();
}

fn write_project(project: &Project, out: &mut Vec<u8>) {
    let mut o = Object::open(out);
    o.optional("id", project.id.as_deref());
    o.optional("name", project.name.as_deref());
    o.close();
}

/// One JSON object being written: its members' keys (plain ASCII, never escaped), the commas
/// between them and its braces.
struct Object<'o> {
    out: &'o mut Vec<u8>,
    empty: bool,
}

impl<'o> Object<'o> {
    fn open(out: &'o mut Vec<u8>) -> Self {
        out.push(b'{');
        Self { out, empty: true }
    }

    /// Writes `"key":` and returns the buffer for the value.
    fn key(&mut self, key: &str) -> &mut Vec<u8> {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    fn str(&mut self, key: &str, value: &str) {
        string(self.key(key), value);
    }

    fn optional(&mut self, key: &str, value: Option<&str>) {
        match value {
            Some(value) => self.str(key, value),
            None => self.key(key).extend_from_slice(b"null"),
        }
    }

    fn nested<T>(&mut self, key: &str, value: Option<&T>, write: fn(&T, &mut Vec<u8>)) {
        match value {
            Some(value) => write(value, self.key(key)),
            None => self.key(key).extend_from_slice(b"null"),
        }
    }

    fn close(self) {
        self.out.push(b'}');
    }
}

/// A JSON value as `serde_json` writes it (maps in their iteration order).
fn value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => serde_value(out, n),
        Value::String(s) => string(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                value(out, item);
            }
            out.push(b']');
        }
        Value::Object(members) => {
            out.push(b'{');
            for (i, (key, item)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                string(out, key);
                out.push(b':');
                value(out, item);
            }
            out.push(b'}');
        }
    }
}

/// A JSON string: copied between quotes when it holds nothing to escape, else `serde_json`'s.
pub fn string(out: &mut Vec<u8>, s: &str) {
    // No early exit: the whole string is scanned, sixteen or more bytes per compare.
    let escape = s
        .bytes()
        .fold(false, |any, b| any | (b < 0x20) | (b == b'"') | (b == b'\\'));
    if escape {
        serde_value(out, s);
    } else {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}

/// `v` as `serde_json` writes it. Writing plain data to memory cannot fail (no maps with
/// non-string keys are written here).
pub fn serde_value<T: Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
    serde_json::to_writer(out, v).expect("plain data is written to memory");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::{Finding, Geo, Outcome, Severity, Source};
    use chrono::DateTime;
    use proptest::prelude::*;
    use serde_json::json;
    use serde_json::value::RawValue;

    fn ours(event: &Event) -> String {
        let mut out = Vec::new();
        write_event(event, &mut out);
        String::from_utf8(out).expect("utf-8")
    }

    fn serdes(event: &Event) -> String {
        serde_json::to_string(event).expect("json")
    }

    fn full() -> Event {
        let at = DateTime::from_timestamp(1_770_000_000, 123_000_000).expect("time");
        let mut e = Event::new(
            "a:1".into(),
            Source::AuditLog,
            Some("org-1".into()),
            "login.failed".into(),
            at,
        );
        e.outcome = Outcome::Failure;
        e.actor = Some(Actor {
            actor_type: "user".into(),
            id: Some("user-\"q\"".into()),
            email: Some("ann@example.com".into()),
            api_key_id: None,
            ip: Some("203.0.113.7".into()),
            user_agent: Some("Mozilla/5.0\t(X11)\u{1}".into()),
            geo: Some(Geo {
                country: Some("DE".into()),
                city: None,
                region: Some("BE".into()),
                asn: None,
                latitude: Some(52.52),
                longitude: Some(13.405),
            }),
        });
        e.target = Some(Target {
            target_type: "project".into(),
            id: Some("proj_1".into()),
            name: Some("Ünïcödé \\ name".into()),
        });
        e.project = Some(Project {
            id: Some("proj_1".into()),
            name: None,
        });
        e.details = json!({"n": 1, "f": 1.5, "neg": -3, "big": u64::MAX, "s": "line\nbreak",
                           "a": [null, true, false, {"k": []}], "é": {}});
        e.findings = vec![Finding {
            rule: "r1".into(),
            severity: Severity::High,
            title: "T".into(),
            message: "M \"quoted\"".into(),
            attack: vec!["T1078".into()],
        }];
        e
    }

    #[test]
    fn an_event_with_every_field_is_written_as_serde_writes_it() {
        let mut e = full();
        assert_eq!(ours(&e), serdes(&e));
        e.raw = Some(Raw::text(
            RawValue::from_string(r#"{"z": 1.50, "a" : "\u00e9"}"#.into()).expect("raw"),
        ));
        assert_eq!(ours(&e), serdes(&e));
        assert!(ours(&e).ends_with(r#","raw":{"z": 1.50, "a" : "\u00e9"}}"#));
        e.raw = Some(Raw::Tree(json!({"id": "x", "list": [1, 2.5]})));
        assert_eq!(ours(&e), serdes(&e));
    }

    #[test]
    fn an_event_with_nothing_optional_is_written_as_serde_writes_it() {
        let at = DateTime::from_timestamp(0, 0).expect("time");
        let e = Event::new("c:2".into(), Source::Compliance, None, "chat.message".into(), at);
        assert_eq!(ours(&e), serdes(&e));
    }

    fn text() -> impl Strategy<Value = String> {
        // Plain text, and text with quotes, backslashes, control bytes and non-ASCII.
        prop_oneof![
            "[a-z0-9_.@-]{0,40}",
            any::<String>(),
            proptest::collection::vec(
                prop_oneof![
                    Just('"'),
                    Just('\\'),
                    Just('\u{0}'),
                    Just('\u{8}'),
                    Just('\t'),
                    Just('\n'),
                    Just('\u{c}'),
                    Just('\r'),
                    Just('\u{1f}'),
                    Just('\u{7f}'),
                    Just('é'),
                    Just('a')
                ],
                0..40
            )
            .prop_map(|cs| cs.into_iter().collect()),
        ]
    }

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<u64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|n| json!(n)),
            text().prop_map(Value::String),
        ]
    }

    fn tree() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map(text(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    prop_compose! {
        fn event()(
            id in text(), org in proptest::option::of(text()), kind in text(),
            secs in -62_000_000_000i64..260_000_000_000, nanos in 0u32..1_000_000_000,
            actor in proptest::option::of((text(), proptest::option::of(text()), proptest::option::of(text()))),
            target in proptest::option::of((text(), proptest::option::of(text()))),
            project in proptest::option::of(proptest::option::of(text())),
            details in tree(), raw in proptest::option::of(tree()), as_text in any::<bool>(),
            geo in proptest::option::of((
                proptest::collection::vec(proptest::option::of(text()), 4),
                proptest::option::of((any::<f64>(), -180.0f64..180.0)),
            )),
        ) -> Event {
            let at = DateTime::from_timestamp(secs, nanos).expect("in range");
            let mut e = Event::new(id, Source::Inventory, org, kind, at);
            let geo = geo.map(|(mut texts, at)| Geo {
                asn: texts.pop().flatten(),
                region: texts.pop().flatten(),
                city: texts.pop().flatten(),
                country: texts.pop().flatten(),
                latitude: at.map(|(lat, _)| lat),
                longitude: at.map(|(_, lon)| lon),
            });
            e.actor = actor.map(|(actor_type, email, ip)| Actor { actor_type, email, ip, geo, ..Actor::default() });
            e.target = target.map(|(target_type, name)| Target { target_type, id: None, name });
            e.project = project.map(|name| Project { id: Some("p".into()), name });
            e.details = details;
            e.raw = raw.map(|tree| if as_text {
                Raw::text(RawValue::from_string(serde_json::to_string_pretty(&tree).expect("json")).expect("raw"))
            } else {
                Raw::Tree(tree)
            });
            e
        }
    }

    proptest! {
        #[test]
        fn any_event_is_written_as_serde_writes_it(e in event()) {
            prop_assert_eq!(ours(&e), serdes(&e));
        }
    }
}
