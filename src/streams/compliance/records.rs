//! A spooled log file as records, whatever shape the platform sent: JSON Lines (each line
//! strictly one document, else a run of concatenated documents `{..}{..}`, else malformed),
//! or concatenated / pretty-printed JSON documents spanning lines (`{\n..\n}\n{..}`). The
//! shape is decided once per file from its first line; a top-level array counts as its
//! elements. Memory stays bounded: lines through [`BoundedLines`], documents streamed from a
//! blocking reader through a small channel, one document at a time.

use std::io::{self, BufRead, Read};
use std::path::Path;

use serde_json::Value;
use serde_json::value::RawValue;
use tokio::io::BufReader;
use tokio::sync::mpsc;

use super::lines::{BoundedLines, Line, MAX_LINE_BYTES, READ_BUFFER};
use crate::normalize::Tape;
use crate::openai::wire::{JsonText, Record, is_json_space};
use crate::state::Spool;

/// How a file's records are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Format {
    /// One document per line (lines that hold several are split).
    Jsonl,
    /// Documents one after another, across lines.
    Concatenated,
}

/// What one numbered piece of the file (a line, or a document) gave.
#[derive(Debug)]
pub enum Piece {
    /// Nothing to ship (a blank line).
    Blank,
    /// A line that looks like one JSON object and nothing else, as nearly every line is: not
    /// parsed yet, so the reader can read it as a tape ([`ObjectLine::read`]).
    Object(ObjectLine),
    /// Anything else, parsed.
    Parsed(Parsed),
}

/// A piece read by the general path.
#[derive(Debug)]
pub enum Parsed {
    /// Records to ship, in order, each with its text as received.
    Records(Vec<Record>),
    /// Text that is not JSON, and why.
    Malformed { text: Vec<u8>, reason: String },
}

/// A line whose text (JSON whitespace around it aside) begins with `{` and is UTF-8.
#[derive(Debug)]
pub struct ObjectLine {
    line: String,
    /// Where the text lies in the line.
    start: usize,
    end: usize,
}

impl ObjectLine {
    /// The line as an object line, or its bytes back when it cannot be one.
    fn new(bytes: Vec<u8>) -> Result<Self, Vec<u8>> {
        let (Some(start), Some(last)) = (
            bytes.iter().position(|&b| !is_json_space(b)),
            bytes.iter().rposition(|&b| !is_json_space(b)),
        ) else {
            return Err(bytes);
        };
        if bytes[start] != b'{' {
            return Err(bytes);
        }
        // UTF-8 checked once, in bulk; the parser then reads it as text.
        match String::from_utf8(bytes) {
            Ok(line) => Ok(Self {
                line,
                start,
                end: last + 1,
            }),
            Err(e) => Err(e.into_bytes()),
        }
    }

    /// The text read as a tape, not a tree (`None` when it is not exactly one JSON value
    /// after all; [`Self::into_parsed`] then says what it is).
    pub fn read(&self) -> Option<Tape> {
        crate::normalize::tape(self.text()).ok()
    }

    pub fn text(&self) -> &str {
        &self.line[self.start..self.end]
    }

    /// The text, kept as received. The caller has read it ([`Self::read`]) without an error.
    pub fn into_text(mut self) -> JsonText {
        if self.start == 0 && self.end == self.line.len() {
            return JsonText::parsed(self.line.into_boxed_str());
        }
        self.line.truncate(self.end);
        JsonText::parsed(self.line.split_off(self.start).into_boxed_str())
    }

    /// What the general path makes of the line: concatenated documents, or a malformed line.
    pub fn into_parsed(self) -> Parsed {
        parse_line(self.line.into_bytes())
    }
}

/// Pieces of one file, numbered from 1 (lines in [`Format::Jsonl`], documents otherwise).
pub enum Pieces {
    Lines(BoundedLines<BufReader<tokio::fs::File>>),
    Documents(mpsc::Receiver<(u64, Parsed)>),
}

/// Documents the blocking reader may have parsed ahead of the stream.
const DOCUMENTS_AHEAD: usize = 16;

/// How much of what follows a parse error is kept for the dead-letter file.
const AFTER_ERROR_KEPT: usize = 64 * 1024;

