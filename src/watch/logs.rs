//! Tailing the sender logs and the sink log, as the original harness's progress and
//! sanity loops grepped them: every sender must keep showing new
//! `MultiSourceConnector acked Stream(...is_open=True)` lines, at least one of its last N
//! `added Stream` lines must have `is_open=True`, and a `closed Stream(... point_of_ref=
//! <message id of the input's last line>, is_open=False)` line means the sender reached
//! end of file. The sink log must have no `ERROR`, `FATAL` or `CRITICAL` line.
//!
//! A [`LogTail`] follows a path by dev/inode: when the file is rotated (renamed and a new
//! one created) it reads the old one to its end, then the new one from the start; when
//! it is truncated in place it starts over from the new end of data.

use std::collections::VecDeque;
use std::fs::File;
use std::os::unix::fs::MetadataExt;

use crate::formats::lines::{LineCursor, ReadEnd};
use crate::formats::regular::{open_regular, stat_regular};
use std::path::PathBuf;
use std::time::Instant;

pub struct LogTail {
    pub path: PathBuf,
    file: Option<(File, (u64, u64))>,
    cursor: LineCursor,
}

impl LogTail {
    pub fn new(path: PathBuf) -> LogTail {
        LogTail {
            path,
            file: None,
            cursor: LineCursor::default(),
        }
    }

    pub fn exists(&self) -> bool {
        self.file.is_some()
    }

