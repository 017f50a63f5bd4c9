//! `soakcheck gen sink`: writes a sink directory in the real on-disk format (wallaroo-formats.md §6), as
//! an `aloc_sink` would leave it after a soak, for tests, benches and demos.
//!
//! It plays checkpoints over several workers: key i goes to worker i mod W, each worker
//! writes interleaved runs of its keys' lines and commits them with `1-ok`/`2-ok`. Run
//! lengths are geometric with the plan's mean (`--interleave`; 1.5 by default, as real
//! sinks interleave their keys every line or two), and a run is never followed by
//! another of the same key while the worker has another key to write, so the mean run
//! in the output is the one asked for. Along
//! the way it does what real runs do: phase-2 rollbacks (truncate, re-send), sink crashes
//! with a pending commit (`connection-closed`, `list-uncommitted [T]`, `2-ok`) and before
//! a vote (the uncommitted data truncated and re-sent), forced aborts
//! (`next-txn-force-abort`, `1-rollback`), `2-error` and `close` records, the last worker
//! leaving half way (`workers-left`, files renamed to `.<time>`, its keys moved to the
//! initializer), uncommitted tails after the last commit, and a torn last txnlog line.
//! Every input line ends up committed exactly once, unless a fault is injected.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::Rng;
use crate::formats::pyliteral;
use crate::formats::txnlog::{format_record, Record, WhereRange};
use crate::verify::KeyInput;

/// A fault to inject into one key's committed output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// Drop 1 to 3 lines.
    Loss,
    /// Re-send 1 to 3 lines already committed.
    Duplicate,
    /// Swap two adjacent lines.
    Reorder,
    /// Change one hex digit of a line.
    Corrupt,
}

impl crate::choice::Choice for FaultKind {
    const CHOICES: &'static [(Self, &'static str)] = &[
        (FaultKind::Loss, "Drop 1 to 3 lines"),
        (
            FaultKind::Duplicate,
            "Re-send 1 to 3 lines already committed",
        ),
        (FaultKind::Reorder, "Swap two adjacent lines"),
        (FaultKind::Corrupt, "Change one hex digit of a line"),
    ];
}

crate::display_as_choice!(FaultKind);

#[derive(Debug, Clone)]
pub struct GenSinkPlan {
    pub inputs: Vec<KeyInput>,
    pub sink_dir: PathBuf,
    pub workers: usize,
    pub fault: Option<(FaultKind, u8)>,
    pub seed: u64,
    /// The mean number of consecutive lines of one key in a worker's output (>= 1).
    pub interleave: f64,
    /// The mean bytes a commit commits (None: about 7000 commits for the standard 10 x
    /// 4,000,000-byte run, about 18 KB each). A slow soak with one-second checkpoints
    /// commits a few KB at a time.
    pub commit_bytes: Option<u64>,
}

/// The mean run length real sinks show: keys interleave every line or two.
pub const REALISTIC_INTERLEAVE: f64 = 1.5;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenSinkSummary {
    pub commits: u64,
    pub committed_bytes: u64,
    /// The key and input offset where the fault was injected.
    pub fault_at: Option<(u8, u64)>,
}

#[derive(Debug, thiserror::Error)]
pub enum GenSinkError {
    #[error("{path}: cannot read input: {source}")]
    Input {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path}: sink directory is not empty; refusing to overwrite it (remove it or pick another)"
    )]
    NotEmpty { path: PathBuf },
    #[error("{path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("--workers must be between 1 and 10, not {0}")]
    Workers(usize),
    #[error("--interleave must be a mean run length of at least 1 line, not {0}")]
    Interleave(f64),
    #[error("fault key {0:?} is not one of the keys")]
    FaultKey(char),
    #[error("key {key:?}: input {path} has {lines} lines, a {kind:?} fault needs at least 8")]
    ShortInput {
        key: char,
        path: PathBuf,
        lines: usize,
        kind: FaultKind,
    },
}

struct KeyFeed {
    key: u8,
    input: Vec<u8>,
    next: usize,
    /// Line start where the fault goes, until it is done.
    fault: Option<(FaultKind, usize)>,
}

