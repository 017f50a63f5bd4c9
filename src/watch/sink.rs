//! Tailing a live sink directory: txnlogs are followed by dev/inode (so a worker's pair
//! renamed to `.<time>` is the same file), read from where they were left, parsed record
//! by record with the same strict parser and the same [`TxnlogReplay`] as `verify`, and
//! their commits released to the checker in the global commit order.
//!
//! The release rule: the sink is one process that stamps each record with its clock just
//! before writing it, so once a record stamped `W` is on disk, every record stamped
//! earlier is too. The watermark of a pass is the latest time of any record read before
//! that pass began; the pass reads every txnlog to its end, so afterwards every commit
//! stamped at or before the watermark is known, wherever it was found (this pass or an
//! earlier one), and all of them are released together, in global commit order. Its
//! limit: a sink thread that stalls between taking the time and writing the record can
//! still land an earlier-timed commit later (as can one stamped with exactly the
//! watermark's time); it is then checked in arrival order and reported as a
//! `late-commit` note.
//!
//! Output data is read with `pread` from descriptors kept open, and only in committed
//! ranges, which never shrink: no mapping, so a truncated uncommitted tail can never
//! raise SIGBUS, and a rename never loses the file.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::formats::lines::LineCursor;
use crate::formats::regular::{open_regular, require_regular};
use crate::formats::txnlog::{read_facts, TxnlogError};
use crate::verify::commits::{merge_by_time, FileCommit, TxnlogReplay};
use crate::verify::{CommitLog, Problem, ProblemKind, Severity};

/// Why the sink directory cannot be followed (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum SinkTailError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A malformed record or an overlong line, reported exactly as `verify` reports it.
    #[error(transparent)]
    Txnlog(#[from] TxnlogError),
    #[error("{path}: the sink directory was reset ({why}); soakcheck watch stops rather than mix two runs")]
    Reset { path: PathBuf, why: String },
}

struct Tracked {
    path: PathBuf,
    file: File,
    cursor: LineCursor,
    replay: TxnlogReplay,
    /// Index into the commit log's files.
    index: usize,
    output: Option<File>,
    /// The highest end of this file's released commits: its output must stay that long.
    released_end: u64,
    /// With [`SinkTail::guard_rewrites`]: the bytes just before the cursor, as read.
    seen_tail: Vec<u8>,
}

/// How many bytes before each txnlog's cursor are read again on every pass, to tell a
/// txnlog rewritten in place (a power cut took records, and the restarted sink wrote
/// others over them) from one that only grew.
const TAIL_GUARD: u64 = 64;

impl Tracked {
    /// The `TAIL_GUARD` bytes before the cursor, as the file holds them now.
    fn tail_now(&self) -> Result<Vec<u8>, SinkTailError> {
        let end = self.cursor.offset();
        let start = end.saturating_sub(TAIL_GUARD);
        let mut buf = vec![0; (end - start) as usize];
        let n = self
            .file
            .read_at(&mut buf, start)
            .map_err(io_at(&self.path))?;
        buf.truncate(n);
        Ok(buf)
    }
}

/// A commit waiting for the release rule.
struct Pending {
    file: usize,
    commit: FileCommit,
}

pub struct SinkTail {
    dir: PathBuf,
    tracked: Vec<Tracked>,
    by_inode: HashMap<(u64, u64), usize>,
    pending: Vec<Pending>,
    /// The latest record time read so far.
    latest_seen: f64,
    /// The latest record time read before the current pass began: every commit stamped
    /// up to it is known once the pass ends.
    watermark: f64,
    /// The last released commit's stamp, to notice late commits.
    last_released: Option<f64>,
    /// Each file's latest released stamp, by file index (to tell a clock step from a
    /// late commit).
    latest_released: Vec<f64>,
    /// Whether each pass first checks that what it read of each txnlog is still there
    /// (power cuts can rewrite a txnlog's end in place).
    pub guard_rewrites: bool,
}

fn output_path_of(txnlog: &Path) -> PathBuf {
    let s = txnlog.as_os_str().to_string_lossy();
    PathBuf::from(s.strip_suffix(".txnlog").unwrap_or(&s).to_string())
}

