//! Field access by dotted path over a normalized event, and the conditions a rule tests
//! against those fields. Paths and conditions are compiled once; matching allocates nothing.

use std::collections::HashSet;
use std::sync::Arc;

use regex::Regex;
use serde_json::Value;

use crate::normalize::{Event, Outcome};

/// A field of the normalized event, by its dotted path (`actor.geo.country`,
/// `details.data.scopes`, `raw.action_data.action`).
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

/// One value read from an event.
#[derive(Debug, Clone, Copy)]
pub enum Val<'a> {
    Str(&'a str),
    Json(&'a Value),
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            Field::Id => "id",
            Field::Source => "source",
            Field::OrgId => "org_id",
            Field::Type => "type",
            Field::Category => "category",
            Field::Action => "action",
            Field::Outcome => "outcome",
            Field::ActorType => "actor.type",
            Field::ActorId => "actor.id",
            Field::ActorEmail => "actor.email",
            Field::ActorApiKeyId => "actor.api_key_id",
            Field::ActorIp => "actor.ip",
            Field::ActorUserAgent => "actor.user_agent",
            Field::ActorCountry => "actor.geo.country",
            Field::ActorCity => "actor.geo.city",
            Field::TargetType => "target.type",
            Field::TargetId => "target.id",
            Field::TargetName => "target.name",
            Field::ProjectId => "project.id",
            Field::ProjectName => "project.name",
            Field::Details(path) => return write!(f, "details.{}", path.join(".")),
            Field::Raw(path) => return write!(f, "raw.{}", path.join(".")),
        };
        f.write_str(name)
    }
}

impl Field {
    /// Parses a dotted path; the error says which paths exist.
    pub fn parse(path: &str) -> Result<Self, String> {
        let field = match path {
            "id" => Field::Id,
            "source" => Field::Source,
            "org_id" => Field::OrgId,
            "type" => Field::Type,
            "category" => Field::Category,
            "action" => Field::Action,
            "outcome" => Field::Outcome,
            "actor.type" => Field::ActorType,
            "actor.id" => Field::ActorId,
            "actor.email" => Field::ActorEmail,
            "actor.api_key_id" => Field::ActorApiKeyId,
            "actor.ip" => Field::ActorIp,
            "actor.user_agent" => Field::ActorUserAgent,
            "actor.geo.country" => Field::ActorCountry,
            "actor.geo.city" => Field::ActorCity,
            "target.type" => Field::TargetType,
            "target.id" => Field::TargetId,
            "target.name" => Field::TargetName,
            "project.id" => Field::ProjectId,
            "project.name" => Field::ProjectName,
            _ => {
                let segments = |rest: &str| -> Result<Vec<String>, String> {
                    let segs: Vec<String> = rest.split('.').map(str::to_string).collect();
                    if segs.iter().any(String::is_empty) {
                        return Err(format!("`{path}` has an empty path segment"));
                    }
                    Ok(segs)
                };
                if let Some(rest) = path.strip_prefix("details.") {
                    Field::Details(segments(rest)?)
                } else if let Some(rest) = path.strip_prefix("raw.") {
                    Field::Raw(segments(rest)?)
                } else {
                    return Err(format!(
                        "`{path}` is not a field: use id, source, org_id, type, category, action, outcome, \
                         actor.{{type,id,email,api_key_id,ip,user_agent,geo.country,geo.city}}, \
                         target.{{type,id,name}}, project.{{id,name}}, details.<path> or raw.<path>"
                    ));
                }
            }
        };
        Ok(field)
    }