struct Worker {
    name: String,
    out: BufWriter<File>,
    log: BufWriter<File>,
    len: u64,
    keys: Vec<usize>,
    active: bool,
    last_txn: Option<String>,
    /// The key of the last run written, so the next run is another key's, and what is
    /// left of that run when a commit cut it (it goes on in the next transaction).
    last_key: Option<usize>,
    run_left: u64,
}

/// What happens to one transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxnFate {
    Commit,
    Rollback,
    CrashWithPendingCommit,
    CrashBeforeVote,
    ForcedAbort,
    CommitThenStalePhase2,
    CloseAfterReply,
}

impl TxnFate {
    fn commits(self) -> bool {
        matches!(
            self,
            TxnFate::Commit
                | TxnFate::CrashWithPendingCommit
                | TxnFate::CommitThenStalePhase2
                | TxnFate::CloseAfterReply
        )
    }
}

struct Clock {
    now: f64,
}

impl Clock {
    fn tick(&mut self, rng: &mut Rng) -> f64 {
        self.now += rng.range(100, 2000) as f64 / 1e6;
        self.now
    }
}

struct Generator {
    interleave: f64,
    commit_bytes: Option<u64>,
    rng: Rng,
    clock: Clock,
    keys: Vec<KeyFeed>,
    workers: Vec<Worker>,
    sink_id: u64,
    summary: GenSinkSummary,
    dir: PathBuf,
}

/// The error of a write to `path`.
fn write_error(path: &Path) -> impl FnOnce(std::io::Error) -> GenSinkError {
    let path = path.to_path_buf();
    move |source| GenSinkError::Write { path, source }
}

/// Every key's input, read whole.
fn read_keys(plan: &GenSinkPlan) -> Result<Vec<KeyFeed>, GenSinkError> {
    let mut keys = Vec::new();
    for k in &plan.inputs {
        let input = std::fs::read(&k.path).map_err(|source| GenSinkError::Input {
            path: k.path.clone(),
            source,
        })?;
        keys.push(KeyFeed {
            key: k.key,
            input,
            next: 0,
            fault: None,
        });
    }
    Ok(keys)
}

/// Places the one injected fault at a line in the middle half of `key`'s input.
fn place_fault(
    plan: &GenSinkPlan,
    keys: &mut [KeyFeed],
    kind: FaultKind,
    key: u8,
    rng: &mut Rng,
) -> Result<(), GenSinkError> {
    let feed = keys
        .iter_mut()
        .find(|f| f.key == key)
        .ok_or(GenSinkError::FaultKey(key as char))?;
    let starts: Vec<usize> = std::iter::once(0)
        .chain(memchr::memchr_iter(b'\n', &feed.input).map(|i| i + 1))
        .filter(|&s| s < feed.input.len())
        .collect();
    if starts.len() < 8 {
        let path = plan
            .inputs
            .iter()
            .find(|k| k.key == key)
            .expect("key exists")
            .path
            .clone();
        return Err(GenSinkError::ShortInput {
            key: key as char,
            path,
            lines: starts.len(),
            kind,
        });
    }
    let n = starts.len() as u64;
    let at = starts[rng.range(n / 4 + 3, n * 3 / 4) as usize];
    feed.fault = Some((kind, at));
    Ok(())
}

/// Each worker's output and txnlog, created empty, with the keys it carries.
fn open_workers(plan: &GenSinkPlan, key_count: usize) -> Result<Vec<Worker>, GenSinkError> {
    let dir = &plan.sink_dir;
    let mut workers = Vec::new();
    for w in 0..plan.workers {
        let name = crate::topology::worker_name(w);
        let out_path = dir.join(format!("output.{name}"));
        let log_path = dir.join(format!("output.{name}.txnlog"));
        let out = File::create(&out_path).map_err(write_error(&out_path))?;
        let log = File::create(&log_path).map_err(write_error(&log_path))?;
        workers.push(Worker {
            name,
            out: BufWriter::with_capacity(1 << 20, out),
            log: BufWriter::new(log),
            len: 0,
            keys: (0..key_count).filter(|k| k % plan.workers == w).collect(),
            active: true,
            last_txn: None,
            last_key: None,
            run_left: 0,
        });
    }
    Ok(workers)
}