impl SinkTail {
    pub fn new(dir: &Path) -> SinkTail {
        SinkTail {
            dir: dir.to_path_buf(),
            tracked: Vec::new(),
            by_inode: HashMap::new(),
            pending: Vec::new(),
            latest_seen: f64::NEG_INFINITY,
            watermark: f64::NEG_INFINITY,
            last_released: None,
            latest_released: Vec::new(),
            guard_rewrites: false,
        }
    }

    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// One pass: finds new and renamed txnlogs, and reads every txnlog to its end.
    pub fn scan(&mut self, log: &mut CommitLog) -> Result<(), SinkTailError> {
        self.scan_with(log, &mut || {})
    }

    /// [`SinkTail::scan`], calling `between` before each txnlog after the first: the
    /// moments where a live sink's writes fall inside a pass (a seam for tests).
    pub fn scan_with(
        &mut self,
        log: &mut CommitLog,
        between: &mut dyn FnMut(),
    ) -> Result<(), SinkTailError> {
        self.watermark = self.latest_seen;
        let seen = self.discover(log)?;
        for (i, t) in self.tracked.iter_mut().enumerate() {
            if i > 0 {
                between();
            }
            let meta = t.file.metadata().map_err(io_at(&t.path))?;
            if !seen[i] && meta.nlink() == 0 {
                return Err(SinkTailError::Reset {
                    path: t.path.clone(),
                    why: "a txnlog was deleted".into(),
                });
            }
            if meta.len() < t.cursor.offset() {
                return Err(SinkTailError::Reset {
                    path: t.path.clone(),
                    why: "a txnlog got shorter".into(),
                });
            }
            if self.guard_rewrites && t.tail_now()? != t.seen_tail {
                return Err(SinkTailError::Reset {
                    path: t.path.clone(),
                    why: "a txnlog was rewritten where it had been read".into(),
                });
            }
            let (replay, problems, pending, latest_seen, index) = (
                &mut t.replay,
                &mut log.problems,
                &mut self.pending,
                &mut self.latest_seen,
                t.index,
            );
            read_facts(&mut t.cursor, &t.file, &t.path, &mut |line, time, fact| {
                *latest_seen = latest_seen.max(time);
                if let Some(commit) = replay.apply(line, time, fact, problems) {
                    pending.push(Pending {
                        file: index,
                        commit,
                    });
                }
            })?;
            if self.guard_rewrites {
                t.seen_tail = t.tail_now()?;
            }
        }
        Ok(())
    }

