//! A JSON document as one vector of nodes over its text: a compliance record is read this
//! way instead of into a `serde_json::Value` tree. Strings stay where they are in the text
//! (only those with escapes are written out once, into one buffer beside the nodes), objects
//! and arrays are a node that says where they end, so reading a record allocates two
//! vectors instead of a string per key and value and a map per object, and letting it go
//! frees those two (benches/README.md, "a record as a tape").
//!
//! The grammar is `serde_json`'s: the same strings, escapes, numbers and nesting limit are
//! accepted and refused (the tests hold the two to each other). [`super::tree::At`] reads a
//! tape.

/// One node. Offsets are `u32`: a line longer than 4 GiB never reaches here (lines are
/// bounded far below that).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Node {
    /// Its members follow, key and value by turn; `end` is the index after its last node.
    Object {
        end: u32,
    },
    /// Its elements follow; `end` is the index after its last node.
    Array {
        end: u32,
    },
    /// A string without escapes: the text's bytes `start..end`.
    Str {
        start: u32,
        end: u32,
    },
    /// A string with escapes, written out: the side buffer's bytes `start..end`.
    Unescaped {
        start: u32,
        end: u32,
    },
    /// A number: the text's bytes `start..end`.
    Num {
        start: u32,
        end: u32,
    },
    Bool(bool),
    Null,
}

/// A parsed document: its nodes in document order, and its unescaped strings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tape {
    pub(super) nodes: Vec<Node>,
    pub(super) unescaped: String,
}

/// Why a text is not one JSON document, and the byte where that was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TapeError {
    pub what: &'static str,
    pub at: usize,
}

impl std::fmt::Display for TapeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at byte {}", self.what, self.at)
    }
}

impl std::error::Error for TapeError {}

/// How deep arrays and objects may nest: `serde_json` refuses the 128th level.
const MAX_DEPTH: usize = 127;

/// Parses `text`, exactly one JSON value with whitespace around it.
pub fn parse(text: &str) -> Result<Tape, TapeError> {
    let mut parser = Parser {
        bytes: text.as_bytes(),
        text,
        at: 0,
        depth: 0,
        // About one node a dozen bytes in the records this reads.
        tape: Tape {
            nodes: Vec::with_capacity(text.len() / 12 + 4),
            unescaped: String::new(),
        },
    };
    parser.space();
    parser.value()?;
    parser.space();
    if parser.at != parser.bytes.len() {
        return Err(parser.error("trailing characters"));
    }
    Ok(parser.tape)
}

struct Parser<'a> {
    bytes: &'a [u8],
    text: &'a str,
    at: usize,
    depth: usize,
    tape: Tape,
}

