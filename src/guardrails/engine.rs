//! The rule engine: runs the active rules over one normalized event, attaches findings to
//! it, redacts what the content detectors found, and builds the separate finding events of
//! threshold, sequence and first-seen rules.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::detect::{Detection, Detectors};
use super::matcher::{Field, Val};
use super::reconcile::{Check, Pending};
use super::rule::{Piece, Rule, RuleKind, RuleSet};
use super::stateful::{Entry, State};
use crate::normalize::{Event, Finding, Outcome, Source, event_id};

/// How often (in processed events) old state is pruned.
const PRUNE_EVERY: u64 = 4096;

/// The rules, indexed by event type, and their state.
#[derive(Debug)]
pub struct Engine {
    rules: Arc<RuleSet>,
    /// Rules that can only fire for these event types.
    by_type: HashMap<String, Vec<usize>>,
    /// Rules that may fire for any type.
    any_type: Vec<usize>,
    state: State,
    /// State changed since [`Engine::take_dirty`] last said so.
    dirty: bool,
}

impl Engine {
    /// An engine over `rules`, resuming from `saved` state (a restart) when given.
    pub fn new(rules: Arc<RuleSet>, saved: Option<State>) -> Self {
        let mut by_type: HashMap<String, Vec<usize>> = HashMap::new();
        let mut any_type = Vec::new();
        for (i, rule) in rules.rules.iter().enumerate() {
            match rule.types() {
                Some(types) => {
                    for t in types {
                        let list = by_type.entry(t).or_default();
                        if !list.contains(&i) {
                            list.push(i);
                        }
                    }
                }
                None => any_type.push(i),
            }
        }
        // Type-indexed and type-free rules must still run in file order for a stable
        // finding order.
        for list in by_type.values_mut() {
            list.extend(any_type.iter().copied());
            list.sort_unstable();
            list.dedup();
        }
        let mut state = saved.unwrap_or_default();
        if state.version != super::stateful::VERSION {
            tracing::warn!(
                version = state.version,
                "guardrails state has an unknown version; starting with empty rule state"
            );
            state = State::default();
        }
        Self {
            rules,
            by_type,
            any_type,
            state,
            dirty: false,
        }
    }

