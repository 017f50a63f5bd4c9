//! Complete lines appended to a file since the last read: the one line framing behind
//! `verify`'s txnlog reader, `watch`'s txnlog tail and its log tails. Reads with
//! `pread` from where it left off, hands out each complete line (without its LF) from a
//! reused buffer, and keeps a partial last line for the next read.

use std::fs::File;
use std::os::unix::fs::FileExt;

/// What a cursor reads from: a file (by `pread`) or bytes already in memory, so a file
/// and a byte slice are framed by the same code.
pub trait ReadAt {
    /// Reads into `buf` from `offset`; 0 at the end.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize>;
}

impl ReadAt for File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        FileExt::read_at(self, buf, offset)
    }
}

impl ReadAt for &[u8] {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        let rest = self.get(offset as usize..).unwrap_or_default();
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        Ok(n)
    }
}

/// Why a read stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadEnd {
    /// Everything the file holds now was read.
    Eof,
    /// The callback asked to stop.
    Stopped,
    /// The partial line (number `line`) grew past the limit.
    TooLong { line: usize },
    /// The call's byte budget was spent (see [`LineCursor::read_lines_upto`]).
    Budget,
}

#[derive(Debug, Default)]
pub struct LineCursor {
    /// Bytes of complete lines consumed.
    offset: u64,
    partial: Vec<u8>,
    /// Complete lines handed out.
    line: usize,
    /// The read buffer, allocated on first use and kept: a pass that finds nothing new
    /// costs one `pread`, not an allocation.
    buf: Vec<u8>,
}

impl LineCursor {
    /// Bytes of complete lines consumed.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Complete lines handed out so far.
    pub fn lines(&self) -> usize {
        self.line
    }

    /// Bytes read so far, the partial last line included.
    /// The bytes read of the line not yet ended by an LF.
    pub fn partial(&self) -> &[u8] {
        &self.partial
    }

    pub fn read_to(&self) -> u64 {
        self.offset + self.partial.len() as u64
    }

    /// Starts over from the beginning (a truncated or replaced file).
    pub fn reset(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        *self = LineCursor {
            buf,
            ..LineCursor::default()
        };
    }

    /// Drops the partial line, so an absurdly long line is skipped rather than buffered.
    pub fn skip_partial(&mut self) {
        self.offset += self.partial.len() as u64;
        self.partial.clear();
    }

    /// Reads what `file` gained and calls `each(line number, line)` for every complete
    /// line, stopping early when it returns false; a line longer than `max`, complete or
    /// not, stops the read with [`ReadEnd::TooLong`] (its bytes so far held as partial).
    pub fn read_lines(
        &mut self,
        file: &dyn ReadAt,
        max: usize,
        each: &mut dyn FnMut(usize, &[u8]) -> bool,
    ) -> std::io::Result<ReadEnd> {
        self.read_lines_upto(file, max, u64::MAX, each)
    }

    /// [`LineCursor::read_lines`], reading at most about `budget` bytes (whole buffers):
    /// past it the read stops with [`ReadEnd::Budget`] and goes on at the next call.
    pub fn read_lines_upto(
        &mut self,
        file: &dyn ReadAt,
        max: usize,
        budget: u64,
        each: &mut dyn FnMut(usize, &[u8]) -> bool,
    ) -> std::io::Result<ReadEnd> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.resize(1 << 16, 0);
        let end = self.read_into(file, max, budget, each, &mut buf);
        self.buf = buf;
        end
    }

    fn read_into(
        &mut self,
        file: &dyn ReadAt,
        max: usize,
        budget: u64,
        each: &mut dyn FnMut(usize, &[u8]) -> bool,
        buf: &mut [u8],
    ) -> std::io::Result<ReadEnd> {
        let mut spent = 0u64;
        loop {
            if spent >= budget {
                return Ok(ReadEnd::Budget);
            }
            let n = file.read_at(buf, self.read_to())?;
            spent += n as u64;
            if n == 0 {
                return Ok(ReadEnd::Eof);
            }
            let mut chunk = &buf[..n];
            while let Some(end) = memchr::memchr(b'\n', chunk) {
                self.partial.extend_from_slice(&chunk[..end]);
                if self.partial.len() > max {
                    // Its LF is past `read_to()`: after `skip_partial` it ends an empty line.
                    return Ok(ReadEnd::TooLong {
                        line: self.line + 1,
                    });
                }
                chunk = &chunk[end + 1..];
                self.line += 1;
                self.offset += self.partial.len() as u64 + 1;
                let go_on = each(self.line, &self.partial);
                self.partial.clear();
                if !go_on {
                    // The rest of `chunk` is re-read next time: it is past `read_to()`.
                    return Ok(ReadEnd::Stopped);
                }
            }
            self.partial.extend_from_slice(chunk);
            if self.partial.len() > max {
                return Ok(ReadEnd::TooLong {
                    line: self.line + 1,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn hands_out_complete_lines_across_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut w = std::fs::File::create(&path).unwrap();
        let r = std::fs::File::open(&path).unwrap();
        let mut cursor = LineCursor::default();
        let mut seen = Vec::new();
        let mut collect = |n: usize, l: &[u8]| {
            seen.push((n, String::from_utf8_lossy(l).into_owned()));
            true
        };
        w.write_all(b"one\ntw").unwrap();
        assert_eq!(
            cursor.read_lines(&r, 100, &mut collect).unwrap(),
            ReadEnd::Eof
        );
        w.write_all(b"o\nthree\n").unwrap();
        cursor.read_lines(&r, 100, &mut collect).unwrap();
        assert_eq!(
            seen,
            [
                (1, "one".to_string()),
                (2, "two".to_string()),
                (3, "three".to_string())
            ]
        );
        assert_eq!((cursor.offset(), cursor.read_to()), (14, 14));
        w.write_all(b"xxxxxxxxxx").unwrap();
        assert_eq!(
            cursor.read_lines(&r, 5, &mut |_, _| true).unwrap(),
            ReadEnd::TooLong { line: 4 }
        );
        cursor.skip_partial();
        w.write_all(b"\nfour\nfive\n").unwrap();
        let mut first = None;
        assert_eq!(
            cursor
                .read_lines(&r, 100, &mut |n, l| {
                    first = Some((n, l.to_vec()));
                    false
                })
                .unwrap(),
            ReadEnd::Stopped
        );
        assert_eq!(
            first,
            Some((4, Vec::new())),
            "the rest of the skipped line ends as an empty line"
        );
    }
}
