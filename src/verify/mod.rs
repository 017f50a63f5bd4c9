//! The checker: proves that each key's committed output is its input, in order, with
//! nothing lost, duplicated or reordered.
//!
//! [`verify`] is "feed everything once": it reads the sink directory's [`CommitLog`],
//! maps the inputs and the output files, feeds every committed chunk in commit order to
//! the incremental [`Checker`], classifies the first violation of each failing key, and
//! returns a [`Report`]. `watch` drives the same [`Checker`] as commits land.

pub mod checker;
pub mod classify;
pub mod clock;
pub mod commits;
pub mod report;
pub mod stretch;

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::formats::input::{
    check_lines_start_with_key, discover_keys, input_path, wrong_key, InputError,
};
use crate::formats::mapped::{FileBytes, IoMode};
use crate::formats::sinkdir::{discover, SinkDirError, SinkListing};
pub use checker::{Checker, FeedObserver, KeyCursor, LineOrigin, Mismatch, Semantics};
use classify::{classify, line_at, line_number};
pub use commits::{CommitLog, CommitLogError, Problem, ProblemKind, Severity};
pub use report::{shown_text, CommitRef, KeyReport, Report, SinkSummary, Verdict, ViolationReport};

/// One key to check and where its input is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeyInput {
    pub key: u8,
    pub path: PathBuf,
}

/// Everything `verify` needs, already validated.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VerifyPlan {
    /// None when only plain output files are checked.
    pub sink_dir: Option<PathBuf>,
    pub plain_outputs: Vec<PathBuf>,
    pub inputs: Vec<KeyInput>,
    pub expect_complete: bool,
    pub semantics: Semantics,
    pub io: IoMode,
}

impl VerifyPlan {
    /// `inputs` each committed whole in `sink_dir`, exactly once, read through mmap:
    /// what a run that reached its end must leave.
    pub fn complete(sink_dir: PathBuf, inputs: Vec<KeyInput>) -> VerifyPlan {
        VerifyPlan {
            sink_dir: Some(sink_dir),
            plain_outputs: Vec::new(),
            inputs,
            expect_complete: true,
            semantics: Semantics::ExactlyOnce,
            io: IoMode::Mmap,
        }
    }
}

