//! Where free text lives in a compliance record, and the content policy
//! (`compliance.content = keep | hash | drop`) that rewrites it.
//!
//! Text is found by shape, not by a list of guessed keys: `content_fields.tsv` names, per
//! record type, the containers that hold user or model text (a message, tool arguments, Codex
//! and agent details) and, inside each, the few paths that are structure (ids, names, types).
//! Every other string under a container is text — so a field the platform adds tomorrow is
//! treated as text until someone lists it as structure, and a record type nobody has read yet
//! is text everywhere but its envelope. The content detectors scan exactly these strings
//! ([`Shape::for_each_text`]) and the policy rewrites exactly these ([`apply`]), in `details`
//! and `raw` alike.
//!
//! The policy runs on finished events after the guardrails stage, whose detectors must still
//! see the text.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::LazyLock;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::Event;

/// What to do with message and tool-call text from the Compliance Logs Platform
/// (`compliance.content`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumString, strum::IntoStaticStr, strum::VariantNames)]
#[strum(serialize_all = "snake_case")]
pub enum ContentMode {
    /// Ship the text (secrets the detectors find are still redacted).
    Keep,
    /// Replace each text with its SHA-256 and length.
    Hash,
    /// Remove each text.
    Drop,
}

const TABLE: &str = include_str!("content_fields.tsv");

/// One step of a path in the table: an object key, or `*` for every array element.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(&'static str),
    Any,
}

/// One step taken while walking a document.
#[derive(Debug, Clone, Copy)]
enum Step<'a> {
    Key(&'a str),
    Index,
}

/// A subtree whose strings are text, except under the kept paths.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Container {
    path: Vec<Seg>,
    kept: Vec<Vec<Seg>>,
    /// `kept` by step.
    kept_steps: Steps,
}

impl Container {
    fn new(path: Vec<Seg>, kept: Vec<Vec<Seg>>) -> Self {
        let kept_steps = Steps::new(kept.iter().map(Vec::as_slice));
        Self { path, kept, kept_steps }
    }
}

/// Where text lives in one record type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shape {
    containers: Vec<Container>,
    /// The containers' paths by step.
    container_steps: Steps,
    /// The normalized event's `target.name` is a copy of text (a conversation title).
    target_name: bool,
}

/// A list of paths indexed by step, so a walk finds the paths a key continues in one lookup
/// instead of comparing it with every path: a container may keep fifty paths (agents' details)
/// and every key below it is looked up. At each depth: the paths (as [`Bits`] of their
/// indices) whose step there is a given key, those whose step is `*`, and those that end there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Steps {
    by_key: Vec<HashMap<&'static str, Bits, foldhash::fast::RandomState>>,
    by_index: Vec<Bits>,
    ends: Vec<Bits>,
}

impl Steps {
    fn new<'p>(paths: impl Iterator<Item = &'p [Seg]>) -> Self {
        let mut steps = Steps::default();
        for (i, path) in paths.enumerate().take(MAX_PATHS) {
            let bit: Bits = 1 << i;
            if steps.ends.len() < path.len() {
                steps.by_key.resize_with(path.len(), HashMap::default);
                steps.by_index.resize(path.len(), 0);
                steps.ends.resize(path.len(), 0);
            }
            for (depth, seg) in path.iter().enumerate() {
                match seg {
                    Seg::Key(key) => *steps.by_key[depth].entry(*key).or_default() |= bit,
                    Seg::Any => steps.by_index[depth] |= bit,
                }
            }
            if let Some(last) = path.len().checked_sub(1) {
                steps.ends[last] |= bit;
            }
        }
        steps
    }

    /// Of the paths in `set`, those whose step at `depth` is `step`, and which of them end
    /// there.
    fn take(&self, set: Bits, depth: usize, step: Step<'_>) -> (Bits, Bits) {
        // Deep in a container's text no kept path is left: nothing to look up.
        if set == 0 {
            return (0, 0);
        }
        let along = match step {
            Step::Key(key) => self.by_key.get(depth).and_then(|keys| keys.get(key)).copied(),
            Step::Index => self.by_index.get(depth).copied(),
        };
        let along = set & along.unwrap_or(0);
        (along, along & self.ends.get(depth).copied().unwrap_or(0))
    }
}