/// Writes the sink directory described by `plan`.
pub fn generate_sink(plan: &GenSinkPlan) -> Result<GenSinkSummary, GenSinkError> {
    if !(1..=10).contains(&plan.workers) {
        return Err(GenSinkError::Workers(plan.workers));
    }
    if !(plan.interleave >= 1.0 && plan.interleave.is_finite()) {
        return Err(GenSinkError::Interleave(plan.interleave));
    }
    let dir = &plan.sink_dir;
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir).map_err(write_error(dir))?;
        if entries.next().is_some() {
            return Err(GenSinkError::NotEmpty { path: dir.clone() });
        }
    }
    std::fs::create_dir_all(dir).map_err(write_error(dir))?;
    let mut rng = Rng::new(plan.seed);
    let mut keys = read_keys(plan)?;
    if let Some((kind, key)) = plan.fault {
        place_fault(plan, &mut keys, kind, key, &mut rng)?;
    }
    let workers = open_workers(plan, keys.len())?;
    let mut generator = Generator {
        interleave: plan.interleave,
        commit_bytes: plan.commit_bytes,
        sink_id: rng.next_u64(),
        clock: Clock {
            now: 1_700_000_000.0 + rng.range(0, 100_000_000) as f64,
        },
        rng,
        keys,
        workers,
        summary: GenSinkSummary {
            commits: 0,
            committed_bytes: 0,
            fault_at: None,
        },
        dir: dir.clone(),
    };
    generator.run().map_err(write_error(dir))?;
    Ok(generator.summary)
}

impl Generator {
    fn log(&mut self, w: usize, record: &Record) -> std::io::Result<()> {
        let time = self.clock.tick(&mut self.rng);
        self.workers[w]
            .log
            .write_all(format_record(time, record).as_bytes())
    }

    fn remaining(&self, w: usize) -> usize {
        self.workers[w]
            .keys
            .iter()
            .map(|&k| self.keys[k].input.len() - self.keys[k].next)
            .sum()
    }

    fn run(&mut self) -> std::io::Result<()> {
        let total: usize = self.keys.iter().map(|k| k.input.len()).sum();
        let total_lines = self
            .keys
            .iter()
            .map(|k| memchr::memchr_iter(b'\n', &k.input).count())
            .sum::<usize>()
            .max(1);
        // About 7000 commits for the standard 10 x 4,000,000-byte run; at least a few
        // lines per commit for small inputs.
        let checkpoints = (total_lines / 36).clamp(12, 7000 / self.workers.len());
        let mean_lines = match self.commit_bytes {
            Some(bytes) => (bytes as usize * total_lines / total.max(1)).max(1) as u64,
            None => (total_lines / (checkpoints * self.workers.len())).max(3) as u64,
        };
        for w in 0..self.workers.len() {
            self.log(w, &Record::ListUncommitted { txn_ids: vec![] })?;
        }
        let mut cid = 0u64;
        let mut left = self.workers.len() < 2;
        while self
            .workers
            .iter()
            .enumerate()
            .any(|(w, _)| self.remaining(w) > 0)
        {
            cid += 1;
            for w in 0..self.workers.len() {
                if !self.workers[w].active || self.remaining(w) == 0 {
                    continue;
                }
                let fate = self.fate(cid, w);
                let lines = self.rng.range(mean_lines / 2 + 1, mean_lines * 3 / 2 + 1);
                self.transaction(w, cid, fate, lines)?;
            }
            let sent: usize = self.keys.iter().map(|k| k.next).sum();
            if !left && sent * 2 >= total {
                self.leave(self.workers.len() - 1)?;
                left = true;
            }
        }
        self.tails()
    }

    /// The first checkpoints exercise every tricky record once; later ones draw at random.
    fn fate(&mut self, cid: u64, w: usize) -> TxnFate {
        let last = self.workers.len() - 1;
        match (cid, w) {
            (2, 0) => TxnFate::Rollback,
            (3, w) if w == last => TxnFate::CrashWithPendingCommit,
            (4, 0) => TxnFate::CrashBeforeVote,
            (5, 0) => TxnFate::ForcedAbort,
            (6, 0) => TxnFate::CommitThenStalePhase2,
            (7, w) if w == last => TxnFate::CloseAfterReply,
            _ => match self.rng.range(0, 199) {
                0..=3 => TxnFate::Rollback,
                4 => TxnFate::CrashWithPendingCommit,
                5 => TxnFate::CrashBeforeVote,
                6 => TxnFate::ForcedAbort,
                _ => TxnFate::Commit,
            },
        }
    }

