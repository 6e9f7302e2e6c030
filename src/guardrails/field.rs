//! Fields of a normalized event by dotted path (`actor.geo.country`, `details.data.scopes`,
//! `raw."role.assignment.created".id`): parsed once, read without allocating.

use serde_json::Value;

use crate::normalize::{At, Event, Tree};

/// A field of the normalized event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    Id,
    Source,
    OrgId,
    Type,
    Category,
    Action,
    Outcome,
    ActorType,
    ActorId,
    ActorEmail,
    ActorApiKeyId,
    ActorIp,
    ActorUserAgent,
    ActorCountry,
    ActorCity,
    ActorRegion,
    ActorAsn,
    ActorLatitude,
    ActorLongitude,
    /// The person behind the event: the actor, or for an agent actor the user who delegated
    /// to it (`details.agent.delegator`).
    UserId,
    UserEmail,
    TargetType,
    TargetId,
    TargetName,
    ProjectId,
    ProjectName,
    /// A path inside `details`.
    Details(Vec<String>),
    /// A path inside `raw`, the upstream record.
    Raw(Vec<String>),
}

/// The fixed fields and their paths, for parsing, printing and the error that lists them.
const NAMED: &[(&str, Field)] = &[
    ("id", Field::Id),
    ("source", Field::Source),
    ("org_id", Field::OrgId),
    ("type", Field::Type),
    ("category", Field::Category),
    ("action", Field::Action),
    ("outcome", Field::Outcome),
    ("actor.type", Field::ActorType),
    ("actor.id", Field::ActorId),
    ("actor.email", Field::ActorEmail),
    ("actor.api_key_id", Field::ActorApiKeyId),
    ("actor.ip", Field::ActorIp),
    ("actor.user_agent", Field::ActorUserAgent),
    ("actor.geo.country", Field::ActorCountry),
    ("actor.geo.city", Field::ActorCity),
    ("actor.geo.region", Field::ActorRegion),
    ("actor.geo.asn", Field::ActorAsn),
    ("actor.geo.latitude", Field::ActorLatitude),
    ("actor.geo.longitude", Field::ActorLongitude),
    ("user.id", Field::UserId),
    ("user.email", Field::UserEmail),
    ("target.type", Field::TargetType),
    ("target.id", Field::TargetId),
    ("target.name", Field::TargetName),
    ("project.id", Field::ProjectId),
    ("project.name", Field::ProjectName),
];

/// One value read from an event.
#[derive(Debug, Clone, Copy)]
pub enum Val<'a> {
    Str(&'a str),
    Num(f64),
    Json(&'a Value),
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (root, path) = match self {
            Field::Details(path) => ("details", path),
            Field::Raw(path) => ("raw", path),
            named => {
                let name = NAMED.iter().find(|(_, n)| n == named).map_or("?", |(name, _)| name);
                return f.write_str(name);
            }
        };
        f.write_str(root)?;
        for segment in path {
            if segment.contains('.') {
                write!(f, ".\"{segment}\"")?;
            } else {
                write!(f, ".{segment}")?;
            }
        }
        Ok(())
    }
}

/// Splits a path into segments: `.` separates them, and a segment in double quotes may hold
/// dots (`raw."api_key.created".data`).
fn segments(path: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut rest = path;
    loop {
        let (segment, after) = if let Some(inner) = rest.strip_prefix('"') {
            let close = inner
                .find('"')
                .ok_or_else(|| format!("`{path}` has a `\"` without a closing `\"`"))?;
            (&inner[..close], &inner[close + 1..])
        } else {
            let end = rest.find('.').unwrap_or(rest.len());
            if rest[..end].contains('"') {
                return Err(format!("`{path}`: a `\"` may only open a whole segment"));
            }
            (&rest[..end], &rest[end..])
        };
        if segment.is_empty() {
            return Err(format!("`{path}` has an empty path segment"));
        }
        out.push(segment.to_string());
        if after.is_empty() {
            return Ok(out);
        }
        rest = after
            .strip_prefix('.')
            .ok_or_else(|| format!("`{path}`: a quoted segment must be followed by `.` or the end"))?;
    }
}

impl Field {
    /// Parses a dotted path; the error says which paths exist.
    pub fn parse(path: &str) -> Result<Self, String> {
        if let Some((_, field)) = NAMED.iter().find(|(name, _)| *name == path) {
            return Ok(field.clone());
        }
        let mut segs = segments(path)?;
        let root = segs.remove(0);
        match root.as_str() {
            "details" if !segs.is_empty() && !path.starts_with('"') => Ok(Field::Details(segs)),
            "raw" if !segs.is_empty() && !path.starts_with('"') => Ok(Field::Raw(segs)),
            _ => Err(format!(
                "`{path}` is not a field: use id, source, org_id, type, category, action, outcome, \
                 actor.{{type,id,email,api_key_id,ip,user_agent}}, \
                 actor.geo.{{country,city,region,asn,latitude,longitude}}, user.{{id,email}}, \
                 target.{{type,id,name}}, project.{{id,name}}, details.<path> or raw.<path> \
                 (a segment holding dots in double quotes: raw.\"api_key.created\".id)"
            )),
        }
    }