/// Why a row of `content_fields.tsv` was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("content_fields.tsv line {line}: {problem}")]
pub struct ShapeTableError {
    line: usize,
    problem: String,
}

/// The parsed table: a shape per listed type, and the shape of every other type.
#[derive(Debug, Default)]
struct Shapes {
    by_type: HashMap<&'static str, Shape>,
    other: Shape,
}

fn parse_path(text: &'static str) -> Option<Vec<Seg>> {
    if text == "." {
        return Some(Vec::new());
    }
    text.split('.')
        .map(|s| match s {
            "" => None,
            "*" => Some(Seg::Any),
            key => Some(Seg::Key(key)),
        })
        .collect()
}

fn parse_table(text: &'static str) -> (Shapes, Vec<ShapeTableError>) {
    let mut shapes = Shapes::default();
    let mut errors = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        if raw.trim().is_empty() || raw.starts_with('#') {
            continue;
        }
        let bad = |problem: &str| ShapeTableError {
            line,
            problem: problem.to_string(),
        };
        let [record_type, container, kept] = raw.split('\t').collect::<Vec<_>>()[..] else {
            errors.push(bad("expected 3 tab-separated columns"));
            continue;
        };
        let shape = if record_type == "*" {
            &mut shapes.other
        } else {
            shapes.by_type.entry(record_type).or_default()
        };
        match container {
            "-" => continue,
            "target.name" => {
                shape.target_name = true;
                continue;
            }
            _ => {}
        }
        let Some(path) = parse_path(container) else {
            errors.push(bad("the container is not a dotted path"));
            continue;
        };
        let kept: Option<Vec<Vec<Seg>>> = match kept {
            "-" => Some(Vec::new()),
            list => list.split(',').map(parse_path).collect(),
        };
        match kept {
            Some(kept) if kept.len() > MAX_PATHS || shape.containers.len() == MAX_PATHS => {
                errors.push(bad(&format!(
                    "more than {MAX_PATHS} containers of a type, or kept paths of a container"
                )));
            }
            Some(kept) if kept.iter().all(|k| !k.is_empty()) => shape.containers.push(Container::new(path, kept)),
            _ => errors.push(bad("a kept path is empty or not a dotted path")),
        }
    }
    for shape in shapes.by_type.values_mut().chain([&mut shapes.other]) {
        shape.container_steps = Steps::new(shape.containers.iter().map(|c| c.path.as_slice()));
    }
    (shapes, errors)
}

// Compiled in, so the tests see what production sees; they fail on any table error.
static SHAPES: LazyLock<Shapes> = LazyLock::new(|| parse_table(TABLE).0);

/// Where text lives in records of `record_type` (`CODEX_LOG`, …; an unlisted type is text
/// everywhere but its envelope).
pub fn shape(record_type: &str) -> &'static Shape {
    SHAPES.by_type.get(record_type).unwrap_or(&SHAPES.other)
}

/// Where a walk stands relative to the containers. A set of paths is a bit set (bit `i` is
/// the `i`-th container, or the `i`-th kept path of the container), and all paths of a set
/// have matched the same number of steps, so a scope is a few words and moving to a child
/// never allocates.
#[derive(Debug, Clone, Copy)]
enum Scope<'a> {
    /// Not inside a container; the containers whose first `depth` steps match the walk.
    Outside {
        shape: &'a Shape,
        depth: usize,
        candidates: Bits,
    },
    /// Inside `container`: text, unless one of the kept paths whose first `depth` steps match
    /// the walk below the container is completed.
    Inside {
        container: &'a Container,
        depth: usize,
        kept: Bits,
    },
    /// Nothing below is text.
    Kept,
}

/// A set of indices below [`MAX_PATHS`].
type Bits = u128;