/// Why a check could not be made (exit status 2). Every variant names its file.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    SinkDir(#[from] SinkDirError),
    #[error(transparent)]
    CommitLog(#[from] CommitLogError),
    #[error("{path}: cannot read input of key {key:?}: {source}")]
    Input {
        key: char,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: cannot list the input directory: {source}")]
    InputDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    InputLines(#[from] InputError),
    #[error("{path}: cannot read output file: {source}")]
    Output {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Keys(String),
    /// The sink directory holds no output/txnlog pair, and no plain output was named: a
    /// verdict on it would be a verdict on nothing.
    #[error("{}: holds no sink output: expected output.<worker>.txnlog files beside their output.<worker> files{seen}", .dir.display())]
    NoSinkOutput { dir: PathBuf, seen: String },
    /// Sink output was read, but not one byte of a checked key was verified.
    #[error("{place}: nothing was verified: {why}")]
    NothingVerified { place: String, why: String },
}

/// How the keys to check were named on the command line or in the environment.
#[derive(Debug, Clone, Default)]
pub struct KeySelection {
    /// `--keys A,B,C`
    pub keys: Option<String>,
    /// `MULTIPLE_KEYS_LIST`, space-separated.
    pub env_keys: Option<String>,
    /// `--input K=PATH` overrides.
    pub overrides: Vec<(u8, PathBuf)>,
}

/// Parses one key: exactly one byte (the first byte of every line of its input).
pub fn parse_key(text: &str) -> Result<u8, String> {
    match text.as_bytes() {
        [b] if *b != b'\n' => Ok(*b),
        _ => Err(format!(
            "a key is one byte (the first byte of each of its lines), not {text:?}"
        )),
    }
}

/// Decides which keys are checked and where their inputs are: `--keys`, else
/// `MULTIPLE_KEYS_LIST`, else every `input-file.*.txt` of the input directory (plus any
/// `--input` keys); `--input K=PATH` overrides one key's path.
pub fn select_inputs(
    selection: &KeySelection,
    input_dir: &Path,
) -> Result<Vec<KeyInput>, VerifyError> {
    let split = |text: &str, sep: &[char]| -> Result<Vec<u8>, VerifyError> {
        text.split(sep)
            .filter(|k| !k.is_empty())
            .map(|k| parse_key(k).map_err(VerifyError::Keys))
            .collect()
    };
    let mut keys = match (&selection.keys, &selection.env_keys) {
        (Some(list), _) => split(list, &[','])?,
        (None, Some(list)) if !list.trim().is_empty() => split(list, &[' ', '\t'])?,
        _ => {
            let mut found = if input_dir.is_dir() {
                discover_keys(input_dir).map_err(|source| VerifyError::InputDir {
                    path: input_dir.to_path_buf(),
                    source,
                })?
            } else {
                Vec::new()
            };
            found.extend(selection.overrides.iter().map(|(k, _)| *k));
            found
        }
    };
    let mut seen = [false; 256];
    keys.retain(|k| !std::mem::replace(&mut seen[usize::from(*k)], true));
    if keys.len() > Checker::MAX_KEYS {
        return Err(VerifyError::Keys(format!(
            "{} keys: at most {} keys can be checked at once",
            keys.len(),
            Checker::MAX_KEYS
        )));
    }
    if keys.is_empty() {
        let missing = if input_dir.is_dir() {
            ""
        } else {
            " (it does not exist)"
        };
        return Err(VerifyError::Keys(format!(
            "no keys to check: give --keys, set MULTIPLE_KEYS_LIST, or put input-file.<K>.txt files in {}{missing}",
            input_dir.display()
        )));
    }
    Ok(keys
        .into_iter()
        .map(|key| {
            let path = selection
                .overrides
                .iter()
                .rev()
                .find(|(k, _)| *k == key)
                .map_or_else(|| input_path(input_dir, key), |(_, p)| p.clone());
            KeyInput { key, path }
        })
        .collect())
}

/// Verifies a saved sink directory per `plan`.
pub fn verify(plan: &VerifyPlan) -> Result<Report, VerifyError> {
    Ok(verify_observed(plan, |_| ())?.0.report)
}

/// What a check read and what it found, kept for a closer look (the post-mortem report
/// shows the context of a violation from it).
pub struct Verified {
    pub report: Report,
    pub log: CommitLog,
    outputs: Vec<Option<FileBytes>>,
    inputs: Vec<FileBytes>,
}

impl Verified {
    /// The input of the plan's `i`th key.
    pub fn input(&self, i: usize) -> &[u8] {
        &self.inputs[i]
    }

    /// The readable bytes of commit `i`'s chunk.
    pub fn chunk(&self, i: usize) -> &[u8] {
        chunk_of(&self.log, &self.outputs, i)
    }

    /// Where the line a report names starts: the commit of `at` and its file offset.
    pub fn origin_of(&self, at: &CommitRef) -> Option<LineOrigin> {
        let commit = self
            .log
            .commits
            .iter()
            .position(|c| c.line == at.txnlog_line && self.log.files[c.file].name == at.file)?;
        Some(LineOrigin {
            commit,
            file_offset: at.file_offset,
        })
    }

    /// Up to `n` lines of `key` in the committed stream after the line at `origin`.
    pub fn key_lines_after(&self, key: u8, i: usize, origin: LineOrigin, n: usize) -> Vec<Vec<u8>> {
        let chunk = |c: usize| Cow::Borrowed(self.chunk(c));
        key_lines_after(&self.log, &chunk, key, self.input(i), origin, n)
            .into_iter()
            .take(n)
            .map(Cow::into_owned)
            .collect()
    }
}

/// [`verify`], showing every commit to the observer `observe(&log)` makes; returns what
/// was read with the report, and the observer.
pub fn verify_observed<O: checker::FeedObserver>(
    plan: &VerifyPlan,
    observe: impl FnOnce(&CommitLog) -> O,
) -> Result<(Verified, O), VerifyError> {
    let listing = match &plan.sink_dir {
        Some(dir) => discover(dir)?,
        None => SinkListing::default(),
    };
    require_sink_output(plan, &listing)?;
    let (sink, inputs) = rayon::join(
        || -> Result<_, VerifyError> {
            let mut log = CommitLog::read(&listing.pairs, &plan.plain_outputs)?;
            log.problems
                .extend(commits::untracked_output_notes(&listing.untracked));
            let outputs = open_outputs(&log, plan.io)?;
            Ok((log, outputs))
        },
        || map_inputs(plan),
    );
    let ((log, outputs), inputs) = (sink?, inputs?);
    let keyed: Vec<(u8, &[u8])> = plan
        .inputs
        .iter()
        .zip(&inputs)
        .map(|(k, b)| (k.key, &b[..]))
        .collect();
    let mut observer = observe(&log);
    let checker = feed_all(
        Checker::new(plan.semantics, &keyed),
        &log,
        &outputs,
        &mut observer,
    );
    check_undelivered_inputs(plan, &checker)?;
    let report = build_report(
        plan,
        &log,
        &|i| Cow::Borrowed(chunk_of(&log, &outputs, i)),
        &checker,
    );
    drop(checker);
    refuse_empty_pass(plan, &report)?;
    let verified = Verified {
        report,
        log,
        outputs,
        inputs,
    };
    Ok((verified, observer))
}

/// A sink directory with no output/txnlog pair (and no plain output named) cannot be
/// checked: the error names the directory, what was expected there and what it holds.
pub fn require_sink_output(plan: &VerifyPlan, listing: &SinkListing) -> Result<(), VerifyError> {
    match &plan.sink_dir {
        Some(dir) if listing.pairs.is_empty() && plan.plain_outputs.is_empty() => {
            Err(VerifyError::NoSinkOutput {
                dir: dir.clone(),
                seen: what_dir_holds(dir, &listing.untracked),
            })
        }
        _ => Ok(()),
    }
}

/// What a directory without sink output holds, for the error's end: nothing, another
/// run dir's `sink-out`, inputs, or outputs without a txnlog.
fn what_dir_holds(dir: &Path, untracked: &[String]) -> String {
    if dir.join(crate::formats::sinkdir::SINK_OUT).is_dir() {
        return format!(
            "; it holds a sink-out directory: did you mean {}?",
            dir.join(crate::formats::sinkdir::SINK_OUT).display()
        );
    }
    if !untracked.is_empty() {
        return format!(
            "; it holds {} output file(s) without a txnlog ({}), so nothing in it is committed",
            untracked.len(),
            untracked.join(", ")
        );
    }
    let inputs = discover_keys(dir).map_or(0, |k| k.len());
    if inputs > 0 {
        return format!(
            "; it holds {inputs} input-file.*.txt file(s): it looks like the input directory"
        );
    }
    let empty = std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_none());
    if empty {
        "; it is empty".to_string()
    } else {
        String::new()
    }
}

/// A pass on nothing is not a pass: a report that found no violation but verified no
/// byte of any checked key is refused, saying why nothing was verified.
pub fn refuse_empty_pass(plan: &VerifyPlan, report: &Report) -> Result<(), VerifyError> {
    let verified: u64 = report.keys.iter().map(|k| k.verified_bytes).sum();
    if report.verdict != Verdict::Ok || verified > 0 {
        return Ok(());
    }
    let place = match &plan.sink_dir {
        Some(dir) => dir.display().to_string(),
        None => "the plain outputs".to_string(),
    };
    let keys: Vec<&str> = report.keys.iter().map(|k| k.key.as_str()).collect();
    let why = if report.keys.iter().all(|k| k.input_bytes == 0) {
        "every input is empty".to_string()
    } else if report.sink.commits == 0 {
        format!(
            "its {} file(s) hold no commit (no 2-ok record with an end offset above 0)",
            report.sink.files
        )
    } else if report.sink.other_key_lines > 0 {
        format!(
            "its {} commit(s) hold {} line(s), none of key(s) {}: are these the right --keys?",
            report.sink.commits,
            report.sink.other_key_lines,
            keys.join(",")
        )
    } else {
        format!(
            "its {} commit(s) hold no line of key(s) {}",
            report.sink.commits,
            keys.join(",")
        )
    };
    Err(VerifyError::NothingVerified { place, why })
}

/// Streams shorter than this are fed on one thread.
const SPLIT_MIN_BYTES: u64 = 4 << 20;

/// Feeds every commit's chunk to `checker`, in commit order, and finishes it; a long
/// stream on two threads (see [`Checker::feed_halves`]).
fn feed_all<'i, O: checker::FeedObserver>(
    mut checker: Checker<'i>,
    log: &CommitLog,
    outputs: &[Option<FileBytes>],
    observer: &mut O,
) -> Checker<'i> {
    let chunk = |i: usize| (log.commits[i].start, chunk_of(log, outputs, i));
    let commits = log.commits.len();
    let split = (checker.semantics() == Semantics::ExactlyOnce && rayon::current_num_threads() > 1)
        .then(|| split_point(log, outputs))
        .flatten();
    match split {
        Some((middle, fraction)) => {
            checker.feed_halves_observed(&chunk, commits, middle, fraction, observer)
        }
        None => {
            checker.feed_range_observed(&chunk, 0..commits, observer);
            checker.finish();
            checker
        }
    }
}