    /// The field's value in `event`; `None` when absent or null.
    pub fn get<'a>(&self, e: &'a Event) -> Option<Val<'a>> {
        let s = |v: Option<&'a String>| v.map(|s| Val::Str(s.as_str()));
        let actor = e.actor.as_ref();
        let geo = || actor.and_then(|a| a.geo.as_ref());
        // An agent acts for the user who delegated to it; the normalizer keeps that user in
        // `details.agent.delegator`.
        let delegator = |pointer: &str| match e.details.pointer(pointer) {
            Some(Value::String(v)) if !v.is_empty() => Some(Val::Str(v.as_str())),
            _ => None,
        };
        match self {
            Field::Id => Some(Val::Str(&e.id)),
            Field::Source => Some(Val::Str(e.source.as_str())),
            Field::OrgId => s(e.org_id.as_ref()),
            Field::Type => Some(Val::Str(&e.event_type)),
            Field::Category => Some(Val::Str(&e.category)),
            Field::Action => Some(Val::Str(&e.action)),
            Field::Outcome => Some(Val::Str(e.outcome.as_str())),
            Field::ActorType => actor.map(|a| Val::Str(a.actor_type.as_str())),
            Field::ActorId => s(actor.and_then(|a| a.id.as_ref())),
            Field::ActorEmail => s(actor.and_then(|a| a.email.as_ref())),
            Field::ActorApiKeyId => s(actor.and_then(|a| a.api_key_id.as_ref())),
            Field::ActorIp => s(actor.and_then(|a| a.ip.as_ref())),
            Field::ActorUserAgent => s(actor.and_then(|a| a.user_agent.as_ref())),
            Field::ActorCountry => s(geo().and_then(|g| g.country.as_ref())),
            Field::ActorCity => s(geo().and_then(|g| g.city.as_ref())),
            Field::ActorRegion => s(geo().and_then(|g| g.region.as_ref())),
            Field::ActorAsn => s(geo().and_then(|g| g.asn.as_ref())),
            Field::ActorLatitude => geo().and_then(|g| g.latitude).map(Val::Num),
            Field::ActorLongitude => geo().and_then(|g| g.longitude).map(Val::Num),
            Field::UserId => match actor {
                Some(a) if a.actor_type == "agent" => delegator("/agent/delegator/id"),
                _ => s(actor.and_then(|a| a.id.as_ref())),
            },
            Field::UserEmail => match actor {
                Some(a) if a.actor_type == "agent" => delegator("/agent/delegator/email"),
                _ => s(actor.and_then(|a| a.email.as_ref())),
            },
            Field::TargetType => e.target.as_ref().map(|t| Val::Str(t.target_type.as_str())),
            Field::TargetId => s(e.target.as_ref().and_then(|t| t.id.as_ref())),
            Field::TargetName => s(e.target.as_ref().and_then(|t| t.name.as_ref())),
            Field::ProjectId => s(e.project.as_ref().and_then(|p| p.id.as_ref())),
            Field::ProjectName => s(e.project.as_ref().and_then(|p| p.name.as_ref())),
            Field::Details(path) => walk(&e.details, path),
            Field::Raw(path) => e.raw.as_ref().and_then(|raw| match raw.tape() {
                // A string read off the tape; anything else from the tree.
                Some(root) => match walk_tape(root, path) {
                    Some(Ok(s)) => Some(Val::Str(s)),
                    Some(Err(())) => walk(raw.tree(), path),
                    None => None,
                },
                None => walk(raw.tree(), path),
            }),
        }
    }
}

/// The string at `path` on a tape (`Ok`), `Err` for anything else there but null, `None` when
/// nothing (or null) is there.
fn walk_tape<'a>(root: At<'a>, path: &[String]) -> Option<Result<&'a str, ()>> {
    let v = root.at_path(path).filter(|v| !v.is_null())?;
    Some(v.as_str().ok_or(()))
}

fn walk<'a>(root: &'a Value, path: &[String]) -> Option<Val<'a>> {
    root.at_path(path).filter(|v| !v.is_null()).map(Val::Json)
}