    /// Finds new and renamed txnlogs in the directory (events are hints: this re-reads
    /// it); returns which tracked txnlogs it still names.
    fn discover(&mut self, log: &mut CommitLog) -> Result<Vec<bool>, SinkTailError> {
        let mut seen = vec![false; self.tracked.len()];
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(seen),
            Err(e) => {
                return Err(SinkTailError::Io {
                    path: self.dir.clone(),
                    source: e,
                })
            }
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if !path.to_string_lossy().ends_with(".txnlog") {
                continue;
            }
            // Gone since the listing (renamed meanwhile) is skipped; a txnlog that is
            // there but cannot be read (a dangling or looping symlink) is an error, as
            // it is for verify, never a txnlog silently left out.
            let meta = match std::fs::metadata(&path) {
                Ok(meta) => meta,
                Err(e)
                    if e.kind() == std::io::ErrorKind::NotFound
                        && std::fs::symlink_metadata(&path).is_err() =>
                {
                    continue
                }
                Err(source) => return Err(SinkTailError::Io { path, source }),
            };
            // A FIFO or device named like a txnlog is refused, never opened.
            require_regular(&meta).map_err(io_at(&path))?;
            match self.by_inode.get(&(meta.dev(), meta.ino())) {
                Some(&i) => {
                    seen[i] = true;
                    if self.tracked[i].path != path {
                        self.renamed(i, path, log);
                    }
                }
                None => {
                    self.track(path, (meta.dev(), meta.ino()), log)?;
                    seen.push(true);
                }
            }
        }
        Ok(seen)
    }

    /// A worker left: its pair was renamed; the descriptors follow.
    fn renamed(&mut self, i: usize, path: PathBuf, log: &mut CommitLog) {
        let name = file_name(&path);
        let f = &mut log.files[self.tracked[i].index];
        f.name = name.strip_suffix(".txnlog").unwrap_or(&name).to_string();
        f.output = output_path_of(&path);
        f.txnlog = Some(path.clone());
        self.tracked[i].path = path;
    }

    /// Starts following a new txnlog.
    fn track(
        &mut self,
        path: PathBuf,
        id: (u64, u64),
        log: &mut CommitLog,
    ) -> Result<(), SinkTailError> {
        let file = open_regular(&path).map_err(io_at(&path))?;
        let name = file_name(&path);
        let index = log.files.len();
        log.files.push(crate::verify::commits::SinkFile {
            name: name.strip_suffix(".txnlog").unwrap_or(&name).to_string(),
            output: output_path_of(&path),
            txnlog: Some(path.clone()),
            output_len: None,
        });
        self.by_inode.insert(id, self.tracked.len());
        self.tracked.push(Tracked {
            replay: TxnlogReplay::new(&name),
            path,
            file,
            cursor: LineCursor::default(),
            index,
            output: None,
            released_end: 0,
            seen_tail: Vec::new(),
        });
        Ok(())
    }

    /// Moves into `log`, in commit order, each txnlog's pending commits up to the first
    /// one stamped after the watermark (a file's own order is kept even where its clock
    /// stepped back: see [`crate::verify::clock`]); returns the index of the first newly
    /// released commit.
    pub fn release(&mut self, log: &mut CommitLog) -> usize {
        let first = log.commits.len();
        let watermark = self.watermark;
        let mut ready: Vec<Vec<FileCommit>> = vec![Vec::new(); log.files.len()];
        let mut held = vec![false; log.files.len()];
        let mut waiting = Vec::new();
        for p in std::mem::take(&mut self.pending) {
            held[p.file] |= p.commit.time > watermark;
            if held[p.file] {
                waiting.push(p);
            } else {
                ready[p.file].push(p.commit);
            }
        }
        self.pending = waiting;
        for (file, commit) in merge_by_time(log, ready) {
            self.note_if_late(log, file, &commit);
            if let Some(t) = self.tracked.iter_mut().find(|t| t.index == file) {
                t.released_end = t.released_end.max(commit.end);
            }
            log.push(file, commit);
        }
        first
    }

    /// A commit that lands after later-timed commits were checked: a `late-commit`
    /// note, unless its own file's clock stepped back (verify's `clock-went-back` note
    /// says that).
    fn note_if_late(&mut self, log: &mut CommitLog, file: usize, commit: &FileCommit) {
        if self.latest_released.len() <= file {
            self.latest_released.resize(file + 1, f64::NEG_INFINITY);
        }
        let own_latest = &mut self.latest_released[file];
        let stepped_back = commit.time < *own_latest;
        *own_latest = own_latest.max(commit.time);
        if let Some(last) = self.last_released {
            // A strictly earlier stamp: a shared stamp (a coarse clock) is no late commit.
            let late = commit.time < last;
            if late && !stepped_back {
                log.problems.push(Problem {
                    kind: ProblemKind::LateCommit,
                    severity: Severity::Note,
                    file: format!("{}.txnlog", log.files[file].name),
                    line: commit.line,
                    detail: format!("commit {} landed after later-timed commits were checked; checked in arrival order", commit.txn_id),
                });
            }
        }
        self.last_released = Some(commit.time);
    }

    /// Re-reads commit `i`'s chunk for a report (no problem is recorded).
    pub fn read_committed(&self, log: &CommitLog, i: usize) -> Vec<u8> {
        let commit = &log.commits[i];
        self.tracked
            .iter()
            .find(|t| t.index == commit.file)
            .and_then(|t| t.output.as_ref())
            .and_then(|f| read_range(f, commit.start, commit.end - commit.start).ok())
            .unwrap_or_default()
    }

    /// Reads commit `i`'s chunk (the committed range only); a short read means committed
    /// data is missing, which is reported once per file.
    pub fn read_chunk(&mut self, log: &mut CommitLog, i: usize) -> Result<Vec<u8>, SinkTailError> {
        let (file, start, end, line) = {
            let c = &log.commits[i];
            (c.file, c.start, c.end, c.line)
        };
        let t = self
            .tracked
            .iter_mut()
            .find(|t| t.index == file)
            .expect("a released commit has a tracked file");
        if t.output.is_none() {
            let path = output_path_of(&t.path);
            match open_regular(&path) {
                Ok(f) => {
                    log.files[file].output_len = f.metadata().ok().map(|m| m.len());
                    t.output = Some(f);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(SinkTailError::Io { path, source }),
            }
        }
        let buf = match &t.output {
            Some(f) => read_range(f, start, end - start).map_err(|source| SinkTailError::Io {
                path: output_path_of(&t.path),
                source,
            })?,
            None => Vec::new(),
        };
        let got = buf.len() as u64;
        if got < end - start {
            let detail = format!(
                "{} ends before the committed offset {} ({} committed bytes are gone)",
                log.files[file].name,
                end,
                end - start - got
            );
            committed_data_missing(log, file, line, detail);
        }
        Ok(buf)
    }

    /// Re-stats the output file of every txnlog with released commits, through the
    /// descriptor kept open (so a rename is followed, never mistaken for a loss):
    /// committed data destroyed after it was verified (an output truncated or deleted,
    /// such as the renamed pair of a worker that left, never written again) is
    /// reported as `committed-data-missing`, as `verify` would find it now.
    pub fn recheck_committed(
        &self,
        log: &mut CommitLog,
        both_gone: BothGone,
    ) -> Result<(), SinkTailError> {
        for t in self.tracked.iter().filter(|t| t.released_end > 0) {
            let Some(output) = &t.output else {
                continue; // missing when first read: already reported
            };
            let path = output_path_of(&t.path);
            let meta = output.metadata().map_err(|source| SinkTailError::Io {
                path: path.clone(),
                source,
            })?;
            let name = &log.files[t.index].name;
            let (len, detail) = if meta.nlink() == 0 {
                let pair = t.file.metadata().is_ok_and(|m| m.nlink() == 0);
                if pair && both_gone == BothGone::Reset {
                    return Err(SinkTailError::Reset {
                        path,
                        why: "an output file and its txnlog were deleted".into(),
                    });
                }
                (0, gone_output(name, &path, t.released_end))
            } else {
                let len = meta.len();
                let detail = format!(
                    "{name} is now {len} bytes long but {} bytes of it were committed ({} committed bytes are gone)",
                    t.released_end,
                    t.released_end.saturating_sub(len)
                );
                (len, detail)
            };
            if len >= t.released_end {
                continue;
            }
            let line = log
                .commits
                .iter()
                .find(|c| c.file == t.index && c.end > len)
                .map_or(0, |c| c.line);
            committed_data_missing(log, t.index, line, detail);
        }
        Ok(())
    }
}