/// Where to cut the stream for two threads: the first commit at or past half its bytes
/// whose predecessor's chunk ends a line (a torn line cannot be joined across threads),
/// and the share of the bytes before it. None for a short stream.
fn split_point(log: &CommitLog, outputs: &[Option<FileBytes>]) -> Option<(usize, f64)> {
    let chunks: Vec<&[u8]> = (0..log.commits.len())
        .map(|i| chunk_of(log, outputs, i))
        .collect();
    let total: u64 = chunks.iter().map(|c| c.len() as u64).sum();
    if total < SPLIT_MIN_BYTES {
        return None;
    }
    let mut before = 0u64;
    let mut last_byte = None;
    for (i, chunk) in chunks.iter().enumerate() {
        if before >= total / 2 && last_byte == Some(b'\n') {
            return Some((i, before as f64 / total as f64));
        }
        before += chunk.len() as u64;
        if let Some(&last) = chunk.last() {
            last_byte = Some(last);
        }
    }
    None
}

/// The inputs' check (every line starts with its key) for what the checker did not
/// pass: the comparison checked each line start up to a key's verified bytes, so only
/// the rest of each input is read again (nothing, when the run is complete).
fn check_undelivered_inputs(plan: &VerifyPlan, checker: &Checker<'_>) -> Result<(), VerifyError> {
    plan.inputs
        .par_iter()
        .zip(checker.cursors())
        .map(|(k, cursor)| match cursor.first_wrong_line() {
            Some(start) => Err(wrong_key(&k.path, k.key, cursor.input(), start)),
            None => Ok(()),
        })
        .collect::<Result<(), _>>()
        .map_err(VerifyError::from)
}

