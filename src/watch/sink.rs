//! Tailing a live sink directory: txnlogs are followed by dev/inode (so a worker's pair
//! renamed to `.<time>` is the same file), read from where they were left, parsed record
//! by record with the same strict parser and the same [`TxnlogReplay`] as `verify`, and
//! their commits released to the checker in the global commit order.
//!
//! The release rule: a commit is released once every txnlog has been read to its end
//! *after* the pass that saw it. The sink is one process that stamps each record with its
//! clock just before writing it, so any commit with an earlier time is on disk by then.
//! Its limit: a sink thread that stalls longer than one pass between taking the time and
//! writing the record can still land an earlier-timed commit later; it is then checked in
//! arrival order and reported as a `late-commit` note.
//!
//! Output data is read with `pread` from descriptors kept open, and only in committed
//! ranges, which never shrink: no mapping, so a truncated uncommitted tail can never
//! raise SIGBUS, and a rename never loses the file.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::tail::{LineCursor, ReadEnd};
use crate::formats::txnlog::{parse_record, TxnlogEntry, TxnlogError, MAX_LINE_BYTES};
use crate::verify::commits::{commit_order, FileCommit, TxnlogReplay};
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
}

/// A commit waiting for the release rule.
struct Pending {
    file: usize,
    commit: FileCommit,
    seen_pass: u64,
}

pub struct SinkTail {
    dir: PathBuf,
    tracked: Vec<Tracked>,
    by_inode: HashMap<(u64, u64), usize>,
    pending: Vec<Pending>,
    pass: u64,
    /// The last released commit's order key, to notice late commits.
    last_released: Option<(f64, u64, PathBuf, String)>,
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
            pass: 0,
            last_released: None,
        }
    }

    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// One pass: finds new and renamed txnlogs, and reads every txnlog to its end.
    pub fn scan(&mut self, log: &mut CommitLog) -> Result<(), SinkTailError> {
        self.pass += 1;
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| SinkTailError::Io { path, source }
        };
        let mut seen = vec![false; self.tracked.len()];
        match std::fs::read_dir(&self.dir) {
            Ok(entries) => {
                for entry in entries.flatten() {
                    let path = entry.path();
                    if !path.to_string_lossy().ends_with(".txnlog") {
                        continue;
                    }
                    let Ok(meta) = std::fs::metadata(&path) else {
                        continue;
                    };
                    let id = (meta.dev(), meta.ino());
                    match self.by_inode.get(&id) {
                        Some(&i) => {
                            seen[i] = true;
                            if self.tracked[i].path != path {
                                // A worker left: its pair was renamed; the descriptors follow.
                                let name = path
                                    .file_name()
                                    .map(|n| n.to_string_lossy().into_owned())
                                    .unwrap_or_default();
                                let f = &mut log.files[self.tracked[i].index];
                                f.name = name.strip_suffix(".txnlog").unwrap_or(&name).to_string();
                                f.output = output_path_of(&path);
                                f.txnlog = Some(path.clone());
                                self.tracked[i].path = path;
                            }
                        }
                        None => {
                            let file = File::open(&path).map_err(io(&path))?;
                            let name = path
                                .file_name()
                                .map(|n| n.to_string_lossy().into_owned())
                                .unwrap_or_default();
                            let output_name =
                                name.strip_suffix(".txnlog").unwrap_or(&name).to_string();
                            let index = log.files.len();
                            log.files.push(crate::verify::commits::SinkFile {
                                name: output_name,
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
                            });
                            seen.push(true);
                        }
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(SinkTailError::Io {
                    path: self.dir.clone(),
                    source: e,
                })
            }
        }
        for (i, t) in self.tracked.iter_mut().enumerate() {
            let meta = t.file.metadata().map_err(io(&t.path))?;
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
            let mut failure = None;
            let (replay, problems, pending, pass, index) = (
                &mut t.replay,
                &mut log.problems,
                &mut self.pending,
                self.pass,
                t.index,
            );
            let path = &t.path;
            let end =
                t.cursor.read_lines(
                    &t.file,
                    MAX_LINE_BYTES,
                    &mut |line, text| match parse_record(text) {
                        Ok((time, record)) => {
                            if let Some(commit) =
                                replay.apply(&TxnlogEntry { line, time, record }, problems)
                            {
                                pending.push(Pending {
                                    file: index,
                                    commit,
                                    seen_pass: pass,
                                });
                            }
                            true
                        }
                        Err(e) => {
                            failure = Some(TxnlogError::Syntax {
                                path: path.clone(),
                                line,
                                column: e.column,
                                expected: e.expected,
                                found: e.found,
                            });
                            false
                        }
                    },
                );
            let end = end.map_err(io(&t.path))?;
            if let Some(e) = failure {
                return Err(e.into());
            }
            if let ReadEnd::TooLong { line } = end {
                return Err(TxnlogError::LineTooLong {
                    path: t.path.clone(),
                    line,
                }
                .into());
            }
        }
        Ok(())
    }

    /// Moves every commit seen before the last complete pass into `log`, in commit order;
    /// returns the index of the first newly released commit.
    pub fn release(&mut self, log: &mut CommitLog) -> usize {
        let first = log.commits.len();
        let pass = self.pass;
        let (mut ready, waiting): (Vec<Pending>, Vec<Pending>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|p| p.seen_pass < pass);
        self.pending = waiting;
        let files = &log.files;
        ready.sort_by(|a, b| {
            commit_order(
                (
                    a.commit.time,
                    a.commit.end,
                    &files[a.file].output,
                    &a.commit.txn_id,
                ),
                (
                    b.commit.time,
                    b.commit.end,
                    &files[b.file].output,
                    &b.commit.txn_id,
                ),
            )
        });
        for p in ready {
            let key = (
                p.commit.time,
                p.commit.end,
                log.files[p.file].output.clone(),
                p.commit.txn_id.clone(),
            );
            if let Some(last) = &self.last_released {
                if commit_order(
                    (key.0, key.1, &key.2, &key.3),
                    (last.0, last.1, &last.2, &last.3),
                )
                .is_lt()
                {
                    log.problems.push(Problem {
                        kind: ProblemKind::LateCommit,
                        severity: Severity::Note,
                        file: format!("{}.txnlog", log.files[p.file].name),
                        line: p.commit.line,
                        detail: format!("commit {} landed after later-timed commits were checked; checked in arrival order", p.commit.txn_id),
                    });
                }
            }
            self.last_released = Some(key);
            log.push(p.file, p.commit);
        }
        first
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
            match File::open(&path) {
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
        let got = buf.len();
        if (got as u64) < end - start {
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
                    detail: format!(
                        "{} ends before the committed offset {} ({} committed bytes are gone)",
                        log.files[file].name,
                        end,
                        end - start - got as u64
                    ),
                });
            }
        }
        Ok(buf)
    }
}

/// Reads `len` bytes of `file` from `start`; fewer when the file ends sooner.
fn read_range(file: &File, start: u64, len: u64) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len as usize];
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
