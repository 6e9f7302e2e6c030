//! JSON Lines read from disk with bounded memory: a fixed read buffer, and no line held
//! beyond `max_line` bytes (a longer one is reported with a short prefix, its bytes skipped),
//! so a file of any size, or one huge line, never has to fit in memory.

use std::io;

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// Read buffer over the spooled file. Each fill is a trip to Tokio's blocking threads and
/// back (`tokio::fs`), and Tokio keeps a buffer of the same size beside it: at 64 KiB the
/// 88 MB compliance mix made ~1,400 trips; 128 KiB halves them for 128 KiB more per file
/// being read (benches/README.md, "the spool's buffers").
pub const READ_BUFFER: usize = 128 * 1024;

/// The longest line kept; a conversation message carrying a pasted document fits well within.
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// How much of an over-long line is kept for the dead-letter file.
pub const TOO_LONG_PREFIX: usize = 1024;

/// One physical line of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// The line without its `\n` (or `\r\n`).
    Text(Vec<u8>),
    /// Longer than the limit: its length and first [`TOO_LONG_PREFIX`] bytes.
    TooLong { len: usize, prefix: Vec<u8> },
}

/// Lines of a reader, numbered from 1.
#[derive(Debug)]
pub struct BoundedLines<R> {
    reader: R,
    max_line: usize,
    number: u64,
}

impl<R: AsyncBufRead + Unpin> BoundedLines<R> {
    /// Lines of `reader`, none held beyond `max_line` bytes.
    pub fn new(reader: R, max_line: usize) -> Self {
        Self {
            reader,
            max_line,
            number: 0,
        }
    }

