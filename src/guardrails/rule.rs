//! The rule model and its TOML form: parsing and validation of the built-in pack and the
//! operator's rule file into compiled [`Rule`]s. Every error names the rule id and the field.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use regex::Regex;
use serde::Deserialize;

use super::detect::Detectors;
use super::matcher::{Cmp, Condition, Field, Literal, Predicate, Test};
use super::reconcile::Check;
use crate::normalize::Severity;
use strum::VariantNames;

/// The built-in pack, embedded.
pub const BUILT_IN: &str = include_str!("builtin.toml");

/// A rule file or rule that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: rule `{rule}`: `{field}`: {problem}")]
pub struct RuleError {
    /// `built-in pack` or the rule file's path.
    pub origin: String,
    /// The rule's id (`?` when the id itself is missing).
    pub rule: String,
    /// The field inside the rule (`threshold.window`, `match.actor.email`).
    pub field: String,
    pub problem: String,
}

/// What a rule does beyond matching one event.
#[derive(Debug, Clone)]
pub enum RuleKind {
    /// Every matching event gets a finding.
    Single,
    /// `count` matching events (or `count` distinct values of `distinct`) for one group
    /// within `window`.
    Threshold {
        group_by: Vec<Field>,
        count: usize,
        distinct: Option<Field>,
        window: Duration,
    },
    /// `first_count` events matching `first`, then one matching `then`, for one group within
    /// `window`.
    Sequence {
        group_by: Vec<Field>,
        window: Duration,
        first: Predicate,
        first_count: usize,
        then: Predicate,
    },
    /// A value of `value` never seen before for the group. With `baseline`, the earliest
    /// value seen for a group is its baseline, not a finding; without, it is reported too.
    FirstSeen {
        group_by: Vec<Field>,
        value: Field,
        retain: Duration,
        baseline: bool,
    },
    /// The inventory reconciled against the audit log (see `reconcile`).
    Reconcile { check: Check, grace: Duration },
    /// Content detectors over message and tool-call text; `None` means all of them.
    Content { detectors: Option<HashSet<String>> },
}

/// A piece of a message template.
#[derive(Debug, Clone)]
pub enum Piece {
    Text(String),
    Field(Field),
}

/// One compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    /// `{dotted.path}` placeholders are filled from the event.
    pub message: Vec<Piece>,
    pub predicate: Predicate,
    pub kind: RuleKind,
}

impl Rule {
    /// Whether the rule keeps state across events.
    pub fn is_stateful(&self) -> bool {
        matches!(
            self.kind,
            RuleKind::Threshold { .. }
                | RuleKind::Sequence { .. }
                | RuleKind::FirstSeen { .. }
                | RuleKind::Reconcile { .. }
        )
    }

    /// Event types the rule can fire on, when known, for the engine's index.
    pub fn types(&self) -> Option<Vec<String>> {
        if let Some(t) = self.predicate.types() {
            return Some(t);
        }
        match &self.kind {
            RuleKind::Sequence { first, then, .. } => {
                let mut t = first.types()?;
                t.extend(then.types()?);
                Some(t)
            }
            _ => None,
        }
    }
}

/// Operator inputs a rule set is built from (the `[guardrails]` section).
#[derive(Debug, Clone, Default)]
pub struct Inputs<'a> {
    pub rules_file: Option<&'a Path>,
    pub disabled_rules: &'a [String],
    pub key_admins: &'a [String],
    pub custom_patterns: &'a [(String, String)],
}

/// The active rules and the detectors they use.
#[derive(Debug, Clone)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
    pub detectors: Detectors,
    /// Rules switched off because a list they consult is empty, with the reason.
    pub inactive: Vec<(String, String)>,
}

/// Either a bad rule or a bad `[guardrails]` key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleSetError {
    #[error(transparent)]
    Rule(#[from] RuleError),
    #[error("`{key}`: {problem}")]
    Input { key: String, problem: String },
}