/// The most containers per record type, and kept paths per container, the table may list.
const MAX_PATHS: usize = Bits::BITS as usize;

/// The first `n` indices.
fn all(n: usize) -> Bits {
    if n >= MAX_PATHS { Bits::MAX } else { (1 << n) - 1 }
}

impl<'a> Scope<'a> {
    fn root(shape: &'a Shape) -> Self {
        for c in &shape.containers {
            if c.path.is_empty() {
                return Scope::inside(c);
            }
        }
        if shape.containers.is_empty() {
            Scope::Kept
        } else {
            Scope::Outside {
                shape,
                depth: 0,
                candidates: all(shape.containers.len()),
            }
        }
    }

    fn inside(container: &'a Container) -> Self {
        Scope::Inside {
            container,
            depth: 0,
            kept: all(container.kept.len()),
        }
    }

    fn child(self, step: Step<'_>) -> Scope<'a> {
        match self {
            Scope::Kept => Scope::Kept,
            Scope::Outside {
                shape,
                depth,
                candidates,
            } => match shape.container_steps.take(candidates, depth, step) {
                (0, _) => Scope::Kept,
                // Entered: the first container (in table order) whose path ends here.
                (_, entered) if entered != 0 => Scope::inside(&shape.containers[entered.trailing_zeros() as usize]),
                (next, _) => Scope::Outside {
                    shape,
                    depth: depth + 1,
                    candidates: next,
                },
            },
            Scope::Inside { container, depth, kept } => match container.kept_steps.take(kept, depth, step) {
                (_, ended) if ended != 0 => Scope::Kept,
                (next, _) => Scope::Inside {
                    container,
                    depth: depth + 1,
                    kept: next,
                },
            },
        }
    }

    fn is_text(self) -> bool {
        matches!(self, Scope::Inside { .. })
    }
}

/// Appends `key` to a JSON pointer, escaped (`~` → `~0`, `/` → `~1`).
fn push_key(pointer: &mut String, key: &str) {
    pointer.push('/');
    if !key.contains(['~', '/']) {
        pointer.push_str(key);
        return;
    }
    for c in key.chars() {
        match c {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            c => pointer.push(c),
        }
    }
}

impl Shape {
    /// Whether records of this type carry any text at all.
    pub fn has_text(&self) -> bool {
        !self.containers.is_empty() || self.target_name
    }

    /// Whether the normalized event's `target.name` is a copy of text.
    pub fn target_name_is_text(&self) -> bool {
        self.target_name
    }

    /// Calls `f(json_pointer, text)` for every free-text string in `doc` (a record, or the
    /// `details` built from one), in document order.
    pub fn for_each_text(&self, doc: &Value, f: &mut impl FnMut(&str, &str)) {
        let mut pointer = String::new();
        visit(doc, Scope::root(self), &mut pointer, f);
    }