impl Val<'_> {
    /// Text form for grouping and messages: strings as they are, numbers and booleans
    /// printed, anything else as compact JSON.
    pub fn text(&self) -> String {
        let mut out = String::new();
        self.push_to(&mut out);
        out
    }

    /// Appends the text form to `out` (no allocation for strings).
    pub fn push_to(&self, out: &mut String) {
        match self {
            Val::Str(s) => out.push_str(s),
            Val::Json(Value::String(s)) => out.push_str(s),
            Val::Num(n) => out.push_str(&n.to_string()),
            Val::Json(other) => out.push_str(&other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::{Actor, Raw, Source};
    use crate::openai::wire::JsonText;
    use chrono::Utc;
    use serde_json::json;

    /// A record read as a tape answers every `raw.…` field as its tree does: strings off the
    /// tape, anything else from the tree built for it.
    #[test]
    fn raw_fields_read_off_a_tape_as_off_a_tree() {
        let text = r#"{"a": {"s": "v\u00e9", "n": 3, "b": true, "z": null, "l": ["x", {"y": "w"}], "o": {"k": 1}}}"#;
        let tape = crate::normalize::tape(text).expect("tape");
        let event = |raw: Raw| {
            let mut e = Event::new("x".into(), Source::Compliance, None, "AUTH_LOG".into(), Utc::now());
            e.raw = Some(raw);
            e
        };
        let taped = || event(Raw::taped(JsonText::parsed(text.into()), tape.clone()));
        let strings = taped();
        assert_eq!(
            Field::parse("raw.a.l.1.y")
                .expect("field")
                .get(&strings)
                .map(|v| v.text())
                .as_deref(),
            Some("w")
        );
        assert!(
            strings.raw.as_ref().is_some_and(|r| r.tape().is_some()),
            "a string is read without a tree"
        );
        let taped = taped();
        let tree = event(Raw::from(serde_json::from_str::<Value>(text).expect("json")));
        for path in [
            "a.s",
            "a.n",
            "a.b",
            "a.z",
            "a.l",
            "a.l.0",
            "a.l.1.y",
            "a.l.2",
            "a.o",
            "a.o.k",
            "a.missing",
            "a.s.x",
        ] {
            let field = Field::parse(&format!("raw.{path}")).expect("field");
            let (off_tape, off_tree) = (field.get(&taped).map(|v| v.text()), field.get(&tree).map(|v| v.text()));
            assert_eq!(off_tape, off_tree, "raw.{path}");
        }
        assert_eq!(
            Field::parse("raw.a.s")
                .expect("field")
                .get(&taped)
                .map(|v| v.text())
                .as_deref(),
            Some("vé")
        );
    }

    #[test]
    fn a_quoted_segment_names_a_key_that_holds_dots() {
        let field = Field::parse(r#"raw."role.assignment.created".id"#).expect("field");
        assert_eq!(field, Field::Raw(vec!["role.assignment.created".into(), "id".into()]));
        assert_eq!(field.to_string(), r#"raw."role.assignment.created".id"#);
        let mut e = Event::new(
            "x".into(),
            Source::AuditLog,
            None,
            "role.assignment.created".into(),
            Utc::now(),
        );
        e.raw = Some(
            json!({"role.assignment.created": {"id": "ra_1"}, "role": {"assignment": {"created": {"id": "no"}}}})
                .into(),
        );
        assert_eq!(field.get(&e).map(|v| v.text()).as_deref(), Some("ra_1"));
        let plain = Field::parse("raw.role.assignment.created.id").expect("field");
        assert_eq!(plain.get(&e).map(|v| v.text()).as_deref(), Some("no"));
        // A `/` needs no quoting: only `.` separates.
        assert_eq!(
            Field::parse("raw.input._meta.openai/userAgent"),
            Ok(Field::Raw(vec![
                "input".into(),
                "_meta".into(),
                "openai/userAgent".into()
            ]))
        );
    }

    #[test]
    fn malformed_paths_and_unknown_top_level_fields_are_refused() {
        for bad in [
            "actor.nickname",
            "details..x",
            r#"raw."open"#,
            r#"raw."a"b"#,
            r#"raw.a"b""#,
            "raw",
            r#""details".x"#,
        ] {
            assert!(Field::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Field::parse("raw.a.b"), Ok(Field::Raw(vec!["a".into(), "b".into()])));
    }

    #[test]
    fn the_user_of_an_agent_event_is_its_delegator() {
        let mut e = Event::new(
            "x".into(),
            Source::Compliance,
            None,
            "CUSTOM_AGENTS_LOG".into(),
            Utc::now(),
        );
        e.actor = Some(Actor {
            actor_type: "agent".into(),
            id: Some("agent-harness-77".into()),
            ..Actor::default()
        });
        e.details = json!({"agent": {"delegator": {"id": "user-1", "email": "dana@example.net"}}});
        let text = |e: &Event, path: &str| Field::parse(path).expect("field").get(e).map(|v| v.text());
        assert_eq!(text(&e, "user.email").as_deref(), Some("dana@example.net"));
        assert_eq!(text(&e, "user.id").as_deref(), Some("user-1"));
        assert_eq!(text(&e, "actor.id").as_deref(), Some("agent-harness-77"));
        e.actor = Some(Actor {
            actor_type: "user".into(),
            id: Some("user-2".into()),
            email: Some("eli@example.net".into()),
            ..Actor::default()
        });
        assert_eq!(text(&e, "user.email").as_deref(), Some("eli@example.net"));
        assert_eq!(text(&e, "user.id").as_deref(), Some("user-2"));
    }
}
