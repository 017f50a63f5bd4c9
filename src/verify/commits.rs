//! The commit log of a sink directory: every commit of every output file, in the global
//! order of the original verifier, plus the sink-level problems found while reading.
//!
//! A commit is a `2-ok` record with end offset > 0. Each txnlog's commits are taken in
//! its own order (it is append-only: its order is the truth), and the files are
//! interleaved by time: a merge that always takes the earliest of the files' next commits
//! by (time, end offset, output path, txn id). Where every file's times rise this is the
//! original's global sort; where a file's times go back (a clock step), the original
//! reorders that file's own commits, and this never does ([`merge_by_time`]; what the
//! timestamps then leave open is [`super::clock`]'s). A commit's chunk is its output
//! file's bytes from the previous commit's end *in that order* (0 at first) to its end.
//! While reading,
//! each txnlog is also replayed as the sink replays it, to check what the original never
//! did: that committed data is still there (`committed-data-missing`), that commit offsets
//! never go back (`commit-regressed`), and that each phase-2 record agrees with its own
//! phase-1 record (`phase2-mismatch`).

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::formats::regular::stat_regular;
use crate::formats::sinkdir::OutputPair;
use crate::formats::txnlog::{read_txnlog_facts, Fact, TxnlogError, TxnlogTail, Vote, WhereRange};

/// The txn id reported for the single commit of a plain output file.
pub const PLAIN_TXN_ID: &str = "(plain output)";

/// One output file of the sink directory.
#[derive(Debug, Clone)]
pub struct SinkFile {
    /// Name relative to the sink directory (e.g. `output.worker1`), or the path as given
    /// for a plain output file.
    pub name: String,
    pub output: PathBuf,
    /// None for a plain output file (`--plain-output`), which is committed in full.
    pub txnlog: Option<PathBuf>,
    /// Output file length when it was read (None when the output file does not exist).
    pub output_len: Option<u64>,
}

/// One commit, with the chunk it carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Commit {
    pub file: usize,
    pub txn_id: String,
    pub time: f64,
    /// Chunk start: the previous commit's end in the same file (in commit order).
    pub start: u64,
    pub end: u64,
    /// The `2-ok` line in the txnlog (0 for a plain output file).
    pub line: usize,
}

/// A sink-level problem kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProblemKind {
    CommittedDataMissing,
    CommitRegressed,
    Phase2Mismatch,
    TornTxnlogTail,
    /// `watch` only: a commit arrived after later-timed commits were already checked.
    LateCommit,
    /// An output file with no txnlog: nothing of it is committed or checked.
    OutputWithoutTxnlog,
    /// A line torn at the end of one file's chunk was continued by another file's chunk:
    /// in commit order the two are one line (which a key's report then names).
    TornLineJoined,
    /// A txnlog's timestamps go back: its commits are taken in file order.
    ClockWentBack,
    /// A key's order rests on timestamps that go back: it gets no verdict.
    OrderUndetermined,
}

/// The notes for output files that have no txnlog.
pub fn untracked_output_notes(untracked: &[String]) -> Vec<Problem> {
    untracked
        .iter()
        .map(|name| Problem {
            kind: ProblemKind::OutputWithoutTxnlog,
            severity: Severity::Note,
            file: name.clone(),
            line: 0,
            detail: format!("{name} has no txnlog ({name}.txnlog): none of it is committed, so none of it was checked"),
        })
        .collect()
}

/// Whether a problem fails the check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    Violation,
    Note,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    pub kind: ProblemKind,
    pub severity: Severity,
    pub file: String,
    pub line: usize,
    pub detail: String,
}