impl RuleSet {
    /// The built-in pack minus `disabled_rules`, then the rule file (whose rules replace
    /// built-in rules of the same id).
    pub fn build(inputs: &Inputs<'_>) -> Result<Self, RuleSetError> {
        let detectors = Detectors::new(inputs.custom_patterns).map_err(|(name, e)| RuleSetError::Input {
            key: format!("guardrails.custom_patterns.{name}"),
            problem: format!("not a valid regular expression: {e}"),
        })?;
        let key_admins: HashSet<String> = inputs
            .key_admins
            .iter()
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect();
        let sets = Sets {
            key_admins: Arc::new(key_admins),
        };
        let mut rules = parse("built-in pack", BUILT_IN, &sets, &detectors)?;
        if let Some(path) = inputs.rules_file {
            let text = std::fs::read_to_string(path).map_err(|e| RuleSetError::Input {
                key: "guardrails.rules_file".into(),
                problem: format!("cannot read `{}`: {e}", path.display()),
            })?;
            for rule in parse(&path.display().to_string(), &text, &sets, &detectors)? {
                match rules.iter_mut().find(|r| r.0.id == rule.0.id) {
                    Some(existing) => *existing = rule,
                    None => rules.push(rule),
                }
            }
        }
        for id in inputs.disabled_rules {
            if !rules.iter().any(|(r, _)| &r.id == id) {
                return Err(RuleSetError::Input {
                    key: "guardrails.disabled_rules".into(),
                    problem: format!("`{id}` is not the id of a built-in or file rule"),
                });
            }
        }
        let mut active = Vec::new();
        let mut inactive = Vec::new();
        for (rule, needs) in rules {
            if inputs.disabled_rules.contains(&rule.id) {
                continue;
            }
            match needs {
                Some(set) if sets.get(&set).is_some_and(|s| s.is_empty()) => {
                    inactive.push((rule.id, format!("guardrails.{set} is empty")));
                }
                _ => active.push(rule),
            }
        }
        Ok(Self {
            rules: active,
            detectors,
            inactive,
        })
    }
}

struct Sets {
    key_admins: Arc<HashSet<String>>,
}