/// Maps (or reads) every key's input and checks that its lines start with the key.
pub fn open_inputs(plan: &VerifyPlan) -> Result<Vec<FileBytes>, VerifyError> {
    let inputs = map_inputs(plan)?;
    check_inputs(plan, &inputs)?;
    Ok(inputs)
}

/// Maps (or reads) every key's input.
fn map_inputs(plan: &VerifyPlan) -> Result<Vec<FileBytes>, VerifyError> {
    plan.inputs
        .par_iter()
        .map(|k| {
            FileBytes::open(&k.path, plan.io).map_err(|source| VerifyError::Input {
                key: k.key as char,
                path: k.path.clone(),
                source,
            })
        })
        .collect()
}

/// Checks that every line of every input starts with its key: without it, a line of
/// another key inside an input, echoed in the output, would pass the run comparison.
/// Returns each input's line (LF) count.
fn check_inputs(plan: &VerifyPlan, inputs: &[FileBytes]) -> Result<Vec<u64>, VerifyError> {
    plan.inputs
        .par_iter()
        .zip(inputs)
        .map(|(k, bytes)| check_lines_start_with_key(&k.path, k.key, bytes))
        .collect::<Result<_, _>>()
        .map_err(VerifyError::from)
}

fn open_outputs(log: &CommitLog, io: IoMode) -> Result<Vec<Option<FileBytes>>, VerifyError> {
    log.files
        .par_iter()
        .map(|f| match f.output_len {
            Some(len) if len > 0 => {
                FileBytes::open(&f.output, io)
                    .map(Some)
                    .map_err(|source| VerifyError::Output {
                        path: f.output.clone(),
                        source,
                    })
            }
            _ => Ok(None),
        })
        .collect()
}