/// All commits of a sink directory in commit order, the files they refer to, and the
/// problems found.
#[derive(Debug, Clone, Default)]
pub struct CommitLog {
    pub files: Vec<SinkFile>,
    pub commits: Vec<Commit>,
    pub problems: Vec<Problem>,
    /// Each file's last commit end, in commit order (where its next chunk starts).
    file_ends: Vec<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum CommitLogError {
    #[error(transparent)]
    Txnlog(#[from] TxnlogError),
    #[error("{path}: cannot stat output file: {source}")]
    Output {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: output file is missing, but {txnlog} commits {bytes} bytes of it")]
    MissingOutput {
        path: PathBuf,
        txnlog: PathBuf,
        bytes: u64,
    },
}

impl CommitLog {
    /// Reads every txnlog of `pairs` and the sizes of their output files, and adds
    /// `plain` output files as single commits of their whole length.
    pub fn read(pairs: &[OutputPair], plain: &[PathBuf]) -> Result<CommitLog, CommitLogError> {
        let mut log = CommitLog::default();
        // Each file's commits in its own order, by file index.
        let mut staged: Vec<Vec<FileCommit>> = Vec::new();
        // Reading is the only per-record work; txnlogs are independent, so read them in
        // parallel and assemble in directory order.
        let replayed: Vec<_> = pairs
            .par_iter()
            .map(|pair| Ok::<_, CommitLogError>((replay_txnlog(pair)?, stat_len(&pair.output)?)))
            .collect::<Result<_, _>>()?;
        for (pair, (replayed, output_len)) in pairs.iter().zip(replayed) {
            let ReplayedTxnlog {
                name: txnlog_name,
                commits,
                problems,
                committed_end,
                tail,
            } = replayed;
            log.problems.extend(problems);
            match output_len {
                None if committed_end > 0 => {
                    return Err(CommitLogError::MissingOutput {
                        path: pair.output.clone(),
                        txnlog: pair.txnlog.clone(),
                        bytes: committed_end,
                    })
                }
                Some(len) if len < committed_end => {
                    let line = commits.iter().find(|c| c.end > len).map_or(0, |c| c.line);
                    log.problems.push(Problem {
                        kind: ProblemKind::CommittedDataMissing,
                        severity: Severity::Violation,
                        file: txnlog_name.clone(),
                        line,
                        detail: format!(
                            "{} is {len} bytes long but {txnlog_name} commits {committed_end} bytes \
                             ({} committed bytes are gone)",
                            pair.name,
                            committed_end - len
                        ),
                    });
                }
                _ => {}
            }
            if let TxnlogTail::Torn { line, bytes } = tail {
                log.problems.push(Problem {
                    kind: ProblemKind::TornTxnlogTail,
                    severity: Severity::Note,
                    file: txnlog_name.clone(),
                    line,
                    detail: format!(
                        "last line is {bytes} bytes without its LF (a torn write); ignored"
                    ),
                });
            }
            staged.push(commits);
            log.files.push(SinkFile {
                name: pair.name.clone(),
                output: pair.output.clone(),
                txnlog: Some(pair.txnlog.clone()),
                output_len,
            });
        }
        for path in plain {
            let len = stat_len(path)?.ok_or_else(|| CommitLogError::Output {
                path: path.clone(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            })?;
            log.files.push(SinkFile {
                name: path.display().to_string(),
                output: path.clone(),
                txnlog: None,
                output_len: Some(len),
            });
            staged.push(if len > 0 {
                vec![FileCommit {
                    txn_id: PLAIN_TXN_ID.to_string(),
                    time: 0.0,
                    end: len,
                    line: 0,
                }]
            } else {
                Vec::new()
            });
        }
        log.order(staged);
        Ok(log)
    }

    /// Puts the files' commits in commit order (each file's own order, the files
    /// interleaved by time: see [`super::clock`]), assigns each chunk's start, and notes
    /// where a file's timestamps go back.
    fn order(&mut self, per_file: Vec<Vec<FileCommit>>) {
        self.commits.reserve(per_file.iter().map(Vec::len).sum());
        for (file, c) in merge_by_time(self, per_file) {
            self.push(file, c);
        }
        // One note where the stamps drop, not one for each commit after it that is
        // still below the highest before the drop.
        let mut previous: Vec<Option<f64>> = vec![None; self.files.len()];
        for i in 0..self.commits.len() {
            let c = &self.commits[i];
            let before = previous[c.file].replace(c.time);
            if let Some(from) = before.filter(|&from| c.time < from) {
                let drop = Inversion {
                    file: c.file,
                    line: c.line,
                    from,
                    to: c.time,
                };
                let note = clock_went_back(self, &drop);
                self.problems.push(note);
            }
        }
    }

    /// Appends the next commit in commit order, assigning its chunk start: the previous
    /// commit's end in the same file. A regressed end (reported as a problem) carries no
    /// data; the file's position moves back to it as in the original, so re-sent bytes
    /// show as duplicates.
    pub fn push(&mut self, file: usize, c: FileCommit) {
        if self.file_ends.len() <= file {
            self.file_ends.resize(file + 1, 0);
        }
        let start = self.file_ends[file].min(c.end);
        self.file_ends[file] = c.end;
        self.commits.push(Commit {
            file,
            txn_id: c.txn_id,
            time: c.time,
            start,
            end: c.end,
            line: c.line,
        });
    }

    /// Total bytes carried by all commits; 128 bits, since each end offset is a txnlog's
    /// word and several near 2^64 must not wrap to a small total.
    pub fn committed_bytes(&self) -> u128 {
        self.commits
            .iter()
            .map(|c| u128::from(c.end - c.start))
            .sum()
    }
}

/// The length of an output file, None when it does not exist; a FIFO or device where an
/// output file is expected is an error, never read.
fn stat_len(path: &Path) -> Result<Option<u64>, CommitLogError> {
    stat_regular(path)
        .map(|meta| meta.map(|m| m.len()))
        .map_err(|source| CommitLogError::Output {
            path: path.to_path_buf(),
            source,
        })
}

/// One txnlog replayed as the sink did: its commits in file order, what the replay
/// found, and how the file ends.
struct ReplayedTxnlog {
    /// The txnlog's file name, as problems name it.
    name: String,
    commits: Vec<FileCommit>,
    problems: Vec<Problem>,
    committed_end: u64,
    tail: TxnlogTail,
}

/// Reads and replays one txnlog, record by record as it is read.
fn replay_txnlog(pair: &OutputPair) -> Result<ReplayedTxnlog, CommitLogError> {
    let name = format!("{}.txnlog", pair.name);
    let mut replay = TxnlogReplay::new(&name);
    let (mut commits, mut problems) = (Vec::new(), Vec::new());
    let tail = read_txnlog_facts(&pair.txnlog, &mut |line, time, fact| {
        commits.extend(replay.apply(line, time, fact, &mut problems));
    })?;
    Ok(ReplayedTxnlog {
        name,
        commits,
        problems,
        committed_end: replay.committed_end,
        tail,
    })
}

/// A commit as read from one txnlog, before global ordering.
#[derive(Debug, Clone, PartialEq)]
pub struct FileCommit {
    pub txn_id: String,
    pub time: f64,
    pub end: u64,
    pub line: usize,
}

/// Replays one txnlog as the sink does, one record at a time (so `watch` can feed
/// records as they land): yields its commits in file order and records
/// `commit-regressed` and `phase2-mismatch` problems. A commit costs one allocation: its
/// txn id, moved from the pending vote into the commit.
#[derive(Debug, Clone, Default)]
pub struct TxnlogReplay {
    txnlog_name: String,
    pending: Votes,
    last_committed: Option<(u64, usize)>,
    /// The highest committed end offset seen.
    pub committed_end: u64,
}

impl TxnlogReplay {
    pub fn new(txnlog_name: &str) -> Self {
        TxnlogReplay {
            txnlog_name: txnlog_name.to_string(),
            ..Default::default()
        }
    }

    /// Applies one record (at txnlog line `line`, stamped `time`); returns the commit it
    /// makes, if any.
    pub fn apply(
        &mut self,
        line: usize,
        time: f64,
        fact: Fact<'_>,
        problems: &mut Vec<Problem>,
    ) -> Option<FileCommit> {
        match fact {
            Fact::Vote {
                txn_id,
                vote,
                first,
            } => {
                self.pending.vote(txn_id, (vote, first, line));
                None
            }
            Fact::Committed { txn_id, offset } => {
                let at = At { line, time };
                self.phase2_commit(txn_id, offset, at, problems)
            }
            Fact::RolledBack { txn_id, offset } => {
                self.phase2_rollback(txn_id, offset, line, problems);
                None
            }
            // The remaining records carry no fact about committed data; their shapes were
            // already checked by the parser.
            Fact::Nothing => None,
        }
    }

    /// A `2-ok`: it must end its own `1-ok`'s range and never commit below the last
    /// committed offset; it commits up to `offset`.
    fn phase2_commit(
        &mut self,
        txn_id: &str,
        offset: u64,
        at: At,
        problems: &mut Vec<Problem>,
    ) -> Option<FileCommit> {
        let name = &self.txnlog_name;
        let mut problem = |kind, detail| problems.push(problem_at(name, at.line, kind, detail));
        let pending = self.pending.take(txn_id);
        match &pending {
            None => problem(
                ProblemKind::Phase2Mismatch,
                format!("2-ok for {txn_id} at offset {offset} has no pending phase-1 record"),
            ),
            Some((_, (Vote::Rollback, _, p1_line))) => problem(
                ProblemKind::Phase2Mismatch,
                format!("2-ok for {txn_id}, but its phase-1 vote (line {p1_line}) was rollback"),
            ),
            Some((_, (Vote::Commit, range, p1_line))) => {
                let end = range.map(|w| w.end);
                if end != Some(offset) {
                    let p1_end = end.map_or("no range".to_string(), |e| e.to_string());
                    problem(
                        ProblemKind::Phase2Mismatch,
                        format!(
                            "2-ok for {txn_id} commits offset {offset}, but its 1-ok (line {p1_line}) \
                             ends at {p1_end}"
                        ),
                    );
                }
            }
        }
        if let Some((previous, previous_line)) = self.last_committed {
            if offset < previous {
                problem(
                    ProblemKind::CommitRegressed,
                    format!(
                        "2-ok for {txn_id} commits offset {offset}, below the {previous} committed at \
                         line {previous_line}"
                    ),
                );
            }
        }
        self.last_committed = Some((offset, at.line));
        self.committed_end = self.committed_end.max(offset);
        (offset > 0).then(|| FileCommit {
            txn_id: pending.map_or_else(|| txn_id.to_string(), |(id, _)| id),
            time: at.time,
            end: offset,
            line: at.line,
        })
    }

    /// A `2-rollback`: it must truncate to its phase-1 record's start.
    fn phase2_rollback(
        &mut self,
        txn_id: &str,
        offset: u64,
        line: usize,
        problems: &mut Vec<Problem>,
    ) {
        let name = &self.txnlog_name;
        let mut problem = |kind, detail| problems.push(problem_at(name, line, kind, detail));
        match self.pending.take(txn_id).map(|(_, vote)| vote) {
            None => problem(
                ProblemKind::Phase2Mismatch,
                format!("2-rollback for {txn_id} has no pending phase-1 record"),
            ),
            Some((_, range, p1_line)) => {
                let start = range.map(|w| w.start);
                if start != Some(offset) {
                    let p1_start = start.map_or("no range".to_string(), |s| s.to_string());
                    problem(
                        ProblemKind::Phase2Mismatch,
                        format!(
                            "2-rollback for {txn_id} truncates to {offset}, but its phase-1 record \
                             (line {p1_line}) starts at {p1_start}"
                        ),
                    );
                }
            }
        }
    }
}

/// A phase-1 vote waiting for its phase 2: the vote, its first range, its line.
type PendingVote = (Vote, Option<WhereRange>, usize);

/// The votes waiting for their phase 2, by txn id. A sink has one transaction open at a
/// time, so the latest vote is kept apart, where its phase 2 finds it without hashing
/// its id; the map holds only the rest (after a crash, votes never resolved).
#[derive(Debug, Clone, Default)]
struct Votes {
    latest: Option<(String, PendingVote)>,
    older: HashMap<String, PendingVote>,
}

impl Votes {
    /// Records `txn_id`'s vote, replacing an earlier vote of the same id.
    fn vote(&mut self, txn_id: &str, vote: PendingVote) {
        match &mut self.latest {
            Some((id, v)) if id == txn_id => *v = vote,
            _ => {
                if let Some(v) = (!self.older.is_empty())
                    .then(|| self.older.get_mut(txn_id))
                    .flatten()
                {
                    *v = vote;
                    return;
                }
                if let Some((id, v)) = self.latest.take() {
                    self.older.insert(id, v);
                }
                self.latest = Some((txn_id.to_string(), vote));
            }
        }
    }

    /// Takes `txn_id`'s vote out, with the id as it was recorded.
    fn take(&mut self, txn_id: &str) -> Option<(String, PendingVote)> {
        match &self.latest {
            Some((id, _)) if id == txn_id => self.latest.take(),
            _ if self.older.is_empty() => None,
            _ => self.older.remove_entry(txn_id),
        }
    }
}

/// Where a record is: its txnlog line and its stamp.
#[derive(Debug, Clone, Copy)]
struct At {
    line: usize,
    time: f64,
}

/// The note for a txnlog whose timestamps go back at one commit.
fn clock_went_back(log: &CommitLog, at: &Inversion) -> Problem {
    let name = format!("{}.txnlog", log.files[at.file].name);
    Problem {
        kind: ProblemKind::ClockWentBack,
        severity: Severity::Note,
        detail: format!(
            "timestamps go back {:.3} s here (to {} after {}): the sink's clock stepped back; \
             this txnlog's commits are taken in file order, and only time interleaves it with \
             the other txnlogs",
            at.from - at.to,
            crate::duration::show_number(at.to),
            crate::duration::show_number(at.from)
        ),
        file: name,
        line: at.line,
    }
}

/// A problem of record `entry` of txnlog `name`.
fn problem_at(name: &str, line: usize, kind: ProblemKind, detail: String) -> Problem {
    Problem {
        kind,
        severity: Severity::Violation,
        file: name.to_string(),
        line,
        detail,
    }
}

/// Orders two commits as the original does: (time, end offset, output path, txn id).
pub fn commit_order(a: (f64, u64, &Path, &str), b: (f64, u64, &Path, &str)) -> Ordering {
    a.0.total_cmp(&b.0)
        .then(a.1.cmp(&b.1))
        .then_with(|| a.2.as_os_str().cmp(b.2.as_os_str()))
        .then_with(|| a.3.cmp(b.3))
}

/// A file's next commit in [`merge_by_time`], ordered as the original orders commits.
struct Head<'a> {
    file: usize,
    commit: FileCommit,
    path: &'a std::path::Path,
}
impl Head<'_> {
    fn order(&self, other: &Self) -> Ordering {
        commit_order(
            (
                self.commit.time,
                self.commit.end,
                self.path,
                &self.commit.txn_id,
            ),
            (
                other.commit.time,
                other.commit.end,
                other.path,
                &other.commit.txn_id,
            ),
        )
    }
}
impl PartialEq for Head<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.order(other).is_eq()
    }
}
impl Eq for Head<'_> {}
impl PartialOrd for Head<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Head<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.order(other).then(self.file.cmp(&other.file))
    }
}

