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
use super::rule::{MAX_DISTINCT_FIELDS, Piece, Rule, RuleKind, RuleSet};
use super::stateful::{Entry, Fingerprints, Keep, Keyed, Limits, Need, Point, State, fingerprint};
use crate::normalize::{Event, Finding, Outcome, Source, event_id};

/// How often (in processed events) old state is pruned.
const PRUNE_EVERY: u64 = 4096;
/// How often (in processed events) the state is held to its memory budget. Between two
/// checks it can outgrow the budget by what 4,096 events add (at most ~1 MiB; each check
/// measures every group, which every 1,024 events was 6 % of a 1,000,000-event backfill).
pub(crate) const FIT_EVERY: u64 = 4096;
/// The memory budget of an engine built without one (`guardrails.max_state_bytes`'s default).
const DEFAULT_STATE_BYTES: usize = 6 << 20;

/// The rules, indexed by event type, and their state.
#[derive(Debug)]
pub struct Engine {
    rules: Arc<RuleSet>,
    /// Rules that can only fire for these event types.
    by_type: Keyed<Vec<usize>>,
    /// Rules that may fire for any type.
    any_type: Vec<usize>,
    state: State,
    /// Bytes the state's groups may hold ([`State::fit`]).
    budget: usize,
    /// Whether forgetting for the budget was already warned about (later times are debug).
    warned: bool,
    /// State changed since [`Engine::take_dirty`] last said so.
    dirty: bool,
    /// Reused buffers for a group key and a first-seen value.
    scratch: (String, String),
}

impl Engine {
    /// An engine over `rules`, resuming from `saved` state (a restart) when given.
    pub fn new(rules: Arc<RuleSet>, saved: Option<State>) -> Self {
        let mut by_type: Keyed<Vec<usize>> = Keyed::default();
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
        let state = match saved {
            None => State::default(),
            Some(saved) => {
                let version = saved.version;
                saved.migrate().unwrap_or_else(|| {
                    tracing::warn!(
                        version,
                        "guardrails state has an unknown version; starting with empty rule state"
                    );
                    State::default()
                })
            }
        };
        Self {
            rules,
            by_type,
            any_type,
            state,
            budget: DEFAULT_STATE_BYTES,
            warned: false,
            dirty: false,
            scratch: (String::new(), String::new()),
        }
    }