/// The readable bytes of commit `i`'s chunk (committed bytes missing from the file are
/// reported as a problem and cannot be fed).
fn chunk_of<'a>(log: &CommitLog, outputs: &'a [Option<FileBytes>], i: usize) -> &'a [u8] {
    let commit = &log.commits[i];
    let Some(bytes) = &outputs[commit.file] else {
        return &[];
    };
    let end = (commit.end as usize).min(bytes.len());
    let start = (commit.start as usize).min(end);
    &bytes[start..end]
}

/// The lines of `key` in the committed stream after the line that starts at `origin`
/// (reading stops at the first commit that begins with `limit` of them found);
/// `chunk(i)` gives commit i's readable chunk. A line copied (torn across chunks, or from
/// an owned chunk) keeps at most `input`'s longest line plus one byte: more could not
/// change which input line it equals (none).
fn key_lines_after<'a>(
    log: &CommitLog,
    chunk: &dyn Fn(usize) -> Cow<'a, [u8]>,
    key: u8,
    input: &[u8],
    origin: LineOrigin,
    limit: usize,
) -> Vec<Cow<'a, [u8]>> {
    let cap = checker::longest_line(input) + 1;
    let mut lines = Vec::new();
    let mut carry: Option<Vec<u8>> = None;
    let mut skip_first = true;
    let mut take = |line: Cow<'a, [u8]>, lines: &mut Vec<Cow<'a, [u8]>>| {
        if std::mem::take(&mut skip_first) {
            return;
        }
        if line.first() == Some(&key) {
            lines.push(line);
        }
    };
    let extend = |partial: &mut Vec<u8>, piece: &[u8]| {
        let room = cap.saturating_sub(partial.len()).min(piece.len());
        partial.extend_from_slice(&piece[..room]);
    };
    for i in origin.commit..log.commits.len() {
        if lines.len() >= limit {
            break;
        }
        let whole = chunk(i);
        let skip = if i == origin.commit {
            (origin.file_offset - log.commits[i].start) as usize
        } else {
            0
        };
        let skip = skip.min(whole.len());
        // Borrowed chunks give borrowed lines; owned chunks give owned (capped) lines.
        let piece = |from: usize, to: usize| -> Cow<'a, [u8]> {
            match &whole {
                Cow::Borrowed(b) => Cow::Borrowed(&b[from..to]),
                Cow::Owned(v) => Cow::Owned(v[from..to.min(from + cap)].to_vec()),
            }
        };
        let bytes: &[u8] = &whole;
        let mut start = skip;
        if let Some(mut partial) = carry.take() {
            match memchr::memchr(b'\n', &bytes[start..]) {
                None => {
                    extend(&mut partial, &bytes[start..]);
                    carry = Some(partial);
                    continue;
                }
                Some(n) => {
                    extend(&mut partial, &bytes[start..start + n + 1]);
                    take(Cow::Owned(partial), &mut lines);
                    start += n + 1;
                }
            }
        }
        while let Some(n) = memchr::memchr(b'\n', &bytes[start..]) {
            take(piece(start, start + n + 1), &mut lines);
            start += n + 1;
        }
        if start < bytes.len() {
            let mut partial = Vec::new();
            extend(&mut partial, &bytes[start..]);
            carry = Some(partial);
        }
    }
    if let Some(partial) = carry {
        take(Cow::Owned(partial), &mut lines);
    }
    lines
}

/// Notes for lines torn at the end of one output file's chunk and continued by another
/// file's: the concatenation in commit order glued two workers' data into one line.
fn join_notes(log: &CommitLog, joins: &[checker::Join]) -> Vec<Problem> {
    joins
        .iter()
        .filter_map(|j| {
            let (torn, next) = (&log.commits[j.torn.commit], &log.commits[j.continued.commit]);
            if torn.file == next.file {
                return None;
            }
            let (tf, nf) = (&log.files[torn.file], &log.files[next.file]);
            Some(Problem {
                kind: ProblemKind::TornLineJoined,
                severity: Severity::Note,
                file: format!("{}.txnlog", tf.name),
                line: torn.line,
                detail: format!(
                    "a line starting {:?} at {} byte {} is torn at the end of {}'s chunk and continued by {} \
                     ({} byte {}), which starts {:?}: in commit order they are one line",
                    j.torn_key as char,
                    tf.name,
                    j.torn.file_offset,
                    torn.txn_id,
                    next.txn_id,
                    nf.name,
                    j.continued.file_offset,
                    j.continued_key as char
                ),
            })
        })
        .collect()
}

