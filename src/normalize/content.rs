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
use super::tree::Tree;

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
    pub fn for_each_text<'a, T: Tree<'a>>(&self, doc: T, f: &mut impl FnMut(&str, &str)) {
        // Room for a deep path, so the walk does not grow it step by step.
        let mut pointer = String::with_capacity(128);
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

fn visit<'a, T: Tree<'a>>(v: T, scope: Scope<'_>, pointer: &mut String, f: &mut impl FnMut(&str, &str)) {
    if let Some(s) = v.as_str() {
        if scope.is_text() {
            f(pointer, s);
        }
    } else if v.is_object() {
        for (k, child) in v.members() {
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
    } else if v.is_array() {
        let scope = scope.child(Step::Index);
        if matches!(scope, Scope::Kept) {
            return;
        }
        for (i, item) in v.items().enumerate() {
            let len = pointer.len();
            // Writing to a String cannot fail.
            let _ = write!(pointer, "/{i}");
            visit(item, scope, pointer, f);
            pointer.truncate(len);
        }
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
        let Value::String(s) = std::mem::replace(text, digest) else {
            unreachable!("matched a string above")
        };
        if self.0.len() < Self::KEPT {
            self.0.push((s, text.clone()));
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
    // A record type without containers has no text (`AUTH_LOG`, …): its record stays the
    // text it arrived as, rather than being parsed into a tree to change nothing and written
    // out from that tree (~10k instructions a record).
    if let Some(raw) = event.raw.as_mut().filter(|_| !shape.containers.is_empty()) {
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
mod tests;