    fn transaction(
        &mut self,
        w: usize,
        cid: u64,
        fate: TxnFate,
        lines: u64,
    ) -> std::io::Result<()> {
        let txn_id = self.txn_id(w, cid);
        let start = self.workers[w].len;
        let saved: Vec<(usize, usize)> = self.workers[w]
            .keys
            .iter()
            .map(|&k| (k, self.keys[k].next))
            .collect();
        self.write_lines(w, lines, fate.commits())?;
        let end = self.workers[w].len;
        let where_list = vec![WhereRange {
            stream_id: 1,
            start,
            end,
        }];
        let txn = Txn {
            id: &txn_id,
            start,
            end,
            where_list: &where_list,
        };
        match fate {
            TxnFate::Commit | TxnFate::CommitThenStalePhase2 => {
                self.log_commit(w, &txn)?;
                if fate == TxnFate::CommitThenStalePhase2 {
                    let stale = self.txn_id(w, cid - 1);
                    self.log(
                        w,
                        &Record::Phase2Error {
                            txn_id: stale,
                            message: "unknown txn_id, commit False".into(),
                        },
                    )?;
                }
            }
            TxnFate::CrashWithPendingCommit | TxnFate::CloseAfterReply => {
                self.log_commit_after_reconnect(w, &txn, fate)?;
            }
            TxnFate::Rollback | TxnFate::ForcedAbort => {
                self.log_rollback(w, &txn, fate)?;
                self.truncate(w, start, &saved)?;
            }
            TxnFate::CrashBeforeVote => {
                self.log(w, &Record::ConnectionClosed)?;
                self.log(w, &Record::ListUncommitted { txn_ids: vec![] })?;
                self.truncate(w, start, &saved)?;
            }
        }
        if fate.commits() && end > start {
            self.summary.commits += 1;
            self.summary.committed_bytes += end - start;
        }
        self.workers[w].last_txn = Some(txn_id);
        Ok(())
    }

    /// Worker `w`'s transaction id number `cid`.
    fn txn_id(&self, w: usize, cid: u64) -> String {
        format!(
            "Passthrough-w-{}-id-{}:c_id={cid}",
            self.workers[w].name, self.sink_id
        )
    }

    fn phase1(txn: &Txn<'_>) -> Record {
        Record::Phase1Commit {
            txn_id: txn.id.to_string(),
            where_list: txn.where_list.to_vec(),
        }
    }

    /// A committed transaction: its vote and its commit.
    fn log_commit(&mut self, w: usize, txn: &Txn<'_>) -> std::io::Result<()> {
        self.log(w, &Self::phase1(txn))?;
        self.log(
            w,
            &Record::Phase2Commit {
                txn_id: txn.id.to_string(),
                offset: txn.end,
            },
        )
    }

    /// A vote whose connection then closed (a crash, or a close after the reply): the
    /// reconnected worker lists it uncommitted and the sink commits it.
    fn log_commit_after_reconnect(
        &mut self,
        w: usize,
        txn: &Txn<'_>,
        fate: TxnFate,
    ) -> std::io::Result<()> {
        self.log(w, &Self::phase1(txn))?;
        if fate == TxnFate::CloseAfterReply {
            self.log(
                w,
                &Record::Close {
                    when: "after reply".into(),
                },
            )?;
        }
        self.log(w, &Record::ConnectionClosed)?;
        self.log(
            w,
            &Record::ListUncommitted {
                txn_ids: vec![txn.id.to_string()],
            },
        )?;
        self.log(
            w,
            &Record::Phase2Commit {
                txn_id: txn.id.to_string(),
                offset: txn.end,
            },
        )
    }