    /// Applies `mode` to every free-text string in `doc`; `digests` holds the texts hashed
    /// so far and their digests, and gains those hashed here.
    fn rewrite(&self, mode: ContentMode, doc: &mut Value, digests: &mut Digests) {
        if mode != ContentMode::Keep {
            rewrite(doc, Scope::root(self), mode, digests);
        }
    }
}

fn visit(v: &Value, scope: Scope<'_>, pointer: &mut String, f: &mut impl FnMut(&str, &str)) {
    match v {
        Value::String(s) if scope.is_text() => f(pointer, s),
        Value::Object(map) => {
            for (k, child) in map {
                let scope = scope.child(Step::Key(k));
                if matches!(scope, Scope::Kept) {
                    continue;
                }
                let len = pointer.len();
                // JSON pointer escaping, so a caller can find the same string again.
                push_key(pointer, k);
                visit(child, scope, pointer, f);
                pointer.truncate(len);
            }
        }
        Value::Array(items) => {
            let scope = scope.child(Step::Index);
            if matches!(scope, Scope::Kept) {
                return;
            }
            for (i, item) in items.iter().enumerate() {
                let len = pointer.len();
                // Writing to a String cannot fail.
                let _ = write!(pointer, "/{i}");
                visit(item, scope, pointer, f);
                pointer.truncate(len);
            }
        }
        _ => {}
    }
}

fn rewrite(v: &mut Value, scope: Scope<'_>, mode: ContentMode, digests: &mut Digests) {
    match v {
        Value::Object(map) => {
            // Already rewritten (the policy may run twice on one event).
            if scope.is_text() && is_digest(map) {
                return;
            }
            let mut dropped = Vec::new();
            for (k, child) in map.iter_mut() {
                let scope = scope.child(Step::Key(k));
                match (&*child, &scope) {
                    (_, Scope::Kept) => {}
                    (Value::String(_), Scope::Inside { .. }) => match mode {
                        ContentMode::Hash => digests.replace(child),
                        _ => dropped.push(k.clone()),
                    },
                    _ => rewrite(child, scope, mode, digests),
                }
            }
            for k in dropped {
                map.remove(&k);
            }
        }
        Value::Array(items) => {
            let scope = scope.child(Step::Index);
            match scope {
                Scope::Kept => {}
                Scope::Inside { .. } if mode == ContentMode::Drop => {
                    items.retain(|item| !item.is_string());
                    items.iter_mut().for_each(|item| rewrite(item, scope, mode, digests));
                }
                _ => {
                    for item in items {
                        match item {
                            Value::String(_) if scope.is_text() => digests.replace(item),
                            _ => rewrite(item, scope, mode, digests),
                        }
                    }
                }
            }
        }
        _ => {}
    }
}

/// The texts of one event hashed so far, with their digests. `details` holds copies of the
/// record's texts (at the record's own paths), so each is hashed once and its digest copied
/// where the copy is met again. At most [`Digests::KEPT`] are remembered, so a record with
/// thousands of texts (a tool's long answer list) costs a bounded search per text, not one
/// growing with the record; texts beyond are hashed wherever they appear.
#[derive(Default)]
struct Digests(Vec<(String, Value)>);

impl Digests {
    const KEPT: usize = 32;