    /// The active rules.
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// The rule state, for saving.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Whether the state changed since the last call.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// Runs every applicable rule over `event`: findings are appended to it, detected
    /// secrets are redacted in it, and the finding events of stateful rules are returned (to
    /// be shipped after it).
    pub fn inspect(&mut self, event: &mut Event) -> Vec<Event> {
        let mut out = Vec::new();
        if event.source == Source::Guardrails {
            return out;
        }
        let t = event.occurred_at.timestamp_millis();
        self.state.tick(t);
        let rules = Arc::clone(&self.rules);
        let indices = self.by_type.get(&event.event_type).unwrap_or(&self.any_type);
        let mut scanned: Option<Vec<Detection>> = None;
        for &i in indices {
            let rule = &rules.rules[i];
            if !rule.predicate.matches(event) {
                continue;
            }
            match &rule.kind {
                RuleKind::Single => {
                    let message = render(&rule.message, event);
                    event.findings.push(finding(rule, message));
                }
                RuleKind::Content { detectors } => {
                    let all = scanned.get_or_insert_with(|| rules.detectors.scan(event));
                    let mine: Vec<&Detection> = all
                        .iter()
                        .filter(|d| detectors.as_ref().is_none_or(|set| set.contains(&d.detector)))
                        .collect();
                    for d in mine {
                        let message = format!("{} detected at {}", d.detector, d.location());
                        event.findings.push(finding(rule, message));
                    }
                }
                RuleKind::Threshold {
                    group_by,
                    count,
                    distinct,
                    window,
                } => {
                    let Some((key, group)) = group_key(group_by, event) else {
                        continue;
                    };
                    let v = match distinct {
                        Some(field) => match field.get(event) {
                            Some(v) => Some(v.text()),
                            // Counting distinct values of a field the event lacks says nothing.
                            None => continue,
                        },
                        None => None,
                    };
                    let entry = Entry {
                        t,
                        id: event.id.clone(),
                        v,
                    };
                    self.dirty = true;
                    let window_ms = millis(*window);
                    if let Some(evidence) = self.state.threshold(&rule.id, key, entry, *count, window_ms) {
                        let extra =
                            json!({"count": evidence.len(), "window": humantime::format_duration(*window).to_string()});
                        out.push(self.report(rule, event, &evidence, group, extra, None));
                    }
                }
                RuleKind::Sequence {
                    group_by,
                    window,
                    first,
                    first_count,
                    then,
                } => {
                    let (is_first, is_then) = (first.matches(event), then.matches(event));
                    if !is_first && !is_then {
                        continue;
                    }
                    let Some((key, group)) = group_key(group_by, event) else {
                        continue;
                    };
                    let entry = Entry {
                        t,
                        id: event.id.clone(),
                        v: None,
                    };
                    self.dirty = true;
                    let window_ms = millis(*window);
                    if let Some(evidence) =
                        self.state
                            .sequence(&rule.id, key, entry, is_first, is_then, *first_count, window_ms)
                    {
                        let extra = json!({"first_count": evidence.len() - 1, "window": humantime::format_duration(*window).to_string()});
                        out.push(self.report(rule, event, &evidence, group, extra, None));
                    }
                }
                RuleKind::Reconcile { check, grace } => {
                    let decided = self.state.reconcile(&rule.id, *check, millis(*grace), event);
                    self.dirty = true;
                    for p in decided {
                        let evidence = [Entry {
                            t: p.t,
                            id: p.event_id.clone(),
                            v: None,
                        }];
                        let group = json!({"kind": p.kind, "object_id": p.object_id, "change": p.change});
                        let generic = reconcile_message(*check, &p);
                        out.push(self.report(rule, event, &evidence, group, json!({}), Some(generic)));
                    }
                }
                RuleKind::FirstSeen {
                    group_by,
                    value,
                    baseline,
                    ..
                } => {
                    let Some((key, group)) = group_key(group_by, event) else {
                        continue;
                    };
                    let Some(v) = value.get(event).map(|v| v.text()) else {
                        continue;
                    };
                    self.dirty = true;
                    for seen in self.state.first_seen(&rule.id, key, v, t, &event.id, *baseline) {
                        let evidence = [Entry {
                            t: seen.first_t,
                            id: seen.first_id.clone(),
                            v: None,
                        }];
                        let extra = json!({"value": {"field": value.to_string(), "value": seen.value}});
                        let generic = format!("{}: {} `{}` first seen", rule.title, value, seen.value);
                        out.push(self.report(rule, event, &evidence, group.clone(), extra, Some(generic)));
                    }
                }
            }
        }
        if let Some(detections) = scanned.filter(|d| !d.is_empty()) {
            Detectors::redact(event, &detections);
        }
        if self.state.processed.is_multiple_of(PRUNE_EVERY) {
            self.prune();
        }
        out
    }

    /// Forgets state that can no longer matter (see [`State::prune`]).
    pub fn prune(&mut self) {
        let horizons: HashMap<&str, i64> = self
            .rules
            .rules
            .iter()
            .filter_map(|r| match &r.kind {
                // Slack for events that arrive out of order within a page or an overlap.
                RuleKind::Threshold { window, .. } | RuleKind::Sequence { window, .. } => {
                    Some((r.id.as_str(), millis(*window) + 3_600_000))
                }
                RuleKind::FirstSeen { retain, .. } => Some((r.id.as_str(), millis(*retain))),
                // Its memory prunes itself by its own clock.
                RuleKind::Reconcile { .. } => Some((r.id.as_str(), i64::MAX)),
                _ => None,
            })
            .collect();
        self.state.prune(|rule| horizons.get(rule).copied());
        self.dirty = true;
    }