/// The format of the spooled file at `path`: JSON Lines unless its first document is valid
/// and runs past the end of its first non-blank line (so a malformed first line of a JSON
/// Lines file is still only that line).
pub async fn sniff(path: &Path) -> io::Result<Format> {
    let file = Spool::open(path).await?.into_std().await;
    tokio::task::spawn_blocking(move || {
        let mut reader = io::BufReader::with_capacity(READ_BUFFER, file);
        // Where the first non-blank line ends.
        let mut first_line_end = 0usize;
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = (&mut reader).take(MAX_LINE_BYTES as u64).read_until(b'\n', &mut line)?;
            if n == 0 {
                return Ok(Format::Jsonl);
            }
            first_line_end += n;
            if !line.iter().all(u8::is_ascii_whitespace) {
                break;
            }
        }
        if split_line(&line).is_ok() {
            return Ok(Format::Jsonl);
        }
        // The first document, read from the start again.
        let mut file = reader.into_inner();
        io::Seek::rewind(&mut file)?;
        let mut stream = serde_json::Deserializer::from_reader(io::BufReader::new(file)).into_iter::<Value>();
        Ok(match stream.next() {
            Some(Ok(_)) if stream.byte_offset() > first_line_end => Format::Concatenated,
            _ => Format::Jsonl,
        })
    })
    .await
    .map_err(io::Error::other)?
}

/// The records of one line: strictly one document, else a run of concatenated ones.
pub fn split_line(bytes: &[u8]) -> Result<Vec<Record>, serde_json::Error> {
    match one_object(bytes) {
        Some(record) => Ok(vec![record]),
        None => split_documents(bytes),
    }
}

/// [`split_line`] for any line: one document (an object or an array of records), or a run of
/// concatenated ones.
fn split_documents(bytes: &[u8]) -> Result<Vec<Record>, serde_json::Error> {
    match serde_json::from_slice::<Box<RawValue>>(bytes) {
        Ok(document) => records_of(document).map_err(|(e, _)| e),
        Err(strict) => {
            let documents: Result<Vec<Box<RawValue>>, _> = serde_json::Deserializer::from_slice(bytes)
                .into_iter::<Box<RawValue>>()
                .collect();
            match documents {
                Ok(documents) if !documents.is_empty() => {
                    let mut records = Vec::new();
                    for document in documents {
                        records.extend(records_of(document).map_err(|(e, _)| e)?);
                    }
                    Ok(records)
                }
                _ => Err(strict),
            }
        }
    }
}

/// The line as one record when it is exactly one JSON object (nearly every line is): parsed
/// once, into its tree, and its text kept as it was, without the second pass that making a
/// `RawValue` of it would be. Anything else (an array, concatenated documents, an error) is
/// left to the general path.
fn one_object(bytes: &[u8]) -> Option<Record> {
    let start = bytes.iter().position(|&b| !is_json_space(b))?;
    let end = bytes.iter().rposition(|&b| !is_json_space(b))?;
    let text = &bytes[start..=end];
    if !text.starts_with(b"{") {
        return None;
    }
    // UTF-8 checked once, in bulk; the parser then reads it as text.
    let text = std::str::from_utf8(text).ok()?;
    let tree = serde_json::from_str::<Value>(text).ok()?;
    Some(Record::from_parsed(JsonText::parsed(text.into()), tree))
}

/// The records of one document, each keeping its text as received (a top-level array is its
/// elements) and its tree: parsed here, so a record `RawValue` accepts but `serde_json`
/// cannot build (nested past 128 levels) fails its document, which goes to the dead-letter
/// file, instead of reading as `null`. On an error, the document's text for that file.
fn records_of(document: Box<RawValue>) -> Result<Vec<Record>, (serde_json::Error, Vec<u8>)> {
    let record =
        |text: Box<RawValue>| serde_json::from_str::<Value>(text.get()).map(|tree| Record::from_parsed(text, tree));
    let parsed = if document.get().starts_with('[') {
        serde_json::from_str::<Vec<Box<RawValue>>>(document.get())
            .and_then(|texts| texts.into_iter().map(record).collect::<Result<Vec<_>, _>>())
    } else {
        match serde_json::from_str::<Value>(document.get()) {
            Ok(tree) => return Ok(vec![Record::from_parsed(document, tree)]),
            Err(e) => Err(e),
        }
    };
    parsed.map_err(|e| (e, document.get().as_bytes().to_vec()))
}

