//! Reading a JSON document whichever form holds it: `serde_json`'s tree (a record built
//! here, or one a stage edits) or a tape over the record's text ([`super::tape`]), the form
//! a compliance record is read in. The normalizer, the content walk and the guardrails'
//! `raw.…` fields read either through [`Tree`].

use serde_json::{Map, Value};

use super::tape::{Node, Tape};

/// Read-only access to a JSON document through copyable handles. Where an object repeats a
/// key, the last one counts, as `serde_json` keeps it.
pub trait Tree<'a>: Copy {
    /// The member `key` of an object.
    fn get(self, key: &str) -> Option<Self>;
    /// The elements of an array; none for anything else.
    fn items(self) -> impl Iterator<Item = Self>;
    /// The members of an object in key order (a repeated key once: its last value), as
    /// `serde_json`'s map iterates them; none for anything else.
    fn members(self) -> impl Iterator<Item = (&'a str, Self)>;
    fn as_str(self) -> Option<&'a str>;
    fn as_bool(self) -> Option<bool>;
    fn is_null(self) -> bool;
    fn is_object(self) -> bool;
    fn is_array(self) -> bool;
    /// The document as a `serde_json` tree of its own.
    fn to_value(self) -> Value;

    /// The element `index` of an array.
    fn at_index(self, index: usize) -> Option<Self> {
        self.items().nth(index)
    }

    /// The value at `path`: object keys, and array indices written as numbers. Literal
    /// steps rather than a JSON pointer, so finding one neither scans nor unescapes a pointer.
    fn at_path(self, path: &[impl AsRef<str>]) -> Option<Self> {
        path.iter().try_fold(self, |value, step| {
            let step = step.as_ref();
            if value.is_array() {
                value.at_index(step.parse::<usize>().ok()?)
            } else {
                value.get(step)
            }
        })
    }
}

impl<'a> Tree<'a> for &'a Value {
    fn get(self, key: &str) -> Option<Self> {
        self.as_object()?.get(key)
    }
    fn items(self) -> impl Iterator<Item = Self> {
        self.as_array().map_or(&[][..], Vec::as_slice).iter()
    }
    fn members(self) -> impl Iterator<Item = (&'a str, Self)> {
        self.as_object().into_iter().flatten().map(|(k, v)| (k.as_str(), v))
    }
    fn as_str(self) -> Option<&'a str> {
        Value::as_str(self)
    }
    fn as_bool(self) -> Option<bool> {
        Value::as_bool(self)
    }
    fn is_null(self) -> bool {
        Value::is_null(self)
    }
    fn is_object(self) -> bool {
        Value::is_object(self)
    }
    fn is_array(self) -> bool {
        Value::is_array(self)
    }
    fn to_value(self) -> Value {
        self.clone()
    }
    fn at_index(self, index: usize) -> Option<Self> {
        self.as_array()?.get(index)
    }
}

/// A node of a tape, with the text and the tape it reads: what a compliance record is read
/// through. [`At::root`] must be given the text the tape was parsed from.
#[derive(Clone, Copy)]
pub struct At<'a> {
    text: &'a str,
    tape: &'a Tape,
    i: usize,
}

impl<'a> At<'a> {
    /// The document's root.
    pub fn root(text: &'a str, tape: &'a Tape) -> Self {
        Self { text, tape, i: 0 }
    }
    /// This node.
    fn node(self) -> Node {
        self.tape.nodes[self.i]
    }
    /// The index of the node after this one and everything inside it.
    fn next(self) -> usize {
        match self.node() {
            Node::Object { end } | Node::Array { end } => end as usize,
            _ => self.i + 1,
        }
    }
    /// Whether this string is `key` (bytes compared, no slicing of the text as `str`).
    fn key_is(self, key: &str) -> bool {
        match self.node() {
            Node::Str { start, end } => self.text.as_bytes().get(start as usize..end as usize) == Some(key.as_bytes()),
            Node::Unescaped { start, end } => {
                self.tape.unescaped.as_bytes().get(start as usize..end as usize) == Some(key.as_bytes())
            }
            _ => false,
        }
    }
    fn at(self, i: usize) -> Self {
        Self { i, ..self }
    }
    /// The nodes directly inside a container (an object's keys and values by turn), each
    /// with what is inside it skipped; none for anything else.
    fn inside(self) -> impl Iterator<Item = Self> {
        let end = match self.node() {
            Node::Object { end } | Node::Array { end } => end as usize,
            _ => self.i + 1,
        };
        let mut i = self.i + 1;
        std::iter::from_fn(move || {
            (i < end).then(|| {
                let node = self.at(i);
                i = node.next();
                node
            })
        })
    }
    /// An object's (key, value) pairs as sent; none for anything else.
    fn pairs(self) -> impl Iterator<Item = (Self, Self)> {
        let mut inside = self.inside().filter(move |_| self.is_object());
        std::iter::from_fn(move || Some((inside.next()?, inside.next()?)))
    }
}

impl<'a> Tree<'a> for At<'a> {
    fn get(self, key: &str) -> Option<Self> {
        let mut found = None;
        for (k, v) in self.pairs() {
            if k.key_is(key) {
                found = Some(v);
            }
        }
        found
    }
    fn items(self) -> impl Iterator<Item = Self> {
        self.inside().filter(move |_| self.is_array())
    }
    fn members(self) -> impl Iterator<Item = (&'a str, Self)> {
        let mut all: smallvec::SmallVec<[(&'a str, Self); 16]> =
            self.pairs().filter_map(|(k, v)| Some((k.as_str()?, v))).collect();
        // Stable: among repeats the last stays last.
        all.sort_by(|a, b| a.0.cmp(b.0));
        let n = all.len();
        let keep: smallvec::SmallVec<[(&'a str, Self); 16]> = (0..n)
            .filter(|&j| j + 1 == n || all[j + 1].0 != all[j].0)
            .map(|j| all[j])
            .collect();
        keep.into_iter()
    }
    fn as_str(self) -> Option<&'a str> {
        match self.node() {
            Node::Str { start, end } => Some(&self.text[start as usize..end as usize]),
            Node::Unescaped { start, end } => Some(&self.tape.unescaped[start as usize..end as usize]),
            _ => None,
        }
    }
    fn as_bool(self) -> Option<bool> {
        match self.node() {
            Node::Bool(b) => Some(b),
            _ => None,
        }
    }
    fn is_null(self) -> bool {
        matches!(self.node(), Node::Null)
    }
    fn is_object(self) -> bool {
        matches!(self.node(), Node::Object { .. })
    }
    fn is_array(self) -> bool {
        matches!(self.node(), Node::Array { .. })
    }
    fn to_value(self) -> Value {
        match self.node() {
            Node::Object { .. } => {
                // Built in one go (sorted, then laid out) rather than inserted key by key.
                let members: Vec<(String, Value)> = self
                    .pairs()
                    .map(|(k, v)| (k.as_str().unwrap_or_default().to_string(), v.to_value()))
                    .collect();
                Value::Object(members.into_iter().collect::<Map<String, Value>>())
            }
            Node::Array { .. } => Value::Array(self.items().map(Tree::to_value).collect()),
            Node::Str { .. } | Node::Unescaped { .. } => Value::String(self.as_str().unwrap_or_default().to_string()),
            Node::Num { start, end } => {
                serde_json::from_str(&self.text[start as usize..end as usize]).unwrap_or(Value::Null)
            }
            Node::Bool(b) => Value::Bool(b),
            Node::Null => Value::Null,
        }
    }
}

#[cfg(test)]
mod tests;