    /// A rolled-back transaction (or one the sink forced to abort on missing data).
    fn log_rollback(&mut self, w: usize, txn: &Txn<'_>, fate: TxnFate) -> std::io::Result<()> {
        if fate == TxnFate::ForcedAbort {
            let message = format!(
                "MISSING DATA: self._output_offset {0} tell {0} < msg.message_id {1} worker {2}",
                txn.start,
                txn.end + 49,
                self.workers[w].name
            );
            self.log(w, &Record::NextTxnForceAbort { message })?;
            self.log(
                w,
                &Record::Phase1Rollback {
                    txn_id: txn.id.to_string(),
                    where_list: txn.where_list.to_vec(),
                },
            )?;
        } else {
            self.log(w, &Self::phase1(txn))?;
        }
        self.log(
            w,
            &Record::Phase2Rollback {
                txn_id: txn.id.to_string(),
                offset: txn.start,
            },
        )
    }

    /// Rolls a worker's output back to `start` and its keys back to where the
    /// transaction began, so the same lines are sent again.
    fn truncate(&mut self, w: usize, start: u64, saved: &[(usize, usize)]) -> std::io::Result<()> {
        let worker = &mut self.workers[w];
        worker.out.flush()?;
        worker.out.get_ref().set_len(start)?;
        worker.out.seek(SeekFrom::Start(start))?;
        worker.len = start;
        for &(k, next) in saved {
            self.keys[k].next = next;
        }
        Ok(())
    }

    /// A run length: geometric with mean `interleave` (1 + failures before a success of
    /// probability 1 / mean).
    fn run_length(&mut self) -> u64 {
        let p = 1.0 / self.interleave;
        if p >= 1.0 {
            return 1;
        }
        // u in (0, 1], so ln(u) is finite.
        let u = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let u = 1.0 - u;
        1 + (u.ln() / (1.0 - p).ln()).floor() as u64
    }

    /// Writes about `budget` lines of the worker's keys, in runs of `run_length` lines,
    /// each of another key than the run before while there is one.
    fn write_lines(&mut self, w: usize, mut budget: u64, committed: bool) -> std::io::Result<()> {
        while budget > 0 {
            let last = self.workers[w].last_key;
            let mut open: Vec<usize> = self.workers[w]
                .keys
                .iter()
                .copied()
                .filter(|&k| self.keys[k].next < self.keys[k].input.len())
                .collect();
            if open.is_empty() {
                break;
            }
            let left = self.workers[w].run_left;
            let (k, whole_run) = match last {
                Some(k) if left > 0 && open.contains(&k) => (k, left),
                _ => {
                    if open.len() > 1 {
                        open.retain(|&k| Some(k) != last);
                    }
                    let k = open[self.rng.range(0, open.len() as u64 - 1) as usize];
                    (k, self.run_length())
                }
            };
            let run = whole_run.min(budget);
            self.workers[w].last_key = Some(k);
            self.workers[w].run_left = whole_run - run;
            budget -= run;
            let feed = &self.keys[k];
            let mut end = feed.next;
            for _ in 0..run {
                match memchr::memchr(b'\n', &feed.input[end..]) {
                    Some(n) => end += n + 1,
                    None => {
                        end = feed.input.len();
                        break;
                    }
                }
            }
            let fault = feed
                .fault
                .filter(|&(_, at)| committed && at >= feed.next && at < end);
            if let Some((kind, at)) = fault {
                self.write_faulty(w, k, kind, at, end)?;
            } else {
                let feed = &mut self.keys[k];
                self.workers[w].out.write_all(&feed.input[feed.next..end])?;
                self.workers[w].len += (end - feed.next) as u64;
                feed.next = end;
            }
        }
        Ok(())
    }