    /// The field's value in `event`; `None` when absent or null.
    pub fn get<'a>(&self, e: &'a Event) -> Option<Val<'a>> {
        let s = |v: Option<&'a String>| v.map(|s| Val::Str(s.as_str()));
        let actor = e.actor.as_ref();
        match self {
            Field::Id => Some(Val::Str(&e.id)),
            Field::Source => Some(Val::Str(e.source.as_str())),
            Field::OrgId => s(e.org_id.as_ref()),
            Field::Type => Some(Val::Str(&e.event_type)),
            Field::Category => Some(Val::Str(&e.category)),
            Field::Action => Some(Val::Str(&e.action)),
            Field::Outcome => Some(Val::Str(match e.outcome {
                Outcome::Success => "success",
                Outcome::Failure => "failure",
                Outcome::Unknown => "unknown",
            })),
            Field::ActorType => actor.map(|a| Val::Str(a.actor_type.as_str())),
            Field::ActorId => s(actor.and_then(|a| a.id.as_ref())),
            Field::ActorEmail => s(actor.and_then(|a| a.email.as_ref())),
            Field::ActorApiKeyId => s(actor.and_then(|a| a.api_key_id.as_ref())),
            Field::ActorIp => s(actor.and_then(|a| a.ip.as_ref())),
            Field::ActorUserAgent => s(actor.and_then(|a| a.user_agent.as_ref())),
            Field::ActorCountry => s(actor.and_then(|a| a.geo.as_ref()).and_then(|g| g.country.as_ref())),
            Field::ActorCity => s(actor.and_then(|a| a.geo.as_ref()).and_then(|g| g.city.as_ref())),
            Field::TargetType => e.target.as_ref().map(|t| Val::Str(t.target_type.as_str())),
            Field::TargetId => s(e.target.as_ref().and_then(|t| t.id.as_ref())),
            Field::TargetName => s(e.target.as_ref().and_then(|t| t.name.as_ref())),
            Field::ProjectId => s(e.project.as_ref().and_then(|p| p.id.as_ref())),
            Field::ProjectName => s(e.project.as_ref().and_then(|p| p.name.as_ref())),
            Field::Details(path) => walk(&e.details, path),
            Field::Raw(path) => e.raw.as_ref().and_then(|raw| walk(raw, path)),
        }
    }
}

fn walk<'a>(mut v: &'a Value, path: &[String]) -> Option<Val<'a>> {
    for seg in path {
        v = match v {
            Value::Object(map) => map.get(seg)?,
            Value::Array(items) => items.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    (!v.is_null()).then_some(Val::Json(v))
}

impl Val<'_> {
    /// Text form for grouping and messages: strings as they are, numbers and booleans
    /// printed, anything else as compact JSON.
    pub fn text(&self) -> String {
        match self {
            Val::Str(s) => (*s).to_string(),
            Val::Json(Value::String(s)) => s.clone(),
            Val::Json(other) => other.to_string(),
        }
    }

    /// Calls `f` on each scalar: the value itself, or each element of an array.
    fn any_scalar(&self, mut f: impl FnMut(Scalar<'_>) -> bool) -> bool {
        match self {
            Val::Str(s) => f(Scalar::Str(s)),
            Val::Json(Value::Array(items)) => items.iter().any(|v| scalar(v).is_some_and(&mut f)),
            Val::Json(v) => scalar(v).is_some_and(f),
        }
    }
}

#[derive(Clone, Copy)]
enum Scalar<'a> {
    Str(&'a str),
    Num(f64),
    Bool(bool),
}

fn scalar(v: &Value) -> Option<Scalar<'_>> {
    match v {
        Value::String(s) => Some(Scalar::Str(s)),
        Value::Number(n) => n.as_f64().map(Scalar::Num),
        Value::Bool(b) => Some(Scalar::Bool(*b)),
        _ => None,
    }
}

/// A literal a rule compares with.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    Num(f64),
    Bool(bool),
}

impl Literal {
    fn eq(&self, s: Scalar<'_>) -> bool {
        match (self, s) {
            (Literal::Str(a), Scalar::Str(b)) => a == b,
            (Literal::Num(a), Scalar::Num(b)) => a == &b,
            (Literal::Num(a), Scalar::Str(b)) => b.trim().parse::<f64>().is_ok_and(|b| *a == b),
            (Literal::Bool(a), Scalar::Bool(b)) => *a == b,
            _ => false,
        }
    }
}