/// What an output file and its txnlog both gone means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BothGone {
    /// The sink directory was reset (another run's files would follow): an error.
    Reset,
    /// A power cut took them (they were never made durable): their committed data is lost.
    Lost,
}

/// What happened to an output file whose descriptor shows it unlinked: replaced by
/// another file at its path (renamed over, or deleted and created again), or deleted.
fn gone_output(name: &str, path: &Path, committed: u64) -> String {
    match std::fs::metadata(path) {
        Ok(now) => format!(
            "{name} was replaced by another file (renamed over, or deleted and created again): \
             the file now at {} is {} bytes, and the {committed} committed bytes were in the file \
             it replaced, which is gone",
            path.display(),
            now.len()
        ),
        Err(_) => format!("{name} was deleted: the {committed} committed bytes in it are gone"),
    }
}

/// Records `committed-data-missing` for a file, once.
fn committed_data_missing(log: &mut CommitLog, file: usize, line: usize, detail: String) {
    let txnlog = format!("{}.txnlog", log.files[file].name);
    if !log
        .problems
        .iter()
        .any(|p| p.kind == ProblemKind::CommittedDataMissing && p.file == txnlog)
    {
        log.problems.push(Problem {
            kind: ProblemKind::CommittedDataMissing,
            severity: Severity::Violation,
            file: txnlog,
            line,
            detail,
        });
    }
}

/// Reads `len` bytes of `file` from `start`; fewer when the file ends sooner. The buffer
/// is sized by what the file holds, so an absurd committed offset (near 2^64) costs
/// nothing: it is reported as committed data missing.
fn read_range(file: &File, start: u64, len: u64) -> std::io::Result<Vec<u8>> {
    let available = file.metadata()?.len().saturating_sub(start);
    let mut buf = vec![0u8; len.min(available) as usize];
    let mut got = 0;
    while got < buf.len() {
        let n = file.read_at(&mut buf[got..], start + got as u64)?;
        if n == 0 {
            break;
        }
        got += n;
    }
    buf.truncate(got);
    Ok(buf)
}

/// The error of an I/O call on `path`.
fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> SinkTailError {
    let path = path.to_path_buf();
    move |source| SinkTailError::Io { path, source }
}

/// A path's last component, as text.
fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