    /// The finding on the triggering event (when it is part of the evidence) and the
    /// separate finding event naming all the evidence.
    fn report(
        &self,
        rule: &Rule,
        trigger: &mut Event,
        evidence: &[Entry],
        group: Value,
        extra: Value,
        generic: Option<String>,
    ) -> Event {
        let in_evidence = evidence.iter().any(|e| e.id == trigger.id);
        // A message templated from the trigger describes the trigger; when the trigger is
        // only what revealed older evidence (a backfill arriving newest first), say it
        // plainly instead.
        let message = match (in_evidence, generic) {
            (true, _) | (false, None) => render(&rule.message, trigger),
            (false, Some(generic)) => generic,
        };
        let f = finding(rule, message);
        if in_evidence {
            trigger.findings.push(f.clone());
        }
        let mut hasher = Sha256::new();
        let mut ids: Vec<&str> = evidence.iter().map(|e| e.id.as_str()).collect();
        ids.sort_unstable();
        for id in &ids {
            hasher.update(id.as_bytes());
            hasher.update(b"\n");
        }
        let digest = hex::encode(&hasher.finalize()[..12]);
        let org = trigger.org_id.clone();
        let at = evidence.iter().map(|e| e.t).max().unwrap_or(0);
        let occurred_at = DateTime::<Utc>::from_timestamp_millis(at).unwrap_or(trigger.occurred_at);
        let mut event = Event::new(
            event_id(Source::Guardrails, org.as_deref(), &format!("{}:{digest}", rule.id)),
            Source::Guardrails,
            org,
            rule.id.clone(),
            occurred_at,
        );
        event.category = "finding".to_string();
        event.action = "detected".to_string();
        event.outcome = Outcome::Unknown;
        event.actor = trigger.actor.clone().map(|mut a| {
            if !in_evidence {
                // Address and agent belong to the trigger, not to the evidence.
                a.ip = None;
                a.user_agent = None;
                a.geo = None;
            }
            a
        });
        event.project = trigger.project.clone();
        let mut details = json!({
            "rule": rule.id,
            "title": rule.title,
            "severity": rule.severity,
            "group": group,
            "evidence": evidence.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
            "trigger": trigger.id,
        });
        if let (Value::Object(d), Value::Object(x)) = (&mut details, extra) {
            d.extend(x);
        }
        event.details = details;
        event.findings.push(f);
        event
    }
}

/// What a reconciliation finding says, from the undecided item behind it.
fn reconcile_message(check: Check, p: &Pending) -> String {
    let at = |ms: i64| {
        DateTime::<Utc>::from_timestamp_millis(ms).map_or_else(
            || ms.to_string(),
            |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        )
    };
    match check {
        Check::InventoryChanges => format!(
            "{} {}: {} in the inventory run at {} with no audit-log event naming it since {}",
            p.kind,
            p.object_id,
            p.change,
            at(p.t),
            at(p.since)
        ),
        Check::AuditCreations => format!(
            "the audit log says {} {} was created ({} at {}), but no complete inventory since shows it",
            p.kind,
            p.object_id,
            p.change,
            at(p.t)
        ),
    }
}

fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn finding(rule: &Rule, message: String) -> Finding {
    Finding {
        rule: rule.id.clone(),
        severity: rule.severity,
        title: rule.title.clone(),
        message,
    }
}

/// The group key (values joined by an unprintable separator) and the group as JSON for the
/// finding event; `None` when the event lacks a group field.
fn group_key(fields: &[Field], event: &Event) -> Option<(String, Value)> {
    let mut key = String::new();
    let mut group = serde_json::Map::new();
    for (i, field) in fields.iter().enumerate() {
        let v = field.get(event)?.text();
        if i > 0 {
            key.push('\u{1f}');
        }
        key.push_str(&v);
        group.insert(field.to_string(), Value::String(v));
    }
    Some((key, Value::Object(group)))
}

/// Fills a message template from `event`; an absent field reads `?`.
pub fn render(pieces: &[Piece], event: &Event) -> String {
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Field(f) => match f.get(event) {
                Some(Val::Str(s)) => out.push_str(s),
                Some(v) => out.push_str(&v.text()),
                None => out.push('?'),
            },
        }
    }
    out
}