/// Numeric comparisons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Gt,
    Gte,
    Lt,
    Lte,
}

/// What a condition checks about one field.
#[derive(Debug, Clone)]
pub enum Test {
    Equals(Literal),
    In(Vec<Literal>),
    NotIn(Vec<Literal>),
    Regex(Regex),
    Exists(bool),
    Compare(Cmp, f64),
    /// Case-insensitive membership in a named operator list (`key_admins`).
    InSet(Arc<HashSet<String>>),
    NotInSet(Arc<HashSet<String>>),
}

/// One field, one test. For an array field, positive tests pass when any element passes and
/// negative tests (`not_in`, `not_in_set`) when no element fails them; an absent field fails
/// positive tests and passes negative ones.
#[derive(Debug, Clone)]
pub struct Condition {
    pub field: Field,
    pub test: Test,
}

impl Condition {
    /// Whether `event` satisfies this condition.
    pub fn matches(&self, event: &Event) -> bool {
        let value = self.field.get(event);
        match &self.test {
            // An empty list or string says as little as an absent one.
            Test::Exists(want) => {
                let present = match value {
                    None => false,
                    Some(Val::Str(s)) => !s.is_empty(),
                    Some(Val::Json(Value::Array(a))) => !a.is_empty(),
                    Some(Val::Json(Value::String(s))) => !s.is_empty(),
                    Some(Val::Json(_)) => true,
                };
                present == *want
            }
            Test::Equals(lit) => value.is_some_and(|v| v.any_scalar(|s| lit.eq(s))),
            Test::In(lits) => value.is_some_and(|v| v.any_scalar(|s| lits.iter().any(|l| l.eq(s)))),
            Test::NotIn(lits) => !value.is_some_and(|v| v.any_scalar(|s| lits.iter().any(|l| l.eq(s)))),
            Test::Regex(re) => value.is_some_and(|v| {
                v.any_scalar(|s| match s {
                    Scalar::Str(s) => re.is_match(s),
                    Scalar::Num(n) => re.is_match(&n.to_string()),
                    Scalar::Bool(b) => re.is_match(if b { "true" } else { "false" }),
                })
            }),
            Test::Compare(cmp, bound) => value.is_some_and(|v| {
                v.any_scalar(|s| {
                    let n = match s {
                        Scalar::Num(n) => n,
                        Scalar::Str(s) => match s.trim().parse::<f64>() {
                            Ok(n) => n,
                            Err(_) => return false,
                        },
                        Scalar::Bool(_) => return false,
                    };
                    match cmp {
                        Cmp::Gt => n > *bound,
                        Cmp::Gte => n >= *bound,
                        Cmp::Lt => n < *bound,
                        Cmp::Lte => n <= *bound,
                    }
                })
            }),
            Test::InSet(set) => value.is_some_and(|v| v.any_scalar(|s| in_set(set, s))),
            Test::NotInSet(set) => !value.is_some_and(|v| v.any_scalar(|s| in_set(set, s))),
        }
    }
}

fn in_set(set: &HashSet<String>, s: Scalar<'_>) -> bool {
    match s {
        // Entries are stored lowercase; comparing without allocating in the common case.
        Scalar::Str(s) if s.bytes().any(|b| b.is_ascii_uppercase()) => set.contains(&s.to_ascii_lowercase()),
        Scalar::Str(s) => set.contains(s),
        _ => false,
    }
}

/// Conditions that must all hold, plus alternatives of which at least one must hold
/// entirely (when there are any).
#[derive(Debug, Clone, Default)]
pub struct Predicate {
    pub all: Vec<Condition>,
    pub any: Vec<Vec<Condition>>,
}

impl Predicate {
    /// Whether `event` satisfies the predicate.
    pub fn matches(&self, event: &Event) -> bool {
        self.all.iter().all(|c| c.matches(event))
            && (self.any.is_empty() || self.any.iter().any(|alt| alt.iter().all(|c| c.matches(event))))
    }