/// A line's length without its LF.
fn bytes_of(line: &[u8]) -> u64 {
    line.strip_suffix(b"\n").unwrap_or(line).len() as u64
}

/// Builds the report of `checker` after feeding the commits of `log`; `chunk(i)` re-reads
/// commit i's chunk (only for the keys that failed, to classify their violation).
pub fn build_report<'a>(
    plan: &VerifyPlan,
    log: &CommitLog,
    chunk: &dyn Fn(usize) -> Cow<'a, [u8]>,
    checker: &Checker<'_>,
) -> Report {
    let mut keys = plan
        .inputs
        .iter()
        .zip(checker.cursors())
        .map(|(k, cursor)| {
            let input = cursor.input();
            let violation = if let Some(m) = cursor.mismatch() {
                Some(mismatch_report(plan, log, chunk, k.key, input, m))
            } else if plan.expect_complete && !cursor.complete() {
                Some(ended_early_report(cursor))
            } else {
                None
            };
            KeyReport {
                key: (k.key as char).to_string(),
                input: k.path.display().to_string(),
                input_bytes: input.len() as u64,
                verified_bytes: cursor.verified_bytes(),
                verified_lines: cursor.verified_lines(),
                output_bytes: cursor.output_bytes(),
                complete: cursor.complete(),
                violation,
                order_undetermined: None,
            }
        })
        .collect::<Vec<_>>();
    let undetermined = undetermined_order(plan, log, chunk, &mut keys);
    Report {
        verdict: verdict_of(&keys, log, &undetermined),
        hint: report::wrong_inputs_hint(&keys),
        semantics: plan.semantics,
        keys,
        problems: log
            .problems
            .iter()
            .cloned()
            .chain(join_notes(log, checker.joins()))
            .chain(undetermined)
            .collect(),
        sink: sink_summary(plan, log, checker),
        error: None,
        findings: None,
    }
}

/// A violation when a key or the sink failed; else undetermined when a key's order is
/// open; else ok.
fn verdict_of(keys: &[KeyReport], log: &CommitLog, undetermined: &[Problem]) -> Verdict {
    let failed = keys.iter().any(|k| k.violation.is_some())
        || log
            .problems
            .iter()
            .any(|p| p.severity == Severity::Violation);
    match (failed, undetermined.is_empty()) {
        (true, _) => Verdict::Violation,
        (false, false) => Verdict::Undetermined,
        (false, true) => Verdict::Ok,
    }
}

/// The keys whose order rests on timestamps that go back (see [`clock`]): each gets
/// no verdict (its violation, which depends on the guess, is dropped) and the two
/// commits that leave it open; returns a note for each.
fn undetermined_order<'a>(
    plan: &VerifyPlan,
    log: &CommitLog,
    chunk: &dyn Fn(usize) -> Cow<'a, [u8]>,
    keys: &mut [KeyReport],
) -> Vec<Problem> {
    let mut checked = clock::KeySet::default();
    for k in &plan.inputs {
        checked.insert(k.key);
    }
    let found =
        clock::undetermined_keys(log, &mut |i| clock::KeySet::of_chunk(&chunk(i), &checked));
    let mut notes = Vec::new();
    for u in found {
        let Some(i) = plan.inputs.iter().position(|k| k.key == u.key) else {
            continue;
        };
        let (a, b) = (commit_start(log, u.a), commit_start(log, u.b));
        notes.push(Problem {
            kind: ProblemKind::OrderUndetermined,
            severity: Severity::Note,
            file: format!("{}.txnlog", a.file),
            line: a.txnlog_line,
            detail: format!(
                "key {}: its lines here (stamped {}) and in {}.txnlog line {} (stamped {}) may \
                 have been committed in either order: {}; the key gets no verdict",
                u.key as char,
                crate::duration::show_number(a.time),
                b.file,
                b.txnlog_line,
                crate::duration::show_number(b.time),
                why_doubtful(log, &u.span)
            ),
        });
        keys[i].violation = None;
        keys[i].order_undetermined = Some([a, b]);
    }
    notes
}