    /// The next line and its number, `None` at the end. A last line without a newline counts.
    pub async fn next_line(&mut self) -> io::Result<Option<(u64, Line)>> {
        let mut kept: Vec<u8> = Vec::new();
        let mut len = 0usize;
        let mut started = false;
        loop {
            let available = self.reader.fill_buf().await?;
            if available.is_empty() {
                if !started {
                    return Ok(None);
                }
                break;
            }
            started = true;
            // The line's end by a SIMD search: a byte-at-a-time loop here was 1.4 % of the
            // Compliance Logs path's CPU (lines are ~700 bytes).
            let (chunk_len, consumed, ended) = match memchr::memchr(b'\n', available) {
                Some(i) => (i, i + 1, true),
                None => (available.len(), available.len(), false),
            };
            let chunk = &available[..chunk_len];
            len += chunk.len();
            // Keep at most max_line bytes; past that only a prefix survives, so memory stays
            // bounded by the limit, not by the line.
            let room = self.max_line.saturating_sub(kept.len());
            kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if len > self.max_line {
                kept.truncate(TOO_LONG_PREFIX.min(self.max_line));
            }
            self.reader.consume(consumed);
            if ended {
                break;
            }
        }
        self.number += 1;
        if len > self.max_line {
            return Ok(Some((self.number, Line::TooLong { len, prefix: kept })));
        }
        if kept.last() == Some(&b'\r') {
            kept.pop();
        }
        Ok(Some((self.number, Line::Text(kept))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Just;
    use tokio::io::{AsyncReadExt, BufReader};

    async fn all(input: &'static [u8], max: usize) -> Vec<(u64, Line)> {
        let mut lines = BoundedLines::new(BufReader::with_capacity(4, input), max);
        let mut out = Vec::new();
        while let Some(line) = lines.next_line().await.expect("read") {
            out.push(line);
        }
        out
    }

    fn text(s: &str) -> Line {
        Line::Text(s.as_bytes().to_vec())
    }

    #[tokio::test]
    async fn lines_are_numbered_blank_ones_included_and_a_missing_final_newline_is_fine() {
        let got = all(b"{\"a\":1}\n\n{\"b\":2}\r\n{\"c\":3}", 1024).await;
        assert_eq!(
            got,
            vec![
                (1, text("{\"a\":1}")),
                (2, text("")),
                (3, text("{\"b\":2}")),
                (4, text("{\"c\":3}"))
            ]
        );
        assert!(all(b"", 1024).await.is_empty());
        assert_eq!(all(b"x\n", 1024).await, vec![(1, text("x"))]);
    }

    #[tokio::test]
    async fn a_line_longer_than_the_limit_is_reported_with_a_prefix_and_the_next_line_still_reads() {
        let got = all(b"0123456789abcdef\nok\n", 8).await;
        assert_eq!(
            got,
            vec![
                (
                    1,
                    Line::TooLong {
                        len: 16,
                        prefix: b"01234567".to_vec()
                    }
                ),
                (2, text("ok"))
            ]
        );
    }

    #[tokio::test]
    async fn a_huge_line_is_never_held_in_memory() {
        // 32 MiB without a newline, read through the production buffer with a 1 MiB limit:
        // what comes back is the length and a 1 KiB prefix; the reader never kept more than
        // the limit (the kept buffer is truncated as soon as the limit is passed).
        let huge = tokio::io::repeat(b'x').take(32 * 1024 * 1024);
        let rest: &[u8] = b"\n{\"after\":true}\n";
        let reader = BufReader::with_capacity(READ_BUFFER, huge.chain(rest));
        let mut lines = BoundedLines::new(reader, 1024 * 1024);
        let (n, first) = lines.next_line().await.expect("read").expect("a line");
        assert_eq!(n, 1);
        match first {
            Line::TooLong { len, prefix } => {
                assert_eq!(len, 32 * 1024 * 1024);
                assert_eq!(prefix.len(), TOO_LONG_PREFIX);
                assert!(prefix.capacity() <= 2 * 1024 * 1024, "never grew past the limit");
            }
            other => panic!("expected TooLong, got {other:?}"),
        }
        assert_eq!(
            lines.next_line().await.expect("read"),
            Some((2, text("{\"after\":true}")))
        );
        assert_eq!(lines.next_line().await.expect("read"), None);
    }

    async fn collect(input: Vec<u8>, max: usize, buffer: usize) -> Vec<(u64, Line)> {
        let mut lines = BoundedLines::new(BufReader::with_capacity(buffer, input.as_slice()), max);
        let mut out = Vec::new();
        while let Some(line) = lines.next_line().await.expect("read") {
            out.push(line);
        }
        out
    }

    proptest::proptest! {
        #![proptest_config(crate::props::config())]

        /// Whatever bytes a log file holds, the reader numbers every line, keeps none beyond
        /// the limit, and — when none is too long — gives back exactly the file's content.
        #[test]
        fn any_bytes_read_back_as_numbered_bounded_lines(
            input in proptest::collection::vec(proptest::prop_oneof![Just(b'\n'), Just(b'\r'), Just(b'{'), proptest::arbitrary::any::<u8>()], 0..400),
            max in 1usize..64,
            buffer in 1usize..32,
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
            let lines = runtime.block_on(collect(input.clone(), max, buffer));
            let numbers: Vec<u64> = lines.iter().map(|(n, _)| *n).collect();
            proptest::prop_assert_eq!(numbers, (1..=lines.len() as u64).collect::<Vec<_>>());
            let mut rebuilt = Vec::new();
            let mut whole = true;
            for (_, line) in &lines {
                match line {
                    Line::Text(bytes) => {
                        proptest::prop_assert!(bytes.len() <= max);
                        rebuilt.extend_from_slice(bytes);
                    }
                    Line::TooLong { len, prefix } => {
                        proptest::prop_assert!(*len > max && prefix.len() <= max.min(TOO_LONG_PREFIX));
                        whole = false;
                    }
                }
            }
            if whole {
                let expected: Vec<u8> = input
                    .split(|&b| b == b'\n')
                    .flat_map(|l| l.strip_suffix(b"\r").unwrap_or(l).to_vec())
                    .collect();
                proptest::prop_assert_eq!(rebuilt, expected);
            }
        }
    }
}