/// Merges each file's commits (each list in its file's order) into one sequence: at
/// every step, the earliest of the files' next commits by (time, end offset, output
/// path, txn id). Where every file's times rise this is the original's global sort.
pub fn merge_by_time(log: &CommitLog, per_file: Vec<Vec<FileCommit>>) -> Vec<(usize, FileCommit)> {
    let total = per_file.iter().map(Vec::len).sum();
    let mut rest: Vec<std::vec::IntoIter<FileCommit>> =
        per_file.into_iter().map(Vec::into_iter).collect();
    let mut heads = BinaryHeap::new();
    let head = |file: usize, rest: &mut Vec<std::vec::IntoIter<FileCommit>>| {
        rest[file].next().map(|commit| {
            Reverse(Head {
                file,
                commit,
                path: &log.files[file].output,
            })
        })
    };
    for file in 0..rest.len() {
        heads.extend(head(file, &mut rest));
    }
    let mut merged = Vec::with_capacity(total);
    while let Some(Reverse(h)) = heads.pop() {
        heads.extend(head(h.file, &mut rest));
        merged.push((h.file, h.commit));
    }
    merged
}

/// A place where a txnlog's timestamps go back: its commit at txnlog line `line` is
/// stamped `to`, earlier than an earlier commit of the same file stamped `from`.
#[derive(Debug, Clone, PartialEq)]
pub struct Inversion {
    pub file: usize,
    pub line: usize,
    pub from: f64,
    pub to: f64,
}

/// Every place where a file's timestamps go back, in file order.
pub fn inversions(log: &CommitLog) -> Vec<Inversion> {
    let mut highest: Vec<Option<f64>> = vec![None; log.files.len()];
    let mut found = Vec::new();
    for c in &log.commits {
        match highest[c.file] {
            Some(h) if c.time < h => found.push(Inversion {
                file: c.file,
                line: c.line,
                from: h,
                to: c.time,
            }),
            _ => highest[c.file] = Some(c.time),
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Votes and takes in any order, over a few ids: [`Votes`] answers as one map
        /// of every pending vote does.
        #[test]
        fn votes_answer_as_one_map(ops in prop::collection::vec((any::<bool>(), 0..4u8, 0..1000usize), 0..60)) {
            let (mut votes, mut map) = (Votes::default(), HashMap::new());
            for (is_vote, id, line) in ops {
                let id = format!("txn-{id}");
                if is_vote {
                    votes.vote(&id, (Vote::Commit, None, line));
                    map.insert(id, (Vote::Commit, None, line));
                } else {
                    prop_assert_eq!(votes.take(&id), map.remove_entry(&id));
                }
            }
        }
    }
}