impl Parser<'_> {
    fn error(&self, what: &'static str) -> TapeError {
        TapeError { what, at: self.at }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.at += 1;
        }
    }

    fn value(&mut self) -> Result<(), TapeError> {
        match self.peek() {
            Some(b'{') => self.container(b'}'),
            Some(b'[') => self.container(b']'),
            Some(b'"') => {
                let node = self.string()?;
                self.tape.nodes.push(node);
                Ok(())
            }
            Some(b't') => self.word("true", Node::Bool(true)),
            Some(b'f') => self.word("false", Node::Bool(false)),
            Some(b'n') => self.word("null", Node::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.error("expected a value")),
            None => Err(self.error("end of text while parsing a value")),
        }
    }

    fn word(&mut self, word: &str, node: Node) -> Result<(), TapeError> {
        if !self.bytes[self.at..].starts_with(word.as_bytes()) {
            return Err(self.error("expected a value"));
        }
        self.at += word.len();
        self.tape.nodes.push(node);
        Ok(())
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
        self.at - start
    }

    /// A number as JSON writes it. One that is not an integer, or too long to be one, must
    /// also be a finite `f64`, as `serde_json` requires.
    fn number(&mut self) -> Result<(), TapeError> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek() {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.error("invalid number")),
        }
        let mut integer = true;
        if self.peek() == Some(b'.') {
            self.at += 1;
            integer = false;
            if self.digits() == 0 {
                return Err(self.error("invalid number"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            integer = false;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if self.digits() == 0 {
                return Err(self.error("invalid number"));
            }
        }
        let text = &self.text[start..self.at];
        if !integer || text.len() > 18 {
            let fits = text.parse::<i64>().is_ok() || text.parse::<u64>().is_ok();
            if !fits && !text.parse::<f64>().is_ok_and(f64::is_finite) {
                return Err(self.error("number out of range"));
            }
        }
        self.tape.nodes.push(Node::Num {
            start: start as u32,
            end: self.at as u32,
        });
        Ok(())
    }

    /// A string (at its opening quote): in place when it has no escapes.
    fn string(&mut self) -> Result<Node, TapeError> {
        let start = self.at + 1;
        let Some(len) = memchr::memchr2(b'"', b'\\', &self.bytes[start..]) else {
            self.at = self.bytes.len();
            return Err(self.error("end of text while parsing a string"));
        };
        let stop = start + len;
        self.no_control(start, stop)?;
        if self.bytes[stop] == b'"' {
            self.at = stop + 1;
            return Ok(Node::Str {
                start: start as u32,
                end: stop as u32,
            });
        }
        self.escaped(start, stop)
    }

    /// Control characters must be escaped in a JSON string. (Checked without an early exit,
    /// so the loop is vectorized.)
    fn no_control(&mut self, start: usize, stop: usize) -> Result<(), TapeError> {
        if self.bytes[start..stop]
            .iter()
            .fold(false, |found, &b| found | (b < 0x20))
        {
            self.at = start + self.bytes[start..stop].iter().position(|&b| b < 0x20).unwrap_or(0);
            return Err(self.error("control character in a string"));
        }
        Ok(())
    }

    /// The rest of a string from its first escape (at `stop`), written out into the side
    /// buffer.
    fn escaped(&mut self, start: usize, mut stop: usize) -> Result<Node, TapeError> {
        let out_start = self.tape.unescaped.len();
        // The text is a `str` and the cuts fall on ASCII bytes, so every piece is a `str`.
        self.tape.unescaped.push_str(&self.text[start..stop]);
        loop {
            self.at = stop + 1;
            let escape = self
                .peek()
                .ok_or_else(|| self.error("end of text while parsing a string"))?;
            self.at += 1;
            let c = match escape {
                b'"' => '"',
                b'\\' => '\\',
                b'/' => '/',
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'n' => '\n',
                b'r' => '\r',
                b't' => '\t',
                b'u' => self.unicode()?,
                _ => return Err(self.error("invalid escape")),
            };
            self.tape.unescaped.push(c);
            let from = self.at;
            let Some(len) = memchr::memchr2(b'"', b'\\', &self.bytes[from..]) else {
                self.at = self.bytes.len();
                return Err(self.error("end of text while parsing a string"));
            };
            stop = from + len;
            self.no_control(from, stop)?;
            self.tape.unescaped.push_str(&self.text[from..stop]);
            if self.bytes[stop] == b'"' {
                self.at = stop + 1;
                return Ok(Node::Unescaped {
                    start: out_start as u32,
                    end: self.tape.unescaped.len() as u32,
                });
            }
        }
    }

    /// The character of a `\u` escape (after the `u`), a surrogate pair taken together.
    fn unicode(&mut self) -> Result<char, TapeError> {
        let first = self.hex4()?;
        let code = match first {
            0xD800..=0xDBFF => {
                if !self.bytes[self.at..].starts_with(b"\\u") {
                    return Err(self.error("lone leading surrogate in hex escape"));
                }
                self.at += 2;
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return Err(self.error("lone leading surrogate in hex escape"));
                }
                0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(self.error("lone trailing surrogate in hex escape")),
            other => other,
        };
        char::from_u32(code).ok_or_else(|| self.error("invalid unicode code point"))
    }

    fn hex4(&mut self) -> Result<u32, TapeError> {
        let digits = self
            .bytes
            .get(self.at..self.at + 4)
            .ok_or_else(|| self.error("end of text while parsing a string"))?;
        let mut code = 0;
        for &d in digits {
            let digit = char::from(d).to_digit(16).ok_or_else(|| self.error("invalid escape"))?;
            code = code * 16 + digit;
        }
        self.at += 4;
        Ok(code)
    }

    /// An object (`close` = `}`: string keys and values by turn) or an array (`]`).
    fn container(&mut self, close: u8) -> Result<(), TapeError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error("recursion limit exceeded"));
        }
        let here = self.tape.nodes.len();
        self.tape.nodes.push(Node::Null);
        self.at += 1;
        self.space();
        if self.peek() == Some(close) {
            self.at += 1;
        } else {
            loop {
                if close == b'}' {
                    if self.peek() != Some(b'"') {
                        return Err(self.error("key must be a string"));
                    }
                    let key = self.string()?;
                    self.tape.nodes.push(key);
                    self.space();
                    if self.peek() != Some(b':') {
                        return Err(self.error("expected `:`"));
                    }
                    self.at += 1;
                    self.space();
                }
                self.value()?;
                self.space();
                match self.peek() {
                    Some(b',') => {
                        self.at += 1;
                        self.space();
                    }
                    Some(c) if c == close => {
                        self.at += 1;
                        break;
                    }
                    _ => return Err(self.error("expected `,` or the container's end")),
                }
            }
        }
        let end = self.tape.nodes.len() as u32;
        self.tape.nodes[here] = if close == b'}' {
            Node::Object { end }
        } else {
            Node::Array { end }
        };
        self.depth -= 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