    /// The engine with its state held to `bytes` (`guardrails.max_state_bytes`).
    #[must_use]
    pub fn with_budget(mut self, bytes: usize) -> Self {
        self.budget = bytes;
        self
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
        // Group keys and first-seen values of more than one field (or of a number) are written
        // into buffers the engine keeps, so a stateful rule allocates only for what it
        // remembers; a single string field is read in place.
        let (mut key, mut seen_value) = std::mem::take(&mut self.scratch);
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
                    // Counting distinct values of a field the event lacks says nothing.
                    let mut values = [0; MAX_DISTINCT_FIELDS];
                    let mut mins = [0; MAX_DISTINCT_FIELDS];
                    let mut complete = true;
                    for ((value, min), d) in values.iter_mut().zip(mins.iter_mut()).zip(distinct) {
                        match d.field.get(event) {
                            Some(v) => (*value, *min) = (fingerprint_of(&v), d.min),
                            None => complete = false,
                        }
                    }
                    if !complete {
                        continue;
                    }
                    let Some(group) = group_key(group_by, event, &mut key) else {
                        continue;
                    };
                    let need = Need {
                        count: *count,
                        minimums: &mins[..distinct.len()],
                        window_ms: millis(*window),
                    };
                    self.dirty = true;
                    let at = (t, event.id.as_str());
                    if let Some(evidence) = self
                        .state
                        .threshold(&rule.id, group, at, &values[..distinct.len()], &need)
                    {
                        let extra =
                            json!({"count": evidence.len(), "window": humantime::format_duration(*window).to_string()});
                        out.push(self.report(rule, event, &evidence, group_of(group_by, event), extra, None));
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
                    let Some(group) = group_key(group_by, event, &mut key) else {
                        continue;
                    };
                    self.dirty = true;
                    let window_ms = millis(*window);
                    let at = (t, event.id.as_str());
                    if let Some(evidence) =
                        self.state
                            .sequence(&rule.id, group, at, is_first, is_then, *first_count, window_ms)
                    {
                        let extra = json!({"first_count": evidence.len() - 1, "window": humantime::format_duration(*window).to_string()});
                        out.push(self.report(rule, event, &evidence, group_of(group_by, event), extra, None));
                    }
                }
                RuleKind::Reconcile { check, grace } => {
                    let decided = self.state.reconcile(&rule.id, *check, millis(*grace), event);
                    self.dirty = true;
                    for p in decided {
                        let evidence = [Entry {
                            t: p.t,
                            id: p.event_id.clone(),
                            v: Fingerprints::new(),
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
                    max_values,
                    ..
                } => {
                    let (Some(group), Some(seen_value)) = (
                        group_key(group_by, event, &mut key),
                        group_key(value, event, &mut seen_value),
                    ) else {
                        continue;
                    };
                    self.dirty = true;
                    let keep = Keep {
                        baseline_first: *baseline,
                        max_values: *max_values,
                    };
                    for seen in self.state.first_seen(&rule.id, group, seen_value, (t, &event.id), keep) {
                        let evidence = [Entry {
                            t: seen.first_t,
                            id: seen.first_id.clone(),
                            v: Fingerprints::new(),
                        }];
                        let shown = seen.value.replace(SEPARATOR, ", ");
                        let names: Vec<String> = value.iter().map(ToString::to_string).collect();
                        let extra = json!({"value": {"field": names.join(", "), "value": shown}});
                        let generic = format!("{}: {} `{}` first seen", rule.title, names.join(", "), shown);
                        out.push(self.report(rule, event, &evidence, group_of(group_by, event), extra, Some(generic)));
                    }
                }
                RuleKind::Velocity {
                    group_by,
                    min_km,
                    min_kmh,
                    window,
                } => {
                    let geo = event.actor.as_ref().and_then(|a| a.geo.as_ref());
                    let Some((lat, lon)) = geo.and_then(|g| g.latitude.zip(g.longitude)) else {
                        continue;
                    };
                    let Some(group) = group_key(group_by, event, &mut key) else {
                        continue;
                    };
                    self.dirty = true;
                    let limits = Limits {
                        min_km: *min_km,
                        min_kmh: *min_kmh,
                        window_ms: millis(*window),
                    };
                    let point = Point::new(t, &event.id, lat, lon);
                    for leg in self.state.velocity(&rule.id, group, point, limits) {
                        let minutes = (leg.to.t - leg.from.t) as f64 / 60_000.0;
                        let kmh = if leg.kmh.is_finite() {
                            json!(leg.kmh.round())
                        } else {
                            Value::Null
                        };
                        let extra =
                            json!({"distance_km": leg.km.round(), "minutes": minutes.round(), "speed_kmh": kmh});
                        let generic = format!(
                            "{}: {:.0} km in {:.0} minutes between two events",
                            rule.title, leg.km, minutes
                        );
                        let evidence = [leg.from, leg.to];
                        out.push(self.report(rule, event, &evidence, group_of(group_by, event), extra, Some(generic)));
                    }
                }
            }
        }
        self.scratch = (key, seen_value);
        if let Some(detections) = scanned.filter(|d| !d.is_empty()) {
            Detectors::redact(event, &detections);
        }
        if self.state.processed.is_multiple_of(PRUNE_EVERY) {
            self.prune();
        }
        if self.state.processed.is_multiple_of(FIT_EVERY) {
            self.fit();
        }
        out
    }

    /// Holds the state to its budget, saying so the first time it forgets groups for it.
    fn fit(&mut self) {
        let (forgot, _) = self.state.fit(self.budget);
        if forgot == 0 {
            return;
        }
        self.dirty = true;
        if !std::mem::replace(&mut self.warned, true) {
            tracing::warn!(
                budget_bytes = self.budget,
                groups = forgot,
                "guardrails state reached guardrails.max_state_bytes; forgetting the least recently active groups (users, addresses) of threshold, sequence, first-seen and velocity rules: their history starts again when they return. Raise the budget to keep more"
            );
        } else {
            tracing::debug!(
                budget_bytes = self.budget,
                groups = forgot,
                "guardrails state held to its budget"
            );
        }
    }

    /// Forgets state that can no longer matter (see [`State::prune`]).
    pub fn prune(&mut self) {
        let horizons: HashMap<&str, i64> = self
            .rules
            .rules
            .iter()
            .filter_map(|r| match &r.kind {
                // Slack for events that arrive out of order within a page or an overlap.
                RuleKind::Threshold { window, .. }
                | RuleKind::Sequence { window, .. }
                | RuleKind::Velocity { window, .. } => Some((r.id.as_str(), millis(*window) + 3_600_000)),
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
            "attack": rule.attack,
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
        attack: rule.attack.clone(),
    }
}

/// The group a finding is about, by field name, as the trigger carries it.
fn group_of(group_by: &[Field], trigger: &Event) -> Value {
    group_by
        .iter()
        .filter_map(|f| f.get(trigger).map(|v| (f.to_string(), Value::String(v.text()))))
        .collect::<serde_json::Map<String, Value>>()
        .into()
}

/// Joins the values of a group key: a character no field value carries.
const SEPARATOR: char = '\u{1f}';

/// The values of `fields` in `event`, joined by [`SEPARATOR`] (a group key, or a first-seen
/// combination); `None` when the event lacks one of them. One string field (nearly every
/// rule's key) is the event's own text; anything else is written into `buf`.
fn group_key<'a>(fields: &[Field], event: &'a Event, buf: &'a mut String) -> Option<&'a str> {
    buf.clear();
    if let [field] = fields {
        match field.get(event)? {
            Val::Str(s) => return Some(s),
            Val::Json(Value::String(s)) => return Some(s),
            other => other.push_to(buf),
        }
        return Some(buf);
    }
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            buf.push(SEPARATOR);
        }
        field.get(event)?.push_to(buf);
    }
    Some(buf)
}

/// The fingerprint of a value's text form, without copying a string value.
fn fingerprint_of(v: &Val<'_>) -> u64 {
    match v {
        Val::Str(s) => fingerprint(s),
        Val::Json(Value::String(s)) => fingerprint(s),
        other => fingerprint(&other.text()),
    }
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