    /// Replaces the string `text` with its digest.
    fn replace(&mut self, text: &mut Value) {
        let Value::String(s) = text else { return };
        if let Some((_, digest)) = self.0.iter().find(|(seen, _)| seen == s) {
            *text = digest.clone();
            return;
        }
        let digest = digest(s);
        let Value::String(s) = std::mem::replace(text, digest.clone()) else {
            unreachable!("matched a string above")
        };
        if self.0.len() < Self::KEPT {
            self.0.push((s, digest));
        }
    }
}

/// Applies `mode` to every text field of a compliance `event`: its `raw` record, its
/// `details` and, where it copies text, its target name.
pub fn apply(mode: ContentMode, event: &mut Event) {
    if mode == ContentMode::Keep {
        return;
    }
    let shape = shape(&event.event_type);
    let mut digests = Digests::default();
    shape.rewrite(mode, &mut event.details, &mut digests);
    if let Some(raw) = event.raw.as_mut() {
        shape.rewrite(mode, raw.tree_mut(), &mut digests);
    }
    if shape.target_name
        && let Some(target) = event.target.as_mut()
    {
        target.name = match (mode, target.name.take()) {
            (ContentMode::Hash, Some(name)) if !name.starts_with("sha256:") => {
                Some(format!("sha256:{}", hex::encode(Sha256::digest(name.as_bytes()))))
            }
            (ContentMode::Hash, name) => name,
            _ => None,
        };
    }
}

/// What replaces a text under `hash`: its SHA-256 and its length in characters, so equal
/// texts can still be correlated and sizes compared without the text.
pub fn digest(text: &str) -> Value {
    json!({"sha256": hex::encode(Sha256::digest(text.as_bytes())), "length": text.chars().count()})
}

fn is_digest(o: &Map<String, Value>) -> bool {
    o.len() == 2 && o.get("sha256").is_some_and(Value::is_string) && o.contains_key("length")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::Source;

    fn event(record_type: &str, raw: Value, details: Value) -> Event {
        let mut e = Event::new(
            "id".into(),
            Source::Compliance,
            None,
            record_type.into(),
            chrono::Utc::now(),
        );
        e.raw = Some(raw.into());
        e.details = details;
        e
    }

    fn message(text: &str) -> Value {
        json!({"message": {"id": "m1", "content": {"type": "text", "value": text, "annotations": []}}})
    }

    /// The indices in `bits`, ascending.
    fn indices(mut bits: Bits) -> impl Iterator<Item = usize> {
        std::iter::from_fn(move || {
            (bits != 0).then(|| {
                let i = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                i
            })
        })
    }

    fn matches(seg: &Seg, step: Step<'_>) -> bool {
        match (seg, step) {
            (Seg::Key(k), Step::Key(s)) => *k == s,
            (Seg::Any, Step::Index) => true,
            _ => false,
        }
    }

    /// [`Scope::child`] by comparing the step with every path of the set, as it was before
    /// the paths were indexed: the reference the indexed steps must agree with.
    fn child_by_scan<'a>(scope: Scope<'a>, step: Step<'_>) -> Scope<'a> {
        match scope {
            Scope::Kept => Scope::Kept,
            Scope::Outside {
                shape,
                depth,
                candidates,
            } => {
                let mut next = 0;
                for i in indices(candidates) {
                    let c = &shape.containers[i];
                    if !matches(&c.path[depth], step) {
                        continue;
                    }
                    if depth + 1 == c.path.len() {
                        return Scope::inside(c);
                    }
                    next |= 1 << i;
                }
                if next == 0 {
                    Scope::Kept
                } else {
                    Scope::Outside {
                        shape,
                        depth: depth + 1,
                        candidates: next,
                    }
                }
            }
            Scope::Inside { container, depth, kept } => {
                let mut next = 0;
                for i in indices(kept) {
                    let k = &container.kept[i];
                    if matches(&k[depth], step) {
                        if k.len() == depth + 1 {
                            return Scope::Kept;
                        }
                        next |= 1 << i;
                    }
                }
                Scope::Inside {
                    container,
                    depth: depth + 1,
                    kept: next,
                }
            }
        }
    }

    fn same(a: Scope<'_>, b: Scope<'_>) -> bool {
        match (a, b) {
            (Scope::Kept, Scope::Kept) => true,
            (
                Scope::Outside {
                    shape,
                    depth,
                    candidates,
                },
                Scope::Outside {
                    shape: s2,
                    depth: d2,
                    candidates: c2,
                },
            ) => std::ptr::eq(shape, s2) && depth == d2 && candidates == c2,
            (
                Scope::Inside { container, depth, kept },
                Scope::Inside {
                    container: c2,
                    depth: d2,
                    kept: k2,
                },
            ) => std::ptr::eq(container, c2) && depth == d2 && kept == k2,
            _ => false,
        }
    }

    /// Every key the table names, and two it does not.
    fn vocabulary() -> Vec<&'static str> {
        let mut words: Vec<&'static str> = TABLE
            .lines()
            .filter(|l| !l.starts_with('#'))
            .flat_map(|l| l.split(['\t', ',', '.']))
            .filter(|w| !w.is_empty() && *w != "*" && *w != "-")
            .collect();
        words.extend(["unlisted", "value"]);
        words.sort_unstable();
        words.dedup();
        words
    }