impl Pieces {
    /// Opens the spooled file at `path` to be read as `format`.
    pub async fn open(path: &Path, format: Format) -> io::Result<Self> {
        let handle = Spool::open(path).await?;
        Ok(match format {
            Format::Jsonl => Self::Lines(BoundedLines::new(
                BufReader::with_capacity(READ_BUFFER, handle),
                MAX_LINE_BYTES,
            )),
            Format::Concatenated => {
                let file = handle.into_std().await;
                // A second handle on the same open file, to read past a parse error.
                let again = file.try_clone()?;
                let (tx, rx) = mpsc::channel(DOCUMENTS_AHEAD);
                tokio::task::spawn_blocking(move || {
                    documents(io::BufReader::with_capacity(READ_BUFFER, file), again, &tx)
                });
                Self::Documents(rx)
            }
        })
    }

    /// The next piece and its number; `None` at the end.
    pub async fn next(&mut self) -> io::Result<Option<(u64, Piece)>> {
        match self {
            Self::Lines(lines) => Ok(lines.next_line().await?.map(|(n, line)| (n, line_piece(line)))),
            Self::Documents(rx) => Ok(rx.recv().await.map(|(n, parsed)| (n, Piece::Parsed(parsed)))),
        }
    }
}

fn line_piece(line: Line) -> Piece {
    match line {
        Line::Text(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Piece::Blank,
        Line::Text(bytes) => match ObjectLine::new(bytes) {
            Ok(object) => Piece::Object(object),
            Err(bytes) => Piece::Parsed(parse_line(bytes)),
        },
        Line::TooLong { len, prefix } => Piece::Parsed(Parsed::Malformed {
            text: prefix,
            reason: format!("line of {len} bytes exceeds the {MAX_LINE_BYTES}-byte limit; its first bytes are kept"),
        }),
    }
}

fn parse_line(bytes: Vec<u8>) -> Parsed {
    match split_line(&bytes) {
        Ok(records) => Parsed::Records(records),
        Err(e) => Parsed::Malformed {
            text: bytes,
            reason: format!("not valid JSON: {e}"),
        },
    }
}

/// Streams the documents of `reader` (the file `again` also reads) into `tx` (blocking). A parse
/// error ends the file: what follows cannot be re-synchronised, so its first bytes are
/// handed over as malformed.
fn documents<R: BufRead>(reader: R, again: std::fs::File, tx: &mpsc::Sender<(u64, Parsed)>) {
    let mut stream = serde_json::Deserializer::from_reader(reader).into_iter::<Box<RawValue>>();
    let mut number = 0u64;
    loop {
        let piece = match stream.next() {
            None => return,
            Some(Ok(document)) => match records_of(document) {
                Ok(records) => Parsed::Records(records),
                Err((e, text)) => Parsed::Malformed {
                    text,
                    reason: format!("not valid JSON: {e}"),
                },
            },
            Some(Err(e)) => {
                let offset = stream.byte_offset();
                let reason = format!("not valid JSON after byte {offset}: {e}; the rest of the file cannot be read");
                let rest = rest_of(again, offset).unwrap_or_default();
                number += 1;
                let _ = tx.blocking_send((number, Parsed::Malformed { text: rest, reason }));
                return;
            }
        };
        number += 1;
        if tx.blocking_send((number, piece)).is_err() {
            return;
        }
    }
}

/// Up to [`AFTER_ERROR_KEPT`] bytes of `file` from `offset` on.
fn rest_of(mut file: std::fs::File, offset: usize) -> io::Result<Vec<u8>> {
    io::Seek::seek(&mut file, io::SeekFrom::Start(offset as u64))?;
    let mut rest = Vec::new();
    file.take(AFTER_ERROR_KEPT as u64).read_to_end(&mut rest)?;
    Ok(rest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::{At, Tree};
    use serde_json::json;

    async fn read_all(body: &[u8]) -> (Format, Vec<(u64, Vec<Record>)>, usize) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f.part");
        std::fs::write(&path, body).expect("write");
        let format = sniff(&path).await.expect("sniff");
        let mut pieces = Pieces::open(&path, format).await.expect("open");
        let (mut records, mut malformed) = (Vec::new(), 0);
        while let Some((n, piece)) = pieces.next().await.expect("read") {
            // An object line as the stream reads it: as a tape, else by the general path.
            let parsed = match piece {
                Piece::Blank => continue,
                Piece::Object(line) => match line.read().map(|tape| At::root(line.text(), &tape).to_value()) {
                    Some(tree) => Parsed::Records(vec![Record::from_parsed(line.into_text(), tree)]),
                    None => line.into_parsed(),
                },
                Piece::Parsed(parsed) => parsed,
            };
            match parsed {
                Parsed::Records(r) => records.push((n, r)),
                Parsed::Malformed { .. } => malformed += 1,
            }
        }
        (format, records, malformed)
    }

    fn ids(records: &[(u64, Vec<Record>)]) -> Vec<String> {
        records
            .iter()
            .flat_map(|(_, r)| r.iter().map(|v| v["event_id"].as_str().unwrap_or("?").to_string()))
            .collect()
    }

    #[tokio::test]
    async fn a_record_nested_past_the_parsers_limit_is_a_malformed_line_in_an_array_too() {
        let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        let body = format!(
            "{{\"event_id\":\"a\"}}\n[{{\"event_id\":\"b\",\"x\":{deep}}}]\n{{\"event_id\":\"c\",\"x\":{deep}}}\n{{\"event_id\":\"d\"}}"
        );
        let (_, records, bad) = read_all(body.as_bytes()).await;
        assert_eq!(ids(&records), ["a", "d"]);
        assert_eq!(bad, 2, "both deep records go to the dead-letter file");
    }

    #[tokio::test]
    async fn json_lines_are_read_line_by_line() {
        let (format, records, bad) = read_all(b"{\"event_id\":\"a\"}\n\n{\"event_id\":\"b\"}").await;
        assert_eq!(format, Format::Jsonl);
        assert_eq!(ids(&records), ["a", "b"]);
        assert_eq!(records.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [1, 3]);
        assert_eq!(bad, 0);
    }

    #[tokio::test]
    async fn documents_side_by_side_on_one_line_are_each_a_record() {
        let (format, records, bad) =
            read_all(b"{\"event_id\":\"a\"}{\"event_id\":\"b\"} {\"event_id\":\"c\"}\n{\"event_id\":\"d\"}\n").await;
        assert_eq!(format, Format::Jsonl);
        assert_eq!(ids(&records), ["a", "b", "c", "d"]);
        assert_eq!(bad, 0);
    }

    #[tokio::test]
    async fn pretty_printed_concatenated_documents_are_read_one_by_one() {
        let a = serde_json::to_string_pretty(&json!({"event_id": "a", "nested": {"x": [1, 2]}})).expect("json");
        let b = serde_json::to_string_pretty(&json!({"event_id": "b"})).expect("json");
        let body = format!("{a}\n{b}{a}");
        let (format, records, bad) = read_all(body.as_bytes()).await;
        assert_eq!(format, Format::Concatenated);
        assert_eq!(ids(&records), ["a", "b", "a"]);
        assert_eq!(records.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(bad, 0);
    }

    #[tokio::test]
    async fn one_json_array_document_is_its_elements() {
        let body = serde_json::to_string_pretty(&json!([{"event_id": "a"}, {"event_id": "b"}])).expect("json");
        let (format, records, bad) = read_all(body.as_bytes()).await;
        assert_eq!(format, Format::Concatenated);
        assert_eq!(ids(&records), ["a", "b"]);
        assert_eq!(bad, 0);
        let (format, records, _) = read_all(b"[{\"event_id\":\"a\"},{\"event_id\":\"b\"}]").await;
        assert_eq!(format, Format::Jsonl);
        assert_eq!(ids(&records), ["a", "b"]);
    }

    #[tokio::test]
    async fn each_record_keeps_its_text_as_received_in_every_shape() {
        let texts = |records: &[(u64, Vec<Record>)]| -> Vec<String> {
            records
                .iter()
                .flat_map(|(_, r)| r.iter().map(|r| r.text().get().to_string()))
                .collect()
        };
        // Spacing, key order, escapes and number spelling as sent; arrays give their elements.
        let line = "{ \"event_id\" : \"a\", \"n\": 1.50 }  [{\"event_id\":\"b\",\"t\":\"\\u00e9\"}]\n";
        let (format, records, _) = read_all(line.as_bytes()).await;
        assert_eq!(format, Format::Jsonl);
        assert_eq!(
            texts(&records),
            [r#"{ "event_id" : "a", "n": 1.50 }"#, r#"{"event_id":"b","t":"\u00e9"}"#]
        );
        assert_eq!(records[0].1[1]["t"], "é", "and its tree is the text parsed");
        let (format, records, _) = read_all(b"{\n  \"event_id\": \"a\"\n}\n{\"event_id\":\"b\"}").await;
        assert_eq!(format, Format::Concatenated);
        assert_eq!(texts(&records), ["{\n  \"event_id\": \"a\"\n}", r#"{"event_id":"b"}"#]);
    }

    proptest::proptest! {
        #![proptest_config(crate::props::config())]
        /// The one-object shortcut reads a line exactly as the general path does: the same
        /// records, texts and trees, or an error where it errs (JSON whitespace only around it).
        #[test]
        fn a_line_of_one_object_reads_as_the_general_path_reads_it(
            value in crate::props::json(),
            pretty in proptest::bool::ANY,
            before in "[ \t\r\x0c]{0,2}",
            after in "[ \t\r\n\x0c]{0,2}",
        ) {
            let value = match value {
                Value::Object(_) => value,
                other => json!({"v": other}),
            };
            let text = if pretty { serde_json::to_string_pretty(&value) } else { serde_json::to_string(&value) }
                .expect("json");
            let line = format!("{before}{text}{after}");
            let shown = |r: Result<Vec<Record>, serde_json::Error>| {
                r.map(|records| records.iter().map(|r| (r.text().get().to_string(), (**r).clone())).collect::<Vec<_>>())
                    .map_err(|e| e.to_string())
            };
            let fast = shown(split_line(line.as_bytes()));
            proptest::prop_assert_eq!(&fast, &shown(split_documents(line.as_bytes())));
            if !line.contains('\x0c') {
                // (The tree as parsed from the text: serde_json does not round-trip every float.)
                let tree: Value = serde_json::from_str(&text).expect("json");
                proptest::prop_assert_eq!(fast, Ok(vec![(text.clone(), tree.clone())]));
                // The stream reads such a line as a tape: the same tree, the same text.
                let Piece::Object(object) = line_piece(Line::Text(line.clone().into_bytes())) else {
                    return Err(proptest::test_runner::TestCaseError::fail("not an object line"));
                };
                proptest::prop_assert_eq!(object.read().map(|tape| At::root(object.text(), &tape).to_value()), Some(tree));
                let kept = object.into_text();
                proptest::prop_assert_eq!(kept.get(), text.as_str());
            }
        }
    }

    #[test]
    fn a_line_that_only_looks_like_one_object_takes_the_general_path() {
        for (line, records) in [
            (&b"{\"a\":1}{\"b\":2}"[..], 2),
            (b"{\"a\":1} [{\"b\":2}]", 2),
            (b"{\"a\": tru", 0),
        ] {
            let Piece::Object(object) = line_piece(Line::Text(line.to_vec())) else {
                panic!("begins with an object")
            };
            assert!(object.read().is_none());
            match object.into_parsed() {
                Parsed::Records(r) => assert_eq!(r.len(), records),
                Parsed::Malformed { text, .. } => assert_eq!((text.as_slice(), records), (line, 0)),
            }
        }
        assert!(matches!(
            line_piece(Line::Text(b"[{}]".to_vec())),
            Piece::Parsed(Parsed::Records(_))
        ));
        assert!(matches!(line_piece(Line::Text(b" \t".to_vec())), Piece::Blank));
    }

    #[tokio::test]
    async fn a_malformed_line_is_reported_and_the_next_still_reads() {
        let (format, records, bad) =
            read_all(b"{\"event_id\":\"a\"}\n{\"event_id\": tru\n{\"event_id\":\"c\"}\n").await;
        assert_eq!(format, Format::Jsonl);
        assert_eq!(ids(&records), ["a", "c"]);
        assert_eq!(bad, 1);
    }

    #[tokio::test]
    async fn broken_concatenated_documents_keep_what_came_before_and_report_the_rest() {
        let (format, records, bad) = read_all(b"{\n\"event_id\": \"a\"\n}\n{\n\"event_id\": \n").await;
        assert_eq!(format, Format::Concatenated);
        assert_eq!(ids(&records), ["a"]);
        assert_eq!(bad, 1);
    }
}
