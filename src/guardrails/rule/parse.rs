//! The TOML form of rules: parsing and validation of the built-in pack and the operator's
//! rule file into compiled [`Rule`]s. Every error names the rule id and the field.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use regex::Regex;
use serde::Deserialize;

use super::super::detect::Detectors;
use super::super::matcher::{Cmp, Condition, Field, Literal, Predicate, Test};
use super::super::reconcile::Check;
use super::{Distinct, MAX_DISTINCT_FIELDS, Piece, Rule, RuleError, RuleKind, Sets};
use crate::normalize::Severity;
use strum::VariantNames;

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
    velocity: Option<RawVelocity>,
    #[serde(default)]
    content: Option<RawContent>,
    #[serde(default)]
    attack: Vec<String>,
    #[serde(default)]
    reconcile: Option<RawReconcile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawThreshold {
    group_by: OneOrMany,
    #[serde(default)]
    count: Option<usize>,
    #[serde(default)]
    distinct: Option<RawDistinct>,
    window: String,
}

/// `distinct = "actor.ip"` or `["a", "b"]` (each needs `count` distinct values), or
/// `{ "a" = 3, "b" = 2 }` (a minimum per field, no `count`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawDistinct {
    Fields(OneOrMany),
    PerField(BTreeMap<String, usize>),
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
    value: OneOrMany,
    #[serde(default)]
    retain: Option<String>,
    #[serde(default)]
    baseline: Option<bool>,
    #[serde(default)]
    max_values: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVelocity {
    group_by: OneOrMany,
    min_km: f64,
    min_kmh: f64,
    window: String,
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
/// First-seen values per group: the default, and the most a rule may ask for.
const DEFAULT_MAX_VALUES: usize = 32;
const MAX_MAX_VALUES: usize = 1024;

/// Rules and, for each, the operator list it depends on (inactive while that list is empty).
pub(super) fn parse(
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
    let mut regexes = HashMap::new();
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
            regexes: &mut regexes,
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
    /// The file's regular expressions by pattern, each compiled once: rules repeat them (the
    /// built-in pack's 17 `regex` tests are 10 patterns), and compiling was most of the
    /// start-up of a run (a compiled `Regex` is shared by cloning).
    regexes: &'a mut HashMap<String, Regex>,
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
            raw.velocity.is_some(),
            raw.content.is_some(),
            raw.reconcile.is_some(),
        ];
        if forms.iter().filter(|f| **f).count() > 1 {
            return Err(self.fail(
                "rule",
                "a rule takes at most one of threshold, sequence, first_seen, velocity, content, reconcile",
            ));
        }
        let attack = self.attack(raw.attack)?;
        let kind = if let Some(t) = raw.threshold {
            self.threshold(t)?
        } else if let Some(v) = raw.velocity {
            for (key, value) in [("velocity.min_km", v.min_km), ("velocity.min_kmh", v.min_kmh)] {
                if !(value.is_finite() && value > 0.0) {
                    return Err(self.fail(key, "must be a number above zero"));
                }
            }
            RuleKind::Velocity {
                group_by: self.fields("velocity.group_by", v.group_by)?,
                min_km: v.min_km,
                min_kmh: v.min_kmh,
                window: self.window("velocity.window", &v.window)?,
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
            let value = self.fields("first_seen.value", f.value)?;
            if value.is_empty() {
                return Err(self.fail("first_seen.value", "must name at least one field"));
            }
            RuleKind::FirstSeen {
                group_by: self.fields("first_seen.group_by", f.group_by)?,
                value,
                baseline: f.baseline.unwrap_or(true),
                max_values: match f.max_values {
                    None => DEFAULT_MAX_VALUES,
                    Some(n) if (1..=MAX_MAX_VALUES).contains(&n) => n,
                    Some(_) => {
                        return Err(self.fail(
                            "first_seen.max_values",
                            format!("must be between 1 and {MAX_MAX_VALUES}"),
                        ));
                    }
                },
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
            attack,
        })
    }

    fn threshold(&self, t: RawThreshold) -> Result<RuleKind, RuleError> {
        let count_in_range = |count: usize| {
            if (2..=MAX_COUNT).contains(&count) {
                Ok(count)
            } else {
                Err(self.fail("threshold.count", format!("must be between 2 and {MAX_COUNT}")))
            }
        };
        let field = |name: &str| Field::parse(name).map_err(|e| self.fail("threshold.distinct", e));
        let has_distinct = t.distinct.is_some();
        let (count, distinct) = match t.distinct {
            None => {
                let count = t.count.ok_or_else(|| self.fail("threshold.count", "is missing"))?;
                (count_in_range(count)?, Vec::new())
            }
            Some(RawDistinct::Fields(names)) => {
                let count = t
                    .count
                    .ok_or_else(|| self.fail("threshold.count", "is missing (the distinct values each field needs)"))?;
                let count = count_in_range(count)?;
                let names = match names {
                    OneOrMany::One(name) => vec![name],
                    OneOrMany::Many(names) => names,
                };
                let distinct = names
                    .iter()
                    .map(|n| {
                        Ok(Distinct {
                            field: field(n)?,
                            min: count,
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                (count, distinct)
            }
            Some(RawDistinct::PerField(minimums)) => {
                if t.count.is_some() {
                    return Err(self.fail(
                        "threshold.count",
                        "leave it out when `distinct` gives a minimum per field",
                    ));
                }
                let distinct = minimums
                    .iter()
                    .map(|(n, min)| {
                        if !(1..=MAX_COUNT).contains(min) {
                            return Err(self.fail(
                                &format!("threshold.distinct.{n}"),
                                format!("must be between 1 and {MAX_COUNT}"),
                            ));
                        }
                        Ok(Distinct {
                            field: field(n)?,
                            min: *min,
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                if distinct.iter().all(|d| d.min < 2) {
                    return Err(self.fail("threshold.distinct", "at least one field needs 2 or more values"));
                }
                (distinct.iter().map(|d| d.min).max().unwrap_or(2), distinct)
            }
        };
        if distinct.len() > MAX_DISTINCT_FIELDS || (has_distinct && distinct.is_empty()) {
            return Err(self.fail(
                "threshold.distinct",
                format!("must name between 1 and {MAX_DISTINCT_FIELDS} fields"),
            ));
        }
        Ok(RuleKind::Threshold {
            group_by: self.fields("threshold.group_by", t.group_by)?,
            count,
            distinct,
            window: self.window("threshold.window", &t.window)?,
        })
    }

    /// ATT&CK technique ids: `T` and four digits, optionally a `.` and three more.
    fn attack(&self, ids: Vec<String>) -> Result<Vec<String>, RuleError> {
        for id in &ids {
            let (technique, sub) = match id.split_once('.') {
                Some((t, s)) => (t, Some(s)),
                None => (id.as_str(), None),
            };
            let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
            let ok = technique.strip_prefix('T').is_some_and(|d| digits(d, 4)) && sub.is_none_or(|s| digits(s, 3));
            if !ok {
                return Err(self.fail(
                    "attack",
                    format!("`{id}` is not an ATT&CK technique id such as T1078 or T1078.004"),
                ));
            }
        }
        Ok(ids)
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
        Ok(Predicate::new(all, any))
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
            "regex" | "not_regex" => {
                let text = arg.as_str().ok_or_else(|| self.fail(at, "needs a string"))?;
                let re = match self.regexes.get(text) {
                    Some(re) => re.clone(),
                    None => {
                        let re = Regex::new(text)
                            .map_err(|e| self.fail(at, format!("not a valid regular expression: {e}")))?;
                        self.regexes.insert(text.to_string(), re.clone());
                        re
                    }
                };
                if op == "regex" {
                    Test::Regex(re)
                } else {
                    Test::NotRegex(re)
                }
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
                        "`{other}` is not a test; use equals, in, not_in, regex, not_regex, exists, gt, gte, lt, lte, in_set, not_in_set"
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