    /// Calls `each` for every new complete line, reading at most [`LOG_READ_BUDGET`]
    /// bytes a call (the rest waits for the next pass, so a log that grows without end
    /// cannot hold a pass). A path that is not a regular file is an error.
    pub fn read_new(&mut self, each: &mut dyn FnMut(&[u8])) -> Result<(), LogTailError> {
        let current = stat_regular(&self.path)
            .map_err(|e| self.error(e))?
            .map(|m| (m.dev(), m.ino()));
        let rotated = match (&self.file, current) {
            (Some((_, id)), Some(now)) => *id != now,
            _ => false,
        };
        let mut budget = LOG_READ_BUDGET;
        if rotated {
            // Finish the old file, then switch.
            self.drain(each, &mut budget).map_err(|e| self.error(e))?;
            self.file = None;
        }
        if self.file.is_none() {
            if let Some(id) = current {
                match open_regular(&self.path) {
                    Ok(f) => {
                        self.file = Some((f, id));
                        self.cursor.reset();
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(self.error(e)),
                }
            }
        }
        if let Some((f, _)) = &self.file {
            if f.metadata().map(|m| m.len()).unwrap_or(0) < self.cursor.read_to() {
                self.cursor.reset();
            }
        }
        self.drain(each, &mut budget).map_err(|e| self.error(e))
    }

    fn error(&self, source: std::io::Error) -> LogTailError {
        LogTailError {
            path: self.path.clone(),
            source,
        }
    }

    fn drain(&mut self, each: &mut dyn FnMut(&[u8]), budget: &mut u64) -> std::io::Result<()> {
        let Some((f, _)) = &self.file else {
            return Ok(());
        };
        while *budget > 0 {
            let before = self.cursor.read_to();
            let end = self
                .cursor
                .read_lines_upto(f, 1 << 20, *budget, &mut |_, line| {
                    each(line);
                    true
                })?;
            *budget = budget.saturating_sub(self.cursor.read_to() - before);
            match end {
                // An absurd log line (over 1 MiB) is skipped rather than buffered.
                ReadEnd::TooLong { .. } => self.cursor.skip_partial(),
                ReadEnd::Eof | ReadEnd::Stopped | ReadEnd::Budget => break,
            }
        }
        Ok(())
    }
}

/// The most a log tail reads in one call.
pub const LOG_READ_BUDGET: u64 = 8 << 20;

/// A log that cannot be followed (exit status 2).
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct LogTailError {
    pub path: PathBuf,
    source: std::io::Error,
}

/// What one sender log has shown.
pub struct SenderProgress {
    pub key: u8,
    pub tail: LogTail,
    /// The message id of the input's last line (the EOF point of reference).
    pub eof_por: u64,
    pub last_ack: Option<Instant>,
    pub acks: u64,
    /// The point of reference of the last ack line: how far the sender's input is acked.
    pub acked: Option<u64>,
    pub added: VecDeque<bool>,
    pub added_total: u64,
    pub eof: bool,
    /// When the log first appeared (ack timeouts count from then).
    pub since: Option<Instant>,
}

fn contains(line: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(line, needle).is_some()
}

/// What a sender log's ack line holds (`... MultiSourceConnector acked Stream(id=...,
/// point_of_ref=N, is_open=True)`).
pub const ACKED: &[u8] = b"MultiSourceConnector acked Stream(";

/// The point of reference in a `Stream(...)` repr (Python 2 `L` suffix allowed).
pub fn point_of_ref(line: &[u8]) -> Option<u64> {
    let at = memchr::memmem::find(line, b"point_of_ref=")? + "point_of_ref=".len();
    let digits: Vec<u8> = line[at..]
        .iter()
        .copied()
        .take_while(u8::is_ascii_digit)
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

impl SenderProgress {
    pub fn new(key: u8, path: PathBuf, eof_por: u64) -> Self {
        SenderProgress {
            key,
            tail: LogTail::new(path),
            eof_por,
            last_ack: None,
            acks: 0,
            acked: None,
            added: VecDeque::new(),
            added_total: 0,
            eof: false,
            since: None,
        }
    }

    /// Reads new lines; `window` is the registry window N.
    pub fn update(&mut self, window: usize, now: Instant) -> Result<(), LogTailError> {
        let (mut acks, mut added, mut eof) = (0u64, Vec::new(), false);
        let eof_por = self.eof_por;
        let acked = &mut self.acked;
        self.tail.read_new(&mut |line| {
            if contains(line, ACKED) && contains(line, b"is_open=True") {
                acks += 1;
                *acked = point_of_ref(line).or(*acked);
            } else if contains(line, b"MultiSourceConnector added Stream") {
                added.push(contains(line, b"is_open=True"));
            } else if contains(line, b"MultiSourceConnector closed Stream(")
                && contains(line, b"is_open=False")
                && point_of_ref(line) == Some(eof_por)
            {
                eof = true;
            }
        })?;
        if self.tail.exists() && self.since.is_none() {
            self.since = Some(now);
        }
        if acks > 0 {
            self.acks += acks;
            self.last_ack = Some(now);
        }
        for open in added {
            self.added_total += 1;
            self.added.push_back(open);
            if self.added.len() > window {
                self.added.pop_front();
            }
        }
        self.eof |= eof;
        Ok(())
    }

    /// The progress clocks start again at `now` (after a fault, within its recovery
    /// window, or a pause of the system): nothing before it counts against progress.
    pub fn restart_clocks(&mut self, now: Instant) {
        if self.last_ack.is_some() {
            self.last_ack = Some(now);
        }
        if self.since.is_some() {
            self.since = Some(now);
        }
        // Refused while the system was down on purpose: not a stall.
        self.added.clear();
    }

    /// The registry check: once N `added` lines were seen, one of the last N is open.
    pub fn registry_ok(&self, window: usize) -> bool {
        self.added.len() < window || self.added.iter().any(|&open| open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn parses_points_of_reference_in_both_python_forms() {
        assert_eq!(
            point_of_ref(b"closed Stream(id=1, name='x', point_of_ref=12368928, is_open=False)"),
            Some(12368928)
        );
        assert_eq!(
            point_of_ref(
                b"added Stream(id=1L, name=b'x', point_of_ref=18446744073709551615L, is_open=True)"
            ),
            Some(u64::MAX)
        );
        assert_eq!(point_of_ref(b"no reference"), None);
    }

    /// A sender refused while a fault keeps the system down (its sink stopped on a disk
    /// error, say) is no registry stall: refusals before a recovery window's restart of
    /// the clocks do not count, as silence before it does not for ack progress.
    #[test]
    fn refusals_before_a_recovery_window_do_not_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sender.out.A");
        let refused =
            "MultiSourceConnector added Stream(id=1, name='x', point_of_ref=0, is_open=False)\n";
        std::fs::write(&path, refused.repeat(3)).unwrap();
        let mut s = SenderProgress::new(b'A', path.clone(), 99);
        let now = Instant::now();
        s.update(3, now).unwrap();
        assert!(!s.registry_ok(3));
        s.restart_clocks(now);
        assert!(s.registry_ok(3));
        // Refused again, as many times after it: a stall.
        std::fs::write(&path, refused.repeat(6)).unwrap();
        s.update(3, now).unwrap();
        assert!(!s.registry_ok(3));
    }

    #[test]
    fn follows_rotation_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sender.out.A");
        let mut tail = LogTail::new(path.clone());
        let mut lines = Vec::new();
        tail.read_new(&mut |l| lines.push(l.to_vec())).unwrap();
        assert!(lines.is_empty());
        std::fs::write(&path, b"one\ntw").unwrap();
        tail.read_new(&mut |l| lines.push(l.to_vec())).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"o\nthree\n")
            .unwrap();
        // Rotate: the old file gets one more line, then a new file appears.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"four\n")
            .unwrap();
        std::fs::rename(&path, dir.path().join("sender.out.A.1")).unwrap();
        std::fs::write(&path, b"five\n").unwrap();
        tail.read_new(&mut |l| lines.push(l.to_vec())).unwrap();
        // Truncate in place.
        std::fs::write(&path, b"six\n").unwrap();
        tail.read_new(&mut |l| lines.push(l.to_vec())).unwrap();
        let text: Vec<String> = lines
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect();
        assert_eq!(text, ["one", "two", "three", "four", "five", "six"]);
    }
}
