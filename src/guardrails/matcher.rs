//! The conditions a rule tests against an event's fields ([`super::field`]). Conditions are
//! compiled once; matching allocates nothing.

use std::collections::HashSet;
use std::sync::Arc;

use regex::Regex;
use serde_json::Value;

pub use super::field::{Field, Val};
use crate::normalize::Event;

/// Calls `f` on each scalar of a value: the value itself, or each element of an array.
fn any_scalar(v: &Val<'_>, mut f: impl FnMut(Scalar<'_>) -> bool) -> bool {
    match v {
        Val::Str(s) => f(Scalar::Str(s)),
        Val::Num(n) => f(Scalar::Num(*n)),
        Val::Json(Value::Array(items)) => items.iter().any(|v| scalar(v).is_some_and(&mut f)),
        Val::Json(v) => scalar(v).is_some_and(f),
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
    /// No scalar matches (Rust's `regex` has no look-around to say "does not contain").
    NotRegex(Regex),
    Exists(bool),
    Compare(Cmp, f64),
    /// Case-insensitive membership in a named operator list (`key_admins`).
    InSet(Arc<HashSet<String>>),
    NotInSet(Arc<HashSet<String>>),
}

/// One field, one test. For an array field, positive tests pass when any element passes and
/// negative tests (`not_in`, `not_regex`, `not_in_set`) when no element fails them; an absent
/// field fails positive tests and passes negative ones.
#[derive(Debug, Clone)]
pub struct Condition {
    pub field: Field,
    pub test: Test,
}

impl Condition {
    /// What testing this condition roughly costs: a named field is a read, `details.…` a walk
    /// of the details tree, `raw.…` may parse the whole upstream record (the first time any
    /// rule asks); a regex costs more than a comparison.
    fn cost(&self) -> u8 {
        let field = match self.field {
            Field::Raw(_) => 4,
            Field::Details(_) => 2,
            _ => 0,
        };
        field + u8::from(matches!(self.test, Test::Regex(_) | Test::NotRegex(_)))
    }

    /// Whether `event` satisfies this condition.
    pub fn matches(&self, event: &Event) -> bool {
        let value = self.field.get(event);
        match &self.test {
            // An empty list or string says as little as an absent one.
            Test::Exists(want) => {
                let present = match value {
                    None => false,
                    Some(Val::Str(s)) => !s.is_empty(),
                    Some(Val::Num(_)) => true,
                    Some(Val::Json(Value::Array(a))) => !a.is_empty(),
                    Some(Val::Json(Value::String(s))) => !s.is_empty(),
                    Some(Val::Json(_)) => true,
                };
                present == *want
            }
            Test::Equals(lit) => value.is_some_and(|v| any_scalar(&v, |s| lit.eq(s))),
            Test::In(lits) => value.is_some_and(|v| any_scalar(&v, |s| lits.iter().any(|l| l.eq(s)))),
            Test::NotIn(lits) => !value.is_some_and(|v| any_scalar(&v, |s| lits.iter().any(|l| l.eq(s)))),
            Test::Regex(re) => value.is_some_and(|v| any_scalar(&v, |s| regex_matches(re, s))),
            Test::NotRegex(re) => !value.is_some_and(|v| any_scalar(&v, |s| regex_matches(re, s))),
            Test::Compare(cmp, bound) => value.is_some_and(|v| {
                any_scalar(&v, |s| {
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
            Test::InSet(set) => value.is_some_and(|v| any_scalar(&v, |s| in_set(set, s))),
            Test::NotInSet(set) => !value.is_some_and(|v| any_scalar(&v, |s| in_set(set, s))),
        }
    }
}

fn regex_matches(re: &Regex, s: Scalar<'_>) -> bool {
    match s {
        Scalar::Str(s) => re.is_match(s),
        Scalar::Num(n) => re.is_match(&n.to_string()),
        Scalar::Bool(b) => re.is_match(if b { "true" } else { "false" }),
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
    /// A predicate whose conditions are tested cheapest first. Every condition of a list must
    /// hold, so their order changes the cost, never the answer: an event of another source or
    /// outcome is turned away before its `raw` is parsed (a rule file's table comes in
    /// alphabetical order, where `raw.…` precedes `source` and `type`).
    pub fn new(mut all: Vec<Condition>, mut any: Vec<Vec<Condition>>) -> Self {
        all.sort_by_key(Condition::cost);
        for alternative in &mut any {
            alternative.sort_by_key(Condition::cost);
        }
        Self { all, any }
    }

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
    fn not_regex_passes_when_no_element_matches_or_the_field_is_absent() {
        let e = event();
        let scopes = "details.data.scopes";
        let re = |p: &str| Regex::new(p).expect("re");
        assert!(!cond(scopes, Test::NotRegex(re(r"\.write$"))).matches(&e));
        assert!(cond(scopes, Test::NotRegex(re(r"(?i)admin"))).matches(&e));
        assert!(cond("raw.nothing", Test::NotRegex(re("."))).matches(&e));
        assert!(!cond("actor.email", Test::NotRegex(re("(?i)@example"))).matches(&e));
    }

    #[test]
    fn a_predicate_turns_an_event_away_on_cheap_fields_before_it_parses_raw() {
        let mut e = event();
        e.raw = Some(crate::normalize::Raw::text(
            serde_json::value::RawValue::from_string(r#"{"role": "owner"}"#.into()).expect("json"),
        ));
        // As a rule file lists them: alphabetical, `raw.…` before `source`.
        let owner = || cond("raw.role", Test::Equals(Literal::Str("owner".into())));
        let inventory = || cond("source", Test::Equals(Literal::Str("openai.inventory".into())));
        let predicate = Predicate::new(vec![owner(), inventory()], vec![vec![owner(), inventory()]]);
        assert!(!predicate.matches(&e), "an audit-log event is not from the inventory");
        assert!(
            !e.raw.as_ref().expect("raw").is_parsed(),
            "the source told; the record was not parsed"
        );
        e.source = Source::Inventory;
        assert!(predicate.matches(&e), "same answer as in the written order");
        assert!(e.raw.as_ref().expect("raw").is_parsed());
    }
}