impl Sets {
    fn get(&self, name: &str) -> Option<&Arc<HashSet<String>>> {
        match name {
            "key_admins" => Some(&self.key_admins),
            _ => None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    rule: Vec<toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: String,
    title: String,
    severity: Severity,
    #[serde(default)]
    message: Option<String>,
    #[serde(default, rename = "match")]
    match_: toml::Table,
    #[serde(default)]
    any: Vec<toml::Table>,
    #[serde(default)]
    threshold: Option<RawThreshold>,
    #[serde(default)]
    sequence: Option<RawSequence>,
    #[serde(default)]
    first_seen: Option<RawFirstSeen>,
    #[serde(default)]
    content: Option<RawContent>,
    #[serde(default)]
    reconcile: Option<RawReconcile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawThreshold {
    group_by: OneOrMany,
    count: usize,
    #[serde(default)]
    distinct: Option<String>,
    window: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSequence {
    group_by: OneOrMany,
    window: String,
    first: RawStep,
    then: RawStep,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    #[serde(default, rename = "match")]
    match_: toml::Table,
    #[serde(default)]
    any: Vec<toml::Table>,
    #[serde(default)]
    count: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFirstSeen {
    group_by: OneOrMany,
    value: String,
    #[serde(default)]
    retain: Option<String>,
    #[serde(default)]
    baseline: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReconcile {
    check: String,
    #[serde(default)]
    grace: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContent {
    #[serde(default)]
    detectors: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// How long a reconciliation waits for the other stream when a rule does not say.
const DEFAULT_GRACE: Duration = Duration::from_secs(30 * 60);
/// How long first-seen values are kept when a rule does not say.
const DEFAULT_RETAIN: Duration = Duration::from_secs(90 * 86_400);
/// Bounds that keep one rule's state small however the rule is written.
const MAX_COUNT: usize = 1000;
const MAX_WINDOW: Duration = Duration::from_secs(31 * 86_400);

/// Rules and, for each, the operator list it depends on (inactive while that list is empty).
fn parse(
    origin: &str,
    text: &str,
    sets: &Sets,
    detectors: &Detectors,
) -> Result<Vec<(Rule, Option<String>)>, RuleError> {
    let err = |rule: &str, field: &str, problem: String| RuleError {
        origin: origin.to_string(),
        rule: rule.to_string(),
        field: field.to_string(),
        problem,
    };
    let file: RawFile = toml::from_str(text).map_err(|e| err("?", "rule", format!("not a valid rule file: {e}")))?;
    let mut out: Vec<(Rule, Option<String>)> = Vec::new();
    let mut ids = HashMap::new();
    for (index, value) in file.rule.into_iter().enumerate() {
        let id = value
            .get("id")
            .and_then(toml::Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| err(&format!("#{}", index + 1), "id", "is missing or not a string".into()))?;
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.'))
        {
            return Err(err(
                &id,
                "id",
                "must be lowercase letters, digits, `_`, `-` or `.`".into(),
            ));
        }
        if ids.insert(id.clone(), ()).is_some() {
            return Err(err(&id, "id", "is used by two rules in the same file".into()));
        }
        let raw = RawRule::deserialize(value).map_err(|e| {
            let text = e.to_string();
            let field = text
                .split('`')
                .nth(1)
                .filter(|f| !f.contains(' '))
                .unwrap_or("rule")
                .to_string();
            err(&id, &field, text.trim().to_string())
        })?;
        let mut ctx = Ctx {
            rule: &id,
            sets,
            needs: None,
            err: &err,
        };
        let rule = ctx.rule(raw, detectors)?;
        let needs = ctx.needs.take();
        out.push((rule, needs));
    }
    Ok(out)
}

type ErrFn<'a> = dyn Fn(&str, &str, String) -> RuleError + 'a;

struct Ctx<'a> {
    rule: &'a str,
    sets: &'a Sets,
    needs: Option<String>,
    err: &'a ErrFn<'a>,
}

impl Ctx<'_> {
    fn fail(&self, field: &str, problem: impl Into<String>) -> RuleError {
        (self.err)(self.rule, field, problem.into())
    }

    fn rule(&mut self, raw: RawRule, detectors: &Detectors) -> Result<Rule, RuleError> {
        if raw.title.trim().is_empty() {
            return Err(self.fail("title", "must not be empty"));
        }
        let predicate = self.predicate("", &raw.match_, &raw.any)?;
        let forms = [
            raw.threshold.is_some(),
            raw.sequence.is_some(),
            raw.first_seen.is_some(),
            raw.content.is_some(),
            raw.reconcile.is_some(),
        ];
        if forms.iter().filter(|f| **f).count() > 1 {
            return Err(self.fail(
                "rule",
                "a rule takes at most one of threshold, sequence, first_seen, content, reconcile",
            ));
        }
        let kind = if let Some(t) = raw.threshold {
            if t.count < 2 || t.count > MAX_COUNT {
                return Err(self.fail("threshold.count", format!("must be between 2 and {MAX_COUNT}")));
            }
            RuleKind::Threshold {
                group_by: self.fields("threshold.group_by", t.group_by)?,
                count: t.count,
                distinct: t
                    .distinct
                    .map(|d| Field::parse(&d).map_err(|e| self.fail("threshold.distinct", e)))
                    .transpose()?,
                window: self.window("threshold.window", &t.window)?,
            }
        } else if let Some(s) = raw.sequence {
            let first_count = s.first.count.unwrap_or(1);
            if first_count == 0 || first_count > MAX_COUNT {
                return Err(self.fail("sequence.first.count", format!("must be between 1 and {MAX_COUNT}")));
            }
            if s.then.count.is_some() {
                return Err(self.fail("sequence.then.count", "only the first step takes a count"));
            }
            let first = self.predicate("sequence.first.", &s.first.match_, &s.first.any)?;
            let then = self.predicate("sequence.then.", &s.then.match_, &s.then.any)?;
            if first.is_empty() || then.is_empty() {
                return Err(self.fail("sequence", "both `first` and `then` need conditions"));
            }
            RuleKind::Sequence {
                group_by: self.fields("sequence.group_by", s.group_by)?,
                window: self.window("sequence.window", &s.window)?,
                first,
                first_count,
                then,
            }
        } else if let Some(f) = raw.first_seen {
            RuleKind::FirstSeen {
                group_by: self.fields("first_seen.group_by", f.group_by)?,
                value: Field::parse(&f.value).map_err(|e| self.fail("first_seen.value", e))?,
                retain: match f.retain {
                    Some(r) => {
                        let d = humantime::parse_duration(&r)
                            .map_err(|e| self.fail("first_seen.retain", format!("`{r}` is not a duration: {e}")))?;
                        if d.is_zero() {
                            return Err(self.fail("first_seen.retain", "must be longer than zero"));
                        }
                        d
                    }
                    None => DEFAULT_RETAIN,
                },
                baseline: f.baseline.unwrap_or(true),
            }
        } else if let Some(r) = raw.reconcile {
            let check = r.check.parse::<Check>().map_err(|_| {
                self.fail(
                    "reconcile.check",
                    format!("`{}` is not one of {}", r.check, Check::VARIANTS.join(", ")),
                )
            })?;
            let grace = match r.grace {
                Some(g) => humantime::parse_duration(&g)
                    .map_err(|e| self.fail("reconcile.grace", format!("`{g}` is not a duration: {e}")))?,
                None => DEFAULT_GRACE,
            };
            RuleKind::Reconcile { check, grace }
        } else if let Some(c) = raw.content {
            let detectors = match c.detectors {
                None => None,
                Some(list) => {
                    for name in &list {
                        if !detectors.names().contains(name) {
                            return Err(self.fail(
                                "content.detectors",
                                format!("`{name}` is not a detector; known: {}", detectors.names().join(", ")),
                            ));
                        }
                    }
                    Some(list.into_iter().collect())
                }
            };
            RuleKind::Content { detectors }
        } else {
            if predicate.is_empty() {
                return Err(self.fail("match", "a rule without conditions would flag every event"));
            }
            RuleKind::Single
        };
        let message = self.template(raw.message.as_deref().unwrap_or(&raw.title))?;
        Ok(Rule {
            id: raw.id,
            title: raw.title,
            severity: raw.severity,
            message,
            predicate,
            kind,
        })
    }

    fn window(&self, field: &str, text: &str) -> Result<Duration, RuleError> {
        let d = humantime::parse_duration(text)
            .map_err(|e| self.fail(field, format!("`{text}` is not a duration such as \"30m\": {e}")))?;
        if d.is_zero() || d > MAX_WINDOW {
            return Err(self.fail(field, "must be longer than zero and at most 31 days"));
        }
        Ok(d)
    }

    fn fields(&self, key: &str, v: OneOrMany) -> Result<Vec<Field>, RuleError> {
        let names = match v {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        };
        if names.is_empty() {
            return Err(self.fail(key, "must name at least one field"));
        }
        names
            .iter()
            .map(|n| Field::parse(n).map_err(|e| self.fail(key, e)))
            .collect()
    }

    fn template(&self, text: &str) -> Result<Vec<Piece>, RuleError> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| self.fail("message", "has a `{` without a closing `}`"))?;
            let field = Field::parse(&after[..close]).map_err(|e| self.fail("message", e))?;
            pieces.push(Piece::Field(field));
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        Ok(pieces)
    }

    fn predicate(&mut self, prefix: &str, all: &toml::Table, any: &[toml::Table]) -> Result<Predicate, RuleError> {
        let all = self.conditions(&format!("{prefix}match"), all)?;
        let any = any
            .iter()
            .enumerate()
            .map(|(i, t)| self.conditions(&format!("{prefix}any[{i}]"), t))
            .collect::<Result<Vec<_>, _>>()?;
        if any.iter().any(Vec::is_empty) {
            return Err(self.fail(
                &format!("{prefix}any"),
                "an alternative without conditions matches everything",
            ));
        }
        Ok(Predicate { all, any })
    }

    fn conditions(&mut self, key: &str, table: &toml::Table) -> Result<Vec<Condition>, RuleError> {
        let mut out = Vec::new();
        for (path, spec) in table {
            let at = format!("{key}.{path}");
            let field = Field::parse(path).map_err(|e| self.fail(&at, e))?;
            match spec {
                toml::Value::Table(ops) => {
                    if ops.is_empty() {
                        return Err(self.fail(&at, "needs at least one test"));
                    }
                    for (op, arg) in ops {
                        let test = self.test(&format!("{at}.{op}"), op, arg)?;
                        out.push(Condition {
                            field: field.clone(),
                            test,
                        });
                    }
                }
                toml::Value::Array(_) => out.push(Condition {
                    field,
                    test: Test::In(self.literals(&at, spec)?),
                }),
                other => out.push(Condition {
                    field,
                    test: Test::Equals(self.literal(&at, other)?),
                }),
            }
        }
        Ok(out)
    }

    fn test(&mut self, at: &str, op: &str, arg: &toml::Value) -> Result<Test, RuleError> {
        let number = |v: &toml::Value| match v {
            toml::Value::Integer(i) => Ok(*i as f64),
            toml::Value::Float(f) => Ok(*f),
            _ => Err(self.fail(at, "needs a number")),
        };
        Ok(match op {
            "equals" => Test::Equals(self.literal(at, arg)?),
            "in" => Test::In(self.literals(at, arg)?),
            "not_in" => Test::NotIn(self.literals(at, arg)?),
            "regex" => {
                let text = arg.as_str().ok_or_else(|| self.fail(at, "needs a string"))?;
                Test::Regex(
                    Regex::new(text).map_err(|e| self.fail(at, format!("not a valid regular expression: {e}")))?,
                )
            }
            "exists" => Test::Exists(arg.as_bool().ok_or_else(|| self.fail(at, "needs true or false"))?),
            "gt" => Test::Compare(Cmp::Gt, number(arg)?),
            "gte" => Test::Compare(Cmp::Gte, number(arg)?),
            "lt" => Test::Compare(Cmp::Lt, number(arg)?),
            "lte" => Test::Compare(Cmp::Lte, number(arg)?),
            "in_set" | "not_in_set" => {
                let name = arg.as_str().ok_or_else(|| self.fail(at, "needs a list name"))?;
                let set = self
                    .sets
                    .get(name)
                    .ok_or_else(|| self.fail(at, format!("`{name}` is not a list; known: key_admins")))?;
                let set = Arc::clone(set);
                self.needs = Some(name.to_string());
                if op == "in_set" {
                    Test::InSet(set)
                } else {
                    Test::NotInSet(set)
                }
            }
            other => {
                return Err(self.fail(
                    at,
                    format!(
                        "`{other}` is not a test; use equals, in, not_in, regex, exists, gt, gte, lt, lte, in_set, not_in_set"
                    ),
                ));
            }
        })
    }

    fn literals(&self, at: &str, v: &toml::Value) -> Result<Vec<Literal>, RuleError> {
        let items = v.as_array().ok_or_else(|| self.fail(at, "needs a list"))?;
        if items.is_empty() {
            return Err(self.fail(at, "needs at least one value"));
        }
        items.iter().map(|i| self.literal(at, i)).collect()
    }

    fn literal(&self, at: &str, v: &toml::Value) -> Result<Literal, RuleError> {
        Ok(match v {
            toml::Value::String(s) => Literal::Str(s.clone()),
            toml::Value::Integer(i) => Literal::Num(*i as f64),
            toml::Value::Float(f) => Literal::Num(*f),
            toml::Value::Boolean(b) => Literal::Bool(*b),
            _ => return Err(self.fail(at, "needs a string, number or boolean")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build_file(text: &str) -> Result<RuleSet, RuleSetError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("rules.toml");
        std::fs::write(&path, text).expect("write");
        RuleSet::build(&Inputs {
            rules_file: Some(&path),
            ..Inputs::default()
        })
    }

    fn rule_error(text: &str) -> RuleError {
        match build_file(text) {
            Err(RuleSetError::Rule(e)) => e,
            other => panic!("expected a rule error, got {other:?}"),
        }
    }

    #[test]
    fn the_built_in_pack_compiles() {
        let set = RuleSet::build(&Inputs::default()).expect("built-in pack is valid");
        assert!(set.rules.len() >= 18, "{}", set.rules.len());
        assert!(set.inactive.iter().any(|(id, _)| id == "api_key_created_by_non_admin"));
    }

    #[test]
    fn a_bad_rule_names_its_id_and_field() {
        let e = rule_error(
            "[[rule]]\nid = \"mine\"\ntitle = \"t\"\nseverity = \"high\"\n[rule.threshold]\ngroup_by = \"actor.email\"\ncount = 5\nwindow = \"soon\"\n",
        );
        assert_eq!((e.rule.as_str(), e.field.as_str()), ("mine", "threshold.window"), "{e}");
        let e = rule_error(
            "[[rule]]\nid = \"x\"\ntitle = \"t\"\nseverity = \"high\"\nmatch = { \"actor.nick\" = \"a\" }\n",
        );
        assert_eq!(e.field, "match.actor.nick", "{e}");
        let e = rule_error("[[rule]]\nid = \"x\"\ntitle = \"t\"\nseverity = \"urgent\"\nmatch = { type = \"a\" }\n");
        assert_eq!((e.rule.as_str(), e.field.as_str()), ("x", "urgent"), "{e}");
        assert!(e.to_string().contains("rule `x`"));
        let e = rule_error(
            "[[rule]]\nid = \"x\"\ntitle = \"t\"\nseverity = \"low\"\nmatch = { type = { regex = \"(\" } }\n",
        );
        assert_eq!(e.field, "match.type.regex", "{e}");
        let e = rule_error(
            "[[rule]]\nid = \"x\"\ntitle = \"t\"\nseverity = \"low\"\nmatch = { type = { like = \"a\" } }\n",
        );
        assert_eq!(e.field, "match.type.like", "{e}");
        let e = rule_error(
            "[[rule]]\nid = \"x\"\ntitle = \"t\"\nseverity = \"low\"\ncolour = 1\nmatch = { type = \"a\" }\n",
        );
        assert_eq!(e.field, "colour", "{e}");
    }

    #[test]
    fn a_file_rule_replaces_a_built_in_one_and_unknown_disabled_ids_are_refused() {
        let set = build_file(
            "[[rule]]\nid = \"scim_disabled\"\ntitle = \"SCIM off\"\nseverity = \"low\"\nmatch = { type = \"scim.disabled\" }\n",
        )
        .expect("valid");
        let scim = set.rules.iter().find(|r| r.id == "scim_disabled").expect("present");
        assert_eq!(scim.severity, Severity::Low);
        let err = RuleSet::build(&Inputs {
            disabled_rules: &["no_such_rule".to_string()],
            ..Inputs::default()
        })
        .expect_err("unknown id");
        assert!(matches!(err, RuleSetError::Input { ref key, .. } if key == "guardrails.disabled_rules"));
        let set = RuleSet::build(&Inputs {
            disabled_rules: &["scim_disabled".to_string()],
            ..Inputs::default()
        })
        .expect("valid");
        assert!(!set.rules.iter().any(|r| r.id == "scim_disabled"));
    }

    #[test]
    fn a_bad_custom_pattern_names_its_key() {
        let err = RuleSet::build(&Inputs {
            custom_patterns: &[("badge".to_string(), "(".to_string())],
            ..Inputs::default()
        })
        .expect_err("bad regex");
        assert!(matches!(err, RuleSetError::Input { ref key, .. } if key == "guardrails.custom_patterns.badge"));
    }
}