    /// The event types this predicate can match, when it pins them down (an `equals` or `in`
    /// on `type` in `all`, or in every alternative): lets the engine skip it for other types.
    pub fn types(&self) -> Option<Vec<String>> {
        if let Some(types) = types_of(&self.all) {
            return Some(types);
        }
        if self.any.is_empty() {
            return None;
        }
        let mut out = Vec::new();
        for alt in &self.any {
            out.extend(types_of(alt)?);
        }
        Some(out)
    }

    /// Whether the predicate has no conditions at all.
    pub fn is_empty(&self) -> bool {
        self.all.is_empty() && self.any.is_empty()
    }
}

fn types_of(conditions: &[Condition]) -> Option<Vec<String>> {
    conditions.iter().find_map(|c| match (&c.field, &c.test) {
        (Field::Type, Test::Equals(Literal::Str(t))) => Some(vec![t.clone()]),
        (Field::Type, Test::In(lits)) => lits
            .iter()
            .map(|l| match l {
                Literal::Str(t) => Some(t.clone()),
                _ => None,
            })
            .collect(),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::{Actor, Source};
    use chrono::Utc;
    use serde_json::json;

    fn event() -> Event {
        let mut e = Event::new(
            "x:1".into(),
            Source::AuditLog,
            None,
            "api_key.created".into(),
            Utc::now(),
        );
        e.details = json!({"data": {"scopes": ["api.model.request", "api.files.write"], "n": 7}});
        e.actor = Some(Actor {
            actor_type: "user".into(),
            email: Some("Ann@Example.com".into()),
            ..Actor::default()
        });
        e
    }

    fn cond(path: &str, test: Test) -> Condition {
        Condition {
            field: Field::parse(path).expect("field"),
            test,
        }
    }

    #[test]
    fn array_fields_match_when_any_element_does_and_not_in_when_none_does() {
        let e = event();
        let scopes = "details.data.scopes";
        assert!(cond(scopes, Test::Equals(Literal::Str("api.files.write".into()))).matches(&e));
        assert!(cond(scopes, Test::Regex(Regex::new(r"\.write$").expect("re"))).matches(&e));
        assert!(!cond(scopes, Test::NotIn(vec![Literal::Str("api.files.write".into())])).matches(&e));
        assert!(cond(scopes, Test::NotIn(vec![Literal::Str("api.all".into())])).matches(&e));
    }

    #[test]
    fn absent_fields_fail_positive_tests_and_pass_negative_ones() {
        let e = event();
        let missing = "raw.nothing";
        assert!(!cond(missing, Test::Equals(Literal::Str("a".into()))).matches(&e));
        assert!(cond(missing, Test::NotIn(vec![Literal::Str("a".into())])).matches(&e));
        assert!(cond(missing, Test::Exists(false)).matches(&e));
        assert!(!cond("actor.ip", Test::Exists(true)).matches(&e));
    }

    #[test]
    fn numeric_comparisons_and_case_insensitive_sets() {
        let e = event();
        assert!(cond("details.data.n", Test::Compare(Cmp::Gte, 7.0)).matches(&e));
        assert!(!cond("details.data.n", Test::Compare(Cmp::Gt, 7.0)).matches(&e));
        let set = Arc::new(HashSet::from(["ann@example.com".to_string()]));
        assert!(cond("actor.email", Test::InSet(Arc::clone(&set))).matches(&e));
        assert!(!cond("actor.email", Test::NotInSet(set)).matches(&e));
    }

    #[test]
    fn unknown_top_level_fields_are_refused() {
        assert!(Field::parse("actor.nickname").is_err());
        assert!(Field::parse("details..x").is_err());
        assert_eq!(Field::parse("raw.a.b"), Ok(Field::Raw(vec!["a".into(), "b".into()])));
    }
}
