//! Snapshot files: one NDJSON file per generation under a directory of the state (the
//! inventory's `inventory/`), appended a line at a time while a run lists, read back in order
//! or at a known offset. A file is written once, by the run of its generation; which one is
//! current is its stream's checkpoint's word, so a crash half-way leaves a file the resumed
//! run cuts to what the checkpoint vouches for and continues.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::PathBuf;

use super::atomic_file;

/// A directory of snapshot files.
#[derive(Debug, Clone)]
pub struct SnapshotFiles {
    dir: PathBuf,
}

impl SnapshotFiles {
    pub(super) fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    fn path(&self, generation: u64) -> PathBuf {
        self.dir.join(format!("snapshot-{generation}.ndjson"))
    }

    /// The file of `generation` for appending, cut to its first `keep` bytes (what the
    /// checkpoint vouches for); `None` when it holds fewer than `keep` (lost in a crash).
    pub fn writer(&self, generation: u64, keep: u64) -> io::Result<Option<Writer>> {
        atomic_file::ensure_private_dir(&self.dir, false)?;
        let mut options = atomic_file::private_options();
        options.read(true).write(true).create(true);
        let mut file = atomic_file::open_private(&self.path(generation), &options)?;
        if file.metadata()?.len() < keep {
            return Ok(None);
        }
        file.set_len(keep)?;
        file.seek(SeekFrom::Start(keep))?;
        Ok(Some(Writer {
            file: BufWriter::with_capacity(64 * 1024, file),
            len: keep,
        }))
    }

    /// The file of `generation` for reading, or `None` when there is none.
    pub fn reader(&self, generation: u64) -> io::Result<Option<Reader>> {
        let mut options = atomic_file::private_options();
        options.read(true);
        match atomic_file::open_private(&self.path(generation), &options) {
            Ok(file) => Ok(Some(Reader {
                file: BufReader::with_capacity(64 * 1024, file),
                pos: 0,
                line: String::new(),
            })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Removes every snapshot file but those of `keep`.
    pub fn remove_except(&self, keep: &[u64]) -> io::Result<()> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let name = entry?.file_name();
            let generation = name
                .to_str()
                .and_then(|n| n.strip_prefix("snapshot-"))
                .and_then(|n| n.strip_suffix(".ndjson"))
                .and_then(|n| n.parse::<u64>().ok());
            if let Some(g) = generation.filter(|g| !keep.contains(g)) {
                std::fs::remove_file(self.path(g))?;
            }
        }
        Ok(())
    }
}

/// Appends lines to one snapshot file.
#[derive(Debug)]
pub struct Writer {
    file: BufWriter<File>,
    len: u64,
}

impl Writer {
    /// Appends `line` (without its newline); returns where it starts.
    pub fn append(&mut self, line: &[u8]) -> io::Result<u64> {
        self.file.write_all(line)?;
        self.file.write_all(b"\n")?;
        let at = self.len;
        self.len += line.len() as u64 + 1;
        Ok(at)
    }

    /// Writes out what is buffered; returns the file's length, which a checkpoint may then
    /// vouch for.
    pub fn flush(&mut self) -> io::Result<u64> {
        self.file.flush()?;
        Ok(self.len)
    }

    /// Flushes and fsyncs: the run is over and its checkpoint will name this file current.
    pub fn finish(mut self) -> io::Result<u64> {
        self.file.flush()?;
        self.file.get_ref().sync_all()?;
        Ok(self.len)
    }
}

/// Reads one snapshot file, in order or at a known offset.
#[derive(Debug)]
pub struct Reader {
    file: BufReader<File>,
    pos: u64,
    line: String,
}

impl Reader {
    /// The next line (without its newline) and where it starts, until `limit` bytes (the
    /// part a checkpoint vouches for) or the end.
    pub fn next_until(&mut self, limit: u64) -> io::Result<Option<(u64, &str)>> {
        if self.pos >= limit {
            return Ok(None);
        }
        self.line.clear();
        let n = self.file.read_line(&mut self.line)?;
        if n == 0 {
            return Ok(None);
        }
        let at = self.pos;
        self.pos += n as u64;
        Ok(Some((at, self.line.trim_end_matches('\n'))))
    }

    /// The line that starts at `offset`.
    pub fn read_at(&mut self, offset: u64) -> io::Result<&str> {
        self.file.seek(SeekFrom::Start(offset))?;
        self.pos = offset;
        match self.next_until(u64::MAX)? {
            Some((_, line)) => Ok(line),
            None => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("no snapshot line at byte {offset}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_read_back_in_order_and_by_offset_and_a_cut_file_resumes_where_it_was_vouched_for() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = SnapshotFiles::new(dir.path().join("inventory"));
        let mut w = files.writer(1, 0).expect("open").expect("writer");
        let a = w.append(b"one").expect("append");
        let b = w.append(b"two").expect("append");
        let vouched = w.flush().expect("flush");
        w.append(b"lost in a crash").expect("append");
        w.finish().expect("finish");
        let mut r = files.reader(1).expect("open").expect("reader");
        assert_eq!(r.read_at(b).expect("at"), "two");
        assert_eq!(r.read_at(a).expect("at"), "one");
        // A resumed run keeps what the checkpoint vouched for and drops the rest.
        let mut w = files.writer(1, vouched).expect("open").expect("writer");
        w.append(b"three").expect("append");
        w.finish().expect("finish");
        let mut r = files.reader(1).expect("open").expect("reader");
        let mut lines = Vec::new();
        while let Some((_, line)) = r.next_until(u64::MAX).expect("next") {
            lines.push(line.to_string());
        }
        assert_eq!(lines, vec!["one", "two", "three"]);
        assert!(files.writer(1, 10_000).expect("open").is_none(), "shorter than vouched");
        files.remove_except(&[]).expect("remove");
        assert!(files.reader(1).expect("open").is_none());
    }
}