    /// Writes key `k`'s lines up to `end` with `kind` injected at the line starting at `at`.
    fn write_faulty(
        &mut self,
        w: usize,
        k: usize,
        kind: FaultKind,
        at: usize,
        end: usize,
    ) -> std::io::Result<()> {
        let feed = &mut self.keys[k];
        let input = &feed.input;
        let line_end =
            |s: usize| memchr::memchr(b'\n', &input[s..]).map_or(input.len(), |n| s + n + 1);
        let line_start_before =
            |s: usize| memchr::memrchr(b'\n', &input[..s - 1]).map_or(0, |n| n + 1);
        let mut bytes = input[feed.next..at].to_vec();
        let resume = match kind {
            FaultKind::Loss => {
                let mut skip = at;
                for _ in 0..self.rng.range(1, 3) {
                    skip = line_end(skip);
                }
                skip
            }
            FaultKind::Duplicate => {
                let mut from = at;
                for _ in 0..self.rng.range(1, 3) {
                    from = line_start_before(from);
                }
                bytes.extend_from_slice(&input[from..at]);
                at
            }
            FaultKind::Reorder => {
                let second = line_end(at);
                let after = line_end(second);
                bytes.extend_from_slice(&input[second..after]);
                bytes.extend_from_slice(&input[at..second]);
                after
            }
            FaultKind::Corrupt => {
                let after = line_end(at);
                let mut line = input[at..after].to_vec();
                let digit = line.len() - 2;
                line[digit] = if line[digit] == b'0' { b'1' } else { b'0' };
                bytes.extend_from_slice(&line);
                after
            }
        };
        // Continue with the rest of the run when it reaches past the faulty lines.
        let stop = end.max(resume);
        bytes.extend_from_slice(&input[resume..stop]);
        let key = feed.key;
        feed.next = stop;
        feed.fault = None;
        self.summary.fault_at = Some((key, at as u64));
        self.workers[w].out.write_all(&bytes)?;
        self.workers[w].len += bytes.len() as u64;
        Ok(())
    }

    /// The last worker leaves: everything it wrote is committed, every remaining worker's
    /// txnlog records `workers-left`, its pair is renamed to `.<time>`, and its keys move
    /// to the initializer.
    fn leave(&mut self, w: usize) -> std::io::Result<()> {
        let name = self.workers[w].name.clone();
        for other in 0..self.workers.len() {
            if other != w && self.workers[other].active {
                self.log(
                    other,
                    &Record::WorkersLeft {
                        workers: vec![name.clone()],
                    },
                )?;
            }
        }
        let time = self.clock.tick(&mut self.rng);
        let mut suffix = String::new();
        pyliteral::write_float(&mut suffix, time);
        self.workers[w].out.flush()?;
        self.workers[w].log.flush()?;
        let out = self.dir.join(format!("output.{name}"));
        std::fs::rename(&out, self.dir.join(format!("output.{name}.{suffix}")))?;
        let log = self.dir.join(format!("output.{name}.txnlog"));
        std::fs::rename(
            &log,
            self.dir.join(format!("output.{name}.{suffix}.txnlog")),
        )?;
        // Records written later by the leaving worker's connection land in the renamed txnlog.
        self.log(w, &Record::ConnectionClosed)?;
        let moved = std::mem::take(&mut self.workers[w].keys);
        self.workers[0].keys.extend(moved);
        self.workers[w].active = false;
        Ok(())
    }

    /// Uncommitted tails (a copy of the last committed lines and a partial line, with a
    /// pending `1-ok` on the initializer) and a torn last line in one txnlog.
    fn tails(&mut self) -> std::io::Result<()> {
        for w in 0..self.workers.len() {
            if !self.workers[w].active || self.workers[w].len == 0 {
                continue;
            }
            let start = self.workers[w].len;
            let worker = &mut self.workers[w];
            worker.out.flush()?;
            let committed = std::fs::read(self.dir.join(format!("output.{}", worker.name)))?;
            let from = committed.len().saturating_sub(120);
            let from =
                memchr::memchr(b'\n', &committed[from..]).map_or(committed.len(), |n| from + n + 1);
            let mut tail = committed[from..].to_vec();
            tail.extend_from_slice(&committed[from..(from + 5).min(committed.len())]);
            worker.out.write_all(&tail)?;
            worker.len += tail.len() as u64;
            if w == 0 {
                let txn_id = format!(
                    "Passthrough-w-{}-id-{}:c_id=999999",
                    self.workers[w].name, self.sink_id
                );
                let where_list = vec![WhereRange {
                    stream_id: 1,
                    start,
                    end: self.workers[w].len,
                }];
                self.log(w, &Record::Phase1Commit { txn_id, where_list })?;
            }
        }
        let last = (0..self.workers.len())
            .rev()
            .find(|&w| self.workers[w].active)
            .unwrap_or(0);
        let time = self.clock.tick(&mut self.rng);
        let torn = format_record(
            time,
            &Record::Phase2Commit {
                txn_id: self.workers[last].last_txn.clone().unwrap_or_default(),
                offset: self.workers[last].len,
            },
        );
        self.workers[last]
            .log
            .write_all(&torn.as_bytes()[..torn.len() / 2])?;
        for worker in &mut self.workers {
            worker.out.flush()?;
            worker.log.flush()?;
        }
        Ok(())
    }
}