    fn step_of(seg: &Seg) -> Step<'static> {
        match seg {
            Seg::Key(key) => Step::Key(key),
            Seg::Any => Step::Index,
        }
    }

    proptest::proptest! {
        /// Walking any record type's shape — along a container's path and one of its kept
        /// paths for a while, then anywhere — the indexed steps land where comparing with
        /// every path does.
        #[test]
        fn indexed_steps_walk_as_comparing_every_path_does(
            type_pick in 0usize..16,
            container_pick in 0usize..8,
            kept_pick in 0usize..64,
            along in 0usize..8,
            then in proptest::collection::vec(proptest::option::of(0usize..400), 0..4),
        ) {
            let types: Vec<&Shape> = SHAPES.by_type.values().chain([&SHAPES.other]).collect();
            let words = vocabulary();
            let shape = types[type_pick % types.len()];
            let mut walk: Vec<Step<'static>> = Vec::new();
            if let Some(c) = shape.containers.get(container_pick % shape.containers.len().max(1)) {
                walk.extend(c.path.iter().map(step_of));
                if let Some(k) = c.kept.get(kept_pick % c.kept.len().max(1)) {
                    walk.extend(k.iter().map(step_of));
                }
            }
            walk.truncate(along);
            walk.extend(then.iter().map(|pick| match pick {
                Some(i) => Step::Key(words[i % words.len()]),
                None => Step::Index,
            }));
            let (mut indexed, mut scanned) = (Scope::root(shape), Scope::root(shape));
            for step in walk {
                indexed = indexed.child(step);
                scanned = child_by_scan(scanned, step);
                proptest::prop_assert!(same(indexed, scanned), "{indexed:?} against {scanned:?}");
            }
        }
    }

    fn texts(record_type: &str, doc: &Value) -> Vec<(String, String)> {
        let mut out = Vec::new();
        shape(record_type).for_each_text(doc, &mut |p, t| out.push((p.to_string(), t.to_string())));
        out
    }

    #[test]
    fn the_table_has_no_malformed_rows() {
        let (shapes, errors) = parse_table(TABLE);
        assert!(errors.is_empty(), "{errors:#?}");
        for t in ["AUTH_LOG", "AUDIT_LOG", "APP_AUTH_LOG"] {
            assert!(!shapes.by_type[t].has_text(), "{t} carries no text");
        }
        for t in [
            "CONVERSATION_MESSAGE",
            "APP_LOG",
            "CODEX_LOG",
            "CODEX_SECURITY_LOG",
            "CUSTOM_AGENTS_LOG",
        ] {
            assert!(shapes.by_type[t].has_text(), "{t} carries text");
        }
        assert!(shapes.other.has_text());
    }

    #[test]
    fn hash_replaces_the_text_with_its_sha256_and_length_in_details_and_raw() {
        let mut e = event("CONVERSATION_MESSAGE", message("secret plan"), message("secret plan"));
        apply(ContentMode::Hash, &mut e);
        let expected = json!({"sha256": hex::encode(Sha256::digest(b"secret plan")), "length": 11});
        assert_eq!(e.details["message"]["content"]["value"], expected);
        assert_eq!(
            e.raw.as_ref().expect("raw").tree()["message"]["content"]["value"],
            expected
        );
        assert_eq!(e.details["message"]["content"]["type"], "text", "only the text changes");
        assert_eq!(e.details["message"]["id"], "m1");
        let text = serde_json::to_string(&e).expect("json");
        assert!(!text.contains("secret plan"), "{text}");
    }

    #[test]
    fn drop_removes_the_text_and_keep_leaves_it() {
        let mut dropped = event("CONVERSATION_MESSAGE", message("secret"), message("secret"));
        apply(ContentMode::Drop, &mut dropped);
        assert!(dropped.details["message"]["content"].get("value").is_none());
        assert_eq!(dropped.details["message"]["content"]["type"], "text");
        assert!(!serde_json::to_string(&dropped).expect("json").contains("secret"));
        let mut kept = event("CONVERSATION_MESSAGE", message("secret"), message("secret"));
        apply(ContentMode::Keep, &mut kept);
        assert_eq!(kept.details["message"]["content"]["value"], "secret");
    }

    #[test]
    fn every_string_in_tool_arguments_is_text_but_client_context_and_numbers_are_not() {
        let raw = json!({
            "app_id": "asdk_app_1", "log_type": "request",
            "input": {"query": "in:general salaries", "limit": 20, "filters": {"who": ["cfo"]},
                      "_meta": {"openai/userAgent": "ChatGPT/1.2026", "openai/userLocation": {"city": "London"}}},
        });
        let found = texts("APP_LOG", &raw);
        assert_eq!(
            found,
            vec![
                ("/input/filters/who/0".to_string(), "cfo".to_string()),
                ("/input/query".to_string(), "in:general salaries".to_string())
            ]
        );
        let mut e = event("APP_LOG", raw.clone(), json!({"input": raw["input"]}));
        apply(ContentMode::Hash, &mut e);
        let raw = e.raw.as_ref().expect("raw").tree();
        assert_eq!(raw["input"]["limit"], 20);
        assert_eq!(raw["input"]["_meta"]["openai/userAgent"], "ChatGPT/1.2026");
        assert_eq!(raw["input"]["query"]["length"], 19);
        assert_eq!(raw["app_id"], "asdk_app_1");
    }

    #[test]
    fn a_field_nobody_listed_under_a_container_is_text() {
        let raw = json!({"event_type": "PROMPT_RESPONSE_RECEIVED",
                         "event_details": {"detail_type": "PROMPT_RESPONSE_RECEIVED", "model": "gpt-5",
                                           "brand_new_field": "what the user typed"}});
        let found: Vec<String> = texts("CODEX_LOG", &raw).into_iter().map(|(p, _)| p).collect();
        assert_eq!(found, ["/event_details/brand_new_field"]);
    }

    #[test]
    fn a_record_type_nobody_has_read_is_text_everywhere_but_its_envelope() {
        let raw = json!({"event_id": "e1", "type": "CHATGPT_PLUGIN_SPREADSHEET_LOG", "timestamp": "2026-01-01T00:00:00Z",
                         "actor": {"type": "ACCOUNT_USER", "user_email": "a@b.c"},
                         "sheet": {"name": "Payroll", "cells": ["Ann 120k"]}});
        let found: Vec<String> = texts("CHATGPT_PLUGIN_SPREADSHEET_LOG", &raw)
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        assert_eq!(found, ["Ann 120k", "Payroll"], "keys in order: cells, name");
    }

    #[test]
    fn every_text_of_a_record_with_more_texts_than_are_remembered_gets_its_own_digest() {
        let n = Digests::KEPT * 3;
        let input: Map<String, Value> = (0..n).map(|i| (format!("q{i}"), json!(format!("text {i}")))).collect();
        let raw = json!({"app_id": "a1", "input": input});
        let mut e = event("APP_LOG", raw.clone(), json!({"input": raw["input"]}));
        apply(ContentMode::Hash, &mut e);
        let raw = e.raw.as_ref().expect("raw").tree();
        for i in 0..n {
            let expected = digest(&format!("text {i}"));
            assert_eq!(e.details["input"][format!("q{i}")], expected, "details q{i}");
            assert_eq!(raw["input"][format!("q{i}")], expected, "raw q{i}");
        }
    }

    #[test]
    fn hashing_twice_changes_nothing_and_the_conversation_title_is_hashed_in_the_target_too() {
        let raw = json!({"message": {"content": {"type": "text", "value": "hi"}},
                         "conversation": {"id": "c1", "title": "Payroll questions"}});
        let mut e = event("CONVERSATION_MESSAGE", raw.clone(), raw);
        e.target = Some(crate::normalize::Target {
            target_type: "conversation".into(),
            id: Some("c1".into()),
            name: Some("Payroll questions".into()),
        });
        apply(ContentMode::Hash, &mut e);
        let once = e.clone();
        apply(ContentMode::Hash, &mut e);
        assert_eq!(e, once);
        let shipped = serde_json::to_string(&e).expect("json");
        assert!(!shipped.contains("Payroll"), "{shipped}");
        assert!(
            e.target
                .as_ref()
                .and_then(|t| t.name.as_deref())
                .is_some_and(|n| n.starts_with("sha256:"))
        );
        apply(ContentMode::Drop, &mut e);
        assert_eq!(e.target.and_then(|t| t.name), None);
    }
}