/// Why a span's stamps order nothing, for a note.
fn why_doubtful(log: &CommitLog, span: &clock::Span) -> String {
    let show = crate::duration::show_number;
    match span.cause {
        clock::Doubt::SteppedBack => format!(
            "both are stamped between {} and {}, which the sink's clock read both before \
             and after it stepped back ({}.txnlog line {} goes back to {})",
            show(span.lo),
            show(span.hi),
            log.files[span.file].name,
            span.line,
            show(span.lo)
        ),
        clock::Doubt::Shared => format!(
            "commits of two txnlogs share the stamp {} (a coarse clock), so the stamps \
             cannot say which came first",
            show(span.lo)
        ),
    }
}

/// Commit `i` of `log`, at its chunk's start.
fn commit_start(log: &CommitLog, i: usize) -> CommitRef {
    commit_ref(
        log,
        LineOrigin {
            commit: i,
            file_offset: log.commits[i].start,
        },
    )
}

/// Where a commit of `log` put a line.
fn commit_ref(log: &CommitLog, origin: LineOrigin) -> CommitRef {
    let commit = &log.commits[origin.commit];
    let file = &log.files[commit.file];
    CommitRef {
        txn_id: commit.txn_id.clone(),
        time: commit.time,
        file: file.name.clone(),
        file_offset: origin.file_offset,
        txnlog_line: commit.line,
    }
}

/// A key's first committed line that is not its input's next line, classified.
fn mismatch_report<'a>(
    plan: &VerifyPlan,
    log: &CommitLog,
    chunk: &dyn Fn(usize) -> Cow<'a, [u8]>,
    key: u8,
    input: &[u8],
    m: &Mismatch,
) -> ViolationReport {
    let later = key_lines_after(log, chunk, key, input, m.origin, usize::MAX);
    let c = classify(input, m, plan.semantics, &later);
    ViolationReport {
        kind: c.kind,
        lines: c.lines,
        key_offset: m.key_offset,
        input_offset: m.input_offset,
        input_line: line_number(input, m.input_offset),
        expected: line_at(input, m.input_offset).map(shown_text),
        expected_bytes: line_at(input, m.input_offset).map(bytes_of),
        found: Some(shown_text(&m.found)),
        found_bytes: Some(m.found_len - u64::from(!m.torn)),
        found_input_offset: c.found_at,
        commit: Some(commit_ref(log, m.origin)),
        joined: m.continued.map(|o| commit_ref(log, o)),
    }
}

/// The committed output of a key ended early (`--expect-complete`): everything after
/// it is lost.
fn ended_early_report(cursor: &KeyCursor<'_>) -> ViolationReport {
    let input = cursor.input();
    let at = cursor.verified_bytes();
    let rest = &input[at as usize..];
    let lines = classify::lines_of(rest).count() as u64 + u64::from(!rest.ends_with(b"\n"));
    ViolationReport {
        kind: classify::ViolationKind::Loss,
        lines,
        key_offset: cursor.output_bytes(),
        input_offset: at,
        input_line: line_number(input, at),
        expected: line_at(input, at).map(shown_text),
        expected_bytes: line_at(input, at).map(bytes_of),
        found: None,
        found_bytes: None,
        found_input_offset: None,
        commit: None,
        joined: None,
    }
}

/// What the sink directory held.
fn sink_summary(plan: &VerifyPlan, log: &CommitLog, checker: &Checker<'_>) -> SinkSummary {
    let files = log
        .files
        .iter()
        .map(|f| usize::from(f.txnlog.is_some()) + usize::from(f.output_len.is_some()))
        .sum();
    SinkSummary {
        dir: plan.sink_dir.as_ref().map(|d| d.display().to_string()),
        files,
        commits: log.commits.len() as u64,
        committed_bytes: log.committed_bytes(),
        other_key_lines: checker.other_lines(),
    }
}