/// The mean number of consecutive lines of one key in `output` (a worker's output file):
/// lines divided by runs, a run ending where the next line starts with another byte.
pub fn mean_run(output: &[u8]) -> f64 {
    let (mut lines, mut runs, mut previous) = (0u64, 0u64, None);
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', output) {
        let key = output.get(start).copied();
        if end > start {
            lines += 1;
            if key != previous {
                runs += 1;
            }
            previous = key;
        }
        start = end + 1;
    }
    if runs == 0 {
        0.0
    } else {
        lines as f64 / runs as f64
    }
}

/// One generated transaction: its id and the output range it writes.
struct Txn<'a> {
    id: &'a str,
    start: u64,
    end: u64,
    where_list: &'a [WhereRange],
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::input::input_path;
    use crate::gen::inputs::{generate_inputs, DataSource};

    /// 200,000-byte seeded inputs of `keys` in `DIR/in`.
    fn inputs_in(dir: &Path, keys: &[u8]) -> Vec<KeyInput> {
        let input_dir = dir.join("in");
        generate_inputs(keys, 200_000, &input_dir, &DataSource::Seeded(5)).unwrap();
        (keys.iter())
            .map(|&key| KeyInput {
                key,
                path: input_path(&input_dir, key),
            })
            .collect()
    }

    fn assert_verifies_complete(sink_dir: PathBuf, inputs: &[KeyInput]) {
        let plan = crate::verify::VerifyPlan::complete(sink_dir, inputs.to_vec());
        let report = crate::verify::verify(&plan).unwrap();
        assert_eq!(report.verdict.exit_code(), 0, "{}", report.to_human(false));
    }

    /// `--interleave` gives the mean run asked for, and the sink still verifies complete.
    #[test]
    fn interleave_sets_the_mean_run_of_lines_per_key() {
        let dir = tempfile::tempdir().unwrap();
        let inputs = inputs_in(dir.path(), b"ABCDEF");
        for (interleave, low, high) in [(1.5, 1.35, 1.65), (6.0, 5.0, 7.0)] {
            let sink_dir = dir.path().join(format!("sink-{interleave}"));
            generate_sink(&GenSinkPlan {
                inputs: inputs.clone(),
                sink_dir: sink_dir.clone(),
                workers: 2,
                fault: None,
                seed: 3,
                interleave,
                commit_bytes: None,
            })
            .unwrap();
            let output = std::fs::read(sink_dir.join("output.initializer")).unwrap();
            let mean = mean_run(&output);
            assert!(
                (low..=high).contains(&mean),
                "asked {interleave}, got {mean}"
            );
            assert_verifies_complete(sink_dir, &inputs);
        }
        assert_eq!(mean_run(b"A1\nA2\nB1\nA3\n"), 4.0 / 3.0);
    }

    /// `--commit-bytes` gives commits of about that size, and the sink still verifies.
    #[test]
    fn commit_bytes_sets_the_mean_commit() {
        let dir = tempfile::tempdir().unwrap();
        let inputs = inputs_in(dir.path(), b"ABC");
        for bytes in [4096u64, 16384] {
            let sink_dir = dir.path().join(format!("sink-{bytes}"));
            let summary = generate_sink(&GenSinkPlan {
                inputs: inputs.clone(),
                sink_dir: sink_dir.clone(),
                workers: 3,
                fault: None,
                seed: 3,
                interleave: REALISTIC_INTERLEAVE,
                commit_bytes: Some(bytes),
            })
            .unwrap();
            let mean = summary.committed_bytes as f64 / summary.commits as f64;
            assert!(
                (0.7..=1.3).contains(&(mean / bytes as f64)),
                "asked {bytes}, got {mean:.0}"
            );
            assert_verifies_complete(sink_dir, &inputs);
        }
    }
}
